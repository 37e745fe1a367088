"""Training the continuation model: tokenized corpus, random bar-aligned windows, transposition.

The corpus (``studio.ml.corpus``, plus MIDI files from ``--data``) is tokenized once into
``tokens_v<N>.npz`` in the cache folder.  A training example is a window of ``ctx`` tokens
that starts at a random bar of a random piece (pieces drawn in proportion to their
length), with the track header and the bar's meter/tempo restated in front, transposed
by a random interval in [-5, +6] semitones that keeps every pitch in range.

One loop for one CPU, one GPU or several processes under ``torchrun`` (see ``ddp.py``).
Weights (fp16) and the config go to ``out`` whenever the held-out loss improves; the
optimizer state goes to ``out/state.pt`` so a run can be resumed; ``out/log.jsonl`` and
``out/learning_curve.png`` record the losses.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint, ddp
from . import tokens as T
from .model import Config, MusicTransformer, build

SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}


# ---- the tokenized corpus ---------------------------------------------------------------------
def tokenize_pieces(pieces, log=None) -> dict:
    """``pieces``: iterable of objects with ``id``, ``song``, ``split`` -> dict of numpy arrays."""
    toks, p_start, p_len, p_head, p_split, ids = [], [], [], [], [], []
    b_off, b_ts, b_tempo, p_bar0, p_nbars = [], [], [], [], []
    n = pos = nb = notes = 0
    for piece in pieces:
        if not piece.song.tracks:
            continue
        enc = T.encode(piece.song, eos=True)
        if len(enc.tokens) < enc.n_header + 8:
            continue
        toks.append(np.asarray(enc.tokens, dtype=np.uint16))
        p_start.append(pos)
        p_len.append(len(enc.tokens))
        p_head.append(enc.n_header)
        p_split.append(SPLIT_CODE[piece.split])
        ids.append(piece.id)
        p_bar0.append(nb)
        p_nbars.append(len(enc.bar_index))
        b_off += enc.bar_index
        b_ts += [m[0] for m in enc.bar_meta]
        b_tempo += [m[1] for m in enc.bar_meta]
        pos += len(enc.tokens)
        nb += len(enc.bar_index)
        notes += sum(len(t.notes) for t in piece.song.tracks[: T.MAX_TRACKS])
        n += 1
        if log and n % 1000 == 0:
            log(f"tokenized {n} pieces, {pos:,} tokens")
    return {
        "tokens": np.concatenate(toks) if toks else np.zeros(0, np.uint16),
        "p_start": np.array(p_start, np.int64), "p_len": np.array(p_len, np.int64),
        "p_head": np.array(p_head, np.int32), "p_split": np.array(p_split, np.int8),
        "ids": np.array(ids), "p_bar0": np.array(p_bar0, np.int64), "p_nbars": np.array(p_nbars, np.int64),
        "b_off": np.array(b_off, np.int32), "b_ts": np.array(b_ts, np.uint16), "b_tempo": np.array(b_tempo, np.uint16),
        "notes": np.array(notes), "vocab_version": np.array(T.VOCAB_VERSION),
    }


def save_dataset(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part.npz")
    np.savez_compressed(tmp, **data)
    os.replace(tmp, path)


def load_dataset(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if int(data["vocab_version"]) != T.VOCAB_VERSION:
        raise ValueError(f"{path}: made for another token vocabulary")
    return data


def default_dataset_path() -> Path:
    from ..corpus import cache_dir

    return cache_dir().parent / f"continuation_tokens_v{T.VOCAB_VERSION}.npz"


def build_dataset(path: Path | None = None, data_dir: str | None = None, build_corpus: bool = True,
                  log=None) -> dict:
    """Tokenize the corpus (and MIDI files under ``data_dir``) into ``path``; return the arrays."""
    from ..corpus import CorpusPiece, load_corpus, split_of

    pieces = list(load_corpus("all", build=build_corpus))
    if data_dir:
        from ...core.errors import StudioError
        from ...io import load as load_song

        files = sorted(p for p in Path(data_dir).rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        if not files:
            raise StudioError(f"{data_dir}: no .mid files in this folder")
        for f in files:
            try:
                song = load_song(f)
            except StudioError as exc:
                if log:
                    log(f"skipping {exc}")
                continue
            rel = f"user/{f.relative_to(data_dir).as_posix()}"
            pieces.append(CorpusPiece(rel, song, split_of(rel)))
    data = tokenize_pieces(pieces, log=log)
    if path is not None:
        save_dataset(data, path)
    return data


def summary(data: dict) -> dict:
    out = {"pieces": int(len(data["p_len"])), "tokens": int(data["p_len"].sum()), "notes": int(data["notes"])}
    for name, code in SPLIT_CODE.items():
        m = data["p_split"] == code
        out[f"{name}_pieces"] = int(m.sum())
        out[f"{name}_tokens"] = int(data["p_len"][m].sum())
    return out


# ---- windows ----------------------------------------------------------------------------------
def piece_window(data: dict, p: int, first_bar: int, length: int) -> np.ndarray:
    s, n, h = int(data["p_start"][p]), int(data["p_len"][p]), int(data["p_head"][p])
    seq = data["tokens"][s: s + n]
    if first_bar <= 0:
        return seq[:length]
    b = int(data["p_bar0"][p]) + first_bar
    i = int(data["b_off"][b]) + 1
    while i < n and T.TS0 <= seq[i] < T.POS0:
        i += 1
    head = np.concatenate([seq[:h], np.array([T.BAR, data["b_ts"][b], data["b_tempo"][b]], np.uint16)])
    return np.concatenate([head, seq[i: i + max(0, length - len(head))]])


def transpose(seq: np.ndarray, shift: int) -> np.ndarray:
    if shift == 0:
        return seq
    out = seq.astype(np.int64)
    m = (out >= T.PITCH0) & (out < T.VEL0)
    out[m] += shift
    return out


def allowed_shift(seq: np.ndarray, rng: np.random.Generator) -> int:
    if np.any(seq == T.PROG0 + T.DRUM_PROGRAM):
        return 0
    m = (seq >= T.PITCH0) & (seq < T.VEL0)
    if not m.any():
        return 0
    lo, hi = int(seq[m].min()) - T.PITCH0, int(seq[m].max()) - T.PITCH0
    choices = [s for s in range(-5, 7) if 0 <= lo + s and hi + s <= 127]
    return int(rng.choice(choices)) if choices else 0


class Batches:
    """Random training windows of one split (sharded by seed across DDP ranks)."""

    def __init__(self, data: dict, split: str, ctx: int, batch: int, seed: int, augment: bool = True):
        self.data, self.ctx, self.batch, self.augment = data, ctx, batch, augment
        self.pieces = np.nonzero(data["p_split"] == SPLIT_CODE[split])[0]
        if len(self.pieces) == 0:
            raise ValueError(f"no {split} pieces in the dataset")
        w = np.minimum(data["p_len"][self.pieces], 4 * ctx).astype(np.float64)
        self.cum = np.cumsum(w / w.sum())
        self.rng = np.random.default_rng(seed)

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        L = self.ctx + 1
        arr = np.zeros((self.batch, L), np.int64)
        picks = np.searchsorted(self.cum, self.rng.random(self.batch) * self.cum[-1], side="right")
        for r in range(self.batch):
            p = int(self.pieces[min(int(picks[r]), len(self.pieces) - 1)])
            nb = int(self.data["p_nbars"][p])
            seq = piece_window(self.data, p, int(self.rng.integers(0, max(1, nb - 1))), L)
            if self.augment:
                seq = transpose(seq, allowed_shift(seq, self.rng))
            arr[r, : len(seq)] = seq
        t = torch.from_numpy(arr)
        return t[:, :-1], t[:, 1:]


def fixed_windows(data: dict, split: str, ctx: int, max_windows: int = 256) -> list[np.ndarray]:
    """Deterministic non-overlapping windows covering the split's pieces (for held-out loss)."""
    out = []
    for p in np.nonzero(data["p_split"] == SPLIT_CODE[split])[0]:
        nb, b = int(data["p_nbars"][p]), 0
        while b < nb and len(out) < max_windows:
            w = piece_window(data, int(p), b, ctx + 1)
            out.append(w)
            if len(w) < ctx + 1:  # the rest of the piece fitted
                break
            # the window's last bar is cut short: the next window starts with it
            b += max(1, int(np.sum(w == T.BAR)) - 1)
        if len(out) >= max_windows:
            break
    return out


@torch.no_grad()
def window_loss(model, windows: list[np.ndarray], device, batch: int = 16) -> tuple[float, int]:
    """Mean NLL in nats per predicted token over ``windows``, and the token count."""
    total, count = 0.0, 0
    raw = model.module if hasattr(model, "module") else model
    raw.eval()
    L = max(len(w) for w in windows)
    for i in range(0, len(windows), batch):
        chunk = windows[i: i + batch]
        arr = np.zeros((len(chunk), L), np.int64)
        for r, w in enumerate(chunk):
            arr[r, : len(w)] = w
        t = torch.from_numpy(arr).to(device)
        logits, _ = raw(t[:, :-1])
        y = t[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                                ignore_index=T.PAD, reduction="sum")
        total += float(nll)
        count += int((y != T.PAD).sum())
    raw.train()
    return total / max(1, count), count


# ---- the loop ---------------------------------------------------------------------------------
def plot_curve(log_path: Path, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    tr = [(r["tokens"] / 1e6, r["train_loss"]) for r in rows if "train_loss" in r]
    va = [(r["tokens"] / 1e6, r["valid_loss"]) for r in rows if "valid_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if tr:
        ax.plot(*zip(*tr), label="train (windows, transposed)", alpha=0.6)
    if va:
        ax.plot(*zip(*va), "o-", label="held-out (valid split)")
    ax.set_xlabel("training tokens (millions)")
    ax.set_ylabel("NLL per token (nats)")
    ax.set_title("Continuation model: learning curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = png.with_suffix(".part.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png)


def train(out: Path, minutes: float, device: torch.device, data: dict, cfg: Config | None = None,
          batch: int = 8, lr: float = 1e-3, seed: int = 0, eval_every_s: float = 180.0,
          resume: bool = True, command: str = "", log=print, max_steps: int | None = None,
          amp: bool = True, warmup: int = 300, refresh=None, refresh_every_s: float = 900.0,
          valid_windows: int = 64, init: Path | None = None) -> dict:
    """Train for ``minutes`` of wall time in total (a resumed run counts what was done before).

    ``refresh()``, if given, returns a fresh dataset (e.g. once more of the corpus is cached);
    it is called every ``refresh_every_s`` seconds and the training windows come from it.
    The held-out windows stay those of the first dataset, so the curve stays comparable.
    """
    d, device = ddp.setup(device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = cfg or Config()
    torch.manual_seed(seed + d.rank)
    model = MusicTransformer(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.05)
    state_path = out / "state.pt"
    state = {"step": 0, "tokens": 0, "elapsed": 0.0, "best": float("inf")}
    if init is not None and not (resume and state_path.exists()):
        start_model, _meta = checkpoint.load(Path(init), build, "cpu")
        model.load_state_dict(start_model.state_dict())
        if d.main:
            log(f"started from the weights in {init}")
    if resume and state_path.exists():
        st = torch.load(state_path, map_location="cpu", weights_only=False)
        if st["config"] == cfg.__dict__:
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            state = st["state"]
            if d.main:
                log(f"resumed at step {state['step']} ({state['elapsed'] / 60:.1f} min done)")
    net = ddp.wrap(model, d, device)
    batches = Batches(data, "train", cfg.ctx, batch, seed * 1000 + d.rank + state["step"])
    valid = fixed_windows(data, "valid", cfg.ctx, max_windows=valid_windows)
    budget = minutes * 60.0
    last_refresh = time.time()
    use_amp = amp and device.type == "cuda"
    t_start = time.time() - state["elapsed"]
    last_eval = time.time()
    run_loss, run_n = 0.0, 0
    if d.main:
        log(f"model {model.n_params() / 1e6:.2f} M params, ctx {cfg.ctx}, batch {batch}x{d.world}, device {device}")
    while True:
        elapsed = time.time() - t_start
        stop = elapsed >= budget or (max_steps is not None and state["step"] >= max_steps)
        if ddp.any_true(stop, d, device):
            break
        frac = min(1.0, elapsed / budget)
        cur_lr = lr * min(1.0, (state["step"] + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = cur_lr
        x, y = batches.sample()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
            _, loss = net(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["step"] += 1
        state["tokens"] += int((y != T.PAD).sum()) * d.world
        run_loss += float(loss.detach())
        run_n += 1
        if refresh is not None and time.time() - last_refresh >= refresh_every_s:
            fresh = refresh()
            if fresh is not None and len(fresh["p_len"]) > len(data["p_len"]):
                data = fresh
                batches = Batches(data, "train", cfg.ctx, batch, seed * 1000 + d.rank + state["step"])
                if d.main:
                    log("training data refreshed: " + json.dumps(summary(data)))
            last_refresh = time.time()
        due = time.time() - last_eval >= eval_every_s
        if ddp.any_true(due, d, device):
            _checkpoint(model, opt, cfg, state, out, valid, device, d, run_loss / max(1, run_n), t_start,
                        command, log)
            run_loss, run_n, last_eval = 0.0, 0, time.time()
    _checkpoint(model, opt, cfg, state, out, valid, device, d, run_loss / max(1, run_n), t_start, command, log)
    ddp.cleanup(d)
    return dict(state)


def _checkpoint(model, opt, cfg, state, out, valid, device, d, train_loss, t_start, command, log):
    if not d.main:
        return
    state["elapsed"] = time.time() - t_start
    vl, _ = window_loss(model, valid, device)
    row = {"step": state["step"], "tokens": state["tokens"], "elapsed": round(state["elapsed"], 1),
           "train_loss": round(train_loss, 4), "valid_loss": round(vl, 4)}
    with open(out / "log.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")
    log(json.dumps(row))
    if vl < state["best"]:
        state["best"] = vl
        checkpoint.save(model, cfg, out, extra={"step": state["step"], "tokens": state["tokens"],
                                                "valid_loss": vl, "command": command,
                                                "vocab_version": T.VOCAB_VERSION})
    tmp = out / "state.pt.part"
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state, "config": cfg.__dict__}, tmp)
    os.replace(tmp, out / "state.pt")
    try:
        plot_curve(out / "log.jsonl", out / "learning_curve.png")
    except Exception as exc:  # a plotting problem must never stop training
        log(f"learning curve not drawn: {exc}")


def main(argv=None) -> int:
    """``python -m studio.ml.continuation.train`` (also what torchrun launches)."""
    import argparse

    ap = argparse.ArgumentParser(description="train the continuation model")
    ap.add_argument("--out", default="runs/continuation")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dataset", default=None, help="tokenized corpus .npz (built if missing)")
    ap.add_argument("--data", default=None, help="extra MIDI folder")
    ap.add_argument("--no-build", action="store_true", help="use only the corpus files cached so far")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=float, default=180)
    ap.add_argument("--config", default=None, help="JSON of Config fields")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--init", default=None, help="start from the weights in this model folder (fine-tuning)")
    ap.add_argument("--refresh-every", type=float, default=0,
                    help="seconds; re-tokenize the corpus cache this often (while it is still being built)")
    a = ap.parse_args(argv)
    device = checkpoint.pick_device(a.device)
    if device.type == "cpu":
        torch.set_num_threads(a.threads)
    path = Path(a.dataset) if a.dataset else default_dataset_path()
    if path.exists():
        data = load_dataset(path)
    else:
        data = build_dataset(path, a.data, build_corpus=not a.no_build, log=print)
    print(json.dumps(summary(data)), flush=True)
    cfg = Config(**json.loads(a.config)) if a.config else Config()
    import shlex
    import sys

    command = "python -m studio.ml.continuation.train " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    refresh = None
    if a.refresh_every > 0:
        def refresh():
            fresh = build_dataset(None, a.data, build_corpus=False)
            save_dataset(fresh, path)
            return fresh
    train(Path(a.out), a.minutes, device, data, cfg, batch=a.batch, lr=a.lr, seed=a.seed,
          eval_every_s=a.eval_every, command=command, log=lambda s: print(s, flush=True),
          warmup=a.warmup, max_steps=a.max_steps, refresh=refresh, refresh_every_s=a.refresh_every or 900,
          init=Path(a.init) if a.init else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
