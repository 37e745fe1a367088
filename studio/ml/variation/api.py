"""Vary: rewrite a selection of a song with the denoising model, keeping everything else.

The selection is the notes of the chosen tracks whose onset lies in ``[start_tick,
end_tick)``, minus the notes the user locked.  At strength ``s`` each beat of each selected
track is re-noised (masked) with probability ``s`` (``s = 1``: all of it); a selected note
whose onset falls in a masked beat is masked whole.  The model then fills the masked cells
from everything that stays given: unselected music, locked notes, the unmasked part of the
selection (SDEdit's partial noising, on a discrete absorbing-state process).

Guarantees: notes outside the selection and locked notes come back as the very same
``Note`` objects; a selected note the model reproduces exactly on the grid comes back
unchanged too (off-grid timing and velocity kept); the song never grows longer; new notes
use pitch classes of the key's scale or of the selection itself.  Strength 0 returns copies.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np

from ...core.errors import Cancelled, StudioError
from ...core.song import Note, Song
from . import roll as R

CHUNK = 128  # selection steps per model window (8 bars of 4/4)
CONTEXT = 16  # given steps on each side of a chunk
ITERS_AT_FULL = 10  # model calls for a chunk at strength 1
TEMPERATURE = 0.6  # below 1: fewer stray short notes from an uncertain model
RANGE_SLACK = 5  # semitones a track may go beyond its range in the window

_lock = threading.Lock()
_cache: dict = {}


def load_model(device="auto", weights: str | Path | None = None):
    """The shipped (or given) model, loaded once per process and device."""
    from ..checkpoint import load, model_dir, pick_device
    from .model import build

    dev = pick_device(device)
    folder = Path(weights) if weights is not None else model_dir("variation")
    key = (str(folder), str(dev))
    with _lock:
        if key not in _cache:
            model, meta = load(folder, build, dev)
            _cache[key] = (model, meta, dev)
        return _cache[key]


def _check(song: Song, strength: float, start_tick, end_tick, tracks) -> tuple[int, int, list[int]]:
    if not isinstance(strength, (int, float)) or not (0.0 <= float(strength) <= 1.0) or math.isnan(strength):
        raise StudioError(f"strength must be between 0 and 1, not {strength}")
    end = song.end_tick
    start_tick = 0 if start_tick is None else int(start_tick)
    end_tick = end if end_tick is None else int(end_tick)
    if start_tick < 0 or end_tick <= start_tick:
        raise StudioError("the selection is empty (it must start before it ends)")
    if start_tick >= max(end, 1):
        raise StudioError("the selection starts after the end of the song")
    n = len(song.tracks)
    if tracks is None:
        tracks = list(range(n))
    tracks = sorted(set(int(t) for t in tracks))
    if not tracks:
        raise StudioError("no track is selected")
    bad = [t for t in tracks if not 0 <= t < n]
    if bad:
        raise StudioError(f"no track {bad[0] + 1} in this song (it has {n})")
    pitched = [t for t in tracks if not song.tracks[t].is_drum]
    if not pitched:
        raise StudioError("only drum tracks are selected; variation works on pitched tracks")
    return start_tick, end_tick, pitched


def _groups(song: Song, selected: list[int]) -> list[tuple[list[int], list[int]]]:
    """(roll tracks, selected among them) groups of at most MAX_TRACKS tracks."""
    pitched = [i for i, t in enumerate(song.tracks) if not t.is_drum]
    out = []
    for g in range(0, len(selected), R.MAX_TRACKS):
        sel = selected[g:g + R.MAX_TRACKS]
        others = sorted((i for i in pitched if i not in sel), key=lambda i: min(abs(i - s) for s in sel))
        roll_tracks = sorted(sel + others[: R.MAX_TRACKS - len(sel)])
        out.append((roll_tracks, sel))
    return out


def vary(song: Song, strength: float, start_tick: int | None = None, end_tick: int | None = None,
         tracks=None, locked=None, takes: int = 1, seed: int | None = None, device="auto",
         progress=None, weights=None, model=None) -> list[Song]:
    """``takes`` varied copies of ``song`` (see the module docstring).

    ``tracks``: 0-based track indices (default all); ``locked``: a set of ``(track, Note)``;
    ``progress(fraction) -> bool`` is called once per denoising step, False cancels
    (raises :class:`Cancelled`).  ``model`` is a ``VariationModel`` to use instead of loading one.
    """
    start_tick, end_tick, selected = _check(song, strength, start_tick, end_tick, tracks)
    takes = max(1, int(takes))
    if strength == 0:
        return [song.copy() for _ in range(takes)]
    import torch

    if model is None:
        model, _, dev = load_model(device, weights)
    else:
        dev = next(model.parameters()).device
    locked = {(int(t), n) for t, n in (locked or ())}
    st = R.step_ticks(song)
    r0, r1 = start_tick // st, -(-end_tick // st)
    chunks = [(a, min(a + CHUNK, r1)) for a in range(r0, r1, CHUNK)]
    groups = _groups(song, selected)
    n_iters = max(1, math.ceil(strength * ITERS_AT_FULL))
    total = takes * len(groups) * len(chunks) * n_iters
    done = [0]

    def report(_f):
        done[0] += 1
        if progress is not None and progress(min(1.0, done[0] / total)) is False:
            return False
        return True

    base_seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else int(seed)
    results = []
    for take in range(takes):
        rng = np.random.default_rng([base_seed, take])
        gen = torch.Generator().manual_seed(base_seed * 1000 + take)
        work = song.copy()
        for roll_tracks, sel in groups:
            for a, b in chunks:
                _vary_chunk(work, song, model, dev, roll_tracks, sel, a, b, start_tick, end_tick, strength,
                            locked, n_iters, rng, gen, report)
        results.append(work)
    return results


def _vary_chunk(work: Song, source: Song, model, dev, roll_tracks, sel, a, b, start_tick, end_tick, strength,
                locked, n_iters, rng, gen, report) -> None:
    import torch

    from .model import denoise

    st = R.step_ticks(work)
    song_steps = max(b, -(-source.end_tick // st))
    w0 = max(0, a - CONTEXT)
    w1 = min(song_steps, b + CONTEXT)
    win_notes = [n for ti in roll_tracks for n in work.tracks[ti].notes if n.end > w0 * st and n.start < w1 * st]
    key = R.song_key(work, a * st, [n.pitch for n in win_notes] or None)
    roll = R.song_to_roll(work, roll_tracks, w0, w1 - w0, key=key)
    K, T, P = roll.cells.shape
    lo_tick, hi_tick = max(a * st, start_tick), min(b * st, end_tick)

    def is_selected(ti, n):
        return ti in sel and lo_tick <= n.start < hi_tick and (ti, n) not in locked

    # which columns are re-noised: beats of the selected tracks inside the chunk
    region = np.zeros((K, T), dtype=bool)
    for k, ti in enumerate(roll_tracks):
        if ti in sel:
            region[k, max(a, lo_tick // st) - w0: -(-hi_tick // st) - w0] = True
    if strength >= 1:
        cols = region.copy()
    else:
        n_units = (T + 2 * R.STEPS_PER_QUARTER) // 4 + 2
        pick = rng.random((K, n_units)) < strength
        phase = w0 % 4  # beats aligned to the song's step grid
        cols = np.repeat(pick, 4, axis=1)[:, phase:phase + T] & region
        if not cols.any() and region.any():  # a short selection still gets one beat re-noised
            cells_in = np.argwhere(region)
            k, t0 = cells_in[rng.integers(len(cells_in))]
            u0 = max(0, (t0 + phase) // 4 * 4 - phase)
            cols[k, u0:u0 + 4] = region[k, u0:u0 + 4]
    mask = np.repeat(cols[:, :, None], P, axis=2)
    removed: dict[int, list[Note]] = {}
    by_grid: dict[tuple, Note] = {}
    for k, ti in enumerate(roll_tracks):
        for n in work.tracks[ti].notes:
            if n.end <= w0 * st or n.start >= w1 * st:
                continue
            s, e, p = R.quantize(n, st)
            q, x, y = p - R.LOW, max(s - w0, 0), min(e - w0, T)
            if is_selected(ti, n):
                removed.setdefault(ti, []).append(n)
                by_grid[(ti, s, e, p)] = n
                if 0 <= q < P and 0 <= s - w0 < T and cols[k, s - w0]:
                    mask[k, x:y, q] = True
            elif 0 <= q < P:
                mask[k, x:y, q] = False
    if not mask.any():
        return
    # pitches that may start a note: the key's scale plus whatever the selection itself uses
    src_pcs = {n.pitch % 12 for ns in removed.values() for n in ns}
    pcs = roll.scale.copy()
    pcs[list(src_pcs)] = True
    pitch_ok = pcs[(np.arange(P) + R.LOW) % 12]
    allowed = np.zeros((K, P), dtype=bool)
    for k, ti in enumerate(roll_tracks):
        ps = [n.pitch for n in work.tracks[ti].notes if n.end > w0 * st and n.start < w1 * st]
        ok = pitch_ok.copy()
        if ps:
            lo, hi = min(ps) - RANGE_SLACK - R.LOW, max(ps) + RANGE_SLACK - R.LOW
            ok[: max(0, lo)] = False
            ok[hi + 1:] = False
        allowed[k] = ok
    # tracks sampled one pitch at a time: one-voice parts, even with a grace note or two
    one_voice = np.array([R.mostly_mono([R.quantize(n, st) for n in work.tracks[ti].notes
                                         if n.end > w0 * st and n.start < w1 * st]) for ti in roll_tracks])
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(dev)  # noqa: E731
    out = denoise(model, t(roll.cells.astype(np.int64)), t(mask), t(roll.scale), t(roll.bar_pos),
                  t(roll.bar_len), t(roll.mono), t(allowed), n_iters, TEMPERATURE, gen, progress=report,
                  sample_mono=t(one_voice))
    if out is None:
        raise Cancelled()
    cells = out.cpu().numpy()
    end_limit = source.end_tick
    for k, ti in enumerate(roll_tracks):
        if ti not in sel:
            continue
        track = work.tracks[ti]
        old = removed.get(ti, [])
        if not old and not mask[k].any():
            continue
        vel = int(np.median([n.velocity for n in old] or [n.velocity for n in track.notes] or [80]))
        old_at = {}  # (step, pitch) -> a selected note starting there
        for n in old:
            s0, _, p0 = R.quantize(n, st)
            old_at.setdefault((s0, p0), n)
        new = []
        for s0, e0, p0 in R.decode(cells[k], w0):
            orig = by_grid.get((ti, s0, e0, p0))
            if orig is not None:  # reproduced exactly on the grid: the very same note
                new.append(orig)
                continue
            q = p0 - R.LOW
            if not mask[k, s0 - w0, q]:
                # a given onset: a fixed note (it stays as it is) or a selected note whose end was re-noised
                n = old_at.get((s0, p0))
                if n is not None:
                    new.append(replace(n, duration=max(1, min(e0 * st, end_limit) - n.start)))
                continue
            end = min(e0 * st, end_limit)
            if lo_tick <= s0 * st < hi_tick and end > s0 * st:
                new.append(Note(s0 * st, p0, end - s0 * st, vel))
        gone = set(old)
        track.notes = sorted([n for n in track.notes if n not in gone] + new)
