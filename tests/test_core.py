import ast
import pathlib

import pytest

from studio.core import edits
from studio.core.song import KeySignature, Note, Song, TempoChange, TimeSignature, Track
from studio.core.timing import TempoMap, bar_of, bar_start, bars

CORE = pathlib.Path(__file__).resolve().parents[1] / "studio" / "core"


def test_core_imports_neither_qt_nor_torch():
    banned = {"PySide6", "torch", "PyQt5", "PyQt6", "shiboken6"}
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for n in names:
                assert n.split(".")[0] not in banned, f"{path.name} imports {n}"


def _song():
    s = Song(title="t")
    s.tracks.append(Track("Piano", notes=[Note(0, 60, 480), Note(480, 62, 480), Note(960, 64, 240, 100)]))
    return s


def test_edits_round_trip_through_undo():
    s = _song()
    orig = s.copy()
    changes = [
        edits.move(0, s.tracks[0].notes[:2], 240, 2),
    ]
    edits.apply(s, changes[0])
    c = edits.resize(0, s.tracks[0].notes[:1], 120)
    edits.apply(s, c)
    changes.append(c)
    c = edits.transpose(0, list(s.tracks[0].notes), -12)
    edits.apply(s, c)
    changes.append(c)
    c = edits.quantize(0, list(s.tracks[0].notes), 480)
    edits.apply(s, c)
    changes.append(c)
    c = edits.velocity_ramp(0, list(s.tracks[0].notes), 20, 120)
    edits.apply(s, c)
    changes.append(c)
    c = edits.delete(0, s.tracks[0].notes[:1])
    edits.apply(s, c)
    changes.append(c)
    assert not s.notes_equal(orig)
    for c in reversed(changes):
        edits.apply(s, c.inverted())
    assert s.notes_equal(orig)


def test_move_clamps_to_zero_and_keyboard():
    n = [Note(100, 126, 10)]
    c = edits.move(0, n, -500, 10)
    assert c.added[0].start == 0 and c.added[0].pitch == 127


def test_quantize_snaps_and_keeps_positive_length():
    c = edits.quantize(0, [Note(130, 60, 20), Note(470, 61, 500)], 120)
    assert [(n.start, n.duration) for n in c.added] == [(120, 120), (480, 480)]


def test_velocity_ramp_is_linear():
    notes = [Note(i * 480, 60, 480) for i in range(5)]
    c = edits.velocity_ramp(0, notes, 40, 120)
    assert [n.velocity for n in c.added] == [40, 60, 80, 100, 120]


def test_tempo_map_seconds_and_back():
    s = _song()
    s.tempos = [TempoChange(0, 120.0), TempoChange(960, 60.0)]
    tm = TempoMap(s)
    assert tm.seconds(480) == pytest.approx(0.5)
    assert tm.seconds(960) == pytest.approx(1.0)
    assert tm.seconds(1440) == pytest.approx(2.0)
    assert tm.tick(2.0) == pytest.approx(1440)


def test_bars_follow_meter_changes():
    s = _song()
    s.tracks[0].notes.append(Note(5000, 60, 100))
    s.time_signatures = [TimeSignature(0, 3, 4), TimeSignature(1440, 2, 4)]
    bs = bars(s)
    assert bs[0].length == 1440 and bs[1].start == 1440 and bs[1].length == 960
    assert bar_of(s, 1440 + 960 + 5) == 2
    assert bar_start(s, 2) == 2400


def test_key_signature_names():
    assert KeySignature.from_name("Am").name == "A minor"
    assert KeySignature.from_name("Bb").fifths == -2
    assert KeySignature.from_name("F# minor").fifths == 3
    assert KeySignature(0, 0).scale_pcs() == frozenset({0, 2, 4, 5, 7, 9, 11})
