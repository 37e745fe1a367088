"""Fast CPU decoding for the continuation model on ONNX Runtime.

Sampling feeds one token per take per step. In PyTorch's eager mode the cost of such a
step is the overhead of some hundred small op calls, not arithmetic; ONNX Runtime runs the
same graph with a fraction of that overhead. The decoding step (one new position on top of
a key/value cache) is exported once per set of weights with ``torch.onnx.export`` into the
cache folder and loaded from there afterwards.

Two graphs are kept per set of weights: the fp32 export, and a copy whose weight matrices
are int8 (ONNX Runtime's dynamic quantization: weights stored as int8 with one scale per
matrix, activations quantized on the fly). At batch 1 a step streams every weight once, so
the int8 copy reads a quarter of the bytes and runs about 1.5x faster here. Its held-out
NLL is within 0.1 % of the fp32 graph (``studio eval continuation`` measures both), so the
CPU samples from it by default. The relative-position embeddings stay fp32.

The step graph takes the cache as fixed-size buffers: per layer the keys ``[B, heads,
d_head, ctx]`` and values ``[B, heads, ctx, d_head]``, with ``mask`` (0 for a used slot,
-1e9 for a free one) and ``dist`` (the distance from the new position to each slot's key,
clamped to the learned range). It returns the logits and the new position's keys and
values; :class:`OrtDecoder` writes them into the buffers and drops the oldest keys exactly
as ``MusicTransformer.forward_cached`` does, so the fp32 graph gives the same logits as the
torch model (tested).

Memory past the context (Transformer-XL): the cache length is a dynamic axis of the graph,
so the decoder may keep ``memory`` positions more than the model's context. Their keys and
values are the ones computed when those positions were fed, each attending to its own past
(segment-level recurrence), and they are scored at their true relative distance (clamped to
the longest one learned, as the training windows never held more). With ``anchor``, the
first prompt positions after the header are kept for good: the bars the user wrote stay in
view however far the continuation goes.
"""

from __future__ import annotations

import hashlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .. import paths
from .step import StepWeights, cached_step

GRAPH_VERSION = 6  # 5: the cache length is a dynamic axis (memory); 6: step.cached_step
PRECISIONS = ("fp32", "int8")
GROW = 128  # cache slots added at a time
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
    """The graph to export: :func:`~.step.cached_step` for one position over a fixed-size cache.

    Per layer ``l`` the inputs hold the keys transposed, ``k_l`` (B, H, d_head, S), and the
    values ``v_l`` (B, H, S, d_head), so the graph neither slices nor transposes the cache;
    ``dist`` and ``mask`` (S,) cover the cached keys, the new one is at distance 0.
    """

    def __init__(self, model):
        super().__init__()
        self.w = StepWeights(model)
        for i, t in enumerate(self.w.tensors()):  # the graph's initializers
            self.register_buffer(f"w{i}", t)

    def forward(self, tok, dist, mask, *kv):
        zero = torch.zeros(1, dtype=dist.dtype)
        past = list(zip(kv[0::2], kv[1::2]))
        logits, ks, vs = cached_step(self.w, tok[:, None], past, torch.cat([dist, zero])[None],
                                     torch.cat([mask, zero.to(mask.dtype)])[None])
        return logits, torch.cat(ks, 1), torch.cat(vs, 1)  # (B, V), (B, L*H, 1, dh) x 2


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


def graph_path(model, precision: str = "fp32") -> Path:
    suffix = "" if precision == "fp32" else f"-{precision}"
    return paths.cache_root() / "onnx" / f"continuation-{_weights_key(model)}{suffix}.onnx"


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
                              dynamic_axes={"tok": {0: "B"}, "dist": {0: "S"}, "mask": {0: "S"},
                                            **{n: {0: "B", 3 if n[0] == "k" else 2: "S"} for n in names}},
                              dynamo=False, opset_version=17)
    os.replace(tmp, path)


def _no_preprocessing_advice(record) -> bool:
    """Drops ONNX Runtime's quantizer advice to pre-process the model (ours needs none)."""
    return "pre-processing" not in record.getMessage()


def quantize(src: Path, dst: Path) -> None:
    """Write an int8-weight copy of the fp32 step graph ``src`` to ``dst`` atomically.

    Every matrix product with a 2-D weight (the projections, the feed-forward layers and the
    output head) gets int8 weights with one scale per matrix; the relative-position tables
    (3-D) stay fp32. Per-matrix scales came out better than per-channel ones on held-out data.
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    g = onnx.load(str(src)).graph
    dims = {i.name: len(i.dims) for i in g.initializer}
    tables = [n.name for n in g.node if n.op_type == "MatMul" and any(dims.get(x, 2) != 2 for x in n.input)]
    tmp = dst.with_suffix(f".tmp{os.getpid()}")
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)  # the quantizer's advice would reach the user's terminal
    try:
        quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8, per_channel=False,
                         op_types_to_quantize=["Gemm", "MatMul"], nodes_to_exclude=tables)
    finally:
        root.removeFilter(_no_preprocessing_advice)
    os.replace(tmp, dst)


def _ensure(model, precision: str) -> Path:
    fp32 = graph_path(model, "fp32")
    if not fp32.exists():
        export(model, fp32)
    if precision == "fp32":
        return fp32
    path = graph_path(model, precision)
    if not path.exists():
        quantize(fp32, path)
    return path


def session(model, threads: int = 1, precision: str = "int8"):
    """An ONNX Runtime session for ``model``'s step graph (exported on first use, then cached)."""
    import onnxruntime as ort

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    key = _weights_key(model)
    with _lock:
        if (key, threads, precision) in _sessions:
            return _sessions[(key, threads, precision)]
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, int(threads))
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        so.add_session_config_entry("session.set_denormal_as_zero", "1")  # see model.flush_denormals
        try:
            sess = ort.InferenceSession(str(_ensure(model, precision)), so, providers=["CPUExecutionProvider"])
        except Exception:  # a damaged cache file (or one pruned meanwhile): export again
            for p in {graph_path(model, "fp32"), graph_path(model, precision)}:
                p.unlink(missing_ok=True)
            sess = ort.InferenceSession(str(_ensure(model, precision)), so, providers=["CPUExecutionProvider"])
        paths.graph_in_use(graph_path(model, precision))
        _sessions[(key, threads, precision)] = sess
        return sess


class OrtDecoder:
    """Key/value cache in numpy buffers plus the ONNX step: ``step(tokens) -> logits``.

    The buffers are bound to the session once; a step then costs the graph plus a few
    numpy writes (the new keys and values, one mask slot, the distances moved on by one).
    """

    def __init__(self, model, threads: int = 1, precision: str = "int8", memory: int = 0, anchor: int = 0):
        """``memory``: slots beyond the model's context (see the module's notes); ``anchor``: prompt
        positions after the header that are never dropped."""
        self.sess = session(model, threads, precision)
        cfg = model.cfg
        self.ctx = cfg.ctx + max(0, int(memory))  # the slots
        self.chunk = max(1, cfg.ctx // 8)  # dropped at once when the slots are full
        self.anchor = max(0, int(anchor))
        self.R = model.blocks[0].attn.er.shape[1]
        self.H = model.blocks[0].attn.h
        self.dh = cfg.d_model // self.H
        self.L = cfg.n_layer

    def start(self, cache: dict, keep_head: int) -> None:
        """Take over a torch cache filled by ``forward_cached`` (the prompt).

        The buffers start at the prompt plus :data:`GROW` slots and grow by that much when full,
        up to the slots (``ctx + memory``): a step's attention costs what is in use, not the
        whole memory. Free slots are masked, so the size changes no logit."""
        L, H, dh = self.L, self.H, self.dh
        lc0 = cache["layers"][0]
        n = lc0["n"]
        B = lc0["k"].shape[0]
        cap = min(self.ctx, max(n + GROW, 1))
        self.k = np.zeros((L, B, H, dh, cap), dtype=np.float32)
        self.v = np.zeros((L, B, H, cap, dh), dtype=np.float32)
        for i, lc in enumerate(cache["layers"]):
            self.k[i, :, :, :, :n] = lc["k"][:, :, :n].float().cpu().numpy().transpose(0, 1, 3, 2)
            self.v[i, :, :, :n] = lc["v"][:, :, :n].float().cpu().numpy()
        self.n = n
        self.pos = np.zeros(cap, dtype=np.int64)
        self.pos[:n] = cache["pos"].cpu().numpy()[:n]
        self.next = int(cache["next"])
        self.keep_head = keep_head + min(self.anchor, max(0, n - keep_head - self.chunk))
        # every input and output lives in an array of ours, bound to the session
        self.tok = np.zeros(B, dtype=np.int64)
        self.dist = np.zeros(cap, dtype=np.int64)
        self.mask = np.full(cap, -1e9, dtype=np.float32)
        self._refresh()
        self.logits = np.zeros((B, self.sess.get_outputs()[0].shape[-1] or 1), dtype=np.float32)
        k_new = np.zeros((B, L * H, 1, dh), dtype=np.float32)
        v_new = np.zeros_like(k_new)
        # the new keys and values seen layer-first, as the buffers hold them
        self.k_new = k_new.reshape(B, L, H, dh).transpose(1, 0, 2, 3)
        self.v_new = v_new.reshape(B, L, H, dh).transpose(1, 0, 2, 3)
        self._keep = (k_new, v_new)  # the bound outputs must outlive the binding
        self._bind()

    @property
    def cap(self) -> int:
        return self.mask.shape[0]

    def _bind(self) -> None:
        io = self.sess.io_binding()
        arrays = {"tok": self.tok, "dist": self.dist, "mask": self.mask}
        for i, name in enumerate(_kv_names(self.L)):
            arrays[name] = (self.k if name[0] == "k" else self.v)[i // 2]
        for name, arr in arrays.items():
            io.bind_input(name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        k_new, v_new = self._keep
        for name, arr in (("logits", self.logits), ("k", k_new), ("v", v_new)):
            io.bind_output(name, "cpu", 0, arr.dtype, list(arr.shape), arr.ctypes.data)
        self.io = io

    def _grow(self) -> None:
        """More slots (up to ``ctx + memory``), the used ones copied over; bound again."""
        n, cap = self.n, min(self.ctx, self.cap + GROW)
        k = np.zeros(self.k.shape[:-1] + (cap,), dtype=np.float32)
        v = np.zeros(self.v.shape[:3] + (cap, self.dh), dtype=np.float32)
        k[..., :n], v[:, :, :, :n] = self.k[..., :n], self.v[:, :, :, :n]
        pos = np.zeros(cap, dtype=np.int64)
        pos[:n] = self.pos[:n]
        self.k, self.v, self.pos = k, v, pos
        self.dist = np.zeros(cap, dtype=np.int64)
        self.mask = np.full(cap, -1e9, dtype=np.float32)
        self._refresh()
        self._bind()

    def _refresh(self) -> None:
        """Distances and mask from scratch: used slots open, free ones shut."""
        n = self.n
        np.clip(self.next - self.pos, 0, self.R - 1, out=self.dist)
        self.mask[:n] = 0.0
        self.mask[n:] = -1e9

    def step(self, tokens) -> np.ndarray:
        """Logits for ``tokens`` (one per take) at the next position."""
        self.tok[:] = tokens
        self.sess.run_with_iobinding(self.io)
        n = self.n
        if n + 1 > self.cap and self.cap < self.ctx:
            self._grow()
        elif n + 1 > self.ctx:  # forward_cached drops the oldest keys once the new one is in
            self._drop(n + 1 - self.ctx)
            n = self.n
        self.k[..., n] = self.k_new
        self.v[:, :, :, n] = self.v_new
        self.pos[n] = self.next
        self.mask[n] = 0.0
        self.dist[n] = 0
        self.n = n + 1
        self.next += 1
        self.dist += 1  # every key is one position further from the next query
        np.minimum(self.dist, self.R - 1, out=self.dist)
        return self.logits.copy()

    def _drop(self, over: int) -> None:
        h = self.keep_head
        drop = max(over, self.chunk)
        n = self.n
        keep = n - drop
        self.k[..., h:keep] = self.k[..., h + drop:n]
        self.v[:, :, :, h:keep] = self.v[:, :, :, h + drop:n]
        self.pos[h:keep] = self.pos[h + drop:n]
        self.n = keep
        self._refresh()
