"""The open document: a Song, its undo stack, its file, the current track and the selection.

Views never change the Song themselves: they push commands (``studio.ui.commands``) onto
``Document.undo``; the commands call :meth:`Document.notify_notes` and friends, and the views
repaint on the signals.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from ..core.song import Note, Song, Track


def new_song() -> Song:
    return Song(title="Untitled", tracks=[Track(name="Piano", program=0, channel=0)])


class Document(QObject):
    notesChanged = Signal(object)  # set of track indices whose notes changed
    tracksChanged = Signal()  # tracks added/removed or a track property (name, program, mute...) changed
    mapsChanged = Signal()  # tempo, time signature or key changed
    selectionChanged = Signal()
    currentTrackChanged = Signal(int)
    modifiedChanged = Signal(bool)
    pathChanged = Signal(str)

    def __init__(self, song: Song | None = None, path: str = "", parent: QObject | None = None):
        super().__init__(parent)
        self.song = song if song is not None else new_song()
        if not self.song.tracks:
            self.song.tracks.append(Track(name="Track 1"))
        self.path = path
        self.undo = QUndoStack(self)
        self.undo.cleanChanged.connect(self._clean_changed)
        self._current = 0
        self._selection: set[Note] = set()
        self.revision = 0  # bumps on every change; autosave and the score compare it
        self._restored = False  # a document brought back from an autosave counts as modified

    def _clean_changed(self, clean: bool) -> None:
        try:
            self.modifiedChanged.emit(self.modified)
        except RuntimeError:  # the stack is being destroyed with the document
            pass

    # ---- file state --------------------------------------------------------------------
    @property
    def modified(self) -> bool:
        return self._restored or not self.undo.isClean()

    def mark_restored(self) -> None:
        self._restored = True
        self.revision += 1
        self.modifiedChanged.emit(True)

    def set_path(self, path: str) -> None:
        self.path = os.path.abspath(path) if path else ""
        self.pathChanged.emit(self.path)

    def mark_saved(self) -> None:
        was = self.modified
        self._restored = False
        self.undo.setClean()
        if was and not self.modified:
            self.modifiedChanged.emit(False)

    @property
    def display_name(self) -> str:
        return os.path.basename(self.path) if self.path else (self.song.title or "Untitled")

    # ---- current track -----------------------------------------------------------------
    @property
    def current_track(self) -> int:
        return min(self._current, len(self.song.tracks) - 1)

    def set_current_track(self, index: int) -> None:
        index = max(0, min(index, len(self.song.tracks) - 1))
        if index != self._current:
            self._current = index
            self._selection.clear()
            self.currentTrackChanged.emit(index)
            self.selectionChanged.emit()

    @property
    def track(self) -> Track:
        return self.song.tracks[self.current_track]

    # ---- selection (notes of the current track) -----------------------------------------
    @property
    def selection(self) -> set[Note]:
        return self._selection

    def selected_notes(self) -> list[Note]:
        """Selected notes that are really in the current track, sorted."""
        present = set(self.track.notes)
        return sorted(n for n in self._selection if n in present)

    def set_selection(self, notes, track: int | None = None) -> None:
        if track is not None and track != self.current_track:
            self._current = max(0, min(track, len(self.song.tracks) - 1))
            self.currentTrackChanged.emit(self._current)
        self._selection = set(notes)
        self.selectionChanged.emit()

    def clear_selection(self) -> None:
        if self._selection:
            self._selection = set()
            self.selectionChanged.emit()

    # ---- notifications called by commands ---------------------------------------------
    def notify_notes(self, tracks) -> None:
        self.revision += 1
        self.notesChanged.emit(set(tracks))

    def notify_tracks(self) -> None:
        self.revision += 1
        if self._current >= len(self.song.tracks):
            self._current = max(0, len(self.song.tracks) - 1)
            self.currentTrackChanged.emit(self._current)
        self.tracksChanged.emit()

    def notify_maps(self) -> None:
        self.revision += 1
        self.mapsChanged.emit()

    def replace_song(self, song: Song, path: str = "") -> None:
        """Load another song into this document (File > New/Open); clears undo history."""
        if not song.tracks:
            song.tracks.append(Track(name="Track 1"))
        self.song = song
        self.undo.clear()
        self._restored = False
        self._current = 0
        self._selection = set()
        self.set_path(path)
        self.revision += 1
        self.tracksChanged.emit()
        self.mapsChanged.emit()
        self.notesChanged.emit(set(range(len(song.tracks))))
        self.currentTrackChanged.emit(0)
        self.selectionChanged.emit()
        self.modifiedChanged.emit(False)
