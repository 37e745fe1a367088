"""The metronome: clicks on the beats through FluidSynth's percussion channel.

A click falls on every beat of the meter: every quarter of 4/4, every dotted quarter of a
compound meter (6/8, 9/8, 12/8), with an accented sound on each bar's downbeat.  The clicks
are General MIDI percussion (the metronome bell on the downbeat, the metronome click on the other
beats) on a drum channel of their own, so the metronome has its own volume and never changes
a track's sound.  A count-in is whole bars of clicks before the start tick, at the meter and
tempo in force there.

:func:`clicks` gives the click times (pure); :func:`click_events` turns them into schedule
events for :mod:`studio.audio.render`'s :class:`Sequencer`; :func:`render_clicks` renders
them offline (the test of the click timing, and ``studio`` has no other use for it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..core.recording import count_in_seconds
from ..core.song import Song, TimeSignature
from ..core.timing import TempoMap, bars, beat_origin
from .render import Schedule, Sequencer
from .synth import Synth, find_soundfont

METRONOME_CHANNEL = 41  # 41 % 16 == 9: a percussion slot that neither tracks (9) nor previews (57) use
ACCENT_KEY = 34  # GM Metronome Bell
BEAT_KEY = 33  # GM Metronome Click
SYNTH_BLOCK = 64  # FluidSynth renders (and applies events) in blocks of this many frames
CLICK_SECONDS = 0.05  # a click's key is released after this long


@dataclass(frozen=True, slots=True)
class Click:
    seconds: float  # from the start of the count-in (or of the window when there is none)
    tick: float  # song tick; before the start tick during the count-in
    accent: bool


def beat_ticks(meter: TimeSignature, ppq: int) -> int:
    """The ticks of one felt beat: dotted quarters in compound meters, else the denominator's note."""
    unit = meter.beat_ticks(ppq)
    if meter.denominator >= 8 and meter.numerator % 3 == 0 and meter.numerator > 3:
        return 3 * unit
    return unit


def clicks(song: Song, start_tick: int, end_tick: int, count_in_bars: int = 0) -> list[Click]:
    """Clicks from ``start_tick`` to ``end_tick`` (exclusive) after ``count_in_bars`` bars of count-in.

    Times are seconds from the start of the count-in, through the song's tempo map."""
    tm = TempoMap(song)
    start = max(0, int(start_tick))
    meter = song.time_signature_at(start)
    spt = 60.0 / (song.tempo_at(start).bpm * song.ppq)
    lead_ticks = max(0, int(count_in_bars)) * meter.bar_ticks(song.ppq)
    lead = lead_ticks * spt
    out: list[Click] = []
    beat, bar_len = beat_ticks(meter, song.ppq), meter.bar_ticks(song.ppq)
    for k in range(0, lead_ticks, beat):  # the count-in, in the meter and tempo at the start
        out.append(Click(k * spt, start - lead_ticks + k, k % bar_len == 0))
    t0 = tm.seconds(start)
    for bar in bars(song, until=max(end_tick, start + 1)):
        if bar.end <= start:
            continue
        if bar.start >= end_tick:
            break
        step = beat_ticks(bar.meter, song.ppq)
        origin = beat_origin(song, bar)  # a pickup's beats are the last beats of a bar: no accent
        for tick in range(origin, bar.end, step):
            if start <= tick < end_tick and tick >= bar.start:
                out.append(Click(lead + tm.seconds(tick) - t0, float(tick), tick == origin))
    return out


def with_clicks(schedule: Schedule, song: Song, volume: float = 0.8, attack: dict | None = None) -> Schedule:
    """``schedule`` (a window of ``song``) with the metronome's clicks on every beat of it, through
    the song's tempo and meter changes: what playback plays when the metronome is on."""
    cl = clicks(song, schedule.start_tick, schedule.end_tick)
    events = _merge(schedule.events, click_events(cl, schedule.sample_rate, volume, attack=attack))
    return Schedule(schedule.start_tick, schedule.end_tick, schedule.sample_rate, schedule.start_seconds,
                    schedule.length, events)


def cached_attack(soundfont: str | os.PathLike | None, sample_rate: int) -> dict[int, float] | None:
    """The clicks' attack delays when :func:`attack_delays` has measured them already, else None."""
    try:
        return _attack_cache.get((str(find_soundfont(soundfont)), int(sample_rate)))
    except Exception:  # noqa: BLE001 - no soundfont: nothing measured
        return None


def click_events(click_list, sample_rate: int, volume: float = 0.8, channel: int = METRONOME_CHANNEL,
                 offset_seconds: float = 0.0, attack: dict | None = None) -> list[tuple[int, bool, int, int, int]]:
    """Schedule events ``(frame, on, channel, key, velocity)`` for clicks; ``volume`` 0..1.

    ``attack`` (key -> seconds, from :func:`attack_delays`) moves each click earlier by the
    time its sample takes to become audible, so what is heard starts on the beat."""
    v = max(0.0, min(1.0, float(volume)))
    if v <= 0.0:
        return []
    events = []
    for c in click_list:
        # FluidSynth starts an event at its next 64-frame block: a click placed on a block
        # boundary sounds when it is due (at most 0.73 ms from the exact time at 44.1 kHz)
        key = ACCENT_KEY if c.accent else BEAT_KEY
        due = c.seconds + offset_seconds - (attack or {}).get(key, 0.0)
        frame = max(0, int(round(due * sample_rate / SYNTH_BLOCK)) * SYNTH_BLOCK)
        vel = max(1, min(127, int(round((127 if c.accent else 100) * v))))
        events.append((frame, True, channel, key, vel))
        events.append((frame + int(CLICK_SECONDS * sample_rate), False, channel, key, 0))
    events.sort(key=lambda ev: (ev[0], ev[1]))
    return events


_attack_cache: dict[tuple[str, int], dict[int, float]] = {}


def onset_frame(mono: np.ndarray, fraction: float = 0.05) -> int | None:
    """First frame where a click's magnitude reaches ``fraction`` of its peak (None: silence)."""
    mag = np.abs(mono)
    peak = float(mag.max()) if mag.size else 0.0
    if peak <= 1e-6:
        return None
    return int(np.argmax(mag >= fraction * peak))


def attack_delays(soundfont: str | os.PathLike | None = None, sample_rate: int = 44100) -> dict[int, float]:
    """Seconds from a click's note-on to its audible onset, per click key, for a soundfont
    (measured once by rendering each click alone; about 50 ms the first time)."""
    key = (str(find_soundfont(soundfont)), int(sample_rate))
    if key in _attack_cache:
        return _attack_cache[key]
    out = {}
    with Synth(key[0], sample_rate, channels=64, reverb=False, dynamic_samples=True) as synth:
        synth.select(METRONOME_CHANNEL, 0, drum=True)
        for k in (ACCENT_KEY, BEAT_KEY):
            synth.note_on(METRONOME_CHANNEL, k, 110)
            audio = synth.get_samples(SYNTH_BLOCK * 40)  # whole blocks: the next note-on starts on a block
            synth.note_off(METRONOME_CHANNEL, k)
            synth.all_sounds_off()
            synth.get_samples(4 * SYNTH_BLOCK)
            f = onset_frame(audio.mean(axis=1))
            out[k] = 0.0 if f is None else f / sample_rate
    _attack_cache[key] = out
    return out


def render_clicks(song: Song, start_tick: int, end_tick: int, count_in_bars: int = 0,
                  soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
                  volume: float = 0.8, tail_seconds: float = 0.5) -> tuple[np.ndarray, list[Click]]:
    """The metronome alone rendered offline: float32 stereo and the clicks it holds."""
    cl = clicks(song, start_tick, end_tick, count_in_bars)
    tm = TempoMap(song)
    length_s = count_in_seconds(song, start_tick, count_in_bars) + tm.seconds(end_tick) - tm.seconds(start_tick)
    frames = int(round((length_s + tail_seconds) * sample_rate))
    attack = attack_delays(soundfont, sample_rate)
    sched = Schedule(start_tick, end_tick, sample_rate, 0.0, frames, click_events(cl, sample_rate, volume, attack=attack))
    out = np.zeros((frames, 2), dtype=np.float32)
    with Synth(soundfont, sample_rate, channels=64, reverb=False) as synth:
        synth.select(METRONOME_CHANNEL, 0, drum=True)
        seq = Sequencer(synth, sched)
        pos = 0
        while pos < frames:
            pos += seq.render(out, pos, min(4096, frames - pos)) or frames
    return out, cl


def record_schedules(song: Song, channels: list[int], sample_rate: int, start_tick: int, count_in_bars: int = 0,
                     loop: tuple[int, int] | None = None, metronome: bool = True, volume: float = 0.8,
                     attack: dict | None = None, open_seconds: float = 1800.0) -> tuple[Schedule, Schedule | None]:
    """What plays while recording: the count-in clicks, then the song (and the clicks when the
    metronome is on) from ``start_tick``; with ``loop`` the first schedule ends at the loop's
    end and the second repeats the loop region.  Without a loop the first schedule runs
    ``open_seconds`` past the start (a recording ends when the user stops it).

    Frame 0 of the first schedule is the start of the count-in; its ``start_seconds`` is
    that many seconds before the start tick, so the player's playhead counts in from before it."""
    from .render import build_schedule  # noqa: PLC0415

    tm = TempoMap(song)
    start = max(0, int(start_tick))
    vol = volume if metronome else 0.0
    lead_s = count_in_seconds(song, start, count_in_bars)
    lead = int(round(lead_s * sample_rate))
    if loop is not None:
        end = int(loop[1])
    else:
        end = int(round(tm.tick(tm.seconds(start) + open_seconds)))
    body = build_schedule(song, channels, sample_rate, start, end, tm)
    song_events = [(f + lead, on, ch, p, v) for f, on, ch, p, v in body.events]
    first_clicks = clicks(song, start, end, count_in_bars)
    if not metronome:
        first_clicks = [c for c in first_clicks if c.tick < start]  # the count-in still counts in
    events = _merge(song_events, click_events(first_clicks, sample_rate, volume, attack=attack))
    first = Schedule(start, end, sample_rate, body.start_seconds - lead / sample_rate, body.length + lead, events)
    again = None
    if loop is not None:
        a, b = int(loop[0]), int(loop[1])
        lp = build_schedule(song, channels, sample_rate, a, b, tm)
        lp.events = _merge(lp.events, click_events(clicks(song, a, b), sample_rate, vol, attack=attack))
        again = lp
    return first, again


def _order(kind) -> int:
    """At one frame: key releases, then controllers (in their order), then key presses."""
    return 0 if kind is False else 2 if kind is True else 1


def _merge(*lists) -> list:
    """Schedule events of several lists in one, ordered as a :class:`Schedule` wants them."""
    out = [ev for events in lists for ev in events]
    out.sort(key=lambda ev: (ev[0], _order(ev[1])))  # stable: controllers keep their order
    return out
