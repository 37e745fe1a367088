"""Controller lane under the roll: the current track's sustain pedal, expression, volume, pan,
modulation, pitch bend or any other controller it has, for one controller at a time.

A pedal (sustain, sostenuto, soft) is drawn as a pedal line: a raised bar where it is down.
Other controllers are a step curve (a value holds until the next event); pitch bend is drawn
around its centre line.  Drag with the left button to draw: a pedal is held down over the
dragged span; a controller gets a point every grid step along the stroke.  Drag with the
right button to erase the events in a span.  Each stroke is one undo step.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF, QUndoCommand
from PySide6.QtWidgets import QComboBox, QWidget

from ...core.song import EXPRESSION, PAN, PITCH_BEND, SUSTAIN, VOLUME, Control, controller_name
from .geometry import RollGeometry, track_color

PAD = 6
PEDALS = (64, 66, 67)
DEFAULTS = (SUSTAIN, EXPRESSION, VOLUME, PAN, 1, PITCH_BEND)


def replace_span(controls: list[Control], number: int, lo: int, hi: int, new: list[Control]) -> list[Control]:
    """``controls`` with the events of ``number`` in ``lo..hi`` (inclusive) replaced by ``new``."""
    kept = [c for c in controls if not (c.number == number and lo <= c.tick <= hi)]
    return sorted(kept + new, key=lambda c: c.tick)


def pedal_span(controls: list[Control], number: int, lo: int, hi: int) -> list[Control]:
    """The pedal held down from ``lo`` to ``hi``: what was there in the span goes, and the pedal
    returns afterwards to where it was (down again at ``hi`` if it was down there)."""
    before = [c for c in controls if c.number == number and c.tick <= hi]
    was_down_after = bool(before) and before[-1].pedal_down
    new = [Control(lo, number, 127), Control(hi, number, 127 if was_down_after and hi > lo else 0)]
    if was_down_after:
        new = new[:1]
    return replace_span(controls, number, lo, hi, new)


class SetControls(QUndoCommand):
    """Replace one track's controller events (one stroke in the lane)."""

    def __init__(self, doc, index: int, new: list[Control], text: str):
        super().__init__(text)
        self.doc, self.index = doc, index
        self.old, self.new = list(doc.song.tracks[index].controls), list(new)

    def _set(self, controls) -> None:
        self.doc.song.tracks[self.index].controls = list(controls)
        self.doc.notify_notes({self.index})  # playback, autosave and the views follow note changes

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


class ControllerLane(QWidget):
    def __init__(self, doc, geom: RollGeometry, view, parent=None):
        super().__init__(parent)
        self.doc, self.geom, self.view = doc, geom, view
        self.number = SUSTAIN
        self._stroke: list[QPointF] | None = None
        self._erase: tuple[float, float] | None = None
        self.setMinimumHeight(60)
        self.setToolTip("Controllers: drag to draw (a pedal is held over the span) · right-drag erases")
        self.choice = QComboBox(self)
        self.choice.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.choice.activated.connect(lambda i: self.show_controller(self.choice.itemData(i)))
        self._font = QFont()
        self._font.setPixelSize(10)
        geom.changed.connect(self.update)
        doc.notesChanged.connect(lambda _t: self._refresh())
        doc.currentTrackChanged.connect(lambda _i: self._refresh(pick=True))
        doc.tracksChanged.connect(lambda: self._refresh(pick=True))
        self._refresh(pick=True)

    def sizeHint(self) -> QSize:
        return QSize(400, 90)

    # ---- which controller ----------------------------------------------------------------
    @property
    def track(self):
        tracks = self.doc.song.tracks
        return tracks[self.doc.current_track] if 0 <= self.doc.current_track < len(tracks) else None

    def _present(self) -> list[int]:
        t = self.track
        return sorted({c.number for c in t.controls}) if t is not None else []

    def _refresh(self, pick: bool = False) -> None:
        present = self._present()
        if pick and present and self.number not in present:
            self.number = SUSTAIN if SUSTAIN in present else present[0]
        numbers = list(DEFAULTS) + [n for n in present if n not in DEFAULTS]
        self.choice.blockSignals(True)
        self.choice.clear()
        for n in numbers:
            mark = " •" if n in present else ""
            self.choice.addItem(controller_name(n) + mark, n)
        self.choice.setCurrentIndex(max(0, numbers.index(self.number) if self.number in numbers else 0))
        self.choice.adjustSize()
        self.choice.blockSignals(False)
        self.update()

    def show_controller(self, number: int) -> None:
        self.number = int(number)
        self._refresh()

    # ---- coordinates ----------------------------------------------------------------------
    def _range(self) -> tuple[int, int]:
        return (-8192, 8191) if self.number == PITCH_BEND else (0, 127)

    def y_of(self, value: float) -> float:
        lo, hi = self._range()
        top = PAD + 18
        return top + (self.height() - top - PAD) * (1 - (value - lo) / (hi - lo))

    def value_at(self, y: float) -> int:
        lo, hi = self._range()
        top = PAD + 18
        f = 1 - (y - top) / max(1, self.height() - top - PAD)
        return max(lo, min(hi, round(lo + f * (hi - lo))))

    def _tick(self, x: float) -> int:
        g = self.geom
        grid = max(1, getattr(self.view, "grid", 0) or self.doc.song.ppq // 4)
        return max(0, int(round(g.tick_at(x) / grid)) * grid)

    # ---- painting --------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        p.fillRect(self.rect(), QColor(246, 247, 250))
        t = self.track
        w = self.width()
        base = track_color(self.doc.song, self.doc.current_track) if t is not None else QColor(60, 120, 200)
        events = [c for c in t.controls if c.number == self.number] if t is not None else []
        lo, hi = self._range()
        default = {SUSTAIN: 0, 66: 0, 67: 0, EXPRESSION: 127, PITCH_BEND: 0,
                   VOLUME: t.volume if t else 100, PAN: t.pan if t else 64}.get(self.number, 0)
        if self.number == PITCH_BEND:
            p.setPen(QPen(QColor(200, 202, 210), 1, Qt.PenStyle.DotLine))
            p.drawLine(QPointF(0, self.y_of(0)), QPointF(w, self.y_of(0)))
        g = self.geom
        if self.number in PEDALS:
            self._paint_pedal(p, events, base)
        else:
            pts = [QPointF(0, self.y_of(default))]
            value = default
            for c in events:
                x = g.x_of(c.tick)
                pts.append(QPointF(x, self.y_of(value)))
                value = c.value
                pts.append(QPointF(x, self.y_of(value)))
            pts.append(QPointF(w, self.y_of(value)))
            fill = QPolygonF(pts + [QPointF(w, self.y_of(lo if self.number != PITCH_BEND else 0)),
                                    QPointF(0, self.y_of(lo if self.number != PITCH_BEND else 0))])
            c = QColor(base)
            c.setAlpha(60)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(c)
            p.drawPolygon(fill)
            p.setPen(QPen(base.darker(130), 1.5))
            p.drawPolyline(QPolygonF(pts))
            p.setBrush(base)
            for c in events:
                x = g.x_of(c.tick)
                if -4 <= x <= w + 4:
                    p.drawRect(QRectF(x - 2, self.y_of(c.value) - 2, 4, 4))
        if self._stroke:
            p.setPen(QPen(QColor(20, 90, 200), 1.5, Qt.PenStyle.DashLine))
            p.drawPolyline(QPolygonF(self._stroke))
        if self._erase:
            a, b = sorted(self._erase)
            p.fillRect(QRectF(a, 0, b - a, self.height()), QColor(220, 60, 60, 50))
        p.end()

    def _paint_pedal(self, p: QPainter, events, base: QColor) -> None:
        g = self.geom
        up_y, down_y = self.y_of(8), self.y_of(110)
        down_at = None
        spans = []
        for c in events:
            if c.pedal_down and down_at is None:
                down_at = c.tick
            elif not c.pedal_down and down_at is not None:
                spans.append((down_at, c.tick))
                down_at = None
        if down_at is not None:
            spans.append((down_at, None))
        p.setPen(QPen(QColor(170, 172, 180), 1))
        p.drawLine(QPointF(0, up_y), QPointF(self.width(), up_y))
        fill = QColor(base)
        fill.setAlpha(90)
        for a, b in spans:
            xa = g.x_of(a)
            xb = g.x_of(b) if b is not None else self.width() + 2
            if xb < 0 or xa > self.width():
                continue
            p.fillRect(QRectF(xa, down_y, xb - xa, up_y - down_y), fill)
            p.setPen(QPen(base.darker(140), 2))
            # the pedal line: a hook down at the press, along the top while held, a hook up at the lift
            p.drawPolyline(QPolygonF([QPointF(xa, up_y), QPointF(xa, down_y), QPointF(xb, down_y), QPointF(xb, up_y)]))
        p.setPen(QColor(120, 120, 130))
        p.setFont(self._font)
        p.drawText(QRectF(self.choice.width() + 8, 2, 200, 14), Qt.AlignmentFlag.AlignLeft,
                   f"{len(spans)} pedal{'s' if len(spans) != 1 else ''}")

    # ---- mouse -------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        pos = event.position()
        if event.button() == Qt.MouseButton.LeftButton:
            self._stroke = [pos]
        elif event.button() == Qt.MouseButton.RightButton:
            self._erase = (pos.x(), pos.x())
        self.update()

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._stroke is not None:
            self._stroke.append(pos)
        elif self._erase is not None:
            self._erase = (self._erase[0], pos.x())
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        self.mouseMoveEvent(event)
        t = self.track
        stroke, erase = self._stroke, self._erase
        self._stroke = self._erase = None
        if t is not None and stroke:
            self.draw_stroke([(self._tick(q.x()), self.value_at(q.y())) for q in stroke])
        elif t is not None and erase:
            a, b = sorted(self._tick(x) for x in erase)
            self.erase_span(a, b)
        self.update()

    # ---- edits (also called by tests) ------------------------------------------------------------
    def draw_stroke(self, points: list[tuple[int, int]]) -> bool:
        """Apply a stroke of (tick, value) points to the current track as one undo step."""
        t = self.track
        if t is None or not points:
            return False
        ticks = [tk for tk, _v in points]
        lo, hi = min(ticks), max(ticks)
        if self.number in PEDALS:
            if hi <= lo:
                return False
            new = pedal_span(t.controls, self.number, lo, hi)
            text = f"Draw {controller_name(self.number).lower()}"
        else:
            by_tick: dict[int, int] = {}
            for tk, v in points:
                by_tick[tk] = v  # the last value drawn at a grid step wins
            drawn = [Control(tk, self.number, v) for tk, v in sorted(by_tick.items())]
            new = replace_span(t.controls, self.number, lo, hi, drawn)
            text = f"Draw {controller_name(self.number).lower()}"
        if new == t.controls:
            return False
        self.doc.undo.push(SetControls(self.doc, self.doc.current_track, new, text))
        return True

    def erase_span(self, lo: int, hi: int) -> bool:
        t = self.track
        if t is None:
            return False
        new = replace_span(t.controls, self.number, lo, hi, [])
        if new == t.controls:
            return False
        self.doc.undo.push(SetControls(self.doc, self.doc.current_track, new,
                                       f"Erase {controller_name(self.number).lower()}"))
        return True
