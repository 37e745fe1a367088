"""The harmonizer's sampler: one implementation in numpy over a small network protocol.

A :class:`Net` takes token grids and hands back numpy logits; ONNX Runtime (``ort.OrtNet``, the
CPU without torch) and torch (``model.TorchNet``, any torch device) both implement it, so the CPU
and the GPU paths run the same sampling code and cannot drift apart. The steps: annealed blocked
Gibbs sampling with every voice kept in its SATB range, repair of voice-leading faults by
proposals, re-ranking of the candidates by pseudo-likelihood minus a voice-leading penalty.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from ...core.errors import Cancelled
from . import data as ch
from . import figures, vlgrid


class Net(Protocol):
    """``net(tokens, given, metric, fermata, pad) -> logits`` [B, 4, L, vocab] as numpy, for
    windows of ``max_len`` steps (``pad`` marks the steps after a short grid's end)."""

    vocab: int
    max_len: int

    def __call__(self, tokens: np.ndarray, given: np.ndarray, metric: np.ndarray, fermata: np.ndarray,
                 pad: np.ndarray) -> np.ndarray: ...


def range_bias(shift: int = 0, vocab: int = ch.VOCAB) -> np.ndarray:
    """[4, vocab] additive log-probability bias: -inf for pitches outside each voice's SATB range.

    The model works ``shift`` semitones above the output, so the range moves by ``shift`` too.
    Rests are always allowed.
    """
    bias = np.zeros((4, vocab), dtype=np.float32)
    pitch = ch.token_pitch(np.arange(vocab))
    for v, name in enumerate(ch.VOICES):
        lo, hi = ch.SATB_RANGE[name]
        out = (pitch >= 0) & ((pitch < lo + shift) | (pitch > hi + shift))
        if (~out & (pitch >= 0)).any():  # never leave a voice without a pitch
            bias[v, out] = -np.inf
    return bias


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def log_probs(net: Net, tokens, given, metric, fermata) -> np.ndarray:
    """[B, 4, T, vocab] log-probabilities for grids of any length: the network sees windows of its
    ``max_len`` (a short grid padded, a long one cut into overlapping windows averaged with triangular
    weights, so a cell trusts the window where it sits near the middle)."""
    B, _, T = tokens.shape
    size = net.max_len
    if T <= size:
        pad_len = size - T
        tk = np.pad(tokens, ((0, 0), (0, 0), (0, pad_len)))
        gv = np.pad(given, ((0, 0), (0, 0), (0, pad_len)), constant_values=True)  # as in training
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
    """Make every hold continue the note before it (vectorized over the time axis).

    A hold after a rest (or at the very start) becomes a new note of its pitch; a hold whose
    pitch differs from the sounding note keeps the rhythm (no new attack) and takes that
    note's pitch. A note's pitch is the pitch of the cell that started it.
    """
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
    """One token per cell from log-probabilities ``lp`` [..., vocab] (Gumbel-max; argmax at 0)."""
    if temperature <= 1e-3:
        return lp.argmax(-1)
    u = np.clip(rng.random(lp.shape, dtype=np.float32), 1e-9, 1.0)
    return (lp / temperature - np.log(-np.log(u))).argmax(-1)


def gibbs(net: Net, tokens, given, metric, fermata, steps, temperature, rng, final_temperature=None, bias=None,
          progress=None, pmax=0.9, pmin=0.05, anneal=0.75) -> np.ndarray:
    """Annealed blocked Gibbs sampling (Coconet): fill the cells where ``given`` is False.

    tokens/given: [B, 4, T]; metric/fermata: [B, T]. Given cells never change. The first pass
    fills every free cell from the given ones; then each step re-masks a shrinking random
    fraction of the free cells and redraws them; the temperature falls from ``temperature`` to
    ``final_temperature`` (default: the same) as ``data.gibbs_schedule`` says.
    ``progress(fraction) -> bool`` is called once per step; False cancels. ``bias`` (broadcast
    to [B, 4, T, vocab]) is added to the log-probabilities, e.g. -inf for pitches out of range.
    """
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
    """Per-candidate mean log-likelihood of the free cells, each block scored given the rest. [B]"""
    assign = np.random.default_rng(seed).integers(0, blocks, free.shape)
    total = np.zeros(x.shape[0])
    for b in range(blocks):
        block = free & (assign == b)
        lp = log_probs(net, x, ~block, metric, fermata)
        cell = np.take_along_axis(lp, x[..., None], -1)[..., 0]
        total += (cell * block).sum(axis=(1, 2))
    return total / np.maximum(free.sum(axis=(1, 2)), 1)


# Bach's chorales (the mean over all of them): what the texture score aims at, no further
TEXTURE_TARGETS = {"offbeat_motion": 0.55, "bass_by_step": 0.68, "sevenths_on_beats": 0.12}


def texture_score(grid: np.ndarray, quarters) -> float:
    """How much of Bach's texture a ``[4, T]`` grid has, 0..3: off-beat motion in the inner voices,
    a bass moving by step and sevenths on the beats, each as a share of Bach's own rate (capped
    at 1, so more than Bach is no better)."""
    c = figures.counts(ch.token_pitch(grid), ch.token_onset(grid), quarters, (0, False))
    r = figures.rates(c)
    return float(sum(min(1.0, r[k] / t) for k, t in TEXTURE_TARGETS.items()))


BASS_LEAP = 4  # semitones: a bass move wider than a major third is a leap
BASS_LEAP_SHARE = 0.25  # about Bach's share of them (fourths, fifths, octaves, mostly at cadences)


def bass_leaps(grid: np.ndarray) -> tuple[np.ndarray, float]:
    """Grid steps of the bass notes reached by a leap, and the share of leaps among the bass moves."""
    row = grid[3]
    on = np.nonzero(ch.token_onset(row))[0]
    p = ch.token_pitch(row)[on]
    d = np.abs(np.diff(p))
    big = d > BASS_LEAP
    return on[1:][big], float(big.mean()) if len(d) else 0.0


def _penalty(grid: np.ndarray, beats, shift: int = 0, leap_weight: float = 0.0, parallel_weight: float = 0.0) -> float:
    """The voice-leading penalty, plus ``leap_weight`` x the share of bass leaps beyond Bach's and
    ``parallel_weight`` x the parallels per note (on top of the penalty's own weight for them)."""
    c = vlgrid.analyse(grid, beats, shift)
    pen = vlgrid.penalty_of(c) + parallel_weight * c["parallels"] / max(1, c["notes"])
    if leap_weight:
        pen += leap_weight * max(0.0, bass_leaps(grid)[1] - BASS_LEAP_SHARE)
    return pen


_REPAIRED = ("parallel", "crossing", "spacing", "range", "leading_tone")


def fault_cells(xs: np.ndarray, free: np.ndarray, pen, beats, shift: int, rng: np.random.Generator,
                leap_weight: float = 0.0) -> np.ndarray:
    """[K, 4, T] cells to redraw: per fault of each candidate, the whole notes of one free voice
    involved (picked at random) around it; with ``leap_weight``, also half the bass notes reached
    by a leap (at random) while the bass leaps more often than Bach's."""
    block = np.zeros_like(free)
    for k, c in enumerate(xs):
        if pen[k] <= 0:
            continue
        if leap_weight:
            at, share = bass_leaps(c)
            if share > BASS_LEAP_SHARE:
                for t in at[rng.random(len(at)) < 0.5]:
                    a, b = vlgrid.note_span(c[3], int(t), int(t) + 1)
                    block[k, 3, a:b] = True
        _, faults = vlgrid.analyse(c, beats, shift, want_faults=True)
        for f in faults:
            if f.kind not in _REPAIRED:
                continue
            vs = [v for v in f.voices if free[k, v, f.start]]
            if not vs:
                continue
            v = vs[rng.integers(len(vs))]
            a, b = vlgrid.note_span(c[v], f.start, f.end)
            block[k, v, a:b] = True
    return block & free


def keep_better(xs: np.ndarray, pen: list, draws: np.ndarray, rows: list[int], beats, shift: int,
                leap_weight: float = 0.0, parallel_weight: float = 0.0) -> None:
    """For each candidate ``rows[j]``, take the lowest-penalty redraw ``draws[:, j]`` if it beats it."""
    for j, k in enumerate(rows):
        ps = [_penalty(draws[m, j], beats, shift, leap_weight, parallel_weight) for m in range(draws.shape[0])]
        m = int(np.argmin(ps))
        if ps[m] < pen[k]:
            xs[k], pen[k] = draws[m, j], ps[m]


def repair(net: Net, xs, given, metric, fermata, rng, rounds, beats, progress, done, total, bias, pen, shift,
           proposals, leap_weight: float = 0.0, parallel_weight: float = 0.0) -> tuple[np.ndarray, list]:
    """Redraw the cells of the free voices around each voice-leading fault; keep improvements.

    Per round, the candidates that still have faults go through the network once (one batch);
    ``proposals`` redraws per candidate are sampled from those probabilities and the one with
    the lowest penalty replaces the candidate when it is better. Returns (candidates, penalties).
    """
    free = ~given
    pen = list(pen)
    M = max(1, int(proposals))
    for r in range(rounds):
        block = fault_cells(xs, free, pen, beats, shift, rng, leap_weight)
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
        keep_better(xs, pen, np.where(free[rows][None], fix_holds(draws), xt[None]), rows, beats, shift, leap_weight,
                    parallel_weight)
        if progress is not None and progress((done + r + 1) / total) is False:
            raise Cancelled("harmonizing cancelled")
    return xs, pen


def harmonize_grid(net: Net, tokens: np.ndarray, given: np.ndarray, metric: np.ndarray,
                   fermata: np.ndarray | None = None, temperature: float = 0.7, candidates: int = 4,
                   steps: int = 12, seed: int | None = None, beats: np.ndarray | None = None,
                   progress: Callable[[float], bool] | None = None, rerank_weight: float = 1.0,
                   final_temperature: float | None = None, repair_rounds: int = 0,
                   shift: int | None = 0, proposals: int = 8, marks: np.ndarray | None = None,
                   voiced: np.ndarray | None = None, texture_weight: float = 0.0,
                   quarters: np.ndarray | None = None, leap_weight: float = 0.0,
                   parallel_weight: float = 0.0) -> np.ndarray:
    """Fill the free cells of a ``[4, T]`` token grid; the best of ``candidates`` draws. -> [4, T]

    Each candidate is drawn by annealed blocked Gibbs sampling with every voice kept inside its
    SATB range (``shift``: semitones the grid sits above the output; None: no range limit);
    ``repair_rounds`` then redraw the notes involved in voice-leading faults (keeping a redraw
    only when it lowers the penalty); the winner maximizes mean pseudo-log-likelihood minus
    ``rerank_weight`` x penalty. ``marks``: the network's fermata classes per step (see
    ``data.fermata_classes``), instead of classes made from ``fermata``; ``voiced`` [T] bool: the
    steps where every free voice must sound (no rests drawn there: under the melody).
    ``texture_weight`` adds ``texture_score`` (Bach's texture: moving inner voices, a walking bass,
    sevenths) to the re-ranking, with ``quarters`` the grid steps on a quarter note of the bar;
    ``leap_weight`` makes a bass that leaps more often than Bach's a fault the repair redraws;
    ``parallel_weight`` weighs parallel fifths and octaves further in the penalty.
    """
    T = tokens.shape[1]
    K = max(1, int(candidates))
    rng = np.random.default_rng(int(seed) if seed is not None else None)
    tk = np.repeat(np.asarray(tokens, dtype=np.int64)[None], K, 0)
    gv = np.repeat(np.asarray(given, dtype=bool)[None], K, 0)
    mt = np.repeat(np.asarray(metric, dtype=np.int64)[None], K, 0)
    fm = np.repeat((ch.fermata_classes(fermata, T) if marks is None else np.asarray(marks, dtype=np.int64))[None], K, 0)
    bias = None if shift is None else range_bias(int(shift), net.vocab)[None, :, None, :]
    if voiced is not None:
        bias = np.broadcast_to(np.zeros((1, 4, 1, net.vocab), np.float32) if bias is None else bias,
                               (1, 4, T, net.vocab)).copy()
        bias[0, :, np.asarray(voiced, dtype=bool), ch.REST] = -np.inf
    total = steps + 1 + repair_rounds + (2 if K > 1 else 0)
    report = None if progress is None else (lambda f: progress(f * (steps + 1) / total))
    x = gibbs(net, tk, gv, mt, fm, steps, temperature, rng, final_temperature, bias, report)
    sh = 0 if shift is None else int(shift)
    pen = [_penalty(c, beats, sh, leap_weight, parallel_weight) for c in x]
    if repair_rounds:
        x, pen = repair(net, x, gv, mt, fm, rng, repair_rounds, beats, progress, steps + 1, total, bias, pen, sh,
                        proposals, leap_weight, parallel_weight)
    best = 0
    if K > 1:
        ll = pseudo_loglik(net, x, ~gv, mt, fm)
        score = ll - rerank_weight * np.asarray(pen)
        if texture_weight:
            q = np.arange(0, T, 4) if quarters is None else quarters
            score = score + texture_weight * np.array([texture_score(c, q) for c in x])
        best = int(np.argmax(score))
    if progress is not None and progress(1.0) is False:
        raise Cancelled("harmonizing cancelled")
    return x[best]
