"""The grid voice-leading figures the sampler uses agree with studio.core.voiceleading."""

import numpy as np
import pytest

from studio.core import voiceleading as vl
from studio.ml.harmonizer import data as ch
from studio.ml.harmonizer import eval as he
from studio.ml.harmonizer import vlgrid
from studio.ml.harmonizer.sample import fix_holds

NAMES = ["bach/bwv66.6", "bach/bwv269", "bach/bwv153.1"]


@pytest.fixture(scope="module")
def chorales():
    from music21 import corpus

    return [ch.chorale_from_score(corpus.parse(n), n) for n in NAMES]


def _both(grid, c, shift=0):
    beats = he.beat_ticks(c)
    ref = vl.measure(he.chorale_parts(grid, shift), 480, beats)
    got = vlgrid.analyse(grid, np.array([b // 120 for b in beats]), shift)
    return ref, got


def test_counts_match_on_bach(chorales):
    for c in chorales:
        ref, got = _both(c.voices, c)
        assert ref == got


def test_counts_match_on_damaged_grids(chorales):
    rng = np.random.default_rng(0)
    for r in range(60):
        c = chorales[r % len(chorales)]
        noise = rng.integers(0, ch.VOCAB, c.voices.shape)
        t = np.where(rng.random(c.voices.shape) < 0.3, noise, c.voices)
        t = fix_holds(t)
        ref, got = _both(t, c, shift=r % 5 - 2)
        assert ref == got
        assert vlgrid.penalty_of(got) == pytest.approx(vl.penalty(he.chorale_parts(t, r % 5 - 2), 480,
                                                                  he.beat_ticks(c)), rel=1e-9) or ref["out_of_range"]


def test_faults_point_at_the_parallels():
    # soprano C5-D5 over bass C3-D3: parallel octaves between steps 0 and 4
    g = np.zeros((4, 8), dtype=np.int64)
    for v, (p0, p1) in enumerate([(72, 74), (64, 65), (55, 53), (48, 50)]):
        g[v, 0], g[v, 1:4] = ch.encode(p0, True), ch.encode(p0, False)
        g[v, 4], g[v, 5:8] = ch.encode(p1, True), ch.encode(p1, False)
    counts, faults = vlgrid.analyse(g, np.array([0, 4]), want_faults=True)
    assert counts["parallels"] == 1
    par = [f for f in faults if f.kind == "parallel"]
    assert par and par[0].voices == (0, 3) and (par[0].start, par[0].end) == (0, 4)
    assert vlgrid.note_span(g[0], 0, 4) == (0, 4)
    assert vlgrid.note_span(g[0], 2, 5) == (0, 8)


def test_tertian_table_is_the_voiceleading_rule():
    for m in range(4096):
        assert vlgrid._TERTIAN[m] == vl.is_tertian([pc for pc in range(12) if m >> pc & 1]), m
