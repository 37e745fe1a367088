"""Shared coordinates of the piano roll: ticks <-> x, pitch <-> y, zoom and scroll offsets.

The roll, the keyboard, the ruler and the velocity lane all read one :class:`RollGeometry`,
so zooming or scrolling one of them moves the others.
"""

from __future__ import annotations

import bisect
import math

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor

from ...core.song import Song
from ...core.timing import Bar, bars, first_bar_number

# snap grids by name: "Off" (no snapping), "Bar", note values ("1/8"), dotted ("1/8.") and triplets ("1/8T")
GRID_NAMES = ["Off", "Bar", "1/1", "1/2", "1/2.", "1/4", "1/4.", "1/8", "1/8.", "1/16", "1/16.", "1/32",
              "1/4T", "1/8T", "1/16T", "1/32T"]
NOTE_NAMES = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
BLACK = {1, 3, 6, 8, 10}
PALETTE = ["#3b82c4", "#d9822b", "#3a9d5d", "#c0392b", "#8e5bb5", "#b8860b", "#2aa198", "#d33682",
           "#6c71c4", "#859900", "#cb4b16", "#268bd2"]


def grid_ticks(name: str, ppq: int = 480, bar_ticks: int | None = None) -> int:
    """Ticks of one grid step: ``"1/16"`` -> 120, ``"1/8."`` -> 360, ``"1/8T"`` -> 160 at 480 PPQ;
    ``"Bar"`` -> ``bar_ticks`` (a 4/4 bar when not given); ``"Off"`` -> 1 (every tick)."""
    if name == "Off":
        return 1
    if name == "Bar":
        return int(bar_ticks or ppq * 4)
    triplet, dotted = name.endswith("T"), name.endswith(".")
    denom = int(name.rstrip("T.").split("/")[1])
    ticks = ppq * 4 // denom
    return ticks * 2 // 3 if triplet else ticks * 3 // 2 if dotted else ticks


def pitch_name(pitch: int) -> str:
    return f"{NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def track_color(song: Song, index: int) -> QColor:
    t = song.tracks[index]
    c = QColor(t.color) if t.color else QColor()
    return c if c.isValid() else QColor(PALETTE[index % len(PALETTE)])


class RollGeometry(QObject):
    changed = Signal()  # zoom or scroll moved: repaint
    zoomed = Signal()  # zoom changed: scroll ranges change

    MIN_PPX, MAX_PPX = 0.01, 2.0
    MIN_KEY, MAX_KEY = 4.0, 40.0

    def __init__(self, parent=None):
        super().__init__(parent)
        self.ppx = 0.07  # pixels per tick: a quarter note is ~34 px, a 4/4 bar ~134 px
        self.key_h = 12.0  # pixels per semitone
        self.scroll_x = 0
        self.scroll_y = 0
        self._bars: list[Bar] = []
        self._bar_starts: list[int] = []
        self.content_ticks = 480 * 4 * 64

    # ---- mapping ----------------------------------------------------------------------
    def x_of(self, tick: float) -> float:
        return tick * self.ppx - self.scroll_x

    def tick_at(self, x: float) -> float:
        return (x + self.scroll_x) / self.ppx

    def y_of(self, pitch: int) -> float:
        """Top edge of the row for ``pitch``."""
        return (127 - pitch) * self.key_h - self.scroll_y

    def pitch_at(self, y: float) -> int:
        return max(0, min(127, 127 - int(math.floor((y + self.scroll_y) / self.key_h))))

    @property
    def content_width(self) -> int:
        return int(self.content_ticks * self.ppx) + 1

    @property
    def content_height(self) -> int:
        return int(128 * self.key_h) + 1

    # ---- zoom / scroll ---------------------------------------------------------------
    def set_scroll(self, x: int | None = None, y: int | None = None) -> None:
        moved = False
        if x is not None and x != self.scroll_x:
            self.scroll_x, moved = int(x), True
        if y is not None and y != self.scroll_y:
            self.scroll_y, moved = int(y), True
        if moved:
            self.changed.emit()

    def zoom_x(self, factor: float, anchor_x: float = 0.0) -> None:
        """Zoom horizontally keeping the tick under ``anchor_x`` (viewport pixels) in place."""
        tick = self.tick_at(anchor_x)
        self.ppx = max(self.MIN_PPX, min(self.MAX_PPX, self.ppx * factor))
        self.scroll_x = max(0, int(tick * self.ppx - anchor_x))
        self.zoomed.emit()
        self.changed.emit()

    def zoom_y(self, factor: float, anchor_y: float = 0.0) -> None:
        pos = (anchor_y + self.scroll_y) / self.key_h
        self.key_h = max(self.MIN_KEY, min(self.MAX_KEY, self.key_h * factor))
        self.scroll_y = max(0, int(pos * self.key_h - anchor_y))
        self.zoomed.emit()
        self.changed.emit()

    # ---- bars -------------------------------------------------------------------------
    def update_bars(self, song: Song) -> None:
        """Recompute the bar list to cover the song plus room to write on."""
        end = max(song.end_tick, 1)
        first = bars(song, until=end)
        bar_len = first[-1].length if first else 1920
        self.content_ticks = max(end + 16 * bar_len, 64 * bar_len)
        self._bars = bars(song, until=self.content_ticks)
        self._bar_starts = [b.start for b in self._bars]
        self.first_number = first_bar_number(song)  # 0 when the song starts with a pickup
        self.zoomed.emit()
        self.changed.emit()  # the ruler and the lane repaint with the new bar lines

    def bars_between(self, t0: float, t1: float) -> list[Bar]:
        if not self._bars:
            return []
        i = max(0, bisect.bisect_right(self._bar_starts, t0) - 1)
        j = bisect.bisect_right(self._bar_starts, t1)
        return self._bars[i:j]

    def bar_at(self, tick: float) -> Bar | None:
        if not self._bars:
            return None
        i = max(0, bisect.bisect_right(self._bar_starts, tick) - 1)
        return self._bars[i]
