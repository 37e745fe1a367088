"""Files a tolerant player plays: each is a C major scale with one defect of the kinds real
files have (stray system real-time/common bytes inside a track, a missing last byte, running
status resumed after a SysEx).  The reader recovers the eight notes, says what it repaired in
one ``studio: warning:`` line, and the command line exits 0.  Files past repair stay refused
(see test_malformed_midi.py).

The files are made here byte by byte, in the manner of a MIDI conformance suite.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from studio.core.errors import FileFormatError, FileWarning
from studio.core.song import Note
from studio.io import midi

ROOT = Path(__file__).resolve().parents[1]
SCALE = (60, 62, 64, 65, 67, 69, 71, 72)
WANT = [Note(i * 480, p, 480, 100) for i, p in enumerate(SCALE)]
EOT = b"\x00\xff\x2f\x00"


def smf(body: bytes, fmt: int = 0, length: int | None = None) -> bytes:
    head = b"MThd" + struct.pack(">IHHH", 6, fmt, 1, 480)
    return head + b"MTrk" + struct.pack(">I", len(body) if length is None else length) + body


def scale_events(running: bool = False) -> list[bytes]:
    """One event per list item: note-on, note-off, ... (with running status when asked)."""
    out = []
    for i, p in enumerate(SCALE):
        on = bytes([0x90, p, 100]) if not (running and i) else bytes([p, 100])
        out += [b"\x00" + on, b"\x83\x60" + (bytes([p, 0]) if running else bytes([0x80, p, 0]))]
    return out


def with_strays(strays: bytes, where: str) -> bytes:
    """The scale with stray system bytes: before an event's status ('status'), between its
    data bytes ('data', real-time bytes only, as a cable can interleave them)."""
    ev = scale_events()
    if where == "status":
        ev[2] = ev[2][:1] + strays + ev[2][1:]  # after the delta time of the second note-on
    else:
        ev[4] = ev[4][:2] + strays + ev[4][2:]  # between the status and pitch of the third
    return smf(b"".join(ev) + EOT)


def as_events(statuses: list[int]) -> bytes:
    """The scale after system messages written as events of their own (a delta time, the
    status, its data bytes), the way a sequencer recording a cable writes them."""
    data = {0xF1: b"\x7f", 0xF2: b"\x7f\x7f", 0xF3: b"\x7f"}
    strays = b"".join(b"\x00" + bytes([b]) + data.get(b, b"") for b in statuses)
    return smf(b"\x00\xff\x01\x05Scale" + strays + b"".join(scale_events()) + EOT)


def cases() -> dict[str, tuple[bytes, str]]:
    """name -> (file bytes, words the warning must hold)."""
    out: dict[str, tuple[bytes, str]] = {}
    for b in (0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE):
        out[f"stray_{b:02x}_before_status"] = (with_strays(bytes([b]), "status"), "skipped 1 undefined status byte in track 1")
    out["three_strays_before_status"] = (with_strays(b"\xf4\xf5\xfd", "status"), "skipped 3 undefined status bytes in track 1")
    out["realtime_between_data_bytes"] = (with_strays(b"\xf8", "data"), "skipped 1 undefined status byte in track 1")
    for b in (0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE):
        out[f"stray_{b:02x}_as_an_event"] = (as_events([b]), "skipped 1 undefined status byte in track 1")
    out["thirteen_strays_as_events"] = (as_events(list(range(0xF1, 0xF7)) + list(range(0xF8, 0xFF))),
                                        "skipped 13 undefined status bytes in track 1")
    ev = scale_events(running=True)
    ev[3] = ev[3][:2] + b"\xfe" + ev[3][2:]  # between a delta time and running-status data
    out["realtime_before_running_status_data"] = (smf(b"".join(ev) + EOT), "skipped 1 undefined status byte in track 1")
    whole = smf(b"".join(scale_events()) + EOT)
    out["missing_last_byte"] = (whole[:-1], "track 1 ends 1 byte short of its length")
    ev = scale_events(running=True)
    sysex = b"\x00\xf0\x05\x7e\x7f\x09\x01\xf7"  # GM System On, between two running-status notes
    out["running_status_after_sysex"] = (smf(b"".join(ev[:4]) + sysex + b"".join(ev[4:]) + EOT),
                                         "resumed running status after a SysEx")
    return out


@pytest.mark.parametrize("name", sorted(cases()))
def test_tolerant_reader_recovers_the_scale_and_says_so(name):
    data, words = cases()[name]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        song = midi.read_midi_bytes(data, f"{name}.mid")
    assert [n for t in song.tracks for n in t.notes] == WANT
    lines = [str(w.message) for w in seen if issubclass(w.category, FileWarning)]
    assert len(lines) == 1 and lines[0].startswith(f"{name}.mid: ") and words in lines[0], lines


def test_a_missing_last_byte_of_the_end_of_track_loses_nothing():
    said: list[str] = []
    song = midi.read_midi_bytes(cases()["missing_last_byte"][0], "x.mid", repairs=said)
    assert said == ["track 1 ends 1 byte short of its length"] and song.tracks[0].notes == WANT


def test_format_2_patterns_play_one_after_another():
    """A format 2 file holds independent patterns: a player plays them in turn, not at once."""
    head = b"MThd" + struct.pack(">IHHH", 6, 2, 2, 480)
    one = b"".join(scale_events()) + EOT
    two = b"\x00\x90\x30\x64\x87\x40\x80\x30\x00" + b"\x83\x60\xff\x2f\x00"  # a half note, a quarter's rest
    data = head + b"MTrk" + struct.pack(">I", len(one)) + one + b"MTrk" + struct.pack(">I", len(two)) + two
    song = midi.read_midi_bytes(data, "patterns.mid")
    assert [n for t in song.tracks for n in t.notes] == WANT + [Note(8 * 480, 48, 960, 100)]
    fmt1 = data[:8] + struct.pack(">H", 1) + data[10:]
    assert midi.read_midi_bytes(fmt1, "together.mid").tracks[1].notes == [Note(0, 48, 960, 100)]


def test_clean_file_reads_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        song = midi.read_midi_bytes(smf(b"".join(scale_events()) + EOT), "clean.mid")
    assert song.tracks[0].notes == WANT


def test_repairs_can_be_collected_instead_of_warned():
    said: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        midi.read_midi_bytes(cases()["three_strays_before_status"][0], "x.mid", repairs=said)
    assert said == ["skipped 3 undefined status bytes in track 1"]


def test_past_repair_is_still_refused():
    whole = smf(b"".join(scale_events()) + EOT)
    for data in (whole[:-5], smf(b"\x00\xf8\x3c\x40" + EOT), smf(b"\x00\x90\x3c")):
        with pytest.raises(FileFormatError):
            midi.read_midi_bytes(data, "bad.mid")


def test_command_line_warns_in_one_line_and_exits_zero(tmp_path):
    for name in ("three_strays_before_status", "missing_last_byte", "running_status_after_sysex"):
        path = tmp_path / f"{name}.mid"
        path.write_bytes(cases()[name][0])
        r = subprocess.run([sys.executable, "-m", "studio", "info", str(path)], capture_output=True, text=True,
                           cwd=ROOT, timeout=120)
        assert r.returncode == 0, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"studio: warning: {name}.mid: "), r.stderr
        assert "8 in 1 track" in r.stdout
    path = tmp_path / "three.mid"
    path.write_bytes(cases()["three_strays_before_status"][0])
    r = subprocess.run([sys.executable, "-m", "studio", "info", str(path)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.stderr.strip() == "studio: warning: three.mid: skipped 3 undefined status bytes in track 1"
    bad = tmp_path / "cut.mid"
    bad.write_bytes(smf(b"".join(scale_events()) + EOT)[:-5])
    r = subprocess.run([sys.executable, "-m", "studio", "info", str(bad)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("studio: error: cut.mid: ") and len(r.stderr.splitlines()) == 1


def test_the_editor_opens_a_repaired_file_and_says_so(editor_window, tmp_path):
    pytest.importorskip("PySide6")
    win = editor_window()
    path = tmp_path / "strays.mid"
    path.write_bytes(cases()["three_strays_before_status"][0])
    assert win.open_path(str(path), ask=False)
    assert win.doc.song.tracks[0].notes == WANT
    assert win.statusBar().currentMessage() == "strays.mid: skipped 3 undefined status bytes in track 1"
    win.doc.mark_saved()
