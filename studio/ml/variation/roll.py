"""Song <-> multi-track piano-roll grid in sixteenth steps, as the variation model sees it.

A roll holds up to :data:`MAX_TRACKS` tracks; each cell (track, step, pitch) is REST, ONSET
(a note starts on this step) or HOLD (a note started earlier still sounds).  Tracks may be
monophonic or polyphonic.  Notes are quantized to the sixteenth grid (``ppq // 4`` ticks);
a note that starts off the grid goes to the nearest step and lasts at least one step.

Besides the cells a roll carries what the model is conditioned on: the step's position in
its bar and the bar's length (both in steps, from the song's meter map), and the key's
scale as twelve pitch-class flags.

This module is plain numpy (no torch) so it can be tested and used for data preparation
without the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core import key as key_finding
from ...core.song import KeySignature, Note, Song
from ...core.timing import bars, beat_origin

MAX_TRACKS = 8
LOW, HIGH = 21, 108  # piano range, inclusive
N_PITCH = HIGH - LOW + 1
REST, ONSET, HOLD = 0, 1, 2
STEPS_PER_QUARTER = 4
MAX_BAR_STEPS = 64  # longer bars are clamped (the position embedding has this many slots)

def step_ticks(song: Song) -> int:
    return max(1, song.ppq // STEPS_PER_QUARTER)


def quantize(note: Note, st: int) -> tuple[int, int, int]:
    """``(start_step, end_step, pitch)`` of a note on a grid of ``st`` ticks (at least one step long)."""
    s = (note.start + st // 2) // st
    e = (note.end + st // 2) // st
    return s, max(s + 1, e), note.pitch


# ---- key ---------------------------------------------------------------------------------
def key_scale(key: KeySignature) -> np.ndarray:
    """Twelve flags: the key's scale; minor keys also get the raised sixth and seventh."""
    flags = np.zeros(12, dtype=bool)
    for pc in key.scale_pcs():
        flags[pc] = True
    if key.minor:
        flags[(key.tonic_pc + 9) % 12] = True
        flags[(key.tonic_pc + 11) % 12] = True
    return flags


def estimate_key(pitches) -> KeySignature:
    """The best-correlating major or minor key for a set of pitches (``studio.core.key``), for songs
    whose key signature does not fit their notes."""
    tonic, minor = key_finding.estimate(key_finding.histogram(pitches))
    return KeySignature.from_name(key_finding.PC_NAMES[tonic] + (" minor" if minor else ""))


def song_key(song: Song, tick: int = 0, pitches=None) -> KeySignature:
    """The key at ``tick``: the song's key signature if its scale fits the notes, else an estimate."""
    key = song.key_at(tick)
    if pitches is None:
        pitches = [n.pitch for t in song.tracks if not t.is_drum for n in t.notes]
    pitches = list(pitches)
    if not pitches:
        return key
    scale = key_scale(key)
    inside = np.mean([scale[p % 12] for p in pitches])
    return key if inside >= 0.8 else estimate_key(pitches)


# ---- meter -------------------------------------------------------------------------------
def meter_steps(song: Song, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per step: its position in the bar and the bar's length, both in steps (clamped), on the
    song's bars (``studio.core.timing.bars``): a bar cut short by a meter change is that short,
    and a pickup is the end of a full bar (a one-beat pickup in 4/4 sits at steps 12..15 of 16)."""
    st = step_ticks(song)
    pos = np.zeros(n_steps, dtype=np.int64)
    length = np.ones(n_steps, dtype=np.int64)
    for bar in bars(song, until=max(1, n_steps * st)):
        a, b = -(-bar.start // st), min(n_steps, -(-bar.end // st))
        if a >= n_steps:
            break
        if a >= b:
            continue
        origin = beat_origin(song, bar)  # the bar line a pickup's beats count from
        steps = np.arange(a, b)
        pos[a:b] = (steps * st - origin) // st
        length[a:b] = max(1, -(-(bar.end - origin) // st))
    return np.minimum(pos, MAX_BAR_STEPS - 1), np.minimum(length, MAX_BAR_STEPS)


# ---- cells -------------------------------------------------------------------------------
def paint(cells: np.ndarray, notes, offset: int = 0, transpose: int = 0) -> None:
    """Draw quantized notes ``(start, end, pitch)`` into one track's ``[T, N_PITCH]`` cells.

    ``offset`` is the step of ``cells[0]``.  Onsets win over holds, so repeated notes stay apart.
    Notes outside the pitch range are left out.
    """
    T = cells.shape[0]
    for s, e, p in notes:
        q = p + transpose - LOW
        if not 0 <= q < N_PITCH:
            continue
        a, b = max(s - offset, 0), min(e - offset, T)
        if a >= b:
            continue
        seg = cells[a:b, q]
        seg[seg == REST] = HOLD
        if s - offset >= 0:
            cells[s - offset, q] = ONSET


def decode(cells: np.ndarray, offset: int = 0) -> list[tuple[int, int, int]]:
    """Notes ``(start, end, pitch)`` of one track's ``[T, N_PITCH]`` cells.

    A HOLD with nothing sounding before it starts a note (a model may write one).
    """
    T, P = cells.shape
    out = []
    sounding = cells != REST
    starts = (cells == ONSET) | (sounding & ~np.vstack([np.zeros((1, P), bool), sounding[:-1]]))
    for t, q in zip(*np.nonzero(starts)):
        e = t + 1
        while e < T and cells[e, q] == HOLD:
            e += 1
        out.append((int(t) + offset, int(e) + offset, int(q) + LOW))
    out.sort()
    return out


def max_polyphony(notes) -> int:
    """The most notes sounding at once among quantized ``(start, end, pitch)`` notes."""
    events = sorted([(s, 1) for s, _, _ in notes] + [(e, -1) for _, e, _ in notes])
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def mostly_mono(notes, share: float = 0.95) -> bool:
    """True when at least ``share`` of the sounding steps hold a single note (grace notes and the
    odd double stop aside, a one-voice part)."""
    counts: dict[int, int] = {}
    for s, e, _ in notes:
        for t in range(s, e):
            counts[t] = counts.get(t, 0) + 1
    if not counts:
        return True
    return sum(1 for c in counts.values() if c == 1) >= share * len(counts)


@dataclass
class Roll:
    """A window of a song as the model sees it."""

    cells: np.ndarray  # uint8 [K, T, N_PITCH]
    offset: int  # song step of column 0
    bar_pos: np.ndarray  # int64 [T]
    bar_len: np.ndarray  # int64 [T]
    scale: np.ndarray  # bool [12]
    mono: np.ndarray  # bool [K]
    tracks: list[int]  # song track index of each roll track

    @property
    def n_steps(self) -> int:
        return self.cells.shape[1]


def playable_tracks(song: Song) -> list[int]:
    """Indices of the tracks the model can read: pitched (not drums), at most MAX_TRACKS."""
    return [i for i, t in enumerate(song.tracks) if not t.is_drum][:MAX_TRACKS]


def song_to_roll(song: Song, tracks=None, first_step: int = 0, n_steps: int | None = None, key=None) -> Roll:
    """The roll of ``tracks`` (song indices, default the playable ones) over a window of steps."""
    st = step_ticks(song)
    tracks = playable_tracks(song) if tracks is None else list(tracks)
    if len(tracks) > MAX_TRACKS:
        raise ValueError(f"a roll holds at most {MAX_TRACKS} tracks")
    if n_steps is None:
        n_steps = max(1, -(-song.end_tick // st) - first_step)
    cells = np.zeros((len(tracks), n_steps, N_PITCH), dtype=np.uint8)
    mono = np.zeros(len(tracks), dtype=bool)
    for k, ti in enumerate(tracks):
        q = [quantize(n, st) for n in song.tracks[ti].notes]
        paint(cells[k], q, offset=first_step)
        mono[k] = max_polyphony(q) <= 1
    pos, length = meter_steps(song, first_step + n_steps)
    if key is None:
        key = song_key(song, first_step * st)
    return Roll(cells, first_step, pos[first_step:], length[first_step:], key_scale(key), mono, tracks)


def roll_to_notes(roll: Roll, k: int, st: int, velocity: int = 80) -> list[Note]:
    """Track ``k`` of a roll as song notes (ticks of ``st`` per step)."""
    return sorted(Note(s * st, p, (e - s) * st, velocity) for s, e, p in decode(roll.cells[k], roll.offset))
