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
import os
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...core.song import Song
from ..training import Task
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


# ---- training (the loop itself is studio.ml.training.fit) ----------------------------------------
@dataclass
class TrainConfig:
    lr: float = 1.5e-3
    warmup: int = 100
    weight_decay: float = 0.01
    tokens: int = 3200
    n_valid: int = 12
    model: Config = field(default_factory=Config)


class _Stream:
    def __init__(self, sampler: Sampler):
        self.sampler, self.rng = sampler, sampler.rng

    def __call__(self):
        return self.sampler.batch()


def task(train_pieces: list[Piece], valid_pieces: list[Piece], tc: TrainConfig | None = None, refresh=None,
         log=print) -> Task:
    """The variation model as ``fit`` trains it: masked windows, cross-entropy of the masked cells.

    ``refresh()``, if given, is called every ten minutes and may return a larger list of training
    pieces (the corpus cache can still be filling up while training starts).
    """
    tc = tc or TrainConfig()
    valid = fixed_batches(valid_pieces, tc.n_valid, tokens=tc.tokens)
    current = {"pieces": train_pieces}

    def batches(seed):
        return _Stream(Sampler(current["pieces"], tc.tokens, seed))

    def evaluate(model, device):
        v = evaluate_loss(model, [{k: t.to(device) for k, t in b.items()} for b in valid])
        return {"valid_loss": v, "score": v}

    def refreshed():
        more = refresh()
        if len(more) <= len(current["pieces"]):
            return None
        current["pieces"] = more
        log(f"now {len(more)} train pieces")
        return batches

    def meta(info):
        return {"train": {**asdict(tc), "command": info["command"], "steps": info["step"],
                          "minutes_trained": info["minutes"], "seed": info["seed"],
                          "train_pieces": len(current["pieces"]), "valid_pieces": len(valid_pieces),
                          "params": n_params(model), "valid_loss": info["metrics"].get("valid_loss")}}

    model = build(tc.model)
    return Task("variation", model, tc.model, batches, loss_fn, evaluate, lr=tc.lr, weight_decay=tc.weight_decay,
                warmup=tc.warmup, meta=meta, refresh=refreshed if refresh is not None else None,
                refresh_every_s=600.0)


def main(argv=None) -> int:
    """``python -m studio.ml.variation.train`` (also what torchrun launches)."""
    import argparse
    import shlex
    import sys

    from .. import checkpoint
    from ..options import add_train_arguments
    from ..training import fit, run_from_args

    ap = argparse.ArgumentParser(description="train the variation model")
    add_train_arguments(ap)
    ap.add_argument("--pieces", default=None, help="a folder of MIDI/MusicXML files to train on instead of the corpus "
                                                   "(every fifth file held out)")
    ap.add_argument("--config", default=None, help="JSON of Config fields")
    ap.add_argument("--tokens", type=int, default=3200, help="track x step columns per batch")
    a = ap.parse_args(argv)
    if a.pieces:
        files = pieces_from_folder(a.pieces)
        train_p, valid_p = [p for i, p in enumerate(files) if i % 5], files[::5]
    else:
        train_p, valid_p = load_pieces("train", build=False), load_pieces("valid", build=False)
    tc = TrainConfig(tokens=a.tokens, model=Config(**json.loads(a.config)) if a.config else Config())
    command = "python -m studio.ml.variation.train " + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:]))
    r = fit(task(train_p, valid_p, tc), run_from_args(a, checkpoint.model_dir("variation"), command))
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun: one report
        print(f"variation: step {r['step']}, best held-out loss {r['best']:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
