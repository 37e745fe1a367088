"""Training under torchrun: two CPU processes with the gloo backend, a tiny config, a few steps."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from studio.core.song import Note, Song, Track

ROOT = Path(__file__).resolve().parents[1]


def _song(i: int) -> Song:
    notes = [Note(k * 240, 60 + (k * (i + 2)) % 12, 240) for k in range(64)]
    return Song(tracks=[Track("Flute", 73, 0, notes=notes), Track("Flute", 73, 1, notes=[n.moved(dp=-12) for n in notes])])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_training(tmp_path):
    from studio.ml.continuation import train as ct
    from studio.ml.corpus import CorpusPiece

    pieces = [CorpusPiece(f"p{i}", _song(i), ("train", "train", "valid")[i % 3]) for i in range(6)]
    data = ct.tokenize_pieces(pieces)
    npz = tmp_path / "tokens.npz"
    ct.save_dataset(data, npz)
    out = tmp_path / "run"
    cfg = json.dumps({"n_layer": 1, "d_model": 32, "n_head": 2, "d_ff": 64, "ctx": 64, "dropout": 0.0})
    env = dict(os.environ, OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "studio.ml.continuation.train", "--out", str(out), "--dataset", str(npz), "--device", "cpu",
           "--config", cfg, "--batch", "2", "--max-steps", "3", "--minutes", "5", "--eval-every", "1e9"]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "batch 2x2" in r.stdout  # two ranks, one log
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["step"] == 3
    assert (out / "model.safetensors").exists()
