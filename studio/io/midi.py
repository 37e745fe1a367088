"""Standard MIDI files <-> Song, through mido.

Reading happens in three steps.  A cheap structural scan of the raw bytes comes first: the
``MThd`` header must be sane (length 6 or more, format 0/1/2, 1-256 tracks, a usable time
division), every chunk length must fit in the file, and the file must stay under the byte
cap, and the events of each chunk are counted from their lengths (no objects made) against
the event cap.  Each ``MTrk`` chunk then goes to mido on its own (so an event can never run past
the end of its chunk into the next one), with ``clip=False``: a data byte of 128 or more
is an error, not something to guess at.  Anything mido raises becomes one
:class:`FileFormatError` line.  Last, the parsed messages are checked against the event
and length caps and for things mido lets through (real-time bytes in a track, a tempo of
zero, impossible meters) before the Song is built.

Writing builds a type 1 ``mido.MidiFile`` (a conductor track with title, meter, key and
tempo, then one track per instrument) and saves it through an atomic write.

Import rules:

* ticks are rescaled to ``PPQ`` (480) with exact integer rounding; SMPTE time division is
  turned into quarter notes at 120 bpm;
* note-ons and note-offs of one pitch on one channel pair first-in first-out, so an early
  note-off never cuts a later, overlapping note of the same pitch;
* zero-length notes (and notes left open at the end) get a short playable length;
* tempo, time-signature and key-signature maps are kept; channel 10 means drums;
* controllers (control changes and pitch bend) go to the track of their channel, in the
  order they came; a volume (CC 7) or pan (CC 10) at tick 0 becomes the track's volume/pan;
* a ``Composer: NAME`` text event in the first track is the song's composer;
* a marker event ``fermata`` (in any track) marks a fermata at its tick; the writer puts one in the
  conductor track for each of the song's fermatas (players and other programs ignore markers);
* a first bar in a shorter meter than the next, one bar long, is read as a pickup (that is
  how a pickup is written: its own short meter, then the song's meter).
"""

from __future__ import annotations

import io
import os
import warnings
from collections import defaultdict, deque
from pathlib import Path

import mido

from ..core.errors import FileFormatError, FileWarning
from ..core.song import (PAN, PITCH_BEND, PPQ, VOLUME, Control, KeySignature, Note, Song, TempoChange,
                         TimeSignature, Track)
from . import limits
from .atomic import atomic_write_bytes
from .reading import read_limited

# ---- limits a file must stay within (the shared ones, see limits.py) ----------------------
MAX_BYTES = limits.MIDI_MAX_BYTES
MAX_TRACKS = limits.MIDI_MAX_CHUNKS  # track chunks: a conductor track and one per instrument
MAX_EVENTS = limits.MIDI_MAX_MESSAGES
MAX_SECONDS = limits.MAX_SECONDS
MAX_QUARTERS = limits.MAX_QUARTERS
REPAIR_TICKS = PPQ // 8  # length given to zero-length notes (a 32nd note)
DRUM_CHANNEL = 9
FERMATA_MARKER = "fermata"  # the text of the marker meta event a fermata is written as

# General MIDI program names, 0-127
GM_PROGRAM_NAMES: tuple[str, ...] = tuple(
    (
        "Acoustic Grand Piano|Bright Acoustic Piano|Electric Grand Piano|Honky-tonk Piano|Electric Piano 1|Electric Piano 2|Harpsichord|Clavinet|"
        "Celesta|Glockenspiel|Music Box|Vibraphone|Marimba|Xylophone|Tubular Bells|Dulcimer|"
        "Drawbar Organ|Percussive Organ|Rock Organ|Church Organ|Reed Organ|Accordion|Harmonica|Tango Accordion|"
        "Acoustic Guitar (nylon)|Acoustic Guitar (steel)|Electric Guitar (jazz)|Electric Guitar (clean)|Electric Guitar (muted)|Overdriven Guitar|Distortion Guitar|Guitar Harmonics|"
        "Acoustic Bass|Electric Bass (finger)|Electric Bass (pick)|Fretless Bass|Slap Bass 1|Slap Bass 2|Synth Bass 1|Synth Bass 2|"
        "Violin|Viola|Cello|Contrabass|Tremolo Strings|Pizzicato Strings|Orchestral Harp|Timpani|"
        "String Ensemble 1|String Ensemble 2|Synth Strings 1|Synth Strings 2|Choir Aahs|Voice Oohs|Synth Choir|Orchestra Hit|"
        "Trumpet|Trombone|Tuba|Muted Trumpet|French Horn|Brass Section|Synth Brass 1|Synth Brass 2|"
        "Soprano Sax|Alto Sax|Tenor Sax|Baritone Sax|Oboe|English Horn|Bassoon|Clarinet|"
        "Piccolo|Flute|Recorder|Pan Flute|Blown Bottle|Shakuhachi|Whistle|Ocarina|"
        "Lead 1 (square)|Lead 2 (sawtooth)|Lead 3 (calliope)|Lead 4 (chiff)|Lead 5 (charang)|Lead 6 (voice)|Lead 7 (fifths)|Lead 8 (bass + lead)|"
        "Pad 1 (new age)|Pad 2 (warm)|Pad 3 (polysynth)|Pad 4 (choir)|Pad 5 (bowed)|Pad 6 (metallic)|Pad 7 (halo)|Pad 8 (sweep)|"
        "FX 1 (rain)|FX 2 (soundtrack)|FX 3 (crystal)|FX 4 (atmosphere)|FX 5 (brightness)|FX 6 (goblins)|FX 7 (echoes)|FX 8 (sci-fi)|"
        "Sitar|Banjo|Shamisen|Koto|Kalimba|Bagpipe|Fiddle|Shanai|"
        "Tinkle Bell|Agogo|Steel Drums|Woodblock|Taiko Drum|Melodic Tom|Synth Drum|Reverse Cymbal|"
        "Guitar Fret Noise|Breath Noise|Seashore|Bird Tweet|Telephone Ring|Helicopter|Applause|Gunshot|"
    ).rstrip("|").split("|")
)


# messages that belong on a live MIDI cable, never inside a file
_SYSTEM_TYPES = frozenset(
    ("quarter_frame", "songpos", "song_select", "tune_request", "clock", "start", "continue", "stop",
     "active_sensing", "reset")
)


MAX_MISSING_TAIL = 4  # bytes a last track may lack and still be read: at most its end-of-track event


class _Fail(Exception):
    """Internal: a problem found while reading, turned into a FileFormatError with the file name."""


# ---- reading: structural scan ------------------------------------------------------------
_DATA_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def _count_events(data: bytes, pos: int, end: int, budget: int) -> int:
    """How many events one track chunk holds, counted from their lengths alone (no objects);
    stops early past ``budget`` or at anything odd, which mido then reports properly.

    mido spends ~20 us and ~300 bytes on each message, so a file dense with tiny events is
    refused here, before mido builds millions of them."""
    n, status = 0, 0
    while pos < end and n <= budget:
        n += 1
        while pos < end and data[pos] & 0x80:  # delta time
            pos += 1
        pos += 1
        if pos >= end:
            break
        b = data[pos]
        if b < 0x80:  # running status
            if not status:
                break
            pos += _DATA_LEN[status & 0xF0]
        elif b == 0xFF or b in (0xF0, 0xF7):
            pos += 2 if b == 0xFF else 1
            length = 0
            while pos < end and data[pos] & 0x80:
                length = (length << 7) | (data[pos] & 0x7F)
                pos += 1
            if pos < end:
                length = (length << 7) | data[pos]
            pos += 1 + length
        elif b >= 0xF0:
            break
        else:
            status = b
            pos += 1 + _DATA_LEN[b & 0xF0]
    return n


def _scan(data: bytes, notes: list[str] | None = None) -> tuple[int, int, list[bytes], int | None]:
    """Check the file's chunk structure without parsing events.

    Returns the format, the raw time division, the ``MTrk`` chunks (header included) and
    the index of a last track the file cuts short (None if none): one at most
    ``MAX_MISSING_TAIL`` bytes short of its length is read as far as it goes, with a line
    added to ``notes``.
    """
    notes = [] if notes is None else notes
    if not data:
        raise _Fail("empty file")
    if len(data) > MAX_BYTES:
        raise _Fail(f"larger than the {MAX_BYTES // (1024 * 1024)} MB limit for MIDI files")
    pos = 0
    if data[:4] == b"RIFF" and data[8:12] == b"RMID":  # RIFF-wrapped MIDI: find the 'data' chunk
        pos = 12
        while pos + 8 <= len(data) and data[pos : pos + 4] != b"data":
            pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
        pos += 8
    if data[pos : pos + 4] != b"MThd":
        raise _Fail("not a MIDI file (no 'MThd' header)")
    if len(data) < pos + 14:
        raise _Fail("header cut off")
    hlen = int.from_bytes(data[pos + 4 : pos + 8], "big")
    if hlen < 6 or pos + 8 + hlen > len(data):
        raise _Fail(f"header length {hlen} is impossible")
    fmt = int.from_bytes(data[pos + 8 : pos + 10], "big")
    ntracks = int.from_bytes(data[pos + 10 : pos + 12], "big")
    division = int.from_bytes(data[pos + 12 : pos + 14], "big")
    if fmt > 2:
        raise _Fail(f"unknown MIDI format {fmt} (0, 1 or 2 expected)")
    if ntracks == 0:
        raise _Fail("the header says the file has no tracks")
    if ntracks > MAX_TRACKS:
        raise _Fail(f"{ntracks} tracks is more than the limit of {MAX_TRACKS}")
    _scaler(division)  # refuses a zero or impossible division
    pos += 8 + hlen
    chunks: list[bytes] = []
    seen = events = 0
    short = None
    while pos < len(data) and len(chunks) < ntracks:
        if pos + 8 > len(data):
            if chunks:
                break  # a few stray bytes after the last track
            raise _Fail("track header cut off")
        ctype = data[pos : pos + 4]
        clen = int.from_bytes(data[pos + 4 : pos + 8], "big")
        body = pos + 8
        seen += 1
        if seen > MAX_TRACKS * 4:
            raise _Fail("too many chunks")
        if ctype != b"MTrk":
            if not all(32 <= c < 127 for c in ctype):
                raise _Fail(f"garbage where track {len(chunks) + 1} should start (byte {pos})")
            pos = body + clen  # an unknown chunk type: skip it, as the standard asks
            continue
        if body + clen > len(data) and len(chunks) == ntracks - 1 and body + clen - len(data) <= MAX_MISSING_TAIL:
            missing = body + clen - len(data)  # the last track lacks its last bytes: read what is there
            notes.append(f"track {len(chunks) + 1} ends {missing} byte{'s' if missing > 1 else ''} short of its length")
            clen = len(data) - body
            short = len(chunks)
        if body + clen > len(data):
            raise _Fail(
                f"track {len(chunks) + 1} is cut off: its header promises {clen:,} bytes, "
                f"only {len(data) - body:,} follow"
            )
        events += _count_events(data, body, body + clen, MAX_EVENTS - events)
        if events > MAX_EVENTS:
            raise _Fail(f"more than {MAX_EVENTS:,} events (limit)")
        chunks.append(data[pos:pos + 4] + clen.to_bytes(4, "big") + data[body : body + clen])
        pos = body + clen
    if len(chunks) < ntracks:
        raise _Fail(f"the header promises {ntracks} track{'s' if ntracks != 1 else ''}, only {len(chunks)} found")
    return fmt, division, chunks, short


# ---- reading: mido, then the caps and sanity checks ----------------------------------------
_ONE_TRACK_HEADER = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + (1).to_bytes(2, "big") + PPQ.to_bytes(2, "big")


def _mido_parse(chunk: bytes, index: int) -> mido.MidiTrack:
    try:
        mf = mido.MidiFile(file=io.BytesIO(_ONE_TRACK_HEADER + chunk), clip=False)
    except EOFError:
        raise _Fail(f"track {index + 1}: an event runs past the end of its track") from None
    except Exception as exc:  # mido raises OSError, ValueError, KeyError, TypeError ... on bad bytes
        raise _Fail(f"track {index + 1}: {_plain(exc)}") from None
    return mf.tracks[0]


def _mido_track(chunk: bytes, index: int, notes: list[str] | None = None, cut_off: bool = False) -> mido.MidiTrack:
    """One MTrk chunk parsed by mido, alone, so nothing in it can reach past its end.

    When mido refuses it, finds system messages in it, or it holds a SysEx (after which
    mido loses the running status), the chunk is first repaired the way tolerant players
    read it (:func:`repair_track`); what was repaired goes into ``notes``.  A chunk the repair
    cannot make sense of is refused with mido's complaint."""
    notes = [] if notes is None else notes
    try:
        track = _mido_parse(chunk, index)
        if not any(m.type in _SYSTEM_TYPES or m.type == "sysex" for m in track):
            return track
        failure = None
    except _Fail as exc:
        failure = exc
    fixed = repair_track(chunk[8:], cut_off)
    if fixed is None:
        if failure is not None:
            raise failure
        return track
    body, said = fixed
    track = _mido_parse(chunk[:4] + len(body).to_bytes(4, "big") + body, index)
    notes += [f"{what} in track {index + 1}" for what in said]
    return track


_COMMON_DATA = {0xF1: 1, 0xF2: 2, 0xF3: 1}


def repair_track(data: bytes, cut_off: bool = False) -> tuple[bytes, list[str]] | None:
    """A track body re-written the way a tolerant player reads it, and what was repaired.

    * system real-time and common messages (0xF1-0xFE, which belong on a cable, not in a
      file) are skipped: written as events of their own (a delta time, the status byte and
      its data bytes: one for 0xF1 and 0xF3, two for 0xF2), as sequencers that record a
      cable write them, or as bare bytes between an event's delta time and its status or
      between its data bytes.  The first reading is tried first; when the track makes no
      sense that way, the second;
    * running status resumes after a SysEx or meta event (a SysEx does not cancel it);
    * an event cut off by the end of the track is dropped, when ``cut_off`` (the file itself
      ended early); a track that is whole by its length but ends inside an event is refused.

    Every channel event is written with its status byte.  None when the track cannot be
    made sense of (a data byte with no status ever given, a delta time over four bytes, a
    data byte of 128 or more that is not a real-time byte): the caller reports that."""
    return _repair(data, cut_off, True) or _repair(data, cut_off, False)


def _repair(data: bytes, cut_off: bool, strays_are_events: bool) -> tuple[bytes, list[str]] | None:
    """:func:`repair_track` with one reading of stray system bytes: as whole events
    (``strays_are_events``) or as bytes inside an event."""
    out = bytearray()
    pos, n = 0, len(data)
    status, carry = 0, 0
    skipped = resumed = cut = 0
    after_sysex = False

    def vlq(at: int):
        value = 0
        for k in range(4):
            if at >= n:
                return None, at
            b = data[at]
            value = (value << 7) | (b & 0x7F)
            at += 1
            if not b & 0x80:
                return value, at
        return -1, at

    while pos < n:
        delta, pos = vlq(pos)
        if delta is None:
            cut += 1
            break
        if delta < 0:
            return None
        stray = pos
        if strays_are_events and pos < n and 0xF1 <= data[pos] <= 0xFE and data[pos] != 0xF7:
            pos += 1 + _COMMON_DATA.get(data[pos], 0)  # the message and its data bytes
            if pos > n or any(c & 0x80 for c in data[stray + 1 : pos]):
                return None
            skipped += 1
            carry += delta  # its time passes all the same
            continue
        while pos < n and 0xF1 <= data[pos] <= 0xFE and data[pos] != 0xF7:
            pos += 1
        skipped += pos - stray
        if pos >= n:
            cut += pos == stray  # a delta time with no event after it
            break
        b = data[pos]
        if b == 0xFF or b in (0xF0, 0xF7):
            head = pos
            pos += 2 if b == 0xFF else 1
            length, pos = vlq(pos)
            if length is None or length < 0 or pos + length > n:
                if not (b == 0xFF and data[head + 1 : head + 2] == b"\x2f"):
                    cut += 1  # a cut-off end-of-track loses nothing: it is written anew below
                break
            pos += length
            out += _vlq(delta + carry) + data[head:pos]
            carry = 0
            after_sysex = b != 0xFF or after_sysex
            continue
        if b & 0x80:
            status = b
            pos += 1
        elif not status:
            return None
        elif after_sysex:
            resumed += 1
        after_sysex = False
        need = _DATA_LEN[status & 0xF0]
        got = bytearray()
        while len(got) < need and pos < n:
            c = data[pos]
            pos += 1
            if c >= 0xF8:  # a real-time byte between data bytes
                skipped += 1
            elif c & 0x80:
                return None
            else:
                got.append(c)
        if len(got) < need:
            cut += 1
            break
        out += _vlq(delta + carry) + bytes([status]) + got
        carry = 0
    if cut and not cut_off:
        return None
    said = []
    if skipped:
        said.append(f"skipped {skipped} undefined status byte{'s' if skipped > 1 else ''}")
    if resumed:
        said.append(f"resumed running status after a SysEx {resumed} time{'s' if resumed > 1 else ''}")
    if cut:
        said.append("dropped an event cut off at the end")
    if not out.endswith(b"\xff\x2f\x00"):
        out += b"\x00\xff\x2f\x00"
    return bytes(out), said


_MIDO_WORDS = {
    "data byte must be in range": "a data byte of 128 or more inside an event",
    "running status without last_status": "a data byte without a status byte",
    "list index out of range": "a meta event shorter than its kind needs",
}


def _plain(exc: Exception) -> str:
    """mido's complaint in one short line, in our words where we know it."""
    text = " ".join(str(exc).split())
    for key, words in _MIDO_WORDS.items():
        if key in text:
            return words
    return text[:120] or type(exc).__name__


def _events(track: mido.MidiTrack, index: int, tick_cap: int) -> list[tuple]:
    """The messages of one track as (tick, kind, channel, a, b) tuples.

    kinds: 'on', 'off', 'prog', 'cc', 'bend', 'tempo', 'ts', 'key', 'name', 'text', 'fermata', 'eot'.
    """
    out = []
    tick = 0
    where = f"track {index + 1}"
    for msg in track:
        tick += msg.time
        if tick > tick_cap:
            raise _Fail(f"{where}: events later than {MAX_SECONDS / 3600:g} hours (limit)")
        kind = msg.type
        if kind == "note_on":
            out.append((tick, "on" if msg.velocity > 0 else "off", msg.channel, msg.note, msg.velocity))
        elif kind == "note_off":
            out.append((tick, "off", msg.channel, msg.note, 0))
        elif kind == "program_change":
            out.append((tick, "prog", msg.channel, msg.program, 0))
        elif kind == "control_change":
            out.append((tick, "cc", msg.channel, msg.control, msg.value))
        elif kind == "pitchwheel":
            out.append((tick, "bend", msg.channel, msg.pitch, 0))
        elif kind == "text" and index == 0:
            raw = msg.text.encode("latin-1", errors="replace")
            out.append((tick, "text", 0, *_decode_text(raw)))
        elif kind == "marker" and msg.text.strip().lower() == FERMATA_MARKER:
            out.append((tick, "fermata", 0, 0, 0))
        elif kind == "end_of_track":
            out.append((tick, "eot", 0, 0, 0))
            break
        elif kind == "set_tempo":
            if msg.tempo == 0:
                raise _Fail(f"{where}: tempo of zero microseconds per quarter")
            out.append((tick, "tempo", 0, msg.tempo, 0))
        elif kind == "time_signature":
            if msg.numerator == 0 or msg.denominator > 64:
                raise _Fail(f"{where}: impossible time signature {msg.numerator}/{msg.denominator}")
            out.append((tick, "ts", 0, msg.numerator, msg.denominator))
        elif kind == "key_signature":
            k = KeySignature.from_name(msg.key)
            out.append((tick, "key", 0, k.fifths, int(k.minor)))
        elif kind in ("track_name", "instrument_name"):
            # mido decodes as Latin-1; recover the bytes to prefer UTF-8 where it is valid
            raw = msg.name.encode("latin-1", errors="replace")
            out.append((tick, "name", 0x03 if kind == "track_name" else 0x04, *_decode_text(raw)))
        elif kind in _SYSTEM_TYPES:
            raise _Fail(f"{where}: system message '{kind}' is not allowed in a file")
        # other messages (controllers, bends, sysex, text, markers ...) carry nothing we keep
    return out


def read_midi_bytes(data: bytes, name: str = "", repairs: list[str] | None = None) -> Song:
    """Parse a standard MIDI file held in memory. Errors name ``name``.

    What was repaired to read it (stray system bytes skipped, a cut-off end) is said in one
    :class:`FileWarning` line, or put into ``repairs`` instead when a list is given."""
    label = os.path.basename(name) or "MIDI data"
    try:
        said: list[str] = []
        song = _read(bytes(data), Path(name).stem if name else "Untitled", said)
        if said:
            if repairs is not None:
                repairs.extend(said)
            else:
                warnings.warn(FileWarning(f"{label}: {'; '.join(said)}"), stacklevel=2)
        return song
    except _Fail as exc:
        raise FileFormatError(f"{label}: {exc}") from None
    except FileFormatError:
        raise
    except Exception as exc:  # whatever else a broken file provokes: still one line, never a traceback
        text = " ".join(str(exc).split())[:120]
        raise FileFormatError(f"{label}: not a readable MIDI file ({type(exc).__name__}: {text})") from None


def read_midi(path: str | os.PathLike) -> Song:
    data = read_limited(path, MAX_BYTES, "MIDI files")
    return read_midi_bytes(data, str(path))



def _read(data: bytes, title: str, said: list[str]) -> Song:
    fmt, division, chunks, short = _scan(data, said)
    scale, tick_cap, smpte = _scaler(division)
    tracks_events = []
    count = 0
    for i, chunk in enumerate(chunks):
        track = _mido_track(chunk, i, said, cut_off=i == short)
        count += len(track)
        if count > MAX_EVENTS:
            raise _Fail(f"more than {MAX_EVENTS:,} events (limit)")
        tracks_events.append(_events(track, i, tick_cap))
        del track
    if fmt == 2:  # independent patterns, played one after another as players do
        offset = 0
        for i, events in enumerate(tracks_events):
            tracks_events[i] = events = [(t + offset, *rest) for t, *rest in events]
            offset = events[-1][0] if events else offset
            if offset > tick_cap:
                raise _Fail(f"track {i + 1}: events later than {MAX_SECONDS / 3600:g} hours (limit)")
    return _build_song(tracks_events, scale, smpte, title, fmt)


def _decode_text(body: bytes) -> tuple[str, bool]:
    """Text of a name event, and whether it was valid UTF-8 (else read as Latin-1)."""
    try:
        text, utf8 = body.decode("utf-8"), True
    except UnicodeDecodeError:
        text, utf8 = body.decode("latin-1"), False
    return "".join(c for c in text if c.isprintable()).strip(), utf8


def _scaler(division: int):
    """A function mapping the file's ticks to ours, and the raw tick cap."""
    if division & 0x8000:  # SMPTE: frames per second and ticks per frame
        fps = 256 - (division >> 8)
        tpf = division & 0xFF
        if fps not in (24, 25, 29, 30) or tpf == 0:
            raise _Fail(f"impossible SMPTE time division ({fps} fps, {tpf} ticks per frame)")
        per_second = fps * tpf
        # quarter notes at 120 bpm: 2 per second
        return (lambda t: (t * PPQ * 2 * 2 + per_second) // (2 * per_second)), per_second * int(MAX_SECONDS) * 2, True
    ppq = division
    if ppq == 0:
        raise _Fail("zero ticks per quarter note in the header")
    return (lambda t: (t * PPQ * 2 + ppq) // (2 * ppq)), ppq * MAX_QUARTERS, False


def _build_song(tracks_events, scale, smpte: bool, title: str, fmt: int) -> Song:
    song = Song(title=title, ppq=PPQ, tracks=[], tempos=[], time_signatures=[], key_signatures=[])
    title_from_file = None
    orphans: dict[int, list[Control]] = defaultdict(list)  # controllers of channels without notes in their chunk
    fermatas = set()
    # some files set every channel's program from one track: the earliest change per channel
    file_program: dict[int, tuple[int, int]] = {}
    for events in tracks_events:
        for tick_raw, kind, ch, a, _b in events:
            if kind == "prog" and (ch not in file_program or tick_raw < file_program[ch][0]):
                file_program[ch] = (tick_raw, a)
    for ti, events in enumerate(tracks_events):
        names = [e[3] for e in events if e[1] == "name" and e[2] == 0x03 and e[3]]
        trusted = any(e[4] for e in events if e[1] == "name" and e[2] == 0x03 and e[3])
        inst_names = [e[3] for e in events if e[1] == "name" and e[2] == 0x04 and e[3]]
        track_name = names[0] if names else (inst_names[0] if inst_names else "")
        open_notes: dict[tuple[int, int], deque] = defaultdict(deque)
        notes_by_ch: dict[int, list[Note]] = defaultdict(list)
        controls_by_ch: dict[int, list[Control]] = defaultdict(list)
        program_by_ch: dict[int, int] = {}
        last_tick = 0
        for tick_raw, kind, ch, a, b in events:
            tick = scale(tick_raw)
            last_tick = tick
            if kind == "on":
                open_notes[(ch, a)].append((tick, b))
            elif kind == "off":
                q = open_notes.get((ch, a))
                if q:
                    start, vel = q.popleft()
                    notes_by_ch[ch].append(_note(start, a, tick - start, vel))
            elif kind == "prog":
                program_by_ch.setdefault(ch, a)
            elif kind == "cc":
                controls_by_ch[ch].append(Control(tick, a, b))
            elif kind == "bend":
                controls_by_ch[ch].append(Control(tick, PITCH_BEND, a))
            elif kind == "text" and a[:9].lower() == "composer:" and not song.composer:
                song.composer = a[9:].strip()
            elif kind == "tempo" and not smpte:
                song.tempos.append(TempoChange(tick, round(60_000_000 / a, 3)))
            elif kind == "ts":
                song.time_signatures.append(TimeSignature(tick, a, b))
            elif kind == "key":
                song.key_signatures.append(KeySignature(tick, a, bool(b)))
            elif kind == "fermata":
                fermatas.add(tick)
        for (ch, pitch), q in open_notes.items():  # notes never switched off end with the track
            for start, vel in q:
                notes_by_ch[ch].append(_note(start, pitch, last_tick - start, vel))
        chans = sorted(c for c, ns in notes_by_ch.items() if ns)
        for ch, cs in controls_by_ch.items():
            if ch not in chans:
                orphans[ch].extend(cs)
        if not chans:
            if ti == 0 and fmt == 1 and track_name and (trusted or _looks_like_text(track_name)):
                title_from_file = track_name
            continue
        for ch in chans:
            name = track_name or f"Track {len(song.tracks) + 1}"
            if len(chans) > 1:
                name = f"{name} (ch {ch + 1})" if track_name else f"Channel {ch + 1}"
            song.tracks.append(
                Track(
                    name=name,
                    program=program_by_ch.get(ch, file_program.get(ch, (0, 0))[1]),
                    channel=ch,
                    is_drum=ch == DRUM_CHANNEL,
                    notes=notes_by_ch[ch],
                )
            )
            _take_controls(song.tracks[-1], controls_by_ch.get(ch, []))
    for ch, cs in orphans.items():  # e.g. a file with its controllers in a chunk of their own
        owner = next((t for t in song.tracks if t.channel == ch), None)
        if owner is not None:
            _take_controls(owner, owner.controls + cs)
    if title_from_file:
        song.title = title_from_file
    song.fermatas = tuple(fermatas)
    song.normalize()
    _find_pickup(song)
    if not song.tempos or song.tempos[0].tick != 0:
        song.tempos.insert(0, TempoChange(0, 120.0))  # the standard's tempo before any tempo event
    if song.time_signatures[0].tick != 0:
        song.time_signatures.insert(0, TimeSignature(0, 4, 4))
    if song.key_signatures[0].tick != 0:
        song.key_signatures.insert(0, KeySignature(0, song.key_signatures[0].fifths, song.key_signatures[0].minor))
    from ..core.timing import song_seconds

    secs = song_seconds(song)
    if secs > MAX_SECONDS:
        raise _Fail(f"{secs / 3600:.1f} hours long, more than the {MAX_SECONDS / 3600:g} hour limit")
    return song


def _take_controls(track: Track, controls: list[Control]) -> None:
    """Give a track its controllers: the last volume and pan at tick 0 become its volume
    and pan, the rest stay events (stable-sorted by tick)."""
    rest = []
    for c in sorted(controls, key=lambda c: c.tick):
        if c.tick == 0 and c.number == VOLUME:
            track.volume = c.value
        elif c.tick == 0 and c.number == PAN:
            track.pan = c.value
        else:
            rest.append(c)
    track.controls = rest


def _find_pickup(song: Song) -> None:
    """A first meter lasting exactly one bar and shorter than the meter after it is a pickup."""
    sigs = song.time_signatures
    if len(sigs) >= 2 and sigs[0].tick == 0:
        first, second = sigs[0], sigs[1]
        length = first.bar_ticks(song.ppq)
        if second.tick == length and length < second.bar_ticks(song.ppq):
            song.pickup = length
            song.time_signatures = [TimeSignature(0, second.numerator, second.denominator)] + sigs[2:]


def pickup_meter(pickup: int, meter: TimeSignature, ppq: int = PPQ) -> tuple[int, int] | None:
    """The (numerator, denominator) of a meter one pickup long, on the meter's own beat
    where it can be, else on a shorter one; None when no MIDI meter fits."""
    for den in (meter.denominator, 8, 16, 32, 64):
        if den >= meter.denominator and (pickup * den) % (4 * ppq) == 0:
            num = pickup * den // (4 * ppq)
            if 1 <= num <= 255:
                return num, den
    return None


def _looks_like_text(name: str) -> bool:
    plain = sum((c.isalnum() and (c.isascii() or ord(c) > 0xFF)) or c in " .,'\"-_()&:#" for c in name)
    return bool(name) and plain >= 0.8 * len(name)


def _note(start: int, pitch: int, duration: int, velocity: int) -> Note:
    if duration <= 0:
        duration = REPAIR_TICKS
    return Note(start, pitch, duration, max(1, min(127, velocity)))


# ---- writing -------------------------------------------------------------------------
def _assign_channels(song: Song) -> list[int]:
    """One channel per track: drums on 10, otherwise the track's own channel unless a track
    with another program already holds it, then the first free one."""
    owner: dict[int, int] = {}  # channel -> program
    out = []
    free = [c for c in range(16) if c != DRUM_CHANNEL]
    for t in song.tracks:
        if t.is_drum:
            out.append(DRUM_CHANNEL)
            continue
        ch = t.channel if 0 <= t.channel < 16 and t.channel != DRUM_CHANNEL else None
        if ch is None or (ch in owner and owner[ch] != t.program):
            unused = [c for c in free if c not in owner]
            same = [c for c, p in owner.items() if p == t.program]
            ch = unused[0] if unused else (same[0] if same else free[len(out) % len(free)])
        owner.setdefault(ch, t.program)
        out.append(ch)
    return out


def _vlq(value: int) -> bytes:
    """A MIDI variable-length number (used by tests that build files byte by byte)."""
    return bytes(mido.midifiles.meta.encode_variable_int(value))


def _text(text: str) -> str:
    """A name that fits a meta event once written as UTF-8."""
    return text.encode("utf-8")[:0xFFFF].decode("utf-8", errors="ignore")


def _track(events: list[tuple[int, int, object]]) -> mido.MidiTrack:
    """A track from (tick, priority, message) events; equal keys keep their order."""
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack()
    now = 0
    for tick, _prio, msg in events:
        msg.time = tick - now
        track.append(msg)
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def song_to_midi_file(song: Song) -> mido.MidiFile:
    """The song as a type-1 ``mido.MidiFile``: a conductor track (title, meter, key, tempo),
    then one track per instrument with its name and program. Names are written as UTF-8."""
    Meta, Msg = mido.MetaMessage, mido.Message
    conductor = [(0, 0, Meta("track_name", name=_text(song.title)))]
    if song.composer:
        conductor.append((0, 0, Meta("text", text=_text("Composer: " + song.composer))))
    sigs = list(song.time_signatures)
    if song.pickup > 0 and sigs:
        first = song.time_signature_at(0)
        fit = pickup_meter(song.pickup, first, song.ppq)
        if fit and song.pickup < first.bar_ticks(song.ppq):
            sigs = [TimeSignature(0, *fit)] + [s for s in sigs if s.tick > 0]
            if not any(s.tick == song.pickup for s in sigs):
                sigs.insert(1, TimeSignature(song.pickup, first.numerator, first.denominator))
    for ts in sigs:
        den = ts.denominator if ts.denominator in (1, 2, 4, 8, 16, 32, 64) else 4
        num = max(1, min(255, ts.numerator))
        conductor.append((ts.tick, 1, Meta("time_signature", numerator=num, denominator=den)))
    for k in song.key_signatures:
        ks = KeySignature(0, max(-7, min(7, k.fifths)), k.minor)
        conductor.append((k.tick, 2, Meta("key_signature", key=ks.tonic + ("m" if ks.minor else ""))))
    for t in song.tempos:
        conductor.append((t.tick, 3, Meta("set_tempo", tempo=max(1, min(0xFFFFFF, t.us_per_quarter)))))
    for f in song.fermatas:
        conductor.append((f, 4, Meta("marker", text=FERMATA_MARKER)))
    mf = mido.MidiFile(type=1, ticks_per_beat=song.ppq, charset="utf-8")
    mf.tracks.append(_track(conductor))
    for track, ch in zip(song.tracks, _assign_channels(song)):
        evs = [(0, 0, Meta("track_name", name=_text(track.name))),
               (0, 1, Msg("program_change", channel=ch, program=max(0, min(127, track.program)))),
               (0, 1, Msg("control_change", channel=ch, control=VOLUME, value=max(0, min(127, track.volume)))),
               (0, 1, Msg("control_change", channel=ch, control=PAN, value=max(0, min(127, track.pan))))]
        for c in track.controls:
            if c.number == PITCH_BEND:
                msg = Msg("pitchwheel", channel=ch, pitch=max(-8192, min(8191, c.value)))
            else:
                msg = Msg("control_change", channel=ch, control=max(0, min(127, c.number)), value=max(0, min(127, c.value)))
            evs.append((max(0, c.tick), 3, msg))  # after note-offs, before note-ons at one tick
        for n in track.notes:
            p = max(0, min(127, n.pitch))
            start = max(0, n.start)
            # at one tick: note-offs first, then note-ons, so repeated notes do not cut each other
            evs.append((start, 4, Msg("note_on", channel=ch, note=p, velocity=max(1, min(127, n.velocity)))))
            evs.append((start + max(1, n.duration), 2, Msg("note_off", channel=ch, note=p, velocity=0)))
        mf.tracks.append(_track(evs))
    return mf


def song_to_midi_bytes(song: Song) -> bytes:
    """The song as the bytes of a type-1 standard MIDI file."""
    buf = io.BytesIO()
    song_to_midi_file(song).save(file=buf)
    return buf.getvalue()


def write_midi(song: Song, path: str | os.PathLike) -> None:
    """Write a type-1 MIDI file atomically (nothing half-written on failure), once the bytes
    have passed the reader's own structural scan: a file we write is one we can read."""
    label = os.path.basename(str(path))
    limits.check_song(song, label)
    events = (2 * song.note_count + sum(len(t.controls) for t in song.tracks)
              + len(song.tempos) + len(song.time_signatures) + len(song.key_signatures) + len(song.fermatas))
    if events + 6 * (len(song.tracks) + 1) > MAX_EVENTS:  # known before building millions of messages
        raise FileFormatError(f"{label}: {events:,} MIDI events, more than the limit of {MAX_EVENTS:,} for MIDI files; "
                              "nothing was written")
    data = song_to_midi_bytes(song)
    limits.check_size(data, MAX_BYTES, label, "MIDI files")
    try:
        _scan(data, [])
    except _Fail as exc:
        raise FileFormatError(f"{label}: would not read back ({exc}); nothing was written") from None
    atomic_write_bytes(path, data)
