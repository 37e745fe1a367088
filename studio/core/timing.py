"""Ticks <-> seconds through the tempo map, and ticks <-> bars/beats through the meter map."""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .song import Song, TimeSignature


class TempoMap:
    """Converts ticks to seconds and back for a song's tempo changes (piecewise linear)."""

    def __init__(self, song: Song):
        self.ppq = song.ppq
        tempos = sorted(song.tempos, key=lambda t: t.tick) or []
        if not tempos or tempos[0].tick != 0:
            from .song import TempoChange

            tempos = [TempoChange(0, 120.0)] + tempos
        self._ticks = [t.tick for t in tempos]
        self._spt = [60.0 / (t.bpm * self.ppq) for t in tempos]  # seconds per tick
        self._secs = [0.0]
        for i in range(1, len(tempos)):
            self._secs.append(self._secs[-1] + (self._ticks[i] - self._ticks[i - 1]) * self._spt[i - 1])

    def seconds(self, tick: int | float) -> float:
        i = max(0, bisect.bisect_right(self._ticks, tick) - 1)
        return self._secs[i] + (tick - self._ticks[i]) * self._spt[i]

    def tick(self, seconds: float) -> float:
        i = max(0, bisect.bisect_right(self._secs, seconds) - 1)
        return self._ticks[i] + (seconds - self._secs[i]) / self._spt[i]


@dataclass(frozen=True, slots=True)
class Bar:
    index: int  # 0-based
    start: int
    length: int
    meter: TimeSignature

    @property
    def end(self) -> int:
        return self.start + self.length


def bars(song: Song, until: int | None = None) -> list[Bar]:
    """The bars of a song (through ``until`` ticks, default the song's end, at least one bar)."""
    end = song.end_tick if until is None else until
    sigs = sorted(song.time_signatures, key=lambda s: s.tick) or [TimeSignature(0)]
    if sigs[0].tick != 0:
        sigs = [TimeSignature(0)] + sigs
    out: list[Bar] = []
    tick, si = 0, 0
    while tick < end or not out:
        while si + 1 < len(sigs) and sigs[si + 1].tick <= tick:
            si += 1
        sig = sigs[si]
        length = sig.bar_ticks(song.ppq)
        if not out and 0 < getattr(song, "pickup", 0) < length:
            length = song.pickup  # a partial first bar (anacrusis)
        # a meter change in the middle of a bar shortens that bar
        if si + 1 < len(sigs) and sigs[si + 1].tick < tick + length:
            length = sigs[si + 1].tick - tick
        out.append(Bar(len(out), tick, max(1, length), sig))
        tick += max(1, length)
        if len(out) > 100_000:
            break
    return out


def beat_origin(song: Song, bar: Bar) -> int:
    """Where ``bar``'s beats count from: its start, or for a pickup (a short first bar) the start
    of the full bar it ends, so a one-beat pickup in 4/4 is beat 4, not a downbeat. (A bar cut
    short by a meter change keeps its beats from its start.)"""
    full = bar.meter.bar_ticks(song.ppq)
    if bar.index == 0 and bar.start == 0 and 0 < song.pickup == bar.length < full:
        return bar.end - full
    return bar.start


def bar_start(song: Song, index: int) -> int:
    """Start tick of bar ``index`` (0-based), extending the last meter past the song's end."""
    if index <= 0:
        return 0
    bs = bars(song)
    if index < len(bs):
        return bs[index].start
    last = bs[-1]
    return last.end + (index - len(bs)) * last.meter.bar_ticks(song.ppq)


def first_bar_number(song: Song) -> int:
    """The number a score prints on the first bar: 0 for a pickup (it is not counted), else 1."""
    return 0 if 0 < song.pickup < song.time_signature_at(0).bar_ticks(song.ppq) else 1


def bar_of(song: Song, tick: int) -> int:
    """0-based index of the bar holding ``tick``."""
    bs = bars(song, until=tick + 1)
    for b in reversed(bs):
        if b.start <= tick:
            return b.index
    return 0


def song_seconds(song: Song) -> float:
    return TempoMap(song).seconds(song.end_tick)
