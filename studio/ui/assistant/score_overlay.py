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
            self._request()
        else:
            self.score.refresh_now()
        self._widget.update()

    def _request(self) -> None:
        if self.entry is None:
            return
        s = self.score
        lo = self.entry.diff.span[0]
        from ...core.timing import bar_of

        first = bar_of(self.doc.song, lo) if lo > 0 else 0
        if not (s.engraving is not None and s.engraving.first_bar <= first < s.engraving.last_bar):
            s.first_bar = max(0, first - 1)
        width = max(300, s.area.viewport().width() - 16)
        s.engraver.request(self.entry.applied(self.doc.song), width, s.first_bar, self.doc.revision)

    def _engraved(self) -> None:
        if self.entry is not None:
            s = self.score
            s.header.setText(f"{s.header.text()} · showing take {self.entry.number} (not applied)")
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
