"""FluidSynth behind one import guard: soundfont lookup and a small synthesizer wrapper.

The rest of the app never imports ``fluidsynth`` directly.  :func:`fluidsynth_available`
says whether the Python binding and the system library are both there (and why not);
:class:`Synth` loads a General MIDI soundfont, maps tracks to channels (drums on MIDI
channel 10 with the percussion bank 128) and writes float32 stereo into numpy arrays.
"""

from __future__ import annotations

import collections
import ctypes
import importlib.util
import os
from pathlib import Path

import numpy as np

from ..core.errors import StudioError

DRUM_CHANNEL = 9  # MIDI channel 10, counted from zero
DRUM_BANK = 128  # the percussion bank of a General MIDI soundfont

# GM soundfonts that Linux distributions install (first hit wins)
SYSTEM_SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf3/default-GM.sf3",
    "/usr/share/sounds/sf3/FluidR3_GM.sf3",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/sounds/sf2/GeneralUser_GS.sf2",
)

_fluidsynth = None  # the imported module, once it has imported cleanly
_availability: tuple[bool, str] | None = None
_log_messages: collections.deque[str] = collections.deque(maxlen=20)
_log_callback = None  # keeps the ctypes callback alive


def fluidsynth_available() -> tuple[bool, str]:
    """``(True, "")`` when pyfluidsynth and libfluidsynth load, else ``(False, why)``."""
    global _fluidsynth, _availability
    if _availability is not None:
        return _availability
    try:
        import fluidsynth  # noqa: PLC0415 - the one import guard

        if not hasattr(fluidsynth, "Synth") or not hasattr(fluidsynth, "_fl"):
            raise ImportError("the 'fluidsynth' module found is not pyfluidsynth")
        _fluidsynth = fluidsynth
        _quiet_fluidsynth_log(fluidsynth._fl)
        _availability = (True, "")
    except (ImportError, OSError) as exc:
        text = str(exc) or type(exc).__name__
        if "Couldn't find the FluidSynth library" in text or isinstance(exc, OSError):
            why = "the FluidSynth library is not installed (install the system package libfluidsynth3)"
        elif isinstance(exc, ModuleNotFoundError) and exc.name == "fluidsynth":
            why = "the Python package pyfluidsynth is not installed (pip install pyfluidsynth)"
        else:
            why = f"FluidSynth could not be loaded: {text}"
        _availability = (False, why)
    return _availability


def _quiet_fluidsynth_log(lib) -> None:
    """Route FluidSynth's log lines into a small buffer instead of stderr."""
    global _log_callback
    try:
        proto = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

        def keep(level, message, _data):
            if level <= 2 and message:  # panic, error, warning
                _log_messages.append(message.decode("utf-8", "replace"))

        _log_callback = proto(keep)
        lib.fluid_set_log_function.argtypes = [ctypes.c_int, proto, ctypes.c_void_p]
        for level in range(5):
            lib.fluid_set_log_function(level, _log_callback, None)
    except (AttributeError, TypeError):  # an unusual build: leave FluidSynth's own logging alone
        _log_callback = None


def _require() -> object:
    ok, why = fluidsynth_available()
    if not ok:
        raise StudioError(f"audio rendering is unavailable: {why}")
    return _fluidsynth


# ---- soundfont lookup ---------------------------------------------------------------
def bundled_soundfont() -> Path | None:
    """The small GM soundfont that ships inside pretty_midi, found without importing it."""
    spec = importlib.util.find_spec("pretty_midi")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        sf = Path(folder) / "TimGM6mb.sf2"
        if sf.is_file():
            return sf
    return None


def check_soundfont(path: str | os.PathLike) -> Path:
    """The path, if it names a readable SoundFont 2/3 file; else a :class:`StudioError`."""
    p = Path(path).expanduser()
    if not p.exists():
        raise StudioError(f"{path}: soundfont not found")
    if not p.is_file():
        raise StudioError(f"{path}: soundfont is not a file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(12)
    except OSError as exc:
        raise StudioError(f"{path}: cannot read soundfont ({exc.strerror or exc})") from None
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise StudioError(f"{path}: not a SoundFont (.sf2/.sf3) file")
    return p


def find_soundfont(explicit: str | os.PathLike | None = None) -> Path:
    """The soundfont to use: ``explicit``, else ``$STUDIO_SOUNDFONT``, else the system's GM
    soundfont, else the one bundled with pretty_midi."""
    if explicit:
        return check_soundfont(explicit)
    env = os.environ.get("STUDIO_SOUNDFONT")
    if env:
        try:
            return check_soundfont(env)
        except StudioError as exc:
            raise StudioError(f"STUDIO_SOUNDFONT={exc}") from None
    for candidate in SYSTEM_SOUNDFONTS:
        if os.path.isfile(candidate):
            try:
                return check_soundfont(candidate)
            except StudioError:
                continue
    bundled = bundled_soundfont()
    if bundled is not None:
        return check_soundfont(bundled)
    raise StudioError(
        "no General MIDI soundfont found: pass --soundfont FILE.sf2, set STUDIO_SOUNDFONT, "
        "or install the system package fluid-soundfont-gm"
    )


# ---- channels -----------------------------------------------------------------------
def assign_channels(tracks, channels: int = 256) -> list[int]:
    """One synth channel per track: drum tracks share MIDI channel 10 (index 9), every
    other track gets a channel of its own (skipping each 16th channel's drum slot), so a
    track's program never fights another's.  With more tracks than channels they wrap."""
    melodic = [c for c in range(channels) if c % 16 != DRUM_CHANNEL]
    out, k = [], 0
    for t in tracks:
        if t.is_drum:
            out.append(DRUM_CHANNEL)
        else:
            out.append(melodic[k % len(melodic)])
            k += 1
    return out


def channels_needed(n_tracks: int) -> int:
    """Synth channels for ``n_tracks`` tracks (multiples of 16, at least 16, at most 256)."""
    need = n_tracks + n_tracks // 15 + 1
    return max(16, min(256, -(-need // 16) * 16))


class Synth:
    """A FluidSynth synthesizer with one soundfont, writing float32 stereo.

    Not thread-safe by itself: one thread at a time drives it (the player's audio
    callback, or the offline renderer).  The chorus unit is off by default: a song sends
    nothing to it (no CC 93), so running it would only cost time.  Reverb stays on (GM's
    default send level).
    """

    def __init__(self, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
                 channels: int = 16, gain: float = 0.5, reverb: bool = True, chorus: bool = False,
                 polyphony: int = 256, cpu_cores: int = 1, dynamic_samples: bool = False):
        """``dynamic_samples``: load a preset's samples when a channel selects it rather than
        the whole soundfont up front (the same sound; a 140 MB GM soundfont then opens in
        about 30 ms instead of 250 ms, which offline renders use)."""
        fs = _require()
        if not 8000 <= int(sample_rate) <= 192000:
            raise StudioError(f"sample rate {sample_rate} Hz is out of range (8000-192000)")
        self.soundfont = find_soundfont(soundfont)
        self.sample_rate = int(sample_rate)
        self.channels = int(channels)
        self._fs = fs.Synth(gain=float(gain), samplerate=float(self.sample_rate), channels=self.channels,
                            **{"synth.polyphony": int(polyphony),
                               "synth.reverb.active": int(bool(reverb)),
                               "synth.chorus.active": int(bool(chorus)),
                               "synth.cpu-cores": max(1, int(cpu_cores)),
                               "synth.dynamic-sample-loading": int(bool(dynamic_samples))})
        self._ptr = self._fs.synth
        lib = fs._fl
        self._write = lib.fluid_synth_write_float
        self._write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self._write.restype = ctypes.c_int
        _log_messages.clear()
        self.sfid = self._fs.sfload(str(self.soundfont))
        if self.sfid < 0:
            detail = _log_messages[-1] if _log_messages else "FluidSynth could not load it"
            self._fs.delete()
            raise StudioError(f"{self.soundfont}: cannot load soundfont ({detail})")
        self._closed = False

    # ---- programs and notes ----
    def select(self, channel: int, program: int, drum: bool = False) -> tuple[int, int]:
        """Select a GM program (bank 0) or drum kit (bank 128) on a channel; a preset the
        soundfont lacks falls back to program 0 of the same bank.  Returns (bank, program)."""
        bank = DRUM_BANK if drum else 0
        program = max(0, min(127, int(program)))
        if self._fs.program_select(channel, self.sfid, bank, program) != 0:
            program = 0
            self._fs.program_select(channel, self.sfid, bank, 0)
        return bank, program

    def setup(self, tracks) -> list[int]:
        """Assign channels to ``tracks`` and select each track's program; returns the channels."""
        chans = assign_channels(tracks, self.channels)
        for t, ch in zip(tracks, chans):
            self.select(ch, t.program, t.is_drum)
        return chans

    def program_of(self, channel: int) -> tuple[int, int]:
        """(bank, program) now selected on ``channel``."""
        _sf, bank, prog = self._fs.program_info(channel)
        return bank, prog

    def note_on(self, channel: int, pitch: int, velocity: int) -> None:
        self._fs.noteon(channel, int(pitch), max(1, min(127, int(velocity))))

    def note_off(self, channel: int, pitch: int) -> None:
        self._fs.noteoff(channel, int(pitch))

    def cc(self, channel: int, number: int, value: int) -> None:
        """A MIDI control change (sustain is 64, volume 7, pan 10, expression 11)."""
        self._fs.cc(channel, int(number), max(0, min(127, int(value))))

    def pitch_bend(self, channel: int, value: int) -> None:
        """Pitch bend, -8192..8191 (0 = centre; GM's default range is two semitones)."""
        self._fs.pitch_bend(channel, max(-8192, min(8191, int(value))))

    def release_pedals(self) -> None:
        """Lift the sustain, sostenuto and soft pedals on every channel."""
        for ch in range(self.channels):
            for number in (64, 66, 67):
                self._fs.cc(ch, number, 0)

    def all_notes_off(self) -> None:
        for ch in range(self.channels):
            self._fs.all_notes_off(ch)

    def all_sounds_off(self) -> None:
        for ch in range(self.channels):
            self._fs.all_sounds_off(ch)

    def active_voices(self) -> int:
        return self._fs.get_active_voice_count()

    # ---- audio ----
    def write_into(self, out: np.ndarray, start: int = 0, frames: int | None = None) -> None:
        """Render ``frames`` frames into rows ``start..start+frames`` of a C-contiguous
        float32 (n, 2) array, in place."""
        if frames is None:
            frames = out.shape[0] - start
        if frames <= 0:
            return
        ptr = out.ctypes.data
        self._write(self._ptr, int(frames), ptr, 2 * start, 2, ptr, 2 * start + 1, 2)

    def get_samples(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames as a new float32 (frames, 2) array."""
        out = np.zeros((int(frames), 2), dtype=np.float32)
        self.write_into(out)
        return out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._fs.delete()

    def __enter__(self) -> "Synth":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
