"""The in-process harmonize API and `studio harmonize`, with a tiny untrained model (and the
shipped weights, when they are committed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.core.errors import Cancelled, StudioError
from studio.core.song import Note, Song, TimeSignature, Track
from studio.ml import checkpoint
from studio.ml.harmonizer import api
from studio.ml.harmonizer import model as hz

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "models" / "harmonizer"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    cfg = hz.Config(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, max_len=32)
    root = tmp_path_factory.mktemp("models")
    checkpoint.save(hz.Harmonizer(cfg), cfg, root / "harmonizer", {"steps": 0})
    return root / "harmonizer"


def melody_song(meter=(4, 4), start=0, pitches=(67, 69, 71, 72, 74, 72, 71, 69, 67, 66, 67), dur=480, off_grid=0):
    notes, t = [], start
    for i, p in enumerate(pitches):
        notes.append(Note(t + (off_grid if i == 3 else 0), p, dur))
        t += dur
    return Song(title="m", tracks=[Track(name="Melody", notes=notes)], time_signatures=[TimeSignature(0, *meter)])


def test_soprano_exact_four_tracks_and_progress(tiny):
    song = melody_song(meter=(3, 4), start=960)  # a one-beat pickup in 3/4
    seen = []
    out = api.harmonize(song, seed=1, weights=tiny, steps=3, candidates=2, progress=lambda f: seen.append(f) or True)
    assert [t.name for t in out.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert out.tracks[0].notes == song.tracks[0].notes
    assert all(t.program == api.CHOIR_PROGRAM for t in out.tracks)
    assert len({t.channel for t in out.tracks}) == 4
    assert len(seen) >= 4 and seen == sorted(seen) and seen[-1] == 1.0
    assert out.time_signatures == song.time_signatures
    end = song.tracks[0].end_tick
    for t in out.tracks[1:]:
        assert all(960 <= n.start and n.end <= end and n.duration > 0 for n in t.notes)
    again = api.harmonize(song, seed=1, weights=tiny, steps=3, candidates=2)
    assert again.notes_equal(out)  # a seed reproduces a take


def test_cancel_raises(tiny):
    with pytest.raises(Cancelled):
        api.harmonize(melody_song(), weights=tiny, steps=4, progress=lambda f: f < 0.4)


def test_bad_inputs(tiny):
    with pytest.raises(StudioError, match="no notes"):
        api.harmonize(Song(tracks=[Track()]), weights=tiny)
    chord = Song(tracks=[Track(notes=[Note(0, 60, 480), Note(0, 64, 480)])])
    with pytest.raises(StudioError, match="several notes at once"):
        api.harmonize(chord, weights=tiny)
    overlap = Song(tracks=[Track(notes=[Note(0, 60, 960), Note(240, 64, 960)])])
    with pytest.raises(StudioError, match="overlapping"):
        api.harmonize(overlap, weights=tiny)
    with pytest.raises(StudioError, match="no track 5"):
        api.harmonize(melody_song(), melody_track=4, weights=tiny)
    huge = Song(tracks=[Track(notes=[Note(0, 60, 480), Note(480 * 4 * 100_000, 62, 480)])])
    with pytest.raises(StudioError, match="at most"):
        api.harmonize(huge, weights=tiny)
    with pytest.raises(StudioError, match="keep"):
        api.harmonize(melody_song(), keep=("alto",), weights=tiny)
    with pytest.raises(StudioError, match="bass"):
        api.harmonize(melody_song(), keep=("soprano", "bass"), weights=tiny)


def test_off_grid_warns_and_far_key_transposes_back(tiny):
    warnings = []
    song = melody_song(pitches=(40, 42, 44, 45, 47, 45, 44, 42, 40), off_grid=37)  # very low and off the grid
    out = api.harmonize(song, weights=tiny, steps=2, candidates=1, warn=warnings.append, seed=0)
    assert warnings and "quantized" in warnings[0]
    assert out.tracks[0].notes == song.tracks[0].notes
    assert api.choose_shift([40, 47]) > 12 and api.choose_shift([65, 72]) == 0


@pytest.fixture(scope="module")
def tiny_patch(tmp_path_factory):
    torch.manual_seed(0)
    cfg = hz.Config(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, max_len=32, arch="patch", max_dist=4)
    root = tmp_path_factory.mktemp("models")
    checkpoint.save(hz.build(cfg.__dict__), cfg, root / "harmonizer", {"steps": 0})
    return root / "harmonizer"


@pytest.mark.parametrize("low", [True, False], ids=["two-octaves-low", "midi-96-108"])
def test_far_off_melody_is_harmonized_in_full_around_it(tiny_patch, low):
    """A melody octaves away from a soprano's range: four full voices written around it (the
    others keep their spacing under it), with a warning; never empty voices."""
    pitches = (40, 42, 44, 45, 47, 45, 44, 42, 40) if low else (96, 98, 100, 101, 103, 105, 107, 108, 103, 100)
    warnings = []
    song = melody_song(pitches=pitches)
    out = api.harmonize(song, weights=tiny_patch, steps=3, candidates=2, warn=warnings.append, seed=0)
    assert out.tracks[0].notes == song.tracks[0].notes
    assert any("octave" in w for w in warnings)
    end = song.tracks[0].end_tick
    for t in out.tracks[1:]:
        covered = sum(n.duration for n in t.notes)
        assert covered >= 0.9 * end, t.name  # the voice sounds under the whole melody
        assert all(0 <= n.pitch <= 127 for n in t.notes)
    means = [sum(n.pitch for n in t.notes) / len(t.notes) for t in out.tracks]
    assert means[0] > means[3]
    assert abs(means[0] - means[3]) < 36  # written around the melody, not in the usual ranges far away


def test_final_cadence_is_written_where_the_melody_asks_for_it():
    import numpy as np

    from studio.ml.harmonizer import data as ch

    line = [(0, 4, 64), (4, 8, 65), (8, 12, 67), (12, 16, 64), (16, 20, 62), (20, 28, 60)]  # E F G E D C in C
    tokens, given = np.zeros((4, 28), dtype=np.int64), np.zeros((4, 28), dtype=bool)
    assert api.final_cadence(line, 0, 0, tokens, given)
    bass = ch.token_pitch(tokens[3])
    assert given[3, 16:28].all() and not given[3, :16].any()
    assert bass[16] % 12 == 7 and bass[20] % 12 == 0 and (bass[20:] == bass[20]).all()
    assert ch.token_onset(tokens[3])[[16, 20]].all() and 36 <= bass.max() <= 60
    # ending on the second degree (a half cadence) or after a rest: the network decides
    tokens, given = np.zeros((4, 28), dtype=np.int64), np.zeros((4, 28), dtype=bool)
    assert not api.final_cadence(line[:-2] + [(16, 20, 60), (20, 28, 62)], 0, 0, tokens, given)
    assert not api.final_cadence(line[:-1] + [(22, 28, 60)], 0, 0, tokens, given) and not given.any()


def test_voice_ranges_follow_a_melody_only_by_whole_octaves_beyond_one():
    # a melody within an octave of a soprano's range: the other voices stay in their own ranges
    assert api.range_shift(10) == 10 and api.range_shift(-7) == -7 and api.range_shift(0) == 0
    # octaves away: the voices move along with it by whole octaves
    assert api.range_shift(14) == 2 and api.range_shift(22) == -2 and api.range_shift(-30) == -6


def test_pickup_melody_on_the_patch_network(tiny_patch):
    song = melody_song(meter=(3, 4), start=960 + 240)  # an eighth-note pickup in 3/4
    out = api.harmonize(song, weights=tiny_patch, steps=2, candidates=1, seed=0)
    for t in out.tracks[1:]:
        assert t.notes and min(n.start for n in t.notes) >= 1200  # nothing before the melody starts
        assert max(n.end for n in t.notes) <= song.tracks[0].end_tick


def test_keep_soprano_and_bass(tiny):
    song = melody_song()
    bass = Track(name="Bass", notes=[Note(i * 960, p, 960) for i, p in enumerate((43, 48, 50, 43, 47, 43))])
    song.tracks.append(bass)
    out = api.harmonize(song, keep=("soprano", "bass"), weights=tiny, steps=2, candidates=1, seed=0)
    assert out.tracks[0].notes == song.tracks[0].notes and out.tracks[3].notes == bass.notes


def test_regenerate_one_voice_in_a_span(tiny):
    song = api.harmonize(melody_song(), weights=tiny, steps=2, candidates=1, seed=0)
    out = api.regenerate(song, "alto", 960, 2880, weights=tiny, steps=2, candidates=1, seed=5)
    for v in (0, 2, 3):
        assert out.tracks[v].notes == song.tracks[v].notes
    before = [n for n in song.tracks[1].notes if n.end <= 960 or n.start >= 2880]
    after = [n for n in out.tracks[1].notes if n.end <= 960 or n.start >= 2880]
    crossing = {n for n in song.tracks[1].notes if n.start < 960 < n.end}
    for n in before:  # kept, or (ending where the span starts) held on into it by the new alto
        assert n in after or n in crossing or (n.end == 960 and any(
            m.start == n.start and m.pitch == n.pitch and m.end > n.end for m in out.tracks[1].notes)), n
    with pytest.raises(StudioError):
        api.regenerate(song, "viola", weights=tiny)


def test_meter_arrays_3_2_and_pickup():
    song = melody_song(meter=(3, 2))
    pos, bar, beat = api.meter_arrays(song, 0, 30)
    assert bar[0] == 24 and beat[0] == 8 and pos[25] == 1
    pos, bar, beat = api.meter_arrays(melody_song(meter=(6, 8)), 0, 13)
    assert bar[0] == 12 and beat[0] == 6 and pos[12] == 0


def test_cli_harmonize_and_bad_input(tiny, tmp_path):
    from studio import io

    src = tmp_path / "m.mid"
    io.save(melody_song(), src)
    env = dict(os.environ, STUDIO_MODELS=str(tiny.parent))
    out = tmp_path / "o.mid"
    r = subprocess.run([sys.executable, "-m", "studio", "harmonize", str(src), "-o", str(out), "--seed", "3",
                        "--candidates", "1"], capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    back = io.load(out)
    assert [t.name for t in back.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    r = subprocess.run([sys.executable, "-m", "studio", "harmonize", str(src), "-o", str(out), "--melody-track", "9"],
                       capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 2 and r.stderr.startswith("studio: error: m.mid:") and "Traceback" not in r.stderr


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="harmonizer weights not committed yet")
def test_shipped_weights_answer_sensibly():
    song = melody_song(pitches=(67, 67, 69, 71, 72, 71, 69, 67, 69, 71, 67, 66, 67, 67))
    out = api.harmonize(song, seed=0, weights=SHIPPED, candidates=2)
    assert out.tracks[0].notes == song.tracks[0].notes
    from studio.core import voiceleading as vl

    parts = [t.notes for t in out.tracks]
    assert all(len(p) >= 4 for p in parts)
    m = vl.rates(vl.measure(parts))
    assert m["out_of_range_pct"] <= 5 and m["crossing_pct"] <= 15 and m["tertian_pct"] >= 60
    # the voices are stacked: average pitch falls from soprano to bass
    means = [sum(n.pitch for n in p) / len(p) for p in parts]
    assert means == sorted(means, reverse=True)
