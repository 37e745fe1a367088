"""The song model: tracks of notes on an integer tick grid, plus tempo, meter and key maps.

Everything here is plain Python (no Qt, no torch) so the model, the file formats, the
command line and the worker can all share it.  Time is measured in integer ticks at a
fixed resolution (``PPQ`` ticks per quarter note) so that grids are exact.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace

PPQ = 480  # ticks per quarter note, the one resolution used inside the app

# key names by number of sharps (positive) / flats (negative)
_MAJOR_BY_FIFTHS = {
    -7: "Cb", -6: "Gb", -5: "Db", -4: "Ab", -3: "Eb", -2: "Bb", -1: "F", 0: "C",
    1: "G", 2: "D", 3: "A", 4: "E", 5: "B", 6: "F#", 7: "C#",
}
_MINOR_BY_FIFTHS = {
    -7: "Ab", -6: "Eb", -5: "Bb", -4: "F", -3: "C", -2: "G", -1: "D", 0: "A",
    1: "E", 2: "B", 3: "F#", 4: "C#", 5: "G#", 6: "D#", 7: "A#",
}
_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def pitch_class_of(name: str) -> int:
    """Pitch class of a note name such as ``"F#"`` or ``"Bb"``."""
    pc = _PC[name[0].upper()]
    for ch in name[1:]:
        pc += 1 if ch == "#" else -1 if ch in "b-" else 0
    return pc % 12


@dataclass(frozen=True, slots=True, order=True)
class Note:
    """One note. Immutable: an edit replaces notes rather than changing them in place.

    Field order makes notes sort by onset, then pitch.
    """

    start: int
    pitch: int
    duration: int
    velocity: int = 80

    @property
    def end(self) -> int:
        return self.start + self.duration

    def moved(self, dt: int = 0, dp: int = 0) -> "Note":
        return replace(self, start=self.start + dt, pitch=self.pitch + dp)


@dataclass(frozen=True, slots=True)
class TempoChange:
    tick: int
    bpm: float

    @property
    def us_per_quarter(self) -> int:
        return int(round(60_000_000 / self.bpm))


@dataclass(frozen=True, slots=True)
class TimeSignature:
    tick: int
    numerator: int = 4
    denominator: int = 4

    def bar_ticks(self, ppq: int = PPQ) -> int:
        return self.numerator * ppq * 4 // self.denominator

    def beat_ticks(self, ppq: int = PPQ) -> int:
        return ppq * 4 // self.denominator

    def __str__(self) -> str:
        return f"{self.numerator}/{self.denominator}"


@dataclass(frozen=True, slots=True)
class KeySignature:
    """A key as MIDI stores it: sharps (+) or flats (-), and major or minor."""

    tick: int
    fifths: int = 0
    minor: bool = False

    @property
    def tonic(self) -> str:
        table = _MINOR_BY_FIFTHS if self.minor else _MAJOR_BY_FIFTHS
        return table[max(-7, min(7, self.fifths))]

    @property
    def tonic_pc(self) -> int:
        return pitch_class_of(self.tonic)

    @property
    def name(self) -> str:
        return f"{self.tonic} {'minor' if self.minor else 'major'}"

    def scale_pcs(self) -> frozenset[int]:
        """Pitch classes of the key's diatonic scale (natural minor for minor keys)."""
        steps = (0, 2, 3, 5, 7, 8, 10) if self.minor else (0, 2, 4, 5, 7, 9, 11)
        return frozenset((self.tonic_pc + s) % 12 for s in steps)

    @staticmethod
    def from_name(text: str, tick: int = 0) -> "KeySignature":
        """Parse ``"C"``, ``"Am"``, ``"F# minor"``, ``"Bb major"``."""
        t = text.strip().replace(" major", "").replace(" maj", "")
        minor = False
        for suffix in (" minor", " min", "m"):
            if t.endswith(suffix) and len(t) > len(suffix) - 1:
                t, minor = t[: -len(suffix)].strip(), True
                break
        t = t[:1].upper() + t[1:]
        table = _MINOR_BY_FIFTHS if minor else _MAJOR_BY_FIFTHS
        for fifths, name in table.items():
            if name == t:
                return KeySignature(tick, fifths, minor)
        # enharmonic fallback: pick the spelling with fewest accidentals
        pc = pitch_class_of(t)
        best = min((f for f, n in table.items() if pitch_class_of(n) == pc), key=abs)
        return KeySignature(tick, best, minor)


# controller numbers the app knows by name (MIDI control change numbers); 128 is pitch bend
VOLUME, PAN, EXPRESSION, SUSTAIN = 7, 10, 11, 64
PITCH_BEND = 128
CONTROLLER_NAMES = {1: "Modulation", VOLUME: "Volume", PAN: "Pan", EXPRESSION: "Expression",
                    SUSTAIN: "Sustain", 66: "Sostenuto", 67: "Soft pedal", PITCH_BEND: "Pitch bend"}


def controller_name(number: int) -> str:
    return CONTROLLER_NAMES.get(number, f"CC {number}")


@dataclass(frozen=True, slots=True)
class Control:
    """One controller event: ``number`` 0-127 is a MIDI control change with ``value`` 0-127;
    ``number`` 128 (:data:`PITCH_BEND`) is a pitch bend with ``value`` -8192..8191 (0 = centre).

    Events keep the order they came in at one tick (a pedal lifted and pressed again at the
    same tick is two events, in that order), so tracks sort them by tick only (stable)."""

    tick: int
    number: int
    value: int

    @property
    def is_bend(self) -> bool:
        return self.number == PITCH_BEND

    @property
    def pedal_down(self) -> bool:
        """For a pedal (64-69): down at 64 and above, as the MIDI standard reads it."""
        return self.value >= 64


@dataclass(slots=True)
class Track:
    name: str = "Track"
    program: int = 0  # General MIDI program, 0-127
    channel: int = 0  # 0-15; 9 is the drum channel
    is_drum: bool = False
    notes: list[Note] = field(default_factory=list)  # kept sorted
    color: str = ""  # "#rrggbb", empty = automatic
    mute: bool = False
    solo: bool = False
    controls: list[Control] = field(default_factory=list)  # sorted by tick, stable
    volume: int = 100  # channel volume (CC 7) at the start, 0-127; 100 is General MIDI's default
    pan: int = 64  # pan (CC 10) at the start, 0 = left, 64 = centre, 127 = right

    def sort(self) -> None:
        self.notes.sort()
        self.controls.sort(key=_tick_of)

    def controls_of(self, number: int) -> list[Control]:
        """The events of one controller, in time order."""
        return [c for c in self.controls if c.number == number]

    def add(self, note: Note) -> None:
        bisect.insort(self.notes, note)

    def remove(self, note: Note) -> None:
        i = bisect.bisect_left(self.notes, note)
        if i < len(self.notes) and self.notes[i] == note:
            del self.notes[i]
        else:
            raise ValueError(f"note not in track {self.name!r}: {note}")

    @property
    def end_tick(self) -> int:
        return max((n.end for n in self.notes), default=0)

    def copy(self) -> "Track":
        return replace(self, notes=list(self.notes), controls=list(self.controls))


@dataclass(slots=True)
class Song:
    title: str = "Untitled"
    ppq: int = PPQ
    tracks: list[Track] = field(default_factory=list)
    tempos: list[TempoChange] = field(default_factory=lambda: [TempoChange(0, 120.0)])
    time_signatures: list[TimeSignature] = field(default_factory=lambda: [TimeSignature(0, 4, 4)])
    key_signatures: list[KeySignature] = field(default_factory=lambda: [KeySignature(0, 0, False)])
    meta: dict = field(default_factory=dict)  # JSON-able extras the project file keeps (e.g. AI history)
    composer: str = ""
    # length in ticks of a partial first bar (an anacrusis); 0 = the song starts with a full bar.
    # Tick 0 is the start of the pickup; the first full bar begins at ``pickup``.
    pickup: int = 0
    # onset ticks of the notes that carry a fermata (phrase ends), sorted, no duplicates; one mark
    # holds for every track sounding there, as a score prints it over each staff
    fermatas: tuple[int, ...] = ()

    # ---- queries -----------------------------------------------------------------
    @property
    def end_tick(self) -> int:
        return max((t.end_tick for t in self.tracks), default=0)

    @property
    def note_count(self) -> int:
        return sum(len(t.notes) for t in self.tracks)

    def tempo_at(self, tick: int) -> TempoChange:
        return _at(self.tempos, tick) or TempoChange(0, 120.0)

    def time_signature_at(self, tick: int) -> TimeSignature:
        return _at(self.time_signatures, tick) or TimeSignature(0, 4, 4)

    def key_at(self, tick: int) -> KeySignature:
        return _at(self.key_signatures, tick) or KeySignature(0, 0, False)

    def copy(self) -> "Song":
        return Song(
            title=self.title,
            ppq=self.ppq,
            tracks=[t.copy() for t in self.tracks],
            tempos=list(self.tempos),
            time_signatures=list(self.time_signatures),
            key_signatures=list(self.key_signatures),
            meta=json_copy(self.meta),
            composer=self.composer,
            pickup=self.pickup,
            fermatas=self.fermatas,
        )

    def normalize(self) -> "Song":
        """Sort every map and track in place; drop duplicate map entries at one tick."""
        for t in self.tracks:
            t.sort()
        self.tempos = _dedupe(self.tempos) or [TempoChange(0, 120.0)]
        self.time_signatures = _dedupe(self.time_signatures) or [TimeSignature(0, 4, 4)]
        self.key_signatures = _dedupe(self.key_signatures) or [KeySignature(0, 0, False)]
        self.fermatas = fermata_ticks(self.fermatas)
        return self

    def has_fermata(self, tick: int) -> bool:
        i = bisect.bisect_left(self.fermatas, tick)
        return i < len(self.fermatas) and self.fermatas[i] == tick

    def notes_equal(self, other: "Song") -> bool:
        if len(self.tracks) != len(other.tracks):
            return False
        return all(a.notes == b.notes for a, b in zip(self.tracks, other.tracks))


def fermata_ticks(ticks) -> tuple[int, ...]:
    """Fermata positions as a Song keeps them: whole ticks at or after 0, sorted, each once."""
    return tuple(sorted({int(t) for t in ticks if int(t) >= 0}))


def toggled_fermatas(fermatas, ticks) -> tuple[int, ...]:
    """``fermatas`` with the marks at ``ticks`` switched: all set when any of them is missing,
    else all removed (one toggle over a selection, as a bold button works)."""
    have, want = set(fermatas), set(ticks)
    return fermata_ticks(have | want if not want <= have else have - want)


def json_copy(obj):
    """A deep copy of plain JSON-like data (dicts, lists, numbers, strings)."""
    if isinstance(obj, dict):
        return {k: json_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_copy(v) for v in obj]
    return obj


def _at(events, tick):
    """The last event at or before ``tick`` in a list sorted by tick."""
    found = None
    for ev in events:
        if ev.tick <= tick:
            found = ev
        else:
            break
    return found


def _tick_of(ev) -> int:
    return ev.tick


def _dedupe(events):
    by_tick = {}
    for ev in sorted(events, key=lambda e: e.tick):
        by_tick[ev.tick] = ev  # the later one at a tick wins
    return list(by_tick.values())
