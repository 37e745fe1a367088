"""Training and held-out NLL for the harmonizer and the ForwardBach baseline.

Both train on the same split of Bach's chorales (``studio.ml.harmonizer.data``) with a random
transposition per example (every shift that keeps each voice in range). This module supplies the
batches, the loss and the held-out NLL; ``studio.ml.training.fit`` runs the loop (budget,
schedule, checkpoints, resume, DDP, log).

NLL is reported in nats per cell, a cell being one (voice, 16th step) token.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoint
from ..training import Task
from . import data as ch
from . import baseline as fb
from .model import METRIC_CLASSES, Config, Harmonizer, build, fermata_classes, metric_classes

# ---- batches ----------------------------------------------------------------------------


class Batches:
    """Random training windows: crop, transpose, hide fermatas half the time, choose a mask."""

    def __init__(self, chorales: list[ch.Chorale], length: int, seed: int = 0):
        self.chorales = chorales
        self.length = length
        self.rng = np.random.default_rng(seed)
        self.shifts = [c.shifts() for c in chorales]
        w = np.array([c.length for c in chorales], dtype=np.float64)
        self.weights = w / w.sum()
        self.metric = [metric_classes(c.pos, c.bar, c.beat) for c in chorales]

    def window(self, i: int, start: int, shift: int, fermata_known: bool):
        c, L = self.chorales[i], self.length
        end = min(c.length, start + L)
        n = end - start
        tok = np.zeros((4, L), dtype=np.int64)
        tok[:, :n] = ch.transpose_tokens(c.voices[:, start:end], shift)
        met = np.full(L, METRIC_CLASSES - 1, dtype=np.int64)
        met[:n] = self.metric[i][start:end]
        fer = np.zeros(L, dtype=np.int64)
        if fermata_known:
            fer[:n] = fermata_classes(c.fermata[start:end], n)
        pad = np.ones(L, dtype=bool)
        pad[:n] = False
        return tok, met, fer, pad

    def mask(self, pad: np.ndarray) -> np.ndarray:
        """``given`` [4, L]: which cells the model sees. A mix of the jobs the model serves."""
        rng, L = self.rng, self.length
        given = np.ones((4, L), dtype=bool)
        r = rng.random()
        if r < 0.30:  # soprano given, the rest hidden
            given[1:] = False
        elif r < 0.62:  # soprano given, other cells partly known (Gibbs steps)
            given[1:] = rng.random((3, L)) > rng.random()
        elif r < 0.72:  # soprano and bass given
            given[1:3] = rng.random((2, L)) > (1.0 if rng.random() < 0.6 else rng.random())
        elif r < 0.82:  # one voice rewritten
            given[rng.integers(4)] = False
        elif r < 0.92:  # a span of some voices rewritten
            a = rng.integers(0, L - 8)
            b = min(L, a + rng.integers(8, L // 2))
            vs = rng.random(4) < 0.5
            vs[rng.integers(4)] = True
            given[np.ix_(vs, np.arange(a, b))] = False
        else:  # anything
            given = rng.random((4, L)) > rng.random()
        given[:, pad] = True
        if given[:, ~pad].all():  # at least one hidden cell
            given[1 + rng.integers(3), rng.integers(0, max(1, int((~pad).sum())))] = False
        return given

    def next(self, batch: int):
        toks, mets, fers, pads, givens = [], [], [], [], []
        for _ in range(batch):
            i = int(self.rng.choice(len(self.chorales), p=self.weights))
            c = self.chorales[i]
            start = int(self.rng.integers(0, max(1, c.length - self.length + 1)))
            shift = int(self.rng.choice(self.shifts[i]))
            tok, met, fer, pad = self.window(i, start, shift, self.rng.random() < 0.5)
            toks.append(tok), mets.append(met), fers.append(fer), pads.append(pad), givens.append(self.mask(pad))
        t = lambda a, dt=torch.long: torch.from_numpy(np.stack(a)).to(dt)  # noqa: E731
        return t(toks), t(givens, torch.bool), t(mets), t(fers), t(pads, torch.bool)


class PatchBatches(Batches):
    """Windows for the beat-patched network: crops start on a beat (4 in 5) and reach the piece's
    end more often (cadences); the fermatas are shown in full, only where they are (the other
    steps unknown, as under a user's melody) or not at all, and the last note of the piece is
    marked (as the API marks it); masks weight the product's main job, the soprano given."""

    P_SOPRANO = 0.35  # the soprano given, the rest hidden

    def marks(self, c: ch.Chorale, start: int, end: int) -> np.ndarray:
        rng, n = self.rng, end - start
        f = np.asarray(c.fermata[start:end]) > 0
        mode = rng.choice(3, p=[0.3, 0.4, 0.3])
        out = np.zeros(n, dtype=np.int64) if mode == 0 else (1 + f) if mode == 1 else np.where(f, 2, 0)
        if end == c.length and rng.random() < 0.85:
            on = np.nonzero(ch.token_onset(c.voices[0]))[0]
            out[max(int(on[-1]) if len(on) else c.length - 1, start) - start:] = ch.FERMATA_LAST
        return out

    def mask(self, pad: np.ndarray) -> np.ndarray:
        rng, L = self.rng, self.length
        n = int((~pad).sum())
        given = np.ones((4, L), dtype=bool)
        r = rng.random()
        if r < self.P_SOPRANO:
            given[1:] = False
        elif r < self.P_SOPRANO + 0.30:  # soprano given, a random share of the others known (Gibbs steps)
            given[1:] = rng.random((3, L)) < rng.random()
        elif r < 0.85:  # orderless over all four voices (Coconet)
            given = rng.random((4, L)) < rng.random()
        elif r < 0.90:  # soprano and bass given
            given[1:3] = rng.random((2, L)) < (0.0 if rng.random() < 0.6 else rng.random())
        elif r < 0.95:  # one voice rewritten
            given[rng.integers(4)] = False
        else:  # a span of some voices rewritten
            a = rng.integers(0, max(1, n - 8))
            b = min(L, a + rng.integers(8, L // 2))
            vs = rng.random(4) < 0.5
            vs[rng.integers(4)] = True
            given[np.ix_(vs, np.arange(a, b))] = False
        given[:, pad] = True
        if given[:, ~pad].all():
            given[1 + rng.integers(3), rng.integers(0, max(1, n))] = False
        return given

    def next(self, batch: int):
        rng, L = self.rng, self.length
        toks, mets, fers, pads, givens = [], [], [], [], []
        for _ in range(batch):
            i = int(rng.choice(len(self.chorales), p=self.weights))
            c = self.chorales[i]
            hi = max(0, c.length - L)
            start = hi if rng.random() < 0.15 else int(rng.integers(0, hi + 1))
            if rng.random() < 0.8:
                start -= start % 4
            tok, met, fer, pad = self.window(i, start, int(rng.choice(self.shifts[i])), False)
            first = tok[:, 0]
            tok[:, 0] = np.where(first > ch.P, first - ch.P, first)  # a window cut inside a note starts it
            end = min(c.length, start + L)
            fer[: end - start] = self.marks(c, start, end)
            toks.append(tok), mets.append(met), fers.append(fer), pads.append(pad), givens.append(self.mask(pad))
        t = lambda a, dt=torch.long: torch.from_numpy(np.stack(a)).to(dt)  # noqa: E731
        return t(toks), t(givens, torch.bool), t(mets), t(fers), t(pads, torch.bool)


# The shipped network: beat-patched, 3.3 M parameters
PATCH_CONFIG = Config(d_model=192, n_layers=6, n_heads=6, d_ff=768, dropout=0.1, max_len=128, arch="patch")


def eval_windows(chorales: list[ch.Chorale], length: int):
    """Every held-out chorale cut into consecutive windows (no transposition, fermatas hidden)."""
    b = Batches(chorales, length, seed=0)
    out = []
    for i, c in enumerate(chorales):
        for start in range(0, c.length, length):
            out.append(b.window(i, start, 0, False))
    tok, met, fer, pad = (np.stack(a) for a in zip(*out))
    return torch.from_numpy(tok), torch.from_numpy(met), torch.from_numpy(fer), torch.from_numpy(pad)


@torch.no_grad()
def harmonizer_nll(model: Harmonizer, windows, device, batch: int = 32) -> dict:
    """Held-out NLL (nats per cell): alto/tenor/bass given the soprano, and under random masks."""
    model.eval()
    tok, met, fer, pad = windows
    g = torch.Generator().manual_seed(1234)
    sums = {"given_soprano": [0.0, 0], "random_mask": [0.0, 0]}
    for s in range(0, len(tok), batch):
        t, m, f, p = (a[s : s + batch].to(device) for a in (tok, met, fer, pad))
        B, _, L = t.shape
        given = torch.ones(B, 4, L, dtype=torch.bool, device=device)
        given[:, 1:] = False
        rate = torch.rand(B, 1, 1, generator=g).to(device)
        rnd = (torch.rand(B, 4, L, generator=g).to(device) > rate)
        for name, gv in (("given_soprano", given), ("random_mask", rnd)):
            gv = gv | p[:, None, :]
            logits = model(t, gv, m, f, p)
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), reduction="none").view(B, 4, L)
            hidden = ~gv
            sums[name][0] += float((nll * hidden).sum())
            sums[name][1] += int(hidden.sum())
    model.train()
    return {k: v[0] / max(1, v[1]) for k, v in sums.items()}


# ---- training (the loop itself is studio.ml.training.fit) ----------------------------------------


class _Stream:
    """``Batches`` as ``fit`` draws them: one call, one batch."""

    def __init__(self, batches: Batches, size: int):
        self.batches, self.size, self.rng = batches, size, batches.rng

    def __call__(self):
        return self.batches.next(self.size)


def harmonizer_task(chorales, cfg: Config | None = None, batch: int | None = None, lr: float = 1e-3) -> Task:
    """The harmonizer as ``fit`` trains it: random windows and masks, NLL of the hidden cells.

    The default is the shipped beat-patched network (``PATCH_CONFIG``, batches of 32 windows,
    each window's hidden cells weighing alike, as the orderless objective has it); a per-step
    ``Config`` trains as before (batches of 16, every hidden cell weighing alike)."""
    data = ch.split(chorales)
    cfg = cfg or PATCH_CONFIG
    patch = cfg.arch == "patch"
    batch = batch or (32 if patch else 16)
    valid = eval_windows(data["valid"], cfg.max_len) if data["valid"] else None

    def loss(net, b):
        tok, given, met, fer, pad = b
        logits = net(tok, given, met, fer, pad)
        hidden = (~given).float()
        nll = F.cross_entropy(logits.reshape(-1, cfg.vocab).float(), tok.reshape(-1), reduction="none").view_as(hidden)
        if patch:
            return ((nll * hidden).sum((1, 2)) / hidden.sum((1, 2)).clamp(min=1)).mean()
        return (nll * hidden).sum() / hidden.sum()

    def evaluate(model, device):
        if valid is None:
            return {}
        m = harmonizer_nll(model, valid, device)
        return {**m, "score": m["given_soprano"]}

    kind = PatchBatches if patch else Batches
    return Task("harmonizer", build(asdict(cfg)), cfg, lambda seed: _Stream(kind(data["train"], cfg.max_len, seed), batch),
                loss, evaluate, lr=lr, warmup=100,
                meta=lambda info: {"valid_nll": {k: v for k, v in info["metrics"].items() if k != "score"},
                                   "batch": batch, "lr": lr})


class _FeatureStream:
    """ForwardBach batches: soprano windows of 8 chorales, each transposed at random."""

    def __init__(self, train, cfg: fb.Config, batch: int, seed: int):
        self.rng = np.random.default_rng(seed)
        self.train, self.cfg, self.batch = train, cfg, batch
        self.shifts = [c.shifts() for c in train]
        self.metrics = [metric_classes(c.pos, c.bar, c.beat) for c in train]
        lengths = np.array([c.length for c in train], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def __call__(self):
        xs, ys = [], []
        for i in self.rng.choice(len(self.train), size=8, p=self.p):
            s = int(self.rng.choice(self.shifts[i]))
            c = self.train[i]
            idx = self.rng.integers(0, c.length, size=self.batch // 8)
            xs.append(fb.features(ch.transpose_tokens(c.voices[0], s), self.metrics[i], self.cfg.context)[idx])
            ys.append(ch.transpose_tokens(c.voices[1:], s)[:, idx].T)
        return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys).astype(np.int64))


def forward_bach_task(chorales, cfg: fb.Config | None = None, batch: int = 256, lr: float = 2e-3) -> Task:
    """The ForwardBach baseline as ``fit`` trains it: alto, tenor and bass from a soprano window."""
    data = ch.split(chorales)
    cfg = cfg or fb.Config()
    valid = fb.dataset(data["valid"], cfg.context) if data["valid"] else None

    def loss(net, b):
        x, y = b
        return F.cross_entropy(net(x).reshape(-1, ch.VOCAB).float(), y.reshape(-1))

    def evaluate(model, device):
        if valid is None:
            return {}
        v = fb.nll(model, valid, device)
        return {"valid_nll": v, "score": v}

    return Task("forward_bach", fb.ForwardBach(cfg), cfg, lambda seed: _FeatureStream(data["train"], cfg, batch, seed),
                loss, evaluate, lr=lr, warmup=1, clip=0.0,
                meta=lambda info: {"valid_nll": info["metrics"].get("valid_nll"), "batch": batch, "lr": lr})


def main(argv=None) -> int:
    """``python -m studio.ml.harmonizer.train`` (also what torchrun launches): the harmonizer, or with
    ``--baseline`` the ForwardBach baseline, trained by ``fit``."""
    import argparse
    import shlex
    import sys

    from ..options import add_train_arguments
    from ..training import fit, run_from_args

    ap = argparse.ArgumentParser(description="train the harmonizer (or the ForwardBach baseline)")
    add_train_arguments(ap)
    ap.add_argument("--baseline", action="store_true", help="train the ForwardBach baseline instead")
    ap.add_argument("--chorales", default=None, help="chorales .npz (default: Bach's chorales from music21, cached)")
    ap.add_argument("--config", default=None, help="JSON of Config fields")
    ap.add_argument("--batch", type=int, default=None)
    a = ap.parse_args(argv)
    chorales = ch.load_cache(Path(a.chorales)) if a.chorales else ch.load_chorales(log=print)
    command = "python -m studio.ml.harmonizer.train " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    run = run_from_args(a, checkpoint.model_dir("forward_bach" if a.baseline else "harmonizer"), command)
    if a.baseline:
        cfg = fb.Config(**json.loads(a.config)) if a.config else None
        task = forward_bach_task(chorales, cfg, batch=a.batch or 256)
    else:
        cfg = Config(**json.loads(a.config)) if a.config else None
        task = harmonizer_task(chorales, cfg, batch=a.batch)
    r = fit(task, run)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun: one report
        print(f"{task.name}: step {r['step']}, best held-out score {r['best']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
