"""Bach's four-part chorales from music21's corpus as SATB arrays on a 16th-note grid.

Each chorale becomes

* ``voices``: int16 ``[4, T]`` cell tokens (soprano, alto, tenor, bass; see ``encode``),
* ``pos``: int16 ``[T]`` position of the step in its bar, in 16ths (pickups count from the
  bar's virtual start, so a one-beat 4/4 pickup starts at 12),
* ``bar``: int16 ``[T]`` bar length in 16ths, ``beat``: int16 ``[T]`` beat length in 16ths,
* ``fermata``: uint8 ``[T]`` 1 while a note carrying a fermata sounds (phrase ends).

Cell tokens: ``0`` rest, ``1 + p`` a new note of pitch index ``p``, ``1 + P + p`` pitch
index ``p`` held from the previous step, with pitch index ``p = midi - LOW``.

Parsing the corpus takes a minute or two; the arrays are cached as ``.npz`` under
``$STUDIO_CACHE`` (default ``~/.cache/cantor-studio``) so a second run starts in seconds.

The split is by chorale. Held-out chorales are chosen by melody: chorales that share a
tune (same interval sequence of the first 12 soprano notes) always land on the same side.
``VALID_TUNES``/``TEST_TUNES`` below are the fixed, documented lists (the corpus file names
of one chorale of each held-out tune; every chorale with the same tune follows it).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...core.satb import SATB_RANGE, VOICES  # noqa: F401  (the rules live in studio.core.satb)
from .. import paths

LOW, HIGH = 36, 84  # MIDI pitch range of the grid (C2..C6)
P = HIGH - LOW + 1  # pitch count
REST = 0
VOCAB = 1 + 2 * P  # rest, onsets, holds
# Comfortable SATB ranges (MIDI) used for augmentation and for the range check.
# A little slack over the textbook ranges for transposition augmentation (Bach's own
# chorales touch these edges).
AUG_RANGE = {"soprano": (59, 83), "alto": (52, 77), "tenor": (45, 72), "bass": (36, 66)}
CACHE_VERSION = 3

# Held-out tunes (one corpus file per tune; duplicates of the tune follow it). Chosen once,
# deterministically (every 10th tune by a hash of its interval sequence), then frozen here.
VALID_TUNES: tuple[str, ...] = (
    "bach/bwv126.6", "bach/bwv133.6", "bach/bwv148.6", "bach/bwv154.8", "bach/bwv155.5",
    "bach/bwv179.6", "bach/bwv244.46", "bach/bwv245.3", "bach/bwv263", "bach/bwv320", "bach/bwv322",
    "bach/bwv329", "bach/bwv330", "bach/bwv362", "bach/bwv379", "bach/bwv382", "bach/bwv388",
    "bach/bwv391", "bach/bwv408", "bach/bwv42.7", "bach/bwv423", "bach/bwv426", "bach/bwv433",
    "bach/bwv434", "bach/bwv437", "bach/bwv46.6", "bach/bwv5.7", "bach/bwv6.6", "bach/bwv64.2",
    "bach/bwv74.8", "bach/bwv89.6", "bach/bwv9.7",
)
TEST_TUNES: tuple[str, ...] = (
    "bach/bwv102.7", "bach/bwv145-a", "bach/bwv153.5", "bach/bwv154.3", "bach/bwv17.7",
    "bach/bwv183.5", "bach/bwv254", "bach/bwv278", "bach/bwv287", "bach/bwv302", "bach/bwv303",
    "bach/bwv337", "bach/bwv346", "bach/bwv363", "bach/bwv368", "bach/bwv385", "bach/bwv389",
    "bach/bwv394", "bach/bwv396", "bach/bwv403", "bach/bwv404", "bach/bwv409", "bach/bwv431",
    "bach/bwv80.8",
)


def encode(pitch: int | None, onset: bool) -> int:
    if pitch is None:
        return REST
    p = int(pitch) - LOW
    if not 0 <= p < P:
        raise ValueError(f"pitch {pitch} outside the grid {LOW}..{HIGH}")
    return 1 + p if onset else 1 + P + p


def decode(token: int) -> tuple[int | None, bool]:
    """``(midi pitch or None for a rest, is_new_onset)``."""
    t = int(token)
    if t == REST:
        return None, False
    if t <= P:
        return LOW + t - 1, True
    return LOW + t - 1 - P, False


def token_pitch(tokens: np.ndarray) -> np.ndarray:
    """MIDI pitch of each token array cell; -1 for rests."""
    t = np.asarray(tokens).astype(np.int64)
    out = np.where(t > P, t - 1 - P, t - 1) + LOW
    return np.where(t == REST, -1, out)


def token_onset(tokens: np.ndarray) -> np.ndarray:
    t = np.asarray(tokens)
    return (t >= 1) & (t <= P)


def transpose_tokens(tokens: np.ndarray, shift: int) -> np.ndarray:
    t = np.asarray(tokens).astype(np.int64)
    return np.where(t == REST, REST, t + shift).astype(tokens.dtype)


@dataclass
class Chorale:
    name: str
    voices: np.ndarray  # int16 [4, T]
    pos: np.ndarray
    bar: np.ndarray
    beat: np.ndarray
    fermata: np.ndarray

    @property
    def length(self) -> int:
        return int(self.voices.shape[1])

    def pitch_span(self, v: int) -> tuple[int, int]:
        p = token_pitch(self.voices[v])
        p = p[p >= 0]
        return int(p.min()), int(p.max())

    def shifts(self, ranges: dict = AUG_RANGE) -> list[int]:
        """Transpositions (semitones, -6..+6) that keep every voice inside ``ranges``."""
        spans = [self.pitch_span(v) for v in range(4)]
        ok = []
        for s in range(-6, 7):
            if all(ranges[name][0] <= lo + s and hi + s <= ranges[name][1] for name, (lo, hi) in zip(VOICES, spans)):
                ok.append(s)
        return ok or [0]

    def tune_key(self, n: int = 12) -> str:
        """The soprano's first ``n`` melodic intervals: chorales on one tune share it."""
        t = self.voices[0]
        p = token_pitch(t)[token_onset(t)]
        return ",".join(str(int(d)) for d in np.diff(p[: n + 1]))


def gibbs_schedule(i: int, steps: int, temperature: float, final_temperature: float | None = None,
                   pmax: float = 0.9, pmin: float = 0.05, anneal: float = 0.75) -> tuple[float, float]:
    """(share of the free cells to re-mask, sampling temperature) for Gibbs step ``i`` of
    ``steps``: the share falls linearly from ``pmax`` to ``pmin`` over the first ``anneal`` of
    the steps; the temperature moves linearly to ``final_temperature`` (default: the same) and
    the last step takes the most likely tokens (0)."""
    p = max(pmin, pmax - i * (pmax - pmin) / max(1.0, anneal * steps))
    end_t = temperature if final_temperature is None else final_temperature
    temp = 0.0 if i == steps - 1 else temperature + (end_t - temperature) * i / max(1, steps - 1)
    return p, temp


def cache_dir() -> Path:
    d = paths.cache_root()
    d.mkdir(parents=True, exist_ok=True)
    return d


# ---- extraction -------------------------------------------------------------------------


def _part_tokens(part, steps: int, fermata: np.ndarray) -> np.ndarray | None:
    from music21 import expressions

    out = np.zeros(steps, dtype=np.int16)
    flat = part.stripTies().flatten()
    for n in flat.notesAndRests:
        if n.duration.isGrace:
            continue
        start = float(n.offset) * 4
        length = float(n.duration.quarterLength) * 4
        if abs(start - round(start)) > 1e-6 or abs(length - round(length)) > 1e-6:
            return None  # off the 16th grid (triplets): leave the chorale out
        a, b = int(round(start)), int(round(start + length))
        if n.isRest:
            continue
        if n.isChord:
            return None
        midi = n.pitch.midi
        if not LOW <= midi <= HIGH:
            return None
        out[a] = encode(midi, True)
        out[a + 1 : b] = encode(midi, False)
        if any(isinstance(e, expressions.Fermata) for e in n.expressions):
            fermata[a:b] = 1
    return out


def _meter_arrays(part, steps: int):
    pos = np.zeros(steps, dtype=np.int16)
    bar = np.full(steps, 16, dtype=np.int16)
    beat = np.full(steps, 4, dtype=np.int16)
    ts = None
    for m in part.getElementsByClass("Measure"):
        if m.timeSignature is not None:
            ts = m.timeSignature
        if ts is None:
            continue
        start = int(round(float(m.offset) * 4))
        blen = int(round(float(ts.barDuration.quarterLength) * 4))
        bt = int(round(float(ts.beatDuration.quarterLength) * 4))
        pad = int(round(float(m.paddingLeft or 0) * 4))
        mlen = int(round(float(m.duration.quarterLength) * 4))
        for t in range(start, min(steps, start + max(mlen, 1))):
            pos[t] = (t - start + pad) % blen
            bar[t] = blen
            beat[t] = bt
    return pos, bar, beat


def chorale_from_score(score, name: str) -> Chorale | None:
    """The SATB arrays of one music21 score, or None if it is not a clean 4-part chorale."""
    parts = list(score.parts)
    if len(parts) != 4:
        return None
    steps = int(round(float(score.highestTime) * 4))
    if steps <= 16:
        return None
    fermata = np.zeros(steps, dtype=np.uint8)
    rows = []
    for part in parts:
        row = _part_tokens(part, steps, fermata)
        if row is None:
            return None
        rows.append(row)
    voices = np.stack(rows)
    # drop trailing all-rest steps
    sounding = np.nonzero((voices != REST).any(axis=0))[0]
    if len(sounding) == 0:
        return None
    end = int(sounding[-1]) + 1
    pos, bar, beat = _meter_arrays(parts[0], steps)
    return Chorale(name, voices[:, :end], pos[:end], bar[:end], beat[:end], fermata[:end])


def extract_all(log=print) -> list[Chorale]:
    from music21 import corpus

    names = list(corpus.chorales.Iterator(returnType="filename"))
    out, seen = [], set()
    for i, name in enumerate(names):
        if name in seen:
            continue
        seen.add(name)
        try:
            score = corpus.parse(name)
        except Exception as exc:  # a corpus file music21 cannot read: skip it
            log(f"skip {name}: {exc}")
            continue
        ch = chorale_from_score(score, name)
        if ch is not None:
            out.append(ch)
        if log and i % 50 == 0:
            log(f"parsed {i + 1}/{len(names)} ({len(out)} kept)")
    return out


def _cache_path() -> Path:
    return cache_dir() / f"bach_chorales_v{CACHE_VERSION}.npz"


def save_cache(chorales: list[Chorale], path: Path) -> None:
    arrays = {}
    for i, c in enumerate(chorales):
        for field in ("voices", "pos", "bar", "beat", "fermata"):
            arrays[f"{i}/{field}"] = getattr(c, field)
    arrays["names"] = np.array([c.name for c in chorales])
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_cache(path: Path) -> list[Chorale]:
    with np.load(path) as z:
        names = [str(n) for n in z["names"]]
        return [
            Chorale(n, *(z[f"{i}/{f}"] for f in ("voices", "pos", "bar", "beat", "fermata")))
            for i, n in enumerate(names)
        ]


def load_chorales(log=None) -> list[Chorale]:
    """All clean four-part chorales, from the cache when it is there."""
    path = _cache_path()
    if path.exists():
        return load_cache(path)
    chorales = extract_all(log=log or (lambda *_: None))
    save_cache(chorales, path)
    return chorales


# ---- split ------------------------------------------------------------------------------


def _tune_bucket(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % 10


def split(chorales: list[Chorale]) -> dict[str, list[Chorale]]:
    """``{"train", "valid", "test"}`` by tune: bucket 0 of a tune hash is validation, 1 is test.

    The frozen ``VALID_TUNES``/``TEST_TUNES`` lists, when filled, take precedence; the
    hash rule made them and still places tunes the lists do not name.
    """
    key_of = {c.name: c.tune_key() for c in chorales}
    valid_keys = {key_of[n] for n in VALID_TUNES if n in key_of}
    test_keys = {key_of[n] for n in TEST_TUNES if n in key_of}
    out = {"train": [], "valid": [], "test": []}
    for c in chorales:
        k = key_of[c.name]
        if k in valid_keys:
            side = "valid"
        elif k in test_keys:
            side = "test"
        elif VALID_TUNES or TEST_TUNES:
            side = "train"
        else:
            b = _tune_bucket(k)
            side = "valid" if b == 0 else "test" if b == 1 else "train"
        out[side].append(c)
    return out


# ---- what the harmonizer sees besides the notes (kept here: no torch needed) ----------------
METRIC_CLASSES = 6  # 0 downbeat, 1 mid-bar strong beat, 2 other beat, 3 half beat, 4 other 16th, 5 padding


def metric_classes(pos: np.ndarray, bar: np.ndarray, beat: np.ndarray) -> np.ndarray:
    pos, bar, beat = (np.asarray(a, dtype=np.int64) for a in (pos, bar, beat))
    beat = np.maximum(beat, 1)
    out = np.full(pos.shape, 4, dtype=np.int64)
    half = np.maximum(beat // 2, 1)
    out[pos % half == 0] = 3
    out[pos % beat == 0] = 2
    nbeats = bar // beat
    mid = (nbeats % 2 == 0) & (nbeats >= 4) & (pos == bar // 2)
    out[mid] = 1
    out[pos == 0] = 0
    return out


FERMATA_UNKNOWN, FERMATA_NO, FERMATA_YES, FERMATA_LAST = 0, 1, 2, 3


def fermata_classes(fermata: np.ndarray | None, length: int) -> np.ndarray:
    """0 unknown, 1 no fermata, 2 fermata."""
    if fermata is None:
        return np.zeros(length, dtype=np.int64)
    return 1 + (np.asarray(fermata) > 0).astype(np.int64)


def phrase_marks(line, first: int, count: int) -> np.ndarray:
    """What the network is told about phrase ends under a melody without fermatas: ``[count]``
    classes, 3 on the melody's last note, 2 (a fermata) on a note followed by a rest of an 8th or
    more, 0 (unknown) elsewhere. ``line``: ``(start, end, pitch)`` steps of the melody."""
    marks = np.zeros(count, dtype=np.int64)
    for k, (a, b, _p) in enumerate(line):
        if k + 1 < len(line) and line[k + 1][0] - b >= 2:
            marks[a - first:b - first] = FERMATA_YES
    if line:
        a, b, _p = line[-1]
        marks[a - first:b - first] = FERMATA_LAST
    return marks


def windows(T: int, size: int) -> list[int]:
    """Starts of the model windows covering ``T`` steps, half a window apart (the last one flush
    with the end)."""
    if T <= size:
        return [0]
    hop = size // 2
    starts = list(range(0, T - size + 1, hop))
    if starts[-1] + size < T:
        starts.append(T - size)
    return starts


if __name__ == "__main__":  # build the cache and print the split
    cs = load_chorales(log=print)
    sp = split(cs)
    print({k: len(v) for k, v in sp.items()}, "steps:", sum(c.length for c in cs))
    for side in ("valid", "test"):
        print(side, sorted({c.name for c in sp[side]}))

