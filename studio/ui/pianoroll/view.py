"""The piano-roll canvas: a scroll area that paints only the notes and grid lines in view.

Notes are not QGraphicsItems: a 10,000-note song would make thousands of items. Each track's
notes are kept sorted by onset, so the visible ones are found by bisection and painted directly.
"""

from __future__ import annotations

import bisect

from PySide6.QtCore import QLineF, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen
from PySide6.QtWidgets import QAbstractScrollArea

from ...core import spelling
from ...core.grid import SnapGrid
from ...core.song import Note
from . import tools
from .geometry import BLACK, RollGeometry, track_color

EDGE_PX = 6  # grab zone at a note's right edge for resizing
# held while dragging: off the grid. Ctrl works under Linux window managers, which take Alt-drag
# to move windows; Alt still works where it reaches the application.
FREE = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier


class NoteIndex:
    """Onsets of each track's notes for bisection, rebuilt when a track changes."""

    def __init__(self):
        self._cache: dict[int, tuple[int, list[int], int]] = {}

    def invalidate(self, tracks=None) -> None:
        if tracks is None:
            self._cache.clear()
        else:
            for t in tracks:
                self._cache.pop(t, None)

    def visible(self, song, index: int, t0: float, t1: float) -> list[Note]:
        notes = song.tracks[index].notes
        entry = self._cache.get(index)
        if entry is None or entry[0] != len(notes) or entry[1] is None:
            starts = [n.start for n in notes]
            max_dur = max((n.duration for n in notes), default=0)
            entry = (len(notes), starts, max_dur)
            self._cache[index] = entry
        _, starts, max_dur = entry
        lo = bisect.bisect_left(starts, t0 - max_dur)
        hi = bisect.bisect_right(starts, t1)
        return [n for n in notes[lo:hi] if n.end > t0]


class PianoRollView(QAbstractScrollArea):
    keyPressed = Signal(object)  # QKeyEvent the view did not handle itself
    notePressed = Signal(int)  # pitch of a note that was clicked or drawn (for audition)

    def __init__(self, doc, geom: RollGeometry, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.geom = geom
        self.index = NoteIndex()
        self.tool = tools.SELECT
        self.grid = 120
        self.snap = SnapGrid([], 120)  # the snap points, laid on the song's bars by the editor
        self.default_velocity = 90
        self.playhead = 0
        self.overlays: list = []  # callables (painter, rect) drawn over the notes: the assistant's takes
        self.loop: tuple[int, int] | None = None
        self.gesture: tools.Gesture | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.viewport().setMouseTracking(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        geom.changed.connect(self._sync_scrollbars)
        geom.zoomed.connect(self._update_ranges)
        doc.notesChanged.connect(self._notes_changed)
        doc.tracksChanged.connect(self._tracks_changed)
        doc.selectionChanged.connect(self.viewport().update)
        doc.mapsChanged.connect(self.viewport().update)  # fermatas are drawn over the notes
        doc.currentTrackChanged.connect(lambda _i: self.viewport().update())
        self._font = QFont()
        self._font.setPixelSize(9)

    # ---- model updates --------------------------------------------------------------
    def _notes_changed(self, tracks) -> None:
        self.index.invalidate(tracks)
        self.viewport().update()

    def _tracks_changed(self) -> None:
        self.index.invalidate()
        self.viewport().update()

    def _update_ranges(self) -> None:
        vp = self.viewport()
        vp.update()
        hb, vb = self.horizontalScrollBar(), self.verticalScrollBar()
        hb.setRange(0, max(0, self.geom.content_width - vp.width()))
        hb.setPageStep(vp.width())
        hb.setSingleStep(max(10, vp.width() // 20))
        vb.setRange(0, max(0, self.geom.content_height - vp.height()))
        vb.setPageStep(vp.height())
        vb.setSingleStep(int(self.geom.key_h * 3))
        self._sync_scrollbars()

    def _sync_scrollbars(self) -> None:
        """Someone else moved the shared scroll position (the keyboard's wheel, a zoom): follow it."""
        hb, vb = self.horizontalScrollBar(), self.verticalScrollBar()
        if hb.value() != self.geom.scroll_x:
            hb.setValue(self.geom.scroll_x)
        if vb.value() != self.geom.scroll_y:
            vb.setValue(self.geom.scroll_y)

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        """Scrolling moves the pixels already painted and repaints only the strip that comes into view."""
        g = self.geom
        x, y = self.horizontalScrollBar().value(), self.verticalScrollBar().value()
        if (x, y) == (g.scroll_x, g.scroll_y) and (dx or dy):
            self.viewport().update()  # the geometry moved first (a zoom): everything changed
            return
        self.viewport().scroll(dx, dy)
        g.set_scroll(x, y)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._update_ranges()

    def center_on_pitch(self, pitch: int) -> None:
        y = (127 - pitch) * self.geom.key_h - self.viewport().height() / 2
        self.verticalScrollBar().setValue(int(y))

    def scroll_to_tick(self, tick: int, margin: float = 0.1) -> None:
        self.horizontalScrollBar().setValue(int(tick * self.geom.ppx - self.viewport().width() * margin))

    # ---- hit testing ----------------------------------------------------------------
    def note_at_tick(self, tick: float, pitch: int) -> Note | None:
        hits = [n for n in self.index.visible(self.doc.song, self.doc.current_track, tick, tick)
                if n.pitch == pitch and n.start <= tick < n.end]
        return hits[-1] if hits else None

    def note_at(self, pos: QPointF) -> tuple[Note | None, bool]:
        """The current track's note under ``pos`` and whether ``pos`` is on its right edge."""
        g = self.geom
        n = self.note_at_tick(g.tick_at(pos.x()), g.pitch_at(pos.y()))
        if n is None:
            return None, False
        right = g.x_of(n.end)
        width = right - g.x_of(n.start)
        return n, width > 2 * EDGE_PX and right - pos.x() <= EDGE_PX or width <= 2 * EDGE_PX and right - pos.x() <= width / 3

    # ---- mouse ----------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        self.setFocus()
        pos = event.position()
        g = self.geom
        tick, pitch = g.tick_at(pos.x()), g.pitch_at(pos.y())
        mods = event.modifiers()
        free = bool(mods & FREE)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        note, on_edge = self.note_at(pos)
        doc = self.doc
        if event.button() == Qt.MouseButton.RightButton or self.tool == tools.ERASE:
            self.gesture = tools.EraseGesture(self, tick, pitch)
        elif event.button() != Qt.MouseButton.LeftButton:
            return
        elif note is not None:
            if shift:
                sel = set(doc.selection)
                sel.symmetric_difference_update({note})
                doc.set_selection(sel)
            elif note not in doc.selection:
                doc.set_selection({note})
            if note in doc.selection:
                group = doc.selected_notes()
                if on_edge:
                    self.gesture = tools.ResizeGesture(self, group, note, tick)
                else:
                    self.gesture = tools.MoveGesture(self, group, note, tick, pitch)
                    self.notePressed.emit(note.pitch)
        elif self.tool == tools.DRAW:
            self.gesture = tools.DrawGesture(self, tick, pitch, free)
            self.notePressed.emit(pitch)
        else:
            self.gesture = tools.RubberBandGesture(self, tick, pitch, shift)
        if self.gesture is not None:
            self.gesture.free = free  # Ctrl/Alt held at the press keeps the whole drag off the grid
        self.viewport().update()

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self.gesture is None:
            note, edge = self.note_at(pos)
            if self.tool == tools.ERASE:
                shape = Qt.CursorShape.CrossCursor
            elif note is not None:
                shape = Qt.CursorShape.SizeHorCursor if edge else Qt.CursorShape.SizeAllCursor
            else:
                shape = Qt.CursorShape.CrossCursor if self.tool == tools.DRAW else Qt.CursorShape.ArrowCursor
            self.viewport().setCursor(shape)
            return
        free = bool(event.modifiers() & FREE) or self.gesture.free
        g = self.geom
        self.gesture.move(g.tick_at(pos.x()), g.pitch_at(pos.y()), free)
        self._autoscroll(pos)
        self.viewport().update()

    def _autoscroll(self, pos: QPointF) -> None:
        vp = self.viewport()
        hb, vb = self.horizontalScrollBar(), self.verticalScrollBar()
        if pos.x() > vp.width() - 10:
            hb.setValue(hb.value() + 20)
        elif pos.x() < 10:
            hb.setValue(hb.value() - 20)
        if pos.y() > vp.height() - 10:
            vb.setValue(vb.value() + 10)
        elif pos.y() < 10:
            vb.setValue(vb.value() - 10)

    def mouseReleaseEvent(self, event) -> None:
        gesture, self.gesture = self.gesture, None
        if gesture is not None:
            gesture.release()
        self.viewport().update()

    def mouseDoubleClickEvent(self, event) -> None:
        """Double-click a faint note of another track to edit that track."""
        g = self.geom
        pos = event.position()
        tick, pitch = g.tick_at(pos.x()), g.pitch_at(pos.y())
        song, cur = self.doc.song, self.doc.current_track
        if self.note_at(pos)[0] is not None:
            return
        for i in range(len(song.tracks)):
            if i == cur:
                continue
            hit = [n for n in self.index.visible(song, i, tick, tick) if n.pitch == pitch and n.start <= tick < n.end]
            if hit:
                self.doc.set_current_track(i)
                self.doc.set_selection(hit[-1:])
                return

    def wheelEvent(self, event) -> None:
        mods = event.modifiers()
        dy = event.angleDelta().y() or event.angleDelta().x()
        if mods & Qt.KeyboardModifier.ControlModifier:
            factor = 1.25 if dy > 0 else 0.8
            pos = event.position()
            if mods & Qt.KeyboardModifier.ShiftModifier:
                self.geom.zoom_y(factor, pos.y())
            else:
                self.geom.zoom_x(factor, pos.x())
            event.accept()
        elif mods & Qt.KeyboardModifier.ShiftModifier:
            hb = self.horizontalScrollBar()
            hb.setValue(hb.value() - dy)
            event.accept()
        else:
            super().wheelEvent(event)

    def keyPressEvent(self, event) -> None:
        self.keyPressed.emit(event)
        if not event.isAccepted():
            super().keyPressEvent(event)

    # ---- painting ---------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self.viewport())
        rect = event.rect()
        g = self.geom
        w, h = self.viewport().width(), self.viewport().height()
        t0, t1 = g.tick_at(rect.left()), g.tick_at(rect.right() + 1)
        top_pitch, bottom_pitch = g.pitch_at(rect.top()), g.pitch_at(rect.bottom())
        self._paint_rows(p, rect, top_pitch, bottom_pitch, w)
        self._paint_grid(p, t0, t1, h)
        if self.loop:
            a, b = self.loop
            p.fillRect(QRectF(g.x_of(a), 0, g.x_of(b) - g.x_of(a), h), QColor(80, 160, 255, 28))
        song, cur = self.doc.song, self.doc.current_track
        for i in range(len(song.tracks)):
            if i != cur:
                self._paint_ghosts(p, i, t0, t1, top_pitch, bottom_pitch)
        self._paint_current(p, cur, t0, t1, top_pitch, bottom_pitch)
        self._paint_fermatas(p, cur, t0, t1)
        gest = self.gesture
        if gest is not None and gest.band is not None and not gest.band.isNull():
            b = gest.band
            r = QRectF(QPointF(g.x_of(b.left()), g.y_of(int(b.bottom()))),
                       QPointF(g.x_of(b.right()), g.y_of(int(b.top())) + g.key_h))
            p.setPen(QPen(QColor(40, 110, 220), 1))
            p.setBrush(QColor(40, 110, 220, 40))
            p.drawRect(r)
        for paint in self.overlays:
            p.save()
            paint(p, rect)
            p.restore()
        x = g.x_of(self.playhead)
        if -2 <= x <= w + 2:
            p.setPen(QPen(QColor(220, 40, 40), 2))
            p.drawLine(QPointF(x, 0), QPointF(x, h))
        p.end()

    def _paint_rows(self, p, rect, top_pitch, bottom_pitch, w) -> None:
        g = self.geom
        p.fillRect(rect, QColor(250, 250, 250))
        black = QColor(232, 234, 238)
        line = QColor(215, 218, 224)
        for pitch in range(bottom_pitch, top_pitch + 1):
            y = g.y_of(pitch)
            if pitch % 12 in BLACK:
                p.fillRect(QRectF(0, y, w, g.key_h), black)
            if pitch % 12 in (0, 5):  # line under C and F
                p.setPen(QPen(line if pitch % 12 == 5 else QColor(190, 194, 202), 1))
                p.drawLine(QPointF(0, y + g.key_h), QPointF(w, y + g.key_h))

    def _paint_grid(self, p, t0, t1, h) -> None:
        g = self.geom
        ppx, sx = g.ppx, g.scroll_x
        subs, beats, bars_ = [], [], []
        step = self.snap.step or 0  # "Bar": the bar lines only
        for bar in g.bars_between(t0, t1):
            beat = bar.meter.beat_ticks()
            if step and step * ppx >= 6:
                for t in range(bar.start + step, bar.end, step):
                    if (t - bar.start) % beat:
                        subs.append(round(t * ppx - sx) + 0.5)
            if beat * ppx >= 4:
                beats.extend(round(t * ppx - sx) + 0.5 for t in range(bar.start + beat, bar.end, beat))
            bars_.append(round(bar.start * ppx - sx) + 0.5)
        for xs, color in ((subs, QColor(222, 224, 230)), (beats, QColor(184, 188, 198)), (bars_, QColor(120, 124, 134))):
            if xs:
                p.setPen(QPen(color, 1))
                p.drawLines([QLineF(x, 0, x, h) for x in xs])

    def _note_rect(self, n: Note) -> QRectF:
        g = self.geom
        x0 = n.start * g.ppx - g.scroll_x
        w = n.duration * g.ppx - 1
        return QRectF(x0, (127 - n.pitch) * g.key_h - g.scroll_y + 1, w if w > 2.0 else 2.0,
                      g.key_h - 1 if g.key_h > 3 else 2.0)

    def fermata_rects(self, cur: int, t0: int, t1: int) -> list[QRectF]:
        """Where the fermata marks go: just above each note of the current track that carries one."""
        song = self.doc.song
        if not song.fermatas:
            return []
        out = []
        for n in self.index.visible(song, cur, t0, t1):
            if song.has_fermata(n.start):
                r = self._note_rect(n)
                w = max(8.0, min(16.0, r.width()))
                out.append(QRectF(r.left() + min(r.width(), 16.0) / 2 - w / 2, r.top() - w * 0.6 - 2, w, w * 0.6))
        return out

    def _paint_fermatas(self, p, cur, t0, t1) -> None:
        """A small fermata (an arc over a dot) above each note carrying one."""
        rects = self.fermata_rects(cur, t0, t1)
        if not rects:
            return
        p.save()
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(30, 30, 40), 1.5))
        p.setBrush(Qt.BrushStyle.NoBrush)
        for r in rects:
            p.drawArc(QRectF(r.left(), r.top(), r.width(), r.height() * 2), 0, 180 * 16)
            p.setBrush(QColor(30, 30, 40))
            d = max(2.0, r.width() / 6)
            p.drawEllipse(QPointF(r.center().x(), r.bottom() - d / 2), d / 2, d / 2)
            p.setBrush(Qt.BrushStyle.NoBrush)
        p.restore()

    def _paint_ghosts(self, p, i, t0, t1, top_pitch, bottom_pitch) -> None:
        c = track_color(self.doc.song, i)
        c.setAlpha(60)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(c)
        rect = self._note_rect
        rects = [rect(n) for n in self.index.visible(self.doc.song, i, t0, t1) if bottom_pitch <= n.pitch <= top_pitch]
        if rects:
            p.drawRects(rects)

    def _velocity_brushes(self, base: QColor) -> list[QColor]:
        """Fill colours by velocity (16 steps): soft notes pale, loud notes saturated."""
        key = base.rgb()
        if getattr(self, "_brush_key", None) != key:
            out = []
            for i in range(16):
                c = QColor(base)
                c.setHsv(c.hue(), int(60 + 195 * (i + 0.5) / 16), c.value())
                out.append(c)
            self._brush_key, self._brushes = key, out
        return self._brushes

    def _paint_current(self, p, cur, t0, t1, top_pitch, bottom_pitch) -> None:
        g = self.geom
        gest = self.gesture
        hidden = gest.hidden if gest is not None else frozenset()
        base = track_color(self.doc.song, cur)
        sel = self.doc.selection
        rect = self._note_rect
        notes = [n for n in self.index.visible(self.doc.song, cur, t0, t1)
                 if bottom_pitch <= n.pitch <= top_pitch and n not in hidden]
        if hidden:  # the notes being dragged stay as faint outlines where they were
            p.setPen(QPen(base.darker(130), 1, Qt.PenStyle.DashLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRects([rect(n) for n in hidden])
        preview = list(gest.preview) if gest is not None else []
        buckets: list[list[QRectF]] = [[] for _ in range(16)]
        chosen: list[QRectF] = []
        for n in notes:
            if n in sel:
                chosen.append(rect(n))
            else:
                buckets[min(15, n.velocity // 8)].append(rect(n))
        chosen += [rect(n) for n in preview]
        p.setPen(QPen(base.darker(170), 1))
        for fill, rects in zip(self._velocity_brushes(base), buckets):
            if rects:
                p.setBrush(fill)
                p.drawRects(rects)
        if chosen:
            p.setPen(QPen(QColor(150, 70, 0), 1.5))
            p.setBrush(QColor(255, 170, 40))
            p.drawRects(chosen)
        if g.key_h >= 10 and 28 / g.ppx < 4 * 480 * 4:  # names fit in notes at least 28 px wide
            p.setFont(self._font)
            names = [(rect(n), n, n in sel) for n in notes + preview if n.duration * g.ppx > 29]
            key = self.doc.song.key_signatures[0] if self.doc.song.key_signatures else None
            tonic, minor = (key.tonic, key.minor) if key is not None else ("C", False)

            def spelled(pitch: int) -> str:  # as the score spells it: B♭ in C major, not A#
                return spelling.name(pitch, tonic, minor)
            flags = Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft
            for r, n, selected in names:
                p.setPen(QColor(30, 30, 30) if selected or n in preview else QColor(255, 255, 255))
                p.drawText(r.adjusted(3, 0, -2, 0), flags, spelled(n.pitch))
