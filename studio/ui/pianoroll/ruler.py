"""Bar/beat ruler above the roll. Click to move the playhead, drag to set a loop region,
right-click to clear the loop."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ...core.grid import SnapGrid
from .geometry import RollGeometry


def label_spacing(bars) -> int:
    """Ticks between bar numbers at the least: the shortest bar in view, a pickup aside."""
    full = [b.length for b in bars if b.index > 0 or len(bars) == 1]
    return min(full) if full else 1920


class Ruler(QWidget):
    seek = Signal(int)
    loopChanged = Signal(object)  # (start, end) ticks or None

    HEIGHT = 26

    def __init__(self, geom: RollGeometry, parent=None):
        super().__init__(parent)
        self.geom = geom
        self.playhead = 0
        self.loop: tuple[int, int] | None = None
        self.grid = 120
        self.snap = SnapGrid([], 120)
        self._press: float | None = None
        self._dragging = False
        self.setFixedHeight(self.HEIGHT)
        self.setToolTip("Click: move the playhead · drag: set the loop region · right-click: clear the loop")
        geom.changed.connect(self.update)
        self._font = QFont()
        self._font.setPixelSize(11)

    def sizeHint(self) -> QSize:
        return QSize(400, self.HEIGHT)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        g = self.geom
        w, h = self.width(), self.height()
        p.fillRect(self.rect(), QColor(236, 238, 242))
        if self.loop:
            a, b = self.loop
            p.fillRect(QRectF(g.x_of(a), 0, g.x_of(b) - g.x_of(a), h), QColor(80, 160, 255, 110))
        t0, t1 = g.tick_at(0), g.tick_at(w)
        p.setFont(self._font)
        bars = g.bars_between(t0, t1)
        # label every n-th bar so numbers never overlap
        bar_px = label_spacing(bars) * g.ppx
        every = 1
        while bar_px * every < 34:
            every *= 2
        for bar in bars:
            x = round(g.x_of(bar.start)) + 0.5
            p.setPen(QPen(QColor(90, 94, 104), 1))
            p.drawLine(QPointF(x, h * 0.35), QPointF(x, h))
            if bar.index % every == 0:
                p.setPen(QColor(40, 40, 50))
                p.drawText(QRectF(x + 3, 0, 60, h * 0.6), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                           str(bar.index + getattr(g, "first_number", 1)))
            beat = bar.meter.beat_ticks()
            if beat * g.ppx >= 8:
                p.setPen(QPen(QColor(150, 154, 164), 1))
                for t in range(bar.start + beat, bar.end, beat):
                    xb = round(g.x_of(t)) + 0.5
                    p.drawLine(QPointF(xb, h * 0.7), QPointF(xb, h))
        x = g.x_of(self.playhead)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(220, 40, 40))
        p.drawPolygon([QPointF(x - 6, h - 10), QPointF(x + 6, h - 10), QPointF(x, h)])
        p.setPen(QPen(QColor(160, 160, 170), 1))
        p.drawLine(0, h - 1, w, h - 1)
        p.end()

    def _snap(self, x: float) -> int:
        return max(0, self.snap.round(self.geom.tick_at(x)))

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self.loop = None
            self.loopChanged.emit(None)
            self.update()
            return
        self._press = event.position().x()
        self._dragging = False

    def mouseMoveEvent(self, event) -> None:
        if self._press is None:
            return
        x = event.position().x()
        if abs(x - self._press) > 4:
            self._dragging = True
            a, b = sorted((self._snap(self._press), self._snap(x)))
            if b > a:
                self.loop = (a, b)
                self.update()

    def mouseReleaseEvent(self, event) -> None:
        if self._press is None:
            return
        if self._dragging and self.loop:
            self.loopChanged.emit(self.loop)
        else:
            self.seek.emit(self._snap(event.position().x()))
        self._press = None
        self._dragging = False
