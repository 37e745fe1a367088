"""Coconet-style SATB harmonizer: given any subset of the 4 x T grid cells, predict the rest.

The grid holds one token per (voice, 16th step): rest, new onset of a pitch, or the pitch held
from the step before (see ``studio.ml.harmonizer.data``). Each time step is one position of a small
Transformer encoder whose input is the sum of four per-voice token embeddings (a masked cell
shows a MASK token), a metric embedding (downbeat, mid-bar, beat, 8th, 16th) and a fermata
embedding (unknown / no / yes). The head predicts all four voices' tokens at every step.
Trained with random masks (orderless); ``sample.py`` samples from it by annealed blocked Gibbs
sampling through :class:`TorchNet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from . import data as ch


@dataclass
class Config:
    vocab: int = ch.VOCAB
    d_model: int = 160
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 640
    dropout: float = 0.1
    max_len: int = 128


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
        h = h + self.metric(metric) + self.fermata(fermata) + self.pos(torch.arange(T, device=tokens.device))[None]
        h = self.encoder(h, src_key_padding_mask=pad)
        out = self.head(self.norm(h)).view(B, T, 4, self.cfg.vocab)
        return out.permute(0, 2, 1, 3)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(cfg_dict: dict) -> Harmonizer:
    return Harmonizer(Config(**cfg_dict))


# ---- the network as the sampler sees it -----------------------------------------------------


class TorchNet:
    """The module as a :class:`~studio.ml.harmonizer.sample.Net`: numpy grids in, numpy logits out,
    on whatever device the module lives (the sampler itself is numpy, shared with ONNX Runtime)."""

    def __init__(self, model: Harmonizer, device: torch.device | str):
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
