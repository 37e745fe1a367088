"""Opening a file from the GUI: a progress dialog when reading takes more than half a second,
and the reader's repair notes (a MIDI file with stray bytes, say) collected for the status bar."""

from __future__ import annotations

import os
import warnings

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QProgressDialog

from ..core.errors import FileWarning


def load_with_progress(parent, path: str):
    """(song, repair notes) for ``path``; raises what :func:`studio.io.load` raises."""
    from ..io import load  # noqa: PLC0415

    dialog = QProgressDialog(f"Reading {os.path.basename(path)}…", "", 0, 1000, parent)
    dialog.setCancelButton(None)
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.setMinimumDuration(500)  # only for files slower than half a second
    dialog.setAutoClose(False)

    def progress(fraction: float) -> None:
        value = int(fraction * 1000)
        if value != dialog.value():
            dialog.setValue(value)
            QApplication.processEvents()

    try:
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", FileWarning)
            song = load(path, progress)
    finally:
        dialog.reset()
        dialog.deleteLater()
    notes = [str(w.message) for w in seen if issubclass(w.category, FileWarning)]
    return song, notes
