"""Vary: rewrite a selection of a song with the denoising model, keeping everything else.

The selection is the notes of the chosen tracks whose onset lies in ``[start_tick,
end_tick)``, minus the notes the user locked.  At strength ``s`` each beat of each selected
track is re-noised (masked) with probability ``s`` (``s = 1``: all of it); a selected note
whose onset falls in a masked beat is masked whole.  The model then fills the masked stretches
from everything that stays given: unselected music, locked notes, the unmasked part of the
selection (SDEdit's partial noising, on a discrete absorbing-state process).  The filling is
done by :mod:`.sample` in whole notes, rests and chords on each track's own grid, with the
lengths, texture and register the selection uses (see there); ``mode`` keeps the rhythm
(``"rhythm"``: new pitches on the same onsets and lengths) or the pitches (``"pitches"``: the
same pitches in order on a new rhythm), or neither (``"free"``).

Guarantees: notes outside the selection and locked notes come back as the very same
``Note`` objects; a selected note the model reproduces exactly on the grid comes back
unchanged too (off-grid timing and velocity kept); the song never grows longer; new notes
use pitch classes of the key's scale or of the selection itself; a one-voice track stays one
voice (no new note overlaps another of its notes).  Strength 0 returns copies.
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
from . import sample as VS

CHUNK = 128  # selection steps per model window (8 bars of 4/4)
CONTEXT = 16  # given steps on each side of a chunk
ROUNDS_AT_FULL = 8  # model calls for a chunk at strength 1
TEMPERATURE = 1.0  # of the pitch choice
RANGE_SLACK = 3  # semitones a track may go beyond the range of its selected notes
UNIT = 4  # steps re-noised together (a beat of x/4)

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


def vary(song: Song, strength: float, start_tick: int | None = None, end_tick: int | None = None, tracks=None,
         locked=None, takes: int = 1, seed: int | None = None, device="auto", progress=None, weights=None, model=None, mode: str = "free") -> list[Song]:
    """``takes`` varied copies of ``song`` (see the module docstring).

    ``tracks``: 0-based track indices (default all); ``locked``: a set of ``(track, Note)``;
    ``mode``: ``"free"``, ``"rhythm"`` or ``"pitches"``; ``progress(fraction) -> bool`` is called
    once per model call, False cancels (raises :class:`Cancelled`).  ``model`` is a
    ``VariationModel`` to use instead of loading one.
    """
    start_tick, end_tick, selected = _check(song, strength, start_tick, end_tick, tracks)
    if mode not in VS.MODES:
        raise StudioError(f"unknown mode {mode!r}; expected one of {', '.join(VS.MODES)}")
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
    rounds = max(1, math.ceil(strength * ROUNDS_AT_FULL))
    total = takes * len(groups) * len(chunks) * rounds
    done = [0]

    def report():
        done[0] += 1
        return progress is None or progress(min(1.0, done[0] / total)) is not False

    base_seed = int(np.random.SeedSequence().entropy % (2**31)) if seed is None else int(seed)
    results = []
    for take in range(takes):
        rng = np.random.default_rng([base_seed, take])
        work = song.copy()
        for roll_tracks, sel in groups:
            for a, b in chunks:
                _chunk(work, song, model, dev, roll_tracks, sel, a, b, start_tick, end_tick, strength, locked,
                       rounds, rng, report, mode, torch)
        results.append(work)
    return results


def _chunk(work, source, model, dev, roll_tracks, sel, a, b, start_tick, end_tick, strength, locked, rounds, rng,
           report, mode, torch):
    st = R.step_ticks(work)
    song_steps = max(b, -(-source.end_tick // st))
    w0, w1 = max(0, a - CONTEXT), min(song_steps, b + CONTEXT)
    win = {ti: [n for n in work.tracks[ti].notes if n.end > w0 * st and n.start < w1 * st] for ti in roll_tracks}
    key = R.song_key(work, a * st, [n.pitch for ns in win.values() for n in ns] or None)
    roll = R.song_to_roll(work, roll_tracks, w0, w1 - w0, key=key)
    K, T, P = roll.cells.shape
    lo_tick, hi_tick = max(a * st, start_tick), min(b * st, end_tick)
    lo, hi = max(a, -(-lo_tick // st)) - w0, -(-hi_tick // st) - w0  # selection steps in the window
    lo = max(0, lo_tick // st - w0)
    # the units (beats) re-noised per selected track, counted from the song's bar lines (a pickup
    # or a 3/8 bar moves the beats after it)
    cols = np.zeros((K, T), dtype=bool)
    phase = w0 % UNIT
    unit_of = np.cumsum((roll.bar_pos % UNIT == 0) | (np.arange(T) == 0)) - 1  # [T] the unit of each step
    inside = (np.arange(T) >= lo) & (np.arange(T) < hi)
    for k, ti in enumerate(roll_tracks):
        if ti not in sel:
            continue
        if strength >= 1:
            cols[k, lo:hi] = True
            continue
        n_units = max((T + phase) // UNIT + 2, int(unit_of[-1]) + 1)
        pick = rng.random(n_units) < strength
        cols[k] = pick[unit_of] & inside
    if strength < 1 and not cols.any():
        ks = [k for k, ti in enumerate(roll_tracks) if ti in sel]
        k = ks[int(rng.integers(len(ks)))]
        u0 = lo + int(rng.integers(max(1, hi - lo)))
        cols[k] = (unit_of == unit_of[u0]) & inside
    cells = np.zeros((K, T, P), dtype=np.int64)
    free = np.zeros((K, T), dtype=bool)
    occupied = np.zeros((K, T, P), dtype=bool)
    silent_src = roll.cells.max(axis=2) == R.REST
    by_grid, removed, vocabs, spans, mono, basis, grid_basis = {}, {}, {}, {}, {}, {}, {}
    allowed = np.zeros((K, P), dtype=bool)
    src_pcs = set()
    for k, ti in enumerate(roll_tracks):
        q_all = []
        for n in win[ti]:
            s, e, p = R.quantize(n, st)
            s, e = s - w0, e - w0
            q_all.append((s, e, p))
            is_sel = ti in sel and lo_tick <= n.start < hi_tick and (ti, n) not in locked
            if is_sel and 0 <= s < T and cols[k, s]:
                removed.setdefault(ti, []).append(n)
                by_grid[(ti, s + w0, e + w0, p)] = n
                src_pcs.add(p % 12)
            else:
                R.paint(cells[k], [(s, e, p)])
                if R.LOW <= p <= R.HIGH:  # the note's real extent, rounded outwards
                    occupied[k, max(0, n.start // st - w0):max(0, min(-(-n.end // st) - w0, T)), p - R.LOW] = True
        mono[k] = R.mostly_mono(q_all)
        if ti not in sel:
            continue
        sel_notes = [n for n in win[ti] if lo_tick <= n.start < hi_tick]
        q_sel = [(s - w0, e - w0, p) for s, e, p in (R.quantize(n, st) for n in sel_notes)]
        basis[k] = q_sel if len(q_sel) >= 3 else q_all
        # the grid and lengths from the notes that sit on the step grid (tuplets do not, and
        # would make every 16th look like part of the vocabulary)
        exact = [q for q, n in zip(q_sel, sel_notes) if n.start % st == 0 and n.end % st == 0]
        grid_basis[k] = exact if len(exact) >= 3 else basis[k]
        # the selection's texture is what the user sees, read off its real timing (ornaments and
        # grace notes quantized onto their neighbours' steps would look like chords)
        mono[k] = _one_voice(sel_notes if len(sel_notes) >= 3 else win[ti])
        rem = [R.quantize(n, st) for n in removed.get(ti, [])]
        rem = [(s - w0, e - w0, p) for s, e, p in rem]
        f = cols[k].copy()
        for s, e, _ in rem:
            f[max(0, s):min(T, e)] = True
        if mono[k]:
            f &= ~occupied[k].any(axis=1)
        free[k] = f
        vocabs[k] = VS.analyse(basis[k], roll.bar_pos, strength, mono[k], mode, grid_notes=grid_basis[k])
        sp = []
        for x, y in VS.runs(f):
            span = VS.Span(x, y)
            inside = sorted(r for r in rem if x <= r[0] < y)
            if mode == "rhythm":
                ev = {}
                for s, e, p in inside:
                    ev.setdefault(s, []).append((p, min(e, y)))
                span.fixed = [(s, max(e for _, e in v), len(v), [e for _, e in sorted(v)]) for s, v in sorted(ev.items())]
                if mono[k]:
                    span.fixed = [(s, u, 1, ends[:1]) for s, u, _, ends in span.fixed]
                if not span.fixed:
                    free[k, x:y] = False
                    continue
            elif mode == "pitches":
                ev = {}
                for s, e, p in inside:
                    ev.setdefault(s, []).append(p)
                span.seq = [sorted(v)[-1:] if mono[k] else sorted(v) for _, v in sorted(ev.items())]
                if not span.seq:
                    free[k, x:y] = False
                    continue
            sp.append(span)
        spans[k] = sp
    if not any(spans.values()):
        return
    # pitches that may start a note: the key's scale plus the selection's own pitch classes, in range
    pcs = roll.scale.copy()
    pcs[list(src_pcs)] = True
    pitch_ok = pcs[(np.arange(P) + R.LOW) % 12]
    for k, ti in enumerate(roll_tracks):
        ps = [p for _, _, p in basis[k]] if k in basis else [n.pitch for n in win[ti]]
        ok = pitch_ok.copy()
        if ps:
            ok[: max(0, min(ps) - RANGE_SLACK - R.LOW)] = False
            ok[max(ps) + RANGE_SLACK - R.LOW + 1:] = False
        allowed[k] = ok
    onset_limit = hi
    t_ = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(dev)  # noqa: E731
    scale_t, pos_t, len_t, mono_t = t_(roll.scale), t_(roll.bar_pos), t_(roll.bar_len), t_(roll.mono)
    new_events: dict[int, list] = {}
    for r in range(rounds):
        masked = np.repeat(free[:, :, None], P, axis=2) & ~occupied
        with torch.no_grad():
            logits = model(t_(cells)[None], t_(masked)[None], scale_t[None], pos_t[None], len_t[None], mono_t[None])[0]
            logp = torch.log_softmax(logits.float(), dim=-1).cpu().numpy()
        last = r == rounds - 1
        share = 1.0 / (rounds - r)
        for k, sp in spans.items():
            if not sp:
                continue
            pitches = np.nonzero(allowed[k])[0]
            if len(pitches) == 0:
                spans[k] = []
                continue
            sc = VS.TrackScores(logp[k], pitches, occupied[k], TEMPERATURE)
            voc = vocabs[k]
            nxt = []
            for span in sp:
                prev_p, next_p = _neighbours(cells[k], span.a, span.b)
                ev = VS.sample_span(span, sc, voc, pitches + R.LOW, roll.bar_pos, silent_src[k], onset_limit,
                                    prev_p, next_p, rng)
                if ev is None:
                    ev = []
                commit = [e for e in ev if last or rng.random() < share]
                if last or len(commit) == len(ev):
                    commit = ev
                for e in commit:
                    t, u, ps = e[0], e[1], e[2]
                    if not ps:
                        continue
                    ends = e[3] if len(e) > 3 else [u] * len(ps)
                    for p, en in zip(sorted(ps), ends):
                        R.paint(cells[k], [(t, en, p)])
                        occupied[k, t:en, p - R.LOW] = True
                    new_events.setdefault(k, []).append((t, sorted(ps), ends))
                if len(commit) == len(ev):
                    free[k, span.a:span.b] = False
                    continue
                nxt += _split(span, ev, commit, free[k])
            spans[k] = nxt
        if not report():
            raise Cancelled()
        if not any(spans.values()):
            break
    _write_back(work, source, roll_tracks, sel, removed, new_events, by_grid, w0, st, lo_tick, hi_tick, mode)


def _one_voice(notes, share: float = 0.95) -> bool:
    """True when at least ``share`` of the time some note sounds, exactly one does."""
    events = sorted([(n.start, 1) for n in notes] + [(n.end, -1) for n in notes])
    one = some = 0
    cur, last = 0, None
    for t, d in events:
        if last is not None and t > last:
            some += (t - last) * (cur >= 1)
            one += (t - last) * (cur == 1)
        cur += d
        last = t
    return some == 0 or one >= share * some


def _neighbours(cells_k, a, b):
    on = cells_k == R.ONSET
    prev_p = next_p = None
    for t in range(a - 1, max(-1, a - 17), -1):
        q = np.nonzero(on[t])[0]
        if len(q):
            prev_p = int(q.max()) + R.LOW
            break
    for t in range(b, min(len(cells_k), b + 8)):
        q = np.nonzero(on[t])[0]
        if len(q):
            next_p = int(q.max()) + R.LOW
            break
    return prev_p, next_p


def _split(span, ev, commit, free_k):
    """The open sub-spans left between the committed events of a sampled span, each with the
    fixed events ("rhythm") or the pitch sets ("pitches") still to place in it."""
    cset = {id(e) for e in commit}
    gaps, cur, pending = [], span.a, []
    for e in ev:
        if id(e) in cset:
            if e[0] > cur:
                gaps.append((cur, e[0], pending))
            free_k[e[0]:e[1]] = False
            cur, pending = e[1], []
        else:
            pending.append(e)
    if cur < span.b:
        gaps.append((cur, span.b, pending))
    # the pitch sets are placed in order, one per sampled note (rests place none)
    seq_of = {}
    if span.seq is not None:
        notes = [e for e in ev if e[2]]
        seq_of = {id(e): span.seq[c] for c, e in enumerate(notes) if c < len(span.seq)}
    res = []
    for x, y, pend in gaps:
        sub = VS.Span(x, y)
        if span.fixed is not None:
            sub.fixed = [f for f in span.fixed if x <= f[0] < y]
            if not sub.fixed:
                free_k[x:y] = False
                continue
        elif span.seq is not None:
            sub.seq = [seq_of[id(e)] for e in pend if id(e) in seq_of]
            if not sub.seq:
                free_k[x:y] = False
                continue
        res.append(sub)
    return res


def _write_back(work, source, roll_tracks, sel, removed, new_events, by_grid, w0, st, lo_tick, hi_tick, mode):
    end_limit = source.end_tick
    for k, ti in enumerate(roll_tracks):
        if ti not in sel:
            continue
        old = removed.get(ti, [])
        evs = new_events.get(k, [])
        if not old and not evs:
            continue
        track = work.tracks[ti]
        vel = int(np.median([n.velocity for n in old] or [n.velocity for n in track.notes] or [80]))
        new = []
        at_step: dict[int, list[Note]] = {}  # keep-rhythm: the notes each event re-pitches, low to high
        if mode == "rhythm":
            for n in old:
                at_step.setdefault(R.quantize(n, st)[0], []).append(n)
        for t, ps, ends in evs:
            olds = sorted(at_step.get(t + w0, []), key=lambda n: n.pitch)
            if olds:  # the very onsets, lengths and velocities of the notes they replace (off-grid ones too)
                for p, n in zip(sorted(ps), olds[-len(ps):] if len(olds) > len(ps) else olds):
                    new.append(n if n.pitch == p else replace(n, pitch=p))
                continue
            for p, u in zip(ps, ends):
                s0, e0 = t + w0, u + w0
                orig = by_grid.get((ti, s0, e0, p))
                if orig is not None:
                    new.append(orig)
                    continue
                end = min(e0 * st, end_limit)
                if lo_tick <= s0 * st < hi_tick and end > s0 * st:
                    new.append(Note(s0 * st, p, end - s0 * st, vel))
        gone = set(old)
        track.notes = sorted([n for n in track.notes if n not in gone] + new)
