"""Recording in the editor: the Record button and its options in a toolbar and the Transport
menu, the MIDI input chooser, MIDI thru, step input and the computer keyboard as a piano.

``install_record(window)`` adds all of it to a main window through the window's public
attributes (document, transport, settings, piano-roll editor) and returns the
:class:`RecordController`.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QComboBox, QLabel, QMessageBox, QSlider

from ...core.recording import OVERDUB, REPLACE
from ..pianoroll.geometry import GRID_NAMES
from .controller import RecordController
from .pckeys import KeyInput

__all__ = ["RecordController", "install_record"]
LOW_LATENCY = 0.02  # seconds of device buffer with Low-Latency Audio on


def _dot_icon(color: str, size: int = 16) -> QIcon:
    pix = QPixmap(QSize(size, size))
    pix.fill(Qt.GlobalColor.transparent)
    p = QPainter(pix)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setPen(QColor(color).darker(140))
    p.setBrush(QColor(color))
    p.drawEllipse(2, 2, size - 4, size - 4)
    p.end()
    return QIcon(pix)


def _menu(window, title: str):
    for a in window.menuBar().actions():
        if a.menu() is not None and a.text().replace("&", "") == title:
            return a.menu()
    return window.menuBar().addMenu(title)


class RecordUI:
    """The toolbar, menu entries and key input for one window's RecordController."""

    def __init__(self, window, controller: RecordController):
        self.win, self.rec = window, controller
        s = window.settings
        rec = controller

        def act(text, slot, shortcut=None, tip=None, checkable=False, checked=False):
            a = QAction(text, window)
            if shortcut:
                a.setShortcuts(shortcut if isinstance(shortcut, list) else [shortcut])
            a.setCheckable(checkable)
            if checkable:
                a.setChecked(checked)
            keys = ", ".join(k.toString() for k in a.shortcuts())
            a.setToolTip((tip or text.replace("&", "")) + (f" ({keys})" if keys else ""))
            a.setStatusTip(a.toolTip())
            (a.toggled if checkable else a.triggered).connect(slot)
            window.addAction(a)
            return a

        self.a_record = act("&Record", self.toggle_record, ["R", "Shift+Space"],
                            tip="Record into the current track from the playhead")
        self.a_record.setIcon(_dot_icon("#d62828"))
        self.a_metronome = act("&Metronome", self._metronome,
                               tip="Click on the beats while playing and recording, through the tempo and meter "
                                   "changes (the count-in before recording clicks either way)",
                               checkable=True, checked=s.metronome)
        window.transport.metronome = s.metronome
        window.transport.metronome_volume = s.metronome_volume / 100.0
        self.a_thru = act("MIDI &Thru", self._thru, tip="Hear what the MIDI keyboard plays with the track's instrument",
                          checkable=True, checked=s.midi_thru)
        self.a_piano = act("&Computer Keyboard as Piano", self._piano, "Ctrl+K",
                           tip="Play notes on two rows of the computer keyboard (Z-M and Q-U; - and = change octave)",
                           checkable=True)
        self.a_step = act("&Step Input", self._step, "Ctrl+Shift+K",
                          tip="Each key played (or note name typed in the roll, 0 = rest) enters a note of the "
                              "grid's length at the playhead and moves on; hold keys for a chord",
                          checkable=True)
        self.a_latency = act("&Low-Latency Audio", self._latency,
                             tip=f"Open the audio device with a {LOW_LATENCY * 1000:.0f} ms buffer, so what is played "
                                 "is heard sooner (a busy machine may crackle)",
                             checkable=True, checked=s.low_latency)
        window.transport.latency = LOW_LATENCY if s.low_latency else None  # before the engine starts
        self.keys = KeyInput(rec, window.editor, window)

        # the toolbar
        tb = window.addToolBar("Record")
        tb.setObjectName("RecordBar")
        tb.addAction(self.a_record)
        tb.widgetForAction(self.a_record).setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.count_combo = QComboBox()
        self.count_combo.addItems(["No count-in", "Count-in 1 bar", "Count-in 2 bars"])
        self.count_combo.setCurrentIndex(s.count_in_bars)
        self.count_combo.setToolTip("Bars of clicks before recording starts (not recorded)")
        self.count_combo.currentIndexChanged.connect(self._count_in)
        tb.addWidget(self.count_combo)
        bar = getattr(window, "transport_bar", tb)  # beside Play and Loop: it sounds in playback too
        bar.addAction(self.a_metronome)
        self.volume = QSlider(Qt.Orientation.Horizontal)
        self.volume.setRange(0, 100)
        self.volume.setValue(s.metronome_volume)
        self.volume.setFixedWidth(70)
        self.volume.setToolTip("Metronome volume")
        self.volume.valueChanged.connect(self._volume)
        bar.addWidget(self.volume)
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["Overdub", "Replace"])
        self.mode_combo.setCurrentIndex(1 if s.record_mode == REPLACE else 0)
        self.mode_combo.setToolTip("Overdub keeps the notes already there; Replace removes those in the recorded span")
        self.mode_combo.currentIndexChanged.connect(self._mode)
        tb.addWidget(self.mode_combo)
        self.status = QLabel()
        self.status.setStyleSheet("padding: 0 8px;")
        tb.addWidget(self.status)
        self.toolbar = tb

        # the Transport menu
        m = _menu(window, "Transport")
        m.addSeparator()
        m.addAction(self.a_record)
        cm = m.addMenu("Count-&in")
        self.count_group = QActionGroup(window)
        self.count_actions = []
        for i, label in enumerate(("None", "1 Bar", "2 Bars")):
            a = cm.addAction(label)
            a.setCheckable(True)
            a.setChecked(i == s.count_in_bars)
            a.triggered.connect(lambda _=False, i=i: self.count_combo.setCurrentIndex(i))
            self.count_group.addAction(a)
            self.count_actions.append(a)
        m.addAction(self.a_metronome)
        mm = m.addMenu("Record &Mode")
        self.mode_group = QActionGroup(window)
        self.mode_actions = []
        for i, label in enumerate(("Overdub", "Replace")):
            a = mm.addAction(label)
            a.setCheckable(True)
            a.setChecked(i == self.mode_combo.currentIndex())
            a.triggered.connect(lambda _=False, i=i: self.mode_combo.setCurrentIndex(i))
            self.mode_group.addAction(a)
            self.mode_actions.append(a)
        qm = m.addMenu("Input &Quantize")
        self.quant_group = QActionGroup(window)
        for name in ["Off"] + [g for g in GRID_NAMES if g in ("1/4", "1/8", "1/16", "1/32", "1/8T", "1/16T")]:
            a = qm.addAction(name)
            a.setCheckable(True)
            a.setChecked((s.input_quantize or "Off") == name)
            a.triggered.connect(lambda _=False, n=name: self._quantize(n))
            self.quant_group.addAction(a)
        self.takes_menu = m.addMenu("Record &Takes")
        self.takes_menu.setEnabled(False)
        m.addSeparator()
        self.ports_menu = m.addMenu("MIDI &Input")
        self.ports_group = QActionGroup(window)
        m.addAction(self.a_thru)
        m.addAction(self.a_latency)
        m.addAction(self.a_piano)
        m.addAction(self.a_step)

        rec.portsChanged.connect(self.refresh)
        rec.stateChanged.connect(self.refresh)
        rec.takesChanged.connect(self._rebuild_takes)
        rec.notice.connect(lambda text: window.statusBar().showMessage(text, 8000))
        window.transport.ready.connect(lambda *_: self.refresh())
        self.refresh()

    # ---- slots ----------------------------------------------------------------------------------
    def toggle_record(self) -> None:
        rec = self.rec
        if rec.recording:
            rec.stop()
            return
        ok, why = rec.can_record()
        if not ok:
            self.win.statusBar().showMessage(why, 10000)
            self.status.setToolTip(why)
            if not getattr(self.win, "quiet", False):
                QMessageBox.information(self.win, "Record", why)
            return
        rec.record()

    def _count_in(self, i: int) -> None:
        self.win.settings.count_in_bars = i
        self.count_actions[i].setChecked(True)

    def _metronome(self, on: bool) -> None:
        self.win.settings.metronome = on
        self.win.transport.set_metronome(on=on)

    def _volume(self, v: int) -> None:
        self.win.settings.metronome_volume = v
        self.win.transport.set_metronome(volume=v / 100.0)

    def _mode(self, i: int) -> None:
        self.win.settings.record_mode = REPLACE if i == 1 else OVERDUB
        self.mode_actions[i].setChecked(True)

    def _quantize(self, name: str) -> None:
        self.win.settings.input_quantize = "" if name == "Off" else name

    def _thru(self, on: bool) -> None:
        self.rec.set_thru(on)

    def _latency(self, on: bool) -> None:
        self.win.settings.low_latency = on
        tr = self.win.transport
        tr.latency = LOW_LATENCY if on else None
        if tr.player is not None and not self.rec.recording:
            tr.restart_engine()

    def _piano(self, on: bool) -> None:
        self.keys.set_piano(on)

    def _step(self, on: bool) -> None:
        self.rec.set_step_input(on)
        if on:
            self.win.editor.view.setFocus()
        if self.a_step.isChecked() != (self.rec.step is not None):
            self.a_step.setChecked(self.rec.step is not None)

    def _choose_port(self, name: str) -> None:
        self.rec.choose_port(name)

    # ---- display --------------------------------------------------------------------------------
    def refresh(self) -> None:
        rec, midi = self.rec, self.rec.midi
        self.a_record.setText("Stop &Recording" if rec.recording else "&Record")
        self.a_record.setIcon(_dot_icon("#ff2020" if rec.recording else "#d62828"))
        for w in (self.count_combo, self.mode_combo):
            w.setEnabled(not rec.recording)
        if rec.recording:
            count = rec.count
            track = self.win.doc.song.tracks[rec.recorder.track].name
            text = f"● REC into {track}" + (f"  count-in {count}" if count else "")
            self.status.setText(text)
            self.status.setStyleSheet("padding: 0 8px; color: #c01818; font-weight: bold;")
        else:
            if midi.available:
                name = self.status.fontMetrics().elidedText(midi.port_name, Qt.TextElideMode.ElideRight, 150)
                text = f"MIDI: {name}"
            elif rec.keyboard_piano:
                text = "Computer keyboard"
            else:
                text = "No MIDI input"
            if rec.step is not None:
                text += " · step input"
            self.status.setText(text)
            self.status.setStyleSheet("padding: 0 8px; color: #6b6f78;")
            tip = midi.reason or f"Recording from {midi.port_name}"
            audio = rec.audio_note()
            if audio:
                tip += f"\nWhile recording {audio}."
            else:
                tip += "\n" + rec.thru_latency_text()
            self.status.setToolTip(tip)
        self.a_step.setChecked(rec.step is not None)
        self._rebuild_ports()

    def _rebuild_ports(self) -> None:
        midi = self.rec.midi
        m = self.ports_menu
        m.clear()
        for a in self.ports_group.actions():
            self.ports_group.removeAction(a)
        if not midi.names:
            a = m.addAction(midi.reason or "No MIDI input")
            a.setEnabled(False)
            return
        for name in midi.names:
            a = m.addAction(name)
            a.setCheckable(True)
            a.setChecked(name == midi.port_name)
            a.triggered.connect(lambda _=False, n=name: self._choose_port(n))
            self.ports_group.addAction(a)

    def _rebuild_takes(self) -> None:
        m = self.takes_menu
        m.clear()
        takes = self.rec.takes
        m.setEnabled(len(takes) > 1)
        group = QActionGroup(m)
        for i, take in enumerate(takes):
            a = m.addAction(f"Take {i + 1} ({len(take.notes)} notes)")
            a.setCheckable(True)
            a.setChecked(i == self.rec.take_index)
            a.triggered.connect(lambda _=False, i=i: self.rec.use_take(i))
            group.addAction(a)


def install_record(window, source=None) -> RecordController:
    """Add recording to ``window`` (a MainWindow). ``source``: a MIDI port source other than
    the system's (tests)."""
    rec = RecordController(window.doc, window.transport, window.settings, window.editor, source, parent=window)
    rec.ui = RecordUI(window, rec)
    return rec
