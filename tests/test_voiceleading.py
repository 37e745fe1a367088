"""Voice-leading checks (studio.core.voiceleading): pure Python, no torch, no Qt."""

import subprocess
import sys

from studio.core import voiceleading as vl
from studio.core.song import Note

Q = 480  # a quarter note at PPQ 480


def line(*pitches, dur=Q, start=0):
    return [Note(start + i * dur, p, dur) for i, p in enumerate(pitches)]


def satb(s, a, t, b):
    return [line(*s), line(*a), line(*t), line(*b)]


def kinds(issues):
    return [i.kind for i in issues]


def test_parallel_fifths_found_with_voices_and_tick():
    parts = satb((72, 74), (65, 67), (57, 55), (41, 47))  # S/A: F-C up to G-D
    issues = [i for i in vl.check(parts, key=(0, False)) if i.kind.startswith("parallel")]
    assert [(i.kind, i.voices, i.tick, i.end) for i in issues] == [("parallel_fifths", (0, 1), 0, Q)]


def test_parallel_octaves_outer_voices_and_not_contrary_or_oblique():
    parallel = satb((72, 74), (67, 67), (64, 62), (48, 50))  # S and B move up in octaves
    assert [(i.kind, i.voices) for i in vl.check(parallel) if i.kind.startswith("parallel")] == [("parallel_octaves", (0, 3))]
    contrary = satb((72, 74), (67, 67), (64, 62), (60, 50))  # octave to octave in contrary motion
    assert not [i for i in vl.check(contrary) if i.kind.startswith("parallel")]
    oblique = satb((72, 72), (65, 67), (60, 60), (48, 48))
    assert not [i for i in vl.check(oblique) if i.kind.startswith("parallel")]


def test_crossing_and_spacing_are_merged_spans():
    parts = satb((67, 67, 67), (69, 69, 64), (60, 60, 60), (48, 48, 48))  # alto above soprano for 2 beats
    cross = [i for i in vl.check(parts) if i.kind == "crossing"]
    assert [(i.tick, i.end, i.voices) for i in cross] == [(0, 2 * Q, (0, 1))]
    wide = satb((79, 79), (65, 72), (60, 60), (40, 40))  # S-A 14 semitones on beat 1; T-B wide is fine
    sp = [i for i in vl.check(wide) if i.kind == "spacing"]
    assert [(i.tick, i.end, i.voices) for i in sp] == [(0, Q, (0, 1))]


def test_range_and_message():
    parts = satb((72,), (67,), (60,), (30,))
    rng = [i for i in vl.check(parts) if i.kind == "range"]
    assert len(rng) == 1 and rng[0].voices == (3,) and "bass" in rng[0].message


def test_tertian():
    assert vl.is_tertian([60, 64, 67, 72])
    assert vl.is_tertian([67, 71, 74, 65])  # G7
    assert vl.is_tertian([60, 64, 70])  # C7 without its fifth
    assert vl.is_tertian([62, 65])  # part of D minor
    assert not vl.is_tertian([60, 62, 64])
    assert not vl.is_tertian([60, 61, 67])
    assert vl.is_tertian([64, 67, 70, 62])  # E G Bb D: half-diminished seventh
    assert not vl.is_tertian([60, 64, 65, 67])  # C E F G


def test_unresolved_leading_tone_in_soprano():
    bad = satb((71, 69), (67, 64), (62, 60), (43, 48))  # B -> A over G -> C
    good = satb((71, 72), (67, 64), (62, 60), (43, 48))
    assert "leading_tone" in kinds(vl.check(bad, key=(0, False)))
    assert "leading_tone" not in kinds(vl.check(good, key=(0, False)))


def test_non_tertian_beat_and_measure_rates():
    parts = satb((72, 74), (65, 67), (57, 55), (41, 47))
    m = vl.measure(parts, beats=[0, Q])
    assert m["notes"] == 8 and m["parallels"] == 1 and m["beats"] == 2 and m["tertian_beats"] == 2
    r = vl.rates(m)
    assert r["parallels_per_1000_notes"] == 125.0 and r["tertian_pct"] == 100.0
    cluster = satb((64,), (62,), (60,), (48,))
    assert "non_tertian" in kinds(vl.check(cluster))
    assert vl.penalty(cluster) > vl.penalty(satb((72,), (67,), (64,), (48,)))


def test_key_estimate_and_unsorted_input():
    c_major = [line(60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60)]
    assert vl.estimate_key(c_major) == (0, False)
    parts = satb((72, 74), (65, 67), (57, 55), (41, 47))
    shuffled = [list(reversed(p)) for p in parts]
    assert vl.check(shuffled) == vl.check(parts)


def test_core_module_imports_no_torch_or_qt():
    code = "import sys, studio.core.voiceleading; assert not {'torch', 'PySide6'} & set(sys.modules), sys.modules.keys()"
    subprocess.run([sys.executable, "-c", code], check=True)
