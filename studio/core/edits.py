"""Pure edit operations on a Song.

Each operation *computes* a :class:`NoteChange` (which notes leave a track, which arrive)
without touching the song; :func:`apply` carries it out and ``change.inverted()`` is its
undo.  The editor wraps one change per QUndoCommand; the command line and the worker use
the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterable, Sequence

from .song import Note, Song

MIN_PITCH, MAX_PITCH = 0, 127


@dataclass(frozen=True, slots=True)
class NoteChange:
    track: int
    removed: tuple[Note, ...] = ()
    added: tuple[Note, ...] = ()

    def inverted(self) -> "NoteChange":
        return NoteChange(self.track, self.added, self.removed)

    @property
    def empty(self) -> bool:
        return not self.removed and not self.added


def apply(song: Song, change: NoteChange) -> None:
    """Carry out ``change`` on ``song`` in place (removals first, then additions)."""
    track = song.tracks[change.track]
    for n in change.removed:
        track.remove(n)
    for n in change.added:
        track.add(n)


def apply_all(song: Song, changes: Iterable[NoteChange]) -> None:
    for c in changes:
        apply(song, c)


def _clamp_vel(v: int) -> int:
    return max(1, min(127, int(v)))


def insert(track: int, notes: Sequence[Note]) -> NoteChange:
    return NoteChange(track, (), tuple(notes))


def delete(track: int, notes: Sequence[Note]) -> NoteChange:
    return NoteChange(track, tuple(notes), ())


def move(track: int, notes: Sequence[Note], dt: int = 0, dp: int = 0) -> NoteChange:
    """Shift notes by ``dt`` ticks and ``dp`` semitones; nothing moves before tick 0 or off the keyboard."""
    if not notes:
        return NoteChange(track)
    dt = max(dt, -min(n.start for n in notes))
    dp = max(min(dp, MAX_PITCH - max(n.pitch for n in notes)), MIN_PITCH - min(n.pitch for n in notes))
    return NoteChange(track, tuple(notes), tuple(n.moved(dt, dp) for n in notes))


def transpose(track: int, notes: Sequence[Note], semitones: int) -> NoteChange:
    return move(track, notes, 0, semitones)


def resize(track: int, notes: Sequence[Note], delta: int, min_duration: int = 1) -> NoteChange:
    """Lengthen (or shorten) each note's end by ``delta`` ticks, never below ``min_duration``."""
    new = tuple(replace(n, duration=max(min_duration, n.duration + delta)) for n in notes)
    return NoteChange(track, tuple(notes), new)


def set_velocity(track: int, notes: Sequence[Note], velocity: int | Sequence[int]) -> NoteChange:
    """One velocity for all notes, or one per note (a ramp)."""
    if isinstance(velocity, int):
        vels = [velocity] * len(notes)
    else:
        vels = list(velocity)
        if len(vels) != len(notes):
            raise ValueError("one velocity per note")
    new = tuple(replace(n, velocity=_clamp_vel(v)) for n, v in zip(notes, vels))
    return NoteChange(track, tuple(notes), new)


def velocity_ramp(track: int, notes: Sequence[Note], v0: int, v1: int) -> NoteChange:
    """Velocities along a straight line from ``v0`` at the first onset to ``v1`` at the last."""
    if not notes:
        return NoteChange(track)
    t0 = min(n.start for n in notes)
    t1 = max(n.start for n in notes)
    span = max(1, t1 - t0)
    return set_velocity(track, notes, [round(v0 + (v1 - v0) * (n.start - t0) / span) for n in notes])


def quantize(
    track: int,
    notes: Sequence[Note],
    grid: int = 0,
    strength: float = 1.0,
    ends: bool = True,
    snap: Callable[[int], int] | None = None,
) -> NoteChange:
    """Pull onsets (and, with ``ends``, note ends) toward the nearest multiple of ``grid`` ticks, or
    toward the nearest point ``snap`` gives (a grid laid on the song's bars; ``grid`` is then the
    length a note collapsed to nothing gets)."""
    if snap is None:
        if grid <= 0:
            raise ValueError("grid must be positive")
        snap = lambda t: round(t / grid) * grid  # noqa: E731
    out = []
    for n in notes:
        q_start = snap(n.start)
        start = round(n.start + (q_start - n.start) * strength)
        if ends:
            q_end = snap(n.end)
            end = round(n.end + (q_end - n.end) * strength)
            if end <= start:
                end = start + max(1, round((grid or n.duration) * strength) or n.duration)
        else:
            end = start + n.duration
        out.append(replace(n, start=max(0, start), duration=max(1, end - start)))
    return NoteChange(track, tuple(notes), tuple(out))


def duplicate(track: int, notes: Sequence[Note], offset: int | None = None) -> NoteChange:
    """Copies of ``notes`` placed right after them (or ``offset`` ticks later)."""
    if not notes:
        return NoteChange(track)
    if offset is None:
        offset = max(n.end for n in notes) - min(n.start for n in notes)
    return NoteChange(track, (), tuple(n.moved(offset, 0) for n in notes))


def paste(track: int, notes: Sequence[Note], at: int) -> NoteChange:
    """Insert ``notes`` so that the earliest one starts at tick ``at``."""
    if not notes:
        return NoteChange(track)
    t0 = min(n.start for n in notes)
    return NoteChange(track, (), tuple(n.moved(at - t0, 0) for n in notes))


def resolve_overlaps(song: Song, changes: Sequence[NoteChange]) -> tuple[list[NoteChange], dict]:
    """What keeps same-pitch notes from lying on top of each other after ``changes``.

    Where a note the changes add overlaps another note of the same pitch in its track, the
    earlier of the two ends where the later begins; two notes that begin together become one
    (the added one stays; of two added ones, the longer). Overlaps between notes the changes do
    not touch (an imported file's) are left alone. Returns the extra changes (one per track) and
    a map from each added note to what became of it (a shorter note, or None when it went).
    """
    from collections import Counter, defaultdict

    by_track: dict[int, list[NoteChange]] = defaultdict(list)
    for c in changes:
        by_track[c.track].append(c)
    out, fate = [], {}
    for ti, cs in by_track.items():
        added = {n for c in cs for n in c.added}
        if not added:
            continue
        bag = Counter(song.tracks[ti].notes)
        for c in cs:
            bag.subtract(c.removed)
            bag.update(c.added)
        pitches = {n.pitch for n in added}
        removed, new = [], []
        for p in pitches:
            ns = sorted(n for n, k in bag.items() if n.pitch == p for _ in range(max(0, k)))
            kept: list[Note] = []
            for n in ns:
                if not kept or kept[-1].end <= n.start or (kept[-1] not in added and n not in added):
                    kept.append(n)
                    continue
                prev = kept[-1]
                if prev.start == n.start:  # one onset: one note
                    if n in added and (prev not in added or n.duration > prev.duration):
                        drop, kept[-1] = prev, n
                    else:
                        drop = n
                    removed.append(drop)
                    fate[drop] = None
                    continue
                short = replace(prev, duration=n.start - prev.start)
                removed.append(prev)
                new.append(short)
                if prev in added:
                    fate[prev] = short
                kept[-1] = short
                kept.append(n)
        if removed or new:
            out.append(NoteChange(ti, tuple(removed), tuple(new)))
    return out, fate
