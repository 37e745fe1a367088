"""The Qt side of recording: a thin adapter over the MIDI input (``studio.audio.midiin``), the
recorder and step input (``studio.core.recording`` / ``stepinput``) and the player.

Threads.  MIDI messages arrive on the backend's thread; there they are sounded at once
(MIDI thru: a command appended to the audio engine's queue) and appended to a deque, which
a 10 ms timer drains on the GUI thread into the recorder or the step input.  Nothing on the
input thread touches Qt or the song.

Clock.  The recording clock starts when the count-in starts: ``clock() - t0`` seconds, where
``t0`` is when the player was asked to start plus the device's output latency (what is heard,
not what was handed to the device).  Without audio the clock is the wall clock alone and the
recording is silent (no metronome): it still works.
"""

from __future__ import annotations

import collections
import time

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand

from ...audio.metronome import beat_ticks as metronome_beat
from ...audio.midiin import MidiInput
from ...core import edits
from ...core.edits import NoteChange
from ...core.recording import REPLACE, Recorder, Take
from ...core.song import SUSTAIN, Control
from ...core.stepinput import StepInput
from ..pianoroll.geometry import grid_ticks

POLL_PORTS_MS = 1500  # hot-plug: how often the list of MIDI inputs is read again


class RecordTake(QUndoCommand):
    """A recording (or a change of take) as one undo step: its notes and its sustain pedal
    (controller events of the track)."""

    def __init__(self, doc, text: str, change: NoteChange, controls_removed=(), controls_added=()):
        super().__init__(text)
        self.doc, self.change = doc, change
        self.c_removed, self.c_added = list(controls_removed), list(controls_added)

    def _controls(self, removed, added) -> None:
        if not (removed or added):
            return
        controls = self.doc.song.tracks[self.change.track].controls
        for c in removed:
            if c in controls:
                controls.remove(c)
        controls.extend(added)
        controls.sort(key=lambda c: c.tick)  # stable: events at one tick keep their order

    def redo(self) -> None:
        edits.apply(self.doc.song, self.change)
        self._controls(self.c_removed, self.c_added)
        self.doc.notify_notes({self.change.track})
        if self.change.track == self.doc.current_track:
            self.doc.set_selection(self.change.added)

    def undo(self) -> None:
        edits.apply(self.doc.song, self.change.inverted())
        self._controls(self.c_added, self.c_removed)
        self.doc.notify_notes({self.change.track})
        self.doc.clear_selection()


def controller_events(track, take: Take, replace: bool):
    """(removed, added) controller events of the track for a take's sustain pedal: the pedal as
    played, and in replace mode the pedal events that were in the take's span."""
    added = [Control(c.tick, c.control, c.value) for c in take.sustain]
    removed = []
    if replace:
        removed = [c for c in track.controls if c.number == SUSTAIN and take.start <= c.tick < take.end]
    return removed, added


class RecordController(QObject):
    """Record, MIDI thru, step input and the input ports, for one document and transport."""

    stateChanged = Signal()  # recording started/stopped, count-in, step input on/off
    portsChanged = Signal()  # the list of inputs, the open one or the reason changed
    takesChanged = Signal()
    notice = Signal(str)  # one short line for the status bar

    def __init__(self, doc, transport, settings, editor=None, source=None, clock=time.monotonic, parent=None):
        super().__init__(parent)
        self.doc, self.transport, self.settings, self.editor = doc, transport, settings, editor
        self.clock = clock
        self.midi = MidiInput(self._on_message, source, settings.midi_input)
        self._queue: collections.deque = collections.deque()
        self.recorder: Recorder | None = None
        self.step: StepInput | None = None
        self.takes: list[Take] = []
        self.take_index = -1
        self._t0 = 0.0
        self._audio = False
        self._last_count = None
        self.keyboard_piano = False  # the computer keyboard is playing (see pckeys)
        self.thru_on = settings.midi_thru
        self._rec: Recorder | None = None
        self._committed: tuple[NoteChange, list] = (NoteChange(0), [])
        self._pump = QTimer(self)
        self._pump.setInterval(10)
        self._pump.timeout.connect(self._drain)  # runs only while recording or in step input
        self._ports = QTimer(self)
        self._ports.setInterval(POLL_PORTS_MS)
        self._ports.timeout.connect(self.poll_ports)
        self._ports.start()
        transport.playingChanged.connect(self._playing_changed)
        transport.ready.connect(self._engine_ready)
        self.poll_ports()

    def _engine_ready(self, ok: bool, _why: str) -> None:
        """Measure the metronome sounds' attack now, off the GUI thread, so Record starts at once."""
        player = self.transport.player
        if ok and player is not None:
            import threading  # noqa: PLC0415

            from ...audio.metronome import attack_delays  # noqa: PLC0415

            def measure() -> None:
                try:
                    attack_delays(self.transport.soundfont, player.sample_rate)
                except Exception:  # noqa: BLE001 - Record measures again (or does without)
                    pass

            threading.Thread(target=measure, name="metronome-attack", daemon=True).start()

    # ---- ports ------------------------------------------------------------------------------
    def poll_ports(self) -> None:
        if self.midi.poll():
            self.portsChanged.emit()

    def choose_port(self, name: str) -> None:
        self.settings.midi_input = name
        self.midi.choose(name)
        self.portsChanged.emit()

    def use_source(self, source) -> None:
        """Read MIDI from another port source (tests and screenshots: a fake keyboard)."""
        self.midi.close()
        self.midi.source = source
        self.poll_ports()
        self.portsChanged.emit()

    # ---- state --------------------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.recorder is not None

    def now(self) -> float:
        """Seconds on the recording clock."""
        return self.clock() - self._t0

    def can_record(self) -> tuple[bool, str]:
        """Whether Record can start, and if not, why (one sentence)."""
        if self.midi.available or self.keyboard_piano:
            return True, ""
        why = self.midi.reason or "no MIDI input is open"
        return False, (f"Cannot record: {why}. Connect a MIDI keyboard, or turn on "
                       "Transport > Computer Keyboard as Piano to play with the computer keyboard.")

    def audio_note(self) -> str:
        """Why the recording will be silent (no metronome, no thru), or ''."""
        tr = self.transport
        if tr.available and tr.player is not None:
            return ""
        return f"it will be silent (no metronome, no MIDI thru): {tr.reason.rstrip('.')}"

    def thru_latency_text(self) -> str:
        """What MIDI thru adds before a key is heard, from the running engine's figures."""
        player = self.transport.player if self.transport.available else None
        if player is None:
            return "MIDI thru: no audio"
        block = player.block_seconds * 1000
        device = player.output_latency
        dev = f" + the device's buffer ({device * 1000:.0f} ms)" if device else ""
        return f"MIDI thru: up to one audio block ({block:.1f} ms) plus the sound's attack{dev}"

    # ---- input (the backend's thread) -----------------------------------------------------------
    def _on_message(self, msg, when: float) -> None:
        self.thru(msg)
        if self.recorder is not None or self.step is not None:
            self._queue.append((msg, when))

    def thru(self, msg) -> None:
        """Sound a played message at once with the current track's instrument."""
        if not self.thru_on:
            return
        player = self.transport.player if self.transport.available else None
        if player is None:
            return
        kind = getattr(msg, "type", "")
        try:
            track = self.doc.song.tracks[self.doc.current_track]
            if kind == "note_on" and msg.velocity > 0:
                player.thru(True, msg.note, msg.velocity, track.program, track.is_drum)
            elif kind in ("note_on", "note_off"):
                player.thru(False, msg.note, 0, track.program, track.is_drum)
            elif kind == "control_change":
                player.thru_controller(msg.control, msg.value)
        except Exception:  # noqa: BLE001 - hearing a key is a nicety: never break input for it
            pass

    def set_thru(self, on: bool) -> None:
        self.thru_on = bool(on)  # read on the input thread: a plain attribute, not QSettings
        self.settings.midi_thru = bool(on)

    def play_key(self, msg) -> None:
        """A message from the computer keyboard (GUI thread): thru and the same path as MIDI."""
        self._on_message(msg, self.clock())
        self._drain()

    # ---- the GUI thread -----------------------------------------------------------------------
    def _drain(self) -> None:
        changed = False
        while self._queue:
            msg, when = self._queue.popleft()
            if self.recorder is not None:
                self.recorder.feed(msg, when - self._t0)
                changed = True
            elif self.step is not None:
                self._step_message(msg)
        if self.recorder is not None:
            t = self.now()
            rec = self.recorder
            tick = rec.position(t)
            self.transport.position.emit(max(0, tick))
            meter = self.doc.song.time_signature_at(rec.start_tick)
            count = rec.count_in_beat(t, metronome_beat(meter, self.doc.song.ppq))
            if count != self._last_count:
                self._last_count = count
                self.stateChanged.emit()
            if changed or rec.sounding(t):
                self._repaint()

    @property
    def count(self) -> int | None:
        """The beat of the count-in now being counted (1, 2, ...), or None."""
        return self._last_count

    def _repaint(self) -> None:
        if self.editor is not None:
            self.editor.view.viewport().update()

    # ---- recording ------------------------------------------------------------------------------
    def record(self) -> bool:
        """Start recording into the current track at the playhead. Returns False (and says why
        through ``notice``) when it cannot."""
        if self.recording:
            return True
        ok, why = self.can_record()
        if not ok:
            self.notice.emit(why)
            return False
        self.set_step_input(False)
        tr, doc, s = self.transport, self.doc, self.settings
        if tr.playing:
            tr.stop()
        start = int(getattr(getattr(self.editor, "view", None), "playhead", tr.start_tick) or 0)
        loop = tr.loop
        grid = grid_ticks(s.input_quantize, doc.song.ppq) if s.input_quantize else 0
        rec = Recorder(doc.song, doc.current_track, start, s.count_in_bars, s.record_mode, loop, grid)
        latency = 0.0
        self._audio = False
        player = tr.player if tr.available else None
        if player is not None:
            try:
                latency = self._start_audio(player, rec)
            except Exception as exc:  # noqa: BLE001 - record silently rather than not at all
                self.notice.emit(f"Recording without sound: {exc}")
        self._t0 = self.clock() + latency
        self._queue.clear()
        self.recorder = rec
        self._last_count = None
        self.takes, self.take_index = [], -1
        if self.editor is not None and self._paint not in self.editor.view.overlays:
            self.editor.view.overlays.append(self._paint)
        tr.hold(True)
        self._pump.start()
        note = self.audio_note()
        self.notice.emit("Recording" + (f" — {note}" if note else ""))
        self.stateChanged.emit()
        return True

    def _start_audio(self, player, rec: Recorder) -> float:
        from ...audio.metronome import METRONOME_CHANNEL, attack_delays, record_schedules  # noqa: PLC0415
        from ...audio.player import PLAYER_CHANNELS  # noqa: PLC0415
        from ...audio.synth import assign_channels  # noqa: PLC0415
        from ...core.timing import TempoMap  # noqa: PLC0415

        song, s = self.doc.song, self.settings
        try:
            attack = attack_delays(self.transport.soundfont, player.sample_rate)
        except Exception:  # noqa: BLE001 - clicks a millisecond or two late are still clicks
            attack = None
        channels = assign_channels(song.tracks, PLAYER_CHANNELS - 1)
        programs = [(ch, t.program, t.is_drum) for t, ch in zip(song.tracks, channels)]
        programs.append((METRONOME_CHANNEL, 0, True))
        counting = rec.count_in > 0
        first, again = record_schedules(song, channels, player.sample_rate, rec.start_tick,
                                        s.count_in_bars if counting else 0, rec.loop, s.metronome,
                                        s.metronome_volume / 100.0, attack)
        if not player.play_schedules(song, first, again, TempoMap(song), programs, rec.loop):
            raise RuntimeError(player.reason or "the player did not start")
        self._audio = True
        return (player.output_latency or 0.0) + player.block_seconds / 2

    def stop(self) -> None:
        """Stop recording: the take goes into the track as one undo step."""
        if self.recorder is not None:
            self.transport.stop()  # -> _playing_changed(False) -> _finish

    def toggle(self) -> None:
        self.stop() if self.recording else self.record()

    def _playing_changed(self, on: bool) -> None:
        if not on and self.recorder is not None:
            self._finish()

    def _finish(self) -> None:
        rec, self.recorder = self.recorder, None
        self._drain_into(rec)
        takes = rec.finish(self.now())
        if self.editor is not None and self._paint in self.editor.view.overlays:
            self.editor.view.overlays.remove(self._paint)
        self._last_count = None
        self._pump_if_needed()
        self.transport.hold(False)
        end = rec.position(self.now())
        self.transport.start_tick = rec.start_tick
        self.transport.position.emit(rec.start_tick)
        self._rec = rec
        kept = [tk for tk in takes if tk.notes]
        if rec.song is not self.doc.song or rec.track >= len(self.doc.song.tracks):
            kept = []  # another song was opened, or the track removed, while recording
            why = "the song or its tracks changed while recording: nothing was recorded"
        else:
            why = "Nothing was played: no notes recorded"
        self.takes = kept
        if not kept:
            self._rec = None
            self.notice.emit(why)
            self._repaint()
            self.stateChanged.emit()
            self.takesChanged.emit()
            return
        self.take_index = len(kept) - 1
        take = kept[-1]
        change = rec.change(self.doc.song, take)
        c_removed, c_added = controller_events(self.doc.song.tracks[rec.track], take, rec.mode == REPLACE)
        self.doc.undo.push(RecordTake(self.doc, "Record", change, c_removed, c_added))
        self._committed = (change, list(c_added))
        bars = max(1, round((end - rec.start_tick) / max(1, self.doc.song.time_signature_at(rec.start_tick).bar_ticks(self.doc.song.ppq))))
        sustain = len(take.sustain)
        extra = f", {sustain} pedal changes" if sustain else ""
        many = f" — take {self.take_index + 1} of {len(kept)} (Transport > Record Takes to choose)" if len(kept) > 1 else ""
        self.notice.emit(f"Recorded {len(change.added)} notes{extra} in about {bars} bar(s){many}")
        self.stateChanged.emit()
        self.takesChanged.emit()

    def _drain_into(self, rec: Recorder) -> None:
        while self._queue:
            msg, when = self._queue.popleft()
            rec.feed(msg, when - self._t0)

    def use_take(self, index: int) -> bool:
        """Put take ``index`` of the last loop recording into the track instead of the one there (one undo step)."""
        rec = self._rec
        if rec is None or not (0 <= index < len(self.takes)) or index == self.take_index \
                or rec.song is not self.doc.song or rec.track >= len(self.doc.song.tracks):
            return False
        rec, (old_change, old_controls) = self._rec, self._committed
        track = self.doc.song.tracks[rec.track]
        present = set(track.notes)
        out = tuple(n for n in old_change.added if n in present)
        new = tuple(n for n in rec.take_notes(self.takes[index]) if n not in present or n in out)
        change = NoteChange(rec.track, out, new)
        _r, c_added = controller_events(track, self.takes[index], False)
        c_removed = [c for c in old_controls if c in track.controls]
        self.doc.undo.push(RecordTake(self.doc, f"Use take {index + 1}", change, c_removed, c_added))
        self._committed = (change, list(c_added))
        self.take_index = index
        self.takesChanged.emit()
        return True

    # ---- what is being played, drawn over the roll while recording ------------------------------
    def _paint(self, p, rect) -> None:
        rec = self.recorder
        if rec is None or self.editor is None or rec.track != self.doc.current_track:
            return
        from PySide6.QtCore import QRectF  # noqa: PLC0415
        from PySide6.QtGui import QColor, QPen  # noqa: PLC0415

        g = self.editor.geom
        p.setPen(QPen(QColor(150, 20, 20), 1))
        p.setBrush(QColor(230, 60, 60, 210))
        for n in rec.notes_so_far(self.now()):
            x0 = g.x_of(n.start)
            p.drawRect(QRectF(x0, g.y_of(n.pitch) + 1, max(2.0, n.duration * g.ppx - 1), max(2.0, g.key_h - 1)))

    # ---- step input -------------------------------------------------------------------------------
    def set_step_input(self, on: bool) -> None:
        if on and self.recording:
            return
        if bool(on) == (self.step is not None):
            return
        if on:
            view = getattr(self.editor, "view", None)
            cursor = int(getattr(view, "playhead", 0) or 0)
            length = getattr(self.editor, "grid", 240) or 240
            self.step = StepInput(self.doc.current_track, cursor, length)
        else:
            self.step = None
        self._pump_if_needed()
        self.stateChanged.emit()

    def _pump_if_needed(self) -> None:
        if self.recorder is not None or self.step is not None:
            self._pump.start()
        else:
            self._pump.stop()
            self._queue.clear()

    def _step_message(self, msg) -> None:
        st = self.step
        st.track = self.doc.current_track
        st.length = getattr(self.editor, "grid", st.length) or st.length
        change = st.feed(msg)
        if change is not None:
            self._push_step(change)

    def step_note(self, pitch: int) -> None:
        if self.step is not None:
            self.step.track = self.doc.current_track
            self.step.length = getattr(self.editor, "grid", self.step.length) or self.step.length
            self._push_step(self.step.note(pitch))

    def step_rest(self) -> None:
        if self.step is not None:
            self.step.length = getattr(self.editor, "grid", self.step.length) or self.step.length
            self.step.rest()
            self._moved()

    def _push_step(self, change: NoteChange) -> None:
        names = len(change.added)
        self.doc.undo.push(RecordTake(self.doc, "Step input" if names == 1 else f"Step input ({names} notes)", change))
        self._moved()

    def _moved(self) -> None:
        self.transport.seek(self.step.cursor)
        self.stateChanged.emit()

    def close(self) -> None:
        ui = getattr(self, "ui", None)
        if ui is not None:
            ui.keys.close()
        self._pump.stop()
        self._ports.stop()
        self.midi.close()
