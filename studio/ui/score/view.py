"""The score view: the song engraved by verovio, beside the piano roll.

Engraving runs in a helper process (``engrave.py``: MusicXML through music21, then verovio),
pages are rasterised on a Qt thread pool, so the GUI thread never waits. The view shows a
window of bars that follows the roll's scroll position and the playhead; a cursor follows
playback, notes selected in the roll are ringed, and clicking a note head selects that note.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QLoggingCategory, QObject, QPointF, QRectF, QRunnable, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from ..notice import ElidedLabel


N_BARS = 8
GAP = 8  # pixels between pages
QLoggingCategory.setFilterRules("qt.svg.warning=false")


def _engrave_job(song, width, first_bar, n_bars):
    from . import engrave as engrave_mod  # noqa: PLC0415 - the helper process imports verovio

    try:
        return engrave_mod.engrave(song, width, first_bar, n_bars)
    except Exception as exc:  # the view shows this line instead of the score
        return engrave_mod.Engraving([], {}, [], error=f"{type(exc).__name__}: {exc}", first_bar=first_bar)


class Engraver(QObject):
    """Runs one engraving at a time in a helper process; the latest request wins."""

    done = Signal(object, int)  # Engraving, revision

    def __init__(self, parent=None, inline: bool = False):
        super().__init__(parent)
        self.inline = inline
        self._pool = None  # a ProcessPoolExecutor, made on the first request
        self._busy = False
        self._pending = None

    def request(self, song, width: int, first_bar: int, revision: int) -> None:
        args = (song.copy(), int(width), int(first_bar), N_BARS)
        if self.inline:
            self.done.emit(_engrave_job(*args), revision)
            return
        if self._busy:
            self._pending = (args, revision)
            return
        self._submit(args, revision)

    def _submit(self, args, revision) -> None:
        if self._pool is None:
            import multiprocessing  # noqa: PLC0415 - not needed to show the first window
            from concurrent.futures import ProcessPoolExecutor  # noqa: PLC0415

            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self._busy = True
        fut = self._pool.submit(_engrave_job, *args)
        fut.add_done_callback(lambda f: self._relay_done(f, revision))

    def _relay_done(self, fut, revision) -> None:
        try:
            self._relay.emit(fut, revision)
        except RuntimeError:  # the view was closed while this was engraved
            pass

    _relay = Signal(object, int)

    def _finished(self, fut, revision) -> None:
        self._busy = False
        try:
            result = fut.result()
        except Exception as exc:  # the helper process died: start a new one next time
            from .engrave import Engraving  # noqa: PLC0415

            self._pool = None
            result = Engraving([], {}, [], error=f"engraving failed: {exc}")
        if self._pending is not None:
            args, rev = self._pending
            self._pending = None
            self._submit(args, rev)
        self.done.emit(result, revision)

    def connect_relay(self) -> None:
        self._relay.connect(self._finished, Qt.ConnectionType.QueuedConnection)

    @property
    def busy(self) -> bool:
        return self._busy or self._pending is not None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class _Raster(QRunnable):
    """Draws the pages' SVG into images off the GUI thread."""

    class Relay(QObject):
        done = Signal(object, object)  # Engraving, [QImage]

    def __init__(self, engraving):
        super().__init__()
        self.engraving = engraving
        self.relay = _Raster.Relay()

    def run(self) -> None:
        images = []
        for page in self.engraving.pages:
            r = QSvgRenderer(page.svg)
            img = QImage(max(1, int(page.width)), max(1, int(page.height)), QImage.Format.Format_ARGB32_Premultiplied)
            img.fill(QColor(255, 255, 255))
            p = QPainter(img)
            p.setRenderHint(QPainter.RenderHint.Antialiasing)
            r.render(p, QRectF(0, 0, page.width, page.height))
            p.end()
            images.append(img)
        self.relay.done.emit(self.engraving, images)


class _Canvas(QWidget):
    def __init__(self, score):
        super().__init__()
        self.score = score
        self.setMouseTracking(False)

    def sizeHint(self) -> QSize:
        return QSize(self.score.page_width(), self.score.total_height())

    def paintEvent(self, event) -> None:
        self.score.paint(QPainter(self), event.rect())

    def mousePressEvent(self, event) -> None:
        self.score.click(event.position())


class ScoreView(QWidget):
    noteClicked = Signal(int, int, int)  # track, tick, pitch
    engraved = Signal()  # a new engraving is on screen

    def __init__(self, doc, parent=None, inline: bool = False):
        super().__init__(parent)
        self.doc = doc
        self.engraving = None  # the Engraving on screen
        self.images: list[QImage] = []
        self.offsets: list[float] = []
        self.playhead = 0
        self.first_bar = 0
        self._shown_rev = -1
        self._rasters = []
        self.engraver = Engraver(self, inline=inline)
        self.engraver.connect_relay()
        self.engraver.done.connect(self._engraved)
        self.header = ElidedLabel("Score")  # one line; a long title is cut with "…" (full text in the tooltip)
        self.header.setStyleSheet("padding:3px 6px; color:#444; background:#eef0f4;")
        self.header.setFixedHeight(self.header.fontMetrics().height() + 8)
        self.canvas = _Canvas(self)
        self.area = QScrollArea()
        self.area.setWidget(self.canvas)
        self.area.setWidgetResizable(False)
        self.area.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.area.setStyleSheet("QScrollArea { background: #ffffff; }")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.header)
        lay.addWidget(self.area)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(350)
        self._debounce.timeout.connect(self.refresh_now)
        for sig in (doc.notesChanged, doc.tracksChanged, doc.mapsChanged):
            sig.connect(lambda *_: self.refresh())
        doc.selectionChanged.connect(self.canvas.update)
        self._last_width = 0
        self._stale = False
        # the assistant shows a take here: what to engrave instead of the song, and the words for it
        self.override = None  # callable -> Song, or None
        self.take_label = ""
        self._req = 0  # engraving requests, to know which one carried a take
        self._labels: dict[int, str] = {}

    # ---- engraving requests ------------------------------------------------------------
    def refresh(self) -> None:
        """Engrave again shortly (edits arriving in a burst cause one engraving)."""
        self._debounce.start()

    def _target_width(self) -> int:
        return max(300, self.area.viewport().width() - 16)

    @property
    def collapsed(self) -> bool:
        """Folded away in its splitter (or hidden) in a window on screen: nothing to engrave for."""
        return self.window().isVisible() and (not self.isVisible() or self.width() < 40)

    def refresh_now(self) -> None:
        if self.collapsed:
            self._stale = True  # engrave when it is shown again
            return
        self._stale = False
        width = self._target_width()
        self._last_width = width
        self.header.setText(self._title(busy=True))
        song = self.override() if self.override is not None else self.doc.song
        self._req += 1
        self._labels = {k: v for k, v in self._labels.items() if k > self._req - 8}
        self._labels[self._req] = self.take_label if self.override is not None else ""
        self.engraver.request(song, width, self.first_bar, self._req)

    def show_bar(self, bar: int) -> None:
        """Make sure bar ``bar`` (0-based) is in the engraved window."""
        e = self.engraving
        if e is not None and e.first_bar <= bar < e.last_bar and bar >= self.first_bar:
            return
        if bar != self.first_bar:
            self.first_bar = max(0, bar)
            self.refresh()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_canvas()
        if self._stale or abs(self._target_width() - self._last_width) > 40 or self._last_width > self._target_width():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def _title(self, busy: bool = False) -> str:
        """Bars first, then the take shown (if any), then the title: a narrow pane cuts the title."""
        from ...core.timing import first_bar_number

        e = self.engraving
        title = self.doc.song.title or "Score"
        parts = []
        if e and e.last_bar:
            first = first_bar_number(self.doc.song)
            parts.append(f"Bars {e.first_bar + first}–{e.last_bar - 1 + first}")
            if getattr(e, "label", ""):
                parts.append(e.label)
        parts.append(title)
        if e is not None and e.error:
            parts.append(e.error)
        return " · ".join(parts) + ("  (engraving…)" if busy else "")

    def _engraved(self, engraving, req: int) -> None:
        engraving.label = self._labels.get(req, "")
        job = _Raster(engraving)
        job.relay.done.connect(self._rastered, Qt.ConnectionType.QueuedConnection)
        self._rasters.append(job.relay)
        QThreadPool.globalInstance().start(job)

    def _rastered(self, engraving, images) -> None:
        self._rasters = [r for r in self._rasters if r is not self.sender()]
        self.engraving, self.images = engraving, images
        y, self.offsets = 0.0, []
        for page in engraving.pages:
            self.offsets.append(y)
            y += page.height + GAP
        self._fit_canvas()
        self.header.setText(self._title(busy=self.engraver.busy))
        if engraving.pages and abs(self._target_width() - self._last_width) > 40:
            self.refresh()  # the view was resized while this was being engraved (narrower pages are drawn smaller)
        self.canvas.update()
        self.engraved.emit()

    @property
    def zoom(self) -> float:
        """Pages wider than the view (it was resized while engraving) are drawn smaller until re-engraved."""
        vp = self.area.viewport().width() - 2
        return min(1.0, vp / self.page_width()) if self.engraving and self.engraving.pages else 1.0

    def canvas_point(self, x: float, y: float) -> QPointF:
        """Canvas pixels of a point given in page pixels stacked as in ``offsets`` (overlays use this)."""
        z = self.zoom
        return QPointF(x * z, y * z)

    def _fit_canvas(self) -> None:
        z = self.zoom
        self.canvas.resize(int(self.page_width() * z), int(self.total_height() * z))

    def page_width(self) -> int:
        return int(max((p.width for p in self.engraving.pages), default=300)) if self.engraving else 300

    def total_height(self) -> int:
        if not self.engraving or not self.engraving.pages:
            return 200
        return int(self.offsets[-1] + self.engraving.pages[-1].height)

    # ---- painting ----------------------------------------------------------------------
    def paint(self, p: QPainter, rect) -> None:
        p.fillRect(rect, QColor(255, 255, 255))
        e = self.engraving
        if e is None or not e.pages:
            p.setPen(QColor(120, 120, 130))
            msg = "Engraving…" if e is None else (e.error or "No notes in these bars")
            p.drawText(QRectF(0, 20, self.canvas.width(), 40), Qt.AlignmentFlag.AlignCenter, msg)
            p.end()
            return
        z = self.zoom
        p.scale(z, z)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, z < 1.0)
        top, bottom = rect.top() / z, rect.bottom() / z
        for img, y in zip(self.images, self.offsets):
            if y + img.height() >= top and y <= bottom:
                p.drawImage(QPointF(0, y), img)
        self._paint_selection(p)
        self._paint_cursor(p)
        p.end()

    def _paint_selection(self, p: QPainter) -> None:
        sel = {(n.start, n.pitch) for n in self.doc.selection}
        if not sel:
            return
        cur = self.doc.current_track
        p.setPen(QPen(QColor(255, 140, 0), 2))
        p.setBrush(QColor(255, 170, 40, 90))
        for n in self.engraving.notes.values():
            if n.staff == cur and (n.tick, n.pitch) in sel:
                c = QPointF(n.x, n.y + self.offsets[n.page])
                p.drawEllipse(c, 7, 6)

    def cursor_rect(self) -> QRectF | None:
        """Where the playback cursor goes for the current playhead (None outside the window)."""
        e = self.engraving
        if e is None or not e.timemap or not (e.start_tick <= self.playhead < e.end_tick):
            return None
        import bisect

        ticks = [t for t, _ in e.timemap]
        i = max(0, bisect.bisect_right(ticks, self.playhead) - 1)
        tick, ids = e.timemap[i]
        n = e.notes[ids[0]]
        x = n.x
        if i + 1 < len(e.timemap):  # glide towards the next onset on the same system
            t2, ids2 = e.timemap[i + 1]
            n2 = e.notes[ids2[0]]
            if n2.page == n.page and n2.system == n.system and t2 > tick:
                x += (n2.x - n.x) * (self.playhead - tick) / (t2 - tick)
        x0, y0, x1, y1 = e.pages[n.page].systems[n.system]
        off = self.offsets[n.page]
        return QRectF(x - 6, y0 + off, 12, y1 - y0)

    def _paint_cursor(self, p: QPainter) -> None:
        r = self.cursor_rect()
        if r is not None:
            p.fillRect(r, QColor(30, 120, 255, 70))

    def set_playhead(self, tick: int, follow: bool = False) -> None:
        self.playhead = int(tick)
        r = self.cursor_rect()
        if follow and r is None and self.engraving is not None:
            from ...core.timing import bar_of

            self.show_bar(bar_of(self.doc.song, self.playhead))
        if r is not None and follow:
            z = self.zoom
            self.area.ensureVisible(int(r.center().x() * z), int(r.center().y() * z), 20, int(r.height() * z / 2) + 10)
        self.canvas.update()

    # ---- clicking a note ------------------------------------------------------------------
    def note_at(self, pos: QPointF):
        e = self.engraving
        if e is None:
            return None
        best, best_d = None, 10.0 ** 2
        for n in e.notes.values():
            d = (n.x - pos.x()) ** 2 + (n.y + self.offsets[n.page] - pos.y()) ** 2
            if d < best_d and n.tick >= 0:
                best, best_d = n, d
        return best

    def click(self, pos: QPointF) -> None:
        """A click on the canvas (canvas pixels)."""
        z = self.zoom
        n = self.note_at(QPointF(pos.x() / z, pos.y() / z))
        if n is not None:
            self.noteClicked.emit(n.staff, n.tick, n.pitch)

    def close_engraver(self) -> None:
        self.engraver.shutdown()


def engraving_enabled() -> bool:
    return os.environ.get("STUDIO_SCORE", "1") != "0"
