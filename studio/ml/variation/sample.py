"""Vary's sampler: notes in the passage's own rhythmic vocabulary and texture.

The network (absorbing-state diffusion on the 16th-step roll) gives, for every masked cell,
log-probabilities of REST / ONSET / HOLD.  Instead of drawing cells one by one (which writes
16th notes between 16th rests, and chords in one-voice parts), this sampler draws whole
*events* — a note or chord of a given length, or a rest — on the passage's own grid:

* the grid of a track is the coarsest division every onset (from its bar line) and every
  duration of its notes in the window is a multiple of (a quarter, an eighth, a 16th);
* note lengths come from the lengths the track uses (at strength below 0.5 exactly those; above,
  any multiple of the grid between its shortest and longest note); rests the same, from the
  rests inside the line, and any grid length where the source was silent;
* a one-voice track gets one pitch at a time; a chordal track gets chords of the sizes it uses.

A masked stretch of a track (a *span*) is filled by exact forward-filtering / backward-sampling
over its segmentations: the score of a segmentation is the sum of the network's cell
log-probabilities (plus, for one-voice tracks, a melodic-interval prior between consecutive
pitches).  Spans are revealed over a few network calls: each round samples every open span and
commits a share of its events, so later events see the earlier ones (as the cell-by-cell sampler
did with columns).

Modes: ``free`` (rhythm and pitches), ``rhythm`` (keep the rhythm: new pitches on the same
onsets, lengths and chord sizes) and ``pitches`` (keep the pitches in order: new rhythm).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

NEG = -1e9
MODES = ("free", "rhythm", "pitches")
GRIDS = (4, 2, 1)  # quarter, eighth, sixteenth (steps); coarsest first
INTERVAL_WEIGHT = 1.0
CHORD_PRIOR_WEIGHT = 1.0
REGISTER_WEIGHT = 3.0


# ---- analysis of the source ----------------------------------------------------------------
@dataclass
class Vocab:
    grid: int
    note_lengths: list[int]
    rest_lengths: list[int]
    note_prior: dict  # length -> log prior of a note event of that length
    rest_prior: dict  # length -> log prior of a rest event
    silent_rest: float  # log prior of a rest of any grid length where the source was silent
    chord_sizes: dict[int, float]  # size -> log prior
    mono: bool
    intervals: np.ndarray  # log prior over intervals -24..24 (49,)
    register: np.ndarray  # log prior over MIDI pitches 0..127: the track's tessitura


def track_grid(notes, bar_pos) -> int:
    """Coarsest of GRIDS that every onset (from its bar line) and every length of ``notes``
    ((start, end, pitch) in window steps, starts inside the window) is a multiple of."""
    for g in GRIDS:
        if all(bar_pos[s] % g == 0 and (e - s) % g == 0 for s, e, _ in notes):
            return g
    return 1


_GENERIC = np.array([0.06, 0.24, 0.22, 0.12, 0.10, 0.07, 0.015, 0.045, 0.025, 0.02, 0.01, 0.005, 0.03])


def interval_prior(pitches) -> np.ndarray:
    """Log prior over melodic intervals -24..24: a generic one (steps likelier than leaps) mixed
    with the intervals this line uses."""
    base = np.full(49, 0.002)
    for i in range(-12, 13):
        base[i + 24] = _GENERIC[abs(i)] / (1 if i == 0 else 2)
    base /= base.sum()
    hist = np.full(49, 0.0)
    for a, b in zip(pitches, pitches[1:]):
        d = int(np.clip(b - a, -24, 24))
        hist[d + 24] += 1
    if hist.sum() >= 4:
        hist = (hist + 0.2) / (hist + 0.2).sum()
        base = 0.5 * base + 0.5 * hist
    return np.log(base)


def analyse(notes, bar_pos, strength: float, mono: bool, mode: str, grid_notes=None) -> Vocab:
    """The rhythmic vocabulary of one track from its notes ``(s, e, p)`` in the window
    (``grid_notes``: those to read the grid and the lengths from, default all of them)."""
    starts = [(s, e, p) for s, e, p in notes if 0 <= s < len(bar_pos)]
    on_grid = [(s, e, p) for s, e, p in (starts if grid_notes is None else grid_notes) if 0 <= s < len(bar_pos)]
    g = track_grid(on_grid, bar_pos) if on_grid else 2
    lengths = sorted({e - s for s, e, _ in on_grid if (e - s) % g == 0}) or [g]
    # rests inside the line: gaps between a note's end and the next onset
    rests, reach, rest_count = set(), None, {}
    for s, e, _ in sorted(notes):
        if reach is not None and s - reach > 0 and (s - reach) % g == 0:
            rests.add(s - reach)
            rest_count[s - reach] = rest_count.get(s - reach, 0) + 1
        reach = e if reach is None else max(reach, e)
    rest_hist = dict(rest_count)
    note_hist: dict[int, int] = {}
    for s, e, _ in starts:
        note_hist[e - s] = note_hist.get(e - s, 0) + 1
    rests = sorted(rests)
    wide = strength >= 0.5 or mode == "pitches"
    if mode == "pitches" and g > 1:
        # the same notes in the same stretch need a finer division to get a new rhythm: a line of
        # quarters gets eighths (and the lengths between an eighth and twice its longest note)
        g //= 2
        lengths = sorted(set(lengths) | set(range(g, min(2 * lengths[-1], 16) + 1, g)))
    elif wide:
        lengths = sorted(set(lengths) | set(range(lengths[0], lengths[-1] + 1, g)))
        if rests:
            rests = sorted(set(rests) | set(range(rests[0], rests[-1] + 1, g)))
    sizes: dict[int, int] = {}
    by_onset: dict[int, int] = {}
    for s, _, _ in starts:
        by_onset[s] = by_onset.get(s, 0) + 1
    for c in by_onset.values():
        sizes[c] = sizes.get(c, 0) + 1
    if mono or not sizes:
        chord = {1: 0.0}
    else:
        tot = sum(sizes.values())
        chord = {m: math.log(c / tot) for m, c in sizes.items() if m <= 6}
    line = [p for _, _, p in sorted(starts)] if mono else []
    n_notes = sum(note_hist.values()) or 1
    n_rests = sum(rest_hist.values())
    rho = (n_rests + 0.5) / (n_notes + n_rests + 1)
    note_prior = {L: math.log((1 - rho) * (note_hist.get(L, 0) + 0.3) / (n_notes + 0.3 * len(lengths)))
                  for L in lengths}
    rest_prior = {L: math.log(rho * (rest_hist.get(L, 0) + 0.3) / (n_rests + 0.3 * max(1, len(rests))))
                  for L in rests}
    if mode == "pitches":  # a new rhythm is asked for: the passage's lengths are no guide
        note_prior = {L: math.log(1 - rho) for L in lengths}
    top = max(note_prior.values())  # relative to the commonest length: a prior on which length, not on how many
    note_prior = {L: v - top for L, v in note_prior.items()}
    rest_prior = {L: v - top for L, v in rest_prior.items()}
    return Vocab(g, lengths, rests, note_prior, rest_prior, math.log(rho * 0.3) - top, chord, mono, interval_prior(line),
                 register_prior([p for _, _, p in notes]))


def register_prior(pitches) -> np.ndarray:
    """Log prior over MIDI pitches: a normal around the track's mean pitch, a little wider than
    its spread (the network alone does not always know which register a part plays in)."""
    x = np.arange(128, dtype=float)
    if not pitches:
        return np.zeros(128)
    mu, sd = float(np.mean(pitches)), float(np.std(pitches))
    sd = max(sd, 2.5) + 1.5
    return REGISTER_WEIGHT * (-0.5 * ((x - mu) / sd) ** 2)


# ---- spans ---------------------------------------------------------------------------------
@dataclass
class Span:
    """A masked stretch ``[a, b)`` of one track (window steps)."""

    a: int
    b: int
    seq: list | None = None  # "pitches" mode: the pitch sets to place, in order
    fixed: list | None = None  # "rhythm" mode: the events (start, end, [lengths per chord note]) to fill
    events: list = field(default_factory=list)


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    out, t, T = [], 0, len(flags)
    while t < T:
        if flags[t]:
            u = t
            while u < T and flags[u]:
                u += 1
            out.append((t, u))
            t = u
        else:
            t += 1
    return out


# ---- elementary symmetric polynomials (chords) ----------------------------------------------
def log_esp(lw: np.ndarray, m_max: int) -> np.ndarray:
    """``log e_m(w)`` for m = 0..m_max of weights ``exp(lw)`` along the last axis: ``[..., m_max+1]``."""
    shp = lw.shape[:-1]
    E = np.full(shp + (m_max + 1,), NEG)
    E[..., 0] = 0.0
    for q in range(lw.shape[-1]):
        x = lw[..., q:q + 1]
        E[..., 1:] = np.logaddexp(E[..., 1:], E[..., :-1] + x)
    return E


def sample_subset(lw: np.ndarray, m: int, rng) -> list[int]:
    """Indices of a size-``m`` subset drawn with probability proportional to the product of ``exp(lw)``."""
    n = len(lw)
    # suffix ESPs: S[q, k] = log e_k(w[q:])
    S = np.full((n + 1, m + 1), NEG)
    S[n, 0] = 0.0
    for q in range(n - 1, -1, -1):
        S[q] = S[q + 1]
        S[q, 1:] = np.logaddexp(S[q + 1, 1:], S[q + 1, :-1] + lw[q])
    out, k = [], m
    for q in range(n):
        if k == 0:
            break
        if S[q, k] <= NEG / 2:
            break
        p_in = math.exp(min(0.0, lw[q] + S[q + 1, k - 1] - S[q, k]))
        if rng.random() < p_in:
            out.append(q)
            k -= 1
    return out


# ---- the segment sampler --------------------------------------------------------------------
def _lse(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(m <= NEG / 2, 0.0, m)
    tot = np.sum(np.exp(x - m), axis=axis)
    return np.where(tot > 0, np.squeeze(m, axis) + np.log(np.maximum(tot, 1e-300)), NEG)


def ffbs(n_pos: int, edges: list, S: int, init: np.ndarray, final: np.ndarray, rng, trans: np.ndarray | None = None):
    """Sample a path 0 -> n_pos-1 through the lattice's ``edges`` ``(i, j, kind, w, tag)``, with
    probability proportional to the product of its weights; ``init``/``final``: log weights over
    the ``S`` states at the two ends.  Edge kinds (``w`` in log space):

    * ``"T"``: through the shared transition matrix ``trans[s_from, s_to]``, then ``w[s_to]``;
    * ``"D"``: the state stays, weight ``w`` (a scalar);
    * ``"S"``: the state moves one up (``s -> s + 1``), weight ``w[s]``;
    * ``"M"``: any move, weight ``w[s_from, s_to]``.

    Returns ``[(i, j, s_to, tag)]`` or None when no path exists.
    """
    into: list[list] = [[] for _ in range(n_pos)]
    for e in edges:
        into[e[1]].append(e)
    alpha = np.full((n_pos, S), NEG)
    alpha[0] = init
    through: dict[int, np.ndarray] = {}  # per position: lse over s_from of alpha + trans

    def via_trans(i):
        if i not in through:
            through[i] = _lse(alpha[i][:, None] + trans, 0)
        return through[i]

    def arrive(i, kind, w):
        if kind == "T":
            return via_trans(i) + w
        if kind == "D":
            return alpha[i] + w
        if kind == "S":
            out = np.full(S, NEG)
            out[1:] = alpha[i][:-1] + w[:-1] if len(w) == S else alpha[i][:-1] + w
            return out
        return _lse(alpha[i][:, None] + w, 0)

    alive = np.zeros(n_pos, dtype=bool)
    alive[0] = init.max() > NEG / 2
    arrivals: list[list] = [[] for _ in range(n_pos)]  # (edge, its arrival vector) per position
    for j in range(1, n_pos):
        arr = [(e, arrive(e[0], e[2], e[3])) for e in into[j] if alive[e[0]]]
        if arr:
            arrivals[j] = arr
            alpha[j] = _lse(np.stack([v for _, v in arr]), 0) if len(arr) > 1 else arr[0][1]
            alive[j] = alpha[j].max() > NEG / 2
    last = alpha[n_pos - 1] + final
    if last.max() <= NEG / 2:
        return None
    s = _pick(last, rng)
    j, path = n_pos - 1, []
    while j > 0:
        # each edge into (j, s): its weight summed over where it came from
        arr = arrivals[j]
        (i, _, kind, w, tag), _ = arr[_pick(np.array([v[s] for _, v in arr]), rng)]
        if kind == "T":
            s0 = _pick(alpha[i] + trans[:, s], rng)
        elif kind == "D":
            s0 = s
        elif kind == "S":
            s0 = s - 1
        else:
            s0 = _pick(alpha[i] + w[:, s], rng)
        path.append((i, j, s, tag))
        j, s = i, s0
    return path[::-1]


def _pick(logw: np.ndarray, rng) -> int:
    w = np.exp(logw - logw.max())
    return int(rng.choice(len(w), p=w / w.sum()))


# ---- scoring a track's cells ---------------------------------------------------------------
class TrackScores:
    """Cumulative sums of one track's cell log-probabilities, for O(1) event scores.

    One-voice tracks read each column as one choice (silent / a note starts / a note goes on),
    whose probabilities are the sums over pitches of the cells' ONSET and HOLD probabilities;
    the pitch of a note comes from its onset cell (sharpened by the temperature) and the mean
    agreement of its held cells.  Summing every held cell's pitch evidence instead would count
    one note many times and make the single likeliest pitch win every long note.
    """

    def __init__(self, logp: np.ndarray, idx: np.ndarray, occupied: np.ndarray, temperature: float):
        # logp [T, P, 3] (REST, ONSET, HOLD); idx: the pitches a new note may take; occupied [T, P]
        # (given notes sounding).  Everything below is over ``idx`` except the column choice.
        self.temperature = temperature
        on, ho = np.exp(logp[:, :, 1]), np.exp(logp[:, :, 2])
        eps = 1e-6
        pi_on = on.sum(1) + eps
        pi_ho = ho.sum(1) + eps
        pi_sil = np.clip(1.0 - pi_on - pi_ho, 0.02, None)
        z = pi_on + pi_ho + pi_sil
        self.l_on = np.log(pi_on / z)
        self.c_ho_col = np.concatenate([[0.0], np.cumsum(np.log(pi_ho / z))])
        self.c_sil = np.concatenate([[0.0], np.cumsum(np.log(pi_sil / z))])
        on, ho = on[:, idx] + eps, ho[:, idx] + eps
        logp, occupied = logp[:, idx], occupied[:, idx]
        P = len(idx)
        lq = (np.log(on) - np.log(on.sum(1, keepdims=True))) / temperature
        lq -= np.logaddexp.reduce(lq, axis=1, keepdims=True)
        # centred on its entropy: choosing a pitch costs nothing on average, so how many notes a
        # span gets is decided by the column evidence, not by how unsure the pitch is
        self.pitch_on = lq - (np.exp(lq) * lq).sum(1, keepdims=True)
        self.c_pitch_ho = np.vstack([np.zeros((1, P)), np.cumsum(np.log(ho) - np.log(ho.sum(1, keepdims=True)), 0)])
        # per-pitch log-odds against silence (chords: each pitch on its own)
        lp = logp / temperature
        d_on = lp[:, :, 1] - lp[:, :, 0]
        d_ho = lp[:, :, 2] - lp[:, :, 0]
        self.d_on = np.where(~occupied, d_on, NEG)
        self.c_ho = np.vstack([np.zeros((1, P)), np.cumsum(d_ho, 0)])
        self.c_occ = np.vstack([np.zeros((1, P), np.int32), np.cumsum(occupied, 0, dtype=np.int32)])

    def mono_rest(self, t: int, u: int) -> float:
        return self.c_sil[u] - self.c_sil[t]

    def mono_notes(self, t: int, u: int, idx: np.ndarray) -> np.ndarray:
        n = u - t - 1
        seg = self.l_on[t] + self.c_ho_col[u] - self.c_ho_col[t + 1]
        agree = (self.c_pitch_ho[u, idx] - self.c_pitch_ho[t + 1, idx]) / max(1, n) / self.temperature
        s = seg + self.pitch_on[t, idx] + (agree if n > 0 else 0.0)
        busy = (self.c_occ[u, idx] - self.c_occ[t, idx]) > 0
        return np.where(busy, NEG, s)

    def rest(self, t: int, u: int) -> float:
        return 0.0

    def notes(self, t: int, u: int, idx: np.ndarray) -> np.ndarray:
        """Score of a note of each pitch index in ``idx`` from step t to u (exclusive), against
        silence: the onset cell's log-odds plus the mean log-odds of its held cells (the cells
        of one note are not independent evidence: summing them would make every long note the
        single likeliest pitch)."""
        hold = (self.c_ho[u, idx] - self.c_ho[t + 1, idx]) / max(1, u - t - 1)
        s = self.d_on[t, idx] + hold
        busy = (self.c_occ[u, idx] - self.c_occ[t, idx]) > 0
        return np.where(busy | (s < NEG / 2), NEG, s)

    def deltas(self, t: int, u: int, idx: np.ndarray) -> np.ndarray:
        return self.notes(t, u, idx)


def grid_points(a: int, b: int, g: int, bar_pos: np.ndarray) -> list[int]:
    return sorted({a, b} | {t for t in range(a + 1, b) if bar_pos[t] % g == 0})


def sample_span(span: Span, sc: TrackScores, voc: Vocab, pitches: np.ndarray, bar_pos, silent_src: np.ndarray,
                onset_limit: int, prev_pitch, next_pitch, rng):
    """Events ``(start, end, [pitches], [ends])`` filling the span, or None (leave it silent)."""
    a, b = span.a, span.b
    if span.fixed is not None:
        return _sample_fixed(span, sc, voc, pitches, prev_pitch, next_pitch, rng)
    pts = grid_points(a, b, voc.grid, bar_pos)
    idx = {t: i for i, t in enumerate(pts)}
    n = len(pts)
    for relax in (0, 1, 2):
        edges, trans = _edges(span, pts, idx, sc, voc, pitches, silent_src, onset_limit, relax)
        if span.seq is not None:
            S = len(span.seq) + 1
            init = np.full(S, NEG)
            init[0] = 0.0
            final = np.full(S, NEG)
            final[S - 1] = 0.0
        elif voc.mono:
            S = len(pitches) + 1  # last pitch, or "none yet"
            init = np.full(S, NEG)
            if prev_pitch is not None and prev_pitch in set(pitches.tolist()):
                init[int(np.nonzero(pitches == prev_pitch)[0][0])] = 0.0
            else:
                init[S - 1] = 0.0
            final = np.zeros(S)
            if next_pitch is not None:
                final[:S - 1] = INTERVAL_WEIGHT * voc.intervals[np.clip(next_pitch - pitches, -24, 24) + 24] / sc_temp(sc)
        else:
            S, init, final = 1, np.zeros(1), np.zeros(1)
        path = ffbs(n, edges, S, init, final, rng, trans)
        if path is not None:
            break
    if path is None:
        return None
    out = []
    for i, j, s, tag in path:
        t, u = pts[i], pts[j]
        if tag[0] == "rest":
            out.append((t, u, []))
            continue
        if tag[0] == "seq":
            ps = list(span.seq[s - 1])
            out.append((t, u, ps))
        elif voc.mono:
            out.append((t, u, [int(pitches[s])]))
        else:
            m = tag[1]
            lw = sc.deltas(t, u, np.arange(len(pitches))) + voc.register[pitches]
            sub = sample_subset(lw, m, rng)
            if len(sub) < m:
                continue
            out.append((t, u, [int(pitches[q]) for q in sub]))
    return out


def sc_temp(sc) -> float:
    return getattr(sc, "temperature", 1.0)


def _edges(span, pts, idx, sc, voc, pitches, silent_src, onset_limit, relax):
    """The lattice of one span: ``(edges, trans)`` for :func:`ffbs`.  ``relax`` 0 keeps to the
    vocabulary; 1 allows any length on the grid; 2 any step between neighbouring grid points."""
    n = len(pts)
    lengths = set(voc.note_lengths)
    rests = set(voc.rest_lengths)
    longest = max(max(lengths), max(rests or [0]), 16)
    worst = min(voc.note_prior.values(), default=0.0) - 2.0
    edges = []
    allp = np.arange(len(pitches))
    trans = None
    if span.seq is None and voc.mono:
        S_mono = len(pitches) + 1
        d = np.clip(pitches[None, :] - pitches[:, None], -24, 24) + 24
        trans = np.full((S_mono, S_mono), NEG)
        trans[:S_mono - 1, :S_mono - 1] = INTERVAL_WEIGHT * voc.intervals[d] / sc_temp(sc)
        trans[S_mono - 1, :S_mono - 1] = 0.0  # from "none yet"
    seq_idx = None
    if span.seq is not None:
        pl = pitches.tolist()
        seq_idx = [np.array([pl.index(p) for p in chord]) if all(p in pl for p in chord) else None
                   for chord in span.seq]
    quiet = np.concatenate([[0], np.cumsum(silent_src)])
    for i in range(n - 1):
        t = pts[i]
        for j in range(i + 1, n):
            u = pts[j]
            L = u - t
            if relax == 0 and L > longest:
                break
            silent = quiet[u] - quiet[t] == L
            note_ok = t < onset_limit and (L in lengths or relax >= 1 or (j == n - 1 and L < min(lengths)))
            if relax == 2:
                note_ok = t < onset_limit and j == i + 1
            rest_ok = (L in rests or silent or (relax == 2 and j == i + 1)
                       or (relax == 1 and L % voc.grid == 0 and bool(rests) and L >= min(rests)))
            if rest_ok:
                r = voc.rest_prior.get(L, voc.silent_rest if silent else voc.silent_rest - 2.0)
                if voc.mono:
                    r += sc.mono_rest(t, u)
                edges.append((i, j, "D", r, ("rest",)))
            if not note_ok:
                continue
            lp_note = voc.note_prior.get(L, worst)
            if seq_idx is not None:
                w = np.full(len(seq_idx), NEG)
                for c, qs in enumerate(seq_idx):
                    if qs is not None:
                        w[c] = lp_note + (sc.mono_notes(t, u, qs).sum() if voc.mono else sc.deltas(t, u, qs).sum())
                if w.max() > NEG / 2:
                    edges.append((i, j, "S", w, ("seq",)))
            elif voc.mono:
                sco = sc.mono_notes(t, u, allp) + lp_note + voc.register[pitches]
                if sco.max() > NEG / 2:
                    edges.append((i, j, "T", np.concatenate([sco, [NEG]]), ("note",)))
            else:
                lw = sc.deltas(t, u, allp) + voc.register[pitches]
                E = log_esp(lw, max(voc.chord_sizes))
                for m, lp in voc.chord_sizes.items():
                    if E[m] > NEG / 2:
                        edges.append((i, j, "D", lp_note + E[m] + CHORD_PRIOR_WEIGHT * lp, ("chord", m)))
    return edges, trans


def _sample_fixed(span, sc, voc, pitches, prev_pitch, next_pitch, rng):
    """Keep-rhythm: new pitches for the span's fixed events ``(start, end, size)``."""
    ev = span.fixed
    out = []
    if voc.mono:
        S = len(pitches)
        d = np.clip(pitches[None, :] - pitches[:, None], -24, 24) + 24
        trans = INTERVAL_WEIGHT * voc.intervals[d] / sc_temp(sc)
        alphas = []
        a = None
        for k, (t, u, m, _) in enumerate(ev):
            em = sc.mono_notes(t, u, np.arange(len(pitches))) + voc.register[pitches]
            if a is None:
                if prev_pitch is not None:
                    a = INTERVAL_WEIGHT * voc.intervals[np.clip(pitches - prev_pitch, -24, 24) + 24] / sc_temp(sc) + em
                else:
                    a = em.copy()
            else:
                a = _lse(alphas[-1][:, None] + trans, 0) + em
            alphas.append(a)
        last = alphas[-1].copy()
        if next_pitch is not None:
            last = last + INTERVAL_WEIGHT * voc.intervals[np.clip(next_pitch - pitches, -24, 24) + 24] / sc_temp(sc)
        if last.max() <= NEG / 2:
            return None
        s = _pick(last, rng)
        picks = [s]
        for k in range(len(ev) - 2, -1, -1):
            s = _pick(alphas[k] + trans[:, s], rng)
            picks.append(s)
        picks = picks[::-1]
        for (t, u, m, ends), s in zip(ev, picks):
            out.append((t, u, [int(pitches[s])], ends))
        return out
    for t, u, m, ends in ev:
        lw = sc.deltas(t, u, np.arange(len(pitches))) + voc.register[pitches]
        sub = sample_subset(lw, m, rng)
        if len(sub) == m:
            out.append((t, u, [int(pitches[q]) for q in sub], ends))
    return out
