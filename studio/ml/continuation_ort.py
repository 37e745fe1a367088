"""Fast CPU decoding for the continuation model on ONNX Runtime.

Sampling feeds one token per take per step. In PyTorch's eager mode the cost of such a
step is the overhead of some hundred small op calls, not arithmetic; ONNX Runtime runs the
same graph with a fraction of that overhead. The decoding step (one new position on top of
a key/value cache) is exported once per set of weights with ``torch.onnx.export`` into the
cache folder and loaded from there afterwards.

The step graph takes the cache as fixed-size buffers: ``kbuf``/``vbuf`` ``[layers, B, heads,
ctx, d_head]`` with ``mask`` (0 for a used slot, -1e9 for a free one) and ``dist`` (the
distance from the new position to each slot's key, clamped to the learned range). It
returns the logits and the new position's keys and values; :class:`OrtDecoder` writes them
into the buffers and drops the oldest keys exactly as ``MusicTransformer.forward_cached``
does, so both paths give the same logits (tested).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

GRAPH_VERSION = 2
_sessions: dict = {}
_lock = threading.Lock()


def available() -> bool:
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime  # noqa: F401
    except Exception:
        return False
    return os.environ.get("STUDIO_NO_ORT", "") in ("", "0")


class _Step(nn.Module):
    """One decoding position over a fixed-size cache, written for export (no in-place writes).

    Per layer ``l`` the inputs hold the keys transposed, ``k_l`` (B, H, d_head, ctx), and the
    values ``v_l`` (B, H, ctx, d_head), so the graph neither slices nor transposes the cache.
    """

    def __init__(self, model):
        super().__init__()
        self.m = model
        self.er_t = nn.ParameterList([nn.Parameter(b.attn.er.detach().transpose(-1, -2).contiguous())
                                      for b in model.blocks])  # (H, d_head, R)

    def forward(self, tok, dist, mask, *kv):
        m = self.m
        B = tok.shape[0]
        C = m.cfg.d_model
        H = m.blocks[0].attn.h
        dh = C // H
        scale = 1.0 / math.sqrt(dh)
        x = m.emb(tok)
        ks, vs = [], []
        for layer, b in enumerate(m.blocks):
            a = b.attn
            q, k, v = a.qkv(b.ln1(x)).split(C, dim=-1)
            q, k, v = (t.reshape(B, H, 1, dh) for t in (q, k, v))
            rel = torch.matmul(q, self.er_t[layer])  # (B, H, 1, R): distances 0..R-1
            old = torch.matmul(q, kv[2 * layer]) + rel.index_select(-1, dist) + mask  # (B, H, 1, ctx)
            own = (q * k).sum(-1, keepdim=True) + rel[..., :1]  # the new key, distance 0
            att = torch.softmax(torch.cat([old, own], -1) * scale, -1)
            y = torch.matmul(att[..., :-1], kv[2 * layer + 1]) + att[..., -1:] * v  # (B, H, 1, dh)
            x = x + a.proj(y.reshape(B, C))
            x = x + b.mlp(b.ln2(x))
            ks.append(k)
            vs.append(v)
        return m.head(m.ln_f(x)), torch.stack(ks), torch.stack(vs)  # (B, V), (L, B, H, 1, dh) x 2


def _kv_names(layers: int) -> list[str]:
    return [f"{kind}{i}" for i in range(layers) for kind in ("k", "v")]


_keys: dict = {}


def _weights_key(model) -> str:
    """A digest of the weights; remembered per model while its parameters stay untouched."""
    stamp = (id(model), tuple((p.data_ptr(), p._version) for p in model.parameters()))
    if stamp not in _keys:
        _keys.clear()
        _keys[stamp] = _digest(model)
    return _keys[stamp]


def _digest(model) -> str:
    h = hashlib.sha1(f"graph{GRAPH_VERSION}:{sorted(vars(model.cfg).items())}".encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _cache_root() -> Path:
    base = os.environ.get("STUDIO_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "cantor-studio") / "onnx"


def export(model, path: Path) -> None:
    """Write the step graph of ``model`` (fp32) to ``path`` atomically."""
    cfg = model.cfg
    H = model.blocks[0].attn.h
    dh = cfg.d_model // H
    kv = []
    for _ in range(cfg.n_layer):
        kv += [torch.zeros(1, H, dh, cfg.ctx), torch.zeros(1, H, cfg.ctx, dh)]
    args = (torch.tensor([4]), torch.zeros(cfg.ctx, dtype=torch.long), torch.full((cfg.ctx,), -1e9), *kv)
    names = _kv_names(cfg.n_layer)
    step = _Step(model).float().eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            torch.onnx.export(step, args, str(tmp), input_names=["tok", "dist", "mask", *names],
                              output_names=["logits", "k", "v"],
                              dynamic_axes={"tok": {0: "B"}, **{n: {0: "B"} for n in names}},
                              dynamo=False, opset_version=17)
    os.replace(tmp, path)


def session(model, threads: int = 2):
    """An ONNX Runtime session for ``model``'s step graph (exported on first use, then cached)."""
    import onnxruntime as ort

    key = _weights_key(model)
    with _lock:
        if (key, threads) in _sessions:
            return _sessions[(key, threads)]
        path = _cache_root() / f"continuation-{key}.onnx"
        if not path.exists():
            export(model, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged cache file: export again
            export(model, path)
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        _sessions[(key, threads)] = sess
        return sess


class OrtDecoder:
    """Key/value cache in numpy buffers plus the ONNX step: ``step(tokens) -> logits``."""

    def __init__(self, model, threads: int = 2):
        self.sess = session(model, threads)
        cfg = model.cfg
        self.ctx = cfg.ctx
        self.R = model.blocks[0].attn.er.shape[1]
        self.H = model.blocks[0].attn.h
        self.dh = cfg.d_model // self.H
        self.L = cfg.n_layer

    def start(self, cache: dict, keep_head: int) -> None:
        """Take over a torch cache filled by ``forward_cached`` (the prompt)."""
        lc0 = cache["layers"][0]
        n = lc0["n"]
        B = lc0["k"].shape[0]
        self.k = [np.zeros((B, self.H, self.dh, self.ctx), dtype=np.float32) for _ in range(self.L)]
        self.v = [np.zeros((B, self.H, self.ctx, self.dh), dtype=np.float32) for _ in range(self.L)]
        for i, lc in enumerate(cache["layers"]):
            self.k[i][:, :, :, :n] = lc["k"][:, :, :n].float().cpu().numpy().transpose(0, 1, 3, 2)
            self.v[i][:, :, :n] = lc["v"][:, :, :n].float().cpu().numpy()
        self.n = n
        self.pos = cache["pos"].cpu().numpy().astype(np.int64).copy()
        self.next = int(cache["next"])
        self.keep_head = keep_head
        # every input and output lives in an array of ours, bound to the session once
        self.tok = np.zeros(B, dtype=np.int64)
        self.dist = np.zeros(self.ctx, dtype=np.int64)
        self.mask = np.full(self.ctx, -1e9, dtype=np.float32)
        self.logits = np.zeros((B, self.sess.get_outputs()[0].shape[-1] or 1), dtype=np.float32)
        self.k_new = np.zeros((self.L, B, self.H, 1, self.dh), dtype=np.float32)
        self.v_new = np.zeros_like(self.k_new)
        io = self.sess.io_binding()
        arrays = {"tok": self.tok, "dist": self.dist, "mask": self.mask}
        for i, name in enumerate(_kv_names(self.L)):
            arrays[name] = (self.k if name[0] == "k" else self.v)[i // 2]
        for name, arr in arrays.items():
            io.bind_input(name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        for name, arr in (("logits", self.logits), ("k", self.k_new), ("v", self.v_new)):
            io.bind_output(name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        self.io = io

    def step(self, tokens) -> np.ndarray:
        n = self.n
        self.dist[:n] = np.clip(self.next - self.pos[:n], 0, self.R - 1)
        self.dist[n:] = 0
        self.mask[:n] = 0.0
        self.mask[n:] = -1e9
        self.tok[:] = tokens
        self.sess.run_with_iobinding(self.io)
        if n + 1 > self.ctx:  # forward_cached drops the oldest keys once the new one is in
            self._drop(n + 1 - self.ctx)
            n = self.n
        for i in range(self.L):
            self.k[i][:, :, :, n] = self.k_new[i, :, :, 0]
            self.v[i][:, :, n] = self.v_new[i, :, :, 0]
        self.pos = np.append(self.pos[:n], self.next)
        self.n = n + 1
        self.next += 1
        return self.logits.copy()

    def _drop(self, over: int) -> None:
        h = self.keep_head
        drop = max(over, self.ctx // 8)
        n = self.n
        keep = n - drop
        for i in range(self.L):
            self.k[i][..., h:keep] = self.k[i][..., h + drop:n]
            self.v[i][:, :, h:keep] = self.v[i][:, :, h + drop:n]
        self.pos = np.concatenate([self.pos[:h], self.pos[h + drop:n]])
        self.n = keep
