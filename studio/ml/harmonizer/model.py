"""Coconet-style SATB harmonizer: given any subset of the 4 x T grid cells, predict the rest.

The grid holds one token per (voice, 16th step): rest, new onset of a pitch, or the pitch held
from the step before (see ``studio.ml.harmonizer.data``). Two networks share one interface,
``forward(tokens, given, metric, fermata, pad) -> logits [B, 4, T, vocab]``:

* ``PatchHarmonizer`` (``arch="patch"``, the shipped one): the grid is cut into patches of
  ``patch`` 16th steps (a beat in 4/4); each patch is one Transformer position whose input is
  the sum of one embedding per (voice, sub-step) cell (a hidden cell shows that table's MASK
  row) and per-step metric and fermata embeddings; attention carries a learned relative-position
  bias clipped at ``max_dist`` patches, so the network reads windows of any length; the head
  predicts all 4 x ``patch`` cells of its position. A quarter of the positions of a per-step
  model for the same music: a wider network for the same time.
* ``Harmonizer`` (``arch="step"``, earlier weights): one position per 16th step.

Fermata classes (``data.fermata_classes``): 0 unknown, 1 no fermata, 2 fermata (a phrase end),
3 the piece's last note. Trained with random masks (orderless); ``sample.py`` samples from it
by annealed blocked Gibbs sampling through :class:`TorchNet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as ch


@dataclass
class Config:
    vocab: int = ch.VOCAB
    d_model: int = 160
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 640
    dropout: float = 0.1
    max_len: int = 128  # 16th steps per window the sampler hands the network
    arch: str = "step"  # "step": one position per 16th; "patch": one position per ``patch`` steps
    patch: int = 4
    max_dist: int = 32  # relative distances (in patches) clipped here


from .data import METRIC_CLASSES, fermata_classes, metric_classes  # noqa: E402,F401  (torch-free)


class Harmonizer(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.mask_token = cfg.vocab
        self.tok = nn.ModuleList([nn.Embedding(cfg.vocab + 1, cfg.d_model) for _ in range(4)])
        self.metric = nn.Embedding(METRIC_CLASSES, cfg.d_model)
        self.fermata = nn.Embedding(3, cfg.d_model)
        self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, 4 * cfg.vocab)

    def forward(self, tokens, given, metric, fermata, pad=None):
        """tokens/given: [B, 4, T] (long/bool); metric/fermata: [B, T]; pad: [B, T] bool (True = padding).

        Returns logits [B, 4, T, vocab].
        """
        B, V, T = tokens.shape
        x = torch.where(given, tokens, torch.full_like(tokens, self.mask_token))
        h = sum(self.tok[v](x[:, v]) for v in range(4))
        h = h + self.metric(metric) + self.fermata(fermata.clamp(0, 2)) + self.pos(torch.arange(T, device=tokens.device))[None]
        h = self.encoder(h, src_key_padding_mask=pad)
        out = self.head(self.norm(h)).view(B, T, 4, self.cfg.vocab)
        return out.permute(0, 2, 1, 3)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


FERMATA_CLASSES = 4


class _Block(nn.Module):
    """Pre-norm Transformer block with a learned, clipped relative-position bias per head."""

    def __init__(self, cfg: Config):
        super().__init__()
        d = cfg.d_model
        self.h = cfg.n_heads
        self.n1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.n2 = nn.LayerNorm(d)
        self.ff1 = nn.Linear(d, cfg.d_ff)
        self.ff2 = nn.Linear(cfg.d_ff, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.rel = nn.Parameter(torch.zeros(cfg.n_heads, 2 * cfg.max_dist + 1))

    def forward(self, x, rel_idx, key_bias):
        B, N, D = x.shape
        h = self.h
        q, k, v = self.qkv(self.n1(x)).view(B, N, 3, h, D // h).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D // h))
        att = self.drop((att + self.rel[:, rel_idx][None] + key_bias).softmax(-1))
        x = x + self.drop(self.proj((att @ v).transpose(1, 2).reshape(B, N, D)))
        return x + self.drop(self.ff2(self.drop(F.gelu(self.ff1(self.n2(x))))))


class PatchHarmonizer(nn.Module):
    """The beat-patched network (see the module's docstring); same interface as ``Harmonizer``."""

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        P, V, d = cfg.patch, cfg.vocab, cfg.d_model
        self.mask_token = V
        self.tok = nn.Embedding(4 * P * (V + 1), d)
        self.metric = nn.Embedding(P * METRIC_CLASSES, d)
        self.fermata = nn.Embedding(P * FERMATA_CLASSES, d)
        self.blocks = nn.ModuleList([_Block(cfg) for _ in range(cfg.n_layers)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 4 * P * V)
        self.register_buffer("tok_off", (torch.arange(4 * P) * (V + 1)).view(1, 1, 4 * P), persistent=False)
        self.register_buffer("met_off", (torch.arange(P) * METRIC_CLASSES).view(1, 1, P), persistent=False)
        self.register_buffer("fer_off", (torch.arange(P) * FERMATA_CLASSES).view(1, 1, P), persistent=False)
        for emb in (self.tok, self.metric, self.fermata):
            nn.init.normal_(emb.weight, std=0.02)

    def forward(self, tokens, given, metric, fermata, pad=None):
        """tokens/given: [B, 4, T] (long/bool); metric/fermata: [B, T]; pad: [B, T] bool (True = padding).

        Returns logits [B, 4, T, vocab]. ``T`` need not be a multiple of the patch (the last
        patch is padded); patches start at step 0, so a grid should start on a beat.
        """
        cfg = self.cfg
        P, V = cfg.patch, cfg.vocab
        B, _, T = tokens.shape
        N = (T + P - 1) // P
        extra = N * P - T
        if pad is None:
            pad = torch.zeros(B, T, dtype=torch.bool, device=tokens.device)
        if extra:
            tokens = F.pad(tokens, (0, extra))
            given = F.pad(given, (0, extra), value=True)
            metric = F.pad(metric, (0, extra), value=METRIC_CLASSES - 1)
            fermata = F.pad(fermata, (0, extra))
            pad = F.pad(pad, (0, extra), value=True)
        x = torch.where(given, tokens, torch.full_like(tokens, self.mask_token))
        x = x.view(B, 4, N, P).permute(0, 2, 1, 3).reshape(B, N, 4 * P) + self.tok_off
        h = self.tok(x).sum(2)
        h = h + self.metric(metric.view(B, N, P) + self.met_off).sum(2)
        h = h + self.fermata(fermata.clamp(0, FERMATA_CLASSES - 1).view(B, N, P) + self.fer_off).sum(2)
        key_bias = (pad.view(B, N, P).all(-1).float() * -1e4)[:, None, None, :]
        r = torch.arange(N, device=tokens.device)
        rel_idx = (r[None, :] - r[:, None]).clamp(-cfg.max_dist, cfg.max_dist) + cfg.max_dist
        for b in self.blocks:
            h = b(h, rel_idx, key_bias)
        out = self.head(self.norm(h)).view(B, N, 4, P, V).permute(0, 2, 1, 3, 4).reshape(B, 4, N * P, V)
        return out[:, :, :T]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(cfg_dict: dict) -> Harmonizer | PatchHarmonizer:
    cfg = Config(**cfg_dict)
    return PatchHarmonizer(cfg) if cfg.arch == "patch" else Harmonizer(cfg)


# ---- the network as the sampler sees it -----------------------------------------------------


class TorchNet:
    """The module as a :class:`~studio.ml.harmonizer.sample.Net`: numpy grids in, numpy logits out,
    on whatever device the module lives (the sampler itself is numpy, shared with ONNX Runtime)."""

    def __init__(self, model: Harmonizer | PatchHarmonizer, device: torch.device | str):
        self.model = model.eval()
        self.device = torch.device(device)
        self.vocab, self.max_len = model.cfg.vocab, model.cfg.max_len

    @torch.no_grad()
    def __call__(self, tokens, given, metric, fermata, pad) -> np.ndarray:
        def t(a, dtype):
            return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=self.device)

        logits = self.model(t(tokens, torch.long), t(given, torch.bool), t(metric, torch.long),
                            t(fermata, torch.long), t(pad, torch.bool))
        return logits.float().cpu().numpy()
