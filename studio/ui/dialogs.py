"""Dialogs: file and audio export with progress (song properties: :mod:`studio.ui.songprops`)."""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog

from ..core.errors import Cancelled, StudioError


class _Relay(QObject):
    progress = Signal(float)
    finished = Signal(str)  # "" on success, else the error line ("cancelled" when cancelled)


class BackgroundExport(QObject):
    """Runs ``work(progress)`` in a thread behind a progress dialog with Cancel.

    ``progress(fraction) -> bool`` returns False once the user cancelled; ``work`` raises
    :class:`Cancelled` (or returns) then. With ``determinate=False`` the bar just shows activity.
    """

    finished = Signal(str)

    def __init__(self, work, label: str, parent_widget=None, determinate: bool = True):
        super().__init__(parent_widget)
        self.work = work
        self.cancelled = False
        self.dialog = QProgressDialog(label, "Cancel", 0, 1000 if determinate else 0, parent_widget)
        self.dialog.setWindowTitle("Export")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(0)
        self.dialog.setMinimumWidth(440)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.dialog.canceled.connect(self._cancel)
        self.relay = _Relay()
        self.relay.progress.connect(lambda f: self.dialog.setValue(int(f * 1000)) if determinate else None)
        self.relay.finished.connect(self._done)
        self.running = False

    def start(self) -> None:
        self.dialog.setValue(0)
        self.dialog.show()
        self.running = True
        threading.Thread(target=self._run, name="export", daemon=True).start()

    def _cancel(self) -> None:
        self.cancelled = True

    def _progress(self, fraction: float) -> bool:
        self.relay.progress.emit(float(fraction))
        return not self.cancelled

    def _run(self) -> None:
        try:
            self.work(self._progress)
            msg = "cancelled" if self.cancelled else ""
        except Cancelled:
            msg = "cancelled"
        except StudioError as exc:
            msg = str(exc)
        except ImportError as exc:
            msg = f"export is not available: {exc}"
        except Exception as exc:  # report, never crash the editor
            msg = f"{type(exc).__name__}: {exc}"
        self.relay.finished.emit(msg)

    def _done(self, msg: str) -> None:
        self.running = False
        self.dialog.hide()
        self.finished.emit(msg)


def audio_export(song, path: str, soundfont: str = "", parent_widget=None) -> BackgroundExport:
    """A BackgroundExport that renders ``song`` to WAV or FLAC."""
    song = song.copy()

    def work(progress):
        from ..audio.render import render_file  # noqa: PLC0415

        render_file(song, path, soundfont=soundfont or None, progress=progress)

    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return BackgroundExport(work, f"Rendering {name} with FluidSynth…", parent_widget)


def file_export(song, path: str, parent_widget=None) -> BackgroundExport:
    """A BackgroundExport that writes MIDI, MusicXML or a project (MusicXML can take a while)."""
    song = song.copy()

    def work(progress):
        from ..io import save  # noqa: PLC0415

        save(song, path)

    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return BackgroundExport(work, f"Writing {name}…", parent_widget, determinate=False)
