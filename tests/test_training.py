"""The one training loop (studio.ml.training.fit) for every model, with tiny configs and data: a run
resumes where it stopped (step count, optimizer, random streams), trains without matplotlib, and
runs under torchrun as two CPU processes with the gloo backend."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from studio import io
from studio.core.errors import StudioError
from studio.core.song import Note, Song, Track
from studio.ml.training import Run, fit

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("bach/bwv269", "bach/bwv347", "bach/bwv153.1")


def _song(i: int, tracks: int = 2) -> Song:
    notes = [Note(k * 240, 60 + (k * (i + 2)) % 12, 240) for k in range(64)]
    return Song(tracks=[Track(f"Voice {t}", 73, t, notes=[n.moved(dp=-5 * t) for n in notes]) for t in range(tracks)])


@pytest.fixture(scope="module")
def parsed():
    from music21 import corpus

    from studio.ml.harmonizer import data as ch

    return [ch.chorale_from_score(corpus.parse(n), n) for n in NAMES]


@pytest.fixture
def chorales(parsed, monkeypatch):
    from studio.ml.harmonizer import data as ch

    monkeypatch.setattr(ch, "VALID_TUNES", (NAMES[2],))  # one held-out chorale among the three
    monkeypatch.setattr(ch, "TEST_TUNES", ())
    return parsed


# ---- each model's task, tiny -------------------------------------------------------------------
def _continuation(tmp_path):
    from studio.ml.continuation import train as ct
    from studio.ml.continuation.model import Config
    from studio.ml.corpus import CorpusPiece

    pieces = [CorpusPiece(f"p{i}", _song(i), ("train", "train", "valid")[i % 3]) for i in range(6)]
    data = ct.tokenize_pieces(pieces)
    cfg = {"n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64, "ctx": 64, "dropout": 0.0}
    npz = tmp_path / "tokens.npz"
    ct.save_dataset(data, npz)
    return ct.task(data, Config(**cfg), batch=2), ["--dataset", str(npz), "--config", json.dumps(cfg), "--batch", "2"]


def _variation(tmp_path):
    from studio.ml.variation import train as vt
    from studio.ml.variation.model import Config

    folder = tmp_path / "midi"
    folder.mkdir(exist_ok=True)
    for i in range(5):
        io.save(_song(i, 3), folder / f"s{i}.mid")
    files = vt.pieces_from_folder(folder)
    cfg = {"d_model": 32, "n_layers": 1, "n_heads": 2, "mlp_mult": 2}
    tc = vt.TrainConfig(tokens=512, n_valid=1, model=Config(**cfg))
    return (vt.task([p for i, p in enumerate(files) if i % 5], files[::5], tc),
            ["--pieces", str(folder), "--config", json.dumps(cfg), "--tokens", "512"])


def _harmonizer(tmp_path, chorales):
    from studio.ml.harmonizer import data as ch
    from studio.ml.harmonizer import train as ht
    from studio.ml.harmonizer.model import Config

    npz = tmp_path / "chorales.npz"
    ch.save_cache(chorales, npz)
    cfg = {"d_model": 32, "n_layers": 1, "n_heads": 2, "d_ff": 64, "dropout": 0.0, "max_len": 32}
    return ht.harmonizer_task(chorales, Config(**cfg), batch=4), ["--chorales", str(npz), "--config", json.dumps(cfg),
                                                                   "--batch", "4"]


def _task(name, tmp_path, chorales):
    return _harmonizer(tmp_path, chorales) if name == "harmonizer" else globals()[f"_{name}"](tmp_path)


MODELS = ("harmonizer", "continuation", "variation")


@pytest.mark.parametrize("name", MODELS)
def test_a_run_resumes_where_it_stopped(name, tmp_path, chorales):
    out = tmp_path / "run"
    quiet = dict(device="cpu", minutes=5.0, checkpoint_minutes=1e9, log=lambda m: None)
    task, _ = _task(name, tmp_path, chorales)
    st = fit(task, Run(out, max_steps=3, **quiet))
    assert st["step"] == 3
    for f in ("model.safetensors", "config.json", "state.pt", "log.jsonl", "learning_curve.png"):
        assert (out / f).exists(), f
    saved = torch.load(out / "state.pt", weights_only=False)
    task, _ = _task(name, tmp_path, chorales)
    stream = task.batches(0)
    from studio.ml.training import _set_rng

    _set_rng(saved["rng"], stream)
    want = stream()  # the batch the interrupted run would have drawn next
    drawn = []
    original = task.batches

    def recording(seed):
        s = original(seed)

        class Spy:
            rng = s.rng

            def __call__(self):
                b = s()
                drawn.append(b)
                return b
        return Spy()

    task.batches = recording
    st = fit(task, Run(out, max_steps=2, resume=True, **quiet))
    assert st["step"] == 5 and st["runs"] == 2
    first = drawn[0]
    flat = lambda b: [t for t in (b.values() if isinstance(b, dict) else b)]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(flat(first), flat(want)))
    opt = torch.load(out / "state.pt", weights_only=False)["opt"]
    assert all(int(s["step"]) == 5 for s in opt["state"].values())  # the optimizer went on too
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 5] and all("score" in r["valid"] for r in rows)


def test_resume_and_init_say_what_is_wrong(tmp_path, chorales):
    task, _ = _task("harmonizer", tmp_path, chorales)
    with pytest.raises(StudioError, match="nothing to resume"):
        fit(task, Run(tmp_path / "empty", resume=True, device="cpu", log=lambda m: None))
    fit(task, Run(tmp_path / "a", max_steps=1, device="cpu", checkpoint_minutes=1e9, log=lambda m: None))
    from studio.ml.harmonizer import train as ht
    from studio.ml.harmonizer.model import Config

    other = ht.harmonizer_task(chorales, Config(d_model=16, n_layers=1, n_heads=2, d_ff=32, max_len=32), batch=2)
    with pytest.raises(StudioError, match="another model configuration"):
        fit(other, Run(tmp_path / "a", resume=True, device="cpu", log=lambda m: None))
    with pytest.raises(StudioError, match="another configuration"):
        fit(other, Run(tmp_path / "b", init=tmp_path / "a", device="cpu", log=lambda m: None))
    task, _ = _task("harmonizer", tmp_path, chorales)
    st = fit(task, Run(tmp_path / "c", init=tmp_path / "a", max_steps=1, device="cpu", checkpoint_minutes=1e9,
                       log=lambda m: None))
    assert st["step"] == 1  # a warm start begins a new run at step 0


def test_a_deeper_continuation_model_starts_as_the_shallower_one(tmp_path):
    """--init with weights of fewer blocks: the new blocks start as the identity, so the grown model
    gives the same logits before its first step; a change of width is refused in words."""
    from studio.ml.continuation import train as ct
    from studio.ml.continuation.model import Config

    task, _ = _continuation(tmp_path)
    fit(task, Run(tmp_path / "a", max_steps=2, device="cpu", checkpoint_minutes=1e9, log=lambda m: None))
    small = task.model.eval()
    data = ct.load_dataset(tmp_path / "tokens.npz")
    deep = ct.task(data, Config(**{**vars(small.cfg), "n_layer": 3}), batch=2)
    deep_fit = fit(deep, Run(tmp_path / "b", init=tmp_path / "a", max_steps=0, device="cpu", checkpoint_minutes=1e9,
                             log=lambda m: None))
    assert deep_fit["step"] == 0
    x = torch.randint(1, 200, (2, 40))
    with torch.no_grad():
        a, _ = small(x)
        b, _ = deep.model.eval()(x)
    assert len(deep.model.blocks) == 3
    # the shipped weights are fp16: the same function up to fp16 rounding of the weights
    assert torch.allclose(a, b, atol=5e-3), float((a - b).abs().max())
    wide = ct.task(data, Config(**{**vars(small.cfg), "d_ff": 128}), batch=2)
    with pytest.raises(StudioError, match="same widths"):
        fit(wide, Run(tmp_path / "c", init=tmp_path / "a", max_steps=1, device="cpu", log=lambda m: None))


def test_training_needs_no_matplotlib(tmp_path, chorales, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    task, _ = _task("variation", tmp_path, chorales)
    st = fit(task, Run(tmp_path / "run", max_steps=2, device="cpu", checkpoint_minutes=1e9, log=lambda m: None))
    assert st["step"] == 2 and (tmp_path / "run" / "log.jsonl").exists()
    assert not (tmp_path / "run" / "learning_curve.png").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_two_process_gloo_training(name, tmp_path, chorales):
    _, args = _task(name, tmp_path, chorales)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", f"studio.ml.{name}.train", "--out", str(out), "--device", "cpu", "--max-steps", "3",
           "--minutes", "5", "--checkpoint-minutes", "1e9", *args]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 processes" in r.stderr and r.stderr.count("M parameters") == 1  # two ranks, one log
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["step"] == 3
    assert (out / "model.safetensors").exists() and (out / "state.pt").exists()
    assert np.isfinite(rows[0]["train_loss"])
