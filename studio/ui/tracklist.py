"""The track list: colour, name, instrument, mute, solo, volume and pan of each track.

Clicking a row makes that track the one the piano roll edits (marked with ▶ and a tinted row);
every change is an undo step. The list never keeps the keyboard: after a click, a rename
(double-click the name; Enter keeps it, Esc cancels) or an instrument choice, ``done`` is
emitted and the main window gives the focus back to the roll, so Up still transposes and D
still picks the Draw tool.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtWidgets import (QBoxLayout, QColorDialog, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QSizePolicy,
                               QStackedLayout, QTableWidget, QToolButton, QVBoxLayout, QWidget)

from . import commands
from .instruments import InstrumentPicker, family_of, label
from .pianoroll.geometry import track_color
from .trackmix import MixControls

NF = Qt.FocusPolicy.NoFocus
CURRENT_BG = "#dde9fb"
MUTE_ON = "QToolButton:checked { background:#e8a317; color:white; font-weight:bold; border:1px solid #a8720a; }"
SOLO_ON = "QToolButton:checked { background:#2e9e5b; color:white; font-weight:bold; border:1px solid #1f6e3f; }"


class NameEdit(QWidget):
    """The track's name as a label; a double-click turns it into an editor."""

    renamed = Signal(str)
    finished = Signal()

    def __init__(self, text: str, parent=None):
        super().__init__(parent)
        self.stack = QStackedLayout(self)
        self.stack.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel(text)
        self.label.setToolTip("Double-click to rename")
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.edit = QLineEdit(text)
        self.edit.setFrame(False)
        self.stack.addWidget(self.label)
        self.stack.addWidget(self.edit)
        self.edit.returnPressed.connect(self.commit)
        self.edit.editingFinished.connect(self.commit)
        self.edit.installEventFilter(self)
        self._editing = False

    def text(self) -> str:
        return self.label.text()

    def start(self) -> None:
        self._editing = True
        self.edit.setText(self.label.text())
        self.stack.setCurrentWidget(self.edit)
        self.edit.setFocus()
        self.edit.selectAll()

    def commit(self) -> None:
        if not self._editing:
            return
        self._editing = False
        text = self.edit.text().strip()
        self.stack.setCurrentWidget(self.label)
        if text and text != self.label.text():
            self.label.setText(text)
            self.renamed.emit(text)
        self.finished.emit()

    def cancel(self) -> None:
        self._editing = False
        self.stack.setCurrentWidget(self.label)
        self.finished.emit()

    def eventFilter(self, obj, event):
        from PySide6.QtCore import QEvent

        if obj is self.edit and event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return False


class TrackCell(QWidget):
    """Name on the first line, the instrument (full name, click to change) on the second."""

    def __init__(self, track, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 1, 2, 1)
        lay.setSpacing(0)
        self.name = NameEdit(track.name)
        self.instrument = QToolButton()
        self.instrument.setFocusPolicy(NF)
        self.instrument.setAutoRaise(True)
        self.instrument.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.instrument.setStyleSheet("QToolButton { text-align:left; color:#333; padding:0 2px; }")
        full = label(track.program, track.is_drum)
        self.instrument.setText(f"{full} ▾")
        self.instrument.setToolTip(("Drum kit (General MIDI percussion)" if track.is_drum else
                                    f"Program {track.program + 1}: {full} ({family_of(track.program)})")
                                   + " — click to choose another sound")
        lay.addWidget(self.name)
        lay.addWidget(self.instrument)

    pressed = Signal()

    def mousePressEvent(self, event) -> None:
        self.pressed.emit()  # the row's track becomes the current one

    def mouseDoubleClickEvent(self, event) -> None:
        if event.position().y() < self.instrument.y():
            self.name.start()


class TrackList(QWidget):
    COLS = ("", "Track", "M/S", "Vol/Pan")
    NAME_COL, MS_COL, MIX_COL = 1, 2, 3
    done = Signal()  # the user finished with the list: give the keyboard back to the roll

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.table = QTableWidget(0, len(self.COLS))
        self.table.setHorizontalHeaderLabels(self.COLS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setFocusPolicy(NF)  # the keyboard stays with the roll
        self.table.setShowGrid(False)
        hh = self.table.horizontalHeader()
        hh.setMinimumSectionSize(20)
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        hh.setSectionResizeMode(self.NAME_COL, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(self.MS_COL, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(self.MS_COL, 30)
        hh.setSectionResizeMode(self.MIX_COL, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(self.MIX_COL, 56)
        self.table.setStyleSheet(f"QTableWidget {{ selection-background-color:{CURRENT_BG}; }}")
        self.table.setColumnWidth(0, 22)
        self.table.currentCellChanged.connect(self._row_clicked)
        self.table.cellClicked.connect(lambda *_: self.done.emit())
        add = QPushButton("Add track")
        add.setToolTip("Add an empty track (Ctrl+T)")
        add.clicked.connect(lambda: (doc.undo.push(commands.AddTrack(doc)), self.done.emit()))
        rem = QPushButton("Remove")
        rem.setToolTip("Remove the current track")
        rem.clicked.connect(lambda: (doc.undo.push(commands.RemoveTrack(doc, doc.current_track)), self.done.emit()))
        for b in (add, rem):
            b.setFocusPolicy(NF)
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(rem)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.table)
        lay.addLayout(buttons)
        self.picker: InstrumentPicker | None = None
        # rebuild after the signal that caused it: a cell's own widget must not be deleted mid-signal
        doc.tracksChanged.connect(lambda: QTimer.singleShot(0, self.rebuild))
        doc.currentTrackChanged.connect(self._select_row)
        self.rebuild()

    # ---- current track -------------------------------------------------------------------
    def _row_clicked(self, row: int, *_args) -> None:
        if row >= 0:
            self.doc.set_current_track(row)

    def _select_row(self, row: int) -> None:
        if self.table.currentRow() != row:
            self.table.blockSignals(True)
            self.table.setCurrentCell(row, self.NAME_COL)
            self.table.blockSignals(False)
        self._mark_current()

    def _mark_current(self) -> None:
        cur = self.doc.current_track
        for i in range(self.table.rowCount()):
            on = i == cur
            sw = self.table.cellWidget(i, 0)
            if sw is not None:
                sw.setText("▶" if on else "")
            cell = self.table.cellWidget(i, self.NAME_COL)
            if cell is not None:
                cell.setStyleSheet(f"TrackCell {{ background:{CURRENT_BG}; }}" if on else "")
                font = cell.name.label.font()
                font.setBold(on)
                cell.name.label.setFont(font)
                cell.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)

    def mute_solo(self, row: int):
        """The row's M and S buttons (``.mute``, ``.solo``)."""
        return self.table.cellWidget(row, self.MS_COL)

    def mix_controls(self, row: int) -> MixControls | None:
        return self.table.cellWidget(row, self.MIX_COL)

    def cell(self, row: int) -> TrackCell | None:
        return self.table.cellWidget(row, self.NAME_COL)

    # ---- rows ----------------------------------------------------------------------------
    def rebuild(self) -> None:
        doc = self.doc
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(doc.song.tracks))
        for i, track in enumerate(doc.song.tracks):
            color = track_color(doc.song, i)
            sw = QToolButton()
            sw.setFocusPolicy(NF)
            text_color = "white" if color.lightness() < 150 else "black"
            sw.setStyleSheet(f"background:{color.name()}; color:{text_color}; border:1px solid #555; border-radius:3px;"
                             "font-size:9px; padding:0;")
            sw.setToolTip("Track colour (click to change); ▶ marks the track the roll edits")
            sw.clicked.connect(lambda _=False, i=i: self._pick_color(i))
            t.setCellWidget(i, 0, sw)
            cell = TrackCell(track)
            cell.name.renamed.connect(lambda text, i=i: self._set(i, "name", text))
            cell.name.finished.connect(self.done.emit)
            cell.instrument.clicked.connect(lambda _=False, i=i: self.choose_instrument(i))
            cell.pressed.connect(lambda i=i: (self.doc.set_current_track(i), self.done.emit()))
            t.setCellWidget(i, self.NAME_COL, cell)
            ms = QWidget()
            ml = QVBoxLayout(ms)
            ml.setContentsMargins(2, 1, 2, 1)
            ml.setSpacing(1)
            for attr, tip, style in (("mute", "Mute", MUTE_ON), ("solo", "Solo", SOLO_ON)):
                b = QToolButton()
                b.setText(tip[0])
                b.setCheckable(True)
                b.setFocusPolicy(NF)
                b.setFixedSize(24, 19)
                b.setChecked(getattr(track, attr))
                b.setStyleSheet(style)
                b.setToolTip(f"{tip} ({'on' if b.isChecked() else 'off'})")
                b.toggled.connect(lambda on, i=i, a=attr: (self._set(i, a, on), self.done.emit()))
                ml.addWidget(b)
                setattr(ms, attr, b)
            t.setCellWidget(i, self.MS_COL, ms)
            mix = MixControls(doc, i)
            mix.layout().setDirection(QBoxLayout.Direction.TopToBottom)  # volume above pan: a narrow column
            mix.layout().setSpacing(2)
            for s in (mix.volume, mix.pan):
                s.setFixedWidth(46)
                s.setFocusPolicy(NF)  # dragging a slider must not take the keys from the roll
                s.sliderReleased.connect(self.done.emit)
            t.setCellWidget(i, self.MIX_COL, mix)
            t.setRowHeight(i, 44)
        t.setCurrentCell(doc.current_track, self.NAME_COL)
        t.blockSignals(False)
        self._mark_current()

    def _set(self, index: int, attr: str, value) -> None:
        if index < len(self.doc.song.tracks) and getattr(self.doc.song.tracks[index], attr) != value:
            self.doc.undo.push(commands.TrackProperty(self.doc, index, attr, value))

    def rename(self, index: int) -> None:
        """Open the name editor of track ``index`` (the Track menu's Rename)."""
        cell = self.cell(index)
        if cell is not None:
            cell.name.start()

    def choose_instrument(self, index: int) -> InstrumentPicker | None:
        if index >= len(self.doc.song.tracks):
            return None
        track = self.doc.song.tracks[index]
        self.picker = InstrumentPicker(track.program, track.is_drum, self)
        self.picker.picked.connect(lambda p, drum, i=index: self.set_instrument(i, p, drum))
        self.picker.destroyed.connect(lambda *_: None)
        cell = self.cell(index)
        pos = cell.instrument.mapToGlobal(QPoint(0, cell.instrument.height())) if cell is not None else self.mapToGlobal(QPoint(0, 0))
        self.picker.popup_at(pos)
        return self.picker

    def set_instrument(self, index: int, program: int, is_drum: bool) -> None:
        """One undo step: the program, and whether the track plays the drum kit."""
        tracks = self.doc.song.tracks
        if index >= len(tracks):
            return
        t = tracks[index]
        if (t.program, t.is_drum) != (program, is_drum):
            cmd = commands.SetInstrument(self.doc, index, program, is_drum)
            self.doc.undo.push(cmd)
        self.done.emit()

    def _pick_color(self, index: int) -> None:
        c = QColorDialog.getColor(track_color(self.doc.song, index), self, "Track colour")
        if c.isValid():
            self._set(index, "color", c.name())
        self.done.emit()
