"""The variation model: absorbing-state (mask) discrete diffusion on the multi-track piano roll.

What it sees: for every (track, step) a column of pitch cells, each REST / ONSET / HOLD or
MASKED (unknown), plus the key's scale, the position in the bar, the track's slot and
whether the track is monophonic.  What it predicts: for every masked cell the
distribution over REST / ONSET / HOLD.

The backbone is a small axial Transformer: each block attends along time within a track
(rotary positions, so windows may differ in length) and then across tracks within a step,
then an MLP.  Trained with random masks at random rates (the forward process of absorbing
diffusion), it fills any masked part given the rest: that is inpainting, and with a
partial mask of the selection (strength s) it is SDEdit-style variation.

Sampling (:func:`denoise`) unmasks the masked columns over a few steps, sampling each
column's cells from the model, with hard constraints: only allowed pitch classes may start
a note, a HOLD only continues a sounding note, and a monophonic track gets one pitch at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .roll import HOLD, LOW, MAX_BAR_STEPS, MAX_TRACKS, N_PITCH, ONSET, REST


@dataclass
class Config:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    mlp_mult: int = 3
    dropout: float = 0.0
    n_pitch: int = N_PITCH
    max_tracks: int = MAX_TRACKS


# ---- the network ---------------------------------------------------------------------
_ROPE_CACHE: dict = {}


def _rope_tables(T: int, D: int, device, dtype):
    key = (T, D, str(device), dtype)
    if key not in _ROPE_CACHE:
        half = D // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        ang = torch.arange(T, dtype=torch.float32)[:, None] * freqs[None]
        if len(_ROPE_CACHE) > 64:
            _ROPE_CACHE.clear()
        _ROPE_CACHE[key] = (ang.cos().to(device, dtype), ang.sin().to(device, dtype))
    return _ROPE_CACHE[key]


def _rope(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding along dim -2 (time) of ``[..., T, head_dim]``."""
    T, D = x.shape[-2], x.shape[-1]
    half = D // 2
    cos, sin = _rope_tables(T, D, x.device, x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, cfg: Config, rotary: bool):
        super().__init__()
        self.h = cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.rotary = rotary

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        N, L, D = x.shape
        q, k, v = self.qkv(x).view(N, L, 3, self.h, D // self.h).permute(2, 0, 3, 1, 4)
        if self.rotary:
            q, k = _rope(q), _rope(k)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out(y.transpose(1, 2).reshape(N, L, D))


class Block(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        d = cfg.d_model
        self.ln_t, self.att_t = nn.LayerNorm(d), Attention(cfg, rotary=True)
        self.ln_k, self.att_k = nn.LayerNorm(d), Attention(cfg, rotary=False)
        self.ln_m = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_mult * d), nn.GELU(), nn.Linear(cfg.mlp_mult * d, d))
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, time_mask, track_mask):
        B, K, T, D = x.shape
        h = self.att_t(self.ln_t(x).reshape(B * K, T, D), time_mask).view(B, K, T, D)
        x = x + self.drop(h)
        h = self.att_k(self.ln_k(x).transpose(1, 2).reshape(B * T, K, D), track_mask)
        x = x + self.drop(h.view(B, T, K, D).transpose(1, 2))
        return x + self.drop(self.mlp(self.ln_m(x)))


class VariationModel(nn.Module):
    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        P, d = cfg.n_pitch, cfg.d_model
        self.inp = nn.Linear(4 * P, d)  # onset, hold, masked flags and in-scale flags per pitch
        self.bar_pos = nn.Embedding(MAX_BAR_STEPS, d)
        self.bar_len = nn.Embedding(MAX_BAR_STEPS + 1, d)
        self.track = nn.Embedding(cfg.max_tracks, d)
        self.mono = nn.Embedding(2, d)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, 3 * P)
        pc = (torch.arange(P) + LOW) % 12
        self.register_buffer("pitch_pc", pc, persistent=False)

    def forward(self, cells, masked, scale, bar_pos, bar_len, mono, time_valid=None, track_valid=None):
        """Logits ``[B, K, T, P, 3]``.

        cells ``[B,K,T,P]`` long (values at masked cells are ignored), masked ``[B,K,T,P]`` bool,
        scale ``[B,12]`` bool, bar_pos/bar_len ``[B,T]`` long, mono ``[B,K]`` bool,
        time_valid ``[B,T]`` / track_valid ``[B,K]`` bool (False = padding) or None.
        """
        B, K, T, P = cells.shape
        known = ~masked
        feats = torch.cat(
            [
                ((cells == ONSET) & known).float(),
                ((cells == HOLD) & known).float(),
                masked.float(),
                scale[:, self.pitch_pc].float()[:, None, None, :].expand(B, K, T, P),
            ],
            dim=-1,
        )
        x = self.inp(feats)
        x = x + (self.bar_pos(bar_pos) + self.bar_len(bar_len))[:, None]
        slots = torch.arange(K, device=cells.device).clamp(max=self.cfg.max_tracks - 1)
        x = x + self.track(slots)[None, :, None] + self.mono(mono.long())[:, :, None]
        time_mask = track_mask = None
        if time_valid is not None and not bool(time_valid.all()):
            time_mask = time_valid[:, None, None, None, :].expand(B, K, 1, 1, T).reshape(B * K, 1, 1, T)
        if track_valid is not None and not bool(track_valid.all()):
            track_mask = track_valid[:, None, None, None, :].expand(B, T, 1, 1, K).reshape(B * T, 1, 1, K)
        for blk in self.blocks:
            x = blk(x, time_mask, track_mask)
        return self.head(self.ln_f(x)).view(B, K, T, P, 3)


def build(cfg: dict | Config) -> VariationModel:
    return VariationModel(cfg if isinstance(cfg, Config) else Config(**cfg))


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---- sampling ------------------------------------------------------------------------
def _gumbel_pick(logits: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Sample from categorical ``logits`` along the last dim (Gumbel-max, reproducible with a generator)."""
    u = torch.rand(logits.shape, generator=generator, device="cpu").to(logits.device)
    g = -torch.log(-torch.log(u.clamp(1e-10, 1 - 1e-7)))
    return (logits + g).argmax(-1)


def sample_columns(logp: torch.Tensor, allowed: torch.Tensor, prev_sounding: torch.Tensor,
                   next_hold: torch.Tensor, mono: torch.Tensor, temperature: float = 1.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample whole columns: ``logp`` ``[N, P, 3]`` -> cells ``[N, P]``.

    allowed ``[N, P]``: pitches that may start a note; prev_sounding ``[N, P]``: a note may sound
    on the step before (only then may a cell HOLD); next_hold ``[N, P]``: the known next
    step holds (so this cell may not rest); mono ``[N]``: at most one pitch per column.
    ``temperature`` applies to the one-pitch choice of monophonic columns.
    """
    NEG = -1e9
    on = torch.where(allowed, logp[..., ONSET], torch.full_like(logp[..., ONSET], NEG))
    ho = torch.where(prev_sounding, logp[..., HOLD], torch.full_like(logp[..., HOLD], NEG))
    re = torch.where(next_hold, torch.full_like(logp[..., REST], NEG), logp[..., REST])
    lp = torch.stack([re, on, ho], dim=-1)
    # polyphonic: each pitch on its own, at temperature 1 (sharpening independent cells would
    # silence every pitch whose note is merely uncertain)
    poly = _gumbel_pick(lp, generator)
    # monophonic: one choice per column.  For a one-voice track the per-pitch marginals are
    # that choice's probabilities (onset p, hold p), and the column is silent with what is
    # left: 1 - (expected number of sounding pitches)
    N, P, _ = lp.shape
    pr = logp.exp()
    silent = (1.0 - pr[..., ONSET].sum(-1) - pr[..., HOLD].sum(-1)).clamp(min=1e-4)
    forced = next_hold.any(-1)  # the next step holds a pitch: this column must sound it
    rest_lp = torch.where(forced, torch.full_like(silent, NEG), silent.log())
    other = forced[:, None] & ~next_hold
    on1 = torch.where(other, torch.full_like(on, NEG), on)
    ho1 = torch.where(other, torch.full_like(ho, NEG), ho)
    opts = torch.cat([rest_lp[:, None], on1, ho1], dim=-1) / max(temperature, 1e-4)
    pick = _gumbel_pick(opts, generator)
    one = torch.zeros(N, P, dtype=torch.long, device=lp.device)
    rows = torch.arange(N, device=lp.device)
    is_on = (pick >= 1) & (pick <= P)
    is_ho = pick > P
    one[rows[is_on], pick[is_on] - 1] = ONSET
    one[rows[is_ho], pick[is_ho] - 1 - P] = HOLD
    return torch.where(mono[:, None], one, poly)


def _constraints(cells, masked, allowed):
    """Per cell: may it HOLD (the step before sounds or is unknown with an allowed pitch), and
    must it sound (the known next step holds)."""
    K, T, P = cells.shape
    zero = torch.zeros(K, 1, P, dtype=torch.bool, device=cells.device)
    known = ~masked
    sounding = torch.cat([zero, ((cells[:, :-1] != REST) & known[:, :-1])
                          | (masked[:, :-1] & allowed[:, None, :])], dim=1)
    holding = torch.cat([(cells[:, 1:] == HOLD) & known[:, 1:], zero], dim=1)
    return sounding, holding


@torch.no_grad()
def denoise(model: VariationModel, cells: torch.Tensor, masked: torch.Tensor, scale: torch.Tensor,
            bar_pos: torch.Tensor, bar_len: torch.Tensor, mono: torch.Tensor, allowed: torch.Tensor,
            n_iters: int, temperature: float = 1.0, generator: torch.Generator | None = None,
            progress=None, sample_mono: torch.Tensor | None = None) -> torch.Tensor | None:
    """Fill the masked cells of one window; returns the completed cells ``[K, T, P]``.

    cells/masked ``[K, T, P]``; scale ``[12]``; bar_pos/bar_len ``[T]``; mono ``[K]``;
    allowed ``[K, P]`` pitches that may start a note per track.  The masked columns (those with
    any masked cell) are revealed over ``n_iters`` model calls in a random order fixed in
    advance (revealing the most confident columns first, as MaskGIT does, picks silence first
    on a piano roll and empties it).  ``progress(fraction)`` is called after each model call; if it returns False,
    sampling stops and None comes back.
    """
    cells = cells.clone()
    masked = masked.clone()
    K, T, P = cells.shape
    dev = cells.device
    one_voice = mono if sample_mono is None else sample_mono
    todo = masked.any(-1).nonzero()
    total = len(todo)
    if total == 0:
        return cells
    todo = todo[torch.randperm(total, generator=generator).to(dev)]
    n_iters = max(1, min(n_iters, total))
    bounds = [round(total * (i + 1) / n_iters) for i in range(n_iters)]
    first = 0
    for it in range(n_iters):
        logits = model(cells[None], masked[None], scale[None], bar_pos[None], bar_len[None], mono[None])[0]
        batch = todo[first:bounds[it]]
        first = bounds[it]
        for parity in (0, 1):  # even steps first, so odd ones see both neighbours
            sel = batch[batch[:, 1] % 2 == parity]
            if len(sel) == 0:
                continue
            k, t = sel[:, 0], sel[:, 1]
            logp = torch.log_softmax(logits[k, t].float(), dim=-1)
            sounding, holding = _constraints(cells, masked, allowed)
            new = sample_columns(logp, allowed[k], sounding[k, t], holding[k, t], one_voice[k],
                                 temperature, generator)
            m = masked[k, t]
            cells[k, t] = torch.where(m, new, cells[k, t])
            masked[k, t] = False
        if progress is not None and progress((it + 1) / n_iters) is False:
            return None
    return cells
