"""The .studio project file: round trip, migrations, refusals, crash safety, and the demo song.

Run this file as a script to (re)write ``resources/demo.studio``::

    .venv/bin/python tests/test_io_project.py
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.errors import FileFormatError
from studio.core.song import PITCH_BEND, SUSTAIN, Control, KeySignature, Note, Song, TempoChange, TimeSignature, Track
from studio.io import load, project, save

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resources" / "demo.studio"


def sample_song(n_notes: int = 40) -> Song:
    return Song(
        title="Études – 1",
        tracks=[
            Track("Lead", 73, 0, notes=[Note(i * 120, 60 + i % 24, 110, 50 + i % 70) for i in range(n_notes)],
                  color="#e0a030", mute=True),
            Track("Kit", 0, 9, is_drum=True, notes=[Note(0, 36, 60)], solo=True),
            Track("Empty", 19, 2),
        ],
        tempos=[TempoChange(0, 72.5), TempoChange(960, 90.0)],
        time_signatures=[TimeSignature(0, 7, 8)],
        key_signatures=[KeySignature(0, -2, True)],
        meta={"history": [{"kind": "harmonize", "seed": 3}], "view": {"zoom": 1.5}},
    )


def test_round_trip_keeps_everything(tmp_path):
    song = sample_song()
    path = tmp_path / "a.studio"
    save(song, path)
    back = load(path)
    assert back == song  # dataclass equality: title, maps, tracks (color/mute/solo), meta
    doc = json.loads(path.read_text("utf-8"))
    assert doc["format_version"] == project.FORMAT_VERSION == 3


def test_save_keeps_a_backup_of_the_previous_version(tmp_path):
    path = tmp_path / "b.studio"
    first, second = sample_song(10), sample_song(20)
    save(first, path)
    assert not (tmp_path / "b.studio.bak").exists()
    save(second, path)
    assert load(path) == second
    assert project.read_project_bytes((tmp_path / "b.studio.bak").read_bytes()) == first


def test_old_version_zero_document_is_migrated(tmp_path):
    v0 = {  # what an early build wrote: no format_version, one bpm, notes as dicts
        "title": "Old tune",
        "bpm": 100,
        "meter": "3/4",
        "tracks": [{"name": "Melody", "program": 40, "notes": [{"start": 0, "pitch": 67, "dur": 480, "vel": 90},
                                                               {"start": 480, "pitch": 69, "dur": 960}]}],
    }
    path = tmp_path / "old.studio"
    path.write_text(json.dumps(v0))
    song = load(path)
    assert song.title == "Old tune" and song.tempos == [TempoChange(0, 100.0)]
    assert song.time_signatures == [TimeSignature(0, 3, 4)]
    assert song.tracks[0].program == 40 and song.tracks[0].notes == [Note(0, 67, 480, 90), Note(480, 69, 960, 80)]
    # saving writes the current version
    save(song, path)
    assert json.loads(path.read_text())["format_version"] == project.FORMAT_VERSION


def test_migration_chain_runs_every_step_in_order(monkeypatch):
    seen = []

    def v3_to_v4(doc):
        seen.append(doc["format_version"])
        return {**doc, "format_version": 4, "title": doc["title"] + " (v4)"}

    monkeypatch.setattr(project, "FORMAT_VERSION", 4)
    monkeypatch.setitem(project.MIGRATIONS, 3, v3_to_v4)
    doc = project.migrate({"format_version": 0, "title": "x", "bpm": 60, "tracks": []})
    assert seen == [3] and doc["format_version"] == 4 and doc["title"] == "x (v4)"
    assert doc["pickup"] == 0 and doc["composer"] == "" and doc["fermatas"] == []


def test_version_one_document_is_migrated_to_controllers(tmp_path):
    """A project from before controllers opens with General MIDI's defaults and no events."""
    v1 = {"format_version": 1, "app": "cantor-studio", "title": "Before pedals", "ppq": 480,
          "tempos": [[0, 90.0]], "time_signatures": [[0, 3, 4]], "key_signatures": [[0, -1, False]],
          "tracks": [{"name": "Piano", "program": 0, "channel": 0, "is_drum": False, "color": "", "mute": False,
                      "solo": False, "notes": [[0, 60, 480, 90]]}], "meta": {"k": 1}}
    path = tmp_path / "v1.studio"
    path.write_text(json.dumps(v1))
    song = load(path)
    t = song.tracks[0]
    assert (t.volume, t.pan, t.controls, song.composer, song.pickup) == (100, 64, [], "", 0)
    assert t.notes == [Note(0, 60, 480, 90)] and song.meta == {"k": 1}
    save(song, path)
    doc = json.loads(path.read_text())
    assert doc["format_version"] == project.FORMAT_VERSION and doc["tracks"][0]["controls"] == [] and doc["tracks"][0]["volume"] == 100


def test_controllers_composer_and_pickup_round_trip(tmp_path):
    song = sample_song()
    song.composer, song.pickup = "Clara Schumann", 480
    t = song.tracks[0]
    t.volume, t.pan = 90, 20
    # a pedal change at one tick (up, then down again) keeps its order; a bend below centre
    t.controls = [Control(0, SUSTAIN, 127), Control(960, SUSTAIN, 0), Control(960, SUSTAIN, 127),
                  Control(1000, PITCH_BEND, -4096), Control(1200, 11, 70)]
    path = tmp_path / "c.studio"
    save(song, path)
    back = load(path)
    assert back == song
    assert [c.value for c in back.tracks[0].controls_of(SUSTAIN)] == [127, 0, 127]


@pytest.mark.parametrize("controls, words", [
    ([[0, 129, 0]], "outside 0..128"),
    ([[0, 64, 128]], "outside 0..127"),
    ([[0, 128, 9000]], "outside -8192..8191"),
    ([[0, 64]], "[tick, number, value] expected"),
])
def test_bad_controllers_are_refused(tmp_path, controls, words):
    doc = project.song_to_doc(sample_song())
    doc["tracks"][0]["controls"] = controls
    path = tmp_path / "bad.studio"
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=re.escape(words)):
        load(path)


def test_newer_version_is_refused_clearly(tmp_path):
    doc = project.song_to_doc(sample_song())
    doc["format_version"] = project.FORMAT_VERSION + 1
    path = tmp_path / "future.studio"
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError, match=r"^future\.studio: written by a newer Cantor Studio .*format 4.*Update"):
        load(path)


@pytest.mark.parametrize("text,problem", [
    ("", "empty file"),
    ("{not json", "JSON error at line 1"),
    ("[1, 2]", "not a Cantor Studio project"),
    ('{"hello": 1}', "not a Cantor Studio project"),
    ('{"format_version": "one"}', "not a version number"),
    ('{"format_version": 1, "tracks": [{"notes": [[0, 200, 10, 80]]}]}', r"tracks\[0\]\.notes\[0\]: 200 is outside 0..127"),
    ('{"format_version": 1, "tracks": [{"notes": [[0, 60, 0, 80]]}]}', "outside 1.."),
    ('{"format_version": 1, "tracks": [{"notes": [[0, 60]]}]}', r"\[start, pitch, duration, velocity\] expected"),
    ('{"format_version": 1, "tempos": [[0, -5]]}', "bpm in 1..1000"),
    ('{"format_version": 1, "tracks": 7}', "a list was expected"),
    ('{"format_version": 1, "meta": []}', "meta: an object"),
    ('{"format_version": 1, "title": 5}', "title: text"),
    ('{"format_version": 1, "tracks": [{"notes": [[0, 60, 999999999999, 80]]}]}', "tick limit"),
    ('{"format_version": 1, "tempos": [[1e300, 60]]}', "outside 0.."),
    ('{"format_version": 1, "tempos": [[NaN, 60]]}', "not a whole number"),
])
def test_bad_documents_are_refused_with_one_line(tmp_path, text, problem):
    path = tmp_path / "bad.studio"
    path.write_text(text)
    with pytest.raises(FileFormatError, match=problem) as info:
        load(path)
    assert str(info.value).startswith("bad.studio: ") and "\n" not in str(info.value) and len(str(info.value)) < 200


def test_binary_and_deeply_nested_input(tmp_path):
    path = tmp_path / "bin.studio"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FileFormatError, match="not UTF-8"):
        load(path)
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FileFormatError):
        load(path)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(["format_version", "title", "ppq", "tempos", "time_signatures", "key_signatures", "tracks", "meta"])


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=8), st.booleans())
def test_fuzz_documents_load_or_fail_cleanly(doc, with_version):
    if with_version:
        doc["format_version"] = 1
    data = json.dumps(doc).encode()
    try:
        song = project.read_project_bytes(data, "fuzz.studio")
    except FileFormatError as exc:
        assert str(exc).startswith("fuzz.studio: ") and "\n" not in str(exc)
        return
    assert project.read_project_bytes(project.project_to_bytes(song)) == song


def test_meta_that_json_cannot_hold(tmp_path):
    song = sample_song()
    song.meta = {"bad": float("nan")}
    with pytest.raises(FileFormatError, match="^x.studio: cannot save"):
        save(song, tmp_path / "x.studio")
    (tmp_path / "y.studio").write_text('{"format_version": 1, "meta": {"a": NaN}}')
    with pytest.raises(FileFormatError, match="meta: holds NaN"):
        load(tmp_path / "y.studio")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["y.studio"]


def test_other_resolution_is_rescaled():
    doc = project.song_to_doc(Song(tracks=[Track("t", notes=[Note(96, 60, 48)])], tempos=[TempoChange(96, 60)]))
    doc["ppq"] = 96
    song = project.doc_to_song(doc)
    assert song.tracks[0].notes == [Note(480, 60, 240)] and song.tempos[0] == TempoChange(480, 60.0)


def test_crash_inside_the_writer_leaves_the_old_file(tmp_path):
    path = tmp_path / "c.studio"
    old = sample_song(10)
    save(old, path)
    before = path.read_bytes()
    big = sample_song(20_000)  # several chunks

    def crash(written):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        project.write_project(big, path, _chunk_hook=crash)
    assert path.read_bytes() == before and load(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.studio"]  # no temp file, no .bak yet


_KILLED_WRITER = r"""
import sys, time
from pathlib import Path
from studio.io import project
sys.path.insert(0, sys.argv[3])
from test_io_project import sample_song

def hook(written):
    Path(sys.argv[2]).write_text(str(written))  # tell the parent we are mid-write
    time.sleep(60)

project.write_project(sample_song(20_000), sys.argv[1], _chunk_hook=hook)
"""


def test_killed_process_mid_save_leaves_the_old_file(tmp_path):
    path = tmp_path / "k.studio"
    old = sample_song(10)
    save(old, path)
    before = path.read_bytes()
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path), str(marker), str(ROOT / "tests")], env=env)
    try:
        deadline = time.time() + 30
        while not marker.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert marker.exists(), "the writer never started"
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        assert partial and partial[0].stat().st_size > 0  # half a file exists, beside the real one
    finally:
        proc.kill()
        proc.wait()
    assert path.read_bytes() == before and load(path) == old


def test_saved_files_get_normal_permissions(tmp_path):
    path = tmp_path / "p.studio"
    save(sample_song(), path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's private 0600
    os.chmod(path, 0o640)
    save(sample_song(), path)
    assert path.stat().st_mode & 0o777 == 0o640  # an existing file keeps its mode


# ---- the demo song -------------------------------------------------------------------------
def build_demo_song() -> Song:
    """Bach's chorale BWV 66.6 from the music21 corpus as a four-voice choir with organ bass."""
    from music21 import corpus

    from studio.io.musicxml import song_from_music21

    song = song_from_music21(corpus.parse("bach/bwv66.6"))
    song.title = "Chorale BWV 66.6 (J. S. Bach)"
    voices = [  # name, GM program, colour, velocity
        ("Soprano", 52, "#e8a33d", 92),
        ("Alto", 53, "#d0604f", 76),
        ("Tenor", 53, "#4f9bd0", 76),
        ("Bass", 19, "#6fbf73", 84),
    ]
    assert len(song.tracks) == 4
    for ch, (track, (name, program, color, vel)) in enumerate(zip(song.tracks, voices)):
        track.name, track.program, track.channel, track.color = name, program, ch, color
        track.notes = [Note(n.start, n.pitch, n.duration, vel) for n in track.notes]
    song.tempos = [TempoChange(0, 72.0)]
    song.meta = {"source": "music21 corpus: bach/bwv66.6", "about": "A four-part chorale to try Harmonize and Vary on."}
    return song


def test_demo_file_is_the_chorale():
    demo = load(DEMO)
    assert demo == build_demo_song()
    assert [t.name for t in demo.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert demo.key_signatures[0].name == "F# minor" and str(demo.time_signatures[0]) == "4/4"
    assert 150 < demo.note_count < 200


if __name__ == "__main__":
    save(build_demo_song(), DEMO)
    DEMO.with_name(DEMO.name + ".bak").unlink(missing_ok=True)  # the repository keeps the history
    print(f"wrote {DEMO}")
