"""The streaming MusicXML reader: the same notes as music21 on music21's own corpus, linear
time in bars, caps checked before the whole file is read, a lying zip refused without
unpacking it, and one clean line (no music21 chatter) for a broken file.

The corpus test compares every MusicXML/MXL file in music21's corpus up to 60 kB (528 of its
654 files) and a fixed sample of six larger ones: music21 itself needs a minute or more for each
big quartet movement.  Set STUDIO_FULL_CORPUS=1 to compare all 654.
"""

from __future__ import annotations

import gc
import glob
import io
import os
import resource
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import music21
import pytest

from studio.core.errors import FileFormatError
from studio.core.song import Note, Song, TimeSignature, Track
from studio.core.timing import bars
from studio.io import load, save
from studio.io.musicxml import song_from_music21, song_to_musicxml_bytes
from studio.io.musicxml_read import MAX_BYTES, read_musicxml_file

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(music21.__file__).parent / "corpus"
ALL = sorted(p for ext in ("xml", "mxl", "musicxml") for p in glob.glob(f"{CORPUS}/**/*.{ext}", recursive=True))
SMALL_LIMIT = 60_000  # bytes on disk: every file up to this is compared (528 of the 654)
BIG_LIMIT = 200_000  # and a sample of those up to this size (music21 needs a minute or more per larger one)
BIG_SAMPLE = 6


def corpus_files() -> list[str]:
    if os.environ.get("STUDIO_FULL_CORPUS"):
        return ALL
    small = [p for p in ALL if os.path.getsize(p) <= SMALL_LIMIT]
    big = sorted((p for p in ALL if SMALL_LIMIT < os.path.getsize(p) <= BIG_LIMIT), key=os.path.getsize)
    step = max(1, len(big) // BIG_SAMPLE)
    return small + big[::step][:BIG_SAMPLE]


def as_music21_places(song: Song) -> list[list[tuple]]:
    """Our notes where music21's importer puts them: it pads a pickup to a full bar."""
    shift = song.time_signatures[0].bar_ticks() - song.pickup if song.pickup else 0
    return [[(n.start + shift, n.pitch, n.duration, n.velocity) for n in t.notes] for t in song.tracks]


_FINALE_ZERO_FORWARD = (
    "music21 makes a hidden rest of each <forward> in a file from Finale, and its Rest(quarterLength=0) "
    "gets the default length of a quarter: a <forward><duration>0</duration></forward> lengthens its bar "
    "(Haydn op.1/1 iv bar 35 of Violin I: 72 divisions, 3 quarters of 3/4, in both voices; music21 "
    "makes it 3 23/24 and every later onset moves).  With the zero-length forwards taken out of the "
    "file, music21 reads the same notes as we do, note for note, in all five.")
KNOWN_TO_DIFFER = {
    "haydn/opus1no1/movement3.mxl": _FINALE_ZERO_FORWARD,
    "haydn/opus1no1/movement4.mxl": _FINALE_ZERO_FORWARD,
    "haydn/opus1no1/movement5.mxl": _FINALE_ZERO_FORWARD,
    "schumann_robert/opus41no1/movement1.mxl": _FINALE_ZERO_FORWARD,
    "schumann_robert/opus41no1/movement5.mxl": _FINALE_ZERO_FORWARD,
    "schumann_robert/opus41no1/movement4.mxl": "some onsets one tick apart: music21 sums floats",
    "liliuokalani/aloha_oe.mxl": (
        "the piano's bars 14, 15, 17 and 18 hold chords across the staves, the first note on staff 2 and "
        "11 later ones on staff 1: we put each note on the staff its <staff> names, music21 makes one "
        "Chord on its first note's staff"),
    "trecento/PMFC_13_04-Credo Cursor.xml": (
        "Cantus 2, bar 147: <step>B</step> with no <alter> and an editorial <accidental>sharp</accidental>; "
        "the pitch sounds as step and alter say (the accidental element is how it is drawn): B4, as we "
        "read; music21 takes the accidental for the pitch (B#4, a semitone higher).  Every other "
        "editorial accidental in the file comes with its <alter>.  (Compared with STUDIO_FULL_CORPUS.)"),
}


@pytest.mark.slow
def test_notes_match_music21_on_the_corpus():
    files = corpus_files()
    assert len(ALL) > 600 and len(files) > 400
    differ = []
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = song_from_music21(music21.converter.parse(path, forceSource=True))
        mine = read_musicxml_file(path)
        want = [[(n.start, n.pitch, n.duration, n.velocity) for n in t.notes] for t in ref.tracks]
        if as_music21_places(mine) != want:
            differ.append(os.path.relpath(path, CORPUS))
    print(f"\n{len(files) - len(differ)} of {len(files)} corpus files: the same notes as music21; differ: {differ}")
    # The files that differ, each where the file itself says what we read (KNOWN_TO_DIFFER);
    # any other difference fails.
    unexplained = [d for d in differ if d not in KNOWN_TO_DIFFER]
    allowed = 0.02 * len(files) if os.environ.get("STUDIO_FULL_CORPUS") else 0
    assert len(unexplained) <= allowed, f"{len(unexplained)} of {len(files)} differ from music21: {unexplained[:20]}"


# ---- generated files -------------------------------------------------------------------
def score_xml(bars_: int, beats: str = "4", parts: int = 1, notes_per_bar: int = 4) -> bytes:
    """A plain partwise score: ``parts`` parts of ``bars_`` bars of quarter notes."""
    note = "<note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration><type>quarter</type></note>"
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n<score-partwise version="3.1"><part-list>')
    for i in range(parts):
        out.write(f'<score-part id="P{i + 1}"><part-name>Part {i + 1}</part-name></score-part>')
    out.write("</part-list>")
    for i in range(parts):
        out.write(f'<part id="P{i + 1}">')
        for b in range(bars_):
            out.write(f'<measure number="{b + 1}">')
            if b == 0:
                out.write(f"<attributes><divisions>1</divisions><time><beats>{beats}</beats><beat-type>4</beat-type></time></attributes>")
            out.write(note * notes_per_bar)
            out.write("</measure>")
        out.write("</part>")
    out.write("</score-partwise>")
    return out.getvalue().encode()


def _read_seconds(path) -> float:
    """CPU seconds to read ``path`` (best of two): the machine's other work does not count, nor
    does the collector's walk over whatever the test process holds from earlier tests."""
    best = 1e9
    for _ in range(2):
        gc.collect()
        gc.disable()
        try:
            t = time.process_time()
            read_musicxml_file(path)
            best = min(best, time.process_time() - t)
        finally:
            gc.enable()
    return best


def test_reading_is_linear_in_bars(tmp_path):
    small, big = tmp_path / "2500.musicxml", tmp_path / "10000.musicxml"
    small.write_bytes(score_xml(2500))
    big.write_bytes(score_xml(10_000))
    song = read_musicxml_file(big)
    assert song.note_count == 40_000 and len(bars(song)) == 10_000
    a, b = _read_seconds(small), _read_seconds(big)
    assert b / a < 6, (a, b)  # 4x the bars: about 4x the time (music21 took 16x)
    assert b < 5, b  # about 1.4 s of CPU


def test_huge_time_signature_is_refused_before_anything_else(tmp_path):
    path = tmp_path / "meter.musicxml"
    path.write_bytes(score_xml(1, beats="1000000000", notes_per_bar=1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.process_time()
    with pytest.raises(FileFormatError, match=r"^meter\.musicxml: time signature 1000000000/4: more than 64 beats \(limit\)$"):
        read_musicxml_file(path)
    assert time.process_time() - t < 0.5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: nothing was built


def slow_score(bars_: int, bpm: float = 20, whole_bars: int = 0) -> bytes:
    """One part at ``bpm`` (a quarter note at 20 bpm lasts 3 s: 1,800 bars of 4/4 make 6 hours),
    ``bars_`` bars of quarter notes."""
    xml = score_xml(bars_)
    mark = f'<direction><direction-type><metronome><beat-unit>quarter</beat-unit><per-minute>{bpm:g}</per-minute></metronome></direction-type><sound tempo="{bpm:g}"/></direction>'
    return xml.replace(b"</attributes>", b"</attributes>" + mark.encode(), 1)


class _CountingBytes(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, n: int = -1) -> bytes:
        out = super().read(n)
        self.taken += len(out)
        return out


def test_a_score_past_six_hours_is_refused_before_it_is_read_whole(tmp_path):
    from studio.io.musicxml_read import read_stream

    data = slow_score(20_000)  # 66.7 hours at 20 bpm
    fh = _CountingBytes(data)
    with pytest.raises(FileFormatError) as err:
        try:
            read_stream(fh, "long.musicxml", "long")
        except Exception as exc:  # the reader's own error type: turned into one line by its caller
            raise FileFormatError(str(exc)) from None
    assert "more than the 6 hour limit: part 1 passes 6.0 hours by bar 1801" in str(err.value)
    assert fh.taken < len(data) // 5  # about 1,800 of 20,000 bars were read
    path = tmp_path / "long.musicxml"
    path.write_bytes(data)
    with pytest.raises(FileFormatError, match=r"^long\.musicxml: more than the 6 hour limit: part 1 passes 6\.0 hours "
                                              r"by bar 1801 \(the rest was not read\)$"):
        read_musicxml_file(path)


def test_a_score_just_under_six_hours_is_read_and_a_fast_one_of_many_bars_too(tmp_path):
    path = tmp_path / "under.musicxml"
    path.write_bytes(slow_score(1_799))  # 5.997 hours
    song = read_musicxml_file(path)
    assert song.note_count == 4 * 1_799 and song.tempos[0].bpm == 20
    path.write_bytes(slow_score(1_801))  # 6.005 hours: past the cap by 18 s
    with pytest.raises(FileFormatError, match="6 hour limit"):
        read_musicxml_file(path)
    path.write_bytes(slow_score(4_000, bpm=200))  # 4,000 bars at 200 bpm: 80 minutes
    assert read_musicxml_file(path).note_count == 16_000


def test_part_cap_is_checked_when_the_part_list_ends(tmp_path, monkeypatch):
    from studio.io import musicxml_read

    path = tmp_path / "many.musicxml"
    data = score_xml(2, parts=300, notes_per_bar=1)
    path.write_bytes(data)
    seen = []
    real = musicxml_read.Reader.measure
    monkeypatch.setattr(musicxml_read.Reader, "measure", lambda *a, **k: (seen.append(1), real(*a, **k)))
    with pytest.raises(FileFormatError, match="more than 256 parts"):
        read_musicxml_file(path)
    assert not seen  # refused before a single measure was read


def _lying_zip(path: Path, real_bytes: int, declared: int) -> None:
    """An .mxl whose score unpacks to ``real_bytes`` while its headers say ``declared``."""
    head = b'<?xml version="1.0"?><score-partwise><part-list><score-part id="P1"><part-name>x</part-name></score-part></part-list><part id="P1"><measure number="1">'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("score.xml", "w") as fh:
            fh.write(head)
            chunk = b"<!-- padding padding padding padding -->" * 25_000
            left = real_bytes - len(head)
            while left > 0:
                fh.write(chunk[:left])
                left -= len(chunk)
    data = bytearray(path.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        pos = data.index(sig)
        struct.pack_into("<I", data, pos + off, declared)
    path.write_bytes(bytes(data))


def test_zip_that_lies_about_its_size_is_refused_without_unpacking_it(tmp_path):
    path = tmp_path / "lie.mxl"
    _lying_zip(path, real_bytes=300 * 2**20, declared=10_000)  # 300 MB behind a 10 kB header
    assert path.stat().st_size < 2 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.process_time()
    with pytest.raises(FileFormatError, match=r"^lie\.mxl: "):
        read_musicxml_file(path)
    assert time.process_time() - t < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # kB


def test_zip_under_its_declared_cap_but_larger_inside_stops_at_the_cap(tmp_path, monkeypatch):
    from studio.io import musicxml_read

    monkeypatch.setattr(musicxml_read, "MAX_BYTES", 2 * 2**20)
    path = tmp_path / "big.mxl"
    _lying_zip(path, real_bytes=20 * 2**20, declared=2 * 2**20 - 1)
    with pytest.raises(FileFormatError, match=r"^big\.mxl: "):
        read_musicxml_file(path)


def test_broken_musicxml_is_one_line_and_nothing_else(tmp_path):
    path = tmp_path / "broken.musicxml"
    path.write_bytes(score_xml(3)[:-40])
    r = subprocess.run([sys.executable, "-m", "studio", "info", str(path)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("studio: error: broken.musicxml: not readable MusicXML")


def test_not_a_score_is_refused(tmp_path):
    path = tmp_path / "x.xml"
    path.write_bytes(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>')
    with pytest.raises(FileFormatError, match=r"x\.xml: not a MusicXML score \(its root element is <svg>\)"):
        read_musicxml_file(path)


def test_timewise_scores_are_read_like_partwise_ones(tmp_path):
    tw = (b'<?xml version="1.0"?><score-timewise><part-list><score-part id="P1"><part-name>A</part-name></score-part>'
          b'<score-part id="P2"><part-name>B</part-name></score-part></part-list>')
    for b in range(3):
        tw += f'<measure number="{b + 1}">'.encode()
        for pid, step in (("P1", "C"), ("P2", "E")):
            attrs = "<attributes><divisions>2</divisions><time><beats>3</beats><beat-type>4</beat-type></time></attributes>" if b == 0 else ""
            tw += (f'<part id="{pid}">{attrs}<note><pitch><step>{step}</step><octave>4</octave></pitch>'
                   f'<duration>6</duration></note></part>').encode()
        tw += b"</measure>"
    tw += b"</score-timewise>"
    path = tmp_path / "tw.musicxml"
    path.write_bytes(tw)
    song = read_musicxml_file(path)
    assert [t.name for t in song.tracks] == ["A", "B"]
    assert song.tracks[1].notes == [Note(i * 1440, 64, 1440) for i in range(3)]
    assert song.time_signatures == [TimeSignature(0, 3, 4)]


# ---- where music21 reads otherwise (see KNOWN_TO_DIFFER): what the file says ----------------
def _one_part(measures: str, software: str = "", staves: int = 1) -> bytes:
    ident = f"<identification><encoding><software>{software}</software></encoding></identification>" if software else ""
    return (f'<?xml version="1.0"?><score-partwise>{ident}<part-list><score-part id="P1"><part-name>Vn</part-name>'
            f'</score-part></part-list><part id="P1">{measures}</part></score-partwise>').encode()


def _n(step: str, octave: int, dur: int, extra: str = "", alter: str = "") -> str:
    return f"<note>{'<chord/>' if 'CHORD' in extra else ''}<pitch><step>{step}</step>{alter}<octave>{octave}</octave></pitch><duration>{dur}</duration>{extra.replace('CHORD', '')}</note>"


def test_a_zero_length_forward_from_finale_takes_no_time(tmp_path):
    attrs = "<attributes><divisions>24</divisions><time><beats>3</beats><beat-type>4</beat-type></time></attributes>"
    one = (attrs + _n("A", 4, 72, "<voice>1</voice>") + "<backup><duration>72</duration></backup>"
           "<forward><duration>48</duration><voice>2</voice></forward>" + _n("G", 4, 23, "<voice>2</voice>")
           + "<forward><duration>0</duration><voice>2</voice></forward><forward><duration>1</duration><voice>2</voice></forward>")
    xml = _one_part(f'<measure number="1">{one}</measure><measure number="2">{_n("C", 5, 72)}</measure>',
                    software="Finale 2002 for Windows")
    path = tmp_path / "finale.musicxml"
    path.write_bytes(xml)
    assert [n.start for n in read_musicxml_file(path).tracks[0].notes] == [0, 960, 1440]  # bar 2 at 3 quarters


def test_a_pitch_is_its_step_and_alter_not_its_drawn_accidental(tmp_path):
    ed = '<accidental editorial="yes">sharp</accidental>'
    xml = _one_part('<measure number="1"><attributes><divisions>1</divisions></attributes>'
                    + _n("B", 4, 1, ed) + _n("C", 5, 1, ed, "<alter>1</alter>") + _n("F", 4, 2, "<accidental>natural</accidental>")
                    + "</measure>")
    path = tmp_path / "ficta.musicxml"
    path.write_bytes(xml)
    assert [n.pitch for n in read_musicxml_file(path).tracks[0].notes] == [71, 73, 65]


def test_a_chord_across_two_staves_puts_each_note_on_its_own_staff(tmp_path):
    xml = _one_part('<measure number="1"><attributes><divisions>1</divisions><staves>2</staves></attributes>'
                    + _n("B", 3, 2, "<staff>2</staff>") + _n("D", 4, 2, "CHORD<staff>1</staff>")
                    + _n("G", 4, 2, "<staff>1</staff>") + "<backup><duration>4</duration></backup>"
                    + _n("G", 2, 4, "<voice>2</voice><staff>2</staff>") + "</measure>")
    path = tmp_path / "cross.musicxml"
    path.write_bytes(xml)
    upper, lower = read_musicxml_file(path).tracks
    assert [n.pitch for n in upper.notes] == [62, 67] and sorted(n.pitch for n in lower.notes) == [43, 59]


# ---- title, composer, pickups, meter changes ------------------------------------------------
def test_title_composer_pickup_and_meter_change_round_trip(tmp_path):
    song = Song(title="Gavotte", composer="G. F. Handel", pickup=960,
                time_signatures=[TimeSignature(0, 4, 4), TimeSignature(960 + 2 * 1920, 3, 4)],
                tracks=[Track("Violin", 40, notes=[Note(i * 480, 67 + i % 5, 480) for i in range(14)])])
    data = song_to_musicxml_bytes(song)
    assert b"Music21" not in data and b"G. F. Handel" in data
    assert b'implicit="yes" number="0"' in data or b'number="0" implicit="yes"' in data
    path = tmp_path / "g.musicxml"
    path.write_bytes(data)
    back = read_musicxml_file(path)
    assert (back.title, back.composer, back.pickup) == ("Gavotte", "G. F. Handel", 960)
    assert back.time_signatures == song.time_signatures and back.tracks[0].notes == song.tracks[0].notes
    assert [b.start for b in bars(back)] == [b.start for b in bars(song)] == [0, 960, 2880, 4800, 6240]
    # and MIDI agrees on the bar lines
    save(back, tmp_path / "g.mid")
    mid = load(tmp_path / "g.mid")
    assert mid.pickup == 960 and [b.start for b in bars(mid)] == [0, 960, 2880, 4800, 6240]


def test_no_composer_means_none_written():
    data = song_to_musicxml_bytes(Song(title="t", tracks=[Track("a", notes=[Note(0, 60, 480)])]))
    assert b"<creator" not in data


def test_many_parts_export_quietly(tmp_path):
    song = Song(tracks=[Track(f"T{i}", program=i % 128, channel=i % 16, notes=[Note(0, 60, 480)]) for i in range(40)])
    path = tmp_path / "many.mid"
    save(song, path)
    out = tmp_path / "many.musicxml"
    r = subprocess.run([sys.executable, "-m", "studio", "convert", str(path), "-o", str(out)], capture_output=True,
                       text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and "channels" not in r.stderr and "music21" not in r.stderr.lower(), r.stderr
    assert len(load(out).tracks) == 40


def test_progress_is_reported_while_reading(tmp_path):
    path = tmp_path / "p.musicxml"
    path.write_bytes(score_xml(800))
    seen: list[float] = []
    load(path, progress=seen.append)
    assert len(seen) > 5 and seen == sorted(seen) and seen[-1] == 1.0
    mxl = tmp_path / "p.mxl"
    with zipfile.ZipFile(mxl, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p.musicxml", path.read_bytes())
    seen.clear()
    assert load(mxl, progress=seen.append).note_count == 3200 and seen[-1] == 1.0
