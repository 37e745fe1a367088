"""The event schedule shared by offline rendering (``render.py``, ``parallel.py``) and the
realtime player: a :class:`Schedule` is a song window (``start_tick``..``end_tick``) turned into note
on/off and controller events at frame positions through the tempo map; a :class:`Sequencer` plays
a schedule into a :class:`~studio.audio.synth.Synth`, rendering whole runs of frames between events
(FluidSynth applies an event at its next 64-frame block, about 1.5 ms at 44.1 kHz).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..core.song import PAN, PITCH_BEND, VOLUME, Song
from ..core.timing import TempoMap
from .synth import Synth

Progress = Callable[[float], "bool | None"]
# event kinds in a schedule: note off / on (False / True, as before controllers), control change, pitch bend
OFF, ON, CC, BEND = 0, 1, 2, 3
RESET_ALL_CONTROLLERS = 121
HEADROOM = 0.99  # a mix peaking above this is scaled down as a whole, never clipped
MAX_SECONDS = 3600.0  # longest render (held in memory: about 1.3 GB of float32 stereo an hour)


def audible(song: Song) -> list[bool]:
    """Which tracks sound: a muted track never does; when any track is soloed, only the
    soloed ones do."""
    any_solo = any(t.solo for t in song.tracks)
    return [(not t.mute) and (t.solo or not any_solo) for t in song.tracks]


@dataclass
class Schedule:
    """Note and controller events of one song window, in frames from the window's start.

    ``events`` are ``(frame, kind, channel, a, b)`` sorted by frame: ``kind`` False/True is
    a note off/on of pitch ``a`` at velocity ``b``, :data:`CC` a control change (controller
    ``a``, value ``b``), :data:`BEND` a pitch bend (``a`` in -8192..8191).  At one frame the
    note-offs come first, then controllers (in the order the track has them), then note-ons.
    The window opens with each audible channel's controllers reset, its volume and pan, and
    the controller values in force at ``start_tick``.  Overlapping notes of one pitch on one channel are merged so a
    note-off never cuts a note still held by another: the key is released when the last
    of them ends.  Every note is clipped to the window, so the window ends with all keys up.
    """

    start_tick: int
    end_tick: int
    sample_rate: int
    start_seconds: float
    length: int  # frames from start_tick to end_tick
    events: list[tuple[int, bool, int, int, int]] = field(default_factory=list)

    def tick_at(self, frame: int, tempo_map: TempoMap) -> float:
        """Song tick at ``frame`` frames into this window."""
        return tempo_map.tick(self.start_seconds + frame / self.sample_rate)


def build_schedule(song: Song, channels: list[int], sample_rate: int = 44100, start_tick: int = 0,
                   end_tick: int | None = None, tempo_map: TempoMap | None = None) -> Schedule:
    """Events of the audible tracks between ``start_tick`` and ``end_tick`` (default: the
    song's end).  A note that begins before ``start_tick`` and is still sounding there is
    started at the window's start, so playing from the middle of a long note sounds it."""
    tm = tempo_map or TempoMap(song)
    end = song.end_tick if end_tick is None else end_tick
    start = max(0, int(start_tick))
    end = max(start, int(end))
    t0 = tm.seconds(start)
    sr = int(sample_rate)

    def frame(tick: int) -> int:
        return int(round((tm.seconds(tick) - t0) * sr))

    raw: list[tuple[int, int, int, int, int]] = []  # (frame, on 0/1, channel, pitch, velocity)
    controls: list[tuple[int, int, int, int, int, int]] = []  # (frame, order, kind, channel, a, b)
    for track, ch, on in zip(song.tracks, channels, audible(song)):
        if not on:
            continue
        before: dict[int, tuple] = {}  # controller -> its last event before the window
        inside = []
        for c in track.controls:
            if c.tick > end or (c.tick == end and end > start):
                break
            ev = (BEND, c.value, 0) if c.number == PITCH_BEND else (CC, c.number, c.value)
            if c.tick < start:
                before[c.number] = (0, *ev)
            else:
                inside.append((frame(c.tick), *ev))
        opening = [(0, CC, RESET_ALL_CONTROLLERS, 0), (0, CC, VOLUME, track.volume), (0, CC, PAN, track.pan)]
        for fr, kind, a, b in opening + list(before.values()) + inside:
            controls.append((fr, len(controls), kind, ch, a, b))
        for n in track.notes:
            s, e = max(n.start, start), min(n.end, end)
            if e <= s or not 0 <= n.pitch <= 127:
                continue
            fs, fe = frame(s), frame(e)
            if fe <= fs:
                fe = fs + 1
            raw.append((fs, 1, ch, n.pitch, n.velocity))
            raw.append((fe, 0, ch, n.pitch, 0))
    raw.sort(key=lambda ev: (ev[0], ev[1], ev[2], ev[3]))
    held: dict[tuple[int, int], int] = {}
    notes = []
    for fr, on, ch, pitch, vel in raw:
        key = (ch, pitch)
        if on:
            held[key] = held.get(key, 0) + 1
            notes.append((fr, True, ch, pitch, vel))
        else:
            left = held.get(key, 0) - 1
            held[key] = max(0, left)
            if left <= 0:
                notes.append((fr, False, ch, pitch, 0))
    # merge: at one frame note-offs, then controllers in their order, then note-ons
    keyed = [((fr, 2 if on else 0, 0), (fr, on, ch, a, b)) for fr, on, ch, a, b in notes]
    keyed += [((fr, 1, order), (fr, kind, ch, a, b)) for fr, order, kind, ch, a, b in controls]
    keyed.sort(key=lambda kv: kv[0])
    return Schedule(start, end, sr, t0, frame(end), [ev for _k, ev in keyed])


class Sequencer:
    """Plays one :class:`Schedule` into a synth, a run of frames at a time."""

    def __init__(self, synth: Synth, schedule: Schedule):
        self.synth = synth
        self.schedule = schedule
        self.pos = 0  # frames rendered so far
        self._i = 0  # next event

    @property
    def done(self) -> bool:
        return self.pos >= self.schedule.length

    def _apply_until(self, frame: int) -> None:
        events, i, synth = self.schedule.events, self._i, self.synth
        while i < len(events) and events[i][0] <= frame:
            _f, kind, ch, a, b = events[i]
            if kind is True or kind == ON:
                synth.note_on(ch, a, b)
            elif kind is False or kind == OFF:
                synth.note_off(ch, a)
            elif kind == CC:
                synth.cc(ch, a, b)
            else:
                synth.pitch_bend(ch, a)
            i += 1
        self._i = i

    def render(self, out: np.ndarray, offset: int, frames: int) -> int:
        """Render up to ``frames`` frames into ``out`` from row ``offset``; returns how many
        were written (fewer when the schedule ends).  At the end every remaining event
        (the note-offs at the window's end) is applied."""
        end = min(self.pos + frames, self.schedule.length)
        events, base = self.schedule.events, self.pos
        while True:
            self._apply_until(self.pos)
            nxt = events[self._i][0] if self._i < len(events) else end
            stop = min(max(nxt, self.pos), end)
            if stop > self.pos:
                self.synth.write_into(out, offset + self.pos - base, stop - self.pos)
                self.pos = stop
            if self.pos >= end:
                break
        if self.done:
            self._apply_until(1 << 62)
        return self.pos - base
