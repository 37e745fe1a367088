"""The harmonizer on the CPU without torch: the network on ONNX Runtime, the sampler in numpy.

A ``studio harmonize`` process spends most of its time importing torch. On the CPU this
module does the same work as ``harmonizer.sample`` + ``harmonize_api.harmonize_grid`` with
numpy and an ONNX Runtime session, so torch is imported only once per set of weights, to
export the network into the cache folder (``~/.cache/cantor-studio/onnx``). The steps and
their order are those of the torch sampler (Gibbs with annealed block masks, range mask,
repair by proposals, pseudo-likelihood re-ranking); the random streams differ.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from ...core.errors import Cancelled
from . import data as ch
from .. import paths

GRAPH_VERSION = 1
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


class Net:
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

    def __call__(self, tokens, given, metric, fermata, pad):
        return self.sess.run(None, {"tokens": tokens.astype(np.int64), "given": given.astype(bool),
                                    "metric": metric.astype(np.int64), "fermata": fermata.astype(np.int64),
                                    "pad": pad.astype(bool)})[0]


def load_net(folder: str | Path | None = None) -> Net:
    key = str(Path(folder).resolve()) if folder else "shipped"
    with _lock:
        if key not in _sessions:
            _sessions[key] = Net(folder)
        return _sessions[key]


# ---- the sampler ----------------------------------------------------------------------------
def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def log_probs(net: Net, tokens, given, metric, fermata) -> np.ndarray:
    """[B, 4, T, vocab] log-probabilities, overlapping windows averaged (as ``harmonizer.log_probs``)."""
    B, _, T = tokens.shape
    size = net.max_len
    if T <= size:
        pad_len = size - T
        tk = np.pad(tokens, ((0, 0), (0, 0), (0, pad_len)))
        gv = np.pad(given, ((0, 0), (0, 0), (0, pad_len)))
        mt = np.pad(metric, ((0, 0), (0, pad_len)), constant_values=ch.METRIC_CLASSES - 1)
        fm = np.pad(fermata, ((0, 0), (0, pad_len)))
        pad = np.zeros((B, size), dtype=bool)
        pad[:, T:] = True
        return _log_softmax(net(tk, gv, mt, fm, pad).astype(np.float32))[:, :, :T]
    starts = ch.windows(T, size)
    tk = np.concatenate([tokens[:, :, s:s + size] for s in starts])
    gv = np.concatenate([given[:, :, s:s + size] for s in starts])
    mt = np.concatenate([metric[:, s:s + size] for s in starts])
    fm = np.concatenate([fermata[:, s:s + size] for s in starts])
    lp = _log_softmax(net(tk, gv, mt, fm, np.zeros((len(tk), size), dtype=bool)).astype(np.float32))
    acc = np.zeros((B, 4, T, net.vocab), dtype=np.float32)
    weight = np.zeros(T, dtype=np.float32)
    w = (1.0 - np.abs(np.arange(size) - (size - 1) / 2) / (size / 2) + 1e-3).astype(np.float32)
    for i, s in enumerate(starts):
        acc[:, :, s:s + size] += lp[i * B:(i + 1) * B] * w[None, None, :, None]
        weight[s:s + size] += w
    return acc / weight[None, None, :, None]


def fix_holds(t: np.ndarray) -> np.ndarray:
    """``harmonizer.fix_holds`` in numpy."""
    P = ch.P
    T = t.shape[-1]
    hold = t > P
    after_rest = np.concatenate([np.ones(t.shape[:-1] + (1,), dtype=bool), t[..., :-1] == ch.REST], -1)
    start = (t != ch.REST) & (~hold | after_rest)
    pidx = np.where(hold, t - 1 - P, t - 1)
    steps = np.broadcast_to(np.arange(T), t.shape)
    last = np.maximum.accumulate(np.where(start, steps, 0), axis=-1)
    sounding = np.take_along_axis(pidx, last, -1)
    out = np.where(hold & start, 1 + pidx, t)
    return np.where(hold & ~start, 1 + P + sounding, out)


def sample_cells(lp: np.ndarray, temperature: float, rng: np.random.Generator) -> np.ndarray:
    if temperature <= 1e-3:
        return lp.argmax(-1)
    u = np.clip(rng.random(lp.shape, dtype=np.float32), 1e-9, 1.0)
    return (lp / temperature - np.log(-np.log(u))).argmax(-1)


def gibbs(net: Net, tokens, given, metric, fermata, steps, temperature, rng, final_temperature=None, bias=None,
          progress=None, pmax=0.9, pmin=0.05, anneal=0.75) -> np.ndarray:
    free = ~given
    total = steps + 1

    def lp_of(x, known):
        lp = log_probs(net, x, known, metric, fermata)
        return lp if bias is None else lp + bias

    x = tokens.copy()
    lp = lp_of(x, given)
    x[free] = sample_cells(lp[free], temperature, rng)
    x = np.where(free, fix_holds(x), x)
    if progress is not None and progress(1 / total) is False:
        raise Cancelled("harmonizing cancelled")
    for i in range(steps):
        p, temp = ch.gibbs_schedule(i, steps, temperature, final_temperature, pmax, pmin, anneal)
        block = free & (rng.random(free.shape) < p)
        lp = lp_of(x, ~block)
        x[block] = sample_cells(lp[block], temp, rng)
        x = np.where(free, fix_holds(x), x)
        if progress is not None and progress((i + 2) / total) is False:
            raise Cancelled("harmonizing cancelled")
    return x


def pseudo_loglik(net: Net, x, free, metric, fermata, blocks: int = 2, seed: int = 0) -> np.ndarray:
    assign = np.random.default_rng(seed).integers(0, blocks, free.shape)
    total = np.zeros(x.shape[0])
    for b in range(blocks):
        block = free & (assign == b)
        lp = log_probs(net, x, ~block, metric, fermata)
        cell = np.take_along_axis(lp, x[..., None], -1)[..., 0]
        total += (cell * block).sum(axis=(1, 2))
    return total / np.maximum(free.sum(axis=(1, 2)), 1)


def repair(net: Net, xs, given, metric, fermata, rng, rounds, beats, progress, done, total, bias, pen, shift,
           proposals) -> tuple[np.ndarray, list]:
    """``harmonize_api._repair`` on this path (same fault cells, same keep-if-better rule)."""
    from .api import fault_cells, keep_better

    free = ~given
    pen = list(pen)
    M = max(1, int(proposals))
    for r in range(rounds):
        block = fault_cells(xs, free, pen, beats, shift, rng)
        rows = [k for k in range(len(xs)) if block[k].any()]
        if not rows:
            break
        xt, bt = xs[rows], block[rows]
        lp = log_probs(net, xt, ~bt, metric[rows], fermata[rows])
        if bias is not None:
            lp = lp + bias
        cells = lp[bt]
        draws = np.repeat(xt[None], M, axis=0)
        draws[:, bt] = sample_cells(np.broadcast_to(cells, (M,) + cells.shape), 0.5, rng)
        keep_better(xs, pen, np.where(free[rows][None], fix_holds(draws), xt[None]), rows, beats, shift)
        if progress is not None and progress((done + r + 1) / total) is False:
            raise Cancelled("harmonizing cancelled")
    return xs, pen


def harmonize_grid(net: Net, tokens: np.ndarray, given: np.ndarray, metric: np.ndarray,
                   fermata: np.ndarray | None = None, temperature: float = 0.7, candidates: int = 4,
                   steps: int = 12, seed: int | None = None, beats: np.ndarray | None = None,
                   progress: Callable[[float], bool] | None = None, rerank_weight: float = 1.0,
                   final_temperature: float | None = None, repair_rounds: int = 0,
                   shift: int | None = 0, proposals: int = 8) -> np.ndarray:
    """``harmonize_api.harmonize_grid`` on this module's path. -> [4, T]"""
    from . import vlgrid

    T = tokens.shape[1]
    K = max(1, int(candidates))
    rng = np.random.default_rng(int(seed) if seed is not None else None)
    tk = np.repeat(np.asarray(tokens, dtype=np.int64)[None], K, 0)
    gv = np.repeat(np.asarray(given, dtype=bool)[None], K, 0)
    mt = np.repeat(np.asarray(metric, dtype=np.int64)[None], K, 0)
    fm = np.repeat(ch.fermata_classes(fermata, T)[None], K, 0)
    from .api import range_bias

    bias = None if shift is None else range_bias(int(shift), net.vocab)[None, :, None, :]
    total = steps + 1 + repair_rounds + (2 if K > 1 else 0)
    report = None if progress is None else (lambda f: progress(f * (steps + 1) / total))
    x = gibbs(net, tk, gv, mt, fm, steps, temperature, rng, final_temperature, bias, report)
    sh = 0 if shift is None else int(shift)
    pen = [vlgrid.penalty(c, beats, sh) for c in x]
    if repair_rounds:
        x, pen = repair(net, x, gv, mt, fm, rng, repair_rounds, beats, progress, steps + 1, total, bias, pen, sh,
                        proposals)
    best = 0
    if K > 1:
        ll = pseudo_loglik(net, x, ~gv, mt, fm)
        best = int(np.argmax(ll - rerank_weight * np.asarray(pen)))
    if progress is not None and progress(1.0) is False:
        raise Cancelled("harmonizing cancelled")
    return x[best]
