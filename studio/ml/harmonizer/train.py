"""Training and held-out NLL for the harmonizer and the ForwardBach baseline.

Both train on the same split of Bach's chorales (``studio.ml.harmonizer.data``) with a random
transposition per example (every shift that keeps each voice in range). Training runs for a
wall-clock budget with a cosine learning-rate schedule over that budget, logs to a file, and
checkpoints (fp16 safetensors + config + a card) every few minutes.

NLL is reported in nats per cell, a cell being one (voice, 16th step) token.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import checkpoint
from . import data as ch
from . import baseline as fb
from .model import METRIC_CLASSES, Config, Harmonizer, fermata_classes, metric_classes

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


# ---- training loop ----------------------------------------------------------------------


def _lr(frac: float, peak: float, warm: float = 0.03) -> float:
    if frac < warm:
        return peak * frac / warm
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, (frac - warm) / (1 - warm)))))


def _log(path: Path, msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(path, "a") as fh:
        fh.write(line + "\n")


def train_harmonizer(out: Path, minutes: float, device: torch.device, seed: int = 0, cfg: Config | None = None,
                     batch: int = 16, lr: float = 1e-3, chorales=None, checkpoint_minutes: float = 4.0,
                     command: str = "", init: Path | None = None) -> dict:
    """Train for ``minutes``; ``init`` continues from a saved model folder (a warm restart)."""
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train.log"
    data = ch.split(chorales if chorales is not None else ch.load_chorales())
    prior_steps, prior_minutes = 0, 0.0
    if init is not None:
        from .model import build

        model, prior = checkpoint.load(init, build, device)
        model.train()
        cfg, prior_steps, prior_minutes = model.cfg, int(prior.get("steps") or 0), float(prior.get("minutes") or 0)
    else:
        cfg = cfg or Config()
        model = Harmonizer(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    batches = Batches(data["train"], cfg.max_len, seed)
    valid = eval_windows(data["valid"], cfg.max_len) if data["valid"] else None
    _log(log, f"harmonizer {cfg} params={model.num_params()} train={len(data['train'])} valid={len(data['valid'])} "
              f"test={len(data['test'])} device={device}")
    t0, last_ckpt, step, best = time.time(), time.time(), 0, math.inf
    budget = minutes * 60
    ema = None
    history = []
    while True:
        frac = (time.time() - t0) / budget
        if frac >= 1.0 and step > 0:
            break
        for gp in opt.param_groups:
            gp["lr"] = _lr(frac, lr)
        tok, given, met, fer, pad = (a.to(device) for a in batches.next(batch))
        logits = model(tok, given, met, fer, pad)
        hidden = ~given
        nll = F.cross_entropy(logits.reshape(-1, cfg.vocab), tok.reshape(-1), reduction="none").view_as(tok)
        loss = (nll * hidden).sum() / hidden.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        lv = float(loss.detach())
        ema = lv if ema is None else 0.98 * ema + 0.02 * lv
        if step % 50 == 0:
            _log(log, f"step {step} loss {ema:.4f} lr {opt.param_groups[0]['lr']:.2e} elapsed {time.time() - t0:.0f}s")
        done = (time.time() - t0) >= budget
        if done or time.time() - last_ckpt > checkpoint_minutes * 60:
            last_ckpt = time.time()
            metrics = harmonizer_nll(model, valid, device) if valid is not None else {}
            history.append({"step": step, "seconds": round(time.time() - t0), **metrics})
            _log(log, f"checkpoint step {step} valid NLL (nats/cell) {json.dumps(metrics)}")
            score = metrics.get("given_soprano", 0.0)
            extra = {"steps": prior_steps + step, "init": str(init) if init else None, "minutes": round(prior_minutes + (time.time() - t0) / 60, 1), "valid_nll": metrics,
                     "history": history, "command": command, "seed": seed, "batch": batch, "lr": lr}
            checkpoint.save(model, cfg, out / "last", extra)
            if score <= best:
                best = score
                checkpoint.save(model, cfg, out, extra)
    return {"steps": step, "best_valid_given_soprano": best, "history": history}


def train_forward_bach(out: Path, minutes: float, device: torch.device, seed: int = 0, cfg: fb.Config | None = None,
                       batch: int = 256, lr: float = 2e-3, chorales=None, command: str = "") -> dict:
    torch.manual_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "train.log"
    data = ch.split(chorales if chorales is not None else ch.load_chorales())
    cfg = cfg or fb.Config()
    model = fb.ForwardBach(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    train = data["train"]
    shifts = [c.shifts() for c in train]
    metrics = [metric_classes(c.pos, c.bar, c.beat) for c in train]
    valid = fb.dataset(data["valid"], cfg.context) if data["valid"] else None
    _log(log, f"forward_bach {cfg} params={model.num_params()} device={device}")
    t0, step, best, history = time.time(), 0, math.inf, []
    lengths = np.array([c.length for c in train], dtype=np.float64)
    while True:
        finished = (time.time() - t0) >= minutes * 60 and step > 0
        for gp in opt.param_groups:
            gp["lr"] = _lr((time.time() - t0) / (minutes * 60), lr)
        if finished or (step % 250 == 0 and step > 0):
            v = fb.nll(model, valid, device) if valid is not None else float("nan")
            history.append({"step": step, "valid_nll": v})
            _log(log, f"step {step} valid NLL {v:.4f} nats/cell")
            if not v > best:
                best = v
                checkpoint.save(model, cfg, out, {"steps": step, "minutes": round((time.time() - t0) / 60, 1),
                                                  "valid_nll": v, "history": history, "command": command,
                                                  "seed": seed, "batch": batch, "lr": lr})
        if finished:
            break
        xs, ys = [], []
        for i in rng.choice(len(train), size=8, p=lengths / lengths.sum()):
            s = int(rng.choice(shifts[i]))
            c = train[i]
            idx = rng.integers(0, c.length, size=batch // 8)
            x = fb.features(ch.transpose_tokens(c.voices[0], s), metrics[i], cfg.context)[idx]
            xs.append(x)
            ys.append(ch.transpose_tokens(c.voices[1:], s)[:, idx].T)
        x = torch.from_numpy(np.concatenate(xs)).to(device)
        y = torch.from_numpy(np.concatenate(ys).astype(np.int64)).to(device)
        loss = F.cross_entropy(model(x).reshape(-1, ch.VOCAB), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
    return {"steps": step, "best_valid_nll": best, "history": history}


