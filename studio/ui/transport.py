"""The Qt side of playback: a thin adapter over the pure audio engine (``studio.audio.player``).

The engine plays in its own thread and owns the audio clock; this object polls
``position_tick()`` about 30 times a second and emits ``position`` for the playhead. Without
an audio device or FluidSynth the editor still works: ``available`` is False and ``reason``
says why (the main window shows it in a banner).
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QTimer, Signal


class Transport(QObject):
    position = Signal(int)  # playhead tick, while playing
    playingChanged = Signal(bool)
    ready = Signal(bool, str)  # engine started: available, reason

    def __init__(self, doc, soundfont: str = "", parent=None):
        super().__init__(parent)
        self.doc = doc
        self.soundfont = soundfont or None
        self.player = None
        self.available = False
        self.reason = "starting the audio engine…"
        self.loop: tuple[int, int] | None = None
        self.latency: float | None = None  # the device buffer in seconds; None: the player's default
        self.held = False  # recording drives the player (see hold)
        self.start_tick = 0
        self.metronome = False  # click on the beats while playing (recording adds its own count-in)
        self.metronome_volume = 0.7  # 0..1
        self._playing = False
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._poll)
        self._click_volume = QTimer(self)
        self._click_volume.setSingleShot(True)
        self._click_volume.setInterval(200)
        self._click_volume.timeout.connect(self._replay_clicks)
        self._ready_signal = _Relay()
        self._ready_signal.done.connect(self._engine_ready)

    # ---- engine start-up (off the GUI thread: loading a soundfont takes a moment) ----------
    def start_engine(self) -> None:
        threading.Thread(target=self._create, name="audio-engine-start", daemon=True).start()

    def _create(self) -> None:
        try:
            from ..audio.player import Player  # noqa: PLC0415 - optional engine

            player = Player(soundfont=self.soundfont, **({"latency": self.latency} if self.latency else {}))
            ok = bool(getattr(player, "available", True))
            why = "" if ok else str(getattr(player, "reason", "") or "audio is not available")
        except ImportError as exc:
            player, ok, why = None, False, f"the audio engine is not installed ({exc})"
        except Exception as exc:  # no device, no soundfont: the editor still works
            player, ok, why = None, False, str(exc) or type(exc).__name__
        self._ready_signal.done.emit(player, ok, why)

    def _engine_ready(self, player, ok: bool, why: str) -> None:
        self.player, self.available, self.reason = player, ok, why
        self.ready.emit(ok, why)

    def restart_engine(self) -> None:
        """Close the engine and start a new one (after the latency or the soundfont changed)."""
        self.close()
        self.available, self.reason = False, "starting the audio engine…"
        self.start_engine()

    # ---- control ----------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self._playing

    def play(self, start_tick: int | None = None, song=None) -> bool:
        """Play the document's song (or ``song``: the assistant auditions a take with it)."""
        if not self.available or self.player is None or self.held:
            return False
        if start_tick is not None:
            self.start_tick = int(start_tick)
        start = self.start_tick
        if self.loop and not (self.loop[0] <= start < self.loop[1]):
            start = self.loop[0]
        clicks = {}
        if self.metronome and self.metronome_volume > 0:
            from ..audio.metronome import cached_attack  # noqa: PLC0415 - optional engine

            clicks = {"metronome": self.metronome_volume,
                      "attack": cached_attack(self.soundfont, getattr(self.player, "sample_rate", 44100))}
        self.player.play(song if song is not None else self.doc.song, start_tick=start, loop=self.loop, **clicks)
        self._set_playing(True)
        self._timer.start()
        return True

    def stop(self) -> None:
        if self.player is not None and self._playing:
            self.player.stop()
        self._timer.stop()
        self._set_playing(False)

    def toggle(self) -> None:
        self.stop() if self._playing else self.play()

    def seek(self, tick: int) -> None:
        self.start_tick = max(0, int(tick))
        if self._playing:
            self.play(self.start_tick)
        else:
            self.position.emit(self.start_tick)

    def set_loop(self, loop) -> None:
        self.loop = tuple(loop) if loop else None
        if self._playing:
            self.play(int(self.player.position_tick()))

    def set_metronome(self, on: bool | None = None, volume: float | None = None) -> None:
        """Switch the playback metronome on or off, or change its volume (0..1); a playing song
        goes on from where it is with the clicks as they are now."""
        if on is not None and bool(on) != self.metronome:
            self.metronome = bool(on)
            self._replay_clicks()
        if volume is not None:
            self.metronome_volume = max(0.0, min(1.0, float(volume)))
            if self.metronome:
                self._click_volume.start()  # a slider drag plays on once, when it rests

    def _replay_clicks(self) -> None:
        if self._playing and not self.held and self.player is not None:
            self.play(int(self.player.position_tick()))

    def restart_if_playing(self) -> None:
        """After an edit, play on from where the playhead is, with the edited song."""
        if self._playing and self.player is not None:
            self.play(int(self.player.position_tick()))

    def preview(self, pitch: int, program: int, velocity: int = 90) -> None:
        if self.available and self.player is not None:
            try:
                self.player.preview(pitch, program, velocity, 0.4)
            except Exception:  # auditioning is a nicety; never let it break editing
                pass

    def hold(self, on: bool) -> None:
        """Recording drives the player and the playhead: the transport shows it as playing,
        and stopping the transport (Space, Stop) stops the recording."""
        self.held = bool(on)  # while held, play() (a seek, an edit, an audition) leaves the player alone
        self._timer.stop()
        self._set_playing(bool(on))

    def _set_playing(self, on: bool) -> None:
        if on != self._playing:
            self._playing = on
            self.playingChanged.emit(on)

    def _poll(self) -> None:
        p = self.player
        if p is None:
            return
        self.position.emit(int(p.position_tick()))
        if not p.playing:
            self._timer.stop()
            self._set_playing(False)

    def close(self) -> None:
        self.stop()
        if self.player is not None:
            try:
                self.player.close()
            except Exception:
                pass
            self.player = None


class _Relay(QObject):
    """Carries the engine from the start-up thread to the GUI thread."""

    done = Signal(object, bool, str)
