"""The limits of a song: one set, kept by every reader and every writer.

Whatever the app writes it can read back.  :func:`check_song` is applied to every song a
file gives (``io.load``) and to every song before anything is written (``io.save``); each
format's writer also holds the bytes it made to that format's reading caps before they go
to disk.  A song past a limit is refused with one line naming the limit, never capped
silently.

The file-size caps differ by format only because the formats differ in density; they
bound what a reader has to hold in memory.
"""

from __future__ import annotations

from ..core.errors import FileFormatError
from ..core.song import PPQ, Song

# ---- a song -------------------------------------------------------------------------------
MAX_TRACKS = 256
MAX_EVENTS = 2_000_000  # notes, controller events, tempo, meter and key changes together
MAX_SECONDS = 6 * 3600.0  # 6 hours
MAX_QUARTERS = 360_000  # 6 hours at 1000 bpm: a bound on raw positions, checked before the tempo map
MAX_TICKS = PPQ * MAX_QUARTERS
MIN_BPM, MAX_BPM = 1.0, 1000.0
MAX_BEATS = 64  # a meter's numerator
DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)  # a meter's denominator

# ---- files --------------------------------------------------------------------------------
MIB = 1024 * 1024
MIDI_MAX_BYTES = 8 * MIB  # keeps mido's message objects well bounded in memory
MIDI_MAX_CHUNKS = MAX_TRACKS + 1  # a conductor track, then one track per instrument
MIDI_MAX_MESSAGES = 2_000_000  # raw MIDI events in a file (a note is two)
MUSICXML_MAX_BYTES = 50 * MIB  # a .musicxml / .xml file, or the unpacked content of an .mxl
PROJECT_MAX_BYTES = 200 * MIB


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} hours"


def song_problem(song: Song) -> str | None:
    """What puts ``song`` past a limit (one short sentence), or None when it is within all."""
    if len(song.tracks) > MAX_TRACKS:
        return f"{len(song.tracks)} tracks, more than the limit of {MAX_TRACKS}"
    changes = len(song.tempos) + len(song.time_signatures) + len(song.key_signatures)
    controls = sum(len(t.controls) for t in song.tracks)
    events = song.note_count + controls + changes
    if events > MAX_EVENTS:
        return (f"{events:,} notes, controller events and tempo, meter and key changes, "
                f"more than the limit of {MAX_EVENTS:,}")
    last = max([0] + [e.tick for e in (*song.tempos, *song.time_signatures, *song.key_signatures)]
               + [t.controls[-1].tick for t in song.tracks if t.controls])
    end = max(song.end_tick, last)
    if end > MAX_TICKS:
        return f"runs to quarter note {end / PPQ:,.0f}, past the limit of {MAX_QUARTERS:,}"
    for t in song.tempos:
        if not MIN_BPM <= t.bpm <= MAX_BPM:  # also refuses NaN
            return f"a tempo of {t.bpm:g} bpm at quarter note {t.tick / PPQ:g}, outside {MIN_BPM:g}..{MAX_BPM:g} bpm"
    for m in song.time_signatures:
        if not 1 <= m.numerator <= MAX_BEATS or m.denominator not in DENOMINATORS:
            return (f"a meter of {m.numerator}/{m.denominator} at quarter note {m.tick / PPQ:g}: at most {MAX_BEATS} "
                    f"beats of a whole, half, quarter ... or 64th note")
    for k in song.key_signatures:
        if not -7 <= k.fifths <= 7:
            return f"a key signature of {k.fifths} fifths at quarter note {k.tick / PPQ:g}, outside -7..7"
    from ..core.timing import TempoMap

    seconds = TempoMap(song).seconds(end)
    if seconds > MAX_SECONDS:
        return f"{_hours(seconds)} long, more than the {MAX_SECONDS / 3600:g} hour limit"
    return None


def check_song(song: Song, label: str) -> None:
    """Raise ``FileFormatError("<label>: <problem>")`` when the song is past a limit."""
    problem = song_problem(song)
    if problem:
        raise FileFormatError(f"{label}: {problem}")


def check_size(data: bytes, limit: int, label: str, what: str) -> None:
    """Refuse to write ``data`` that the reader of its format would refuse for its size."""
    if len(data) > limit:
        raise FileFormatError(f"{label}: would be {len(data) / 1e6:.1f} MB, more than the {limit // MIB} MB "
                              f"limit for {what}; nothing was written")
