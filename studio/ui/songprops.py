"""Song Properties: title, composer, a pickup, and the tempo, meter and key changes bar by bar.

The rows are edited as text (``96``, ``3/4``, ``D minor``) in a small table; the pure work
(bar numbers to ticks, meters moving the bar lines after them) is :mod:`studio.core.maps`.
Accepting pushes one undo step (:class:`SongMapsCommand`).
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
                               QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..core.errors import StudioError
from ..core.maps import KINDS, Change, apply_changes, changes_of


class SongMapsCommand(QUndoCommand):
    """Replace title, composer, pickup and the tempo, meter and key maps in one step."""

    def __init__(self, doc, title: str, composer: str, pickup: int, tempos, sigs, keys):
        super().__init__("Song properties")
        self.doc = doc
        s = doc.song
        self.old = (s.title, s.composer, s.pickup, list(s.tempos), list(s.time_signatures), list(s.key_signatures))
        self.new = (title, composer, pickup, list(tempos), list(sigs), list(keys))

    def _set(self, v) -> None:
        s = self.doc.song
        s.title, s.composer, s.pickup = v[0], v[1], v[2]
        s.tempos, s.time_signatures, s.key_signatures = list(v[3]), list(v[4]), list(v[5])
        self.doc.notify_maps()

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


class SongPropertiesDialog(QDialog):
    """Title, composer, pickup (in beats of the first meter) and the list of changes."""

    def __init__(self, song, parent=None, at_bar: int = 1):
        super().__init__(parent)
        self.song = song
        self.at_bar = max(0 if song.pickup else 1, at_bar)
        self.setWindowTitle("Song properties")
        self.setMinimumWidth(480)
        self.title = QLineEdit(song.title)
        self.title.setCursorPosition(0)
        self.composer = QLineEdit(song.composer)
        self.composer.setPlaceholderText("(none)")
        ts = song.time_signature_at(0)
        self.pickup = QDoubleSpinBox()
        self.pickup.setRange(0, 63.75)
        self.pickup.setSingleStep(0.5)
        self.pickup.setDecimals(2)
        self.pickup.setSpecialValueText("none")
        self.pickup.setSuffix(" beats")
        self.pickup.setValue(song.pickup / ts.beat_ticks(song.ppq))
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Bar", "Change", "Value"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self._ticks: list[tuple[int, int | None]] = []
        for c in changes_of(song):
            self._add_row(c)
        buttons_row = QWidget()
        bl = QHBoxLayout(buttons_row)
        bl.setContentsMargins(0, 0, 0, 0)
        for kind in KINDS:
            b = QPushButton(f"Add {kind.lower()}")
            b.clicked.connect(lambda _=False, k=kind: self.add_change(k))
            bl.addWidget(b)
        remove = QPushButton("Remove")
        remove.clicked.connect(self.remove_selected)
        bl.addWidget(remove)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #c03030")
        form = QFormLayout()
        form.addRow("Title", self.title)
        form.addRow("Composer", self.composer)
        form.addRow("Pickup", self.pickup)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self._accept)
        box.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(QLabel("Tempo, meter and key changes (bar 0 is the pickup):"))
        lay.addWidget(self.table)
        lay.addWidget(buttons_row)
        lay.addWidget(self.error)
        lay.addWidget(box)
        self.result_values = None

    # ---- rows ----
    def _add_row(self, c: Change) -> int:
        r = self.table.rowCount()
        self.table.insertRow(r)
        self.table.setItem(r, 0, QTableWidgetItem(str(c.bar)))
        kind = QComboBox()
        kind.addItems(KINDS)
        kind.setCurrentText(c.kind)
        self.table.setCellWidget(r, 1, kind)
        self.table.setItem(r, 2, QTableWidgetItem(c.value))
        self._ticks.append((c.bar, c.tick))  # a row moved to another bar goes to that bar's start
        return r

    def add_change(self, kind: str) -> None:
        current = {"Tempo": f"{self.song.tempo_at(0).bpm:g}", "Meter": str(self.song.time_signature_at(0)),
                   "Key": self.song.key_at(0).name}[kind]
        r = self._add_row(Change(kind, self.at_bar, current))
        self.table.selectRow(r)
        self.table.editItem(self.table.item(r, 2))

    def remove_selected(self) -> None:
        for r in sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True):
            self.table.removeRow(r)
            del self._ticks[r]

    def rows(self) -> list[Change]:
        out = []
        for r in range(self.table.rowCount()):
            text = self.table.item(r, 0).text().strip()
            try:
                bar = int(text)
            except ValueError:
                raise StudioError(f"row {r + 1}: bar {text!r} is not a number") from None
            kind = self.table.cellWidget(r, 1).currentText()
            value = self.table.item(r, 2).text()
            was, tick = self._ticks[r]
            out.append(Change(kind, bar, value, tick if bar == was else None))
        return out

    def values(self) -> tuple:
        """(title, composer, pickup, tempos, sigs, keys), or a StudioError saying what is wrong."""
        rows = self.rows()
        first_meter = next((c for c in sorted(rows, key=lambda c: c.bar) if c.kind == "Meter"), None)
        beat = self.song.ppq * 4 // 4
        if first_meter is not None:
            try:
                beat = self.song.ppq * 4 // int(first_meter.value.split("/")[1])
            except (ValueError, IndexError, ZeroDivisionError):
                pass
        pickup = int(round(self.pickup.value() * beat))
        tempos, sigs, keys, pickup = apply_changes(self.song, rows, pickup)
        return (self.title.text().strip() or "Untitled", " ".join(self.composer.text().split()), pickup,
                tempos, sigs, keys)

    def _accept(self) -> None:
        try:
            self.result_values = self.values()
        except StudioError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


def edit_song_properties(window) -> bool:
    """Show the dialog for the window's document (at the playhead's bar); push the result."""
    from ..core.timing import bar_of

    doc = window.doc
    view = getattr(getattr(window, "editor", None), "view", None)
    tick = int(getattr(view, "playhead", 0) or 0)
    bar = bar_of(doc.song, tick) + (0 if doc.song.pickup else 1)
    dlg = SongPropertiesDialog(doc.song, window, at_bar=bar)
    if dlg.exec() and dlg.result_values is not None:
        doc.undo.push(SongMapsCommand(doc, *dlg.result_values))
        return True
    return False
