"""The track list: name, General MIDI instrument, mute, solo and colour of each track.

Clicking a row makes that track the one the piano roll edits; every change is an undo step.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QColorDialog, QComboBox, QHBoxLayout, QHeaderView, QLineEdit, QPushButton,
                               QTableWidget, QToolButton, QVBoxLayout, QWidget)

from . import commands
from .gm import GM_NAMES, program_name
from .pianoroll.geometry import track_color
from .trackmix import MixControls


class TrackList(QWidget):
    COLS = ("", "Name", "Instrument", "M", "S", "Vol Pan")

    def __init__(self, doc, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.table = QTableWidget(0, len(self.COLS))
        self.table.setHorizontalHeaderLabels(self.COLS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        hh.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        hh.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        hh.setMinimumSectionSize(22)
        for c in (3, 4):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.Fixed)
            self.table.setColumnWidth(c, 28)
        self.table.setColumnWidth(0, 22)
        hh.setSectionResizeMode(5, QHeaderView.ResizeMode.ResizeToContents)
        self.table.currentCellChanged.connect(lambda row, *_: row >= 0 and doc.set_current_track(row))
        add = QPushButton("Add track")
        add.setToolTip("Add an empty track")
        add.clicked.connect(lambda: doc.undo.push(commands.AddTrack(doc)))
        rem = QPushButton("Remove")
        rem.setToolTip("Remove the current track")
        rem.clicked.connect(lambda: doc.undo.push(commands.RemoveTrack(doc, doc.current_track)))
        buttons = QHBoxLayout()
        buttons.addWidget(add)
        buttons.addWidget(rem)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.table)
        lay.addLayout(buttons)
        # rebuild after the signal that caused it: a cell's own widget must not be deleted mid-signal
        doc.tracksChanged.connect(lambda: QTimer.singleShot(0, self.rebuild))
        doc.currentTrackChanged.connect(self._select_row)
        self.rebuild()

    def _select_row(self, row: int) -> None:
        if self.table.currentRow() != row:
            self.table.blockSignals(True)
            self.table.setCurrentCell(row, 1)
            self.table.blockSignals(False)

    def rebuild(self) -> None:
        doc = self.doc
        t = self.table
        t.blockSignals(True)
        t.setRowCount(len(doc.song.tracks))
        for i, track in enumerate(doc.song.tracks):
            color = track_color(doc.song, i)
            sw = QToolButton()
            sw.setStyleSheet(f"background:{color.name()}; border:1px solid #555; border-radius:3px;")
            sw.setToolTip("Track colour")
            sw.clicked.connect(lambda _=False, i=i: self._pick_color(i))
            t.setCellWidget(i, 0, sw)
            name = QLineEdit(track.name)
            name.setFrame(False)
            name.editingFinished.connect(lambda i=i, w=name: self._set(i, "name", w.text().strip() or f"Track {i + 1}"))
            t.setCellWidget(i, 1, name)
            inst = QComboBox()
            if track.is_drum:
                inst.addItem(program_name(0, True))
                inst.setEnabled(False)
            else:
                inst.addItems([f"{p + 1} {n}" for p, n in enumerate(GM_NAMES)])
                inst.setCurrentIndex(track.program)
                inst.currentIndexChanged.connect(lambda p, i=i: self._set(i, "program", p))
            inst.setToolTip("General MIDI instrument")
            t.setCellWidget(i, 2, inst)
            for col, attr, tip in ((3, "mute", "Mute"), (4, "solo", "Solo")):
                b = QToolButton()
                b.setText(tip[0])
                b.setCheckable(True)
                b.setChecked(getattr(track, attr))
                b.setToolTip(tip)
                b.toggled.connect(lambda on, i=i, a=attr: self._set(i, a, on))
                t.setCellWidget(i, col, b)
            t.setCellWidget(i, 5, MixControls(doc, i))
            t.setRowHeight(i, 26)
        t.setCurrentCell(doc.current_track, 1)
        t.blockSignals(False)

    def _set(self, index: int, attr: str, value) -> None:
        if index < len(self.doc.song.tracks) and getattr(self.doc.song.tracks[index], attr) != value:
            self.doc.undo.push(commands.TrackProperty(self.doc, index, attr, value))

    def _pick_color(self, index: int) -> None:
        c = QColorDialog.getColor(track_color(self.doc.song, index), self, "Track colour")
        if c.isValid():
            self._set(index, "color", c.name())
