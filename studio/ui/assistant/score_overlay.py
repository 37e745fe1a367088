"""Showing the auditioned take in the score view.

While a take is picked, the score engraves the song *with the take applied* (nothing in the
document changes) and rings the note heads the take adds (green) or changes (violet); the
header says that a take is shown.  Picking no take engraves the song again.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

from .overlay import ADDED, CHANGED


class _Marks(QWidget):
    def __init__(self, canvas, owner):
        super().__init__(canvas)
        self.owner = owner
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setGeometry(canvas.rect())
        canvas.installEventFilter(self)
        self.show()

    def eventFilter(self, obj, event) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.setGeometry(obj.rect())
            self.raise_()
        return False

    def paintEvent(self, _event) -> None:
        marks = self.owner.marks()
        if not marks:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        for x, y, colour in marks:
            fill = QColor(colour)
            fill.setAlpha(70)
            p.setPen(QPen(colour, 2))
            p.setBrush(fill)
            p.drawEllipse(QPointF(x, y), 7, 6)
        p.end()


class ScoreOverlay(QObject):
    def __init__(self, score, doc):
        super().__init__(score)
        self.score = score
        self.doc = doc
        self.entry = None
        self._want: dict = {}  # (staff, tick, pitch) -> colour
        self._widget = _Marks(score.canvas, self)
        self._again = QTimer(self)
        self._again.setSingleShot(True)
        self._again.setInterval(600)  # after the score's own re-engraving of an edit
        self._again.timeout.connect(self._request)
        score.engraved.connect(self._engraved)
        doc.notesChanged.connect(lambda *_: self._again.start() if self.entry is not None else None)

    def set_take(self, entry) -> None:
        self.entry = entry
        self._want = {}
        if entry is not None:
            d = entry.diff
            for t in d.tracks:
                for n in t.added:
                    self._want[(t.song_track, n.start, n.pitch)] = ADDED
                for _old, n in t.changed:
                    self._want[(t.song_track, n.start, n.pitch)] = CHANGED
            entry_ = entry
            self.score.override = lambda: entry_.applied(self.doc.song)  # every re-engraving shows the take
            self.score.take_label = f"take {entry.number} (not applied)"
            self._move_to_take()
        else:
            self.score.override = None
            self.score.take_label = ""
        self.score.refresh_now()
        self._widget.update()

    def _move_to_take(self) -> None:
        """Engrave from the bar before the take's first change, so its new bars are in view."""
        from ...core.timing import bar_of

        lo = self.entry.diff.span[0]
        first = bar_of(self.entry.applied(self.doc.song), lo) if lo > 0 else 0
        self.score.first_bar = max(0, first - 1)

    def _request(self) -> None:
        if self.entry is not None:
            self.score.refresh_now()

    def _engraved(self) -> None:
        self._widget.raise_()
        self._widget.update()

    def marks(self) -> list:
        e = self.score.engraving
        if self.entry is None or e is None or not self._want:
            return []
        out = []
        offsets = self.score.offsets
        for n in e.notes.values():
            col = self._want.get((n.staff, n.tick, n.pitch))
            if col is not None and n.page < len(offsets):
                out.append((n.x, n.y + offsets[n.page], col))
        return out
