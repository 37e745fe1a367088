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
    assert warnings and "quantized" in warnings[0] and "bass range" in warnings[1]
    assert out.tracks[3].notes == song.tracks[0].notes
    assert api.choose_shift([40, 47]) > 12 and api.choose_shift([65, 72]) == 0


@pytest.fixture(scope="module")
def tiny_patch(tmp_path_factory):
    torch.manual_seed(0)
    cfg = hz.Config(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, max_len=32, arch="patch", max_dist=4)
    root = tmp_path_factory.mktemp("models")
    checkpoint.save(hz.build(cfg.__dict__), cfg, root / "harmonizer", {"steps": 0})
    return root / "harmonizer"


LOW_TUNE = (48, 50, 52, 53, 55, 57, 55, 53, 52, 50, 52, 48, 55, 53, 52, 50, 48)  # C3-A3: a tenor's tune


@pytest.mark.parametrize("pitches, voice", [(LOW_TUNE, 2), ((40, 42, 44, 45, 47, 45, 44, 42, 40), 3)],
                         ids=["tenor-range", "bass-range"])
def test_a_low_melody_is_harmonized_as_the_voice_it_lies_in(tiny_patch, pitches, voice):
    """A melody in a tenor's (or a bass's) range stays at its pitch as that voice, every written
    voice in its own range and sounding under the whole melody, and the user is told so."""
    from studio.core import satb

    warnings = []
    song = melody_song(pitches=pitches)
    out = api.harmonize(song, weights=tiny_patch, steps=3, candidates=2, warn=warnings.append, seed=0)
    assert [t.name for t in out.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert out.tracks[voice].notes == song.tracks[0].notes
    name = satb.VOICES[voice]
    assert warnings == [f"{satb.place_melody(pitches).note}"] and f"in the {name} range" in warnings[0]
    assert f"as the {name}" in warnings[0]
    end = song.tracks[0].end_tick
    for v, t in enumerate(out.tracks):
        if v == voice:
            continue
        lo, hi = satb.SATB_RANGE[satb.VOICES[v]]
        assert all(lo <= n.pitch <= hi for n in t.notes), t.name
        assert sum(n.duration for n in t.notes) >= 0.9 * end, t.name  # no empty voice
    means = [sum(n.pitch for n in t.notes) / len(t.notes) for t in out.tracks]
    assert means[0] > means[3]


@pytest.mark.parametrize("pitches, words", [((96, 98, 100, 101, 103, 105, 107, 108), "above every voice's range"),
                                            ((24, 26, 28, 29, 31, 29, 28), "below every voice's range")])
def test_a_melody_beyond_every_voice_is_an_error_in_words(tiny_patch, pitches, words):
    with pytest.raises(StudioError, match=words):
        api.harmonize(melody_song(pitches=pitches), weights=tiny_patch, steps=2, candidates=1, seed=0)


def test_which_voice_a_melody_is():
    from studio.core import satb

    def voice(lo, hi):
        return satb.place_melody(range(lo, hi + 1)).voice

    assert voice(60, 72) == 0 and voice(57, 69) == 0 and voice(76, 88) == 0  # a soprano's, a little low or high
    assert voice(52, 65) == 2 and voice(48, 62) == 2 and voice(48, 67) == 2  # a tenor's (Erk's low tunes)
    assert voice(40, 47) == 3 and voice(45, 57) == 3  # a bass's
    assert satb.place_melody([64, 65, 67]).note == ""  # the soprano goes without saying
    assert satb.place_melody([48, 55]).note == "the melody (C3–G3) lies in the tenor range; harmonized with it as the tenor"
    for lo, hi in ((84, 96), (28, 36)):
        with pytest.raises(StudioError, match="every voice's range"):
            satb.place_melody(range(lo, hi + 1))


def test_a_bass_melody_cannot_keep_another_bass(tiny):
    song = melody_song(pitches=(40, 42, 44, 45, 47))
    song.tracks.append(Track(name="Bass", notes=[Note(0, 36, 960)]))
    with pytest.raises(StudioError, match="lies in the bass range: no other bass can be kept under it"):
        api.harmonize(song, keep=("soprano", "bass"), weights=tiny)


def test_the_assistant_anchors_a_low_melody_to_its_voice():
    from studio.ui.assistant import requests as rq

    song = melody_song(pitches=LOW_TUNE)
    plan = rq.harmonize_plan(rq.Context(song, 0), False, None, None, 1, None)
    assert plan.anchor == {2: 0}  # the take's Tenor is the user's melody track
    assert "lies in the tenor range; harmonized with it as the tenor" in plan.where
    assert plan.where.endswith("writes soprano, alto and bass")
    plan = rq.harmonize_plan(rq.Context(melody_song(), 0), True, None, None, 1, None)
    assert plan.anchor == {0: 0} and plan.where == "melody: Melody; writes alto and tenor"


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


def test_final_cadence_lies_under_a_tenor_melody():
    import numpy as np

    from studio.ml.harmonizer import data as ch

    line = [(0, 4, 52), (4, 8, 53), (8, 12, 55), (12, 16, 52), (16, 20, 50), (20, 28, 48)]  # E3 F G E D C3
    tokens, given = np.zeros((4, 28), dtype=np.int64), np.zeros((4, 28), dtype=bool)
    assert api.final_cadence(line, 0, 2, tokens, given)  # the grid 2 semitones above the output
    bass = ch.token_pitch(tokens[3]) - 2
    assert (bass[16], bass[20]) == (43, 36)  # G2 - C2, below the tenor's D3 - C3


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
    assert "Soprano 11 notes (the melody), Alto" in r.stdout
    low = tmp_path / "low.mid"
    io.save(melody_song(pitches=LOW_TUNE), low)
    r = subprocess.run([sys.executable, "-m", "studio", "harmonize", str(low), "-o", str(out), "--seed", "3",
                        "--candidates", "1"], capture_output=True, text=True, env=env, cwd=REPO)
    assert r.returncode == 0, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "lies in the tenor range; harmonized with it as the tenor" in ln]
    assert len(said) == 1 and said[0].startswith("studio: warning: ") and "Warning" not in r.stderr, r.stderr
    assert f"Tenor {len(LOW_TUNE)} notes (the melody)" in r.stdout
    assert [n.pitch for n in io.load(out).tracks[2].notes] == list(LOW_TUNE)
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
