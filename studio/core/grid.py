"""Snap points of the editor's grid, laid on the song's real bars.

Every grid starts again at each bar line of the meter map: the "Bar" grid is the bar lines
themselves (a pickup's short bar and a bar shortened by a meter change included), and a note-value
grid (a 16th, a dotted 8th, a triplet) counts from each bar's own start, so a 3/8 bar or a pickup
never shifts the grid of the bars after it. Past the last bar given, the last bar's meter repeats.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from .song import TimeSignature
from .timing import Bar


class SnapGrid:
    """``step`` ticks within each bar (1: every tick, snapping off), or ``None``: the bar lines only."""

    def __init__(self, bars: Sequence[Bar], step: int | None, ppq: int = 480):
        if step is not None and step < 1:
            raise ValueError("step must be at least one tick")
        self.step = step
        self._ppq = ppq
        self._bars = list(bars) or [Bar(0, 0, 4 * ppq, TimeSignature(0))]
        self._starts = [b.start for b in self._bars]

    def _bar(self, tick: float) -> tuple[int, int]:
        """(start, end) of the bar holding ``tick``; before the first or past the last bar, the
        neighbouring bar's length repeats."""
        first, last = self._bars[0], self._bars[-1]
        if tick < first.start:
            n = -(-(first.start - tick) // first.length)
            start = int(first.start - n * first.length)
            return start, start + first.length
        if tick >= last.end:
            length = last.meter.bar_ticks(self._ppq)
            start = int(last.end + (tick - last.end) // length * length)
            return start, start + length
        b = self._bars[bisect.bisect_right(self._starts, tick) - 1]
        return b.start, b.end

    def around(self, tick: float) -> tuple[int, int]:
        """The snap point at or before ``tick`` and the next one after it."""
        start, end = self._bar(tick)
        if self.step is None:
            return start, end
        lo = start + int((tick - start) // self.step) * self.step
        return lo, min(lo + self.step, end)

    def floor(self, tick: float) -> int:
        return self.around(tick)[0]

    def round(self, tick: float) -> int:
        lo, hi = self.around(tick)
        return lo if tick - lo < hi - tick else hi

    def ceil(self, tick: float) -> int:
        lo, hi = self.around(tick)
        return lo if tick == lo else hi

    def next(self, tick: float) -> int:
        """The first snap point after ``tick``."""
        return self.around(tick)[1]

    def prev(self, tick: float) -> int:
        """The last snap point before ``tick``."""
        lo = self.floor(tick)
        return lo if lo < tick else self.floor(tick - 1)
