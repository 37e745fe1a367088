"""MIDI input: the ports a MIDI keyboard shows up on, through mido with the python-rtmidi
backend (ALSA or JACK on Linux, CoreMIDI, Windows MM), behind one import guard.

No Qt here.  :class:`MidiInput` keeps the list of input ports (call :meth:`MidiInput.poll`
every second or two: a keyboard plugged in later appears, one unplugged goes), opens the
chosen one and hands every message, stamped with ``time.monotonic()`` on arrival, to a
callback that runs on the backend's thread.  When there is no MIDI system or no port,
``reason`` says so in one sentence and nothing is printed.

A port source is anything with ``names() -> list[str]`` (raising :class:`MidiUnavailable`
with the reason when there is no MIDI system) and ``open(name, callback) -> port`` (the port
has ``close()``); :class:`RtMidiSource` is the real one, :class:`FakeSource` drives tests and
screenshots with messages it is given.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

Callback = Callable[[object, float], None]  # (mido message, monotonic seconds)

_mido = None
_availability: tuple[bool, str] | None = None


class MidiUnavailable(Exception):
    """There is no MIDI system to list ports from; the message says why."""


def midi_available() -> tuple[bool, str]:
    """``(True, "")`` when mido and python-rtmidi load, else ``(False, why)``."""
    global _mido, _availability
    if _availability is not None:
        return _availability
    try:
        import mido  # noqa: PLC0415 - the one import guard
        import rtmidi  # noqa: PLC0415,F401

        mido.set_backend("mido.backends.rtmidi", load=True)
        _mido = mido
        _availability = (True, "")
    except ImportError as exc:
        name = getattr(exc, "name", "") or ""
        if ".so" in str(exc):  # the package is there, a system library it links is not
            why = f"a system library MIDI input needs is missing ({str(exc).split(':')[0]}; install libasound2)"
        elif name == "rtmidi" or "rtmidi" in str(exc):
            why = "the Python package python-rtmidi is not installed (pip install python-rtmidi)"
        elif name == "mido":
            why = "the Python package mido is not installed"
        else:
            why = f"MIDI input could not be loaded: {exc}"
        _availability = (False, why)
    except Exception as exc:  # noqa: BLE001 - a broken backend must not take the app down
        _availability = (False, f"MIDI input could not be loaded: {exc}")
    return _availability


class RtMidiSource:
    """Input ports through mido's rtmidi backend."""

    def names(self) -> list[str]:
        ok, why = midi_available()
        if not ok:
            raise MidiUnavailable(why)
        if sys.platform.startswith("linux") and not os.path.exists("/dev/snd/seq"):
            # asking ALSA anyway would print an error on every poll
            raise MidiUnavailable("this system has no MIDI sequencer (no /dev/snd/seq)")
        try:
            return list(dict.fromkeys(_mido.get_input_names()))
        except Exception as exc:  # noqa: BLE001 - rtmidi raises its own SystemError
            raise MidiUnavailable(f"the MIDI system did not answer ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None

    def open(self, name: str, callback: Callback):
        def on_message(msg) -> None:
            callback(msg, time.monotonic())

        return _mido.open_input(name, callback=on_message)


class FakePort:
    """An open fake port: :meth:`send` delivers a message as if a key had been played."""

    def __init__(self, name: str, callback: Callback, clock: Callable[[], float]):
        self.name, self._callback, self._clock = name, callback, clock
        self.closed = False

    def send(self, msg, when: float | None = None) -> None:
        if not self.closed:
            self._callback(msg, self._clock() if when is None else when)

    def close(self) -> None:
        self.closed = True


class FakeSource:
    """Port names set by hand (plug and unplug in tests) and ports that yield given messages."""

    def __init__(self, names=("Fake Keyboard",), clock: Callable[[], float] = time.monotonic):
        self.ports = list(names)
        self.clock = clock
        self.opened: dict[str, FakePort] = {}
        self.unavailable = ""

    def names(self) -> list[str]:
        if self.unavailable:
            raise MidiUnavailable(self.unavailable)
        return list(self.ports)

    def open(self, name: str, callback: Callback) -> FakePort:
        if name not in self.ports:
            raise OSError(f"no MIDI input port named {name!r}")
        port = FakePort(name, callback, self.clock)
        self.opened[name] = port
        return port

    def port(self, name: str | None = None) -> FakePort:
        """The open port (the only one, or by name)."""
        if name is None:
            live = [p for p in self.opened.values() if not p.closed]
            return live[-1]
        return self.opened[name]


class MidiInput:
    """The input ports and the one that is open.

    ``wanted`` is the port the user chose (kept in the settings; empty: the first port there
    is).  :meth:`poll` refreshes the list and opens or closes the port as devices come and go;
    it returns True when something the user sees changed (the list, the open port, the reason).
    """

    def __init__(self, callback: Callback, source=None, wanted: str = ""):
        self.callback = callback
        self.source = source if source is not None else RtMidiSource()
        self.wanted = wanted
        self.names: list[str] = []
        self.port = None
        self.port_name = ""
        self.reason = ""
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.port is not None

    def poll(self) -> bool:
        before = (list(self.names), self.port_name, self.reason)
        try:
            self.names = self.source.names()
            why = "" if self.names else "no MIDI input device is connected"
        except MidiUnavailable as exc:
            self.names, why = [], str(exc)
        if self.port_name and self.port_name not in self.names:
            self._close()
        # the chosen keyboard, else (not plugged in, or none chosen) the first one there is
        target = self.wanted if self.wanted in self.names else (self.names[0] if self.names else "")
        if target and target != self.port_name:
            self._close()
            try:
                self.port = self.source.open(target, self._deliver)
                self.port_name = target
            except Exception as exc:  # noqa: BLE001 - a port can vanish between listing and opening
                why = f"the MIDI input {target!r} could not be opened ({exc})"
        self.reason = "" if self.port is not None else why
        return before != (self.names, self.port_name, self.reason)

    def choose(self, name: str) -> None:
        """Use port ``name`` from now on (empty: the first one there is)."""
        self.wanted = name
        if name != self.port_name:
            self._close()
        self.poll()

    def _deliver(self, msg, when: float) -> None:
        if getattr(msg, "type", "") in ("clock", "active_sensing"):
            return  # a keyboard sends these many times a second; nothing here uses them
        self.callback(msg, when)

    def _close(self) -> None:
        port, self.port, self.port_name = self.port, None, ""
        if port is not None:
            try:
                port.close()
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        self._close()
