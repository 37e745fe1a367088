"""Realtime playback: FluidSynth pulled by a sounddevice output stream (no Qt here).

Threads.  The GUI thread calls :class:`Player`; PortAudio's audio thread runs the stream
callback, which drives an :class:`Engine`.  Once a stream exists only the audio thread
touches the synthesizer.  The GUI thread talks to it through a deque of commands
(appending never blocks) and reads back one immutable tuple the callback publishes after
every block, so the callback never waits on anything the GUI thread holds.

Clock.  The playhead is the song position of the last frame the callback has handed to
the device (frames delivered), converted to ticks through the tempo map — never wall time.

The stream runs only while there is something to hear: after playback stops and the last
voice and a short reverb tail have died away the callback ends the stream, and the next
``play`` or ``preview`` starts it again.
"""

from __future__ import annotations

import collections
import os
import threading

import numpy as np

from ..core.errors import StudioError
from ..core.song import Song
from ..core.timing import TempoMap
from .render import Schedule, Sequencer, build_schedule
from .synth import Synth, assign_channels, find_soundfont, fluidsynth_available

PLAYER_CHANNELS = 64
PREVIEW_CHANNEL = 63  # a melodic channel no track is given
PREVIEW_DRUM_CHANNEL = 57  # 57 % 16 == 9: a drum slot no track is given
THRU_CHANNEL = 62  # what a MIDI keyboard plays live (melodic; tracks get it only past 58 tracks)
TAIL_SECONDS = 0.5  # keep the stream open this long after the last voice ends (reverb)
MIN_LOOP_FRAMES = 256


class Engine:
    """Audio-thread side: a synth, the current schedule, previews and the frame clock."""

    def __init__(self, synth: Synth):
        self.synth = synth
        self.commands: collections.deque = collections.deque()
        self.clock = 0  # frames delivered since the engine started
        self.published = (0, False, 0.0)  # (generation, playing, tick) for the GUI thread
        self.error: str = ""
        self._gen = 0
        self._seq: Sequencer | None = None
        self._loop: Schedule | None = None
        self._tempo: TempoMap | None = None
        self._tick = 0.0
        self._previews: list[tuple[int, int, int]] = []  # (clock at which to release, channel, pitch)
        self._thru_program: tuple[int, bool] | None = None
        self._quiet_since: int | None = None

    # ---- GUI thread ----
    def post(self, command: tuple) -> None:
        self.commands.append(command)

    # ---- audio thread ----
    def _handle(self, cmd: tuple) -> None:
        kind = cmd[0]
        synth = self.synth
        if kind == "play":
            _k, gen, first, loop, tempo, programs = cmd
            synth.release_pedals()  # the schedule then sets each channel's controllers afresh
            synth.all_notes_off()
            for ch, program, drum in programs:
                synth.select(ch, program, drum)
            self._gen, self._seq, self._loop, self._tempo = gen, Sequencer(synth, first), loop, tempo
            self._tick = float(first.start_tick)
        elif kind == "stop":
            self._gen = cmd[1]
            if self._seq is not None:
                self._seq = None
                synth.release_pedals()  # else sustained notes would ring on after Stop
                synth.all_notes_off()
        elif kind == "preview":
            _k, pitch, program, drum, velocity, frames = cmd
            ch = PREVIEW_DRUM_CHANNEL if drum else PREVIEW_CHANNEL
            synth.select(ch, program, drum)
            synth.note_off(ch, pitch)
            synth.note_on(ch, pitch, velocity)
            self._previews.append((self.clock + frames, ch, pitch))
        elif kind == "thru":  # a key played live: sounds at the start of the next block
            _k, on, program, drum, pitch, velocity = cmd
            ch = PREVIEW_DRUM_CHANNEL if drum else THRU_CHANNEL
            if on:
                if self._thru_program != (program, drum):
                    synth.select(ch, program, drum)
                    self._thru_program = (program, drum)
                synth.note_on(ch, pitch, velocity)
            else:
                synth.note_off(ch, pitch)
        elif kind == "thru_cc":
            _k, control, value = cmd
            synth.cc(THRU_CHANNEL, control, value)

    def process(self, out: np.ndarray) -> bool:
        """Fill ``out`` (float32, (frames, 2), C-contiguous) with the next frames.  Returns
        False once there has been nothing to hear for a while (the stream may end)."""
        while self.commands:
            try:
                self._handle(self.commands.popleft())
            except IndexError:
                break
        frames = out.shape[0]
        pos = 0
        while pos < frames:
            seq = self._seq
            if seq is None:
                self.synth.write_into(out, pos, frames - pos)
                pos = frames
                break
            pos += seq.render(out, pos, frames - pos)
            if seq.done:
                if self._loop is not None:
                    self._seq = Sequencer(self.synth, self._loop)
                else:
                    self._seq = None
                    self._tick = float(seq.schedule.end_tick)
        seq = self._seq
        if seq is not None:
            self._tick = seq.schedule.tick_at(seq.pos, self._tempo)
        self.clock += frames
        if self._previews:
            due = [p for p in self._previews if p[0] <= self.clock]
            if due:
                self._previews = [p for p in self._previews if p[0] > self.clock]
                for _at, ch, pitch in due:
                    self.synth.note_off(ch, pitch)
        np.clip(out, -1.0, 1.0, out=out)
        self.published = (self._gen, seq is not None, self._tick)
        if seq is not None or self._previews or self.synth.active_voices() > 0:
            self._quiet_since = None
            return True
        if self._quiet_since is None:
            self._quiet_since = self.clock
        return self.clock - self._quiet_since < TAIL_SECONDS * self.synth.sample_rate


class Player:
    """Realtime playback of a Song.  Constructing it never raises: when playback cannot
    work, ``available`` is False and ``reason`` says why, once, in one sentence.

    With ``preload`` the soundfont loads in a background thread right away, so the first
    ``play`` or ``preview`` does not wait for it (if it comes sooner, it waits for the load
    to finish)."""

    def __init__(self, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
                 blocksize: int = 512, latency: float | str = 0.08, preload: bool = True):
        self.sample_rate = int(sample_rate)
        self.available = False
        self.reason = ""
        self._blocksize = int(blocksize)
        self._latency = latency
        self._lock = threading.Lock()  # GUI-side only (start/stop/close); never taken by the callback
        self._sd = None
        self._stream = None
        self._engine: Engine | None = None
        self._soundfont = None
        self._gen = 0
        self._want_playing = False
        self._last_tick = 0.0
        self._song: Song | None = None
        self._loop: tuple[int, int] | None = None
        self._metronome: tuple[float, dict | None] = (0.0, None)  # the clicks' volume and attack in play()
        self._stopping = False
        self._closed = False
        try:
            self._check(soundfont)
            self.available = True
        except _Unavailable as exc:
            self.reason = f"Playback is off: {exc}."
        except Exception as exc:  # noqa: BLE001 - never let playback take the app down
            self.reason = f"Playback is off: {type(exc).__name__}: {exc}."
        if self.available and preload:  # load the soundfont now, off the caller's thread
            threading.Thread(target=self.prepare, name="soundfont-load", daemon=True).start()

    def _check(self, soundfont) -> None:
        if os.environ.get("STUDIO_NO_AUDIO"):
            raise _Unavailable("audio output is switched off (STUDIO_NO_AUDIO is set)")
        ok, why = fluidsynth_available()
        if not ok:
            raise _Unavailable(why)
        try:
            self._soundfont = find_soundfont(soundfont)
        except StudioError as exc:
            raise _Unavailable(str(exc)) from None
        try:
            import sounddevice as sd  # noqa: PLC0415 - loads PortAudio
        except OSError:
            raise _Unavailable("the PortAudio library is not installed (install the system package libportaudio2)") from None
        except ImportError:
            raise _Unavailable("the Python package sounddevice is not installed") from None
        self._sd = sd
        try:
            info = sd.query_devices(kind="output")
        except (sd.PortAudioError, ValueError):
            raise _Unavailable("no audio output device was found") from None
        try:
            sd.check_output_settings(channels=2, dtype="float32", samplerate=self.sample_rate)
        except (sd.PortAudioError, ValueError) as exc:
            raise _Unavailable(f"the audio device {info.get('name', '')!r} cannot play {self.sample_rate} Hz stereo ({exc})") from None

    # ---- set-up ----
    def prepare(self) -> bool:
        """Load the soundfont (about a second for a full GM set) and open the stream.  Safe
        to call from a background thread; play and preview call it when needed."""
        if not self.available:
            return False
        with self._lock:
            if self._engine is not None:
                return True
            if self._closed or not self.available:
                return False
            try:
                synth = Synth(self._soundfont, self.sample_rate, channels=PLAYER_CHANNELS)
            except StudioError as exc:
                self._fail(str(exc))
                return False
            self._engine = Engine(synth)
            try:
                self._stream = self._sd.OutputStream(samplerate=self.sample_rate, channels=2, dtype="float32",
                                                     blocksize=self._blocksize, latency=self._latency,
                                                     callback=self._callback)
            except Exception as exc:  # noqa: BLE001 - PortAudioError and friends
                self._engine = None
                synth.close()
                self._fail(f"the audio device could not be opened ({exc})")
                return False
        return True

    def _fail(self, why: str) -> None:
        self.available = False
        self.reason = f"Playback is off: {why}."

    def _callback(self, outdata, frames, time_info, status) -> None:
        engine = self._engine
        if engine is None:  # closing
            outdata.fill(0)
            raise self._sd.CallbackStop
        try:
            keep = engine.process(outdata)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the audio thread noisily
            outdata.fill(0)
            engine.error = f"{type(exc).__name__}: {exc}"
            raise self._sd.CallbackAbort from None
        if not keep:
            self._stopping = True
            if not engine.commands:  # a command arrived meanwhile: keep going
                raise self._sd.CallbackStop
            self._stopping = False

    def _ensure_running(self) -> bool:
        """Start the stream if it is not running (or is about to end)."""
        with self._lock:
            stream = self._stream
            if stream is None:
                return False
            if self._engine is not None and self._engine.error:
                self._fail(f"the audio engine failed ({self._engine.error})")
                return False
            if stream.active and not self._stopping:
                return True
            try:
                if not stream.stopped:
                    stream.stop()
                self._stopping = False
                stream.start()
            except Exception as exc:  # noqa: BLE001
                self._fail(f"the audio device stopped working ({exc})")
                return False
        return True

    # ---- transport ----
    def play(self, song: Song, start_tick: int = 0, loop: tuple[int, int] | None = None,
             metronome: float = 0.0, attack: dict | None = None) -> bool:
        """Play ``song`` from ``start_tick``; with ``loop=(a, b)`` ticks, repeat a..b once
        the playhead reaches b (a start at or after b plays through to the end).  ``metronome``
        (volume 0..1; 0: off) adds a click on every beat, through the tempo and meter changes
        (``attack``: see :func:`~studio.audio.metronome.attack_delays`).  Returns False (and
        does nothing) when playback is unavailable."""
        if not self.prepare():
            return False
        self._metronome = (float(metronome), attack)
        engine = self._engine
        tempo = TempoMap(song)
        channels = assign_channels(song.tracks, PLAYER_CHANNELS - 1)
        programs = [(ch, t.program, t.is_drum) for t, ch in zip(song.tracks, channels)]
        start = max(0, int(start_tick))
        end = song.end_tick
        loop_sched = None
        if loop is not None:
            a, b = max(0, int(loop[0])), int(loop[1])
            if b > a and start < b:
                cand = build_schedule(song, channels, self.sample_rate, a, b, tempo)
                if cand.length >= MIN_LOOP_FRAMES:
                    loop_sched, end = cand, b
        first = build_schedule(song, channels, self.sample_rate, start, max(start, end), tempo)
        if metronome > 0:
            from .metronome import METRONOME_CHANNEL, with_clicks  # noqa: PLC0415

            first = with_clicks(first, song, metronome, attack)
            loop_sched = with_clicks(loop_sched, song, metronome, attack) if loop_sched is not None else None
            programs.append((METRONOME_CHANNEL, 0, True))
        return self.play_schedules(song, first, loop_sched, tempo, programs, loop)

    def play_schedules(self, song: Song, first: Schedule, loop_sched: Schedule | None, tempo: TempoMap,
                       programs: list[tuple[int, int, bool]], loop: tuple[int, int] | None = None) -> bool:
        """Play prepared schedules (a recording adds its count-in and metronome clicks to the
        song's events): ``first`` once, then ``loop_sched`` over and over when given;
        ``programs`` is ``(channel, program, drum)`` to select first."""
        if not self.prepare():
            return False
        self._gen += 1
        self._song, self._loop = song, loop if loop_sched is not None else None
        self._want_playing, self._last_tick = True, float(first.start_tick)
        self._engine.post(("play", self._gen, first, loop_sched, tempo, programs))
        return self._ensure_running()

    def thru(self, on: bool, pitch: int, velocity: int = 0, program: int = 0, drum: bool = False) -> bool:
        """Sound (``on``) or release a key played live, with ``program``, at the next audio block."""
        if not 0 <= int(pitch) <= 127 or not self.prepare():
            return False
        self._engine.post(("thru", bool(on), int(program), bool(drum), int(pitch), int(velocity)))
        return self._ensure_running() if on else True

    def thru_controller(self, control: int, value: int) -> None:
        """A controller played live (the sustain pedal) on the thru channel."""
        if self._engine is not None:
            self._engine.post(("thru_cc", int(control), int(value)))

    @property
    def block_seconds(self) -> float:
        """The audio block: a live key waits at most this long for the engine to start it."""
        return self._blocksize / self.sample_rate

    @property
    def output_latency(self) -> float | None:
        """The device's output latency in seconds, as PortAudio reports it (None: no stream)."""
        stream = self._stream
        try:
            return None if stream is None else float(stream.latency)
        except Exception:  # noqa: BLE001
            return None

    def update(self, song: Song) -> bool:
        """After an edit (or a mute/solo change) during playback, go on from the same place
        with the new song."""
        if not self.playing:
            return False
        return self.play(song, int(self.position_tick()), self._loop, *self._metronome)

    def stop(self) -> None:
        """Stop playback (notes are released, not cut).  The position stays where it stopped."""
        if self._engine is None or not self._want_playing:
            self._want_playing = False
            return
        self._last_tick = self.position_tick()
        self._gen += 1
        self._want_playing = False
        self._engine.post(("stop", self._gen))

    @property
    def playing(self) -> bool:
        engine = self._engine
        if engine is None:
            return False
        gen, playing, _tick = engine.published
        if gen != self._gen:  # the callback has not seen our last command yet
            return self._want_playing
        return playing

    @property
    def loop(self) -> tuple[int, int] | None:
        return self._loop

    def position_tick(self) -> float:
        """The song position of the audio handed to the device so far, in ticks."""
        engine = self._engine
        if engine is None:
            return self._last_tick
        gen, _playing, tick = engine.published
        if gen != self._gen:
            return self._last_tick
        return tick

    def frames_delivered(self) -> int:
        """Frames the callback has handed to the device since the stream first started."""
        return 0 if self._engine is None else self._engine.clock

    def preview(self, pitch: int, program: int = 0, velocity: int = 90, duration: float = 0.4,
                drum: bool = False) -> bool:
        """Sound one note now (clicking a key), on a channel of its own."""
        if not 0 <= int(pitch) <= 127 or not self.prepare():
            return False
        frames = max(1, int(duration * self.sample_rate))
        self._engine.post(("preview", int(pitch), int(program), bool(drum), int(velocity), frames))
        return self._ensure_running()

    def close(self) -> None:
        """Stop the stream and free the synthesizer.  The player is unusable afterwards."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
            if stream is not None:
                try:
                    stream.abort()
                    stream.close()
                except Exception:  # noqa: BLE001 - closing must not raise
                    pass
            engine, self._engine = self._engine, None
            if engine is not None:
                engine.synth.close()
            if self.available:
                self.available = False
                self.reason = "Playback is off: the player was closed."

    def __enter__(self) -> "Player":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class _Unavailable(Exception):
    pass
