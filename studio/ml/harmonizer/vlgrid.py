"""Voice-leading figures straight on SATB token grids, vectorized with numpy.

The harmonizer's sampler scores many candidate grids per request; converting each to notes
and running ``studio.core.voiceleading`` on them costs milliseconds a time. This module
computes the same counts (same definitions, one grid step = one 16th) from the token arrays
directly, and lists where the faults are so the sampler can redraw them. A test checks it
against ``voiceleading.measure`` on real and sampled grids.

Grids are ``[4, T]`` (or ``[K, 4, T]``) arrays of ``studio.ml.harmonizer.data`` tokens, in the
model's key: the output sits ``shift`` semitones below, which only the range test needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core import key
from ...core import voiceleading as vl
from ...core.satb import SATB_RANGE, VOICES
from . import data as ch



def _tertian_table() -> np.ndarray:
    """``table[mask]``: is the pitch-class set ``mask`` (bit i = pitch class i) tertian?

    The same rule as ``voiceleading.is_tertian``: at most one pitch class, or a subset of a
    triad, or a subset of a seventh chord that holds its root and seventh.
    """
    table = np.zeros(4096, dtype=bool)
    table[0] = True
    table[[1 << pc for pc in range(12)]] = True

    def subsets(bits: list[int], must: int = 0):
        for m in range(1 << len(bits)):
            mask = sum(b for i, b in enumerate(bits) if m >> i & 1)
            if mask & must == must:
                yield mask

    for root in range(12):
        for t in vl._TRIADS:
            table[list(subsets([1 << ((root + i) % 12) for i in t]))] = True
        for t in vl._SEVENTHS:
            must = (1 << root) | (1 << ((root + t[3]) % 12))
            table[list(subsets([1 << ((root + i) % 12) for i in t], must))] = True
    return table


_TERTIAN = _tertian_table()
_RANGES = np.array([SATB_RANGE[n] for n in VOICES])  # [4, 2]
_PAIRS = [(i, j) for i in range(4) for j in range(i + 1, 4)]
_PROFILES = np.array([[np.roll(np.asarray(prof, dtype=float), t) for t in range(12)]
                      for prof in (key.MAJOR_PROFILE, key.MINOR_PROFILE)])  # [2, 12 tonics, 12]


@dataclass(frozen=True)
class Fault:
    kind: str
    voices: tuple[int, ...]
    start: int  # grid step
    end: int  # grid step (exclusive)


def estimate_tonic(pitch: np.ndarray) -> int:
    """Krumhansl-Schmuckler tonic of a ``[4, T]`` pitch array (-1 = rest), weighted by duration."""
    pcs = pitch[pitch >= 0] % 12
    hist = np.bincount(pcs, minlength=12).astype(float)
    if not hist.any():
        return 0
    h = hist - hist.mean()
    p = _PROFILES - _PROFILES.mean(-1, keepdims=True)
    den = np.sqrt((h**2).sum() * (p**2).sum(-1))
    r = np.where(den > 0, (p * h).sum(-1) / np.where(den > 0, den, 1), 0.0)  # [2, 12]
    # ties resolve as in studio.core.key.estimate: the largest (corr, tonic, minor) wins
    best = max((r[m, t], t, m) for m in range(2) for t in range(12))
    return int(best[1])


def _events(onset: np.ndarray) -> np.ndarray:
    return np.nonzero(onset.any(axis=0))[0]


def analyse(grid: np.ndarray, beats: np.ndarray | None, shift: int = 0, tonic: int | None = None,
            want_faults: bool = False):
    """Counts like ``voiceleading.measure`` for one ``[4, T]`` grid, and optionally its faults."""
    grid = np.asarray(grid)
    pitch = ch.token_pitch(grid)
    onset = ch.token_onset(grid)
    T = grid.shape[1]
    faults: list[Fault] = []
    ev = _events(onset)
    pe = pitch[:, ev]  # [4, E]
    a0, a1 = pe[:, :-1], pe[:, 1:]
    sounding = (a0 >= 0) & (a1 >= 0) & (a0 != a1)
    up = a1 > a0
    parallels = 0
    for i, j in _PAIRS:
        ok = sounding[i] & sounding[j] & (up[i] == up[j])
        i0 = np.abs(a0[i] - a0[j]) % 12
        i1 = np.abs(a1[i] - a1[j]) % 12
        hit = ok & (((i0 == 7) & (i1 == 7)) | ((i0 == 0) & (i1 == 0)))
        parallels += int(hit.sum())
        if want_faults:
            for k in np.nonzero(hit)[0]:
                faults.append(Fault("parallel", (i, j), int(ev[k]), int(ev[k + 1])))
    full = (pitch >= 0).all(axis=0)
    cross = full & (pitch[:-1] < pitch[1:]).any(axis=0)
    space = full & ((pitch[:2] - pitch[1:3]) > 12).any(axis=0)
    lo, hi = (_RANGES + shift).T  # [4] each
    out = onset & ((pitch < lo[:, None]) | (pitch > hi[:, None]))
    if beats is None:
        beats = np.arange(0, T, 4)
    beats = np.asarray(beats, dtype=np.int64)
    beats = beats[(beats >= 0) & (beats < T)]
    pb = pitch[:, beats]
    tested = (pb >= 0).sum(axis=0) >= 3
    bits = np.where(pb >= 0, 1 << (np.maximum(pb, 0) % 12), 0)
    masks = np.bitwise_or.reduce(bits, axis=0) if len(beats) else np.zeros(0, dtype=np.int64)
    tertian = tested & _TERTIAN[masks]
    if tonic is None:
        tonic = estimate_tonic(pitch)
    lt, dom = (tonic + 11) % 12, (tonic + 7) % 12
    bass0, bass1 = a0[3], a1[3]
    cadence = (bass0 >= 0) & (bass1 >= 0) & (bass0 % 12 == dom) & (bass1 % 12 == tonic)
    leading = 0
    for v in range(3):
        a, b = a0[v], a1[v]
        bad = cadence & (a >= 0) & (b >= 0) & (a % 12 == lt) & (a != b) & (b - a != 1)
        if v > 0:
            bad &= a - b != 4
        leading += int(bad.sum())
        if want_faults:
            for k in np.nonzero(bad)[0]:
                faults.append(Fault("leading_tone", (v,), int(ev[k]), int(ev[k + 1])))
    counts = {
        "notes": int(onset.sum()),
        "parallels": parallels,
        "frames": int(full.sum()),
        "crossing_frames": int(cross.sum()),
        "spacing_frames": int(space.sum()),
        "out_of_range": int(out.sum()),
        "beats": int(tested.sum()),
        "tertian_beats": int(tertian.sum()),
        "leading_tone": leading,
    }
    if not want_faults:
        return counts
    for kind, frames_, pairs in (("crossing", cross, [(v, v + 1) for v in range(3)]),
                                 ("spacing", space, [(0, 1), (1, 2)])):
        for s, e in _runs(frames_):
            vs = tuple(sorted({v for i, j in pairs for v in (i, j)
                               if ((pitch[i, s:e] < pitch[j, s:e]) if kind == "crossing"
                                   else (pitch[i, s:e] - pitch[j, s:e] > 12)).any()}))
            faults.append(Fault(kind, vs, s, e))
    for v, t in zip(*np.nonzero(out)):
        faults.append(Fault("range", (int(v),), int(t), int(t) + 1))
    return counts, faults


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def penalty_of(c: dict) -> float:
    """``voiceleading.penalty``'s weighting of the counts."""
    n = max(1, c["notes"])
    return (4.0 * c["parallels"] + 2.0 * c["out_of_range"] + 3.0 * c["leading_tone"]) / n + \
        (1.5 * c["crossing_frames"] + 1.0 * c["spacing_frames"]) / max(1, c["frames"]) + \
        1.0 * (c["beats"] - c["tertian_beats"]) / max(1, c["beats"])


def penalty(grid: np.ndarray, beats: np.ndarray | None, shift: int = 0, tonic: int | None = None) -> float:
    return penalty_of(analyse(grid, beats, shift, tonic))


def note_span(grid_row: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """Widen ``[start, end)`` to whole notes of one voice's token row."""
    onset = ch.token_onset(grid_row)
    rest = grid_row == ch.REST
    T = len(grid_row)
    a = start
    while a > 0 and not onset[a] and not rest[a]:
        a -= 1
    b = max(end, start + 1)
    while b < T and not onset[b] and not rest[b]:
        b += 1
    return a, min(b, T)
