"""MusicXML <-> Song through music21.

Export never turns raw times into notation: every note is first snapped to our own grid
(32nd notes, or 16th-note triplets in a beat whose onsets sit on triplet positions; ends
follow the grid of the beat they fall in, shortening rather than inventing tuplets), then cut at bar lines
into tied pieces, notes with the same start and end become chords, and overlapping
material in a bar goes into separate voices, and lengths a single note head cannot show
are split into tied values.  The measures, beams, accidentals (spelled for the key) and
clefs are made here directly, which is many times faster than music21's makeNotation;
music21 then writes the file.

Import is :mod:`studio.io.musicxml_read` (a streaming reader that reads what music21 reads,
without music21); :func:`song_from_music21` turns a music21 stream into a Song (every Part
a Track, ties merged, chords split) for code that already holds one.
"""

from __future__ import annotations

import bisect
import functools
import os
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

from ..core.errors import FileFormatError
from ..core.song import PPQ, KeySignature, Note, Song, TempoChange, TimeSignature, Track
from ..core.timing import bars
from . import limits
from .atomic import atomic_write_bytes
from .ties import TieJoiner

MAX_BYTES = limits.MUSICXML_MAX_BYTES  # a .musicxml / .xml file, or the unpacked content of an .mxl
MAX_NOTES = limits.MAX_EVENTS
MAX_TICKS = limits.MAX_TICKS  # 6 hours at 1000 bpm; anything later is a broken file
BINARY, TRIPLET = PPQ // 8, PPQ // 6  # 32nd notes, 16th-note triplets
GRIDS = (BINARY, TRIPLET)
BEAT = PPQ  # the span over which one grid is chosen


# ---- export ----------------------------------------------------------------------------
def _snap(t: int, g: int, down_on_tie: bool = False) -> int:
    q, r = divmod(t, g)
    return (q + (r > g // 2 or (r == g // 2 and not down_on_tie))) * g


def beat_grids(notes) -> dict[int, int]:
    """The grid of every beat that holds an onset, chosen from the onsets alone.

    A beat takes the triplet grid only when its onsets sit closer to triplet positions than
    to the 32nd-note grid; onsets on neither (a tie) are settled by where the notes end,
    onsets on both (the beat and its half) stay binary.  Beats without onsets are binary.
    """
    err: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # onset errors, then end errors
    for start, end in notes:
        e = err[start // BEAT]
        for k, g in enumerate(GRIDS):
            s = _snap(start, g)
            q = max(_snap(end, g), s + g)
            e[k] += abs(s - start)
            e[2 + k] += abs(q - end)
    out = {}
    for beat, (b_on, t_on, b_end, t_end) in err.items():
        if t_on < b_on or (t_on == b_on and t_on > 0 and t_on + t_end < b_on + b_end):
            out[beat] = TRIPLET
    return out


def quantize_notes(notes) -> list[tuple[int, int]]:
    """Snap (start, end) pairs of one track: onsets to the grid of their beat (see
    :func:`beat_grids`), ends to the grid of the beat where they fall, rounding half-way
    ends down (a shorter note and a rest rather than a longer one). Never empty."""
    notes = list(notes)
    grids = beat_grids(notes)
    out = []
    for start, end in notes:
        g = grids.get(start // BEAT, BINARY)
        s = _snap(start, g)
        eg = grids.get(end // BEAT, BINARY) if end % BEAT else BINARY
        e = _snap(end, eg, down_on_tie=True)
        if e <= s:
            e = s + grids.get(s // BEAT, BINARY)
        out.append((s, e))
    return out


def quantize_note(start: int, end: int) -> tuple[int, int]:
    """Snap one note on its own: the rules of :func:`quantize_notes` for a lone note."""
    return quantize_notes([(start, end)])[0]


@functools.lru_cache(maxsize=4096)
def _ql(ticks: int):
    f = Fraction(ticks, PPQ)
    return float(f) if f.denominator in (1, 2, 4, 8, 16, 32) else f






def _spelling(midi: int, key: KeySignature) -> tuple[str, int, int]:
    """(step, alter, octave) of a MIDI pitch in a key: the scale's own letters, and notes outside
    the scale as tonal music spells them (B-flat, not A-sharp, in C major; C# in D minor); see
    :mod:`studio.core.spelling`."""
    from ..core.spelling import spell

    return spell(midi, key.tonic, key.minor)


def _pitch(midi: int, key: KeySignature):
    from music21 import pitch

    step, alter, octave = _spelling(midi, key)
    p = pitch.Pitch(step)
    p.octave = octave  # set apart: "B-1" would read as B-flat 1
    if alter:
        p.accidental = pitch.Accidental(alter)
    return p


def _voices(pieces, carried: dict[int, int]):
    """Split (start, end, [(pitch, tie, note id)]) chords of one bar into voices without overlaps.

    A chord continuing a tie from the previous bar goes back into the voice it came from
    (``carried``: note id -> voice), so readers can follow each tie within its voice.
    """
    voices: list[list] = []
    ends: list[int] = []

    def place(piece, i):
        while len(voices) <= i:
            voices.append([])
            ends.append(0)
        voices[i].append(piece)
        ends[i] = piece[1]

    rest = []
    for piece in sorted(pieces, key=lambda c: (c[0], -c[1])):
        wanted = {carried[q] for _p, t, q in piece[2] if t in ("stop", "continue") and q in carried}
        i = wanted.pop() if len(wanted) == 1 else None
        if i is not None and (i >= len(ends) or (not voices[i] and ends[i] <= piece[0])):
            place(piece, i)
        else:
            rest.append(piece)
    for piece in rest:
        i = next((i for i, e in enumerate(ends) if e <= piece[0]), len(ends))
        place(piece, i)
    return voices


# lengths (ticks at PPQ 480) that one note head can show: plain, dotted and triplet values
_BINARY = [3840 >> k for k in range(9)]  # breve .. 128th
_WRITABLE = sorted(set(_BINARY + [b * 3 // 2 for b in _BINARY if b >= 30] + [b * 2 // 3 for b in _BINARY]), reverse=True)


def split_length(ticks: int) -> list[int]:
    """Cut a length into note values that can be written (largest first)."""
    out = []
    for w in _WRITABLE:
        while ticks >= w:
            out.append(w)
            ticks -= w
    return out or [_WRITABLE[-1]]


# number of flags (beams) per writable length; 0 for quarter notes and longer
_FLAGS = {}
for _b, _n in ((240, 1), (120, 2), (60, 3), (30, 4), (15, 5)):
    _FLAGS[_b] = _n
    if _b * 3 % 2 == 0 and _b >= 30:
        _FLAGS[_b * 3 // 2] = _n
for _b, _n in ((240, 1), (120, 2), (60, 3), (30, 4), (15, 5)):
    _FLAGS[_b * 2 // 3] = _n  # triplets: an eighth triplet lasts 2/3 of an eighth
_TRIPLETS = {b * 2 // 3 for b in _BINARY}


def _beam(run) -> None:
    """Beam a run of (element, flags) that share one beat."""
    if len(run) < 2:
        return
    depth = max(f for _, f, _ in run)
    for level in range(1, depth + 1):
        i = 0
        while i < len(run):
            if run[i][1] < level:
                i += 1
                continue
            j = i
            while j + 1 < len(run) and run[j + 1][1] >= level:
                j += 1
            if j > i:
                for k in range(i, j + 1):
                    run[k][0].beams.append("start" if k == i else "stop" if k == j else "continue")
            elif level > 1:  # a lone shorter note: a stub pointing at its neighbour
                run[i][0].beams.append("partial", "right" if i == 0 else "left")
            i = j + 1


def _tie_for(t: str | None, i: int, k: int) -> str | None:
    tied_in = t in ("stop", "continue") or i > 0
    tied_out = t in ("start", "continue") or i < k - 1
    return "continue" if tied_in and tied_out else "start" if tied_out else "stop" if tied_in else None


def _fill(container, pieces, bar_start: int, bar_len: int, key: KeySignature, beat: int, marks: dict,
          full: bool = True, fermatas=frozenset()) -> bool:
    """Put chords (and rests between them) into a Measure or Voice, beamed by ``beat``.

    ``marks`` maps (start, pitch) to (show an accidental?, velocity); a note or chord starting
    at a tick of ``fermatas`` carries a fermata.
    Returns whether any triplet values were used (they need tuplet brackets).
    """
    from music21 import chord, expressions, note, tie
    from music21 import pitch as m21pitch

    at = bar_start  # where the next note or rest goes
    run: list = []  # notes beamed together so far
    triplets = False

    def put(el, length):
        nonlocal at, run, triplets
        rel = at - bar_start
        container.coreInsert(_ql(rel), el)
        triplets = triplets or length in _TRIPLETS
        flags = 0 if el.isRest else _FLAGS.get(length, 0)
        same_beat = run and (rel // beat) == run[-1][2] and (rel + length - 1) // beat == rel // beat
        if not flags or not same_beat:
            _beam(run)
            run = []
        if flags and (rel + length - 1) // beat == rel // beat:
            run.append((el, flags, rel // beat))
        at += length

    def rests(length):
        for w in split_length(length):
            r = note.Rest(quarterLength=_ql(w))
            r.fullMeasure = full and length == bar_len  # saves music21 a slow look-up per rest
            put(r, w)

    for start, end, members in pieces:
        if start > at:
            rests(start - at)
        lengths = split_length(end - start)
        for i, w in enumerate(lengths):
            notes = []
            velocity = 0
            for p, t, _qi in sorted(members):
                n = note.Note(_pitch(p, key), quarterLength=_ql(w))
                show, vel = marks.get((start, p), (False, 0))
                velocity = max(velocity, vel)
                show = show and i == 0 and t not in ("stop", "continue")
                if show and n.pitch.accidental is None:
                    n.pitch.accidental = m21pitch.Accidental("natural")
                if n.pitch.accidental is not None:
                    n.pitch.accidental.displayStatus = show
                tt = _tie_for(t, i, len(lengths))
                if tt:
                    n.tie = tie.Tie(tt)
                notes.append(n)
            el = notes[0] if len(notes) == 1 else chord.Chord(notes, quarterLength=_ql(w))
            if velocity:
                el.volume.velocity = velocity
            if i == 0 and start in fermatas and any(t not in ("stop", "continue") for _p, t, _q in members):
                fermata = expressions.Fermata()
                fermata.type = "upright"  # over the staff, as chorales print it (music21's default is under)
                el.expressions.append(fermata)
            put(el, w)
    if at < bar_start + bar_len:
        rests(bar_start + bar_len - at)
    _beam(run)
    container.coreElementsChanged()
    return triplets


def song_to_music21(song: Song):
    """A ``music21.stream.Score`` of the song: one Part per track, named after it,
    with meter, key and tempo, quantized from our ticks."""
    from music21 import clef, instrument, key, meter, metadata, stream, tempo

    score = stream.Score()
    score.metadata = metadata.Metadata()
    score.metadata.title = song.title
    score.metadata.movementName = song.title
    if song.composer:
        score.metadata.composer = song.composer
    qnotes_by_track = []
    fermatas_by_track = []  # the quantized onsets of the notes carrying a fermata
    end = 0
    for track in song.tracks:
        qn = []
        held = set()
        for n, (s, e) in zip(track.notes, quantize_notes((n.start, n.end) for n in track.notes)):
            qn.append((s, e, n.pitch, n.velocity, len(qn)))
            end = max(end, e)
            if song.has_fermata(n.start):
                held.add(s)
        qnotes_by_track.append(qn)
        fermatas_by_track.append(held)
    bar_list = bars(song, until=max(end, 1))
    sigs = {s.tick: s for s in song.time_signatures}
    keys = {k.tick: k for k in song.key_signatures}
    tracks = song.tracks or [Track(name="Music")]
    if not song.tracks:
        qnotes_by_track, fermatas_by_track = [[]], [set()]

    shorts = short_names([t.name for t in tracks])
    for ti, (track, qnotes, held) in enumerate(zip(tracks, qnotes_by_track, fermatas_by_track)):
        part = stream.Part(id=f"P{ti + 1}")
        part.partName = track.name
        try:
            inst = instrument.instrumentFromMidiProgram(track.program)
        except Exception:  # music21 knows most GM programs; keep a plain one for the rest
            inst = instrument.Instrument()
            inst.midiProgram = track.program
        short = shorts[ti]
        inst.partName = inst.instrumentName = track.name
        inst.partAbbreviation = inst.instrumentAbbreviation = short
        part.partAbbreviation = short
        inst.midiChannel = 9 if track.is_drum else track.channel
        part.insert(0, inst)

        # cut notes at bar lines: bar index -> list of (start, end, pitch, tie, velocity)
        by_bar: dict[int, list] = defaultdict(list)
        bar_starts = [b.start for b in bar_list]
        for s, e, p, v, qi in qnotes:
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
                by_bar[i].append((pos, stop, p, t, v, qi))
                pos = stop
                i += 1
        current_key = song.key_at(0)
        carried: dict[int, int] = {}  # note id -> voice, for ties running into the next bar
        pickup = bool(song.pickup) and bar_list[0].length < bar_list[0].meter.bar_ticks(song.ppq)
        for b in bar_list:
            m = stream.Measure(number=b.index + (0 if pickup else 1))
            if pickup and b.index == 0:  # an anacrusis: bar 0, not counted
                m.showNumber = stream.enums.ShowNumber.NEVER
            if b.index == 0:
                m.clef = _clef_for(track, clef)
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
            # chords: same start and end; a doubled note (same pitch twice) gets its own chord,
            # which lands in another voice
            # (tied-over notes only join chords from the voice they come from)
            groups: dict[tuple, list] = defaultdict(list)
            for pos, stop, p, t, _v, qi in by_bar.get(b.index, ()):
                came_from = carried.get(qi) if t in ("stop", "continue") else None
                layer = 0
                while any(q == p for q, _t, _i in groups[(pos, stop, came_from, layer)]):
                    layer += 1
                groups[(pos, stop, came_from, layer)].append((p, t, qi))
            pieces = [(s, e, mem) for (s, e, _from, _layer), mem in groups.items()]
            voices = _voices(pieces, carried)
            carried = {q: vi for vi, vp in enumerate(voices) for _s, _e, mem in vp for _p, t, q in mem
                       if t in ("start", "continue")}
            beat = 720 if b.meter.denominator == 8 and b.meter.numerator % 3 == 0 and b.meter.numerator > 3 else 480
            marks = _bar_marks(by_bar.get(b.index, ()), current_key)
            full = b.length == b.meter.bar_ticks(song.ppq)  # a pickup's rest is not a whole-bar rest
            if len(voices) <= 1:
                if _fill(m, voices[0] if voices else [], b.start, b.length, current_key, beat, marks, full, held):
                    _brackets(m)
            else:
                for vi, vp in enumerate(voices):
                    v = stream.Voice(id=str(vi + 1))
                    if _fill(v, vp, b.start, b.length, current_key, beat, marks, full, held):
                        _brackets(v)
                    m.insert(0, v)
            part.append(m)
        score.insert(0, part)
    return score


def _bar_marks(pieces, key: KeySignature) -> dict:
    """(start, pitch) -> (show an accidental?, velocity) for the notes of one bar.

    An accidental shows where a pitch differs from the key signature or from the same
    staff position earlier in the bar; tied-over notes never show one.
    """
    fifths = key.fifths
    order = "FCGDAEB" if fifths >= 0 else "BEADGCF"
    key_alter = {step: (1 if fifths > 0 else -1) for step in order[: abs(fifths)]}
    state: dict[tuple[str, int], int] = {}
    marks = {}
    for pos, _stop, p, t, v, _qi in sorted(pieces, key=lambda x: (x[0], x[1], x[2], x[3] or "", x[4], x[5])):
        step, alter, octave = _spelling(p, key)
        show = False
        if t not in ("stop", "continue"):
            expected = state.get((step, octave), key_alter.get(step, 0))
            if alter != expected:
                show = True
                state[(step, octave)] = alter
        old = marks.get((pos, p))
        marks[(pos, p)] = (show or (old is not None and old[0]), max(v, old[1] if old else 0))
    return marks


# the abbreviations orchestral scores print, longest name first where one name begins another
_ABBREVIATIONS = (
    ("violoncello", "Vc."), ("cello", "Vc."), ("violin", "Vln."), ("viola", "Vla."), ("contrabass", "Cb."),
    ("double bass", "Cb."), ("piccolo", "Picc."), ("flute", "Fl."), ("oboe", "Ob."), ("english horn", "E.H."),
    ("cor anglais", "E.H."), ("bass clarinet", "B. Cl."), ("clarinet", "Cl."), ("contrabassoon", "Cbsn."),
    ("bassoon", "Bsn."), ("french horn", "Hn."), ("horn", "Hn."), ("trumpet", "Tpt."), ("trombone", "Tbn."),
    ("tuba", "Tba."), ("timpani", "Timp."), ("percussion", "Perc."), ("drum", "Dr."), ("harpsichord", "Hpsd."),
    ("harp", "Hp."), ("piano", "Pno."), ("organ", "Org."), ("guitar", "Gtr."), ("recorder", "Rec."),
    ("saxophone", "Sax."), ("soprano", "S."), ("alto", "A."), ("tenor", "T."), ("baritone", "Bar."),
    ("bass", "B."), ("voice", "Vo."),
)


def abbreviation(name: str) -> str:
    """The short name a score prints before later systems: ``Violin 1`` -> ``Vln. 1``,
    ``Viola`` -> ``Vla.``, ``Violoncello`` -> ``Vc.``; a number or Roman numeral after the
    instrument stays.  A short name of no known instrument is kept; a long one is cut."""
    words = name.split()
    low = name.lower()
    for full, short in _ABBREVIATIONS:
        if low.startswith(full) and (len(low) == len(full) or not low[len(full)].isalpha()):
            rest = name[len(full):].strip()
            return f"{short} {rest}".strip()
    if len(name) <= 7 or not words:
        return name
    tail = words[-1] if len(words) > 1 and (words[-1].isdigit() or set(words[-1]) <= set("IVX")) else ""
    return f"{words[0][:3].rstrip()}. {tail}".strip()


def short_names(names: list[str]) -> list[str]:
    """:func:`abbreviation` of each name, with the full name where two different names would
    share one abbreviation (two staves must not read alike)."""
    shorts = [abbreviation(n) for n in names]
    return [n if any(o != n and so == s for o, so in zip(names, shorts)) else s for n, s in zip(names, shorts)]


def _clef_for(track: Track, clef):
    """Percussion clef for drums, bass clef for low parts, treble otherwise."""
    if track.is_drum:
        return clef.PercussionClef()
    pitches = sorted(n.pitch for n in track.notes)
    median = pitches[len(pitches) // 2] if pitches else 72
    if median < 57 and not (median >= 50 and "tenor" in track.name.lower()):
        return clef.BassClef()
    if median < 67 and "tenor" in track.name.lower():
        return clef.Treble8vbClef()  # how tenor voices are written
    return clef.TrebleClef()


def _brackets(container) -> None:
    """Tuplet brackets for one measure or voice (display only)."""
    from music21.stream import makeNotation

    try:
        makeNotation.makeTupletBrackets(container, inPlace=True)
    except Exception:  # an odd tuplet mixture: the numbers still read correctly
        pass


def song_to_musicxml_bytes(song: Song) -> bytes:
    """The song as MusicXML.  music21 writes it; what it would print on the way (it runs out
    of its 16 MIDI channels past 16 parts, which MusicXML does not need) is kept off stderr,
    and it writes no composer the song does not have."""
    import contextlib
    import io
    import warnings

    from music21 import defaults
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    author = defaults.author
    try:
        defaults.author = ""  # else every score says it was composed by "Music21"
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exporter = GeneralObjectExporter(song_to_music21(song))
            exporter.makeNotation = False  # our measures are already well formed
            return exporter.parse()
    finally:
        defaults.author = author


def write_musicxml(song: Song, path: str | os.PathLike) -> None:
    """Write uncompressed MusicXML atomically (refused when the reader would refuse its size)."""
    label = os.path.basename(str(path))
    limits.check_song(song, label)
    data = song_to_musicxml_bytes(song)
    limits.check_size(data, MAX_BYTES, label, "MusicXML files")
    atomic_write_bytes(path, data)


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

    # a pickup bar: place it at the end of a full first bar so bar lines stay where they belong
    shift = 0
    if hasattr(parts[0], "getElementsByClass"):
        first = parts[0].getElementsByClass(stream.Measure).first()
        if first is not None and first.paddingLeft and first.paddingLeft > 0:
            shift = _tick(first.paddingLeft)

    def at(offset) -> int:  # map positions: whatever sits at the very start stays there
        t = _tick(offset)
        return t + shift if t > 0 else 0

    total = 0
    for pi, part in enumerate(parts):
        flat = part.flatten()
        inst = part.getInstrument(returnDefault=False) if hasattr(part, "getInstrument") else None
        name = getattr(part, "partName", None) or (inst.partName if inst is not None else None) or f"Part {pi + 1}"
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
        channel = inst.midiChannel if inst is not None and inst.midiChannel is not None else min(pi, 15)
        is_drum = channel == 9 or isinstance(inst, instrument.UnpitchedPercussion)
        notes = _part_notes(part, flat, shift)
        total += len(notes)
        if total > MAX_NOTES:
            raise FileFormatError(f"more than {MAX_NOTES:,} notes (limit)")
        if notes and max(n.end for n in notes) > MAX_TICKS:
            raise FileFormatError(f"part {pi + 1} runs past {MAX_TICKS // PPQ:,} quarter notes (limit)")
        song.tracks.append(Track(name=str(name), program=max(0, min(127, program)), channel=max(0, min(15, channel)),
                                 is_drum=is_drum, notes=notes))
        for el in flat.getElementsByClass(meter.TimeSignature):
            song.time_signatures.append(TimeSignature(at(el.offset), el.numerator, el.denominator))
        for el in flat.getElementsByClass(key.KeySignature):
            minor = getattr(el, "mode", "major") == "minor"
            song.key_signatures.append(KeySignature(at(el.offset), max(-7, min(7, el.sharps)), minor))
        for el in flat.getElementsByClass(tempo.MetronomeMark):
            bpm = el.getQuarterBPM()
            if bpm and 1 <= bpm <= 1000:
                song.tempos.append(TempoChange(at(el.offset), round(float(bpm), 3)))
    if isinstance(obj, stream.Score):  # marks that sit on the score itself
        for el in obj.getElementsByClass(tempo.MetronomeMark):
            bpm = el.getQuarterBPM()
            if bpm and 1 <= bpm <= 1000:
                song.tempos.append(TempoChange(at(el.offset), round(float(bpm), 3)))
    song.normalize()
    for lst, default in ((song.tempos, TempoChange(0, 120.0)), (song.time_signatures, TimeSignature(0, 4, 4))):
        if lst[0].tick != 0:
            lst.insert(0, default)
    if song.key_signatures[0].tick != 0:
        k = song.key_signatures[0]
        song.key_signatures.insert(0, KeySignature(0, k.fifths, k.minor))
    return song


def _voiced_notes(part, flat):
    """(offset, voice, element) for every note and chord of a part, in time order.

    Measures are walked voice by voice so a tie can be followed within its own voice;
    a part without measures falls back to its flattened notes.
    """
    from music21 import stream

    measures = list(part.getElementsByClass(stream.Measure)) if isinstance(part, stream.Stream) else []
    if not measures:
        return [(el.offset, "1", el) for el in flat.notes]
    out = []
    for m in measures:
        here = [(m.offset + el.offset, "1", el) for el in m.notes]
        for v in m.voices:
            vid = str(v.id) if v.id is not None else "1"
            here.extend((m.offset + v.offset + el.offset, vid, el) for el in v.notes)
        here.sort(key=lambda x: x[0])
        out.extend(here)
    return out


def _part_notes(part, flat, shift: int = 0) -> list[Note]:
    """Notes of a part: chords split, tied pieces joined into one note."""
    joiner = TieJoiner()
    for offset, vid, el in _voiced_notes(part, flat):
        ql = el.duration.quarterLength
        if el.duration.isGrace or ql <= 0:
            continue
        start, dur = _tick(offset) + shift, max(1, _tick(ql))
        vel = el.volume.velocity if el.volume is not None and el.volume.velocity else 80
        vel = max(1, min(127, int(vel)))
        if el.isChord:
            members = [(n.pitch, n.tie) for n in el.notes]
        elif hasattr(el, "pitch"):
            members = [(el.pitch, el.tie)]
        else:  # unpitched percussion, alone or as a chord of several: their display positions
            members = []
            for n in (list(getattr(el, "notes", ())) or [el]):
                try:
                    members.append((n.pitch if hasattr(n, "pitch") else n.displayPitch(), n.tie))
                except Exception:
                    pass
        for p, tie in members:
            midi = int(round(p.ps))
            if not 0 <= midi <= 127 or start < 0:
                continue
            joiner.add(start, midi, dur, vel, tie.type if tie is not None else None, vid)
    return joiner.notes()


def read_musicxml(path: str | os.PathLike, progress=None) -> Song:
    """Read .musicxml, .xml or .mxl (a compressed file is recognised by its content) with the
    streaming reader (:mod:`studio.io.musicxml_read`): linear in bars, caps checked as the
    file is read, no music21."""
    from .musicxml_read import read_musicxml_file

    return read_musicxml_file(path, progress)
