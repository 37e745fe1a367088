"""Coconet-style SATB harmonizer: given any subset of the 4 x T grid cells, predict the rest.

The grid holds one token per (voice, 16th step): rest, new onset of a pitch, or the pitch held
from the step before (see ``studio.ml.harmonizer.data``). Each time step is one position of a small
Transformer encoder whose input is the sum of four per-voice token embeddings (a masked cell
shows a MASK token), a metric embedding (downbeat, mid-bar, beat, 8th, 16th) and a fermata
embedding (unknown / no / yes). The head predicts all four voices' tokens at every step.
Trained with random masks (orderless), it samples by annealed blocked Gibbs sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as ch
from ...core.errors import Cancelled


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


# ---- sampling ---------------------------------------------------------------------------


_windows = ch.windows  # the same windows as the ONNX path (chorales.windows)


@torch.no_grad()
def log_probs(model: Harmonizer, tokens, given, metric, fermata) -> torch.Tensor:
    """Log-probabilities [B, 4, T, vocab] for grids of any length (overlapping windows, averaged)."""
    B, _, T = tokens.shape
    size = model.cfg.max_len
    starts = _windows(T, size)
    if len(starts) == 1 and T <= size:
        pad_len = size - T if T < size else 0
        if pad_len:
            tokens = F.pad(tokens, (0, pad_len))
            given = F.pad(given, (0, pad_len))
            metric = F.pad(metric, (0, pad_len), value=METRIC_CLASSES - 1)
            fermata = F.pad(fermata, (0, pad_len))
            pad = torch.zeros(B, size, dtype=torch.bool, device=tokens.device)
            pad[:, T:] = True
        else:
            pad = None
        return F.log_softmax(model(tokens, given, metric, fermata, pad).float(), -1)[:, :, :T]
    # stack all windows into one batch
    tk = torch.cat([tokens[:, :, s : s + size] for s in starts])
    gv = torch.cat([given[:, :, s : s + size] for s in starts])
    mt = torch.cat([metric[:, s : s + size] for s in starts])
    fm = torch.cat([fermata[:, s : s + size] for s in starts])
    lp = F.log_softmax(model(tk, gv, mt, fm).float(), -1)
    acc = torch.zeros(B, 4, T, model.cfg.vocab, device=tokens.device)
    weight = torch.zeros(T, device=tokens.device)
    # triangular weights: a cell trusts the window where it sits near the middle
    w = 1.0 - (torch.arange(size, device=tokens.device) - (size - 1) / 2).abs() / (size / 2) + 1e-3
    for i, s in enumerate(starts):
        acc[:, :, s : s + size] += lp[i * B : (i + 1) * B] * w[None, None, :, None]
        weight[s : s + size] += w
    return acc / weight[None, None, :, None]


def fix_holds(tokens: torch.Tensor) -> torch.Tensor:
    """Make every hold continue the note before it (vectorized over the time axis).

    A hold after a rest (or at the very start) becomes a new note of its pitch; a hold whose
    pitch differs from the sounding note keeps the rhythm (no new attack) and takes that
    note's pitch. A note's pitch is the pitch of the cell that started it.
    """
    P = ch.P
    t = tokens
    T = t.shape[-1]
    hold = t > P
    after_rest = F.pad(t[..., :-1] == ch.REST, (1, 0), value=True)
    start = (t != ch.REST) & (~hold | after_rest)  # cells that begin a note
    pidx = torch.where(hold, t - 1 - P, t - 1)  # 0-based pitch (-1 for rests)
    steps = torch.arange(T, device=t.device).expand_as(t)
    last = torch.cummax(torch.where(start, steps, torch.zeros_like(steps)), -1).values
    sounding = pidx.gather(-1, last)
    out = torch.where(hold & start, 1 + pidx, t)
    return torch.where(hold & ~start, 1 + P + sounding, out)


def _sample_cells(lp: torch.Tensor, temperature: float, gen: torch.Generator | None) -> torch.Tensor:
    """One token per cell from log-probabilities ``lp`` [..., vocab] (Gumbel-max; argmax at 0)."""
    if temperature <= 1e-3:
        return lp.argmax(-1)
    u = torch.rand(lp.shape, generator=gen, device=lp.device).clamp_(1e-9, 1.0)
    return (lp / temperature - torch.log(-torch.log(u))).argmax(-1)


@torch.no_grad()
def sample(
    model: Harmonizer,
    tokens: torch.Tensor,
    given: torch.Tensor,
    metric: torch.Tensor,
    fermata: torch.Tensor,
    steps: int = 24,
    temperature: float = 0.8,
    pmax: float = 0.9,
    pmin: float = 0.05,
    anneal: float = 0.75,
    generator: torch.Generator | None = None,
    progress=None,
    final_temperature: float | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Annealed blocked Gibbs sampling (Coconet): fill the cells where ``given`` is False.

    tokens/given: [B, 4, T]; metric/fermata: [B, T]. Given cells never change. The first pass
    fills every free cell from the given ones; then each step re-masks a shrinking random
    fraction of the free cells and redraws them; the temperature falls linearly from
    ``temperature`` to ``final_temperature`` (default: the same) and the last step takes the
    most likely tokens.
    ``progress(fraction) -> bool`` is called once per step; False cancels. ``bias`` (broadcast
    to [B, 4, T, vocab]) is added to the log-probabilities, e.g. -inf for pitches out of range.
    """
    free = ~given

    def lp_of(x, known):
        lp = log_probs(model, x, known, metric, fermata)
        return lp if bias is None else lp + bias

    x = tokens.clone()
    total = steps + 1
    lp = lp_of(x, given)
    x[free] = _sample_cells(lp[free], temperature, generator)
    x = torch.where(free, fix_holds(x), x)
    if progress is not None and progress(1 / total) is False:
        raise Cancelled("harmonizing cancelled")
    for i in range(steps):
        p, temp = ch.gibbs_schedule(i, steps, temperature, final_temperature, pmax, pmin, anneal)
        r = torch.rand(free.shape, generator=generator, device=free.device)  # generator lives on that device
        block = free & (r < p)
        lp = lp_of(x, ~block)
        x[block] = _sample_cells(lp[block], temp, generator)
        x = torch.where(free, fix_holds(x), x)
        if progress is not None and progress((i + 2) / total) is False:
            raise Cancelled("harmonizing cancelled")
    return x


@torch.no_grad()
def pseudo_loglik(model: Harmonizer, x, free, metric, fermata, blocks: int = 2, seed: int = 0) -> torch.Tensor:
    """Per-candidate mean log-likelihood of the free cells, each block scored given the rest. [B]"""
    g = torch.Generator().manual_seed(seed)
    assign = torch.randint(0, blocks, free.shape, generator=g).to(free.device)
    total = torch.zeros(x.shape[0], device=x.device)
    for b in range(blocks):
        block = free & (assign == b)
        lp = log_probs(model, x, ~block, metric, fermata)
        cell = lp.gather(-1, x.unsqueeze(-1)).squeeze(-1)
        total += (cell * block).sum(dim=(1, 2))
    return total / free.sum(dim=(1, 2)).clamp(min=1)
