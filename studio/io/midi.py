"""Standard MIDI files <-> Song.

Reading uses a small, strict chunk and event parser of our own: it checks every limit
(bytes, tracks, events, length) *while* it reads, so a hostile or broken file stops with
one clear :class:`FileFormatError` long before it can use much time or memory.  Writing
produces type 1 (a conductor track with title, tempo, meter and key, then one track per
instrument); the tests read what we write back with mido to keep us honest.

Import rules:

* ticks are rescaled to ``PPQ`` (480) with exact integer rounding; SMPTE time division is
  turned into quarter notes at 120 bpm;
* note-ons and note-offs of one pitch on one channel pair first-in first-out, so an early
  note-off never cuts a later, overlapping note of the same pitch;
* zero-length notes (and notes left open at the end) get a short playable length;
* tempo, time-signature and key-signature maps are kept; channel 10 means drums.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict, deque
from pathlib import Path

from ..core.errors import FileFormatError
from ..core.song import PPQ, KeySignature, Note, Song, TempoChange, TimeSignature, Track
from .atomic import atomic_write_bytes

# ---- limits a file must stay within ---------------------------------------------------
MAX_BYTES = 20 * 1024 * 1024  # 20 MB
MAX_TRACKS = 256
MAX_EVENTS = 2_000_000
MAX_SECONDS = 6 * 3600.0  # 6 hours
MAX_QUARTERS = 360_000  # 6 hours at 1000 bpm: a raw tick bound checked while parsing
REPAIR_TICKS = PPQ // 8  # length given to zero-length notes (a 32nd note)
DRUM_CHANNEL = 9

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

# data bytes that follow each channel status (high nibble)
_DATA_LEN = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


class _Fail(Exception):
    """Internal: a problem found while parsing, turned into a FileFormatError with the file name."""


# ---- reading -------------------------------------------------------------------------
class _Reader:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int, end: int):
        self.data, self.pos, self.end = data, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise _Fail(f"event cut off at byte {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise _Fail(f"event data runs past the end of its track (byte {self.pos}, {n} bytes wanted)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def varlen(self) -> int:
        value = 0
        for _ in range(4):
            b = self.byte()
            value = (value << 7) | (b & 0x7F)
            if not b & 0x80:
                return value
        raise _Fail(f"variable-length number longer than 4 bytes at byte {self.pos}")


def _parse_track(data: bytes, start: int, end: int, index: int, tick_cap: int, budget: list[int]):
    """Parse one MTrk body into a list of (tick, kind, channel, a, b) tuples.

    kinds: 'on', 'off', 'prog', 'tempo', 'ts', 'key', 'name', 'eot'.
    ``budget`` is a one-item list with the events still allowed in the whole file.
    """
    r = _Reader(data, start, end)
    out = []
    tick = 0
    status = 0
    while r.pos < r.end:
        budget[0] -= 1
        if budget[0] < 0:
            raise _Fail(f"more than {MAX_EVENTS:,} events (limit)")
        tick += r.varlen()
        if tick > tick_cap:
            raise _Fail(f"track {index + 1}: events later than {MAX_SECONDS / 3600:g} hours (limit)")
        b = r.byte()
        if b == 0xFF:  # meta event
            mtype = r.byte()
            body = r.take(r.varlen())
            if mtype == 0x2F:
                out.append((tick, "eot", 0, 0, 0))
                break
            if mtype == 0x51:
                if len(body) != 3:
                    raise _Fail(f"track {index + 1}: tempo event with {len(body)} bytes instead of 3")
                us = int.from_bytes(body, "big")
                if us == 0:
                    raise _Fail(f"track {index + 1}: tempo of zero microseconds per quarter")
                out.append((tick, "tempo", 0, us, 0))
            elif mtype == 0x58:
                if len(body) < 2:
                    raise _Fail(f"track {index + 1}: time signature event too short")
                num, den_pow = body[0], body[1]
                if num == 0 or den_pow > 6:
                    raise _Fail(f"track {index + 1}: impossible time signature {num}/2^{den_pow}")
                out.append((tick, "ts", 0, num, 1 << den_pow))
            elif mtype == 0x59:
                if len(body) < 2:
                    raise _Fail(f"track {index + 1}: key signature event too short")
                sf = body[0] - 256 if body[0] > 127 else body[0]
                if not -7 <= sf <= 7 or body[1] > 1:
                    raise _Fail(f"track {index + 1}: impossible key signature ({sf} sharps, mode {body[1]})")
                out.append((tick, "key", 0, sf, body[1]))
            elif mtype in (0x03, 0x04):  # track / instrument name
                out.append((tick, "name", mtype, *_decode_text(body)))
            # other meta events (text, lyrics, markers, SMPTE offset ...) carry nothing we keep
        elif b in (0xF0, 0xF7):  # sysex or escape: skip its body
            r.take(r.varlen())
            status = 0  # sysex cancels running status
        elif b >= 0xF0:
            raise _Fail(f"track {index + 1}: system message 0x{b:02X} is not allowed in a file (byte {r.pos - 1})")
        else:
            if b & 0x80:
                status = b
                d1 = r.byte()
            else:
                if not status:
                    raise _Fail(f"track {index + 1}: data byte 0x{b:02X} without a status (byte {r.pos - 1})")
                d1 = b
            kind, ch = status & 0xF0, status & 0x0F
            if d1 & 0x80:
                raise _Fail(f"track {index + 1}: bad data byte 0x{d1:02X} at byte {r.pos - 1}")
            d2 = 0
            if _DATA_LEN[kind] == 2:
                d2 = r.byte()
                if d2 & 0x80:
                    raise _Fail(f"track {index + 1}: bad data byte 0x{d2:02X} at byte {r.pos - 1}")
            if kind == 0x90 and d2 > 0:
                out.append((tick, "on", ch, d1, d2))
            elif kind == 0x80 or kind == 0x90:
                out.append((tick, "off", ch, d1, 0))
            elif kind == 0xC0:
                out.append((tick, "prog", ch, d1, 0))
    return out, tick


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


def read_midi_bytes(data: bytes, name: str = "") -> Song:
    """Parse a standard MIDI file held in memory. Errors name ``name``."""
    label = os.path.basename(name) or "MIDI data"
    try:
        return _read(bytes(data), Path(name).stem if name else "Untitled")
    except _Fail as exc:
        raise FileFormatError(f"{label}: {exc}") from None
    except FileFormatError:
        raise
    except (ValueError, IndexError, KeyError, OverflowError, UnicodeError, RecursionError, MemoryError) as exc:
        raise FileFormatError(f"{label}: not a readable MIDI file ({type(exc).__name__}: {exc})") from None


def read_midi(path: str | os.PathLike) -> Song:
    label = os.path.basename(str(path))
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise FileFormatError(f"{label}: {size / 1e6:.1f} MB is larger than the {MAX_BYTES // (1024 * 1024)} MB limit for MIDI files")
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise FileFormatError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{label}: is a folder, not a file") from None
    except OSError as exc:
        raise FileFormatError(f"{label}: cannot read ({exc.strerror or exc})") from None
    return read_midi_bytes(data, str(path))


def _read(data: bytes, title: str) -> Song:
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
    scale, tick_cap, smpte = _scaler(division)
    pos += 8 + hlen

    budget = [MAX_EVENTS]
    tracks_events = []
    chunks = 0
    while pos < len(data) and len(tracks_events) < ntracks:
        if pos + 8 > len(data):
            if tracks_events:
                break  # a few stray bytes after the last track
            raise _Fail("track header cut off")
        ctype = data[pos : pos + 4]
        clen = int.from_bytes(data[pos + 4 : pos + 8], "big")
        body = pos + 8
        chunks += 1
        if chunks > MAX_TRACKS * 4:
            raise _Fail("too many chunks")
        if ctype != b"MTrk":
            if not all(32 <= c < 127 for c in ctype):
                raise _Fail(f"garbage where track {len(tracks_events) + 1} should start (byte {pos})")
            pos = body + clen  # an unknown chunk type: skip it, as the standard asks
            continue
        if body + clen > len(data):
            raise _Fail(
                f"track {len(tracks_events) + 1} is cut off: its header promises {clen:,} bytes, "
                f"only {len(data) - body:,} follow"
            )
        events, _ = _parse_track(data, body, body + clen, len(tracks_events), tick_cap, budget)
        tracks_events.append(events)
        pos = body + clen
    if len(tracks_events) < ntracks:
        raise _Fail(f"the header promises {ntracks} track{'s' if ntracks != 1 else ''}, only {len(tracks_events)} found")
    return _build_song(tracks_events, scale, smpte, title, fmt)


def _build_song(tracks_events, scale, smpte: bool, title: str, fmt: int) -> Song:
    song = Song(title=title, ppq=PPQ, tracks=[], tempos=[], time_signatures=[], key_signatures=[])
    title_from_file = None
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
            elif kind == "tempo" and not smpte:
                song.tempos.append(TempoChange(tick, round(60_000_000 / a, 3)))
            elif kind == "ts":
                song.time_signatures.append(TimeSignature(tick, a, b))
            elif kind == "key":
                song.key_signatures.append(KeySignature(tick, a, bool(b)))
        for (ch, pitch), q in open_notes.items():  # notes never switched off end with the track
            for start, vel in q:
                notes_by_ch[ch].append(_note(start, pitch, last_tick - start, vel))
        chans = sorted(c for c, ns in notes_by_ch.items() if ns)
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
    if title_from_file:
        song.title = title_from_file
    song.normalize()
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
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    return bytes(reversed(out))


def _meta(mtype: int, body: bytes) -> bytes:
    return bytes((0xFF, mtype)) + _vlq(len(body)) + body


def _text(text: str) -> bytes:
    return text.encode("utf-8")[:0xFFFF]


def _chunk(events) -> bytes:
    """An MTrk chunk from (tick, priority, bytes) events; equal keys keep their order."""
    events.sort(key=lambda e: (e[0], e[1]))
    body = bytearray()
    now = 0
    for tick, _prio, raw in events:
        body += _vlq(tick - now)
        body += raw
        now = tick
    body += b"\x00\xff\x2f\x00"  # end of track
    return b"MTrk" + len(body).to_bytes(4, "big") + bytes(body)


def song_to_midi_bytes(song: Song) -> bytes:
    """The song as a type-1 standard MIDI file: a conductor track (title, meter, key, tempo),
    then one track per instrument with its name and program. Names are written as UTF-8."""
    conductor = [(0, 0, _meta(0x03, _text(song.title)))]
    for ts in song.time_signatures:
        den = ts.denominator if ts.denominator in (1, 2, 4, 8, 16, 32, 64) else 4
        num = max(1, min(255, ts.numerator))
        conductor.append((ts.tick, 1, _meta(0x58, bytes((num, den.bit_length() - 1, 24, 8)))))
    for k in song.key_signatures:
        conductor.append((k.tick, 2, _meta(0x59, bytes((max(-7, min(7, k.fifths)) & 0xFF, int(k.minor))))))
    for t in song.tempos:
        us = max(1, min(0xFFFFFF, t.us_per_quarter))
        conductor.append((t.tick, 3, _meta(0x51, us.to_bytes(3, "big"))))
    chunks = [_chunk(conductor)]
    for track, ch in zip(song.tracks, _assign_channels(song)):
        evs = [(0, 0, _meta(0x03, _text(track.name))), (0, 1, bytes((0xC0 | ch, max(0, min(127, track.program)))))]
        on, off = 0x90 | ch, 0x80 | ch
        for n in track.notes:
            p = max(0, min(127, n.pitch))
            # at one tick: note-offs first, then note-ons, so repeated notes do not cut each other
            evs.append((max(0, n.start), 3, bytes((on, p, max(1, min(127, n.velocity))))))
            evs.append((max(0, n.start) + max(1, n.duration), 2, bytes((off, p, 0))))
        chunks.append(_chunk(evs))
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + len(chunks).to_bytes(2, "big") + song.ppq.to_bytes(2, "big")
    return header + b"".join(chunks)


def song_to_midi_file(song: Song):
    """The song as a ``mido.MidiFile`` (for callers that want mido's objects)."""
    import mido

    return mido.MidiFile(file=io.BytesIO(song_to_midi_bytes(song)), charset="utf-8")


def write_midi(song: Song, path: str | os.PathLike) -> None:
    """Write a type-1 MIDI file atomically (nothing half-written on failure)."""
    atomic_write_bytes(path, song_to_midi_bytes(song))
