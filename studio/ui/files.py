"""File handling for the main window: new, open (also by drag and drop), save, save as,
export, recent files, and asking before unsaved changes are thrown away."""

from __future__ import annotations

import os

from PySide6.QtWidgets import QFileDialog, QMessageBox

from ..core.errors import StudioError
from . import dialogs
from .document import new_song

OPEN_FILTER = "Songs (*.studio *.mid *.midi *.musicxml *.xml *.mxl);;Projects (*.studio);;MIDI (*.mid *.midi);;MusicXML (*.musicxml *.xml *.mxl);;All files (*)"
OPENABLE = (".studio", ".mid", ".midi", ".musicxml", ".xml", ".mxl")
EXPORTS = {
    "midi": ("Export MIDI", "MIDI (*.mid)", ".mid"),
    "musicxml": ("Export MusicXML", "MusicXML (*.musicxml)", ".musicxml"),
    "wav": ("Export WAV", "WAV audio (*.wav)", ".wav"),
    "flac": ("Export FLAC", "FLAC audio (*.flac)", ".flac"),
}


class FileActions:
    """Mixed into MainWindow; expects ``self.doc``, ``self.settings`` and ``self.autosaver``."""

    export_job = None

    # ---- asking ------------------------------------------------------------------------
    def maybe_discard(self) -> bool:
        """True when it is fine to replace the document (saved, discarded, or unchanged)."""
        if not self.doc.modified:
            return True
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved changes",
                          f"Save the changes to “{self.doc.display_name}” first?",
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return answer == QMessageBox.StandardButton.Discard

    def error(self, text: str) -> None:
        self.statusBar().showMessage(text, 10_000)
        if not getattr(self, "quiet", False):
            QMessageBox.warning(self, "Cantor Studio", text)

    # ---- new / open ----------------------------------------------------------------------
    def new_file(self) -> None:
        if self.maybe_discard():
            self.autosaver.discard()
            self.source_name = ""
            self.doc.replace_song(new_song())
            self.editor.show_song_start()
            self.update_title()

    def open_dialog(self) -> None:
        if not self.maybe_discard():
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open", self.settings.last_folder, OPEN_FILTER)
        if path:
            self.open_path(path, ask=False)

    def open_path(self, path: str, ask: bool = True) -> bool:
        """Load ``path`` into this window. Errors are shown as one line; the old song stays."""
        if ask and not self.maybe_discard():
            return False
        from .openfile import load_with_progress  # noqa: PLC0415

        try:
            song, repairs = load_with_progress(self, path)
        except StudioError as exc:
            self.error(str(exc))
            return False
        except Exception as exc:  # a reader bug must not take the editor down
            self.error(f"{os.path.basename(path)}: cannot open ({type(exc).__name__}: {exc})")
            return False
        self.autosaver.discard()
        is_project = path.lower().endswith(".studio")
        if not is_project and not song.title:
            song.title = os.path.splitext(os.path.basename(path))[0]
        self.doc.replace_song(song, path if is_project else "")
        self.source_name = os.path.basename(path)
        self.remember(path)
        self.editor.show_song_start()
        self.update_title()
        if repairs:  # read as a tolerant player would: say what was repaired
            self.statusBar().showMessage("; ".join(repairs), 15_000)
        return True

    def remember(self, path: str) -> None:
        self.settings.add_recent(path)
        self.settings.last_folder = os.path.dirname(os.path.abspath(path))
        self.rebuild_recent_menu()

    def rebuild_recent_menu(self) -> None:
        menu = self.recent_menu
        menu.clear()
        for p in self.settings.recent_files:
            act = menu.addAction(os.path.basename(p))
            act.setToolTip(p)
            act.triggered.connect(lambda _=False, p=p: self.open_path(p))
        menu.setEnabled(bool(self.settings.recent_files))

    # ---- save ------------------------------------------------------------------------------
    def save(self) -> bool:
        if not self.doc.path:
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self) -> bool:
        base = os.path.splitext(self.doc.display_name)[0] + ".studio"
        start = os.path.join(self.settings.last_folder or os.getcwd(), base)
        path, _ = QFileDialog.getSaveFileName(self, "Save as", start, "Projects (*.studio)")
        if not path:
            return False
        if not path.lower().endswith(".studio"):
            path += ".studio"
        return self.save_to(path)

    def save_to(self, path: str) -> bool:
        from ..io import save  # noqa: PLC0415

        try:
            save(self.doc.song, path)
        except StudioError as exc:
            self.error(str(exc))
            return False
        self.doc.set_path(path)
        self.doc.mark_saved()
        self.autosaver.discard()
        self.remember(path)
        self.statusBar().showMessage(f"Saved {os.path.basename(path)}", 4000)
        self.update_title()
        return True

    # ---- export ----------------------------------------------------------------------------
    def export_dialog(self, kind: str) -> None:
        title, filt, ext = EXPORTS[kind]
        base = os.path.splitext(self.doc.display_name)[0] + ext
        path, _ = QFileDialog.getSaveFileName(self, title, os.path.join(self.settings.last_folder or os.getcwd(), base), filt)
        if path:
            if not path.lower().endswith(ext):
                path += ext
            self.export_to(path)

    def export_to(self, path: str):
        """Start exporting in the background; returns the job (its ``finished`` signal says how it went)."""
        if self.export_job is not None and self.export_job.running:
            self.error("An export is already running")
            return None
        if path.lower().endswith((".wav", ".flac")):
            job = dialogs.audio_export(self.doc.song, path, self.settings.soundfont, self)
        else:
            job = dialogs.file_export(self.doc.song, path, self)
        job.finished.connect(lambda msg, p=path: self._export_done(p, msg))
        self.export_job = job
        job.start()
        return job

    def _export_done(self, path: str, msg: str) -> None:
        if not msg:
            self.statusBar().showMessage(f"Exported {os.path.basename(path)}", 6000)
        elif msg == "cancelled":
            self.statusBar().showMessage("Export cancelled", 4000)
        else:
            self.error(msg)

    # ---- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and urls[0].toLocalFile().lower().endswith(OPENABLE):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            self.open_path(urls[0].toLocalFile())
