"""A track's volume and pan as two small sliders for the track list; a change is one undo step
(pushed when a drag ends, or at once for a click or a key)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QSlider, QWidget


def pan_text(pan: int) -> str:
    if pan == 64:
        return "centre"
    return f"{round(abs(pan - 64) * 100 / 64)}% {'left' if pan < 64 else 'right'}"


class MixControls(QWidget):
    """Volume (0-127, General MIDI's CC 7) and pan (0 left, 64 centre, 127 right) of one track."""

    def __init__(self, doc, index: int, parent=None):
        super().__init__(parent)
        self.doc, self.index = doc, index
        t = doc.song.tracks[index]
        lay = QHBoxLayout(self)
        lay.setContentsMargins(2, 0, 2, 0)
        lay.setSpacing(4)
        self.volume = self._slider(t.volume, 42, "volume")
        self.pan = self._slider(t.pan, 28, "pan")
        lay.addWidget(self.volume)
        lay.addWidget(self.pan)
        self._tips()

    def _slider(self, value: int, width: int, attr: str) -> QSlider:
        s = QSlider(Qt.Orientation.Horizontal)
        s.setRange(0, 127)
        s.setValue(value)
        s.setFixedWidth(width)
        s.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        s.valueChanged.connect(lambda v, a=attr, s=s: (self._tips(), s.isSliderDown() or self._commit(a, v)))
        s.sliderReleased.connect(lambda a=attr, s=s: self._commit(a, s.value()))
        return s

    def _tips(self) -> None:
        self.volume.setToolTip(f"Volume {self.volume.value()} of 127")
        self.pan.setToolTip(f"Pan {pan_text(self.pan.value())} (double-click: centre)")

    def mouseDoubleClickEvent(self, event) -> None:
        if self.pan.geometry().contains(event.position().toPoint()):
            self.pan.setValue(64)

    def _commit(self, attr: str, value: int) -> None:
        from . import commands  # noqa: PLC0415

        tracks = self.doc.song.tracks
        if self.index < len(tracks) and getattr(tracks[self.index], attr) != value:
            self.doc.undo.push(commands.TrackProperty(self.doc, self.index, attr, int(value), f"Change track {attr}"))
