"""Reading MusicXML into a Song: a streaming reader on the standard library's ElementTree.

One pass over the file, measure by measure (``iterparse``; each measure is dropped once
read), so time and memory grow linearly with the number of bars, and every cap is checked
as soon as what it limits is seen: the number of parts when the part list ends, a time
signature's beats when it is read, notes and length as they come.  A compressed ``.mxl`` is
read as a stream with a running count of unpacked bytes, so a zip whose header lies about
its size is refused at the cap, never unpacked whole.

It reads what music21's MusicXML importer reads, the same way (the tests hold the two to
the same notes, note for note, on music21's corpus): note durations from ``<duration>``
over ``<divisions>``, ``<backup>``/``<forward>``, chords (the first note's length), grace
notes skipped, ties merged within their voice first, a part with several staves split into
one track per staff, measure lengths from their contents (a short first measure is a
pickup), velocities from a note's ``dynamics`` attribute.
"""

from __future__ import annotations

import bisect
import os
import re
import zipfile
from collections import defaultdict
from fractions import Fraction
from pathlib import Path
from xml.etree import ElementTree as ET

from ..core.errors import FileFormatError
from ..core.song import PPQ, KeySignature, Note, Song, TempoChange, TimeSignature, Track
from . import limits
from .ties import TieJoiner

MAX_BYTES = limits.MUSICXML_MAX_BYTES  # a .musicxml / .xml file, or the unpacked score inside an .mxl
MAX_NOTES = limits.MAX_EVENTS  # a 50 MB score holds far fewer
MAX_TRACKS = limits.MAX_TRACKS  # the same cap as MIDI files and projects
MAX_BEATS = limits.MAX_BEATS  # time-signature numerator (the project file's limit too)
MAX_TICKS = limits.MAX_TICKS  # 6 hours at 1000 bpm
MAX_SECONDS = limits.MAX_SECONDS  # 6 hours through the tempo marks read so far: checked measure by measure
_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_UNIT = {"whole": Fraction(4), "half": Fraction(2), "quarter": Fraction(1), "eighth": Fraction(1, 2),
         "16th": Fraction(1, 4), "32nd": Fraction(1, 8), "breve": Fraction(8), "long": Fraction(16)}


class _Bad(Exception):
    pass


def _text(el, default=None):
    if el is None or el.text is None:
        return default
    return el.text.strip()


def _num(text, what: str) -> Fraction:
    try:
        v = Fraction(text.strip())
    except (ValueError, ZeroDivisionError, AttributeError):
        raise _Bad(f"{what}: {str(text)[:20]!r} is not a number") from None
    if abs(v) > 10**9:
        raise _Bad(f"{what}: {str(text)[:20]} is out of range")
    return v


def _tick(q: Fraction) -> int:
    return int(round(q * PPQ))


def _round_div(n: int, d: int) -> int:
    """n / d rounded to the nearest whole number, halves to even (as ``round`` does)."""
    q, r = divmod(n, d)
    if 2 * r > d or (2 * r == d and q & 1):
        q += 1
    return q


def _whole(v: Fraction):
    """An int when the value is whole (the fast path), else the Fraction itself."""
    return v.numerator if v.denominator == 1 else v


def _units(text, what: str):
    """A <duration> in divisions: an int for plain digits (nearly always), else exact."""
    if not text:
        return 0
    if text.isdigit():
        if len(text) > 10:
            raise _Bad(f"{what}: {text[:20]} is out of range")
        return int(text)
    v = _num(text, what)
    if v < 0:
        raise _Bad(f"{what}: a negative duration")
    return _whole(v)


class _Counting:
    """A file-like reader that refuses to hand out more than ``limit`` bytes."""

    def __init__(self, fh, limit: int, what: str, total: int = 0, progress=None):
        self.fh, self.limit, self.what = fh, limit, what
        self.total, self.progress = total, progress
        self.done = 0

    def read(self, n: int = -1) -> bytes:
        n = 1 << 16 if n is None or n < 0 else min(n, 1 << 16)
        data = self.fh.read(n)
        self.done += len(data)
        if self.done > self.limit:
            raise _Bad(f"{self.what} more than the {self.limit // 2**20} MB limit")
        if self.progress is not None and self.total:
            self.progress(min(1.0, self.done / self.total))
        return data


class _Part:
    """What one part has read so far."""

    def __init__(self, pid: str, info: dict):
        self.id = pid
        self.info = info
        self.divisions = Fraction(1)
        self.offset = Fraction(0)  # quarter notes from the start to the current measure
        self.bar = Fraction(4)  # quarter notes in a bar of the current time signature
        self.staves = 1
        self.first = True
        # staff (0: none given) -> [(offset, voice index key, order, kind, members, length, velocity)]
        self.notes: dict[int, list] = defaultdict(list)
        self.pickup = Fraction(0)
        self.seq = 0  # measures read
        self.fermatas: list[tuple[int, int]] = []  # (tick, staff) of the notes marked with a fermata


class Reader:
    def __init__(self, label: str):
        self.label = label
        self.parts_info: dict[str, dict] = {}
        self.order: list[str] = []
        self.parts: dict[str, _Part] = {}
        self.title = self.movement = self.composer = ""
        self.finale = False
        self.tempos: list[tuple[Fraction, float]] = []
        self.sigs: list[tuple[Fraction, int, int]] = []
        self.keys: list[tuple[Fraction, int, bool]] = []
        self.notes = 0
        self.seen_software = False
        self.reach = 0  # ticks: the furthest note end or tempo, meter or key change read so far
        self.fastest = 0.0  # bpm: the fastest tempo mark read so far
        self.marked_at_start = False  # whether a mark at the start replaces the 120 bpm before any mark

    # ---- header ----
    def part_list(self, el) -> None:
        for sp in el.iter("score-part"):
            pid = sp.get("id") or f"P{len(self.order) + 1}"
            info = {"name": _text(sp.find("part-name"), "") or "", "program": None, "channel": None, "drum": False}
            mi = sp.find("midi-instrument")
            if mi is not None:
                ch, prog = _text(mi.find("midi-channel")), _text(mi.find("midi-program"))
                try:
                    info["channel"] = int(ch) - 1 if ch else None
                    info["program"] = int(prog) - 1 if prog else None
                except ValueError:
                    pass
                info["drum"] = mi.find("midi-unpitched") is not None
            self.parts_info[pid] = info
            self.order.append(pid)
            if len(self.order) > MAX_TRACKS:
                raise _Bad(f"more than {MAX_TRACKS} parts (limit)")

    def header(self, el) -> None:
        tag = el.tag
        if tag == "work":
            self.title = _text(el.find("work-title"), "") or self.title
        elif tag == "movement-title":
            self.movement = _text(el, "") or ""
        elif tag == "identification":
            for c in el.iter("creator"):
                if (c.get("type") or "").lower() == "composer" and _text(c) and not self.composer:
                    self.composer = " ".join(_text(c).split())
            for s in el.iter("software"):
                if _text(s) and not self.seen_software:
                    self.finale = "Finale" in _text(s)
                    self.seen_software = True

    # ---- measures ----
    def part(self, pid: str) -> _Part:
        p = self.parts.get(pid)
        if p is None:
            if pid not in self.parts_info:
                self.parts_info[pid] = {"name": "", "program": None, "channel": None, "drum": False}
                self.order.append(pid)
                if len(self.order) > MAX_TRACKS:
                    raise _Bad(f"more than {MAX_TRACKS} parts (limit)")
            p = self.parts[pid] = _Part(pid, self.parts_info[pid])
        return p

    def measure(self, p: _Part, m, last: bool = False) -> None:
        """Read one measure of part ``p``.  Positions are counted in divisions (whole numbers
        as long as the file's durations are: the fast path), exactly either way."""
        children = list(m)
        voices = set()
        for c in children:
            if c.tag in ("note", "forward"):
                v = _text(c.find("voice"))
                if v:
                    voices.add(v)
        use_voices = len(voices) > 1
        vorder = {v: i for i, v in enumerate(sorted(voices))}
        d = _whole(p.divisions)  # divisions per quarter note: the unit of every position below
        pos = highest = 0
        count = 0  # notes and rests
        here: list = []  # [start, voice key, order, staff, pitch, length, velocity, voice id, tie]
        chord_at = None
        chord_len = 0
        last_voice = None
        finale_rest = None
        held: list = []  # [start, staff] of the notes here carrying a fermata
        for c in children:
            tag = c.tag
            if tag == "note":
                finale_rest = None
                grace = c.find("grace") is not None
                is_chord = c.find("chord") is not None
                length = 0 if grace else _units(_text(c.find("duration")), "note duration")
                voice = _text(c.find("voice"))
                if voice is None and is_chord and use_voices:
                    voice = last_voice
                if voice is not None:
                    last_voice = voice
                start = chord_at if (is_chord and chord_at is not None) else pos
                if not is_chord:
                    chord_at, chord_len = pos, length
                    pos += length
                    count += 1
                    if start + length > highest:
                        highest = start + length
                if grace or c.find("rest") is not None:
                    continue
                member = self.pitch(c)
                if member is None:
                    continue
                dyn = c.get("dynamics")
                vel = 0
                if dyn:
                    try:
                        vel = int(round(float(dyn) * (90 / 12700) * 127))
                    except (ValueError, OverflowError):  # NaN, or 1e309: infinity
                        vel = 0
                ties = [t.get("type") for t in c.findall("tie") if t.get("type")]
                tie = ties[0] if len(ties) == 1 else ("continue" if "start" in ties and "stop" in ties else None)
                staff_t = _text(c.find("staff"))
                staff = int(staff_t) if staff_t and staff_t.isdigit() else 0
                if c.find("notations/fermata") is not None:
                    held.append([start, staff])
                here.append([start, vorder.get(voice, 0) if use_voices else 0, len(here), staff, member,
                             chord_len if is_chord else length, vel, voice or "1", tie])
            elif tag == "backup":
                pos = max(0, pos - _units(_text(c.find("duration")), "backup duration"))
                chord_at = None
            elif tag == "forward":
                step = _units(_text(c.find("duration")), "forward duration")
                chord_at = None
                if step and self.finale:  # music21 makes a hidden rest of it in files from Finale
                    finale_rest = (pos, pos + step)
                    count += 1
                    highest = max(highest, pos + step)
                pos += step
            elif tag == "attributes":
                self.attributes(p, c, Fraction(pos) / d)
                if p.divisions != d:  # new divisions in the middle of a measure: count in the new unit
                    f = Fraction(p.divisions) / d
                    d = _whole(p.divisions)
                    pos, highest, chord_len = pos * f, highest * f, chord_len * f
                    chord_at = None if chord_at is None else chord_at * f
                    finale_rest = None if finale_rest is None else (finale_rest[0] * f, finale_rest[1] * f)
                    for h in here:
                        h[0], h[5] = h[0] * f, h[5] * f
                    for h in held:
                        h[0] = h[0] * f
                if c.find("clef") is not None or c.find("key") is not None or c.find("time") is not None:
                    highest = max(highest, pos)  # music21 puts a clef, key or meter there
            elif tag in ("direction", "sound"):
                self.direction(p, c, Fraction(pos) / d)
                at = pos + self._offset(c) if c.find("offset") is not None else pos
                if at > highest and _marks(c):  # a mark past the notes lengthens the measure in music21
                    highest = at
            elif tag == "harmony":
                at = pos + self._offset(c) if c.find("offset") is not None else pos
                highest = max(highest, at)
        if last and finale_rest is not None and not use_voices and finale_rest[1] == highest:
            # music21 drops a hidden rest that ends a piece written by Finale
            highest = max([0] + [h[0] + h[5] for h in here] + [pos - (finale_rest[1] - finale_rest[0])])
        # where the next measure starts, in quarter notes: music21's rules
        top = Fraction(highest) / d
        bar = p.bar
        if top == bar:
            shift = top
        elif top > bar:
            diff = top - bar
            shift = top if diff > Fraction(1, 2) or (diff * 16).denominator == 1 or (diff * 12).denominator == 1 else bar
        elif top == 0 and count == 0:
            shift = bar
        else:
            shift = top
            if p.offset == 0 and 0 < top < bar and p.first:
                p.pickup = top
        p.first = False
        p.seq += 1
        on, od = p.offset.numerator, p.offset.denominator
        fast = isinstance(d, int)
        for h in here:
            s0, length = h[0], h[5]
            if fast and isinstance(s0, int) and isinstance(length, int):
                start = _round_div((on * d + s0 * od) * PPQ, od * d)
                dur = _round_div(length * PPQ, d)
            else:
                start = _tick(p.offset + Fraction(s0) / d)
                dur = _tick(Fraction(length) / d)
            if start + dur > MAX_TICKS:
                raise _Bad(f"part {self.order.index(p.id) + 1} runs past {MAX_TICKS // PPQ:,} quarter notes (limit)")
            if start + dur > self.reach and length:
                self.reach = start + dur
            # (measure, position in it, voice, order): the order music21 lists a part's notes in
            p.notes[h[3]].append((p.seq, s0, h[1], h[2], h[4], start, max(1, dur) if length else 0, h[6], h[7], h[8]))
        for s0, staff in held:
            p.fermatas.append((_tick(p.offset + Fraction(s0) / d), staff))
        self.notes += len(here)
        if self.notes > MAX_NOTES:
            raise _Bad(f"more than {MAX_NOTES:,} notes (limit)")
        p.offset += shift
        self.check_length(p, m)

    def _offset(self, el) -> Fraction:
        """A direction's or harmony's <offset>, in divisions (0 when unreadable)."""
        t = _text(el.find("offset"))
        try:
            return Fraction(float(t)) if t else Fraction(0)
        except (ValueError, OverflowError):
            return Fraction(0)

    def pitch(self, c):
        pe = c.find("pitch")
        if pe is not None:
            step = _text(pe.find("step"), "")
            octave = _text(pe.find("octave"))
            alter = _text(pe.find("alter"))
            if step[:1].upper() not in _STEP or octave is None:
                raise _Bad("a note without a proper pitch")
            try:
                ps = (int(octave) + 1) * 12 + _STEP[step[:1].upper()] + (float(alter) if alter else 0.0)
                return int(round(ps))
            except (ValueError, OverflowError):  # also an <alter> of NaN or 1e309
                raise _Bad("a note without a proper pitch") from None
        un = c.find("unpitched")
        if un is not None:
            step = _text(un.find("display-step"), "")
            octave = _text(un.find("display-octave"))
            if step[:1].upper() not in _STEP or octave is None:
                return None
            try:
                return (int(octave) + 1) * 12 + _STEP[step[:1].upper()]
            except ValueError:
                return None
        return None

    def attributes(self, p: _Part, a, pos: Fraction) -> None:
        at = p.offset + pos
        d = _text(a.find("divisions"))
        if d:
            div = _num(d, "divisions")
            if div <= 0:
                raise _Bad(f"divisions of {d} per quarter note")
            p.divisions = div
        st = _text(a.find("staves"))
        if st:
            try:
                p.staves = max(p.staves, min(16, int(st)))
            except ValueError:
                pass
        for t in a.findall("time"):
            beats, btype = t.findall("beats"), t.findall("beat-type")
            if not beats or not btype:
                continue  # senza misura
            try:
                num = sum(int(x) for x in (_text(beats[0], "") or "").split("+"))
                den = int(_text(btype[0], ""))
            except ValueError:
                raise _Bad(f"time signature {_text(beats[0])}/{_text(btype[0])} is not a meter") from None
            if not 1 <= num <= MAX_BEATS:
                raise _Bad(f"time signature {num}/{den}: more than {MAX_BEATS} beats (limit)" if num > 0
                           else f"time signature {num}/{den} is not a meter")
            if den not in _DENOMINATORS:
                raise _Bad(f"time signature {num}/{den}: the beat must be 1, 2, 4, ... 64")
            p.bar = Fraction(4 * num, den)
            self.sigs.append((at, num, den))
            self.reach = max(self.reach, _tick(at))
            break
        for k in a.findall("key"):
            f = _text(k.find("fifths"))
            if f is None:
                continue
            try:
                fifths = max(-7, min(7, int(f)))
            except ValueError:
                continue
            self.keys.append((at, fifths, (_text(k.find("mode"), "") or "").lower() == "minor"))
            self.reach = max(self.reach, _tick(at))
            break

    def direction(self, p: _Part, d, pos: Fraction) -> None:
        at = p.offset + pos
        sound = d if d.tag == "sound" else d.find("sound")
        if sound is not None and sound.get("tempo"):
            try:
                bpm = float(sound.get("tempo"))
            except ValueError:
                bpm = 0
            if 1 <= bpm <= 1000:
                self._tempo(at, round(bpm, 3))
                return
        if d.tag != "direction":
            return
        for met in d.iter("metronome"):
            unit, per = _text(met.find("beat-unit")), _text(met.find("per-minute"))
            if unit in _UNIT and per:
                try:
                    q = _UNIT[unit] * (Fraction(3, 2) if met.find("beat-unit-dot") is not None else 1)
                    bpm = float(per) * float(q)
                except ValueError:
                    continue
                if 1 <= bpm <= 1000:
                    self._tempo(at, round(bpm, 3))
            break

    def _tempo(self, at: Fraction, bpm: float) -> None:
        self.tempos.append((at, bpm))
        self.fastest = max(self.fastest, bpm)
        self.marked_at_start = self.marked_at_start or _tick(at) == 0
        self.reach = max(self.reach, _tick(at))

    def seconds(self, ticks: int) -> float:
        """Seconds from the start to ``ticks`` through the tempo marks read so far (the song's
        rules: the later mark at one position wins, 120 bpm before the first)."""
        by_tick = {0: 120.0}
        for at, bpm in self.tempos:
            by_tick[_tick(at)] = bpm
        marks = sorted(by_tick.items())
        total = 0.0
        for (t0, bpm), (t1, _) in zip(marks, marks[1:] + [(ticks, 0.0)]):
            if t0 >= ticks:
                break
            total += (min(t1, ticks) - t0) / PPQ * 60.0 / bpm
        return total

    def check_length(self, p: _Part, m) -> None:
        """Refuse the file as soon as what was read runs past the length cap, before the rest
        of it is parsed.  Cheap per measure: the exact sum through the tempo marks is taken only
        once even the fastest tempo read so far would not fit the music in the cap.  (A mark that
        only a later part holds is not known yet; the whole song is checked again once read.)"""
        fastest = self.fastest if self.marked_at_start else max(self.fastest, 120.0)
        if self.reach / PPQ * 60.0 / fastest <= MAX_SECONDS:
            return
        secs = self.seconds(self.reach)
        if secs > MAX_SECONDS + 1.0:  # a second's grace for rounding: the final check is exact
            where = m.get("number") or str(p.seq)
            raise _Bad(f"more than the {MAX_SECONDS / 3600:g} hour limit: part {self.order.index(p.id) + 1} "
                       f"passes {secs / 3600:.1f} hours by bar {where[:12]} (the rest was not read)")

    # ---- the song ----
    def song(self, stem: str) -> Song:
        song = Song(title=self.title or self.movement or stem or "Untitled", tracks=[], tempos=[],
                    time_signatures=[], key_signatures=[], composer=self.composer)
        first = self.parts.get(self.order[0]) if self.order else None
        song.pickup = _tick(first.pickup) if first is not None else 0
        fermatas = set()
        for pi, pid in enumerate(self.order):
            p = self.parts.get(pid)
            info = self.parts_info[pid]
            if p is None:
                p = _Part(pid, info)
            channel = info["channel"] if info["channel"] is not None else min(pi, 15)
            program = info["program"] if info["program"] is not None else 0
            is_drum = channel == 9 or info["drum"]
            used = sorted(k for k in p.notes if k)
            if p.staves > 1 or len(used) > 1:
                keys = sorted(set(range(1, p.staves + 1)) | set(used))
                staffs = [(k, p.notes.get(k, []) + p.notes.get(0, [])) for k in keys]
            else:
                staffs = [(0, [h for hs in p.notes.values() for h in hs])]
            for k, items in staffs:
                song.tracks.append(Track(name=info["name"] or f"Part {pi + 1}", program=max(0, min(127, program)),
                                         channel=max(0, min(15, channel)), is_drum=is_drum, notes=_merge(items)))
                fermatas.update(_fermata_onsets(song.tracks[-1].notes, [t for t, st in p.fermatas if not k or st in (k, 0)]))
                if len(song.tracks) > MAX_TRACKS:
                    raise _Bad(f"more than {MAX_TRACKS} staves (limit)")
        song.tempos = [TempoChange(_tick(t), bpm) for t, bpm in self.tempos]
        song.time_signatures = [TimeSignature(_tick(t), n, d) for t, n, d in self.sigs]
        song.key_signatures = [KeySignature(_tick(t), f, mi) for t, f, mi in self.keys]
        song.fermatas = tuple(fermatas)
        song.normalize()
        for lst, default in ((song.tempos, TempoChange(0, 120.0)), (song.time_signatures, TimeSignature(0, 4, 4))):
            if lst[0].tick != 0:
                lst.insert(0, default)
        if song.key_signatures[0].tick != 0:
            k = song.key_signatures[0]
            song.key_signatures.insert(0, KeySignature(0, k.fifths, k.minor))
        if song.pickup and song.pickup >= song.time_signatures[0].bar_ticks(song.ppq):
            song.pickup = 0
        return song


_MARKS = frozenset(("coda", "segno", "metronome", "rehearsal", "words"))


def _marks(d) -> bool:
    """Whether music21 makes an element of a <direction> or <sound> (text, dynamics, tempo...)."""
    if d.tag == "sound":
        return d.get("tempo") is not None
    metronome = False
    for dt in d.findall("direction-type"):
        for x in dt:
            if x.tag in _MARKS or (x.tag == "dynamics" and len(x)):
                return True
            if x.tag == "pedal" and x.get("type") in ("change", "discontinue", "resume"):
                return True
            metronome = metronome or x.tag == "metronome"
    return not metronome and any(snd.get("tempo") is not None for snd in d.findall("sound"))


def _fermata_onsets(notes: list[Note], ticks) -> list[int]:
    """Where fermatas marked at ``ticks`` belong in a track: the onset of the note sounding there
    (a fermata written on the last piece of tied notes is the whole note's), else the tick itself."""
    out = []
    starts = [n.start for n in notes]
    for t in ticks:
        i = bisect.bisect_right(starts, t)
        on = [n.start for n in notes[max(0, i - 8):i] if n.start <= t < n.end]
        out.append(max(on) if on else t)
    return out


def _merge(items) -> list[Note]:
    """Notes of one staff: tied pieces joined (within their voice first), as music21 does."""
    items.sort(key=lambda h: h[:4])  # measure, position, voice, order: music21's order
    joiner = TieJoiner()
    for _seq, _pos, _vk, _o, midi, start, dur, vel, vid, kind in items:
        if dur <= 0 or not 0 <= midi <= 127:
            continue
        joiner.add(start, midi, dur, max(1, min(127, vel)) if vel else 80, kind, vid)
    return joiner.notes()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if "}" in tag else tag


def read_stream(fh, label: str, stem: str) -> Song:
    """Read a MusicXML document (partwise or timewise) from a binary file object."""
    r = Reader(label)
    depth = 0
    root = None
    timewise = False
    current = ""  # the part being read (partwise)
    pending: dict[str, object] = {}  # part id -> its latest measure, held back one measure

    def take(pid: str, m) -> None:
        p = r.part(pid)
        prev = pending.pop(pid, None)
        if prev is not None:
            r.measure(p, prev)
            prev.clear()
        pending[pid] = m  # music21 treats a part's last measure specially: known only later

    for event, el in ET.iterparse(fh, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth == 1:
                root = _local(el.tag)
                if root not in ("score-partwise", "score-timewise"):
                    raise _Bad(f"not a MusicXML score (its root element is <{root[:40]}>)")
                timewise = root == "score-timewise"
            elif depth == 2 and not timewise and _local(el.tag) == "part":
                current = el.get("id") or "P1"
            continue
        depth -= 1
        if "}" in el.tag:
            for sub in el.iter():
                sub.tag = _local(sub.tag)
        tag = el.tag
        if depth == 1:
            if tag == "part-list":
                r.part_list(el)
            elif tag in ("work", "movement-title", "identification"):
                r.header(el)
            elif tag == "part" and not timewise and current in pending:
                m = pending.pop(current)
                r.measure(r.part(current), m, last=True)
            el.clear()
        elif depth == 2:
            if tag == "measure" and not timewise:
                take(current, el)
            elif tag == "part" and timewise:
                take(el.get("id") or "P1", el)
    if root is None:
        raise _Bad("empty file")
    for pid, m in list(pending.items()):
        r.measure(r.part(pid), m, last=True)
    return r.song(stem)


def _open_zip(path: str, label: str):
    """The score inside a compressed MusicXML file, as a byte-counting stream."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise FileFormatError(f"{label}: not a compressed MusicXML file ({exc})") from None
    try:
        names = zf.namelist()
        root = None
        if "META-INF/container.xml" in names:
            with zf.open("META-INF/container.xml") as fh:
                data = _Counting(fh, 1 << 20, "META-INF/container.xml unpacks to").read(1 << 20)
                data += fh.read(1)
            try:
                container = ET.fromstring(data)
            except ET.ParseError:
                container = None
            if container is not None:
                for el in container.iter():
                    if el.tag.endswith("rootfile") and el.get("full-path") in names:
                        root = el.get("full-path")
                        break
        if root is None:
            candidates = [n for n in names if not n.startswith("META-INF/") and n.lower().endswith((".xml", ".musicxml"))]
            if not candidates:
                raise FileFormatError(f"{label}: no score inside the compressed file")
            root = candidates[0]
        info = zf.getinfo(root)
        if info.file_size > MAX_BYTES:
            raise FileFormatError(f"{label}: unpacks to {info.file_size / 1e6:.0f} MB, more than the {MAX_BYTES // 2**20} MB limit")
        return zf, zf.open(root)
    except BaseException:
        zf.close()
        raise


def _clip(text: str) -> str:
    """A message with any number of more than 20 digits shortened (a hostile file's 5,000-digit
    meter must not become a 5,000-character error line)."""
    return re.sub(r"\d{21,}", lambda m: f"{m.group()[:12]}... ({len(m.group()):,} digits)", text)[:300]


def read_musicxml_file(path: str | os.PathLike, progress=None) -> Song:
    """Read .musicxml, .xml or .mxl (a compressed file is recognised by its content).

    ``progress(fraction)`` is called as the file is read (about every 64 kB)."""
    path = str(path)
    label = os.path.basename(path)
    stem = Path(path).stem
    try:
        size = os.path.getsize(path)
        if size > MAX_BYTES:
            raise FileFormatError(f"{label}: {size / 1e6:.0f} MB is larger than the {MAX_BYTES // 2**20} MB limit")
        with open(path, "rb") as fh:
            head = fh.read(4)
        if not head:
            raise FileFormatError(f"{label}: empty file")
        if head == b"PK\x03\x04" or Path(path).suffix.lower() == ".mxl":
            zf, inner = _open_zip(path, label)
            try:
                with zf, inner:
                    total = zf.getinfo(inner.name).file_size
                    return read_stream(_Counting(inner, MAX_BYTES, "the score inside unpacks to", total, progress),
                                       label, stem)
            except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as exc:
                raise FileFormatError(f"{label}: damaged compressed file ({exc})") from None
        with open(path, "rb") as fh:
            return read_stream(_Counting(fh, MAX_BYTES, "the file holds", size, progress), label, stem)
    except FileFormatError:
        raise
    except _Bad as exc:
        raise FileFormatError(f"{label}: {_clip(str(exc))}") from None
    except LookupError as exc:  # an XML declaration naming an encoding Python does not know
        raise FileFormatError(f"{label}: not readable MusicXML ({_clip(str(exc))})") from None
    except ET.ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        words = str(exc).split(":")[0]
        raise FileFormatError(f"{label}: not readable MusicXML ({words} at line {line}, column {col})") from None
    except FileNotFoundError:
        raise FileFormatError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{label}: is a folder, not a file") from None
    except MemoryError:
        raise FileFormatError(f"{label}: too large to read") from None
    except RecursionError:
        raise FileFormatError(f"{label}: nested too deeply") from None
    except OSError as exc:
        raise FileFormatError(f"{label}: cannot read ({exc.strerror or exc})") from None
    except (zipfile.BadZipFile, EOFError) as exc:
        raise FileFormatError(f"{label}: damaged compressed file ({exc})") from None
