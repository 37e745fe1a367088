"""The main window: assembles the piano roll, score, track list and transport, and holds the
menus and actions. The right dock area is kept free for the assistant panel."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QLabel, QMainWindow, QMessageBox, QSplitter, QVBoxLayout,
                               QWidget)

from ..core.timing import bar_of, beat_origin
from . import commands
from .autosave import Autosaver
from .document import Document
from .files import FileActions
from .notice import NoticeBar
from .pianoroll import tools
from .pianoroll.editor import RollEditor
from .pianoroll.geometry import GRID_NAMES
from .score.view import ScoreView, engraving_enabled
from .settings import Settings
from .tracklist import TrackList
from .transport import Transport

W = Qt.ShortcutContext.WidgetWithChildrenShortcut


def default_size(screen) -> tuple[int, int]:
    """1600x1000 where the screen has room, else what its free area allows (a 1280x720 laptop
    gets a window that fits with the panel and title bar)."""
    if screen is None:
        return 1600, 1000
    avail = screen.availableGeometry()
    return max(800, min(1600, avail.width() - 16)), max(540, min(1000, avail.height() - 40))


def redo_keys() -> list[QKeySequence]:
    """The platform's Redo keys plus Ctrl+Shift+Z and Ctrl+Y, each once (a key bound twice to
    one action is an "ambiguous shortcut" and does nothing)."""
    out: list[QKeySequence] = []
    for k in QKeySequence.keyBindings(QKeySequence.StandardKey.Redo) + [QKeySequence("Ctrl+Shift+Z"),
                                                                        QKeySequence("Ctrl+Y")]:
        if not k.isEmpty() and all(k != o for o in out):
            out.append(k)
    return out


class MainWindow(FileActions, QMainWindow):
    def __init__(self, settings: Settings | None = None, doc: Document | None = None, autosave_folder: str | None = None,
                 start_audio: bool = True, score: bool | None = None):
        super().__init__()
        self.settings = settings or Settings()
        self.doc = doc or Document()
        self.source_name = ""
        self.quiet = False  # screenshots and tests: report errors in the status bar only
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setObjectName("MainWindow")

        self.editor = RollEditor(self.doc)
        self.transport = Transport(self.doc, self.settings.soundfont, self)
        self.autosaver = Autosaver(self.doc, autosave_folder, parent=self)
        self.score = ScoreView(self.doc) if (score if score is not None else engraving_enabled()) else None

        self.banner = NoticeBar()  # one line, closable: "Playback is off: …"
        self.banner.hide()
        self.audio_note = QLabel("")  # the status bar keeps a short note while playback is off
        self.audio_note.setStyleSheet("padding: 0 8px; color:#8a5a00;")
        self.audio_note.hide()
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.editor)
        self.editor.setMinimumWidth(320)
        if self.score is not None:
            self.splitter.addWidget(self.score)
            self.splitter.setStretchFactor(0, 1)  # the roll takes what the window gains
            self.splitter.setStretchFactor(1, 0)
            self.splitter.setCollapsible(0, False)
            self.splitter.setCollapsible(1, True)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.banner)
        lay.addWidget(self.splitter)
        self.setCentralWidget(central)

        self.tracklist = TrackList(self.doc)
        dock = QDockWidget("Tracks", self)
        dock.setObjectName("TracksDock")
        dock.setWidget(self.tracklist)
        self.tracklist.setMinimumWidth(230)
        self.tracklist.done.connect(self.focus_roll)
        dock.setAllowedAreas(Qt.DockWidgetArea.LeftDockWidgetArea | Qt.DockWidgetArea.BottomDockWidgetArea)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.tracks_dock = dock
        # the right dock area is left free for the assistant panel

        self._build_actions()
        self._build_menus()
        self._build_toolbars()
        self._connect()
        from .assistant import install_assistant  # the AI panel, docked on the right

        self.assistant = install_assistant(self)
        from .record import install_record  # Record, metronome, MIDI input, step input

        self.record = install_record(self)
        self._build_help_menu()  # last in the menu bar
        self.resize(*default_size(self.screen()))
        self._laid_out = False
        self.restore_layout()
        self.update_title()
        if start_audio:
            self.transport.start_engine()
        self.statusBar().addPermanentWidget(self.audio_note)
        self.statusBar().showMessage("Ready", 2000)

    # ---- actions --------------------------------------------------------------------------
    def _act(self, text, slot, shortcut=None, tip=None, context=None, checkable=False) -> QAction:
        a = QAction(text, self)
        if shortcut is not None:
            seqs = shortcut if isinstance(shortcut, list) else [shortcut]
            a.setShortcuts([QKeySequence(s) if isinstance(s, str) else QKeySequence(s) for s in seqs])
        if context is not None:
            a.setShortcutContext(context)
        a.setCheckable(checkable)
        keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        a.setToolTip(f"{tip or text.replace('&', '').rstrip('…')}" + (f" ({keys})" if keys else ""))
        a.setStatusTip(a.toolTip())
        a.triggered.connect(slot)
        if context == W:
            self.editor.addAction(a)
        else:
            self.addAction(a)
        return a

    def _build_actions(self) -> None:
        SK = QKeySequence.StandardKey
        ed, doc = self.editor, self.doc
        A = self._act
        self.a_new = A("&New", self.new_file, SK.New)
        self.a_open = A("&Open…", self.open_dialog, SK.Open)
        self.a_save = A("&Save", self.save, SK.Save)
        self.a_save_as = A("Save &As…", self.save_as, SK.SaveAs)
        self.a_quit = A("&Quit", self.close, SK.Quit)
        self.a_export = {k: A(f"Export {k.upper() if k != 'musicxml' else 'MusicXML'}…",
                              lambda _=False, k=k: self.export_dialog(k)) for k in ("midi", "musicxml", "wav", "flac")}
        self.a_undo = doc.undo.createUndoAction(self, "&Undo")
        self.a_undo.setShortcuts(QKeySequence.keyBindings(SK.Undo))
        self.a_redo = doc.undo.createRedoAction(self, "&Redo")
        self.a_redo.setShortcuts(redo_keys())
        for a in (self.a_undo, self.a_redo):
            self.addAction(a)
        self.a_cut = A("Cu&t", ed.cut, SK.Cut, context=W)
        self.a_copy = A("&Copy", ed.copy, SK.Copy, context=W)
        self.a_paste = A("&Paste", ed.paste, SK.Paste, tip="Paste at the playhead", context=W)
        self.a_dup = A("&Duplicate", ed.duplicate, "Ctrl+D", context=W)
        self.a_delete = A("De&lete", ed.delete_selection, [Qt.Key.Key_Delete, Qt.Key.Key_Backspace], context=W)
        self.a_select_all = A("Select &All", ed.select_all, SK.SelectAll, context=W)
        self.a_up = A("Transpose Up", lambda: ed.transpose(1), "Up", context=W)
        self.a_down = A("Transpose Down", lambda: ed.transpose(-1), "Down", context=W)
        self.a_oct_up = A("Octave Up", lambda: ed.transpose(12), "Shift+Up", context=W)
        self.a_oct_down = A("Octave Down", lambda: ed.transpose(-12), "Shift+Down", context=W)
        self.a_right = A("Move Right by Grid", lambda: ed.shift(1), "Right", context=W)
        self.a_left = A("Move Left by Grid", lambda: ed.shift(-1), "Left", context=W)
        self.a_quantize = A("&Quantize", ed.quantize, "Q", tip="Quantize the selection (or the track) to the grid", context=W)
        self.a_fermata = A("&Fermata", ed.toggle_fermata, "Ctrl+Shift+F", context=W,
                           tip="Put a fermata (a phrase end) on the selected notes, or take it off")
        self.a_props = A("Song &Properties…", self.song_properties, "Ctrl+P", tip="Title, composer, pickup; tempo, meter and key changes")
        self.a_zoom_in = A("Zoom &In", lambda: ed.zoom(1.25), "Z", context=W)
        self.a_zoom_out = A("Zoom &Out", lambda: ed.zoom(0.8), "Shift+Z", context=W)
        self.a_taller = A("Taller Keys", lambda: ed.zoom(1.2, vertical=True), "Alt+Z", context=W)
        self.a_shorter = A("Shorter Keys", lambda: ed.zoom(1 / 1.2, vertical=True), "Alt+Shift+Z", context=W)
        self.a_play = A("&Play / Stop", self.transport.toggle, "Space", tip="Play or stop")
        self.a_loop = A("&Loop", self._loop_toggled, "L", tip="Loop the region dragged in the ruler", checkable=True)
        self.a_home = A("To &Start", self.go_to_start, "Home", tip="Move the playhead to the start and show it")
        self.a_add_track = A("&Add Track", lambda: doc.undo.push(commands.AddTrack(doc)), "Ctrl+T")
        self.a_rename_track = A("Re&name Track", lambda: self.tracklist.rename(doc.current_track), "F2")
        self.a_instrument = A("&Instrument…", lambda: self.tracklist.choose_instrument(doc.current_track), "Ctrl+I",
                              tip="Choose the current track's sound")
        self.a_remove_track = A("&Remove Track", lambda: doc.undo.push(commands.RemoveTrack(doc, doc.current_track)))
        self.a_score = A("&Score", self.toggle_score, "F6", tip="Show or hide the score beside the roll", checkable=True)
        self.a_score.setEnabled(self.score is not None)
        self.tool_group = QActionGroup(self)
        self.a_tools = {}
        for name, label, key in ((tools.SELECT, "Select", "S"), (tools.DRAW, "Draw", "D"), (tools.ERASE, "Erase", "E")):
            a = A(label, lambda _=False, n=name: ed.set_tool(n), key, tip=f"{label} tool", context=W, checkable=True)
            self.tool_group.addAction(a)
            self.a_tools[name] = a
        self.a_tools[tools.SELECT].setChecked(True)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (self.a_new, self.a_open):
            m.addAction(a)
        self.recent_menu = m.addMenu("Open &Recent")
        m.addSeparator()
        m.addAction(self.a_save)
        m.addAction(self.a_save_as)
        ex = m.addMenu("&Export")
        for a in self.a_export.values():
            ex.addAction(a)
        m.addSeparator()
        m.addAction(self.a_props)
        m.addSeparator()
        m.addAction(self.a_quit)
        self.rebuild_recent_menu()
        m = mb.addMenu("&Edit")
        for a in (self.a_undo, self.a_redo, None, self.a_cut, self.a_copy, self.a_paste, self.a_dup, self.a_delete,
                  self.a_select_all, None, self.a_up, self.a_down, self.a_oct_up, self.a_oct_down, self.a_left,
                  self.a_right, self.a_quantize, self.a_fermata, None, self.a_props):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&View")
        for a in (self.a_zoom_in, self.a_zoom_out, self.a_taller, self.a_shorter):
            m.addAction(a)
        m.addSeparator()
        m.addAction(self.a_score)
        m.addAction(self.tracks_dock.toggleViewAction())
        m = mb.addMenu("&Transport")
        for a in (self.a_play, self.a_loop, self.a_home):
            m.addAction(a)
        m = mb.addMenu("T&rack")
        for a in (self.a_add_track, self.a_remove_track, self.a_rename_track, self.a_instrument):
            m.addAction(a)

    def _build_help_menu(self) -> None:
        from .helpdialog import ShortcutsDialog, about_text

        m = self.menuBar().addMenu("&Help")
        self.a_shortcuts = self._act("&Keyboard Shortcuts…", lambda: ShortcutsDialog(self).exec(), "F1",
                                     tip="Every key and mouse gesture of the editor")
        m.addAction(self.a_shortcuts)
        m.addAction(self._act("&About Cantor Studio", lambda: QMessageBox.about(self, "Cantor Studio", about_text())))

    def _build_toolbars(self) -> None:
        tb = self.addToolBar("Transport")
        tb.setObjectName("TransportBar")
        for a in (self.a_play, self.a_home, self.a_loop):
            tb.addAction(a)
        self.position_label = QLabel(" 1.1 ")
        self.position_label.setMinimumWidth(90)
        self.position_label.setToolTip("Playhead: bar.beat")
        self.position_label.setStyleSheet("font-family: monospace; font-size: 14px; padding: 0 8px;")
        tb.addWidget(self.position_label)
        self.transport_bar = tb  # the Metronome joins it (studio.ui.record)
        tb = self.addToolBar("Tools")
        tb.setObjectName("ToolsBar")
        for a in self.a_tools.values():
            tb.addAction(a)
        tb.addSeparator()
        tb.addWidget(QLabel(" Snap "))
        self.grid_combo = QComboBox()
        self.grid_combo.addItems(GRID_NAMES)
        self.grid_combo.setToolTip("Snap grid: Off, Bar, note values, dotted (.) and triplets (T). "
                                   "Hold Ctrl while dragging to place a note off the grid")
        self.grid_combo.setMaxVisibleItems(len(GRID_NAMES))
        self.grid_combo.setCurrentText(self.settings.grid if self.settings.grid in GRID_NAMES else "1/16")
        self.grid_combo.currentTextChanged.connect(self._grid_changed)
        self.editor.set_grid(self.grid_combo.currentText())
        tb.addWidget(self.grid_combo)
        tb.addSeparator()
        for a in (self.a_zoom_in, self.a_zoom_out, self.a_quantize, self.a_props, self.a_score):
            tb.addAction(a)

    def _connect(self) -> None:
        doc, ed, tr = self.doc, self.editor, self.transport
        doc.modifiedChanged.connect(lambda _m: self.update_title())
        doc.pathChanged.connect(lambda _p: self.update_title())
        doc.mapsChanged.connect(self.update_title)
        ed.previewRequested.connect(lambda p: tr.preview(p, doc.track.program))
        ed.playToggleRequested.connect(tr.toggle)
        ed.seekRequested.connect(tr.seek)
        ed.loopChanged.connect(self._loop_region)
        ed.toolChanged.connect(lambda n: self.a_tools[n].setChecked(True))
        tr.position.connect(self._position)
        tr.playingChanged.connect(lambda on: self.a_play.setText("Stop" if on else "Play"))
        tr.ready.connect(self._audio_ready)
        self._replay = QTimer(self)  # edits during playback: play on with the new song, once per burst
        self._replay.setSingleShot(True)
        self._replay.setInterval(150)
        self._replay.timeout.connect(tr.restart_if_playing)
        for sig in (doc.mapsChanged, doc.tracksChanged, doc.notesChanged):
            sig.connect(lambda *_: tr.playing and self._replay.start())
        self.splitter.splitterMoved.connect(self._split_moved)
        if self.score is not None:
            self.score.noteClicked.connect(self.select_from_score)
            self._score_follow = QTimer(self)
            self._score_follow.setSingleShot(True)
            self._score_follow.setInterval(400)
            self._score_follow.timeout.connect(self._follow_roll)
            ed.geom.changed.connect(self._score_follow.start)

    # ---- behaviour -----------------------------------------------------------------------------
    def update_title(self) -> None:
        name = self.doc.path and os.path.basename(self.doc.path) or self.source_name or self.doc.song.title or "Untitled"
        self.setWindowTitle(f"{name}[*] — Cantor Studio")
        self.setWindowModified(self.doc.modified)

    def _grid_changed(self, name: str) -> None:
        self.editor.set_grid(name)
        self.settings.grid = name

    def _loop_region(self, loop) -> None:
        self.a_loop.setChecked(bool(loop))
        self.transport.set_loop(loop)

    def _loop_toggled(self, on: bool) -> None:
        region = self.editor.view.loop
        if on and not region:  # no region yet: loop the bar under the playhead
            bar = self.editor.geom.bar_at(self.editor.view.playhead)
            region = (bar.start, bar.end) if bar else None
            self.editor._loop_changed(region)
            self.editor.ruler.loop = region
        self.transport.set_loop(region if on else None)

    def _position(self, tick: int) -> None:
        playing = self.transport.playing
        self.editor.set_playhead(tick, follow=playing)
        if self.score is not None:
            self.score.set_playhead(tick, follow=playing)
        song = self.doc.song
        bar = self.editor.geom.bar_at(tick)
        if bar is not None:
            beat = (tick - beat_origin(song, bar)) // bar.meter.beat_ticks(song.ppq) + 1  # a pickup ends a bar
            self.position_label.setText(f" {bar.index + getattr(self.editor.geom, 'first_number', 1)}.{beat} ")

    def focus_roll(self) -> None:
        """Give the keyboard back to the roll (after the track list or a rename editor used it)."""
        self.editor.view.setFocus(Qt.FocusReason.OtherFocusReason)

    def go_to_start(self) -> None:
        self.transport.seek(0)
        self.editor.set_playhead(0)
        self.editor.view.horizontalScrollBar().setValue(0)
        if self.score is not None:
            self.score.show_bar(0)

    def _audio_ready(self, ok: bool, why: str) -> None:
        if ok:
            self.banner.hide()
            self.audio_note.hide()
        else:
            why = " ".join(why.split()).rstrip(".")
            text = why if why.lower().startswith("playback") else f"Playback is off: {why}"
            full = f"{text}. Editing, saving and export to MIDI/MusicXML still work."
            self.banner.show_text(full)
            self.audio_note.setText("No playback")
            self.audio_note.setToolTip(full)
            self.audio_note.show()
        self.a_play.setEnabled(ok)

    def _follow_roll(self) -> None:
        if self.score is not None and not self.transport.playing:
            g = self.editor.geom
            bar = g.bar_at(g.tick_at(0) + 1)
            if bar is not None:
                self.score.show_bar(bar.index)

    def select_from_score(self, track: int, tick: int, pitch: int) -> None:
        song = self.doc.song
        if not (0 <= track < len(song.tracks)):
            return
        notes = song.tracks[track].notes
        hit = [n for n in notes if n.start == tick and n.pitch == pitch] or \
              [n for n in notes if n.pitch == pitch and n.start <= tick < n.end]
        if hit:
            self.doc.set_selection(hit[:1], track=track)
            g = self.editor.geom
            if not (0 <= g.x_of(hit[0].start) <= self.editor.view.viewport().width()):
                self.editor.view.scroll_to_tick(hit[0].start, 0.3)
            self.editor.view.center_on_pitch(pitch)

    def song_properties(self) -> None:
        from .songprops import edit_song_properties  # title, composer, pickup, changes by bar

        edit_song_properties(self)

    # ---- layout persistence ---------------------------------------------------------------------
    def restore_layout(self) -> None:
        """Window size, dock sizes and the roll/score split as the user left them (the settings
        module keeps them); the defaults are laid out on the first show."""
        s = self.settings
        if not s.window_geometry.isEmpty():
            self.restoreGeometry(s.window_geometry)
        self._restored = {"docks": not s.window_state.isEmpty() and self.restoreState(s.window_state),
                          "split": not s.splitter_state.isEmpty() and self.splitter.restoreState(s.splitter_state),
                          "assistant": not s.assistant_splitter.isEmpty()
                          and self.assistant.splitter.restoreState(s.assistant_splitter)}

    def default_layout(self) -> None:
        """The layout of a first start, for the window's current size: narrow docks, the roll
        gets most of the width, the score a third of what is left (collapsed on a small screen)."""
        w = self.width()
        docks = [d for d in (self.tracks_dock, self.assistant) if d.isVisible() and not d.isFloating()]
        widths = [max(d.minimumSizeHint().width(), 240 if d is self.tracks_dock else 290 if w >= 1500 else 260)
                  for d in docks]
        if docks:
            self.resizeDocks(docks, widths, Qt.Orientation.Horizontal)
        if self.score is not None:
            central = w - sum(widths) - 12
            score = int(central * 0.3) if central >= 900 else 0
            self.splitter.setSizes([max(1, central - score), score])
        self.assistant.default_split()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._laid_out:
            self._laid_out = True
            r = self._restored
            if not r["docks"] or not r["split"]:
                self.default_layout()
            elif not r["assistant"]:
                self.assistant.default_split()
            self._split_moved()
            if not r["assistant"]:  # again once the docks have their final heights
                QTimer.singleShot(0, self.assistant.default_split)

    def toggle_score(self, on: bool) -> None:
        if self.score is None:
            return
        sizes = self.splitter.sizes()
        total = sum(sizes)
        if on and sizes[1] == 0:
            want = getattr(self, "_score_width", 0) or int(total * 0.3)
            self.splitter.setSizes([max(1, total - want), want])
        elif not on and sizes[1] > 0:
            self._score_width = sizes[1]
            self.splitter.setSizes([total, 0])
        self._split_moved()

    def _split_moved(self, *_args) -> None:
        if self.score is not None:
            self.a_score.blockSignals(True)
            self.a_score.setChecked(self.splitter.sizes()[1] > 0)
            self.a_score.blockSignals(False)

    def save_layout(self) -> None:
        s = self.settings
        s.window_geometry = self.saveGeometry()
        s.window_state = self.saveState()
        s.splitter_state = self.splitter.saveState()
        s.assistant_splitter = self.assistant.splitter.saveState()
        s.sync()

    def closeEvent(self, event) -> None:
        if not self.maybe_discard():
            event.ignore()
            return
        self.save_layout()
        self.autosaver.stop()
        self.autosaver.discard()
        self.record.close()
        self.transport.close()
        if self.score is not None:
            self.score.close_engraver()
        event.accept()
