"""Training the continuation model: tokenized corpus, random bar-aligned windows, transposition.

The corpus (``studio.ml.corpus``, plus MIDI files from ``--data``) is tokenized once into
``tokens_v<N>.npz`` in the cache folder.  A training example is a window of ``ctx`` tokens
that starts at a random bar of a random piece (pieces drawn in proportion to their
length), with the track header and the bar's meter/tempo restated in front, transposed
by a random interval in [-5, +6] semitones that keeps every pitch in range.

This module supplies the batches, the loss and the held-out loss; ``studio.ml.training.fit``
runs the loop (one CPU, one GPU or several processes under ``torchrun``; checkpoints, resume,
the JSONL log and the learning curve).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from .. import checkpoint
from ..training import Task
from . import tokens as T
from .model import Config, MusicTransformer, build, grow

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


# ---- training (the loop itself is studio.ml.training.fit) ----------------------------------------
class _Stream:
    def __init__(self, batches: Batches):
        self.batches, self.rng = batches, batches.rng

    def __call__(self):
        return self.batches.sample()


def task(data: dict, cfg: Config | None = None, batch: int = 8, lr: float = 1e-3, warmup: int = 300,
         valid_windows: int = 64, refresh=None, refresh_every_s: float = 900.0, log=print) -> Task:
    """The continuation model as ``fit`` trains it: bar-aligned windows, next-token NLL.

    ``refresh()``, if given, returns a fresh dataset (e.g. once more of the corpus is cached); the
    training windows come from it from then on. The held-out windows stay those of the first
    dataset, so the curve stays comparable.
    """
    cfg = cfg or Config()
    valid = fixed_windows(data, "valid", cfg.ctx, max_windows=valid_windows)
    current = {"data": data}

    def batches(seed):
        return _Stream(Batches(current["data"], "train", cfg.ctx, batch, seed))

    def loss(net, b):
        x, y = b
        return net(x, y)[1]

    def evaluate(model, device):
        vl, _ = window_loss(model, valid, device)
        return {"valid_loss": vl, "score": vl}

    def refreshed():
        fresh = refresh()
        if fresh is None or len(fresh["p_len"]) <= len(current["data"]["p_len"]):
            return None
        current["data"] = fresh
        log("training data: " + json.dumps(summary(fresh)))
        return batches

    return Task("continuation", MusicTransformer(cfg), cfg, batches, loss, evaluate, lr=lr, weight_decay=0.05,
                warmup=warmup, min_lr=0.1, tokens=lambda b: int((b[1] != T.PAD).sum()),
                meta=lambda info: {"step": info["step"], "tokens": info["tokens"],
                                   "valid_loss": info["metrics"].get("valid_loss"), "vocab_version": T.VOCAB_VERSION},
                refresh=refreshed if refresh is not None else None, refresh_every_s=refresh_every_s,
                grow=_grow)


def _grow(model, weights, old):
    from ...core.errors import StudioError

    try:
        grow(model, weights, old)
    except ValueError as exc:
        raise StudioError(f"cannot start this continuation model from those weights: {exc}") from None


def _config_of(folder) -> Config:
    """Without --config: the configuration of the weights started from (--init) or of the run
    resumed, so that going on with a larger model needs no flags repeated; else the default."""
    path = Path(folder) / "config.json" if folder else None
    if path is not None and path.exists():
        saved = json.loads(path.read_text()).get("config") or {}
        return Config(**{k: v for k, v in saved.items() if k in Config.__dataclass_fields__})
    return Config()


def main(argv=None) -> int:
    """``python -m studio.ml.continuation.train`` (also what torchrun launches)."""
    import argparse
    import shlex
    import sys

    from ..options import add_train_arguments
    from ..training import fit, run_from_args

    ap = argparse.ArgumentParser(description="train the continuation model")
    add_train_arguments(ap)
    ap.add_argument("--dataset", default=None, help="tokenized corpus .npz (built if missing)")
    ap.add_argument("--data", default=None, help="extra MIDI folder")
    ap.add_argument("--no-build", action="store_true", help="use only the corpus files cached so far")
    ap.add_argument("--batch", type=int, default=None, help="windows per step and process (default 8 on the CPU, 64 on CUDA)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--config", default=None, help="JSON of Config fields")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--refresh-every", type=float, default=0,
                    help="seconds; re-tokenize the corpus cache this often (while it is still being built)")
    a = ap.parse_args(argv)
    path = Path(a.dataset) if a.dataset else default_dataset_path()
    if path.exists():
        data = load_dataset(path)
    else:
        data = build_dataset(path, a.data, build_corpus=not a.no_build, log=print)
    command = "python -m studio.ml.continuation.train " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    run = run_from_args(a, checkpoint.model_dir("continuation"), command)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(summary(data)), flush=True)
    cfg = Config(**json.loads(a.config)) if a.config else _config_of(a.init or (a.out if a.resume else None))
    refresh = None
    if a.refresh_every > 0:
        def refresh():
            fresh = build_dataset(None, a.data, build_corpus=False)
            save_dataset(fresh, path)
            return fresh
    batch = a.batch or (64 if checkpoint.pick_device(a.device).type == "cuda" else 8)
    r = fit(task(data, cfg, batch=batch, lr=a.lr, warmup=a.warmup, refresh=refresh,
                 refresh_every_s=a.refresh_every or 900), run)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"continuation: step {r['step']}, {r['tokens']:,} tokens, best held-out NLL {r['best']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
