"""One set of limits for every reader and writer: what the app writes it reads back, and a song
past a limit is refused (one line, nothing written) by every format alike, never capped."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.cli import main
from studio.core.errors import FileFormatError
from studio.core.song import PPQ, Note, Song, TempoChange, Track
from studio.io import limits, load, midi, musicxml, musicxml_read, project, save


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _parts_xml(n: int) -> bytes:
    """A MusicXML score of ``n`` parts, one whole note each."""
    plist = "".join(f'<score-part id="P{i}"><part-name>V{i}</part-name></score-part>' for i in range(n))
    parts = "".join(
        f'<part id="P{i}"><measure number="1"><attributes><divisions>1</divisions><time><beats>4</beats>'
        f'<beat-type>4</beat-type></time></attributes><note><pitch><step>C</step><octave>4</octave></pitch>'
        f'<duration>4</duration><type>whole</type></note></measure></part>' for i in range(n))
    return (f'<?xml version="1.0" encoding="UTF-8"?><score-partwise version="3.1"><part-list>{plist}</part-list>'
            f'{parts}</score-partwise>').encode()


def test_the_formats_share_the_limits():
    assert project.MAX_TRACKS == limits.MAX_TRACKS and midi.MAX_TRACKS == limits.MAX_TRACKS + 1  # + conductor
    assert project.MAX_TICKS == musicxml.MAX_TICKS == limits.MAX_TICKS == PPQ * midi.MAX_QUARTERS
    assert project.MAX_NOTES == musicxml.MAX_NOTES == limits.MAX_EVENTS
    assert midi.MAX_SECONDS == limits.MAX_SECONDS
    assert musicxml_read.MAX_TRACKS == limits.MAX_TRACKS and musicxml_read.MAX_BEATS == limits.MAX_BEATS
    assert musicxml_read.MAX_TICKS == limits.MAX_TICKS and musicxml_read.MAX_BYTES == musicxml.MAX_BYTES


def _midi(tempo_us: int = 500_000, meter=(4, 4)) -> bytes:
    import io

    import mido

    mf = mido.MidiFile(type=1)
    t = mido.MidiTrack()
    mf.tracks.append(t)
    t.append(mido.MetaMessage("set_tempo", tempo=tempo_us))
    t.append(mido.MetaMessage("time_signature", numerator=meter[0], denominator=meter[1]))
    t.append(mido.Message("note_on", note=60, velocity=80, time=0))
    t.append(mido.Message("note_off", note=60, velocity=0, time=480))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


@pytest.mark.parametrize("tempo_us,meter,problem", [
    (1, (4, 4), "a tempo of 6e+07 bpm at quarter note 0, outside 1..1000 bpm"),
    (500_000, (100, 4), "a meter of 100/4 at quarter note 0: at most 64 beats"),
])
def test_midi_maps_a_project_could_not_hold_are_refused(tmp_path, tempo_us, meter, problem):
    """A MIDI file may say 1 microsecond per quarter or 100/4; a project cannot hold either,
    so such a file is refused on reading rather than converted into a project that will not open."""
    (tmp_path / "odd.mid").write_bytes(_midi(tempo_us, meter))
    with pytest.raises(FileFormatError, match=rf"^odd\.mid: {re.escape(problem)}"):
        load(tmp_path / "odd.mid")
    (tmp_path / "fine.mid").write_bytes(_midi(0xFFFFFF, (3, 64)))  # 3.6 bpm in 3/64: within both
    song = load(tmp_path / "fine.mid")
    save(song, tmp_path / "fine.studio")
    assert load(tmp_path / "fine.studio").time_signatures == song.time_signatures


def test_300_part_musicxml_is_refused_on_reading(tmp_path, capsys):
    src = tmp_path / "wide.musicxml"
    src.write_bytes(_parts_xml(300))
    for out in ("wide.studio", "wide.mid"):
        assert main(["convert", str(src), "-o", str(tmp_path / out)]) == 2
        err = capsys.readouterr().err
        assert err == "studio: error: wide.musicxml: more than 256 parts (limit)\n"
    assert _files(tmp_path) == ["wide.musicxml"]


def test_256_tracks_write_and_read_back_257_are_refused_by_every_writer(tmp_path):
    wide = Song(tracks=[Track(f"T{i}", program=i % 128, notes=[Note(i * 10, 60, 100)]) for i in range(256)])
    for name in ("w.studio", "w.mid"):
        save(wide, tmp_path / name)
        back = load(tmp_path / name)
        assert len(back.tracks) == 256 and back.note_count == 256
    wider = wide.copy()
    wider.tracks.append(Track("one more", notes=[Note(0, 60, 100)]))
    for name in ("x.studio", "x.mid", "x.musicxml"):
        with pytest.raises(FileFormatError, match=rf"^{name}: 257 tracks, more than the limit of 256$"):
            save(wider, tmp_path / name)
    assert not [n for n in _files(tmp_path) if n.startswith("x")]


def test_a_song_longer_than_six_hours_is_never_written(tmp_path):
    # 20 bpm: 7,000 quarter notes take 5.8 hours; a note at 7,300 ends past 6
    slow = Song(tempos=[TempoChange(0, 20.0)], tracks=[Track("A", notes=[Note(0, 60, 480), Note(7300 * PPQ, 62, PPQ)])])
    for name in ("s.studio", "s.mid", "s.musicxml"):
        with pytest.raises(FileFormatError, match=rf"^{name}: 6\.1 hours long, more than the 6 hour limit$"):
            save(slow, tmp_path / name)
    assert _files(tmp_path) == []
    # nor read: a project file that says so by hand is refused like the MIDI file would be
    doc = project.song_to_doc(slow)
    (tmp_path / "hand.studio").write_bytes(project.json.dumps(doc).encode())
    with pytest.raises(FileFormatError, match=r"^hand\.studio: 6\.1 hours long"):
        load(tmp_path / "hand.studio")


def test_too_many_tempo_changes_count_as_events(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_EVENTS", 50)
    song = Song(tempos=[TempoChange(i * 10, 100.0 + i % 7) for i in range(45)], tracks=[Track("A", notes=[Note(0, 60, 10)] * 6)])
    with pytest.raises(FileFormatError, match="53 notes, controller events and tempo, meter and key changes, more than the limit of 50"):
        save(song, tmp_path / "t.studio")


def test_midi_writer_holds_its_bytes_to_the_readers_caps(tmp_path, monkeypatch):
    song = Song(tracks=[Track("A", notes=[Note(i * 60, 60 + i % 12, 50) for i in range(300)])])
    monkeypatch.setattr(midi, "MAX_EVENTS", 500)  # 600 note events: refused before building them
    with pytest.raises(FileFormatError, match=r"^m\.mid: 6\d\d MIDI events, more than the limit of 500 for MIDI files; nothing was written$"):
        save(song, tmp_path / "m.mid")
    monkeypatch.setattr(midi, "MAX_EVENTS", 10_000)
    monkeypatch.setattr(midi, "MAX_BYTES", 1000)
    with pytest.raises(FileFormatError, match=r"^m\.mid: would be 0\.\d MB, more than the 0 MB limit for MIDI files"):
        save(song, tmp_path / "m.mid")
    monkeypatch.setattr(midi, "MAX_BYTES", 8 * limits.MIB)
    monkeypatch.setattr(midi, "MAX_TRACKS", 1)  # the reader's scan runs on the written bytes
    with pytest.raises(FileFormatError, match=r"^m\.mid: would not read back \(2 tracks is more than the limit of 1\)"):
        save(song, tmp_path / "m.mid")
    assert _files(tmp_path) == []


def test_project_writer_holds_its_bytes_to_the_readers_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(project, "MAX_BYTES", 500)
    song = Song(tracks=[Track("A", notes=[Note(i * 60, 60, 50) for i in range(100)])])
    with pytest.raises(FileFormatError, match=r"^p\.studio: would be 0\.0 MB, more than the 0 MB limit for projects"):
        save(song, tmp_path / "p.studio")
    assert _files(tmp_path) == []


_songs = st.builds(
    lambda bpm, starts, length, ntracks: Song(
        tempos=[TempoChange(0, bpm)],
        tracks=[Track(f"T{k}", notes=[Note(s, 60 + k, length) for s in starts]) for k in range(ntracks)]),
    st.floats(1.0, 1000.0).map(lambda b: round(b, 3)),
    st.lists(st.integers(0, limits.MAX_TICKS + PPQ), min_size=1, max_size=4),
    st.integers(1, 10 * PPQ),
    st.integers(1, 3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_songs, st.sampled_from(["f.studio", "f.mid"]))
def test_whatever_is_written_reads_back(tmp_path, song, name):
    path = tmp_path / name
    path.unlink(missing_ok=True)
    try:
        save(song, path)
    except FileFormatError as exc:
        assert limits.song_problem(song) is not None and str(exc).startswith(f"{name}: ")
        assert not path.exists()
        return
    assert limits.song_problem(song) is None
    back = load(path)
    assert back.note_count == song.note_count


def test_continue_from_a_bar_far_past_the_end_is_refused(tmp_path, capsys):
    """``continue --from-bar 9999`` would have padded the song with empty bars past the 6-hour
    limit (a MIDI file the app then refuses); now it is refused before any model runs."""
    src = tmp_path / "short.mid"
    save(Song(tracks=[Track("A", notes=[Note(i * 480, 60 + i, 480) for i in range(8)])]), src)  # 2 bars
    rc = main(["continue", str(src), "-o", str(tmp_path / "out.mid"), "--from-bar", "9999"])
    err = capsys.readouterr().err
    assert rc == 2 and err == "studio: error: --from-bar 9999: short.mid has 2 bars; continue from bar 1 to 3\n"
    assert _files(tmp_path) == ["short.mid"]
    # the limit itself: what a continuation that far out would have made is refused by every writer
    far = Song(tempos=[TempoChange(0, 40.0)], tracks=[Track("A", notes=[Note(9998 * 4 * PPQ, 60, 4 * PPQ)])])
    with pytest.raises(FileFormatError, match=r"^far\.mid: 16\.7 hours long, more than the 6 hour limit$"):
        save(far, tmp_path / "far.mid")
