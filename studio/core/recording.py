"""Recording played notes into a track: timestamped input messages become notes in ticks.

Plain Python (no Qt, no MIDI library): a :class:`Recorder` is fed messages that look like
``mido`` messages (``.type``, ``.note``, ``.velocity``, ``.control``, ``.value``) together with
the time in seconds on the recording clock.  The clock starts when the count-in starts; the
count-in (whole bars of the meter and tempo at the start tick) is not part of the recording,
so a note played on the downbeat after a one-bar count-in lands exactly on the start tick.
Seconds turn into ticks through the song's tempo map, so the same phrase played at two tempos
arrives on the same ticks.

Recorded timing is kept as played; ``quantize`` (a grid in ticks, 0 = off) is an optional
input quantize applied when a take is turned into an edit.

With a ``loop`` region ``(a, b)`` the song position wraps from ``b`` back to ``a`` and every
pass is a take of its own (:attr:`Recorder.takes`); a note still held at ``b`` ends there.
Sustain (controller 64) and other controller changes are kept per take as
:class:`ControllerEvent` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import edits
from .edits import NoteChange
from .song import SUSTAIN, Note, Song
from .timing import TempoMap

OVERDUB, REPLACE = "overdub", "replace"
MODES = (OVERDUB, REPLACE)
PEDALS = (SUSTAIN, 66, 67)  # sustain, sostenuto, soft: lifted where a take ends
GRACE_SECONDS = 0.12  # a note struck this little before the start tick is taken as on it


@dataclass(frozen=True, slots=True)
class ControllerEvent:
    tick: int
    control: int
    value: int


@dataclass(slots=True)
class Take:
    """One pass of a recording: the notes and controller changes played in ``start..end`` ticks."""

    index: int
    start: int
    end: int
    notes: list[Note] = field(default_factory=list)
    controllers: list[ControllerEvent] = field(default_factory=list)

    @property
    def sustain(self) -> list[ControllerEvent]:
        return [c for c in self.controllers if c.control == SUSTAIN]


def count_in_seconds(song: Song, start_tick: int, bars: int) -> float:
    """Length of ``bars`` bars of the meter and tempo in force at ``start_tick``."""
    if bars <= 0:
        return 0.0
    meter = song.time_signature_at(start_tick)
    bpm = song.tempo_at(start_tick).bpm
    return bars * meter.bar_ticks(song.ppq) * 60.0 / (bpm * song.ppq)


class Recorder:
    """Turns timestamped note and controller messages into takes of notes in ticks."""

    def __init__(self, song: Song, track: int, start_tick: int = 0, count_in_bars: int = 0,
                 mode: str = OVERDUB, loop: tuple[int, int] | None = None, quantize: int = 0):
        if mode not in MODES:
            raise ValueError(f"recording mode must be one of {MODES}, not {mode!r}")
        self.song = song
        self.track = int(track)
        self.mode = mode
        self.quantize = max(0, int(quantize))
        self.tempo = TempoMap(song)
        start = max(0, int(start_tick))
        if loop is not None:
            a, b = int(loop[0]), int(loop[1])
            if b <= a:
                loop = None
            else:
                if not a <= start < b:
                    start = a
                loop = (a, b)
        self.loop = loop
        self.start_tick = start
        self.count_in = count_in_seconds(song, start, count_in_bars)
        self._start_s = self.tempo.seconds(start)
        if loop is not None:
            self._a_s, self._b_s = self.tempo.seconds(loop[0]), self.tempo.seconds(loop[1])
        self.takes: list[Take] = []
        self._held: dict[int, tuple[int, int, int]] = {}  # pitch -> (take, start tick, velocity)
        self._last_time = 0.0
        self.finished = False

    # ---- the clock -----------------------------------------------------------------------
    def locate(self, t: float) -> tuple[int, float]:
        """(pass, tick) of clock time ``t``; during the count-in the tick is before the start."""
        s = t - self.count_in
        if self.loop is None or s < 0:
            return 0, self.tempo.tick(self._start_s + s) if s >= 0 else self.start_tick + s / self._spt_at_start()
        first = self._b_s - self._start_s
        if s < first:
            return 0, self.tempo.tick(self._start_s + s)
        length = self._b_s - self._a_s
        k, rem = divmod(s - first, length)
        return 1 + int(k), self.tempo.tick(self._a_s + rem)

    def position(self, t: float) -> int:
        """The song tick the playhead shows at clock time ``t`` (before the start tick while counting in)."""
        return int(round(self.locate(t)[1]))

    def counting_in(self, t: float) -> bool:
        return t < self.count_in

    def count_in_beat(self, t: float, beat_ticks: int) -> int | None:
        """The beat of the count-in being counted at clock time ``t`` (1, 2, ...), or None after it."""
        if not self.counting_in(t) or t < 0:
            return None
        return int(t / (beat_ticks * self._spt_at_start())) + 1

    def _spt_at_start(self) -> float:
        return 60.0 / (self.song.tempo_at(self.start_tick).bpm * self.song.ppq)

    def _take(self, index: int) -> Take:
        while len(self.takes) <= index:
            i = len(self.takes)
            if self.loop is None:
                span = (self.start_tick, self.start_tick)
            else:
                span = (self.start_tick if i == 0 else self.loop[0], self.loop[1])
            self.takes.append(Take(i, *span))
        return self.takes[index]

    def _pass_end(self, index: int) -> int | None:
        return None if self.loop is None else self.loop[1]

    # ---- input ------------------------------------------------------------------------------
    def feed(self, msg, t: float) -> Note | None:
        """Take one message played at clock time ``t``; returns the note it completed, if any."""
        if self.finished:
            return None
        self._last_time = max(self._last_time, t)
        kind = getattr(msg, "type", "")
        if kind == "note_on" and getattr(msg, "velocity", 0) > 0:
            self._note_on(int(msg.note), int(msg.velocity), t)
        elif kind in ("note_on", "note_off"):
            return self._note_off(int(msg.note), t)
        elif kind == "control_change":
            self._control(int(msg.control), int(msg.value), t)
        return None

    def _note_on(self, pitch: int, velocity: int, t: float) -> None:
        if t < self.count_in - GRACE_SECONDS:
            return  # played during the count-in: not part of the recording
        k, tick = self.locate(max(t, self.count_in))
        self._take(k)
        if pitch in self._held:  # the same key struck again without a release in between
            self._note_off(pitch, t)
        self._held[pitch] = (k, int(round(tick)), velocity)

    def _note_off(self, pitch: int, t: float) -> Note | None:
        held = self._held.pop(pitch, None)
        if held is None:
            return None
        k0, start, velocity = held
        k, tick = self.locate(max(t, self.count_in))
        end = int(round(tick)) if k == k0 else self._pass_end(k0)
        if end is None:
            end = int(round(tick))
        note = Note(start, pitch, max(1, end - start), max(1, min(127, velocity)))
        take = self._take(k0)
        take.notes.append(note)
        take.end = max(take.end, note.end if self.loop is None else take.end)
        return note

    def _control(self, control: int, value: int, t: float) -> None:
        if t < self.count_in:
            return
        k, tick = self.locate(t)
        self._take(k).controllers.append(ControllerEvent(int(round(tick)), control, max(0, min(127, value))))

    # ---- what is being played now (for the roll while recording) -----------------------------
    def sounding(self, t: float) -> list[Note]:
        """Notes held at clock time ``t``, drawn up to the playhead."""
        out = []
        k_now, now = self.locate(max(t, self.count_in))
        for pitch, (k, start, velocity) in self._held.items():
            end = now if k == k_now else (self._pass_end(k) or now)
            out.append(Note(start, pitch, max(1, int(round(end)) - start), velocity))
        return sorted(out)

    def notes_so_far(self, t: float) -> list[Note]:
        """The current pass's finished notes plus the held ones."""
        k = self.locate(max(t, self.count_in))[0]
        done = self.takes[k].notes if k < len(self.takes) else []
        return sorted(done + self.sounding(t))

    # ---- the end ------------------------------------------------------------------------------
    def finish(self, t: float) -> list[Take]:
        """Stop at clock time ``t``: held notes are released there; returns the takes with notes."""
        if not self.finished:
            t = max(t, self._last_time)
            for pitch in list(self._held):
                self._note_off(pitch, t)
            k, tick = self.locate(max(t, self.count_in))
            if self.loop is None:
                take = self._take(0)
                take.end = max(take.end, int(round(tick)))
            elif t >= self.count_in:
                take = self._take(k)
                take.end = int(round(tick)) if take.end <= take.start else take.end
            for take in self.takes:
                take.notes.sort()
                take.controllers.sort(key=lambda c: c.tick)
                last_pass = self.loop is None or take.index == k
                self._lift_pedals(take, int(round(tick)) if last_pass else take.end)
            self.finished = True
        return [tk for tk in self.takes if tk.notes or tk.controllers]

    @staticmethod
    def _lift_pedals(take: Take, tick: int) -> None:
        """A pedal still down where a take ends is lifted there, as held keys are released."""
        down: dict[int, int] = {}
        for c in take.controllers:
            if c.control in PEDALS:
                down[c.control] = c.value
        for control, value in sorted(down.items()):
            if value >= 64:
                take.controllers.append(ControllerEvent(max(tick, take.controllers[-1].tick), control, 0))

    def take_notes(self, take: Take) -> list[Note]:
        """A take's notes, input-quantized when ``quantize`` is set."""
        notes = sorted(take.notes)
        if self.quantize and notes:  # on the grid of the real bars (a pickup, a meter change)
            from .grid import SnapGrid  # noqa: PLC0415
            from .timing import bars  # noqa: PLC0415

            grid = SnapGrid(bars(self.song, until=max(n.end for n in notes) + 1), self.quantize, self.song.ppq)
            notes = sorted(edits.quantize(self.track, notes, self.quantize, snap=grid.round).added)
        return notes

    def change(self, song: Song, take: Take | None = None) -> NoteChange:
        """The edit that puts ``take`` (default: the last take with notes) into the track: in
        replace mode the track's notes starting inside the take's span go; overdub keeps them."""
        if take is None:
            kept = [tk for tk in self.takes if tk.notes]
            if not kept:
                return NoteChange(self.track)
            take = kept[-1]
        notes = self.take_notes(take)
        removed: tuple[Note, ...] = ()
        if self.mode == REPLACE:
            lo = min([take.start] + [n.start for n in notes])
            hi = max([take.end] + [n.end for n in notes])
            removed = tuple(n for n in song.tracks[self.track].notes if lo <= n.start < hi)
        present = set(song.tracks[self.track].notes) - set(removed)
        added = tuple(n for n in notes if n not in present)  # a note already there exactly stays once
        return NoteChange(self.track, removed, added)
