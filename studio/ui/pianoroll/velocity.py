"""Velocity lane under the roll: one bar per note of the current track.

Drag with the left button to set the velocities of the notes under the pointer (only selected
notes when there is a selection). Drag with the right button, or Shift+left, to draw a line:
the notes it spans get velocities along it (a crescendo or diminuendo ramp). Each drag is one
undo step, pushed on release.
"""

from __future__ import annotations

from PySide6.QtCore import QLineF, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ...core import edits
from .. import commands
from .geometry import RollGeometry, track_color

PAD = 6  # pixels above and below the 1..127 range


class VelocityLane(QWidget):
    def __init__(self, doc, geom: RollGeometry, view, parent=None):
        super().__init__(parent)
        self.doc, self.geom, self.view = doc, geom, view
        self.setMinimumHeight(70)
        self.setToolTip("Velocity: drag to set · right-drag or Shift+drag draws a ramp across the selection")
        self._paint: dict | None = None  # note -> new velocity while painting
        self._line: tuple[QPointF, QPointF] | None = None
        geom.changed.connect(self.update)
        doc.notesChanged.connect(lambda _t: self.update())
        doc.selectionChanged.connect(self.update)
        doc.currentTrackChanged.connect(lambda _i: self.update())
        self._font = QFont()
        self._font.setPixelSize(10)

    def sizeHint(self) -> QSize:
        return QSize(400, 100)

    # ---- coordinates ----------------------------------------------------------------
    def y_of(self, velocity: float) -> float:
        return PAD + (self.height() - 2 * PAD) * (1 - velocity / 127)

    def velocity_at(self, y: float) -> int:
        v = round(127 * (1 - (y - PAD) / max(1, self.height() - 2 * PAD)))
        return max(1, min(127, v))

    def _visible(self):
        g = self.geom
        return self.view.index.visible(self.doc.song, self.doc.current_track, g.tick_at(0), g.tick_at(self.width()))

    def _targets(self):
        sel = self.doc.selection
        notes = self._visible()
        return [n for n in notes if n in sel] if sel else notes

    # ---- painting -----------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        g = self.geom
        h = self.height()
        p.fillRect(self.rect(), QColor(246, 247, 250))
        p.setPen(QPen(QColor(220, 222, 228), 1, Qt.PenStyle.DotLine))
        for v in (32, 64, 96, 127):
            p.drawLine(QPointF(0, self.y_of(v)), QPointF(self.width(), self.y_of(v)))
        base = track_color(self.doc.song, self.doc.current_track)
        sel = self.doc.selection
        pending = self._pending()
        plain, chosen, heads, heads_sel = [], [], [], []
        bottom = h - PAD
        for n in self._visible():
            x = g.x_of(n.start) + 1
            y = self.y_of(pending.get(n, n.velocity))
            (chosen if n in sel else plain).append(QLineF(x, bottom, x, y))
            (heads_sel if n in sel else heads).append(QRectF(x - 2.5, y - 2.5, 5, 5))
        for lines, boxes, c in ((plain, heads, base), (chosen, heads_sel, QColor(255, 140, 0))):
            if lines:
                p.setPen(QPen(c.darker(140) if c is not base else c, 2))
                p.drawLines(lines)
                p.setBrush(c)
                p.drawRects(boxes)
        if self._line:
            p.setPen(QPen(QColor(20, 90, 200), 1.5, Qt.PenStyle.DashLine))
            p.drawLine(*self._line)
        p.setPen(QColor(120, 120, 130))
        p.setFont(self._font)
        p.drawText(QRectF(4, 2, 80, 14), Qt.AlignmentFlag.AlignLeft, "Velocity")
        p.end()

    def _pending(self) -> dict:
        if self._paint is not None:
            return self._paint
        if self._line is not None:
            return self._ramp()
        return {}

    def _ramp(self) -> dict:
        a, b = self._line
        if a.x() > b.x():
            a, b = b, a
        span = max(1.0, b.x() - a.x())
        out = {}
        for n in self._targets():
            x = self.geom.x_of(n.start)
            if a.x() - 2 <= x <= b.x() + 2:
                f = min(1.0, max(0.0, (x - a.x()) / span))
                out[n] = self.velocity_at(a.y() + (b.y() - a.y()) * f)
        return out

    # ---- mouse --------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        pos = event.position()
        line = event.button() == Qt.MouseButton.RightButton or (
            event.button() == Qt.MouseButton.LeftButton and event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if line:
            self._line = (pos, pos)
        elif event.button() == Qt.MouseButton.LeftButton:
            self._paint = {}
            self._paint_at(pos)
        self.update()

    def _paint_at(self, pos: QPointF) -> None:
        g = self.geom
        v = self.velocity_at(pos.y())
        for n in self._targets():
            if abs(g.x_of(n.start) - pos.x()) <= 4:
                self._paint[n] = v

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._paint is not None:
            self._paint_at(pos)
        elif self._line is not None:
            self._line = (self._line[0], pos)
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        self.mouseMoveEvent(event)  # the release point counts as the end of the stroke
        pending = self._pending()
        self._paint, self._line = None, None
        pending = {n: v for n, v in pending.items() if n.velocity != v}
        if pending:
            notes = list(pending)
            change = edits.set_velocity(self.doc.current_track, notes, [pending[n] for n in notes])
            keep = self.doc.selection - set(notes)
            commands.push_notes(self.doc, "Set velocity", change, select_added=bool(self.doc.selection))
            if keep:
                self.doc.set_selection(self.doc.selection | keep)
        self.update()
