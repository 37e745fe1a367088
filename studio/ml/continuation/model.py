"""The continuation model: a decoder-only Transformer with Music-Transformer relative attention.

Relative attention (Huang et al., 2018): besides ``q·k``, each query scores the *distance*
to each key through a learned embedding per head and distance.  Training computes it with
the "skewing" trick, which turns ``Q @ E_r^T`` (L x L) into distance-aligned logits by a
pad-reshape-slice, without the L x L x D tensor of the naive method.  There are no absolute
positions, so a key/value cache can slide: old keys drop out and distances stay right.

Sampling (:func:`sample`) runs K takes in one batch with a KV cache; each token is drawn by
:func:`pick` among the tokens the take's :class:`~studio.ml.continuation.tokens.Grammar` allows (so the
decoder can never break the sequence), with temperature and top-p.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import tokens as T
from .step import FastStep, StepWeights, cache_past, cache_store, cached_step


@dataclass
class Config:
    vocab_size: int = T.VOCAB_SIZE
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 192
    d_ff: int = 768
    ctx: int = 384  # training window; also the longest relative distance learned
    dropout: float = 0.1


# ---- relative attention -----------------------------------------------------------------------
def skew(qe: torch.Tensor) -> torch.Tensor:
    """``qe[..., i, m]`` scores distance ``L-1-m``; return ``s[..., i, j]`` scoring ``i-j`` (j <= i)."""
    *lead, L, _ = qe.shape
    padded = F.pad(qe, (1, 0))  # (..., L, L+1)
    return padded.reshape(*lead, L + 1, L)[..., 1:, :]


def rel_logits_skewed(q: torch.Tensor, er: torch.Tensor) -> torch.Tensor:
    """q: (B, H, L, D); er: (H, R, D) embeddings of distances 0..R-1 -> (B, H, L, L)."""
    L = q.shape[-2]
    idx = (L - 1 - torch.arange(L, device=q.device)).clamp(max=er.shape[1] - 1)
    e = er[:, idx]  # (H, L, D): column m <-> distance L-1-m
    return skew(torch.matmul(q, e.unsqueeze(0).transpose(-1, -2)))


def rel_logits_naive(q: torch.Tensor, er: torch.Tensor) -> torch.Tensor:
    """The same as :func:`rel_logits_skewed` by building the L x L x D tensor (for tests)."""
    L = q.shape[-2]
    ar = torch.arange(L, device=q.device)
    dist = (ar[:, None] - ar[None, :]).clamp(min=0, max=er.shape[1] - 1)  # (L, L)
    e = er[:, dist]  # (H, L, L, D)
    out = torch.einsum("bhid,hijd->bhij", q, e)
    return out.masked_fill(ar[None, :] > ar[:, None], 0.0)


class RelativeSelfAttention(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.h, self.dh = cfg.n_head, cfg.d_model // cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.er = nn.Parameter(torch.randn(cfg.n_head, cfg.ctx, self.dh) * 0.02)
        self.drop = cfg.dropout

    def forward(self, x):
        B, L, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, L, self.h, self.dh).transpose(1, 2) for t in (q, k, v))
        bias = rel_logits_skewed(q, self.er) * (1.0 / math.sqrt(self.dh))
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        bias = bias.masked_fill(~causal, float("-inf"))
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=self.drop if self.training else 0.0)
        return self.proj(y.transpose(1, 2).reshape(B, L, C))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = RelativeSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln1(x)))
        return x + self.drop(self.mlp(self.ln2(x)))


class MusicTransformer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.emb = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.head.weight = self.emb.weight  # tied
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (B, L, V); with ``targets`` (PAD ignored) also the mean cross-entropy in nats."""
        x = self.drop(self.emb(idx))
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=T.PAD)
        return logits, loss

    # ---- cached decoding ----------------------------------------------------------------------
    def new_cache(self, memory: int = 0) -> dict:
        """An empty key/value cache holding up to ``ctx + memory`` positions (``memory``: the
        Transformer-XL memory of positions past the context, see :mod:`.decode`)."""
        limit = self.cfg.ctx + max(0, int(memory))
        cap = limit + max(1, self.cfg.ctx // 8)
        return {"layers": [{"n": 0, "cap": cap} for _ in self.blocks], "pos": torch.zeros(0, dtype=torch.long),
                "next": 0, "limit": limit}

    def forward_cached(self, idx: torch.Tensor, cache: dict, keep_head: int = 0,
                       weights: StepWeights | None = None) -> torch.Tensor:
        """Logits of the last position after feeding ``idx`` (B, T) on top of ``cache``.

        Runs :func:`cached_step` over ``weights`` (default: this model's, arranged once per
        set of parameters). When the cache would exceed its limit (``cfg.ctx`` keys plus its
        memory), the oldest keys after the first ``keep_head`` (the header naming the tracks)
        are dropped.
        """
        if weights is None:
            weights = StepWeights.of(self)
        B, Tn = idx.shape
        dev = idx.device
        pos = cache["next"]
        q_pos = torch.arange(pos, pos + Tn, device=dev)
        k_pos = torch.cat([cache["pos"].to(dev), q_pos])
        dist = (q_pos[:, None] - k_pos[None, :]).clamp_(min=0, max=weights.R - 1)  # (T, S + T)
        mask = None
        if Tn > 1:  # the new positions see each other causally
            mask = torch.zeros(Tn, k_pos.numel(), device=dev, dtype=weights.emb.dtype)
            mask.masked_fill_(k_pos[None, :] > q_pos[:, None], float("-inf"))
        past = [cache_past(lc, B, weights, dev) for lc in cache["layers"]]
        logits, ks, vs = cached_step(weights, idx, past, dist, mask)
        for lc, k, v in zip(cache["layers"], ks, vs):
            cache_store(lc, k, v)
        cache["pos"], cache["next"] = k_pos, pos + Tn
        over = k_pos.numel() - cache.get("limit", self.cfg.ctx)
        if over > 0:
            self._drop_oldest(cache, k_pos, over, keep_head)
        return logits

    def _drop_oldest(self, cache: dict, k_pos: torch.Tensor, over: int, keep_head: int) -> None:
        """Forget the oldest keys after the first ``keep_head`` (in chunks: fewer copies)."""
        dev = k_pos.device
        drop = max(over, self.cfg.ctx // 8)
        keep = torch.cat([torch.arange(keep_head, device=dev),
                          torch.arange(keep_head + drop, k_pos.numel(), device=dev)])
        cache["pos"] = k_pos[keep]
        for lc in cache["layers"]:
            n = keep.numel()
            lc["k"][:, :, :n] = lc["k"][:, :, keep]
            lc["v"][:, :, :n] = lc["v"][:, :, keep]
            lc["n"] = n


def grow(model: MusicTransformer, weights: dict, old: dict) -> None:
    """Load the weights of a shallower model (same widths) into ``model`` so it computes the same function.

    The old blocks keep their order; each new block is placed after an evenly spaced old one
    with its two output projections at zero, so it starts as the identity (the residual stream
    passes through unchanged) and training then gives it work. Raises ValueError unless the
    two configurations differ in depth alone.
    """
    new = asdict(model.cfg)
    if {k: v for k, v in old.items() if k not in ("n_layer", "dropout")} != \
            {k: v for k, v in new.items() if k not in ("n_layer", "dropout")}:
        raise ValueError("only a deeper model of the same widths can start from these weights")
    n_old, n_new = int(old["n_layer"]), model.cfg.n_layer
    if n_new < n_old:
        raise ValueError(f"cannot shrink {n_old} blocks to {n_new}")
    # new position of each old block: spread the added ones evenly between them
    extra = n_new - n_old
    slots, placed, j = [], 0, 0
    for i in range(n_old):
        slots.append(j)
        j += 1
        if placed < extra and (i + 1) * extra // n_old > placed:
            j += (i + 1) * extra // n_old - placed
            placed = (i + 1) * extra // n_old
    state = model.state_dict()
    out = {k: v for k, v in weights.items() if not k.startswith("blocks.")}
    for k, v in weights.items():
        if k.startswith("blocks."):
            _, i, rest = k.split(".", 2)
            out[f"blocks.{slots[int(i)]}.{rest}"] = v
    fresh = sorted(set(range(n_new)) - set(slots))
    for b in fresh:
        for k, v in state.items():
            if k.startswith(f"blocks.{b}."):
                out[k] = v.clone()
        for name in ("attn.proj.weight", "attn.proj.bias", "mlp.2.weight", "mlp.2.bias"):
            out[f"blocks.{b}.{name}"] = torch.zeros_like(state[f"blocks.{b}.{name}"])
    if "head.weight" in state and "head.weight" not in out:
        out["head.weight"] = out["emb.weight"]
    model.load_state_dict(out)


def build(config: dict) -> MusicTransformer:
    return MusicTransformer(Config(**config))


# ---- sampling -----------------------------------------------------------------------------------
def pick(scores: np.ndarray, allowed: np.ndarray, temperature: float, top_p: float | None, u: float,
         bias: np.ndarray | None = None) -> int:
    """One token from a row of model scores: only ``allowed`` tokens (a bool mask), scores plus
    ``bias``, divided by ``temperature``; the smallest set of likeliest tokens reaching ``top_p``
    of the probability; then inverse-CDF sampling with the uniform number ``u``.

    Runs once per token, so it keeps to a few array methods (numpy's function wrappers cost
    more than the arithmetic at this size): sort the scores, then one cumulative sum of the
    unnormalized probabilities serves both the top-p cut and the draw."""
    idx = allowed.nonzero()[0]
    if len(idx) == 1:
        return int(idx[0])
    z = scores[idx].astype(np.float64)
    if bias is not None:
        z += bias[idx]
    order = (-z).argsort(kind="stable")
    zs = z[order]
    zs -= zs[0]
    zs /= max(1e-4, float(temperature))
    c = np.exp(zs, out=zs).cumsum()
    if top_p is not None and top_p < 1.0:  # keep each token whose predecessors hold <= top_p
        c = c[: 1 + int(c[:-1].searchsorted(top_p * c[-1], side="right"))]
    k = min(int(c.searchsorted(u * c[-1], side="right")), len(c) - 1)
    return int(idx[order[k]])


@torch.inference_mode()
def sample(model: MusicTransformer, prompt: list[int], grammars: list[T.Grammar], n_bars: int,
           temperature: float = 1.0, top_p: float | None = 0.95, seed: int | None = None,
           max_tokens: int = 4096, n_header: int = 0, progress=None, use_cache: bool = True,
           threads: int | None = None, backend: str = "auto", memory: int = 0,
           anchor: int = 0) -> list[list[int]]:
    """Sample one body per grammar (a batch of takes) after ``prompt``; stop at the bar after ``n_bars``.

    Returns the new tokens of each take, starting with its first BAR and holding exactly
    ``n_bars`` bars (fewer only if ``max_tokens`` runs out).  ``progress(fraction)``
    returning False stops early (raises :class:`studio.core.errors.Cancelled`).
    ``threads`` sets the CPU threads for the call. ``backend``: "auto" (on the CPU, cached
    decoding runs ONNX Runtime's int8-weight graph when it is installed), "onnx" (its fp32
    graph: the same logits as torch), "onnx-int8" or "torch".

    Cached decoding keeps ``memory`` positions past the context (Transformer-XL, see
    :mod:`.decode`), the prompt included: a prompt up to ``ctx + memory`` tokens is seen
    whole; ``anchor`` prompt positions after the header are never dropped. A grammar with a
    ``sampling(temperature, top_p)`` method may change both for its next token.
    """
    args = (model, prompt, grammars, n_bars, temperature, top_p, seed, max_tokens, n_header, progress, use_cache,
            backend, threads, memory, anchor)
    with flush_denormals():
        if threads is None:
            return _sample(*args)
        old = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return _sample(*args)
        finally:
            torch.set_num_threads(old)


@contextlib.contextmanager
def flush_denormals():
    """Floats below 2^-126 count as zero in this thread while the block runs (then not: nothing else
    in the product turns the flag on, and torch cannot read it back).

    A trained model's sharp attention heads and GELU tails produce such tiny numbers, and x86
    computes with them on a slow path: in the 6-block model's decoding step they halved the
    speed (about 600 against 1,150 tokens/s on one core). Their size is far below the rounding of
    any logit. The flag is per thread: the sampling thread runs the torch prompt pass and, with
    one thread, ONNX Runtime's step; the session's own pool threads get the same setting from
    its options (:func:`.decode.session`).
    """
    on = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if on:
            torch.set_flush_denormal(False)


def _step_function(model, cache: dict, keep_head: int, backend: str, threads: int | None, memory: int = 0,
                   anchor: int = 0):
    """``step(tokens) -> logits`` (numpy) for cached decoding. On the CPU, where ONNX Runtime is
    installed: "auto" runs the int8-weight graph, "onnx" the fp32 one, "onnx-int8" the int8 one;
    elsewhere (or "torch") the lean torch step."""
    dev = next(model.parameters()).device
    if backend in ("auto", "onnx", "onnx-int8") and dev.type == "cpu":
        from . import decode as continuation_ort

        if continuation_ort.available():
            # "auto": the int8 graph; if it cannot be made, the fp32 one; then the torch step
            tries = {"auto": ("int8", "fp32"), "onnx": ("fp32",), "onnx-int8": ("int8",)}[backend]
            for precision in tries:
                try:
                    dec = continuation_ort.OrtDecoder(model, threads or torch.get_num_threads(), precision,
                                                      memory, anchor)
                except Exception as exc:  # export, quantization or session failed
                    if backend != "auto":
                        raise
                    import logging

                    logging.getLogger(__name__).warning("ONNX Runtime %s decoding unavailable (%s)", precision, exc)
                    continue
                dec.start(cache, keep_head)
                return lambda toks: dec.step(np.asarray(toks, dtype=np.int64))
        elif backend != "auto":
            raise RuntimeError("onnxruntime is not installed")
    fast = FastStep(model)
    keep = keep_head + min(max(0, anchor), max(0, cache["layers"][0]["n"] - keep_head - model.cfg.ctx // 8))
    return lambda toks: fast(torch.tensor(toks, dtype=torch.long, device=dev), cache,
                             keep_head=keep).float().cpu().numpy()


def _sampling(g, temperature, top_p):
    return g.sampling(temperature, top_p) if hasattr(g, "sampling") else (temperature, top_p)


def _sample(model, prompt, grammars, n_bars, temperature, top_p, seed, max_tokens, n_header, progress, use_cache,
            backend="auto", threads=None, memory=0, anchor=0):
    from ...core.errors import Cancelled

    dev = next(model.parameters()).device
    K = len(grammars)
    rng = np.random.default_rng(int(seed) if seed is not None else None)
    outs: list[list[int]] = [[] for _ in range(K)]
    done = [False] * K
    ctx = model.cfg.ctx
    if use_cache:
        cache = model.new_cache(memory)
        limit = cache["limit"]
        head = min(n_header, ctx // 4)
        first = list(prompt) if len(prompt) <= limit else list(prompt[:head]) + list(prompt[-(limit - head):])
        start = torch.tensor([first] * K, dtype=torch.long, device=dev)
        logits = model.forward_cached(start, cache, keep_head=head).float().cpu().numpy()
        step_fn = _step_function(model, cache, head, backend, threads, memory, anchor)
    seqs = [list(prompt) for _ in range(K)]
    for step in range(max_tokens):
        if not use_cache:
            window = [s[:n_header] + s[-(ctx - n_header):] if len(s) > ctx else s for s in seqs]
            logits = model(torch.tensor(window, dtype=torch.long, device=dev))[0][:, -1].float().cpu().numpy()
        u = rng.random(K)
        nxt = [pick(logits[i], g.allowed(), *_sampling(g, temperature, top_p), u[i], g.logit_bias())
               if not done[i] else 0 for i, g in enumerate(grammars)]
        for i, g in enumerate(grammars):
            if done[i]:  # keep the batch rectangular; a finished take's tokens are ignored
                seqs[i].append(seqs[i][-1])
                continue
            t = nxt[i]
            if t == T.BAR and g.bars_done == n_bars:
                done[i] = True
                seqs[i].append(seqs[i][-1])
                continue
            g.step(t)
            outs[i].append(t)
            seqs[i].append(t)
        if all(done):
            break
        if progress is not None:
            frac = sum(min(1.0, g.bars_done / n_bars) for g in grammars) / K
            if progress(min(0.99, frac)) is False:
                raise Cancelled()
        if use_cache:
            logits = step_fn([seqs[i][-1] for i in range(K)])
    return outs


# ---- speed ---------------------------------------------------------------------------------------
def tokens_per_second(model, prompt: list[int], n_tokens: int = 256, use_cache: bool = True,
                      threads: int | None = 1, backend: str = "auto", n_tracks: int = 16,
                      memory: int = 0) -> tuple[float, float]:
    """Batch-1 sampling speed (grammar, top-p and all) after ``prompt``: new tokens per second of
    wall time, and per second of this process's CPU time (what an idle machine would give).
    ``memory``: positions kept past the context (the cache, and so each step's attention, is
    that much longer from the first step on)."""
    import time

    def run(n):
        g = [T.Grammar(n_tracks, [T.RES * 4] * 10_000)]
        t0, c0 = time.perf_counter(), time.process_time()
        out = sample(model, prompt, g, 10_000, seed=0, max_tokens=n, use_cache=use_cache, threads=threads,
                     backend=backend, memory=memory)
        return len(out[0]) / (time.perf_counter() - t0), len(out[0]) / max(1e-9, time.process_time() - c0)

    run(8)  # warm up
    return run(n_tokens)
