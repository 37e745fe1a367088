"""Drawing a take and the voice-leading marks over the piano roll.

:class:`RollOverlay` paints inside the roll's own paint pass (the view's ``overlays`` hook),
so it scrolls and zooms with the notes and never takes a mouse event; it draws

* the selected take as a note-level diff: added notes green, removed notes red and hatched,
  changed notes violet (the old note as a dashed outline, the new one filled); the notes of
  tracks the take would add are green too, each marked with its track's initial (A, T, B);
* the checker's marks: a box around the voices involved over the issue's span, and for
  parallels a line joining the two voices at both chords; the issue picked in the list is
  drawn stronger.
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QWidget

from ...core.song import Note

# diff colours: distinct from the roll's own orange selection and its track palette
ADDED = QColor(34, 160, 70)
REMOVED = QColor(214, 48, 64)
CHANGED = QColor(120, 70, 225)
MARK = QColor(200, 30, 140)
KIND_SHORT = {"parallel_fifths": "P5", "parallel_octaves": "P8", "crossing": "cross", "spacing": "space",
              "range": "range", "leading_tone": "LT", "non_tertian": "chord"}


class _Legend(QWidget):
    """The key to the diff colours, pinned to the roll's top-right corner (a child of the scroll
    area, not of its viewport, so scrolling the notes does not move it)."""

    def __init__(self, overlay):
        super().__init__(overlay.view)
        self.overlay = overlay
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._font = QFont()
        self._font.setPixelSize(10)
        self.hide()

    def place(self) -> None:
        e = self.overlay.entry
        if e is None:
            self.hide()
            return
        fm = QFontMetrics(self._font)
        title, items = _legend_text(e)
        w = max(fm.horizontalAdvance(title), sum(fm.horizontalAdvance(t) + 26 for _, t in items)) + 18
        h = 2 * fm.height() + 16
        vp = self.overlay.view.viewport().geometry()
        self.setGeometry(vp.right() - w - 8, vp.top() + 8, w, h)
        self.show()
        self.raise_()
        self.update()

    def paintEvent(self, _event) -> None:
        e = self.overlay.entry
        if e is None:
            return
        p = QPainter(self)
        p.setFont(self._font)
        fm = p.fontMetrics()
        title, items = _legend_text(e)
        r = QRectF(0.5, 0.5, self.width() - 1, self.height() - 1)
        p.setPen(QPen(QColor(120, 120, 120), 1))
        p.setBrush(QColor(255, 255, 255, 240))
        p.drawRoundedRect(r, 4, 4)
        p.setPen(QColor(30, 30, 30))
        p.drawText(QPointF(8, 5 + fm.ascent()), title)
        x, y = 8.0, 9.0 + fm.height()
        for col, text in items:
            p.setPen(QPen(col.darker(150), 1))
            p.setBrush(col)
            p.drawRect(QRectF(x, y + 2, 12, fm.height() - 4))
            p.setPen(QColor(30, 30, 30))
            p.drawText(QPointF(x + 16, y + fm.ascent()), text)
            x += fm.horizontalAdvance(text) + 26
        p.end()


def _legend_text(e):
    c = e.diff.counts()
    items = [(ADDED, f"added {c['added']}"), (REMOVED, f"removed {c['removed']}"), (CHANGED, f"changed {c['changed']}")]
    return f"Take {e.number} (not applied: Accept to keep it)", items


class RollOverlay(QObject):
    """Paints through the roll view's ``overlays`` hook, inside its own paint pass, so that the
    take and the marks scroll with the notes."""

    def __init__(self, view, doc):
        super().__init__(view)
        self.view = view
        self.doc = doc
        self.geom = view.geom
        self.entry = None  # TakeEntry shown, or None
        self.issues: list = []  # voiceleading.Issue
        self.issue_parts: list[list[Note]] = []  # the four voices the issues refer to
        self.current_issue: int = -1
        self._shapes: list = []
        self._longest: list[int] = []
        self._label_cache = None
        self._font = QFont()
        self._font.setPixelSize(10)
        self._bold = QFont(self._font)
        self._bold.setBold(True)
        self.legend = _Legend(self)
        view.overlays.append(self.paint)
        view.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if obj is self.view and event.type() == QEvent.Type.Resize:
            self.legend.place()
        return False

    def update(self) -> None:
        self.view.viewport().update()

    # ---- state ------------------------------------------------------------------------
    def set_take(self, entry) -> None:
        self.entry = entry
        self.legend.place()
        self.update()

    def set_issues(self, issues, parts, current: int = -1) -> None:
        self.issues, self.issue_parts, self.current_issue = list(issues), [list(p) for p in parts], current
        self._longest = [max((n.duration for n in p), default=0) for p in self.issue_parts]
        self._shapes = [self._shape(iss) for iss in self.issues]
        self.update()

    def _shape(self, iss):
        """(lowest pitch, highest pitch, [(tick, pitch a, pitch b)]) of an issue, or None."""
        notes = []
        for v in iss.voices:
            part = self.issue_parts[v] if v < len(self.issue_parts) else []
            longest = self._longest[v] if v < len(self._longest) else 0
            j = bisect.bisect_left(part, iss.end, key=lambda n: n.start)  # notes before j start before the end
            while j > 0 and part[j - 1].start + longest > iss.tick:
                j -= 1
                if part[j].end > iss.tick:
                    notes.append(part[j])
        if not notes:
            return None
        links = []
        if iss.kind in ("parallel_fifths", "parallel_octaves") and len(iss.voices) == 2:
            for tick in (iss.tick, iss.end):
                a, b = (self._sounding(v, tick) for v in iss.voices)
                if a is not None and b is not None:
                    links.append((tick, a.pitch, b.pitch))
        return min(n.pitch for n in notes), max(n.pitch for n in notes), links

    def set_current_issue(self, i: int) -> None:
        self.current_issue = i
        self.update()

    # ---- painting ---------------------------------------------------------------------
    def _rect(self, n: Note) -> QRectF:
        g = self.geom
        x0 = g.x_of(n.start)
        return QRectF(x0, g.y_of(n.pitch) + 1, max(3.0, g.x_of(n.end) - x0 - 1), max(3.0, g.key_h - 1))

    def _visible(self, notes, t0, t1):
        return [n for n in notes if n.end > t0 and n.start < t1]

    def paint(self, p: QPainter, rect) -> None:
        if not self.issues and self.entry is None:
            return
        g = self.geom
        t0, t1 = g.tick_at(rect.left() - 4), g.tick_at(rect.right() + 4)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        if self.issues:
            self._paint_issues(p, t0, t1)
        if self.entry is not None:
            self._paint_take(p, t0, t1)

    def _paint_take(self, p: QPainter, t0: float, t1: float) -> None:
        d = self.entry.diff
        p.setFont(self._bold)
        show_letters = self.geom.key_h >= 9
        for k, tr in enumerate(d.new_tracks):
            # a new track's notes are all "added": green, a shade per track, its initial inside
            fill = QColor(ADDED).lighter(100 + 18 * (k % 4))
            fill.setAlpha(225)
            p.setPen(QPen(ADDED.darker(170), 1.5))
            p.setBrush(fill)
            vis = self._visible(tr.notes, t0, t1)
            rects = [self._rect(n) for n in vis]
            for r in rects:
                p.drawRect(r)
            if show_letters:
                p.setPen(QColor(255, 255, 255))
                letter = (tr.name[:1] or "?").upper()
                for r in rects:
                    if r.width() >= 10:
                        p.drawText(r.adjusted(2, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, letter)
        veil = QColor(250, 250, 250, 170)  # the song's notes the take replaces fade back
        for td in d.tracks:
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(veil)
            for n in self._visible(td.all_removed, t0, t1):
                p.drawRect(self._rect(n).adjusted(-1, -1, 1, 1))
            hatch = QBrush(REMOVED, Qt.BrushStyle.BDiagPattern)
            p.setPen(QPen(REMOVED, 1.5, Qt.PenStyle.DashLine))
            p.setBrush(hatch)
            for n in self._visible(td.removed, t0, t1):
                p.drawRect(self._rect(n))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(CHANGED.darker(130), 1.5, Qt.PenStyle.DashLine))
            for old, _new in td.changed:
                if old.end > t0 and old.start < t1:
                    p.drawRect(self._rect(old))
            fill = QColor(CHANGED)
            fill.setAlpha(220)
            p.setPen(QPen(CHANGED.darker(160), 1.5))
            p.setBrush(fill)
            for _old, new in td.changed:
                if new.end > t0 and new.start < t1:
                    p.drawRect(self._rect(new))
            fill = QColor(ADDED)
            fill.setAlpha(220)
            p.setPen(QPen(ADDED.darker(160), 1.5))
            p.setBrush(fill)
            for n in self._visible(td.added, t0, t1):
                p.drawRect(self._rect(n))

    def _sounding(self, v: int, tick: int) -> Note | None:
        part = self.issue_parts[v] if v < len(self.issue_parts) else []
        i = bisect.bisect_right(part, tick, key=lambda n: n.start)
        for n in reversed(part[max(0, i - 8):i]):
            if n.start <= tick < n.end:
                return n
        return None

    def _paint_issues(self, p: QPainter, t0: float, t1: float) -> None:
        g = self.geom
        p.setFont(self._bold)
        shown = self._labels(p.fontMetrics())
        order = [i for i in range(len(self.issues)) if i != self.current_issue]
        if 0 <= self.current_issue < len(self.issues):
            order.append(self.current_issue)  # drawn last, on top
        for i in order:
            iss = self.issues[i]
            if iss.end <= t0 or iss.tick >= t1:
                continue
            strong = i == self.current_issue
            shape = self._shapes[i] if i < len(self._shapes) else None
            if shape is None:
                continue
            lo, hi, links = shape
            x0, x1 = g.x_of(iss.tick), g.x_of(iss.end)
            r = QRectF(x0 - 2, g.y_of(hi) - 3, max(6.0, x1 - x0 + 4), g.y_of(lo) - g.y_of(hi) + g.key_h + 6)
            fill = QColor(MARK)
            fill.setAlpha(60 if strong else 18)
            p.setPen(QPen(MARK, 2.5 if strong else 1.0, Qt.PenStyle.SolidLine if strong else Qt.PenStyle.DashLine))
            p.setBrush(fill)
            p.drawRoundedRect(r, 3, 3)
            if links:
                p.setPen(QPen(MARK, 2.0 if strong else 1.2))
                for tick, a, b in links:
                    x = g.x_of(tick) + 4
                    p.drawLine(QPointF(x, g.y_of(a) + g.key_h / 2), QPointF(x, g.y_of(b) + g.key_h / 2))
            label = KIND_SHORT.get(iss.kind, iss.kind)
            if strong or shown[i]:
                if strong:
                    fm = p.fontMetrics()
                    lr = QRectF(r.left() + 1, r.top() - 3 - fm.ascent(), fm.horizontalAdvance(label) + 2, fm.height())
                    p.fillRect(lr.adjusted(-2, 0, 2, 0), QColor(255, 255, 255, 220))
                p.setPen(MARK.darker(140))
                p.drawText(QPointF(r.left() + 1, r.top() - 3), label)

    def _labels(self, fm) -> list[bool]:
        """Which issues get a label: greedily, in order, those whose label does not overlap one
        already placed.  Worked out in content coordinates for the whole piece (cached per zoom),
        so a label never depends on which part of the roll happens to be repainted."""
        g = self.geom
        key = (g.ppx, g.key_h, id(self.issues), len(self.issues))
        if self._label_cache is not None and self._label_cache[0] == key:
            return self._label_cache[1]
        placed: list[QRectF] = []
        out = []
        for iss, shape in zip(self.issues, self._shapes):
            if shape is None:
                out.append(False)
                continue
            label = KIND_SHORT.get(iss.kind, iss.kind)
            x = iss.tick * g.ppx - 1
            y = (127 - shape[1]) * g.key_h - 6 - fm.ascent()
            lr = QRectF(x, y, fm.horizontalAdvance(label) + 2, fm.height())
            # only nearby labels can overlap: look back over the last few placed ones
            ok = not any(lr.intersects(o) for o in placed[-40:])
            if ok:
                placed.append(lr)
            out.append(ok)
        self._label_cache = (key, out)
        return out
