"""Undoable edits. Each is one QUndoCommand; note edits wrap ``core.edits.NoteChange`` values.

``redo`` applies the changes, ``undo`` applies ``change.inverted()`` in reverse order, so a
command is exactly reversible. A mouse drag builds its change while the button is held and
pushes one command on release.
"""

from __future__ import annotations

from typing import Sequence

from PySide6.QtGui import QUndoCommand

from ..core import edits
from ..core.edits import NoteChange
from ..core.song import Track, toggled_fermatas


class NoteEdit(QUndoCommand):
    """One or more NoteChanges applied together; the added notes of the current track become the selection."""

    def __init__(self, doc, text: str, changes: Sequence[NoteChange], select_added: bool = True,
                 select: Sequence | None = None):
        super().__init__(text)
        self.doc = doc
        self.changes = [c for c in changes if not c.empty]
        self.select_added = select_added
        self._select = None if select is None else list(select)  # what to select instead of every added note
        self._sel_before = set(doc.selection)

    def redo(self) -> None:
        edits.apply_all(self.doc.song, self.changes)
        self.doc.notify_notes({c.track for c in self.changes})
        if self.select_added:
            cur = self.doc.current_track
            chosen = self._select if self._select is not None else [n for c in self.changes for n in c.added]
            present = set(self.doc.song.tracks[cur].notes)
            self.doc.set_selection([n for n in chosen if n in present])

    def undo(self) -> None:
        for c in reversed(self.changes):
            edits.apply(self.doc.song, c.inverted())
        self.doc.notify_notes({c.track for c in self.changes})
        self.doc.set_selection(self._sel_before)


def push_notes(doc, text: str, *changes: NoteChange, select_added: bool = True) -> bool:
    """Push a NoteEdit unless it would change nothing. Returns whether something was pushed."""
    changes = [c for c in changes if not c.empty and c.removed != c.added]
    if not changes:
        return False
    # same-pitch notes never lie on top of each other: the earlier one ends where the later begins
    fixes, fate = edits.resolve_overlaps(doc.song, changes)
    select = None
    if fixes:
        select = [fate.get(n, n) for c in changes for n in c.added if fate.get(n, n) is not None]
    doc.undo.push(NoteEdit(doc, text, changes + fixes, select_added, select))
    return True


class ToggleFermatas(QUndoCommand):
    """Fermatas on or off at the onsets ``ticks`` (all on when any is missing, else all off)."""

    def __init__(self, doc, ticks):
        self.doc = doc
        self.old = doc.song.fermatas
        self.new = toggled_fermatas(self.old, ticks)
        super().__init__("Add fermata" if len(self.new) > len(self.old) else "Remove fermata")

    def _set(self, fermatas) -> None:
        self.doc.song.fermatas = fermatas
        self.doc.notify_maps()

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


class TrackProperty(QUndoCommand):
    """Set one attribute (name, program, mute, solo, color, ...) of one track."""

    def __init__(self, doc, index: int, attr: str, value, text: str | None = None):
        super().__init__(text or f"Change track {attr}")
        self.doc, self.index, self.attr, self.value = doc, index, attr, value
        self.old = getattr(doc.song.tracks[index], attr)

    def redo(self) -> None:
        setattr(self.doc.song.tracks[self.index], self.attr, self.value)
        self.doc.notify_tracks()

    def undo(self) -> None:
        setattr(self.doc.song.tracks[self.index], self.attr, self.old)
        self.doc.notify_tracks()


class SetInstrument(QUndoCommand):
    """A track's General MIDI program and whether it plays the drum kit, as one step."""

    def __init__(self, doc, index: int, program: int, is_drum: bool):
        super().__init__("Change instrument")
        t = doc.song.tracks[index]
        self.doc, self.index = doc, index
        self.new, self.old = (int(program), bool(is_drum)), (t.program, t.is_drum)

    def _set(self, values) -> None:
        t = self.doc.song.tracks[self.index]
        t.program, t.is_drum = values
        self.doc.notify_tracks()

    def redo(self) -> None:
        self._set(self.new)

    def undo(self) -> None:
        self._set(self.old)


class AddTrack(QUndoCommand):
    def __init__(self, doc, track: Track | None = None, index: int | None = None):
        super().__init__("Add track")
        self.doc = doc
        n = len(doc.song.tracks)
        used = {t.channel for t in doc.song.tracks}
        channel = next((c for c in range(16) if c != 9 and c not in used), 0)
        self.track = track or Track(name=f"Track {n + 1}", channel=channel)
        self.index = n if index is None else index

    def redo(self) -> None:
        self.doc.song.tracks.insert(self.index, self.track)
        self.doc.notify_tracks()
        self.doc.notify_notes({self.index})
        self.doc.set_current_track(self.index)

    def undo(self) -> None:
        del self.doc.song.tracks[self.index]
        self.doc.notify_tracks()
        self.doc.notify_notes(set())


class RemoveTrack(QUndoCommand):
    def __init__(self, doc, index: int):
        super().__init__("Remove track")
        self.doc, self.index = doc, index
        self.track = doc.song.tracks[index]

    def redo(self) -> None:
        del self.doc.song.tracks[self.index]
        if not self.doc.song.tracks:  # a song always keeps one track to draw into
            self.doc.song.tracks.append(Track(name="Track 1"))
            self._placeholder = True
        else:
            self._placeholder = False
        self.doc.clear_selection()
        self.doc.notify_tracks()
        self.doc.notify_notes(set())

    def undo(self) -> None:
        if self._placeholder:
            self.doc.song.tracks.pop()
        self.doc.song.tracks.insert(self.index, self.track)
        self.doc.notify_tracks()
        self.doc.notify_notes({self.index})
