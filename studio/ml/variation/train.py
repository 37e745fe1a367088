"""Training the variation model: corpus -> compact note arrays -> masked windows -> loss.

Data: the music21 corpus through :func:`studio.ml.corpus.load_corpus` (split by piece,
train / valid / test).  Each piece keeps its first :data:`~studio.ml.variation.roll.MAX_TRACKS`
pitched tracks as quantized notes.  A training example is a random window of
:data:`WINDOW` sixteenth steps, transposed by a random shift in [-6, +5] semitones (notes
leaving the piano range drop out), with a random mask drawn by :func:`random_mask`, the
same kind of mask a user's request makes at inference.

Loss: cross-entropy over the masked cells (REST / ONSET / HOLD per pitch), reported in
nats per masked cell; validation uses a fixed set of windows and masks from the valid split.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...core.song import Song
from . import roll as R
from .model import Config, build, n_params

WINDOW = 160  # steps per training window (10 bars of 4/4)
UNITS = (1, 2, 4, 8, 16)  # masking units in steps
INFER_UNIT = 4  # a beat: the unit a user's request re-noises


@dataclass
class Piece:
    """One piece as the trainer keeps it (a few KB)."""

    id: str
    notes: list[np.ndarray]  # per track int32 [N, 3]: start step, end step, pitch
    n_steps: int
    bar_pos: np.ndarray
    bar_len: np.ndarray
    scale: np.ndarray  # bool [12]
    mono: np.ndarray  # bool [K]

    @property
    def n_tracks(self) -> int:
        return len(self.notes)


def piece_from_song(pid: str, song: Song) -> Piece | None:
    tracks = [i for i in R.playable_tracks(song) if song.tracks[i].notes]
    if not tracks:
        return None
    st = R.step_ticks(song)
    notes = [np.array([R.quantize(n, st) for n in song.tracks[i].notes], dtype=np.int32).reshape(-1, 3) for i in tracks]
    n_steps = int(max(int(a[:, 1].max()) for a in notes))
    pos, length = R.meter_steps(song, n_steps)
    key = R.song_key(song, 0)
    mono = np.array([R.max_polyphony(a.tolist()) <= 1 for a in notes])
    return Piece(pid, notes, n_steps, pos.astype(np.int16), length.astype(np.int16), R.key_scale(key), mono)


def load_pieces(split: str, max_pieces: int | None = None, build: bool = True) -> list[Piece]:
    """Pieces of a corpus split; with ``build`` False only what the corpus cache holds already."""
    from ..corpus import load_corpus

    out = []
    for cp in load_corpus(split=split, max_pieces=max_pieces, build=build):
        p = piece_from_song(cp.id, cp.song)
        if p is not None and p.n_steps >= 16:
            out.append(p)
    return out


class CacheWatcher:
    """Training pieces of one split from the corpus cache, reading only files that are new since
    the last call (the cache may still be filling while a model trains)."""

    def __init__(self, split: str = "train"):
        self.split = split
        self.seen: set[str] = set()
        self.pieces: list[Piece] = []

    def __call__(self) -> list[Piece]:
        from .. import corpus as C

        for rel in C.source_files():
            f = C._cache_file(rel)
            if rel in self.seen or not f.exists():
                continue
            data = C._read(f)
            if data is None:
                continue
            self.seen.add(rel)
            for d in data["pieces"]:
                if C.split_of(d["id"]) != self.split:
                    continue
                p = piece_from_song(d["id"], C.song_from_json(d["song"]))
                if p is not None and p.n_steps >= 16:
                    self.pieces.append(p)
        return list(self.pieces)


def pieces_from_folder(folder: str | Path) -> list[Piece]:
    """Extra training pieces: every MIDI / MusicXML file under ``folder`` (unreadable ones skipped)."""
    from ... import io
    from ...core.errors import StudioError

    out = []
    for f in sorted(Path(folder).rglob("*")):
        if f.suffix.lower() not in io.SUPPORTED_IN or f.suffix.lower() == ".studio":
            continue
        try:
            p = piece_from_song(f.name, io.load(f))
        except StudioError:
            continue
        if p is not None and p.n_steps >= 16:
            out.append(p)
    return out


# ---- masks ---------------------------------------------------------------------------
def mask_from_columns(cells: np.ndarray, colmask: np.ndarray, notes_by_track, offset: int,
                      transpose: int = 0, locked=None) -> np.ndarray:
    """Cell mask: the masked columns, plus every cell of a note whose onset column is masked.

    ``notes_by_track``: per roll track, quantized ``(start, end, pitch)`` notes in song steps;
    ``locked``: per track a set of note indices whose cells stay given.
    """
    K, T, P = cells.shape
    m = np.repeat(colmask[:, :, None], P, axis=2)
    for k, notes in enumerate(notes_by_track):
        for i, (s, e, p) in enumerate(notes):
            q, a, b = p + transpose - R.LOW, s - offset, e - offset
            if not 0 <= q < P or b <= 0 or a >= T:
                continue
            if locked is not None and i in locked[k]:
                m[k, max(a, 0):min(b, T), q] = False
            elif 0 <= a < T and colmask[k, a]:
                m[k, a:min(b, T), q] = True
    return m


def unit_columns(region: np.ndarray, rate: float, unit: int, rng: np.random.Generator,
                 phase: int = 0) -> np.ndarray:
    """Mask each ``unit``-step chunk of the region (per track) with probability ``rate``."""
    K, T = region.shape
    n_units = (T + phase + unit - 1) // unit + 1
    pick = rng.random((K, n_units)) < rate
    cols = np.repeat(pick, unit, axis=1)[:, phase:phase + T]
    return cols & region


def random_mask(piece_notes, cells, offset, transpose, rng: np.random.Generator) -> np.ndarray:
    """A training mask: a random region (everything, or some tracks over a span), a random
    rate and unit, and now and then a few locked notes inside it."""
    K, T, _ = cells.shape
    region = np.zeros((K, T), dtype=bool)
    if rng.random() < 0.4:
        region[:] = True
    else:
        tracks = rng.random(K) < 0.5
        tracks[rng.integers(K)] = True
        length = int(rng.integers(min(8, T), T + 1))
        a = int(rng.integers(0, T - length + 1))
        region[tracks, a:a + length] = True
    rate = float(rng.random()) ** 0.75  # leans a little towards heavy masking
    unit = int(rng.choice(UNITS))
    cols = unit_columns(region, rate, unit, rng, int(rng.integers(unit)))
    if not cols.any():
        idx = np.argwhere(region)
        k, t = idx[rng.integers(len(idx))]
        cols[k, t] = True
    locked = None
    if rng.random() < 0.25:
        locked = [set(np.nonzero(rng.random(len(n)) < 0.2)[0].tolist()) for n in piece_notes]
    return mask_from_columns(cells, cols, piece_notes, offset, transpose, locked)


# ---- batches -------------------------------------------------------------------------
def make_example(p: Piece, rng: np.random.Generator, window: int = WINDOW, augment: bool = True):
    T = min(window, p.n_steps)
    start = int(rng.integers(0, p.n_steps - T + 1))
    shift = int(rng.integers(-6, 6)) if augment else 0
    cells = np.zeros((p.n_tracks, T, R.N_PITCH), dtype=np.uint8)
    window_notes = []
    for k, notes in enumerate(p.notes):
        sel = notes[(notes[:, 1] > start) & (notes[:, 0] < start + T)]
        R.paint(cells[k], sel.tolist(), offset=start, transpose=shift)
        window_notes.append(sel.tolist())
    mask = random_mask(window_notes, cells, start, shift, rng)
    return dict(cells=cells, mask=mask, scale=np.roll(p.scale, shift), bar_pos=p.bar_pos[start:start + T],
                bar_len=p.bar_len[start:start + T], mono=p.mono)


def collate(examples, device="cpu"):
    B = len(examples)
    K = max(e["cells"].shape[0] for e in examples)
    T = max(e["cells"].shape[1] for e in examples)
    P = R.N_PITCH
    cells = np.zeros((B, K, T, P), dtype=np.int64)
    mask = np.zeros((B, K, T, P), dtype=bool)
    pos = np.zeros((B, T), dtype=np.int64)
    blen = np.full((B, T), 16, dtype=np.int64)
    mono = np.zeros((B, K), dtype=bool)
    tv = np.zeros((B, T), dtype=bool)
    kv = np.zeros((B, K), dtype=bool)
    scale = np.zeros((B, 12), dtype=bool)
    for i, e in enumerate(examples):
        k, t = e["cells"].shape[:2]
        cells[i, :k, :t] = e["cells"]
        mask[i, :k, :t] = e["mask"]
        pos[i, :t], blen[i, :t] = e["bar_pos"], e["bar_len"]
        mono[i, :k] = e["mono"]
        tv[i, :t], kv[i, :k] = True, True
        scale[i] = e["scale"]
    t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    return dict(cells=t(cells), masked=t(mask), scale=t(scale), bar_pos=t(pos), bar_len=t(blen), mono=t(mono),
                time_valid=t(tv), track_valid=t(kv))


class Sampler:
    """Batches of windows with about ``tokens`` (track x step) columns, one track count per batch."""

    def __init__(self, pieces: list[Piece], tokens: int = 4096, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.by_k: dict[int, list[Piece]] = {}
        for p in pieces:
            self.by_k.setdefault(p.n_tracks, []).append(p)
        ks = sorted(self.by_k)
        # weight a track count by the music it holds (notes), square-rooted so rare textures still appear
        mass = np.array([math.sqrt(sum(sum(len(n) for n in p.notes) for p in self.by_k[k])) for k in ks])
        self.ks, self.w = ks, mass / mass.sum()
        self.tokens = tokens

    def batch(self, device="cpu"):
        k = int(self.rng.choice(self.ks, p=self.w))
        group = self.by_k[k]
        B = max(1, self.tokens // (k * WINDOW))
        return collate([make_example(group[self.rng.integers(len(group))], self.rng) for _ in range(B)], device)


def loss_fn(model, b):
    logits = model(b["cells"], b["masked"], b["scale"], b["bar_pos"], b["bar_len"], b["mono"],
                   b["time_valid"], b["track_valid"])
    m = b["masked"] & b["time_valid"][:, None, :, None] & b["track_valid"][:, :, None, None]
    return torch.nn.functional.cross_entropy(logits[m], b["cells"][m])


def fixed_batches(pieces: list[Piece], n: int, seed: int = 1234, tokens: int = 4096):
    """The same validation batches every time (no augmentation)."""
    rng = np.random.default_rng(seed)
    out = []
    by_k: dict[int, list[Piece]] = {}
    for p in pieces:
        by_k.setdefault(p.n_tracks, []).append(p)
    for i in range(n):
        k = sorted(by_k)[i % len(by_k)]
        g = by_k[k]
        B = max(1, tokens // (k * WINDOW))
        out.append(collate([make_example(g[rng.integers(len(g))], rng, augment=False) for _ in range(B)]))
    return out


@torch.no_grad()
def evaluate_loss(model, batches) -> float:
    model.eval()
    tot = 0.0
    for b in batches:
        tot += float(loss_fn(model, b))
    model.train()
    return tot / max(1, len(batches))


# ---- the loop ------------------------------------------------------------------------
@dataclass
class TrainConfig:
    minutes: float = 60.0
    lr: float = 1.5e-3
    warmup: int = 100
    weight_decay: float = 0.01
    tokens: int = 3200
    eval_every_s: float = 180.0
    n_valid: int = 12
    seed: int = 0
    threads: int = 1
    model: Config = field(default_factory=Config)


def plot_curve(log: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    tr = [r for r in log if "train" in r]
    va = [r for r in log if "valid" in r]
    ax.plot([r["step"] for r in tr], [r["train"] for r in tr], label="train (mean of 25 steps)", alpha=0.8)
    ax.plot([r["step"] for r in va], [r["valid"] for r in va], "o-", label="valid")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per masked cell)")
    ax.set_yscale("log")
    ax.set_title("Variation model: learning curve")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def train(out: str | Path, tc: TrainConfig, train_pieces: list[Piece], valid_pieces: list[Piece],
          device: str = "cpu", log_print=print, command: str = "", refresh=None, init=None) -> dict:
    """Train for ``tc.minutes``; save the best model (by validation loss) into ``out``.

    ``refresh()``, if given, is called every ten minutes and may return a larger list of
    training pieces (the corpus cache can still be filling up while training starts).
    ``init``: a model folder to start from (same config) instead of random weights.
    """
    from ..checkpoint import save

    torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = build(tc.model).to(device)
    if init is not None:
        from ..checkpoint import load

        model.load_state_dict(load(init, build)[0].state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay, betas=(0.9, 0.98))
    sampler = Sampler(train_pieces, tc.tokens, tc.seed)
    valid = fixed_batches(valid_pieces, tc.n_valid, tokens=tc.tokens)
    log: list[dict] = []
    t0 = time.time()
    last_eval = t0
    step, ema, best = 0, float("nan"), float("inf")
    recent: list[float] = []
    budget = tc.minutes * 60
    log_print(f"variation: {n_params(model) / 1e6:.2f} M parameters, {len(train_pieces)} train / "
              f"{len(valid_pieces)} valid pieces")

    def checkpoint(final=False):
        nonlocal best, last_eval
        v = evaluate_loss(model, valid)
        last_eval = time.time()
        log.append({"step": step, "valid": v, "minutes": (time.time() - t0) / 60})
        extra = {"train": {**asdict(tc), "command": command, "steps": step, "minutes_trained": (time.time() - t0) / 60,
                           "train_pieces": len(train_pieces), "valid_pieces": len(valid_pieces),
                           "params": n_params(model), "valid_loss": v, "best_valid_loss": min(best, v)}}
        if v < best:
            best = v
            save(model, tc.model, out, extra=extra)
        (out / "train_log.json").write_text(json.dumps(log))
        plot_curve(log, out / "learning_curve.png")
        log_print(f"step {step} {(time.time() - t0) / 60:.1f} min train {ema:.4f} valid {v:.4f}"
                  + (" (saved)" if v <= best else ""))

    last_refresh = t0
    model.train()
    while True:
        if refresh is not None and time.time() - last_refresh > 600:
            last_refresh = time.time()
            more = refresh()
            if len(more) > len(train_pieces):
                train_pieces = more
                sampler = Sampler(train_pieces, tc.tokens, tc.seed + step)
                log_print(f"now {len(train_pieces)} train pieces")
        elapsed = time.time() - t0
        if elapsed >= budget:
            break
        frac = elapsed / budget
        lr = tc.lr * min(1.0, (step + 1) / tc.warmup) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        b = sampler.batch(device)
        loss = loss_fn(model, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        recent.append(loss.item())
        ema = sum(recent[-25:]) / len(recent[-25:])
        if step % 25 == 0:
            log.append({"step": step, "train": sum(recent) / len(recent), "lr": lr})
            recent.clear()
        if time.time() - last_eval >= tc.eval_every_s:
            checkpoint()
    checkpoint(final=True)
    return {"steps": step, "best_valid_loss": best, "log": log}
