"""Step input: notes entered one step at a time at a cursor, without a clock.

Each key pressed (on a MIDI keyboard, the computer keyboard, or a note name typed) joins the
chord being entered; when the last held key is released the chord is written at the cursor
with the current step length and the cursor moves on by that length.  A rest moves the cursor
on without writing anything.  Every step is one :class:`~studio.core.edits.NoteChange` (one
undo step in the editor).  Plain Python, no Qt.
"""

from __future__ import annotations

from .edits import NoteChange
from .song import Note

_NAMES = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


def parse_note_name(text: str, near: int = 60) -> int | None:
    """The MIDI pitch of a typed note name: ``"c"``, ``"F#"``, ``"bb"``, ``"Eb4"``, ``"c'"`` (up an
    octave), ``"c,"`` (down).  Without an octave number the pitch nearest ``near`` is taken.
    ``None`` if the text is not a note name."""
    t = text.strip()
    if not t or t[0].lower() not in _NAMES:
        return None
    pc = _NAMES[t[0].lower()]
    i = 1
    while i < len(t) and t[i] in "#b":
        pc += 1 if t[i] == "#" else -1
        i += 1
    rest = t[i:]
    octave_shift = rest.count("'") - rest.count(",")
    digits = rest.strip("',")
    if digits:
        try:
            octave = int(digits)
        except ValueError:
            return None
        pitch = 12 * (octave + 1) + pc
    else:
        base = near - ((near - pc) % 12)  # the nearest pitch of that class at or below ``near``
        pitch = base if near - base <= 6 else base + 12
    pitch += 12 * octave_shift
    return pitch if 0 <= pitch <= 127 else None


class StepInput:
    """The cursor, the step length and the chord being entered on one track."""

    def __init__(self, track: int, cursor: int = 0, length: int = 240, velocity: int = 90):
        self.track = int(track)
        self.cursor = max(0, int(cursor))
        self.length = max(1, int(length))
        self.velocity = int(velocity)
        self._down: set[int] = set()
        self._chord: dict[int, int] = {}  # pitch -> velocity
        self.last_pitch = 60

    @property
    def pending(self) -> list[int]:
        """Pitches of the chord being entered (keys pressed since the last step)."""
        return sorted(self._chord)

    def key_down(self, pitch: int, velocity: int | None = None) -> None:
        if not 0 <= pitch <= 127:
            return
        self._down.add(pitch)
        self._chord[pitch] = int(velocity or self.velocity)

    def key_up(self, pitch: int) -> NoteChange | None:
        """Release a key; when it was the last one held, the chord is written (returned)."""
        self._down.discard(pitch)
        if self._down or not self._chord:
            return None
        return self._write()

    def feed(self, msg) -> NoteChange | None:
        """A MIDI message (``mido``-like): note-ons press keys, note-offs release them."""
        kind = getattr(msg, "type", "")
        if kind == "note_on" and msg.velocity > 0:
            self.key_down(int(msg.note), int(msg.velocity))
        elif kind in ("note_on", "note_off"):
            return self.key_up(int(msg.note))
        return None

    def note(self, pitch: int) -> NoteChange:
        """Enter one note at once (a typed note name)."""
        self._chord[pitch] = self.velocity
        self._down.clear()
        return self._write()

    def rest(self) -> None:
        """Move the cursor on by one step without writing a note."""
        self._down.clear()
        self._chord.clear()
        self.cursor += self.length

    def back(self) -> None:
        self.cursor = max(0, self.cursor - self.length)

    def _write(self) -> NoteChange:
        notes = tuple(Note(self.cursor, p, self.length, max(1, min(127, v))) for p, v in sorted(self._chord.items()))
        self.last_pitch = notes[-1].pitch if notes else self.last_pitch
        self._chord.clear()
        self.cursor += self.length
        return NoteChange(self.track, (), notes)
