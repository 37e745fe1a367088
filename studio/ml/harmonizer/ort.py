"""The harmonizer on the CPU without torch: the network on ONNX Runtime, the sampler in numpy.

A ``studio harmonize`` process spends most of its time importing torch. On the CPU this
module runs the network on an ONNX Runtime session, so torch is imported only once per set of
weights, to export the network into the cache folder (``~/.cache/cantor-studio/onnx``).
``OrtNet`` is a :class:`~studio.ml.harmonizer.sample.Net`: the sampler in ``sample.py`` runs
on it exactly as on the torch network.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from .. import paths

GRAPH_VERSION = 2  # 2: fermata classes clamped in the per-step network
_lock = threading.Lock()
_sessions: dict = {}


def available() -> bool:
    if os.environ.get("STUDIO_NO_ORT", "") not in ("", "0"):
        return False
    try:
        import onnxruntime  # noqa: F401
    except Exception:
        return False
    return True


def gpu_present() -> bool:
    """A CUDA driver on this machine (then torch, which can use it, is the better path)."""
    return os.path.exists("/proc/driver/nvidia/version")


def _graph_path(folder: Path) -> Path:
    h = hashlib.sha1(f"harmonizer-graph{GRAPH_VERSION}".encode())
    h.update((folder / "config.json").read_bytes())
    h.update((folder / "model.safetensors").read_bytes())
    return paths.cache_root() / "onnx" / f"harmonizer-{h.hexdigest()[:16]}.onnx"


def export(folder: Path, path: Path) -> None:
    """Write the harmonizer network of ``folder`` as an ONNX graph (needs torch, once)."""
    import torch

    from .. import checkpoint
    from .model import build

    model, _meta = checkpoint.load(folder, build, "cpu")
    model.float().eval()
    T = model.cfg.max_len
    args = (torch.zeros(1, 4, T, dtype=torch.long), torch.zeros(1, 4, T, dtype=torch.bool),
            torch.zeros(1, T, dtype=torch.long), torch.zeros(1, T, dtype=torch.long), torch.zeros(1, T, dtype=torch.bool))
    names = ["tokens", "given", "metric", "fermata", "pad"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    for p in model.parameters():  # keeps torch off its fused inference kernel, which has no ONNX form
        p.requires_grad_(True)
    with warnings.catch_warnings(), torch.enable_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(tmp), input_names=names, output_names=["logits"],
                          dynamic_axes={n: {0: "B"} for n in names + ["logits"]}, dynamo=False, opset_version=17)
    os.replace(tmp, path)
    meta = {"vocab": model.cfg.vocab, "max_len": T}
    path.with_suffix(".json").write_text(json.dumps(meta))


class OrtNet:
    """``net(tokens, given, metric, fermata, pad) -> logits [B, 4, T, vocab]`` on ONNX Runtime."""

    def __init__(self, folder: str | Path | None = None, threads: int | None = None):
        import onnxruntime as ort

        folder = Path(folder) if folder else paths.model_dir("harmonizer")
        path = _graph_path(folder)
        if not path.exists() or not path.with_suffix(".json").exists():
            export(folder, path)
        meta = json.loads(path.with_suffix(".json").read_text())
        self.vocab, self.max_len = int(meta["vocab"]), int(meta["max_len"])
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads or min(4, os.cpu_count() or 1)))
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        paths.graph_in_use(path)

    def __call__(self, tokens, given, metric, fermata, pad):
        return self.sess.run(None, {"tokens": tokens.astype(np.int64), "given": given.astype(bool),
                                    "metric": metric.astype(np.int64), "fermata": fermata.astype(np.int64),
                                    "pad": pad.astype(bool)})[0]


def load_net(folder: str | Path | None = None) -> OrtNet:
    key = str(Path(folder).resolve()) if folder else "shipped"
    with _lock:
        if key not in _sessions:
            _sessions[key] = OrtNet(folder)
        return _sessions[key]
