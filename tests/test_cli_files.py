"""``studio info`` and ``studio convert``: output, every format pair, and clean failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from studio.io import load

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo.studio"


def run(capsys, *args):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_info_text(capsys):
    rc, out, err = run(capsys, "info", DEMO)
    assert rc == 0 and err == ""
    assert out.splitlines()[0] == "demo.studio: Chorale BWV 66.6 (J. S. Bach)"
    for want in ("10 bars", "0:32.5", "163 in 4 tracks", "72 bpm", "4/4", "F# minor",
                 "Soprano", "Choir Aahs", "Bass", "Church Organ"):
        assert want in out, want


def test_info_json(capsys):
    rc, out, _ = run(capsys, "info", DEMO, "--json")
    info = json.loads(out)
    assert rc == 0 and info["file"] == "demo.studio" and info["notes"] == 163 and info["bars"] == 10
    assert info["seconds"] == pytest.approx(32.5)
    assert [t["name"] for t in info["tracks"]] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert [t["notes"] for t in info["tracks"]] == [36, 42, 44, 41]
    assert info["tempos"] == [{"tick": 0, "bar": 1, "bpm": 72.0}]
    assert info["meters"][0]["meter"] == "4/4" and info["keys"][0]["key"] == "F# minor"


def test_info_lists_tempo_changes_with_bars(tmp_path, capsys):
    import music21

    k525 = Path(music21.__file__).parent / "omr" / "k525MIDIMvt1.mid"
    rc, out, _ = run(capsys, "info", k525, "--json")
    info = json.loads(out)
    assert rc == 0 and info["notes"] == 6398 and len(info["tracks"]) == 5 and len(info["tempos"]) > 10
    assert info["tempos"][1]["bar"] > 1


@pytest.mark.parametrize("ext", [".mid", ".midi", ".musicxml", ".xml", ".studio"])
def test_convert_demo_to_every_format(tmp_path, capsys, ext):
    out = tmp_path / f"demo{ext}"
    rc, stdout, err = run(capsys, "convert", DEMO, "-o", out)
    assert rc == 0 and err == "" and f"demo{ext}" in stdout
    back, demo = load(out), load(DEMO)
    assert [[(n.start, n.pitch, n.duration) for n in t.notes] for t in back.tracks] == \
           [[(n.start, n.pitch, n.duration) for n in t.notes] for t in demo.tracks]
    assert [t.name for t in back.tracks] == [t.name for t in demo.tracks]
    assert back.tempos == demo.tempos and back.key_signatures == demo.key_signatures
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"demo{ext}"]  # no temp files left


def test_convert_chain_mid_to_musicxml_to_studio(tmp_path, capsys):
    assert run(capsys, "convert", DEMO, "-o", tmp_path / "a.mid")[0] == 0
    assert run(capsys, "convert", tmp_path / "a.mid", "-o", tmp_path / "b.musicxml")[0] == 0
    assert run(capsys, "convert", tmp_path / "b.musicxml", "-o", tmp_path / "c.studio")[0] == 0
    assert load(tmp_path / "c.studio").notes_equal(load(DEMO))


@pytest.mark.parametrize("args,needle", [
    (["info", "missing.mid"], "missing.mid: no such file"),
    (["info", "song.wav"], "song.wav: unknown file type '.wav'"),
    (["info", "README"], "README: unknown file type '(no extension)'"),
    (["convert", "DEMO", "-o", "out.wav"], "out.wav: cannot write .wav"),
    (["convert", "DEMO", "-o", "OUTDIR/none/x.mid"], "x.mid: the folder"),
    (["convert", "missing.studio", "-o", "OUTDIR/x.mid"], "missing.studio: no such file"),
    (["convert", "DEMO"], "required: -o/--output"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    args = [str(DEMO) if a == "DEMO" else a.replace("OUTDIR", str(tmp_path)) for a in args]
    rc, out, err = run(capsys, *args)
    assert rc == 2 and out == ""
    assert err.startswith("studio: error: ") and err.count("\n") == 1 and needle in err, err
    assert list(tmp_path.iterdir()) == []


def test_failed_convert_leaves_existing_output_alone(tmp_path, capsys):
    target = tmp_path / "keep.mid"
    target.write_bytes(b"precious")
    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00")
    rc, _, err = run(capsys, "convert", broken, "-o", target)
    assert rc == 2 and "broken.mid:" in err
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mid", "keep.mid"]


def test_real_cli_in_a_subprocess(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "studio", "info", str(DEMO), "--json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and json.loads(p.stdout)["notes"] == 163
    p = subprocess.run([sys.executable, "-m", "studio", "convert", str(DEMO), "-o", str(tmp_path / "x.mid")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0 and (tmp_path / "x.mid").read_bytes()[:4] == b"MThd"


def test_info_lists_controllers_per_track_and_counts_bars_after_a_pickup(tmp_path, capsys):
    from studio.core.song import Control, Note, Song, TimeSignature, Track
    from studio.io import save

    notes = [Note(0, 67, 480)] + [Note(480 + i * 480, 60, 480) for i in range(7)]  # a pickup, a 4/4 bar, a 3/4 bar
    pedal = [Control(480, 64, 127), Control(1400, 64, 0), Control(1440, 64, 127), Control(2300, 64, 0)]
    bends = [Control(480 + i * 10, 128, i * 100) for i in range(5)]
    song = Song(title="Up", tracks=[Track("Piano", 0, 0, notes=notes, controls=pedal + bends + [Control(0, 91, 40)]),
                                    Track("Flute", 73, 1, notes=[Note(480, 72, 960)])],
                time_signatures=[TimeSignature(0, 4, 4), TimeSignature(2400, 3, 4)], pickup=480)
    path = tmp_path / "up.studio"
    save(song, path)
    rc, out, _ = run(capsys, "info", path)
    lines = out.splitlines()
    assert rc == 0 and "  length  2 bars after a pickup, " in out and "3/4 (bar 2)" in out
    piano = next(i for i, line in enumerate(lines) if "Piano" in line)
    assert lines[piano + 1].split() == ["controllers", "Sustain", "(CC", "64)", "4,", "CC", "91", "1,", "Pitch", "bend", "5"]
    assert "controllers" not in lines[piano + 2]  # the flute has none
    rc, out, _ = run(capsys, "info", path, "--json")
    info = json.loads(out)
    assert info["bars"] == 2 and info["pickup"] is True and info["meters"][1]["bar"] == 2
    assert info["tracks"][0]["controllers"] == [{"number": 64, "name": "Sustain", "count": 4},
                                                {"number": 91, "name": "CC 91", "count": 1},
                                                {"number": 128, "name": "Pitch bend", "count": 5}]
    assert info["tracks"][1]["controllers"] == []
