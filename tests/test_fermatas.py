"""Fermatas (phrase ends) in the song: kept by copies, the project file, MusicXML and MIDI, and
given to the harmonizer as the phrase marks its network was trained with."""

from __future__ import annotations

import io
import json

import mido
import numpy as np
import pytest

from studio.core.song import Note, Song, TimeSignature, Track, toggled_fermatas
from studio.io import midi, project
from studio.io.musicxml import song_to_musicxml_bytes
from studio.io.musicxml_read import read_musicxml_file

Q = 480


def melody(fermatas=()) -> Song:
    pitches = [67, 67, 69, 71, 72, 71, 69, 67]  # two phrases of four quarters
    return Song(title="Two phrases", tracks=[Track("Soprano", notes=[Note(i * Q, p, Q) for i, p in enumerate(pitches)])],
                fermatas=tuple(fermatas))


# ---- the song ---------------------------------------------------------------------------
def test_song_keeps_its_fermatas_sorted_through_copy_and_normalize():
    s = melody([7 * Q, 3 * Q, 3 * Q])
    s.normalize()
    assert s.fermatas == (3 * Q, 7 * Q) and s.has_fermata(3 * Q) and not s.has_fermata(4 * Q)
    c = s.copy()
    assert c.fermatas == s.fermatas and c == s
    assert Song().fermatas == ()


def test_toggling_sets_all_when_one_is_missing_else_clears_them():
    assert toggled_fermatas((), [480]) == (480,)
    assert toggled_fermatas((480,), [480, 960]) == (480, 960)
    assert toggled_fermatas((0, 480, 960), [960, 480]) == (0,)


# ---- the project file -------------------------------------------------------------------
def test_project_keeps_fermatas(tmp_path):
    s = melody([3 * Q, 7 * Q])
    path = tmp_path / "f.studio"
    project.write_project(s, path)
    assert json.loads(path.read_text())["fermatas"] == [3 * Q, 7 * Q]
    assert project.read_project(path) == s


def test_a_version_two_project_opens_without_fermatas_and_saves_as_the_current_version(tmp_path):
    v2 = {"format_version": 2, "app": "cantor-studio", "title": "Before fermatas", "ppq": 480, "pickup": 0,
          "composer": "", "tempos": [[0, 90.0]], "time_signatures": [[0, 4, 4]], "key_signatures": [[0, 0, False]],
          "tracks": [{"name": "Melody", "notes": [[0, 60, 480, 80]]}], "meta": {}}
    path = tmp_path / "v2.studio"
    path.write_text(json.dumps(v2))
    song = project.read_project(path)
    assert song.fermatas == () and song.tracks[0].notes == [Note(0, 60, 480, 80)]
    project.write_project(song, path)
    doc = json.loads(path.read_text())
    assert doc["format_version"] == project.FORMAT_VERSION == 3 and doc["fermatas"] == []


def test_project_fermatas_are_checked_and_rescaled(tmp_path):
    bad = {"format_version": 3, "ppq": 96, "fermatas": [96, "x"]}
    with pytest.raises(Exception, match=r"fermatas\[1\]"):
        project.read_project_bytes(json.dumps(bad).encode())
    ok = project.read_project_bytes(json.dumps({"format_version": 3, "ppq": 96, "fermatas": [192, 96, 96]}).encode())
    assert ok.fermatas == (480, 960)


# ---- MusicXML -------------------------------------------------------------------------------
def _music21_fermata_ticks(score) -> set[int]:
    from music21 import expressions

    return {int(round(float(n.getOffsetInHierarchy(score)) * Q)) for p in score.parts for n in p.flatten().notes
            if any(isinstance(e, expressions.Fermata) for e in n.expressions)}


def test_a_bach_chorale_brings_its_fermatas_in_at_their_notes_and_keeps_them_through_export(tmp_path):
    corpus = pytest.importorskip("music21.corpus")
    path = corpus.getWork("bach/bwv269")
    song = read_musicxml_file(path)
    # six phrases: a fermata over the last note of each, as music21 reads the same file
    assert song.fermatas == tuple(t * Q for t in (10, 19, 28, 40, 52, 61))
    assert set(song.fermatas) == _music21_fermata_ticks(corpus.parse("bach/bwv269"))
    for f in song.fermatas:  # every voice holds a note starting there
        assert all(any(n.start == f for n in t.notes) for t in song.tracks)
    out = tmp_path / "bwv269.musicxml"
    out.write_bytes(song_to_musicxml_bytes(song))
    assert out.read_text().count('<fermata type="upright"') == 4 * 6  # printed over the notes
    back = read_musicxml_file(out)
    assert back.fermatas == song.fermatas and back.notes_equal(song)


def test_a_fermata_written_on_the_tied_end_of_a_note_belongs_to_the_whole_note(tmp_path):
    xml = """<?xml version="1.0"?><score-partwise version="3.1"><part-list><score-part id="P1"><part-name>S</part-name>
    </score-part></part-list><part id="P1"><measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats>
    <beat-type>4</beat-type></time></attributes>
    <note><pitch><step>C</step><octave>5</octave></pitch><duration>2</duration><type>half</type></note>
    <note><pitch><step>D</step><octave>5</octave></pitch><duration>2</duration><tie type="start"/><type>half</type></note>
    </measure><measure number="2">
    <note><pitch><step>D</step><octave>5</octave></pitch><duration>2</duration><tie type="stop"/><type>half</type>
    <notations><fermata type="upright"/></notations></note>
    <note><rest/><duration>2</duration><type>half</type></note></measure></part></score-partwise>"""
    path = tmp_path / "tied.musicxml"
    path.write_text(xml)
    song = read_musicxml_file(path)
    assert song.tracks[0].notes == [Note(0, 72, 960), Note(960, 74, 1920)]
    assert song.fermatas == (960,)


def test_export_marks_only_the_notes_at_fermatas():
    from music21 import converter, expressions

    s = melody([3 * Q])
    score = converter.parseData(song_to_musicxml_bytes(s).decode(), format="musicxml")
    marked = [n for n in score.flatten().notes if any(isinstance(e, expressions.Fermata) for e in n.expressions)]
    assert [int(float(n.getOffsetInHierarchy(score)) * Q) for n in marked] == [3 * Q]


# ---- MIDI ---------------------------------------------------------------------------------
def test_midi_writes_fermatas_as_markers_and_reads_them_back():
    s = melody([3 * Q, 7 * Q])
    data = midi.song_to_midi_bytes(s)
    mf = mido.MidiFile(file=io.BytesIO(data))
    ticks, now = [], 0
    for msg in mf.tracks[0]:
        now += msg.time
        if msg.type == "marker":
            ticks.append((now, msg.text))
    assert ticks == [(3 * Q, "fermata"), (7 * Q, "fermata")]
    back = midi.read_midi_bytes(data)
    assert back.fermatas == s.fermatas and back.notes_equal(s)
    assert midi.read_midi_bytes(midi.song_to_midi_bytes(melody())).fermatas == ()


def test_midi_markers_from_elsewhere_rescaled_and_other_markers_ignored():
    mf = mido.MidiFile(type=0, ticks_per_beat=96)
    tr = mido.MidiTrack()
    tr += [mido.MetaMessage("marker", text="Verse", time=0), mido.Message("note_on", note=60, velocity=80, time=0),
           mido.MetaMessage("marker", text="Fermata", time=96), mido.Message("note_off", note=60, time=0),
           mido.Message("note_on", note=62, velocity=80, time=0), mido.Message("note_off", note=62, time=192)]
    mf.tracks.append(tr)
    buf = io.BytesIO()
    mf.save(file=buf)
    song = midi.read_midi_bytes(buf.getvalue())
    assert song.fermatas == (480,)


# ---- the harmonizer -------------------------------------------------------------------------
def test_phrase_marks_come_from_the_fermatas_when_the_song_has_them():
    from studio.ml.harmonizer import api
    from studio.ml.harmonizer import data as ch

    step = Q // 4
    line = [(i * 4, i * 4 + 4, p) for i, p in enumerate([67, 67, 69, 71, 72, 71, 69, 67])]
    guessed = api.phrase_marks(melody(), line, 0, 32, step)
    assert np.array_equal(guessed, ch.phrase_marks(line, 0, 32))  # no fermatas: today's guess
    assert (guessed[:28] == ch.FERMATA_UNKNOWN).all()
    marks = api.phrase_marks(melody([3 * Q]), line, 0, 32, step)
    assert (marks[12:16] == ch.FERMATA_YES).all()
    assert (marks[:12] == ch.FERMATA_NO).all() and (marks[16:28] == ch.FERMATA_NO).all()
    assert (marks[28:] == ch.FERMATA_LAST).all()
    # a fermata inside a held note marks the note
    assert (api.phrase_marks(melody([3 * Q + 240]), line, 0, 32, step)[12:16] == ch.FERMATA_YES).all()


def test_harmonize_hands_the_fermatas_to_the_network(monkeypatch):
    from studio.ml.harmonizer import api
    from studio.ml.harmonizer import data as ch

    seen = {}

    class Stop(Exception):
        pass

    def fake_fill(tokens, given, metric, beats, shift, params, seed, progress, device, weights, marks=None, **kw):
        seen["marks"] = marks
        raise Stop

    monkeypatch.setattr(api, "fill_grid", fake_fill)
    with pytest.raises(Stop):
        api.harmonize(melody([3 * Q]), seed=1, device="cpu")
    m = seen["marks"]
    assert (m[12:16] == ch.FERMATA_YES).all() and m[0] == ch.FERMATA_NO and m[-1] == ch.FERMATA_LAST
    with pytest.raises(Stop):
        api.harmonize(melody(), seed=1, device="cpu")
    assert (seen["marks"][:28] == ch.FERMATA_UNKNOWN).all()


def test_harmonized_song_keeps_the_melodys_fermatas_and_pickup():
    from studio.ml.harmonizer import api

    song = melody([3 * Q])
    song.pickup, song.composer = 480, "Melchior Vulpius"
    out = api._output_song(song, [[], [], [], []])
    assert out.fermatas == (3 * Q,)
    assert (out.pickup, out.composer) == (480, "Melchior Vulpius")  # the bar lines stay where the fermatas are


def test_a_phrase_that_ends_as_an_authentic_cadence_at_a_fermata_gets_its_v_i_bass(monkeypatch):
    from studio.ml.harmonizer import api
    from studio.ml.harmonizer import data as ch

    seen = {}

    class Stop(Exception):
        pass

    def fake_fill(tokens, given, *a, **kw):
        seen["tokens"], seen["given"] = tokens.copy(), given.copy()
        raise Stop

    monkeypatch.setattr(api, "fill_grid", fake_fill)
    pitches = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 65, 67, 69, 67, 65, 64, 62, 60]  # two phrases in C, D-C
    song = Song(title="C", tracks=[Track("Soprano", notes=[Note(i * Q, p, Q) for i, p in enumerate(pitches)])])

    def bass(fermatas):
        song.fermatas = tuple(fermatas)
        with pytest.raises(Stop):
            api.harmonize(song, seed=1, device="cpu")
        g, t = seen["given"][3], seen["tokens"][3]
        shift = ch.decode(int(seen["tokens"][0][0]))[0] - pitches[0]  # the grid's transposition
        return [(ch.decode(int(t[i * 4]))[0] - shift) % 12 if g[i * 4] else None for i in range(len(pitches))]

    plain = bass([])
    assert plain[7:9] == [None, None] and plain[-2:] != [None, None]  # the end only
    marked = bass([8 * Q])
    assert marked[7:9] == [7, 0] and marked[-2:] == plain[-2:]  # G - C under D - C at the fermata
    assert marked[:7] == [None] * 7 and marked[9:16] == [None] * 7
