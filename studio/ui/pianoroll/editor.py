"""The piano-roll editor: ruler, keyboard, canvas and velocity lane in one widget, plus the
editing operations that the menus and the keyboard share (copy, paste, transpose, quantize...)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from ...core import edits
from ...core.grid import SnapGrid
from ...core.song import Note
from .. import commands
from . import tools
from .geometry import RollGeometry, grid_ticks
from .keyboard import Keyboard
from .ruler import Ruler
from .controllers import ControllerLane
from .velocity import VelocityLane
from .view import PianoRollView

_clipboard: list[Note] = []  # notes copied from any track, shared by every window


class RollEditor(QWidget):
    previewRequested = Signal(int)  # pitch to audition on the current track's instrument
    playToggleRequested = Signal()
    seekRequested = Signal(int)
    loopChanged = Signal(object)
    toolChanged = Signal(str)

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.geom = RollGeometry(self)
        self.view = PianoRollView(doc, self.geom)
        self.keyboard = Keyboard(self.geom)
        self.ruler = Ruler(self.geom)
        self.lane = VelocityLane(doc, self.geom, self.view)
        self.cc_lane = ControllerLane(doc, self.geom, self.view)
        self.grid_name = "1/16"

        top = QWidget()
        grid = QGridLayout(top)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(0)
        grid.addWidget(self.ruler, 0, 1)
        grid.addWidget(self.keyboard, 1, 0)
        grid.addWidget(self.view, 1, 1)
        sb = self.view.verticalScrollBar().sizeHint().width()
        grid.setColumnMinimumWidth(0, Keyboard.WIDTH)
        self.ruler.setContentsMargins(0, 0, sb, 0)
        bottom = QWidget()
        hl = QHBoxLayout(bottom)
        hl.setContentsMargins(Keyboard.WIDTH, 0, sb, 0)
        lanes = QSplitter(Qt.Orientation.Vertical)
        lanes.addWidget(self.lane)
        lanes.addWidget(self.cc_lane)
        hl.addWidget(lanes)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(bottom)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 1)
        split.setSizes([640, 200])
        self.splitter = split
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

        self.keyboard.keyPressed.connect(self.previewRequested)
        self.view.notePressed.connect(self.previewRequested)
        self.view.keyPressed.connect(self.handle_key)
        self.ruler.seek.connect(self.seekRequested)
        self.ruler.loopChanged.connect(self._loop_changed)
        doc.notesChanged.connect(self._maybe_grow)
        doc.mapsChanged.connect(self.refresh_bars)
        doc.tracksChanged.connect(self.refresh_bars)
        self.refresh_bars()

    # ---- state -------------------------------------------------------------------------
    @property
    def snap(self) -> SnapGrid:
        """The snap points of the grid chosen, on the song's real bars (meter changes, a pickup)."""
        return self.view.snap

    @property
    def grid(self) -> int:
        """Ticks of one grid step; for "Bar", the length of the bar under the playhead."""
        if self.grid_name == "Bar":
            lo, hi = self.snap.around(self.view.playhead)
            return hi - lo
        return grid_ticks(self.grid_name, self.doc.song.ppq)

    @property
    def step(self) -> int:
        """What the arrow keys and Quantize use: the grid, or a 64th note (arrows) when snapping is off."""
        return self.grid if self.grid > 1 else self.doc.song.ppq // 16

    def set_grid(self, name: str) -> None:
        self.grid_name = name
        step = None if name == "Bar" else grid_ticks(name, self.doc.song.ppq)
        self.view.snap = self.ruler.snap = SnapGrid(self.geom.bars_between(0, self.geom.content_ticks), step,
                                                    self.doc.song.ppq)
        self.view.grid = self.ruler.grid = self.grid
        self.view.viewport().update()

    def set_tool(self, name: str) -> None:
        if name != self.view.tool:
            self.view.tool = name
            self.toolChanged.emit(name)
        self.view.setFocus()

    def set_playhead(self, tick: int, follow: bool = False) -> None:
        tick = int(tick)
        old = self.view.playhead
        self.view.playhead = self.ruler.playhead = tick
        g = self.geom
        w = self.view.viewport().width()
        if follow and not (0 <= g.x_of(tick) <= w * 0.9):
            self.view.scroll_to_tick(tick, 0.05)
        if old != tick:
            for x in (g.x_of(old), g.x_of(tick)):
                self.view.viewport().update(int(x) - 3, 0, 6, self.view.viewport().height())
            self.ruler.update()

    def _loop_changed(self, loop) -> None:
        self.view.loop = loop
        self.view.viewport().update()
        self.loopChanged.emit(loop)

    def refresh_bars(self) -> None:
        self.geom.update_bars(self.doc.song)
        self.set_grid(self.grid_name)

    def _maybe_grow(self, _tracks) -> None:
        if self.doc.song.end_tick > self.geom.content_ticks - 8 * 1920:
            self.refresh_bars()

    def show_song_start(self) -> None:
        """Scroll to the beginning, centred on the current track's notes."""
        notes = self.doc.track.notes or [n for t in self.doc.song.tracks for n in t.notes]
        pitch = 60
        if notes:
            ps = sorted(n.pitch for n in notes[:2000])
            pitch = ps[len(ps) // 2]
        self.view.horizontalScrollBar().setValue(0)
        self.view.center_on_pitch(pitch)

    # ---- editing operations -----------------------------------------------------------
    def _sel_or_all(self) -> list[Note]:
        return self.doc.selected_notes() or list(self.doc.track.notes)

    def select_all(self) -> None:
        self.doc.set_selection(self.doc.track.notes)

    def delete_selection(self) -> None:
        notes = self.doc.selected_notes()
        if commands.push_notes(self.doc, "Delete notes", edits.delete(self.doc.current_track, notes), select_added=False):
            self.doc.clear_selection()

    def copy(self) -> None:
        global _clipboard
        notes = self.doc.selected_notes()
        if notes:
            _clipboard = list(notes)

    def cut(self) -> None:
        self.copy()
        self.delete_selection()

    def paste(self) -> None:
        if _clipboard:
            at = self.view.playhead
            commands.push_notes(self.doc, "Paste", edits.paste(self.doc.current_track, _clipboard, at))

    def duplicate(self) -> None:
        notes = self.doc.selected_notes()
        if notes:
            # place the copy at the next grid line after the selection ends
            span = max(n.end for n in notes) - min(n.start for n in notes)
            g = self.grid
            offset = -(-span // g) * g
            if self.grid_name == "Bar":  # the copy starts at the first bar line after the selection's end
                offset = self.snap.ceil(max(n.end for n in notes)) - self.snap.floor(min(n.start for n in notes))
            commands.push_notes(self.doc, "Duplicate", edits.duplicate(self.doc.current_track, notes, offset))

    def transpose(self, semitones: int) -> None:
        notes = self.doc.selected_notes()
        if notes:
            commands.push_notes(self.doc, "Transpose", edits.transpose(self.doc.current_track, notes, semitones))

    def shift(self, steps: int) -> None:
        notes = self.doc.selected_notes()
        if notes:
            dt = steps * self.step
            if self.grid_name == "Bar":  # by the bar of the meter in force, keeping the place in the bar
                first = line = self.snap.floor(min(n.start for n in notes))
                for _ in range(abs(steps)):
                    line = self.snap.next(line) if steps > 0 else self.snap.prev(line)
                dt = line - first
            commands.push_notes(self.doc, "Move notes", edits.move(self.doc.current_track, notes, dt, 0))

    def toggle_fermata(self) -> None:
        """A fermata (a phrase end) on the onsets of the selected notes, or off again."""
        notes = self.doc.selected_notes()
        if notes:
            self.doc.undo.push(commands.ToggleFermatas(self.doc, {n.start for n in notes}))

    def quantize(self) -> None:
        notes = self._sel_or_all()
        if notes:
            snap = self.snap if self.grid_name != "Off" else SnapGrid(  # snapping off: quantize to 16ths
                self.geom.bars_between(0, self.geom.content_ticks), self.doc.song.ppq // 4, self.doc.song.ppq)
            change = edits.quantize(self.doc.current_track, notes, snap.step or self.grid, snap=snap.round)
            commands.push_notes(self.doc, "Quantize", change, select_added=bool(self.doc.selection))

    def zoom(self, factor: float, vertical: bool = False) -> None:
        vp = self.view.viewport()
        if vertical:
            self.geom.zoom_y(factor, vp.height() / 2)
        else:
            self.geom.zoom_x(factor, self.geom.x_of(self.view.playhead) if 0 <= self.geom.x_of(self.view.playhead) <= vp.width() else vp.width() / 2)

    # ---- keys the canvas receives directly -------------------------------------------------
    def handle_key(self, event) -> None:
        """Editing keys; the main window's menu actions share these shortcuts."""
        key, mods = event.key(), event.modifiers()
        M = Qt.KeyboardModifier
        shift, ctrl, alt = bool(mods & M.ShiftModifier), bool(mods & M.ControlModifier), bool(mods & M.AltModifier)
        std = {
            QKeySequence.StandardKey.SelectAll: self.select_all,
            QKeySequence.StandardKey.Copy: self.copy,
            QKeySequence.StandardKey.Cut: self.cut,
            QKeySequence.StandardKey.Paste: self.paste,
            QKeySequence.StandardKey.Undo: self.doc.undo.undo,
            QKeySequence.StandardKey.Redo: self.doc.undo.redo,
        }
        for seq, fn in std.items():
            if event.matches(seq):
                fn()
                return event.accept()
        K = Qt.Key
        if ctrl and (key == K.Key_Y or (shift and key == K.Key_Z)):  # Redo on every platform
            self.doc.undo.redo()
            return event.accept()
        if key in (K.Key_Delete, K.Key_Backspace):
            self.delete_selection()
        elif key == K.Key_D and ctrl:
            self.duplicate()
        elif key == K.Key_Up and not ctrl:
            self.transpose(12 if shift else 1)
        elif key == K.Key_Down and not ctrl:
            self.transpose(-12 if shift else -1)
        elif key == K.Key_Right and not ctrl:
            self.shift(1)
        elif key == K.Key_Left and not ctrl:
            self.shift(-1)
        elif key == K.Key_Q and not ctrl:
            self.quantize()
        elif key == K.Key_Z and not ctrl:
            self.zoom(0.8 if shift else 1.25, vertical=alt)
        elif key == K.Key_Space:
            self.playToggleRequested.emit()
        elif key == K.Key_D and not ctrl:
            self.set_tool(tools.DRAW)
        elif key == K.Key_S and not ctrl:
            self.set_tool(tools.SELECT)
        elif key == K.Key_E and not ctrl:
            self.set_tool(tools.ERASE)
        elif key == K.Key_Escape:
            self.doc.clear_selection()
        else:
            return event.ignore()
        event.accept()
