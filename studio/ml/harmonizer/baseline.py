"""ForwardBach, the simple baseline: a feed-forward net, melody window in, three voices out.

For each 16th step it sees the soprano tokens (and metric classes) in a window of
``context`` steps either side and predicts the alto, tenor and bass tokens of that step
independently. No voice sees another, and no step sees the others' choices: the comparison
point for the harmonizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as ch
from .model import METRIC_CLASSES, metric_classes
from .sample import fix_holds


@dataclass
class Config:
    context: int = 8
    emb: int = 24
    hidden: int = 512
    dropout: float = 0.2


def features(soprano: np.ndarray, metric: np.ndarray, context: int) -> np.ndarray:
    """[T, 2 * (2 * context + 1)] int64: soprano tokens then metric classes around each step."""
    T = len(soprano)
    w = 2 * context + 1
    sop = np.full(T + 2 * context, ch.VOCAB, dtype=np.int64)
    sop[context : context + T] = soprano
    met = np.full(T + 2 * context, METRIC_CLASSES - 1, dtype=np.int64)
    met[context : context + T] = metric
    idx = np.arange(T)[:, None] + np.arange(w)[None, :]
    return np.concatenate([sop[idx], met[idx]], axis=1)


class ForwardBach(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        w = 2 * cfg.context + 1
        self.w = w
        self.tok = nn.Embedding(w * (ch.VOCAB + 1), cfg.emb)
        self.met = nn.Embedding(w * METRIC_CLASSES, cfg.emb // 2)
        self.mlp = nn.Sequential(
            nn.Linear(w * (cfg.emb + cfg.emb // 2), cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, 3 * ch.VOCAB),
        )
        self.register_buffer("offs_t", torch.arange(w) * (ch.VOCAB + 1), persistent=False)
        self.register_buffer("offs_m", torch.arange(w) * METRIC_CLASSES, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [N, 2w] int from ``features`` -> logits [N, 3, vocab] for alto, tenor, bass."""
        t = self.tok(x[:, : self.w] + self.offs_t).flatten(1)
        m = self.met(x[:, self.w :] + self.offs_m).flatten(1)
        return self.mlp(torch.cat([t, m], 1)).view(-1, 3, ch.VOCAB)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build(cfg_dict: dict) -> ForwardBach:
    return ForwardBach(Config(**cfg_dict))


def dataset(chorales: list[ch.Chorale], context: int):
    xs, ys = [], []
    for c in chorales:
        xs.append(features(c.voices[0], metric_classes(c.pos, c.bar, c.beat), context))
        ys.append(c.voices[1:].T.astype(np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


@torch.no_grad()
def nll(model: ForwardBach, data, device, batch: int = 4096) -> float:
    """Mean NLL in nats per (voice, step) cell of alto, tenor and bass given the soprano."""
    model.eval()
    x, y = data
    total = 0.0
    for s in range(0, len(x), batch):
        logits = model(x[s : s + batch].to(device))
        total += float(F.cross_entropy(logits.reshape(-1, ch.VOCAB), y[s : s + batch].to(device).reshape(-1), reduction="sum"))
    model.train()
    return total / y.numel()


@torch.no_grad()
def harmonize_tokens(model: ForwardBach, soprano: np.ndarray, metric: np.ndarray, temperature: float = 0.0,
                     generator: torch.Generator | None = None) -> np.ndarray:
    """[4, T] tokens: the given soprano and each step's alto/tenor/bass drawn independently."""
    model.eval()
    x = torch.from_numpy(features(soprano, metric, model.cfg.context))
    logits = model(x)
    if temperature <= 1e-3:
        atb = logits.argmax(-1)
    else:
        probs = torch.softmax(logits / temperature, -1)
        atb = torch.multinomial(probs.view(-1, ch.VOCAB), 1, generator=generator).view(probs.shape[:-1])
    out = torch.cat([torch.from_numpy(np.asarray(soprano, dtype=np.int64))[None], atb.T], 0)
    return fix_holds(out.numpy())
