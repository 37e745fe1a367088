"""Takes: what the models sent back, listed for auditioning, and accepted as one undo step.

A :class:`TakeEntry` keeps the take, the song as it was when the request was sent (the
diff's base) and the diff itself.  Nothing touches the document until the user accepts a
take; :class:`AcceptTake` then applies the diff (note changes plus any new tracks) and records
the take's model, parameters and seed in ``Song.meta["ai_history"]`` — all in one command.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QAbstractListModel, QModelIndex, Qt
from PySide6.QtGui import QUndoCommand

from ...core import edits, takediff
from ...core.song import Song, Track, json_copy
from ...ml.worker import protocol as P

HISTORY_KEY = "ai_history"
KIND_LABEL = {"continue": "Continue", "harmonize": "Harmonize", "regenerate": "Regenerate", "vary": "Vary",
              "probe": "Probe"}


@dataclass
class TakeEntry:
    take: P.Take
    kind: str  # the request's kind
    base: Song  # the document's song when the request was sent
    diff: takediff.TakeDiff
    number: int = 1
    note: str = ""  # extra words for the list (e.g. the span regenerated)
    extra: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        c = self.diff.counts()
        words = f"{KIND_LABEL.get(self.kind, self.kind)} {self.number}"
        if self.note:
            words += f" ({self.note})"
        nt = len(self.diff.new_tracks)
        tracks = f" · {nt} new track{'s' if nt != 1 else ''}" if nt else ""
        seed = f" · seed {self.take.seed}" if self.take.seed is not None else ""
        return f"{words}:  +{c['added']}  −{c['removed']}  ~{c['changed']}{tracks}{seed}"

    def applied(self, current: Song) -> Song:
        return takediff.applied(current, self.diff)


MODEL_WORDS = {"harmonizer": "Harmonizer", "continuation": "Continuation", "variation": "Variation", "probe": "Test job"}
PARAM_WORDS = {"temperature": "temperature", "top_p": "top-p", "bars": "bars", "from_bar": "from bar",
               "key_strength": "key strength", "candidates": "candidates", "strength": "strength", "takes": "takes",
               "take": "take", "voices": "voices", "start_tick": "from tick", "end_tick": "to tick"}


def _words(value) -> str:
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_words(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tooltip(e: TakeEntry) -> str:
    """A take in words: what made it, how long it took, what it changes, its settings."""
    t = e.take
    lines = [f"{MODEL_WORDS.get(t.model, t.model.capitalize())} take, made in {t.seconds:.1f} s: {e.diff.summary()}"]
    p = dict(t.params)
    settings = []
    keep = p.pop("keep", None)
    if keep:
        settings.append("keeps the " + " and ".join(str(k) for k in keep))
    for k, v in sorted(p.items()):
        if v is None or k in ("locked", "device", "seed"):
            continue
        settings.append(f"{PARAM_WORDS.get(k, k.replace('_', ' '))} {_words(v)}")
    if t.seed is not None:
        settings.append(f"seed {t.seed}")
    if settings:
        lines.append("Settings: " + "; ".join(settings))
    lines.append("In the roll: green added · red removed · violet changed")
    return "\n".join(lines)


class TakesModel(QAbstractListModel):
    EntryRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[TakeEntry] = []
        self._counter = 0

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt signature
        return 0 if parent.isValid() else len(self.entries)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        e = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return e.label
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(e)
        if role == self.EntryRole:
            return e
        return None

    def add(self, entries: list[TakeEntry]) -> None:
        if not entries:
            return
        for e in entries:
            self._counter += 1
            e.number = self._counter
        n = len(self.entries)
        self.beginInsertRows(QModelIndex(), n, n + len(entries) - 1)
        self.entries.extend(entries)
        self.endInsertRows()

    def remove(self, entry: TakeEntry) -> int:
        """Drop ``entry``; returns the row it had (or -1)."""
        for i, e in enumerate(self.entries):
            if e is entry:
                self.beginRemoveRows(QModelIndex(), i, i)
                del self.entries[i]
                self.endRemoveRows()
                return i
        return -1

    def put_back(self, entry: TakeEntry, row: int) -> None:
        """Insert ``entry`` again at ``row`` with its number (the undo of an accepted take)."""
        if any(e is entry for e in self.entries):
            return
        row = max(0, min(row, len(self.entries)))
        self.beginInsertRows(QModelIndex(), row, row)
        self.entries.insert(row, entry)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.entries = []
        self.endResetModel()

    def entry(self, row: int) -> TakeEntry | None:
        return self.entries[row] if 0 <= row < len(self.entries) else None


def _free_channels(song: Song):
    used = {t.channel for t in song.tracks}
    return [c for c in range(16) if c != 9 and c not in used]


class AcceptTake(QUndoCommand):
    """Apply a take to the document as one undoable step (notes, new tracks, AI history)."""

    def __init__(self, doc, entry: TakeEntry):
        super().__init__(f"Accept {KIND_LABEL.get(entry.kind, entry.kind).lower()} take")
        self.doc = doc
        song = doc.song
        self.changes = takediff.note_changes(song, entry.diff)
        free = _free_channels(song)
        self.new_tracks: list[Track] = []
        for t in entry.diff.new_tracks:
            nt = t.copy()
            nt.mute = nt.solo = False
            if free:
                nt.channel = free.pop(0)
            self.new_tracks.append(nt)
        self.first_new = len(song.tracks)
        t = entry.take
        hist = takediff.HistoryEntry(t.model, dict(t.params), t.seed, entry.diff.summary()).to_json()
        hist["kind"] = entry.kind
        self.history_entry = hist
        self.on_undo = None  # callables the panel sets: put the take back in the list, take it out again
        self.on_redo = None
        self._had_history = HISTORY_KEY in song.meta
        self._old_history = json_copy(song.meta.get(HISTORY_KEY))

    @property
    def touched(self) -> set[int]:
        return {c.track for c in self.changes} | set(range(self.first_new, self.first_new + len(self.new_tracks)))

    def redo(self) -> None:
        song = self.doc.song
        edits.apply_all(song, self.changes)
        for t in self.new_tracks:
            song.tracks.append(t.copy())
        hist = song.meta.get(HISTORY_KEY)
        song.meta[HISTORY_KEY] = (list(hist) if isinstance(hist, list) else []) + [json_copy(self.history_entry)]
        if self.new_tracks:
            self.doc.notify_tracks()
        self.doc.notify_notes(self.touched)
        if self.on_redo is not None:
            self.on_redo()

    def undo(self) -> None:
        song = self.doc.song
        del song.tracks[self.first_new:self.first_new + len(self.new_tracks)]
        for c in reversed(self.changes):
            edits.apply(song, c.inverted())
        if self._had_history:
            song.meta[HISTORY_KEY] = json_copy(self._old_history)
        else:
            song.meta.pop(HISTORY_KEY, None)
        sel = self.doc.selection
        if sel:
            self.doc.clear_selection()
        if self.new_tracks:
            self.doc.notify_tracks()
        self.doc.notify_notes(self.touched)
        if self.on_undo is not None:
            self.on_undo()


def history(song: Song) -> list[dict]:
    """The accepted takes recorded in the song (oldest first)."""
    h = song.meta.get(HISTORY_KEY)
    return [e for e in h if isinstance(e, dict)] if isinstance(h, list) else []
