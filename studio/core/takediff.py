"""Note-level difference between a model's take and the song it was made from.

Pure Python (no Qt, no torch): the assistant panel shows the diff as an overlay and turns it
into one undoable edit when the user accepts the take.

A take is a whole :class:`~studio.core.song.Song`.  Its tracks are first matched to the
song's tracks (:func:`match_tracks`); a take track without a partner becomes a new track.
Within a matched pair the notes are compared as multisets: notes only in the song are
*removed*, notes only in the take are *added*, and a removed/added pair at the same onset
(same pitch with another length or velocity, or the nearest other pitch) is one *changed*
note.  The diff is taken against the song as it was when the request was sent (``base``),
so edits the user made while the model was working are kept when the take is accepted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .edits import NoteChange
from .song import Note, Song, Track

CHANGE_MAX_INTERVAL = 12  # a different pitch at the same onset counts as "changed" within an octave


@dataclass(frozen=True)
class TrackDiff:
    take_track: int  # index in the take
    song_track: int | None  # index in the song; None = a new track
    removed: tuple[Note, ...] = ()
    added: tuple[Note, ...] = ()
    changed: tuple[tuple[Note, Note], ...] = ()  # (old, new)

    @property
    def empty(self) -> bool:
        return not (self.removed or self.added or self.changed)

    @property
    def all_removed(self) -> tuple[Note, ...]:
        return self.removed + tuple(o for o, _ in self.changed)

    @property
    def all_added(self) -> tuple[Note, ...]:
        return self.added + tuple(n for _, n in self.changed)


@dataclass(frozen=True)
class TakeDiff:
    tracks: tuple[TrackDiff, ...]
    new_tracks: tuple[Track, ...] = ()  # take tracks with no partner, in take order (with their notes)
    span: tuple[int, int] = (0, 0)  # ticks covered by the differences

    @property
    def empty(self) -> bool:
        return not self.new_tracks and all(t.empty for t in self.tracks)

    def counts(self) -> dict:
        c = {"added": 0, "removed": 0, "changed": 0}
        for t in self.tracks:
            c["added"] += len(t.added)
            c["removed"] += len(t.removed)
            c["changed"] += len(t.changed)
        c["added"] += sum(len(t.notes) for t in self.new_tracks)
        return c

    def summary(self) -> str:
        c = self.counts()
        parts = [f"+{c['added']} added", f"−{c['removed']} removed", f"~{c['changed']} changed"]
        if self.new_tracks:
            parts.append(f"{len(self.new_tracks)} new track{'s' if len(self.new_tracks) > 1 else ''}")
        return ", ".join(parts)


def _norm(name: str) -> str:
    return name.strip().lower()


def match_tracks(song: Song, take: Song, anchor: dict[int, int] | None = None,
                 by_index: bool = True) -> dict[int, int | None]:
    """Map each take track to a song track (or None for a new one).

    ``anchor`` fixes some pairs (take index -> song index), e.g. the harmonizer's soprano to
    the melody track the user chose.  Otherwise: the same layout (count and names) pairs by
    index; else a take track pairs with an unused song track of the same name, and (with
    ``by_index``) when the take has exactly as many tracks as the song, the rest pair by index.
    """
    anchor = dict(anchor or {})
    out: dict[int, int | None] = {}
    used = set(anchor.values())
    out.update(anchor)
    same_layout = len(song.tracks) == len(take.tracks) and all(
        _norm(a.name) == _norm(b.name) for a, b in zip(song.tracks, take.tracks))
    for i, tt in enumerate(take.tracks):
        if i in out:
            continue
        if same_layout and i not in used:
            out[i] = i
            used.add(i)
            continue
        j = next((j for j, st in enumerate(song.tracks) if j not in used and _norm(st.name) == _norm(tt.name)), None)
        if j is not None:
            out[i] = j
            used.add(j)
    if by_index and len(song.tracks) == len(take.tracks):
        for i in range(len(take.tracks)):
            if i not in out and i not in used:
                out[i] = i
                used.add(i)
    for i in range(len(take.tracks)):
        out.setdefault(i, None)
    return out


def _multiset_diff(old: list[Note], new: list[Note]) -> tuple[list[Note], list[Note]]:
    a, b = Counter(old), Counter(new)
    removed = sorted((a - b).elements())
    added = sorted((b - a).elements())
    return removed, added


def _pair_changes(removed: list[Note], added: list[Note]):
    """Pair removed and added notes at the same onset; returns (removed, added, changed)."""
    by_start: dict[int, list[Note]] = {}
    for n in added:
        by_start.setdefault(n.start, []).append(n)
    changed, left = [], []
    # first the same pitch (length or velocity changed), then the nearest pitch
    for same_pitch in (True, False):
        left = []
        for old in removed:
            cands = by_start.get(old.start, [])
            if same_pitch:
                pick = next((n for n in cands if n.pitch == old.pitch), None)
            else:
                near = [n for n in cands if abs(n.pitch - old.pitch) <= CHANGE_MAX_INTERVAL]
                pick = min(near, key=lambda n: (abs(n.pitch - old.pitch), n.pitch), default=None)
            if pick is None:
                left.append(old)
            else:
                cands.remove(pick)
                changed.append((old, pick))
        removed = left
    rest = sorted(n for ns in by_start.values() for n in ns)
    return tuple(sorted(left)), tuple(rest), tuple(sorted(changed))


def diff(base: Song, take: Song, anchor: dict[int, int] | None = None, by_index: bool = True) -> TakeDiff:
    """The note-level difference that turns ``base`` into ``take`` (see the module docstring)."""
    mapping = match_tracks(base, take, anchor, by_index)
    tracks, new_tracks = [], []
    lo, hi = None, None

    def cover(notes):
        nonlocal lo, hi
        for n in notes:
            lo = n.start if lo is None else min(lo, n.start)
            hi = n.end if hi is None else max(hi, n.end)

    for i, tt in enumerate(take.tracks):
        j = mapping[i]
        if j is None:
            new_tracks.append(tt.copy())
            cover(tt.notes)
            continue
        removed, added = _multiset_diff(base.tracks[j].notes, tt.notes)
        rem, add, chg = _pair_changes(removed, added)
        td = TrackDiff(i, j, rem, add, chg)
        cover(td.all_removed + td.all_added)
        tracks.append(td)
    return TakeDiff(tuple(tracks), tuple(new_tracks), (lo or 0, hi or 0))


def note_changes(current: Song, d: TakeDiff) -> list[NoteChange]:
    """NoteChanges that apply ``d`` to ``current`` (the song now, possibly edited since the request).

    A note the diff removes is removed only if it is still there (the user may have deleted
    or moved it meanwhile); the take's new notes are all added.
    """
    out = []
    for t in d.tracks:
        j = t.song_track
        if j is None or j >= len(current.tracks):
            continue
        have = Counter(current.tracks[j].notes)
        removed = []
        for n in t.all_removed:
            if have[n] > 0:
                have[n] -= 1
                removed.append(n)
        c = NoteChange(j, tuple(removed), tuple(sorted(t.all_added)))
        if not c.empty:
            out.append(c)
    return out


def applied(current: Song, d: TakeDiff) -> Song:
    """A copy of ``current`` with the take applied (for auditioning the take against the original)."""
    from .edits import apply_all

    song = current.copy()
    apply_all(song, note_changes(song, d))
    for t in d.new_tracks:
        song.tracks.append(t.copy())
    return song


@dataclass
class HistoryEntry:
    """One accepted take, as stored in ``Song.meta["ai_history"]``."""

    model: str
    params: dict = field(default_factory=dict)
    seed: int | None = None
    summary: str = ""

    def to_json(self) -> dict:
        return {"model": self.model, "params": _jsonable(self.params), "seed": self.seed, "summary": self.summary}


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Note):
        return [obj.start, obj.pitch, obj.duration, obj.velocity]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return str(obj)
