"""The keyboard left of the roll: shows pitch names; clicking a key lets you hear it."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QWidget

from .geometry import BLACK, RollGeometry, pitch_name


class Keyboard(QWidget):
    keyPressed = Signal(int)  # pitch

    WIDTH = 64

    def __init__(self, geom: RollGeometry, parent=None):
        super().__init__(parent)
        self.geom = geom
        self.pressed: int | None = None
        self.setFixedWidth(self.WIDTH)
        self.setToolTip("Click a key to hear it")
        geom.changed.connect(self.update)
        self._font = QFont()
        self._font.setPixelSize(9)

    def sizeHint(self) -> QSize:
        return QSize(self.WIDTH, 400)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        g = self.geom
        w = self.width()
        p.fillRect(self.rect(), QColor(255, 255, 255))
        top, bottom = g.pitch_at(0), g.pitch_at(self.height())
        p.setFont(self._font)
        for pitch in range(bottom, top + 1):
            y = g.y_of(pitch)
            r = QRectF(0, y, w, g.key_h)
            if pitch == self.pressed:
                p.fillRect(r, QColor(255, 170, 40))
            elif pitch % 12 in BLACK:
                p.fillRect(QRectF(0, y, w * 0.62, g.key_h), QColor(40, 40, 46))
            if pitch % 12 in (0, 5):
                p.setPen(QPen(QColor(170, 170, 178), 1))
                p.drawLine(QPointF(0, y + g.key_h), QPointF(w, y + g.key_h))
            if pitch % 12 == 0 and g.key_h >= 6:
                p.setPen(QColor(60, 60, 70))
                p.drawText(r.adjusted(0, 0, -4, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                           pitch_name(pitch))
        p.setPen(QPen(QColor(150, 150, 160), 1))
        p.drawLine(w - 1, 0, w - 1, self.height())
        p.end()

    def mousePressEvent(self, event) -> None:
        self.pressed = self.geom.pitch_at(event.position().y())
        self.keyPressed.emit(self.pressed)
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        self.pressed = None
        self.update()

    def wheelEvent(self, event) -> None:
        g = self.geom
        g.set_scroll(y=max(0, min(g.content_height - self.height(), g.scroll_y - event.angleDelta().y() // 2)))
