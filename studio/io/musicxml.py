"""MusicXML <-> Song through music21.

Export never turns raw times into notation: every note is first snapped to our own grid
(32nd notes or 16th-note triplets, whichever fits the note better), then cut at bar lines
into tied pieces, notes with the same start and end become chords, and overlapping
material in a bar goes into separate voices.  The measures are built directly (far
faster than letting music21 guess them), then music21 adds beams and accidentals.

Import takes every Part as a Track: ties are merged into single notes, chords become
several notes, offsets in quarter notes become ticks at ``PPQ``; metronome marks, time
and key signatures become the song's maps.
"""

from __future__ import annotations

import bisect
import os
import zipfile
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

from ..core.errors import FileFormatError
from ..core.song import PPQ, KeySignature, Note, Song, TempoChange, TimeSignature, Track
from ..core.timing import bars
from .atomic import atomic_write_bytes

MAX_BYTES = 50 * 1024 * 1024  # a .musicxml / .xml file, or the unpacked content of an .mxl
MAX_NOTES = 500_000
GRIDS = (PPQ // 8, PPQ // 6)  # 32nd notes, 16th-note triplets


# ---- export ----------------------------------------------------------------------------
def quantize_note(start: int, end: int) -> tuple[int, int]:
    """Snap a note to the grid (32nds or 16th triplets) that moves it least; never empty."""
    best = None
    for g in GRIDS:
        s = (start + g // 2) // g * g
        e = (end + g // 2) // g * g
        if e <= s:
            e = s + g
        err = abs(s - start) + abs(e - end)
        if best is None or err < best[0]:
            best = (err, s, e)
    return best[1], best[2]


def _ql(ticks: int, ppq: int = PPQ):
    f = Fraction(ticks, ppq)
    return float(f) if f.denominator in (1, 2, 4, 8, 16, 32) else f


def _pitch(midi: int, flats: bool):
    from music21 import pitch

    p = pitch.Pitch(midi=midi)
    if flats and p.accidental is not None and p.accidental.alter > 0:
        p = p.getEnharmonic()
    return p


def _voices(pieces):
    """Split (start, end, [(pitch, tie)]) chords of one bar into voices without overlaps."""
    voices: list[list] = []
    ends: list[int] = []
    for piece in sorted(pieces, key=lambda c: (c[0], -c[1])):
        for i, e in enumerate(ends):
            if e <= piece[0]:
                voices[i].append(piece)
                ends[i] = piece[1]
                break
        else:
            voices.append([piece])
            ends.append(piece[1])
    return voices


def _fill(container, pieces, bar_start: int, bar_len: int, flats: bool) -> None:
    """Put chords (and rests between them) into a Measure or Voice."""
    from music21 import chord, note, tie

    pos = bar_start
    for start, end, members in pieces:
        if start > pos:
            container.append(note.Rest(quarterLength=_ql(start - pos)))
        if len(members) == 1:
            p, t = members[0]
            el = note.Note(_pitch(p, flats), quarterLength=_ql(end - start))
            if t:
                el.tie = tie.Tie(t)
        else:
            notes = []
            for p, t in sorted(members):
                n = note.Note(_pitch(p, flats))
                if t:
                    n.tie = tie.Tie(t)
                notes.append(n)
            el = chord.Chord(notes, quarterLength=_ql(end - start))
        container.append(el)
        pos = end
    if pos < bar_start + bar_len:
        container.append(note.Rest(quarterLength=_ql(bar_start + bar_len - pos)))


def song_to_music21(song: Song):
    """A ``music21.stream.Score`` of the song: one Part per track, named after it,
    with meter, key and tempo, quantized from our ticks."""
    from music21 import instrument, key, meter, metadata, stream, tempo

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = song.title
    score.metadata.movementName = song.title
    qnotes_by_track = []
    end = 0
    for track in song.tracks:
        qn = []
        for n in track.notes:
            s, e = quantize_note(n.start, n.end)
            qn.append((s, e, n.pitch, n.velocity))
            end = max(end, e)
        qnotes_by_track.append(qn)
    bar_list = bars(song, until=max(end, 1))
    sigs = {s.tick: s for s in song.time_signatures}
    keys = {k.tick: k for k in song.key_signatures}
    tracks = song.tracks or [Track(name="Music")]
    if not song.tracks:
        qnotes_by_track = [[]]

    for ti, (track, qnotes) in enumerate(zip(tracks, qnotes_by_track)):
        part = stream.Part(id=f"P{ti + 1}")
        part.partName = track.name
        try:
            inst = instrument.instrumentFromMidiProgram(track.program)
        except Exception:  # music21 knows most GM programs; keep a plain one for the rest
            inst = instrument.Instrument()
            inst.midiProgram = track.program
        inst.partName = track.name
        inst.instrumentName = track.name
        inst.midiChannel = 9 if track.is_drum else track.channel
        part.insert(0, inst)

        # cut notes at bar lines: bar index -> list of (start, end, pitch, tie, velocity)
        by_bar: dict[int, list] = defaultdict(list)
        bar_starts = [b.start for b in bar_list]
        for s, e, p, v in qnotes:
            i = bisect.bisect_right(bar_starts, s) - 1
            pos = s
            while pos < e and i < len(bar_list):
                b = bar_list[i]
                stop = min(e, b.end)
                t = None
                if pos > s and stop < e:
                    t = "continue"
                elif pos > s:
                    t = "stop"
                elif stop < e:
                    t = "start"
                by_bar[i].append((pos, stop, p, t, v))
                pos = stop
                i += 1
        current_key = song.key_at(0)
        for b in bar_list:
            m = stream.Measure(number=b.index + 1)
            if b.index == 0 or b.start in sigs:
                sig = song.time_signature_at(b.start)
                m.timeSignature = meter.TimeSignature(f"{sig.numerator}/{sig.denominator}")
            for ktick in [k for k in keys if b.start <= k < b.end or (b.index == 0 and k == 0)]:
                current_key = keys[ktick]
                ks = key.Key(current_key.tonic.replace("b", "-"), "minor" if current_key.minor else "major")
                m.insert(_ql(max(0, ktick - b.start)), ks)
            if ti == 0:
                for t in song.tempos:
                    if b.start <= t.tick < b.end:
                        mm = tempo.MetronomeMark(number=round(t.bpm, 2), referent=1.0)
                        m.insert(_ql(t.tick - b.start), mm)
            # chords: same start and end
            groups: dict[tuple[int, int], list] = defaultdict(list)
            for pos, stop, p, t, _v in by_bar.get(b.index, ()):
                if all(q != p for q, _ in groups[(pos, stop)]):
                    groups[(pos, stop)].append((p, t))
            pieces = [(s, e, mem) for (s, e), mem in groups.items()]
            flats = current_key.fifths < 0
            voices = _voices(pieces)
            if len(voices) <= 1:
                _fill(m, voices[0] if voices else [], b.start, b.length, flats)
            else:
                for vi, vp in enumerate(voices):
                    v = stream.Voice(id=str(vi + 1))
                    _fill(v, vp, b.start, b.length, flats)
                    m.insert(0, v)
            _set_velocities(m, by_bar.get(b.index, ()), b.start)
            part.append(m)
        try:
            part.makeBeams(inPlace=True)
        except Exception:  # beaming is cosmetic; odd tuplets can upset it
            pass
        score.insert(0, part)
    return score


def _set_velocities(measure, pieces, bar_start: int) -> None:
    """Give each note in the measure the velocity of the note it came from."""
    vel = {(pos - bar_start, p): v for pos, _stop, p, _t, v in pieces}
    for el in measure.recurse().notes:
        off = round(float(el.getOffsetInHierarchy(measure)) * PPQ)
        ps = [n.pitch.midi for n in el.notes] if el.isChord else [el.pitch.midi]
        vs = [vel.get((off, p)) for p in ps]
        vs = [v for v in vs if v]
        if vs:
            el.volume.velocity = max(vs)


def song_to_musicxml_bytes(song: Song) -> bytes:
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    score = song_to_music21(song)
    for part in score.parts:
        try:
            part.makeAccidentals(inPlace=True)
        except Exception:  # accidentals are display only
            pass
    return GeneralObjectExporter(score).parse()


def write_musicxml(song: Song, path: str | os.PathLike) -> None:
    """Write uncompressed MusicXML atomically."""
    atomic_write_bytes(path, song_to_musicxml_bytes(song))


# ---- import ----------------------------------------------------------------------------
def _tick(offset) -> int:
    return int(round(Fraction(offset) * PPQ))


def song_from_music21(obj, title: str | None = None) -> Song:
    """A Song from a music21 Score, Part or plain Stream."""
    from music21 import instrument, key, meter, stream, tempo

    if isinstance(obj, stream.Score):
        parts = list(obj.parts) or [obj]
    elif isinstance(obj, stream.Opus):
        scores = list(obj.scores)
        return song_from_music21(scores[0], title) if scores else Song(title=title or "Untitled", tracks=[])
    else:
        parts = [obj]
    meta_title = None
    md = getattr(obj, "metadata", None)
    if md is not None:
        meta_title = md.title or md.movementName
    song = Song(title=meta_title or title or "Untitled", tracks=[], tempos=[], time_signatures=[], key_signatures=[])

    total = 0
    for pi, part in enumerate(parts):
        flat = part.stripTies(inPlace=False).flatten()
        inst = part.getInstrument(returnDefault=False) if hasattr(part, "getInstrument") else None
        name = getattr(part, "partName", None) or (inst.partName if inst is not None else None) or f"Part {pi + 1}"
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
        channel = inst.midiChannel if inst is not None and inst.midiChannel is not None else min(pi, 15)
        is_drum = channel == 9 or isinstance(inst, instrument.UnpitchedPercussion)
        notes = []
        for el in flat.notes:
            ql = el.duration.quarterLength
            if el.duration.isGrace or ql <= 0:
                continue
            pitches = [p for p in getattr(el, "pitches", ()) if p is not None]
            if not pitches and hasattr(el, "displayPitch"):  # unpitched percussion
                try:
                    pitches = [el.displayPitch()]
                except Exception:
                    pitches = []
            start = _tick(el.offset)
            dur = max(1, _tick(ql))
            vel = el.volume.velocity if el.volume is not None and el.volume.velocity else 80
            for p in pitches:
                midi = int(round(p.ps))
                if 0 <= midi <= 127 and start >= 0:
                    notes.append(Note(start, midi, dur, max(1, min(127, int(vel)))))
        total += len(notes)
        if total > MAX_NOTES:
            raise FileFormatError(f"more than {MAX_NOTES:,} notes (limit)")
        song.tracks.append(Track(name=str(name), program=max(0, min(127, program)), channel=max(0, min(15, channel)),
                                 is_drum=is_drum, notes=sorted(set(notes))))
        for el in flat.getElementsByClass(meter.TimeSignature):
            song.time_signatures.append(TimeSignature(_tick(el.offset), el.numerator, el.denominator))
        for el in flat.getElementsByClass(key.KeySignature):
            minor = getattr(el, "mode", "major") == "minor"
            song.key_signatures.append(KeySignature(_tick(el.offset), max(-7, min(7, el.sharps)), minor))
        for el in flat.getElementsByClass(tempo.MetronomeMark):
            bpm = el.getQuarterBPM()
            if bpm and 1 <= bpm <= 1000:
                song.tempos.append(TempoChange(_tick(el.offset), round(float(bpm), 3)))
    if isinstance(obj, stream.Score):  # marks that sit on the score itself
        for el in obj.getElementsByClass(tempo.MetronomeMark):
            bpm = el.getQuarterBPM()
            if bpm and 1 <= bpm <= 1000:
                song.tempos.append(TempoChange(_tick(el.offset), round(float(bpm), 3)))
    song.normalize()
    for lst, default in ((song.tempos, TempoChange(0, 120.0)), (song.time_signatures, TimeSignature(0, 4, 4))):
        if lst[0].tick != 0:
            lst.insert(0, default)
    if song.key_signatures[0].tick != 0:
        k = song.key_signatures[0]
        song.key_signatures.insert(0, KeySignature(0, k.fifths, k.minor))
    return song


def _check_size(path: str, label: str) -> None:
    size = os.path.getsize(path)
    if size > MAX_BYTES:
        raise FileFormatError(f"{label}: {size / 1e6:.0f} MB is larger than the {MAX_BYTES // 2**20} MB limit")
    if Path(path).suffix.lower() == ".mxl":
        try:
            with zipfile.ZipFile(path) as zf:
                unpacked = sum(i.file_size for i in zf.infolist())
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FileFormatError(f"{label}: not a compressed MusicXML file ({exc})") from None
        if unpacked > MAX_BYTES:
            raise FileFormatError(f"{label}: unpacks to {unpacked / 1e6:.0f} MB, more than the {MAX_BYTES // 2**20} MB limit")


def read_musicxml(path: str | os.PathLike) -> Song:
    """Read .musicxml, .xml or .mxl."""
    path = str(path)
    label = os.path.basename(path)
    try:
        _check_size(path, label)
        with open(path, "rb") as fh:
            head = fh.read(1)
        if not head:
            raise FileFormatError(f"{label}: empty file")
    except FileNotFoundError:
        raise FileFormatError(f"{label}: no such file") from None
    except OSError as exc:
        raise FileFormatError(f"{label}: cannot read ({exc.strerror or exc})") from None
    try:
        from music21 import converter

        fmt = "musicxml"
        score = converter.parse(path, format=fmt, forceSource=True)
        return song_from_music21(score, title=Path(path).stem)
    except FileFormatError as exc:
        raise FileFormatError(f"{label}: {exc}") from None
    except Exception as exc:  # music21 raises many kinds of errors for broken files
        msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"{label}: not readable MusicXML ({msg})") from None
