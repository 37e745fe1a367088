"""MIDI import and export: pairing, repairs, resolution, maps, channels, and real files."""

from __future__ import annotations

import glob
import io
import os
import struct

import mido
import music21
import pytest

from studio.core.errors import FileFormatError
from studio.core.song import KeySignature, Note, Song, TempoChange, TimeSignature, Track
from studio.core.timing import song_seconds
from studio.io import load, midi, save

M21 = os.path.dirname(music21.__file__)
REAL_FILES = sorted(glob.glob(os.path.join(M21, "midi", "testPrimitive", "*.mid"))) + [
    os.path.join(M21, "omr", "k525MIDIMvt1.mid")
]


def smf(tracks: list[bytes], fmt: int = 1, division: int = 480) -> bytes:
    out = b"MThd" + struct.pack(">IHHH", 6, fmt, len(tracks), division)
    for body in tracks:
        body += b"\x00\xff\x2f\x00"
        out += b"MTrk" + struct.pack(">I", len(body)) + body
    return out


def ev(delta: int, *data: int) -> bytes:
    return midi._vlq(delta) + bytes(data)


# ---- pairing and repairs ---------------------------------------------------------------
def test_overlapping_same_pitch_pairs_first_in_first_out():
    body = ev(0, 0x90, 60, 100) + ev(240, 0x90, 60, 90) + ev(240, 0x80, 60, 0) + ev(240, 0x80, 60, 0)
    song = midi.read_midi_bytes(smf([body]), "o.mid")
    assert song.tracks[0].notes == [Note(0, 60, 480, 100), Note(240, 60, 480, 90)]


def test_overlapping_same_pitch_notes_survive_a_round_trip():
    # overlapping, back-to-back and simultaneous notes of one pitch
    notes = [Note(0, 60, 960), Note(480, 60, 960), Note(1440, 60, 480), Note(1920, 60, 480), Note(1920, 60, 960)]
    song = Song(tracks=[Track("t", notes=sorted(notes))])
    back = midi.read_midi_bytes(midi.song_to_midi_bytes(song), "rt.mid")
    assert back.tracks[0].notes == sorted(notes)
    # a note nested inside a longer one: MIDI cannot say which off belongs to which on, but
    # every onset and every release stays where it was
    nested = [Note(0, 60, 960), Note(240, 60, 240)]
    back = midi.read_midi_bytes(midi.song_to_midi_bytes(Song(tracks=[Track("t", notes=nested)])), "n.mid")
    assert sorted(n.start for n in back.tracks[0].notes) == [0, 240]
    assert sorted(n.end for n in back.tracks[0].notes) == [480, 960]


def test_note_on_velocity_zero_is_note_off_and_running_status():
    body = ev(0, 0x90, 60, 80) + ev(480, 60, 0) + ev(0, 62, 70) + ev(480, 62, 0)  # running status
    song = midi.read_midi_bytes(smf([body]), "rs.mid")
    assert song.tracks[0].notes == [Note(0, 60, 480, 80), Note(480, 62, 480, 70)]


def test_zero_length_and_unclosed_notes_are_repaired():
    body = ev(0, 0x90, 60, 80) + ev(0, 0x80, 60, 0) + ev(0, 0x90, 64, 80) + ev(960, 0xFF, 0x01, 0)
    song = midi.read_midi_bytes(smf([body]), "z.mid")
    assert song.tracks[0].notes == [Note(0, 60, midi.REPAIR_TICKS, 80), Note(0, 64, 960, 80)]


def test_stray_note_offs_are_ignored():
    body = ev(0, 0x80, 61, 0) + ev(0, 0x90, 60, 80) + ev(480, 0x80, 60, 0) + ev(0, 0x80, 60, 0)
    assert midi.read_midi_bytes(smf([body]), "s.mid").tracks[0].notes == [Note(0, 60, 480, 80)]


# ---- resolution ----------------------------------------------------------------------
@pytest.mark.parametrize("division,start,dur,want_start,want_dur", [
    (96, 96, 48, 480, 240),  # exact multiple
    (384, 384 * 3 + 1, 96, 1441, 120),  # 1.25x, rounded
    (960, 960, 1, 480, 1),  # half a tick rounds up
    (1000, 1000, 333, 480, 160),
])
def test_ticks_rescale_to_480_by_rounding(division, start, dur, want_start, want_dur):
    body = ev(start, 0x90, 60, 80) + ev(dur, 0x80, 60, 0)
    n = midi.read_midi_bytes(smf([body], division=division), "r.mid").tracks[0].notes[0]
    assert (n.start, n.duration) == (want_start, want_dur)


def test_smpte_division_keeps_seconds():
    division = ((256 - 25) << 8) | 40  # 25 fps x 40 ticks = 1000 ticks per second
    body = ev(1000, 0x90, 60, 80) + ev(500, 0x80, 60, 0)
    song = midi.read_midi_bytes(smf([body], division=division), "smpte.mid")
    assert song.tempos == [TempoChange(0, 120.0)]
    assert song.tracks[0].notes == [Note(960, 60, 480, 80)]  # 1 s and 0.5 s at 120 bpm


# ---- maps, programs, channels ------------------------------------------------------------
def rich_song() -> Song:
    return Song(
        title="Maps – ünïcode",
        tracks=[
            Track("Flute", 73, 0, notes=[Note(0, 72, 480, 90), Note(1920, 74, 960, 60)]),
            Track("Cello", 42, 0, notes=[Note(0, 48, 1920, 70)]),  # same channel, another program
            Track("Drums", 0, 9, is_drum=True, notes=[Note(0, 36, 120), Note(480, 38, 120)]),
        ],
        tempos=[TempoChange(0, 96.0), TempoChange(1920, 132.5)],
        time_signatures=[TimeSignature(0, 3, 4), TimeSignature(1440, 6, 8)],
        key_signatures=[KeySignature(0, -3, True), KeySignature(1440, 2, False)],
    )


def test_maps_programs_and_drums_round_trip():
    song = rich_song()
    back = midi.read_midi_bytes(midi.song_to_midi_bytes(song), "maps.mid")
    assert back.title == song.title
    assert back.tempos == song.tempos and back.time_signatures == song.time_signatures
    assert back.key_signatures == song.key_signatures
    assert [(t.name, t.program, t.is_drum) for t in back.tracks] == [(t.name, t.program, t.is_drum) for t in song.tracks]
    assert back.notes_equal(song)
    chans = [t.channel for t in back.tracks]
    assert chans[2] == 9 and chans[0] != chans[1] and 9 not in chans[:2]


def test_drums_on_channel_ten_and_type0_split_by_channel():
    body = ev(0, 0xC0, 40) + ev(0, 0xC9, 0) + ev(0, 0x90, 60, 80) + ev(0, 0x99, 36, 100) + ev(480, 0x80, 60, 0) + ev(0, 0x89, 36, 0)
    song = midi.read_midi_bytes(smf([body], fmt=0), "t0.mid")
    assert [(t.channel, t.program, t.is_drum, len(t.notes)) for t in song.tracks] == [(0, 40, False, 1), (9, 0, True, 1)]


def test_programs_set_in_another_track_are_found():
    conductor = ev(0, 0xC2, 71) + ev(0, 0xC3, 33)
    notes = ev(0, 0x92, 60, 80) + ev(480, 0x82, 60, 0)
    own = ev(0, 0xC3, 40) + ev(0, 0x93, 50, 80) + ev(480, 0x83, 50, 0)
    song = midi.read_midi_bytes(smf([conductor, notes, own]), "p.mid")
    assert [t.program for t in song.tracks] == [71, 40]  # the track's own change wins


def test_mido_and_pretty_midi_read_what_we_write():
    pretty_midi = pytest.importorskip("pretty_midi")
    song = rich_song()
    data = midi.song_to_midi_bytes(song)
    mf = mido.MidiFile(file=io.BytesIO(data))
    assert mf.type == 1 and mf.ticks_per_beat == 480 and len(mf.tracks) == 1 + len(song.tracks)
    ons = [m for t in mf.tracks for m in t if m.type == "note_on" and m.velocity > 0]
    assert len(ons) == song.note_count
    tempos = [m.tempo for m in mf.tracks[0] if m.type == "set_tempo"]
    assert tempos == [625000, mido.bpm2tempo(132.5)]
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert sum(len(i.notes) for i in pm.instruments) == song.note_count
    assert any(i.is_drum for i in pm.instruments)
    assert pm.get_end_time() == pytest.approx(4 * 60 / 96 + 2 * 60 / 132.5, abs=1e-3)
    assert song_seconds(song) == pytest.approx(pm.get_end_time(), abs=1e-3)


def test_length_cap(monkeypatch):
    monkeypatch.setattr(midi, "MAX_SECONDS", 10.0)
    body = ev(0, 0x90, 60, 80) + ev(480 * 30, 0x80, 60, 0)  # 15 s at 120 bpm
    with pytest.raises(FileFormatError, match="hour limit"):
        midi.read_midi_bytes(smf([body]), "long.mid")


def test_failed_write_leaves_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.mid"
    save(rich_song(), path)
    before = path.read_bytes()

    def boom(song):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(midi, "song_to_midi_bytes", boom)
    with pytest.raises(RuntimeError):
        midi.write_midi(rich_song(), path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["keep.mid"]


# ---- real files --------------------------------------------------------------------------
def _notes(song):
    return sorted((n.pitch, n.start, n.duration) for t in song.tracks for n in t.notes)


@pytest.mark.parametrize("path", REAL_FILES, ids=os.path.basename)
@pytest.mark.parametrize("ext", [".mid", ".studio"])
def test_real_files_round_trip_exactly(path, ext, tmp_path):
    song = load(path)
    assert song.note_count > 0
    out = tmp_path / f"rt{ext}"
    save(song, out)
    back = load(out)
    assert _notes(back) == _notes(song)
    assert back.tempos == song.tempos and back.time_signatures == song.time_signatures
    assert [t.program for t in back.tracks] == [t.program for t in song.tracks]


def test_reader_agrees_with_mido_on_real_files():
    """Our strict reader and mido count the same sounding notes in every shipped file."""
    for path in REAL_FILES:
        mf = mido.MidiFile(path)
        ons = sum(1 for t in mf.tracks for m in t if m.type == "note_on" and m.velocity > 0)
        assert load(path).note_count == ons, os.path.basename(path)


# ---- controllers, composer, pickups ----------------------------------------------------
def pedal_file() -> bytes:
    """A piano part with the sustain pedal down over two notes, expression and a pitch bend,
    as a sequencer writes it (volume and pan at the start, pedal changes between notes)."""
    body = (b"\x00\xb0\x07\x5a" b"\x00\xb0\x0a\x20"  # volume 90, pan 32 at tick 0
            b"\x00\xb0\x40\x7f"  # pedal down
            b"\x00\x90\x3c\x50" b"\x83\x60\x80\x3c\x00"  # C4, a quarter
            b"\x00\x90\x40\x50" b"\x83\x60\x80\x40\x00"  # E4
            b"\x00\xb0\x40\x00" b"\x00\xb0\x40\x7f"  # pedal lifted and pressed again at one tick
            b"\x00\xb0\x0b\x46"  # expression 70
            b"\x00\xe0\x00\x30"  # pitch bend: 0x30 << 7 = 6144 - 8192 = -2048
            b"\x00\x90\x43\x50" b"\x83\x60\x80\x43\x00"
            b"\x81\x70\xb0\x40\x00")  # pedal up a dotted quarter later
    return smf([body])


def test_controllers_are_read_in_order_with_volume_and_pan():
    from studio.core.song import PITCH_BEND, SUSTAIN

    song = midi.read_midi_bytes(pedal_file(), "pedal.mid")
    t = song.tracks[0]
    assert (t.volume, t.pan) == (90, 32)
    assert [(c.tick, c.value) for c in t.controls_of(SUSTAIN)] == [(0, 127), (960, 0), (960, 127), (1680, 0)]
    assert [(c.tick, c.value) for c in t.controls_of(PITCH_BEND)] == [(960, -2048)]
    assert [(c.tick, c.value) for c in t.controls_of(11)] == [(960, 70)]


def test_controllers_survive_mid_studio_mid(tmp_path):
    """A pedalled file through .mid -> .studio -> .mid keeps every controller event."""
    src = tmp_path / "pedal.mid"
    src.write_bytes(pedal_file())
    first = load(src)
    save(first, tmp_path / "p.studio")
    save(load(tmp_path / "p.studio"), tmp_path / "back.mid")
    back = load(tmp_path / "back.mid")
    assert back.tracks[0].controls == first.tracks[0].controls and back.tracks[0].notes == first.tracks[0].notes
    assert (back.tracks[0].volume, back.tracks[0].pan) == (90, 32)
    msgs = [m for m in mido.MidiFile(tmp_path / "back.mid").tracks[1] if m.type == "control_change" and m.control == 64]
    assert [m.value for m in msgs] == [127, 0, 127, 0]


def test_pedal_comes_before_a_note_at_the_same_tick():
    from studio.core.song import SUSTAIN, Control

    song = Song(tracks=[Track("P", notes=[Note(0, 60, 480), Note(480, 62, 480)],
                              controls=[Control(480, SUSTAIN, 127), Control(960, SUSTAIN, 0)])])
    msgs = [m for m in mido.MidiFile(file=io.BytesIO(midi.song_to_midi_bytes(song))).tracks[1] if not m.is_meta]
    kinds = [(m.type, getattr(m, "note", getattr(m, "control", None))) for m in msgs]
    assert kinds.index(("control_change", 64)) < kinds.index(("note_on", 62))
    assert kinds.index(("note_off", 60)) < kinds.index(("control_change", 64))


def test_composer_and_pickup_round_trip():
    song = Song(title="Minuet", composer="J. S. Bach", pickup=480, time_signatures=[TimeSignature(0, 3, 4)],
                tracks=[Track("Keys", notes=[Note(0, 67, 480), Note(480, 72, 480), Note(960, 74, 480)])])
    data = midi.song_to_midi_bytes(song)
    metas = [m for m in mido.MidiFile(file=io.BytesIO(data)).tracks[0] if m.type == "time_signature"]
    assert [(m.time, m.numerator, m.denominator) for m in metas] == [(0, 1, 4), (480, 3, 4)]
    back = midi.read_midi_bytes(data, "m.mid")
    assert (back.title, back.composer, back.pickup) == ("Minuet", "J. S. Bach", 480)
    assert back.time_signatures == [TimeSignature(0, 3, 4)]
    from studio.core.timing import bars

    assert [b.start for b in bars(back, until=2000)] == [0, 480, 1920]
