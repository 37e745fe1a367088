"""`studio vary` / `studio train|eval variation` plumbing, the trainer on a tiny config, and the shipped weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import cli, io
from studio.core.song import Note, Song, Track
from studio.ml.variation import api as vary_api
from studio.ml import checkpoint, paths
from studio.ml.variation import model as V
from studio.ml.variation import train as VT

from test_variation import TINY, quartet, tiny_model

Q = 480


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch):
    """A tiny untrained model saved where the app looks for shipped weights."""
    models = tmp_path / "models"
    checkpoint.save(tiny_model(), TINY, models / "variation", extra={"train": {"params": 1}})
    monkeypatch.setattr(paths, "MODELS_DIR", models)
    vary_api._cache.clear()
    yield models / "variation"
    vary_api._cache.clear()


@pytest.fixture
def quartet_file(tmp_path):
    path = tmp_path / "q.mid"
    io.save(quartet(8), path)
    return path


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("extra, message", [
    (["--strength", "1.5"], "between 0 and 1"),
    (["--strength", "0.5", "--bars", "7:20"], "only 8 bars"),
    (["--strength", "0.5", "--bars", "3:2"], "must not exceed"),
    (["--strength", "0.5", "--bars", "x"], "expected A:B"),
    (["--strength", "0.5", "--tracks", "1,9"], "no track 9"),
    (["--strength", "0.5", "--tracks", "a"], "track numbers"),
    (["--strength", "0.5", "--takes", "0"], "--takes"),
    (["--strength", "0.5", "--mode", "backwards"], "--mode"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, quartet_file, extra, message):
    out = tmp_path / "out.mid"
    code, _, err = run(capsys, "vary", quartet_file, "-o", out, *extra)
    assert code == 2 and message in err and err.count("\n") == 1 and err.startswith("studio: error:")
    assert not out.exists()


def test_cli_missing_input(capsys, tmp_path):
    code, _, err = run(capsys, "vary", tmp_path / "nope.mid", "-o", tmp_path / "o.mid", "--strength", "0.5")
    assert code == 2 and "nope.mid" in err


def test_cli_vary_writes_takes(capsys, tmp_path, quartet_file, tiny_weights):
    out = tmp_path / "v.mid"
    code, stdout, err = run(capsys, "vary", quartet_file, "-o", out, "--strength", "0.6", "--bars", "3:4",
                            "--tracks", "1,4", "--seed", "3", "--takes", "2")
    assert code == 0, err
    paths = [tmp_path / "v-1.mid", tmp_path / "v-2.mid"]
    assert stdout.split() == [str(p) for p in paths]
    src = io.load(quartet_file)
    for p in paths:
        got = io.load(p)
        assert len(got.tracks) == len(src.tracks)
        # bars 3-4 of tracks 1 and 4 may change; the rest comes back as it was
        for i, (a, b) in enumerate(zip(src.tracks, got.tracks)):
            keep = lambda n: not (i in (0, 3) and 8 * Q <= n.start < 16 * Q)  # noqa: E731
            assert [n for n in a.notes if keep(n)] == [n for n in b.notes if keep(n)]


def test_cli_vary_keep_rhythm_keeps_onsets_and_lengths(capsys, tmp_path, quartet_file, tiny_weights):
    out = tmp_path / "r.mid"
    code, _, err = run(capsys, "vary", quartet_file, "-o", out, "--strength", "1", "--bars", "3:4",
                       "--tracks", "1", "--seed", "2", "--mode", "rhythm")
    assert code == 0, err
    src, got = io.load(quartet_file), io.load(out)
    sel = lambda s: [(n.start, n.duration) for n in s.tracks[0].notes if 8 * Q <= n.start < 16 * Q]  # noqa: E731
    assert sel(got) == sel(src)


def test_cli_vary_without_weights_is_a_clear_error(capsys, tmp_path, quartet_file, monkeypatch):
    monkeypatch.setattr(paths, "MODELS_DIR", tmp_path / "empty")
    vary_api._cache.clear()
    code, _, err = run(capsys, "vary", quartet_file, "-o", tmp_path / "o.mid", "--strength", "0.5")
    assert code == 2 and "no trained weights" in err


# ---- training on a tiny config (a few steps, not a real run) ------------------------
def _pieces(n=6):
    out = []
    for i in range(n):
        s = quartet(6 + i)
        for t in s.tracks:
            t.notes = [x.moved(dp=i % 3) for x in t.notes]
        out.append(VT.piece_from_song(f"p{i}", s))
    return out


def test_training_batches_and_masks():
    rng = np.random.default_rng(0)
    p = _pieces(1)[0]
    for _ in range(20):
        ex = VT.make_example(p, rng)
        K, T, P = ex["cells"].shape
        assert ex["mask"].shape == (K, T, P) and ex["mask"].any()
        assert ex["scale"].sum() == 7
    b = VT.Sampler(_pieces(), tokens=2048).batch()
    B, K, T, P = b["cells"].shape  # four-track pieces shorter than a window: whole pieces, padded to the longest
    assert (B, K, P) == (2048 // (4 * VT.WINDOW), 4, 88)
    assert T == int(b["time_valid"].sum(1).max()) <= VT.WINDOW and b["track_valid"].all()
    assert b["masked"].any() and not (b["masked"] & ~b["time_valid"][:, None, :, None]).any()


def test_masks_follow_notes_whose_onset_is_masked():
    cells = np.zeros((1, 16, 88), dtype=np.uint8)
    notes = [[(2, 10, 60), (12, 14, 62)]]
    R_cols = np.zeros((1, 16), dtype=bool)
    R_cols[0, 0:4] = True
    m = VT.mask_from_columns(cells, R_cols, notes, offset=0)
    assert m[0, 2:10, 60 - 21].all() and not m[0, 12, 62 - 21] and m[0, 0:4].all()
    m = VT.mask_from_columns(cells, R_cols, notes, offset=0, locked=[{0}])
    assert not m[0, 2:10, 60 - 21].any()


def test_a_few_training_steps_reduce_the_loss_and_save(tmp_path):
    torch.manual_seed(0)
    model = V.build(TINY)
    batch = VT.Sampler(_pieces(), tokens=1024, seed=1).batch()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = VT.loss_fn(model, batch).item()
    for _ in range(30):
        loss = VT.loss_fn(model, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert VT.loss_fn(model, batch).item() < 0.7 * first
    from studio.ml.training import Run, fit

    tc = VT.TrainConfig(n_valid=1, tokens=512, model=TINY)
    r = fit(VT.task(_pieces(), _pieces(2), tc), Run(tmp_path / "m", minutes=0.02, device="cpu", log=lambda m: None))
    assert r["step"] >= 1
    loaded, meta = checkpoint.load(tmp_path / "m", V.build)
    assert meta["config"]["d_model"] == TINY.d_model and meta["train"]["steps"] == r["step"]
    assert (tmp_path / "m" / "learning_curve.png").stat().st_size > 1000


# ---- the shipped model ----------------------------------------------------------------
SHIPPED = checkpoint.REPO_ROOT / "models" / "variation"


@pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="variation weights not committed yet")
def test_shipped_weights_vary_sensibly():
    card = json.loads((SHIPPED / "card.json").read_text())
    assert card["metrics"]["strength_curve"]["0.25"]["kept"] >= 0.55
    vary_api._cache.clear()
    model, meta, _ = vary_api.load_model("cpu", SHIPPED)
    assert 0.5e6 <= sum(p.numel() for p in model.parameters()) <= 12e6
    assert (SHIPPED / "model.safetensors").stat().st_size <= 25 * 2**20
    song = quartet(8)
    start, end = 4 * 4 * Q, 8 * 4 * Q
    src = {(i, n.start, n.pitch) for i, t in enumerate(song.tracks) for n in t.notes if start <= n.start < end}
    kept = []
    for s in (0.25, 1.0):
        out = vary_api.vary(song, s, start_tick=start, end_tick=end, seed=0, model=model)[0]
        new = [(i, n) for i, t in enumerate(out.tracks) for n in t.notes if start <= n.start < end]
        kept.append(len(src & {(i, n.start, n.pitch) for i, n in new}) / len(src))
        assert 0.4 * len(src) <= len(new) <= 2.5 * len(src)  # a trained model writes a sensible amount of music
    assert kept[0] > kept[1]
