"""What the new bars must keep of the music before them, as rules of the decoding grammar.

:class:`TextureGrammar` extends the token grammar (:class:`~.tokens.Grammar`) with each
track's texture, taken from the bars before the new ones (:func:`describe_tracks`):

* a track that is one line there stays one line: one pitch per onset, and no new note
  starts while an earlier note of the track still sounds (a note of the prompt held into
  the new bars included);
* each track keeps to its pitch range there (widened by a margin, or not: keep range);
* a drum track only plays the drums its kit used there;
* no parallel fifths or octaves between two one-line tracks (the voice-leading checker's
  definition, :mod:`studio.core.voiceleading`): when both move in the same direction from one
  onset to the next and stood a fifth or an octave apart, the second to be written may not land
  on that interval again. A pair that moved so at least :data:`DOUBLING_MIN` times in the bars
  before (a doubling, an orchestral unison) keeps it;

and with the controls a musician asks for:

* density per track (sparser / as before / denser): with the note rates before
  (``Texture.rates``, the default), each track's rate held to that rate times its factor: a
  track falling behind gets its onsets favoured, one ahead the opposite, and one that would
  run :data:`HOLD_CAP` times ahead starts no note until it is back in step (the model alone
  writes a sparse viola or cello at twice its rate before). A track silent before is free to
  enter (or not: the model decides); once it has, it is held the same way from its entry, to
  :data:`ENTRY_RATE` times the mean rate of the tracks that played (in the training split an
  entering part plays at a median 0.80 of that rate; the model alone brought three silent
  string parts in at twice the rate of the one playing); and a chordal track's
  chord sizes drawn from its own before (``Texture.chords``; the model's own chords are far
  thinner than a piano's). Without the rates, a bias on starting notes in that track and on
  the onsets, and a lean toward shorter (denser) or longer (sparser) notes;
* each track's register and rhythm (``Texture.pitch_prior``, ``dur_prior``): a bias toward
  the pitches and durations it used in the bars before, spread so that nearby ones gain too;
* a line's motion (``Texture.motion``): a bias on the interval from its last pitch toward the
  sizes of its intervals in the bars before (steps where it moved by step, leaps where it
  leapt); without it the model's lines repeated notes and leapt far more than the real ones;
* an ending on a cadence: the last new bar opens on the tonic chord of the key of the bars
  before (the lowest active track on the tonic), held to the end of the bar, every track
  that played in the last two bars taking part; the notes before it end in time for it.

These are masks over the vocabulary, so a rule holds for every take, whatever the model
scores. Per-phase sampling: durations may be drawn at their own temperature and top-p
(``rhythm``), since sharpening them collapses the rhythm onto its commonest value; so may
the first pitch of a track at an onset (``melody``), since sharpening it narrows a line's
register to a few of its recent pitches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...core import key as keyfind
from ...core import voiceleading
from . import tokens as T

DENSITY = {"sparser": 0.6, "as before": 1.0, "denser": 1.6}
DENSITY_STRENGTH = 1.5  # nats of bias per unit of log density factor
HOLD_STRENGTH = 1.0  # nats of bias per unit of log lag behind (or ahead of) a track's note rate
HOLD_CAP = 1.1  # with held density, a track that would pass this many times its due notes
HOLD_SLACK = 1.0  # (plus this many) starts no new onset until its rate catches up
ENTRY_RATE = 0.8  # a track silent before, once it enters: held to this share of the held tracks' mean rate
PITCH_SIGMA = 1.0  # semitones: the Gaussian a track's context pitches are spread by (register prior)
PITCH_FLOOR = 0.1  # share of the register prior spread evenly over the track's range
DUR_SIGMA = 0.25  # natural-log units: the spread of a track's context durations (rhythm prior)
DUR_FLOOR = 0.1  # share of the rhythm prior spread evenly over every duration
MOTION_SPAN = 24  # semitones: the largest interval the motion prior tells apart
MOTION_FLOOR = 0.1  # share of the motion prior spread evenly over every interval
_LOG_DUR = np.log(np.array(T.DURATIONS) / T.RES).astype(np.float32)  # log quarters, per DUR token
SINGLE_LINE_SHARE = 0.05  # a track is one line when at most this share of its notes overlap another
DRUM_RANGE = (35, 82)  # General MIDI percussion, when a drum track has no notes before
PARALLELS = True  # forbid parallel fifths and octaves between one-line tracks
DOUBLING_MIN = 2  # parallels of one kind between two tracks before that make them a doubling



def density_factor(value) -> float:
    """A density control (a name of :data:`DENSITY` or a positive number) as a factor."""
    if isinstance(value, str):
        key = value.strip().lower().replace("-", " ").replace("_", " ")
        if key not in DENSITY:
            raise ValueError(f"density must be one of {', '.join(DENSITY)} (got {value!r})")
        return DENSITY[key]
    v = float(value)
    if not 0.1 <= v <= 10:
        raise ValueError(f"density factor must be between 0.1 and 10 (got {value})")
    return v


def estimate_key(hist) -> tuple[int, bool]:
    """(tonic pitch class, minor?) of a duration-weighted pitch-class histogram (the shared
    Krumhansl-Schmuckler finder of :mod:`studio.core.key`)."""
    return keyfind.estimate(np.asarray(hist, dtype=float).tolist())


def window_histogram(song, lo: int, hi: int) -> np.ndarray:
    """Duration-weighted pitch classes of the pitched notes that start in ticks [lo, hi), each
    counted up to ``hi``."""
    hist = np.zeros(12)
    for tr in song.tracks:
        if tr.is_drum:
            continue
        for n in tr.notes:
            if lo <= n.start < hi:
                hist[n.pitch % 12] += min(n.end, hi) - n.start
    return hist


def overlap_flags(notes, tol: int = 0) -> list[bool]:
    """For each of ``notes`` (in start order): does it overlap another by more than ``tol`` ticks?"""
    notes = sorted(notes)
    out = [False] * len(notes)
    for i, a in enumerate(notes):
        for j in range(i + 1, len(notes)):
            b = notes[j]
            if b.start >= a.end - tol:
                break
            if min(a.end, b.end) - b.start > tol:
                out[i] = out[j] = True
    return out


def is_single_line(notes, ppq: int) -> bool:
    """One line: 4 notes or more, at most :data:`SINGLE_LINE_SHARE` of them overlapping another
    (by more than a 96th note: legato spellings and rounding are not chords)."""
    return len(notes) >= 4 and float(np.mean(overlap_flags(notes, ppq // 24))) <= SINGLE_LINE_SHARE


@dataclass
class Texture:
    """What the grammar keeps per track (all lists hold one entry per track slot)."""

    ranges: list[tuple[int, int]]
    lines: list[bool]
    busy: list[int]  # units from the first new bar until which a prompt note of the track sounds
    drums: list[bool]
    drum_pitches: list[list[int] | None]
    density: list[float] = field(default_factory=list)
    cadence: dict | None = None  # {"tonic", "minor", "bass", "active"}
    rates: list[float | None] | None = None  # notes per unit before (None: not held): density is then
    # held to rate x factor
    gaps: list[float] | None = None  # units per onset before (with rates)
    chords: list[np.ndarray | None] | None = None  # per track: the share of onsets with 1, 2, ... notes
    pitch_prior: list[np.ndarray | None] | None = None  # per track: a bias over the 128 pitches
    dur_prior: list[np.ndarray | None] | None = None  # per track: a bias over the DUR tokens
    motion: list[np.ndarray | None] | None = None  # per track: a bias over the intervals -SPAN..SPAN
    tail: list[list[tuple[int, int, int]]] | None = None  # per track: its last notes before, as
    # (start, end, pitch) in units from the first new bar (negative): where each line stands
    doubled: set = field(default_factory=set)  # (track, track, 0 or 7): parallels allowed


def describe_tracks(song, region_start: int, n_tracks: int, unit: float, margin: int,
                    texture: bool = True, lookback: int = 64) -> Texture:
    """Each track's range, line/chords, held notes and drum kit in the notes before ``region_start``."""
    ranges, lines, busy, drums, kits = [], [], [], [], []
    for tr in song.tracks[:n_tracks]:
        before = [n for n in tr.notes if n.start < region_start]
        ps = [n.pitch for n in before]
        if len(ps) >= 4:
            ranges.append((max(0, min(ps) - margin), min(127, max(ps) + margin)))
        else:
            ranges.append((0, 127) if tr.is_drum or not ps else (max(0, min(ps) - 12), min(127, max(ps) + 12)))
        drums.append(bool(tr.is_drum))
        lines.append(texture and not tr.is_drum and is_single_line(before[-lookback:], song.ppq))
        end = max((n.end for n in before), default=0)
        busy.append(max(0, int(np.ceil((end - region_start) / unit))) if texture else 0)
        kits.append((sorted(set(ps)) if ps and texture else list(range(*DRUM_RANGE))) if tr.is_drum else None)
    return Texture(ranges, lines, busy, drums, kits, [1.0] * len(ranges))


def voice_leading(song, lo: int, hi: int, n_tracks: int, unit: float, lines: list[bool],
                  keep: int = 4) -> tuple[list, set]:
    """For the parallel-fifths rule: each track's last ``keep`` notes before ``hi`` (``Texture.tail``)
    and the pairs of one-line tracks that moved in parallel fifths or octaves at least
    :data:`DOUBLING_MIN` times in ticks [lo, hi) (``Texture.doubled``)."""
    tail, parts, idx = [], [], []
    for i, tr in enumerate(song.tracks[:n_tracks]):
        before = sorted((n for n in tr.notes if n.start < hi), key=lambda n: n.start)[-keep:]
        tail.append([(int(round((n.start - hi) / unit)), int(round((n.end - hi) / unit)), n.pitch) for n in before])
        if i < len(lines) and lines[i]:
            parts.append([n for n in tr.notes if lo <= n.start < hi])
            idx.append(i)
    counts: dict = {}
    if len(parts) >= 2:
        for issue in voiceleading.check(parts, song.ppq, beats=[]):
            if issue.kind in ("parallel_fifths", "parallel_octaves"):
                a, b = issue.voices
                key = (idx[a], idx[b], 7 if issue.kind == "parallel_fifths" else 0)
                counts[key] = counts.get(key, 0) + 1
    return tail, {k for k, c in counts.items() if c >= DOUBLING_MIN}


def _centered(q: np.ndarray) -> np.ndarray:
    """log q, shifted so that a value drawn from q has a bias of 0 on average."""
    lq = np.log(q)
    return (lq - float((q * lq).sum())).astype(np.float32)


def context_priors(song, lo: int, hi: int, n_tracks: int, unit: float,
                   min_notes: int = 4) -> tuple[list, list]:
    """Per track, from its notes starting in ticks [lo, hi): a register prior over the 128
    pitches (each note's pitch spread by :data:`PITCH_SIGMA` semitones, :data:`PITCH_FLOOR`
    spread over the range it spans widened by an octave) and a rhythm prior over the DUR
    tokens (log-durations spread by :data:`DUR_SIGMA`). Each is log q centred on q's own
    mean, so a note like the track's recent ones costs nothing on average and an unlike one
    is less likely, not impossible. None for drum tracks and tracks with fewer notes."""
    pitches, durs = [], []
    grid = np.arange(128)
    logd = _LOG_DUR.astype(float)
    for tr in song.tracks[:n_tracks]:
        ns = [n for n in tr.notes if lo <= n.start < hi]
        if tr.is_drum or len(ns) < min_notes:
            pitches.append(None)
            durs.append(None)
            continue
        ps = np.array([n.pitch for n in ns], dtype=float)
        q = np.exp(-0.5 * ((grid[:, None] - ps[None, :]) / PITCH_SIGMA) ** 2).sum(1)
        q /= q.sum()
        span = (grid >= ps.min() - 12) & (grid <= ps.max() + 12)
        q = (1 - PITCH_FLOOR) * q + PITCH_FLOOR * span / span.sum()
        pitches.append(_centered(np.maximum(q, 1e-6) / np.maximum(q, 1e-6).sum()))
        ld = np.log(np.maximum(1.0, np.array([n.duration for n in ns]) / unit) / T.RES)
        r = np.exp(-0.5 * ((logd[:, None] - ld[None, :]) / DUR_SIGMA) ** 2).sum(1)
        r /= r.sum()
        r = (1 - DUR_FLOOR) * r + DUR_FLOOR / len(r)
        durs.append(_centered(r))
    return pitches, durs


def motion_priors(song, lo: int, hi: int, n_tracks: int, lines: list[bool], min_intervals: int = 6) -> list:
    """Per one-line track, from its consecutive notes starting in ticks [lo, hi): a bias over the
    signed intervals -:data:`MOTION_SPAN`..:data:`MOTION_SPAN` (index ``d + MOTION_SPAN``) that
    follows how often the track moved by each interval size, up or down alike (the register prior
    keeps the direction in check), :data:`MOTION_FLOOR` spread over every interval; log q centred
    as :func:`context_priors` does. None for other tracks and lines with fewer intervals."""
    out = []
    for i, tr in enumerate(song.tracks[:n_tracks]):
        ps = [n.pitch for n in sorted(tr.notes, key=lambda n: n.start) if lo <= n.start < hi]
        if tr.is_drum or i >= len(lines) or not lines[i] or len(ps) <= min_intervals:
            out.append(None)
            continue
        h = np.bincount(np.minimum(np.abs(np.diff(ps)), MOTION_SPAN), minlength=MOTION_SPAN + 1).astype(float)
        size = np.abs(np.arange(-MOTION_SPAN, MOTION_SPAN + 1))
        q = h[size] / np.where(size == 0, 1.0, 2.0)  # each size split between up and down
        q = (1 - MOTION_FLOOR) * q / q.sum() + MOTION_FLOOR / len(q)
        out.append(_centered(q))
    return out


MAX_CHORD = 8


def chord_sizes(song, lo: int, hi: int, n_tracks: int, min_onsets: int = 4) -> list:
    """Per track, the share of its onsets in ticks [lo, hi) that hold 1, 2, ... :data:`MAX_CHORD`
    notes; None for drums, one-line tracks' callers and tracks with fewer onsets."""
    out = []
    for tr in song.tracks[:n_tracks]:
        starts = [n.start for n in tr.notes if lo <= n.start < hi]
        sizes = np.unique(starts, return_counts=True)[1] if starts else np.array([], int)
        if tr.is_drum or len(sizes) < min_onsets:
            out.append(None)
            continue
        h = np.bincount(np.minimum(sizes, MAX_CHORD), minlength=MAX_CHORD + 1)[1:].astype(float)
        out.append(h / h.sum())
    return out


def cadence_plan(song, region_start: int, old_bars, n_tracks: int) -> dict:
    """The cadence to end on: the key of the last 8 bars before, the tracks that played in the last
    two, and the lowest of them (by its recent notes), which takes the tonic."""
    lo = old_bars[-8].start if len(old_bars) >= 8 else 0
    tonic, minor = estimate_key(window_histogram(song, lo, region_start))
    recent = old_bars[-2].start if len(old_bars) >= 2 else 0
    active, means = [], {}
    for i, tr in enumerate(song.tracks[:n_tracks]):
        ns = [n for n in tr.notes if n.start < region_start]
        if tr.is_drum or not any(n.start >= recent for n in ns):
            continue
        active.append(i)
        means[i] = float(np.mean([n.pitch for n in ns[-16:]]))
    bass = min(means, key=means.get) if means else -1
    return {"tonic": int(tonic), "minor": bool(minor), "bass": bass, "active": active}


class TextureGrammar(T.Grammar):
    """:class:`~.tokens.Grammar` plus the rules of a :class:`Texture` (see the module's notes)."""

    def __init__(self, n_tracks: int, bar_units: list[int], forced: list[list[int]] | None, tex: Texture,
                 pitch_bias: np.ndarray | None = None, rhythm: tuple[float, float | None] | None = None,
                 melody: tuple[float, float | None] | None = None,
                 onsets: tuple[float, float | None] | None = None, seed: int | None = None):
        super().__init__(n_tracks, bar_units, forced, tex.ranges, None, tex.drums)
        n = self.n_tracks
        self.lines = list(tex.lines[:n]) + [False] * (n - len(tex.lines))
        self.busy = list(tex.busy[:n]) + [0] * (n - len(tex.busy))
        self.kits = list(tex.drum_pitches[:n]) + [None] * (n - len(tex.drum_pitches))
        self.density = (list(tex.density[:n]) or [1.0] * n) + [1.0] * (n - len(tex.density[:n]))
        self.rhythm = rhythm
        self.melody = melody
        self.onsets = onsets
        self.chords = ((list(tex.chords or [])[:n]) + [None] * n)[:n]
        self.chords = [None if self.lines[u] else c for u, c in enumerate(self.chords)]
        self._rng = np.random.default_rng(seed)
        self.chord_size = 0  # notes the current onset of the current track is to hold (0: free)
        self.chord_done = 0
        self.pitch_prior = ((list(tex.pitch_prior or [])[:n]) + [None] * n)[:n]
        self.dur_prior = ((list(tex.dur_prior or [])[:n]) + [None] * n)[:n]
        self.bar_offset = np.concatenate([[0], np.cumsum(self.bar_units)]).astype(int)
        self._key = None
        if pitch_bias is not None:
            self._key = np.asarray(pitch_bias, dtype=np.float32)[np.arange(128) % 12]
        ld = np.log(np.maximum(1e-3, np.array(self.density, dtype=float)))
        self._track_bias = (DENSITY_STRENGTH * ld).astype(np.float32)
        self._pos_bias = float(DENSITY_STRENGTH * ld.mean())
        self._biases: dict = {}
        self.counts = np.zeros(n)  # notes written per track
        self.target = None
        self.entry = np.zeros(n)  # units from the new bars' start at which a held track's rate counts
        self.waiting = np.zeros(n, dtype=bool)  # silent before, not entered yet: held from its first note
        if tex.rates is not None:  # hold each track's note rate to the one before, times its factor
            rates = (list(tex.rates) + [None] * n)[:n]
            self.held = np.array([r is not None for r in rates])  # None: a track left to the model
            gaps = list(tex.gaps or [])[:n]
            gaps = np.array(gaps + [0.0] * (n - len(gaps)), dtype=float)
            known = [r for r in rates if r]
            if known and ENTRY_RATE > 0:
                self.waiting = np.array([r is None and not self.drums[u] for u, r in enumerate(rates)])
                fill = [ENTRY_RATE * float(np.mean(known)), float(np.mean(gaps[self.held]))]
                rates = [fill[0] if w else r for r, w in zip(rates, self.waiting)]
                gaps[self.waiting] = fill[1]
            self.target = np.array([r or 0.0 for r in rates], dtype=float) * np.array(self.density)
            self._reshare()
            self._gap = gaps / np.maximum(0.5, self.density)
        # the parallel-fifths rule: the one-line tracks' notes (start, end, pitch) in units from the
        # first new bar, and the last two distinct onsets among them (the checker's events)
        self.vl = [u for u in range(n) if self.lines[u] and not self.drums[u]] if PARALLELS else []
        tail = list(tex.tail or [])
        self.vl_notes = {u: list(tail[u]) if u < len(tail) else [] for u in self.vl}
        ev = sorted({a for u in self.vl for a, _, _ in self.vl_notes[u]})[-2:]
        self._before, self._event = ([None] * (2 - len(ev)) + ev) if ev else (None, None)
        self.doubled = set(tex.doubled or ())
        self.motion = ((list(tex.motion or [])[:n]) + [None] * n)[:n]
        self.last_pitch = [tl[-1][2] if u < len(tail) and (tl := tail[u]) else None for u in range(n)]
        self.cadence = tex.cadence
        self.cad_done: set[int] = set()
        self.cad_active: list[int] = []
        if self.cadence is not None:
            cad_at = int(self.bar_offset[len(self.bar_units) - 1])
            self.cad_active = sorted(t for t in self.cadence["active"] if t < n and self.busy[t] <= cad_at)
            third = {3, 4} if self.cadence["minor"] else {4}  # a minor key may end on the major third
            self.cad_pcs = {(self.cadence["tonic"] + c) % 12 for c in {0, 7} | third}

    def _reshare(self) -> None:
        """Each held track's share of the held tracks' notes (weights the onset bias of :meth:`_held`)."""
        t = self.target * self.held
        self._share = t / max(1e-9, float(t.sum()))

    # ---- where the sequence is ----------------------------------------------------------------
    def _at(self, pos: int) -> int:
        """Units from the start of the new bars to position ``pos`` of the current bar."""
        return int(self.bar_offset[self.bars_done - 1]) + pos

    def _final(self) -> bool:
        return self.cadence is not None and self.bars_done == len(self.bar_units)

    def _track_ok(self, u: int, p: int, final: bool) -> bool:
        if final and p == 0 and self.cad_active and u not in self.cad_active:
            return False
        if HOLD_CAP and self.target is not None and self.held[u] and not (final and p == 0) and \
                self.counts[u] + 1 > HOLD_CAP * self.target[u] * (self._at(p) - self.entry[u] + self._gap[u]) + \
                HOLD_SLACK:
            return False  # far ahead of its rate: no new onset until the rate catches up
        if self.drums[u] or not self.lines[u]:
            return True
        return self.busy[u] <= self._at(p)

    def _pos_ok(self, p: int, final: bool) -> bool:
        if final and p > 0 and self.cad_active:
            return False
        return any(self._track_ok(u, p, final) for u in range(self.n_tracks))

    def _missing(self, after: int = -1) -> list[int]:
        return [u for u in self.cad_active if u not in self.cad_done and u > after]

    def _allowed(self) -> np.ndarray:
        m = super()._allowed()
        ph = self.phase
        if self.pending or ph == "start":
            return m
        final = self._final()
        if ph in ("bar", "dur"):
            lo = 0 if ph == "bar" else self.pos + 1
            for p in np.nonzero(m[T.POS0 + lo: T.POS0 + self.cur_units])[0] + lo:
                if not self._pos_ok(int(p), final):
                    m[T.POS0 + p] = False
        if ph == "dur":
            t = self.track
            if self.lines[t]:
                m[T.PITCH0:T.VEL0] = False  # one pitch per onset
            elif self.chord_size:  # the chord size drawn for this onset
                if self.chord_done >= self.chord_size:
                    m[T.PITCH0:T.VEL0] = False
                elif m[T.PITCH0:T.VEL0].any():
                    m[:T.PITCH0] = False
                    self._room(m)
            self._kit(m)
            for u in range(t + 1, self.n_tracks):
                if m[T.TRACK0 + u] and not self._track_ok(u, self.pos, final):
                    m[T.TRACK0 + u] = False
        elif ph == "pos":
            for u in range(self.n_tracks):
                if m[T.TRACK0 + u] and not self._track_ok(u, self.pos, final):
                    m[T.TRACK0 + u] = False
        elif ph == "track":
            self._kit(m)
            self._room(m)
            if len(self.vl) > 1 and self.track in self.vl_notes:
                self._no_parallels(m)
        elif ph == "vel":
            self._durations(m)
        if final and self.pos <= 0:
            self._cadence(m, ph)
        if not m.any():  # the rules above always leave a way on; keep the grammar's own if not
            return super()._allowed()
        return m

    def _room(self, m: np.ndarray) -> None:
        """A chord's pitches ascend: leave room under the top of the range for the notes still to come."""
        more = self.chord_size - self.chord_done - 1
        if more > 0:
            hi = self.ranges[self.track][1]
            room = m.copy()
            room[T.PITCH0 + max(0, hi - more + 1): T.VEL0] = False
            if room[T.PITCH0:T.VEL0].any():
                m[T.PITCH0 + max(0, hi - more + 1): T.VEL0] = False

    def _sounding(self, u: int, at: int) -> int | None:
        for a, e, p in reversed(self.vl_notes[u]):
            if a <= at:
                return p if e > at else None
        return None

    def _no_parallels(self, m: np.ndarray) -> None:
        """Line track ``t``'s pitch at this onset: not a parallel fifth or octave with a line that
        already moved here (see the module's notes); kept only if some pitch stays allowed."""
        t, x = self.track, self._at(self.pos)
        prev = self._before if x == self._event else self._event
        a0 = None if prev is None else self._sounding(t, prev)
        if a0 is None:
            return
        p = np.arange(128)
        bad = np.zeros(128, dtype=bool)
        for u in self.vl:
            notes = self.vl_notes[u]
            if u == t or not notes or notes[-1][0] != x:
                continue
            b1, b0 = notes[-1][2], self._sounding(u, prev)
            if b0 is None or b0 == b1:
                continue
            i0 = abs(a0 - b0) % 12
            if i0 in (0, 7) and (min(t, u), max(t, u), i0) not in self.doubled:
                bad |= (np.abs(p - b1) % 12 == i0) & (p != a0) & ((p > a0) == (b1 > b0))
        if bad.any():
            keep = m[T.PITCH0:T.VEL0] & ~bad
            if keep.any():
                m[T.PITCH0:T.VEL0] = keep

    def _kit(self, m: np.ndarray) -> None:
        """A drum track's notes: its kit only."""
        t = self.track
        if self.drums[t] and self.kits[t]:
            kit = np.zeros(128, bool)
            kit[self.kits[t]] = True
            if self.phase == "dur" or (m[T.PITCH0:T.VEL0] & kit).any():
                m[T.PITCH0:T.VEL0] &= kit

    def _durations(self, m: np.ndarray) -> None:
        t, durs = self.track, np.array(T.DURATIONS)
        if self._final() and self.pos == 0 and t in self.cad_active:  # the final chord is held
            m[T.DUR0:] &= durs >= min(self.cur_units, int(durs.max()))
        elif self.cadence is not None and self.lines[t] and t in self.cad_active:
            room = int(self.bar_offset[len(self.bar_units) - 1]) - self._at(self.pos)
            if room > 0 and (durs <= room).any():  # end in time for the final chord
                m[T.DUR0:] &= durs <= room

    def _cadence(self, m: np.ndarray, ph: str) -> None:
        """At the final bar's downbeat: the missing active tracks in order, on the tonic chord."""
        missing = self._missing()
        if missing and ph in ("bar", "pos", "dur"):
            m[T.BAR] = False
        if ph == "pos" and missing:
            m[T.TRACK0:T.PROG0] = False
            m[T.TRACK0 + missing[0]] = True
        elif ph == "dur":
            nxt = self._missing(self.track)
            if nxt:
                m[T.TRACK0:T.PROG0] = False
                m[T.TRACK0 + nxt[0]] = True
                m[T.POS0:T.TRACK0] = False
            self._chord(m)  # more notes of this track's chord
        elif ph == "track":
            self._chord(m)

    def _chord(self, m: np.ndarray) -> None:
        t = self.track
        if t not in self.cad_active or self.drums[t]:
            return
        pcs = {self.cadence["tonic"]} if t == self.cadence["bass"] else self.cad_pcs
        chord = np.array([p % 12 in pcs for p in range(128)])
        if (m[T.PITCH0:T.VEL0] & chord).any() or self.phase == "dur":
            m[T.PITCH0:T.VEL0] &= chord

    # ---- sampling ------------------------------------------------------------------------------
    def sampling(self, temperature: float, top_p: float | None) -> tuple[float, float | None]:
        """(temperature, top-p) for the next token: durations (``rhythm``) and the pitch that opens a
        track's notes at an onset (``melody``) may have their own."""
        if self.pending:
            return temperature, top_p
        if self.rhythm is not None and self.phase == "vel":
            return self.rhythm
        if self.melody is not None and self.phase == "track":
            return self.melody
        if self.onsets is not None and self.phase in ("bar", "pos", "dur"):
            return self.onsets
        return temperature, top_p

    def logit_bias(self) -> np.ndarray | None:
        if self.pending or self.phase == "start":
            return None
        ph, t = self.phase, self.track
        key = (ph, t if ph in ("track", "dur", "vel") else -1)
        if key not in self._biases:
            self._biases[key] = self._make_bias(ph, t)
        if ph == "track" and self.motion[t] is not None and self.last_pitch[t] is not None:
            return self._moved(t, self._biases[key])
        if self.target is None or ph not in ("bar", "pos", "dur"):
            return self._biases[key]
        return self._held(ph, t, self._biases[key])

    def _held(self, ph: str, t: int, base: np.ndarray | None) -> np.ndarray:
        """The density held to its target: ``lag[t]`` = log((written + 1) / (expected + 1)), where
        expected counts the notes due by the end of the onset at hand (the target rate up to one
        of the track's mean gaps between onsets past here: a chord at the first onset is not
        ahead); a track behind gets its onsets and chord notes favoured, one ahead the opposite, by :data:`HOLD_STRENGTH` nats per unit of lag."""
        here = self._at(max(0, self.pos)) if self.bars_done else 0
        due = self.target * np.maximum(0.0, here - self.entry + self._gap)
        lag = np.log((self.counts + 1.0) / (due + 1.0)) * self.held
        b = np.zeros(T.VOCAB_SIZE, dtype=np.float32) if base is None else base.copy()
        if ph in ("bar", "dur"):
            b[T.POS0:T.TRACK0] -= HOLD_STRENGTH * float((self._share * lag).sum())
        if ph in ("pos", "dur"):
            b[T.TRACK0:T.TRACK0 + self.n_tracks] -= HOLD_STRENGTH * lag
        if ph == "dur" and t >= 0:
            b[T.PITCH0:T.VEL0] -= HOLD_STRENGTH * lag[t]
        return b

    def _moved(self, t: int, base: np.ndarray | None) -> np.ndarray:
        """``base`` plus line ``t``'s motion prior, on the intervals from its last pitch."""
        b = np.zeros(T.VOCAB_SIZE, dtype=np.float32) if base is None else base.copy()
        d = np.clip(np.arange(128) - self.last_pitch[t], -MOTION_SPAN, MOTION_SPAN) + MOTION_SPAN
        b[T.PITCH0:T.PITCH0 + 128] += self.motion[t][d]
        return b

    def _priors(self, b: np.ndarray, ph: str, t: int) -> None:
        """The key prior and the track's register and rhythm priors (see :func:`context_priors`)."""
        if t < 0 or self.drums[t]:
            return
        if ph in ("track", "dur"):
            if self._key is not None:
                b[T.PITCH0:T.VEL0] += self._key
            if self.pitch_prior[t] is not None:
                b[T.PITCH0:T.VEL0] += self.pitch_prior[t]
        elif ph == "vel" and self.dur_prior[t] is not None:
            b[T.DUR0:] += self.dur_prior[t]

    def _make_bias(self, ph: str, t: int) -> np.ndarray | None:
        b = np.zeros(T.VOCAB_SIZE, dtype=np.float32)
        self._priors(b, ph, t)
        if self.target is not None:  # the density is held instead (see _held)
            return b if b.any() else None
        if ph in ("bar", "dur"):
            b[T.POS0:T.TRACK0] += self._pos_bias  # a new onset: the mean density factor
        if ph in ("pos", "dur"):  # which track plays: its factor relative to the mean
            b[T.TRACK0:T.TRACK0 + self.n_tracks] += self._track_bias - (self._pos_bias if ph == "pos" else 0.0)
        if ph == "dur" and t >= 0:
            b[T.PITCH0:T.VEL0] += self._track_bias[t]  # another note of this onset's chord
        if ph == "vel" and t >= 0 and self.density[t] != 1.0:  # denser: shorter notes; sparser: longer
            b[T.DUR0:] -= 0.7 * np.log(self.density[t]) * _LOG_DUR
        return b if b.any() else None

    def step(self, tok: int) -> None:
        ph, t = self.phase, self.track
        was_final = self._final()
        super().step(tok)
        if T.TRACK0 <= int(tok) < T.PROG0:
            u = int(tok) - T.TRACK0
            c = self.chords[u]
            self.chord_done = 0
            self.chord_size = 0 if c is None or (self._final() and self.pos == 0) else \
                1 + int(self._rng.choice(len(c), p=c))
        if ph == "vel" and int(tok) >= T.DUR0:
            self.chord_done += 1
            self.counts[t] += 1
            if self.waiting[t]:  # a silent track enters: its rate is held from here
                self.waiting[t] = False
                self.held[t] = True
                self.entry[t] = self._at(self.pos)
                self._reshare()
            end = self._at(self.pos) + T.DURATIONS[int(tok) - T.DUR0]
            self.last_pitch[t] = self.pitch
            if t in self.vl_notes:
                x = self._at(self.pos)
                self.vl_notes[t].append((x, end, self.pitch))
                if self._event is None or x > self._event:
                    self._before, self._event = self._event, x
            if self.lines[t]:
                self.busy[t] = max(self.busy[t], end)
            if was_final and self.pos == 0 and t in self.cad_active:
                self.cad_done.add(t)


def cut_overlaps(notes: list, end: int) -> list:
    """A line's notes with each one ending by the next onset and by ``end`` (ticks)."""
    from ...core.song import Note

    notes = sorted(notes)
    out = []
    for i, n in enumerate(notes):
        stop = min(n.end, end)
        nxt = next((m.start for m in notes[i + 1:] if m.start > n.start), None)
        if nxt is not None:
            stop = min(stop, nxt)
        out.append(Note(n.start, n.pitch, max(1, stop - n.start), n.velocity))
    return out


def same_take(a: list[list], b: list[list], share: float = 0.9) -> bool:
    """Two takes' new notes (per track) repeat each other: ``share`` of the notes (track, onset,
    pitch) of the larger one are in the other."""
    sa = {(t, n.start, n.pitch) for t, ns in enumerate(a) for n in ns}
    sb = {(t, n.start, n.pitch) for t, ns in enumerate(b) for n in ns}
    if not sa and not sb:
        return True
    return len(sa & sb) / max(len(sa), len(sb)) >= share
