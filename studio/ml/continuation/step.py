"""The continuation model's cached decoding step, defined once.

:func:`cached_step` feeds new positions on top of a key/value cache over the weights of a
:class:`~.model.MusicTransformer` arranged by :class:`StepWeights`.
:meth:`~.model.MusicTransformer.forward_cached` runs it on the model's torch cache (the prompt,
any batch and length), :class:`FastStep` runs it one position at a time while sampling, and
:mod:`.decode` exports it as the ONNX Runtime graph; the training pass
(``MusicTransformer.forward``, skewed relative attention) is the independent reference the
tests hold all three against.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


class StepWeights:
    """A model's weights arranged for :func:`cached_step`: matrices transposed for ``x @ W``,
    the attention scale folded into the query projection, the relative-position tables as
    (H, d_head, R). Plain tensors, no modules: a step then costs its arithmetic and little call
    overhead. ``layers[i]`` is the tuple ``(ln1_w, ln1_b, qkv_b, qkv_w, er_t, proj_b, proj_w,
    ln2_w, ln2_b, fc1_b, fc1_w, fc2_b, fc2_w)``. Partly copies: after a weight update, arrange
    again (:meth:`of` does when a parameter changed)."""

    def __init__(self, model):
        C = model.cfg.d_model
        attn = model.blocks[0].attn
        self.n_head, self.d_head, self.R = attn.h, attn.dh, attn.er.shape[1]
        scale = 1.0 / math.sqrt(self.d_head)
        self.layers = []
        with torch.no_grad():
            for b in model.blocks:
                a = b.attn
                w_qkv, b_qkv = a.qkv.weight.detach().clone(), a.qkv.bias.detach().clone()
                w_qkv[:C] *= scale
                b_qkv[:C] *= scale
                self.layers.append(tuple(t.detach().contiguous() for t in (
                    b.ln1.weight, b.ln1.bias, b_qkv, w_qkv.t(), a.er.transpose(-1, -2),
                    a.proj.bias, a.proj.weight.t(), b.ln2.weight, b.ln2.bias,
                    b.mlp[0].bias, b.mlp[0].weight.t(), b.mlp[2].bias, b.mlp[2].weight.t())))
            self.emb = model.emb.weight.detach()
            self.ln_f = (model.ln_f.weight.detach(), model.ln_f.bias.detach())
            self.head = model.head.weight.detach().t().contiguous()

    def tensors(self) -> list[torch.Tensor]:
        return [self.emb, *self.ln_f, self.head, *(t for layer in self.layers for t in layer)]

    @staticmethod
    def of(model) -> StepWeights:
        """The arrangement of ``model``'s weights, made again only when a parameter changed."""
        stamp = tuple((p.data_ptr(), p._version) for p in model.parameters())
        held = model.__dict__.get("_step_weights")
        if held is None or held[0] != stamp:
            held = (stamp, StepWeights(model))
            model.__dict__["_step_weights"] = held
        return held[1]


def cached_step(w: StepWeights, idx: torch.Tensor, past: list, dist: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, list, list]:
    """Feed ``idx`` (B, T) at the T positions after a key/value cache; the one definition of
    cached decoding (:meth:`MusicTransformer.forward_cached`, :class:`FastStep` and the ONNX
    graph of :mod:`.decode` all run it).

    ``past[l]`` holds layer l's cached keys transposed, (B, H, d_head, S), and values
    (B, H, S, d_head); ``dist`` (T, S + T) the clamped distance from each new position to
    each key, the cached ones first, then the new ones; ``mask`` (T, S + T) is added to the
    attention scores (-inf or -1e9 for keys a position must not see), or None. Writes
    nothing: returns the logits of the last position (B, V) and per layer the new keys and
    values (B, H, T, d_head) for the caller to store.
    """
    B, Tn = idx.shape
    one = Tn == 1  # sampling: constant shapes only, so the exported graph has no shape arithmetic
    H, dh, R = w.n_head, w.d_head, w.R
    C = H * dh
    x = w.emb[idx.reshape(-1)]  # (B*T, C)
    sel = dist.reshape(-1) if one else (dist + torch.arange(Tn, device=dist.device)[:, None] * R).reshape(-1)
    ln = F.layer_norm
    ks, vs = [], []
    for (w1, b1, bqkv, wqkv, er_t, bp, wp, w2, b2, bf1, wf1, bf2, wf2), (pk, pv) in zip(w.layers, past):
        qkv = torch.addmm(bqkv, ln(x, (C,), w1, b1), wqkv)
        qkv = qkv.view(-1, 3 * H, 1, dh) if one else qkv.view(B, Tn, 3 * H, dh).transpose(1, 2)
        q, k, v = qkv.split(H, dim=1)  # (B, H, T, dh); q is scaled already
        rel = torch.matmul(q, er_t)  # (B, H, T, R): distances 0..R-1
        if one:
            rel = rel.index_select(-1, sel)
        else:
            rel = rel.reshape(B, H, Tn * R).index_select(-1, sel).view(B, H, Tn, -1)
        own = (q * k).sum(-1, keepdim=True) if one else torch.matmul(q, k.transpose(-1, -2))
        scores = torch.cat([torch.matmul(q, pk), own], -1) + rel
        if mask is not None:
            scores = scores + mask
        att = torch.softmax(scores, dim=-1)
        if one:  # products with a single key are elementwise (cheaper than a matmul in the graph)
            y = (torch.matmul(att[..., :-1], pv) + att[..., -1:] * v).view(-1, C)
        else:
            y = (torch.matmul(att[..., :-Tn], pv) + torch.matmul(att[..., -Tn:], v)).transpose(1, 2).reshape(-1, C)
        x = x + torch.addmm(bp, y, wp)
        x = x + torch.addmm(bf2, F.gelu(torch.addmm(bf1, ln(x, (C,), w2, b2), wf1)), wf2)
        ks.append(k)
        vs.append(v)
    last = x if one else x.view(B, Tn, C)[:, -1]
    return torch.matmul(ln(last, (C,), *w.ln_f), w.head), ks, vs


def cache_past(lc: dict, B: int, w: StepWeights, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """A torch cache layer's keys (transposed views) and values in use, as :func:`cached_step` reads them."""
    if "k" not in lc:
        empty = torch.zeros(B, w.n_head, 0, w.d_head, device=dev, dtype=w.emb.dtype)
        return empty.transpose(-1, -2), empty
    n = lc["n"]
    return lc["k"][:, :, :n].transpose(-1, -2), lc["v"][:, :, :n]


def cache_store(lc: dict, k: torch.Tensor, v: torch.Tensor) -> None:
    """Append new keys and values (B, H, T, dh) to a torch cache layer's preallocated buffers."""
    B, H, Tn, dh = k.shape
    n = lc["n"]
    if "k" not in lc or lc["k"].shape[0] != B or lc["k"].shape[2] < n + Tn:
        cap = max(n + Tn, lc["cap"])
        kb, vb = k.new_zeros(B, H, cap, dh), v.new_zeros(B, H, cap, dh)
        if n and "k" in lc:
            kb[:, :, :n], vb[:, :, :n] = lc["k"][:, :, :n], lc["v"][:, :, :n]
        lc["k"], lc["v"] = kb, vb
    lc["k"][:, :, n: n + Tn] = k
    lc["v"][:, :, n: n + Tn] = v
    lc["n"] = n + Tn


class FastStep:
    """One cached decoding position for sampling: :meth:`MusicTransformer.forward_cached` over
    the model's arranged weights, looked up once, when it is built (build it right before
    sampling; it must not outlive a weight update)."""

    def __init__(self, model):
        self.model = model
        self.weights = StepWeights.of(model)

    def __call__(self, idx: torch.Tensor, cache: dict, keep_head: int = 0) -> torch.Tensor:
        """Logits (B, V) after feeding ``idx`` (B,) on top of ``cache``."""
        return self.model.forward_cached(idx[:, None], cache, keep_head, self.weights)
