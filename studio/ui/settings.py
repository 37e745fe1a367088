"""The editor's settings: one typed object over QSettings, the only place that touches QSettings.

Every value has a type and a default; a settings file written by an older version is migrated
(or reset) by :meth:`Settings._migrate` through the stored ``version`` key.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

VERSION = 2  # 2: one Metronome for playback and recording (transport/metronome, off at first)
MAX_RECENT = 10


class Settings:
    """Typed access to the persistent settings. ``Settings(path)`` uses an ini file (tests)."""

    def __init__(self, path: str | None = None):
        if path is None:
            folder = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppConfigLocation)
            path = os.path.join(folder or os.path.expanduser("~/.config/cantor-studio"), "studio.ini")
        self._q = QSettings(path, QSettings.Format.IniFormat)
        self._migrate()

    @property
    def path(self) -> str:
        return self._q.fileName()

    def _migrate(self) -> None:
        stored = self._int("version", 0)
        if stored > VERSION:  # written by a newer release: keep what we understand, touch nothing else
            return
        if stored < 1 and self._q.allKeys():
            # before version 1 nothing was typed; start clean rather than misread old values
            self._q.clear()
        if stored < 2:
            self._q.remove("record/metronome")  # it meant clicks while recording only
        self._q.setValue("version", VERSION)

    # ---- typed helpers ---------------------------------------------------------------
    def _int(self, key: str, default: int) -> int:
        v = self._q.value(key, default)
        try:
            return int(v)
        except (TypeError, ValueError):
            return default

    def _str(self, key: str, default: str) -> str:
        v = self._q.value(key, default)
        return v if isinstance(v, str) else default

    def _bytes(self, key: str) -> QByteArray:
        v = self._q.value(key)
        return v if isinstance(v, QByteArray) else QByteArray()

    def sync(self) -> None:
        self._q.sync()

    # ---- window layout ---------------------------------------------------------------
    @property
    def window_geometry(self) -> QByteArray:
        return self._bytes("window/geometry")

    @window_geometry.setter
    def window_geometry(self, value: QByteArray) -> None:
        self._q.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray:
        return self._bytes("window/state")

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self._q.setValue("window/state", value)

    @property
    def splitter_state(self) -> QByteArray:
        return self._bytes("window/splitter")

    @splitter_state.setter
    def splitter_state(self, value: QByteArray) -> None:
        self._q.setValue("window/splitter", value)

    @property
    def assistant_splitter(self) -> QByteArray:
        """Heights of the assistant's panes (request, takes, voice leading)."""
        return self._bytes("window/assistant_splitter")

    @assistant_splitter.setter
    def assistant_splitter(self, value: QByteArray) -> None:
        self._q.setValue("window/assistant_splitter", value)

    # ---- editing -----------------------------------------------------------------------
    @property
    def grid(self) -> str:
        """The snap grid by name, e.g. ``"1/16"`` or ``"1/8T"``."""
        return self._str("edit/grid", "1/16")

    @grid.setter
    def grid(self, value: str) -> None:
        self._q.setValue("edit/grid", str(value))

    # ---- audio -------------------------------------------------------------------------
    @property
    def soundfont(self) -> str:
        """Path of a General MIDI soundfont; empty means the system's default."""
        return self._str("audio/soundfont", "")

    @soundfont.setter
    def soundfont(self, value: str) -> None:
        self._q.setValue("audio/soundfont", str(value or ""))

    # ---- files -------------------------------------------------------------------------
    @property
    def recent_files(self) -> list[str]:
        v = self._q.value("files/recent", [])
        if isinstance(v, str):
            v = [v]
        return [str(p) for p in (v or []) if p][:MAX_RECENT]

    @recent_files.setter
    def recent_files(self, paths: list[str]) -> None:
        self._q.setValue("files/recent", list(paths)[:MAX_RECENT])

    def add_recent(self, path: str) -> list[str]:
        path = os.path.abspath(path)
        paths = [path] + [p for p in self.recent_files if p != path]
        self.recent_files = paths
        return self.recent_files

    @property
    def last_folder(self) -> str:
        return self._str("files/last_folder", "")

    @last_folder.setter
    def last_folder(self, value: str) -> None:
        self._q.setValue("files/last_folder", str(value))

    # ---- recording -------------------------------------------------------------------------
    def _bool(self, key: str, default: bool) -> bool:
        v = self._q.value(key, default)
        if isinstance(v, str):
            return v.strip().lower() in ("1", "true", "yes", "on")
        return bool(v) if v is not None else default

    @property
    def midi_input(self) -> str:
        """The MIDI input port to record from; empty means the first one there is."""
        return self._str("record/midi_input", "")

    @midi_input.setter
    def midi_input(self, value: str) -> None:
        self._q.setValue("record/midi_input", str(value or ""))

    @property
    def midi_thru(self) -> bool:
        """Sound what is played on the MIDI keyboard with the current track's instrument."""
        return self._bool("record/thru", True)

    @midi_thru.setter
    def midi_thru(self, value: bool) -> None:
        self._q.setValue("record/thru", bool(value))

    @property
    def low_latency(self) -> bool:
        """Open the audio device with a 20 ms buffer instead of the player's default (what is
        played on a MIDI keyboard is heard sooner; a busy machine may crackle)."""
        return self._bool("audio/low_latency", False)

    @low_latency.setter
    def low_latency(self, value: bool) -> None:
        self._q.setValue("audio/low_latency", bool(value))

    @property
    def metronome(self) -> bool:
        """Click on the beats while playing and while recording (the count-in clicks either way)."""
        return self._bool("transport/metronome", False)

    @metronome.setter
    def metronome(self, value: bool) -> None:
        self._q.setValue("transport/metronome", bool(value))

    @property
    def metronome_volume(self) -> int:
        """0..100."""
        return max(0, min(100, self._int("record/metronome_volume", 70)))

    @metronome_volume.setter
    def metronome_volume(self, value: int) -> None:
        self._q.setValue("record/metronome_volume", max(0, min(100, int(value))))

    @property
    def count_in_bars(self) -> int:
        """Bars of count-in before recording starts: 0, 1 or 2."""
        return max(0, min(2, self._int("record/count_in", 1)))

    @count_in_bars.setter
    def count_in_bars(self, value: int) -> None:
        self._q.setValue("record/count_in", max(0, min(2, int(value))))

    @property
    def record_mode(self) -> str:
        """``"overdub"`` keeps the notes already in the recorded span, ``"replace"`` removes them."""
        v = self._str("record/mode", "overdub")
        return v if v in ("overdub", "replace") else "overdub"

    @record_mode.setter
    def record_mode(self, value: str) -> None:
        self._q.setValue("record/mode", "replace" if value == "replace" else "overdub")

    @property
    def input_quantize(self) -> str:
        """Grid name recorded notes are quantized to (``"1/16"``...); empty (the default) keeps them as played."""
        return self._str("record/input_quantize", "")

    @input_quantize.setter
    def input_quantize(self, value: str) -> None:
        self._q.setValue("record/input_quantize", str(value or ""))
