"""Song <-> REMI-style tokens for the continuation model, with a decoding grammar.

A sequence is a header, then bars::

    BOS PROG_p0 PROG_p1 ...               one PROG per track, in track order (slot = index)
    BAR [TS_n/d] [TEMPO_b]                meter/tempo on the first bar and where they change
      POS_u TRACK_t PITCH_k VEL_v DUR_d   a note; POS only when the onset moves on,
            [TRACK_t'] PITCH VEL DUR ...  TRACK only when the track changes at that onset
    BAR ...                               (empty bars are just BAR)
    EOS

Positions and durations count twelfths of a quarter note (sixteenths and eighth-note
triplets are exact).  Inside one onset, tracks come in ascending order and pitches ascend
within a track, so every note set has exactly one spelling.  Tracks are slots, not
programs: two voices with the same instrument stay two tracks (miditok's program mode
would merge them), and the header tells the model which instrument each slot plays.

:class:`Grammar` follows a sequence as it is sampled and says which tokens may come next,
so the decoder can never write a broken sequence into the song.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import numpy as np

from ...core.song import Note, Song
from ...core.timing import Bar, bars as song_bars

RES = 12  # positions per quarter note
MAX_TRACKS = 16
MAX_POS = 16 * RES  # longest bar: 16 quarters (4/1, 8/2)
VELOCITIES = (16, 32, 48, 64, 80, 96, 112, 127)
DURATIONS = tuple(range(1, 25)) + (27, 30, 33, 36, 42, 48, 54, 60, 66, 72, 84, 96, 108, 120, 144,
                                   168, 192, 240, 288, 384)
TEMPOS = tuple(round(30 * (10 ** (i / 31)), 1) for i in range(32))  # 30..300 bpm, geometric
METERS = tuple((n, d) for d in (1, 2, 4, 8, 16, 32) for n in range(1, 25)
               if (4 * RES * n) % d == 0 and 0 < 4 * RES * n // d <= MAX_POS)

# ---- the vocabulary ------------------------------------------------------------------------
PAD, BOS, EOS, BAR = 0, 1, 2, 3
TS0 = 4
TEMPO0 = TS0 + len(METERS)
POS0 = TEMPO0 + len(TEMPOS)
TRACK0 = POS0 + MAX_POS
PROG0 = TRACK0 + MAX_TRACKS
PITCH0 = PROG0 + 129  # programs 0-127 and 128 = drum kit
VEL0 = PITCH0 + 128
DUR0 = VEL0 + len(VELOCITIES)
VOCAB_SIZE = DUR0 + len(DURATIONS)
VOCAB_VERSION = 1
DRUM_PROGRAM = 128

_DUR_ARR = np.array(DURATIONS)
_TEMPO_ARR = np.log(np.array(TEMPOS))
_VEL_ARR = np.array(VELOCITIES)
_METER_INDEX = {m: i for i, m in enumerate(METERS)}


def kind(tok: int) -> str:
    for start, name in ((DUR0, "DUR"), (VEL0, "VEL"), (PITCH0, "PITCH"), (PROG0, "PROG"), (TRACK0, "TRACK"),
                        (POS0, "POS"), (TEMPO0, "TEMPO"), (TS0, "TS")):
        if tok >= start:
            return name
    return ("PAD", "BOS", "EOS", "BAR")[tok]


def describe(tok: int) -> str:
    k = kind(tok)
    val = {"DUR": lambda t: DURATIONS[t - DUR0], "VEL": lambda t: VELOCITIES[t - VEL0],
           "PITCH": lambda t: t - PITCH0, "PROG": lambda t: t - PROG0, "TRACK": lambda t: t - TRACK0,
           "POS": lambda t: t - POS0, "TEMPO": lambda t: TEMPOS[t - TEMPO0],
           "TS": lambda t: "%d/%d" % METERS[t - TS0]}.get(k)
    return f"{k}_{val(tok)}" if val else k


def dur_token(units: int) -> int:
    return DUR0 + int(np.abs(_DUR_ARR - units).argmin())


def tempo_token(bpm: float) -> int:
    return TEMPO0 + int(np.abs(_TEMPO_ARR - np.log(max(1.0, bpm))).argmin())


def vel_token(v: int) -> int:
    return VEL0 + int(np.abs(_VEL_ARR - v).argmin())


def meter_token(num: int, den: int, bar_units: int | None = None) -> int:
    """The TS token of a meter; a meter outside the table maps to one of the same bar length."""
    if (num, den) in _METER_INDEX:
        return TS0 + _METER_INDEX[(num, den)]
    units = bar_units if bar_units is not None else 4 * RES * num // max(1, den)
    best = min(METERS, key=lambda m: (abs(4 * RES * m[0] // m[1] - units), m[1] != 4))
    return TS0 + _METER_INDEX[best]


def program_token(track) -> int:
    return PROG0 + (DRUM_PROGRAM if track.is_drum else track.program % 128)


# ---- encoding --------------------------------------------------------------------------------
@dataclass
class Encoded:
    tokens: list[int]
    n_header: int
    bar_index: list[int] = field(default_factory=list)  # position of each BAR token in ``tokens``
    bar_meta: list[tuple[int, int]] = field(default_factory=list)  # (TS, TEMPO) tokens in effect per bar


def unit_ticks(song: Song) -> float:
    return song.ppq / RES


def header(song: Song) -> list[int]:
    return [BOS] + [program_token(t) for t in song.tracks[:MAX_TRACKS]]


def encode(song: Song, until_bar: int | None = None, eos: bool = False) -> Encoded:
    """Tokens of ``song`` from bar 0 up to (not including) bar ``until_bar`` (default: all bars)."""
    unit = unit_ticks(song)
    until_tick = None
    if until_bar is not None:
        bl = song_bars(song, until=max(song.end_tick, 1))
        while len(bl) <= until_bar:  # extend past the end with the last meter
            last = bl[-1]
            bl.append(Bar(last.index + 1, last.end, last.meter.bar_ticks(song.ppq), last.meter))
        bl = bl[:until_bar]
        until_tick = bl[-1].end if bl else 0
    else:
        bl = song_bars(song)
    starts = [b.start for b in bl]
    events: list[list[tuple]] = [[] for _ in bl]
    for ti, track in enumerate(song.tracks[:MAX_TRACKS]):
        for n in track.notes:
            if until_tick is not None and n.start >= until_tick:
                break
            qt = round(n.start / unit) * unit
            bi = max(0, bisect.bisect_right(starts, qt) - 1)
            if bi >= len(bl):
                continue
            pos = int(round((qt - bl[bi].start) / unit))
            bar_units = max(1, int(round(bl[bi].length / unit)))
            if pos >= bar_units:
                if bi + 1 >= len(bl):
                    continue
                bi, pos = bi + 1, 0
            pos = min(pos, MAX_POS - 1)
            d = max(1, int(round(n.duration / unit)))
            events[bi].append((pos, ti, n.pitch, vel_token(n.velocity), dur_token(d)))
    toks = header(song)
    enc = Encoded(toks, len(toks))
    prev_ts = prev_tempo = None
    for bar, evs in zip(bl, events):
        enc.bar_index.append(len(toks))
        toks.append(BAR)
        ts = meter_token(bar.meter.numerator, bar.meter.denominator, int(round(bar.length / unit)))
        tempo = tempo_token(song.tempo_at(bar.start).bpm)
        enc.bar_meta.append((ts, tempo))
        if ts != prev_ts:
            toks.append(ts)
        if ts != prev_ts or tempo != prev_tempo:
            toks.append(tempo)
        prev_ts, prev_tempo = ts, tempo
        cur_pos = cur_track = None
        seen = set()
        for pos, ti, pitch, vt, dt in sorted(evs):
            if (pos, ti, pitch) in seen:
                continue
            seen.add((pos, ti, pitch))
            if pos != cur_pos:
                toks.append(POS0 + pos)
                cur_pos, cur_track = pos, None
            if ti != cur_track:
                toks.append(TRACK0 + ti)
                cur_track = ti
            toks += [PITCH0 + pitch, vt, dt]
    if eos:
        toks.append(EOS)
    return enc


def window(enc: Encoded, first_bar: int, max_len: int) -> list[int]:
    """Header + bars from ``first_bar`` on (meter and tempo restated), at most ``max_len`` tokens."""
    toks = enc.tokens
    if first_bar <= 0 or not enc.bar_index:
        return toks[:max_len]
    i = enc.bar_index[first_bar] + 1
    while i < len(toks) and TS0 <= toks[i] < POS0:  # the bar's own meta, restated below
        i += 1
    ts, tempo = enc.bar_meta[first_bar]
    out = toks[: enc.n_header] + [BAR, ts, tempo]
    return out + toks[i: i + max(0, max_len - len(out))]


# ---- decoding ---------------------------------------------------------------------------------
def decode_notes(tokens, bar_starts: list[int], unit: float, n_tracks: int) -> list[list[Note]]:
    """Notes per track of body tokens that start with a BAR (``bar_starts[k]`` = tick of k-th BAR)."""
    out: list[list[Note]] = [[] for _ in range(n_tracks)]
    bar = -1
    pos = track = pitch = vel = None
    for t in tokens:
        t = int(t)
        if t == BAR:
            bar += 1
            pos = track = None
        elif t == EOS:
            break
        elif POS0 <= t < TRACK0:
            pos = t - POS0
        elif TRACK0 <= t < PROG0:
            track = t - TRACK0
        elif PITCH0 <= t < VEL0:
            pitch = t - PITCH0
        elif VEL0 <= t < DUR0:
            vel = VELOCITIES[t - VEL0]
        elif t >= DUR0 and None not in (pos, track, pitch, vel) and 0 <= bar < len(bar_starts):
            if track < n_tracks:
                start = bar_starts[bar] + int(round(pos * unit))
                out[track].append(Note(start, pitch, max(1, int(round(DURATIONS[t - DUR0] * unit))), vel))
            pitch = vel = None
    return out


class Grammar:
    """Which tokens may follow, for a body being sampled after a prompt.

    ``bar_units[k]`` is the length (in positions) of the k-th new bar and ``forced[k]`` the
    meta tokens (TS, TEMPO) that bar must restate; sampling starts with a BAR.  New bars
    never change meter or tempo on their own (the song's maps stay authoritative), and EOS
    is never allowed: the caller stops after the wanted number of bars.
    """

    def __init__(self, n_tracks: int, bar_units: list[int], forced: list[list[int]] | None = None,
                 pitch_ranges: list[tuple[int, int]] | None = None, pitch_bias: np.ndarray | None = None,
                 drums: list[bool] | None = None):
        """``pitch_bias`` (12 values, one per pitch class) is added to the scores of pitched
        tracks' PITCH tokens (not drum tracks': their pitches are instruments)."""
        self.n_tracks = max(1, min(MAX_TRACKS, n_tracks))
        self.drums = list(drums or [False] * self.n_tracks)
        self._bias = None
        if pitch_bias is not None:
            self._bias = np.zeros(VOCAB_SIZE, dtype=np.float32)
            self._bias[PITCH0:PITCH0 + 128] = np.asarray(pitch_bias, dtype=np.float32)[np.arange(128) % 12]
        self.bar_units = [max(1, min(MAX_POS, u)) for u in bar_units]
        self.forced = forced or [[] for _ in bar_units]
        self.ranges = pitch_ranges or [(0, 127)] * self.n_tracks
        self.bars_done = 0  # BAR tokens seen
        self.phase = "start"
        self.pending: list[int] = []
        self.pos = self.track = self.pitch = -1
        self._mask: np.ndarray | None = None  # allowed(), kept until the next step

    @property
    def cur_units(self) -> int:
        return self.bar_units[min(self.bars_done - 1, len(self.bar_units) - 1)]

    def allowed(self) -> np.ndarray:
        """A bool mask over the vocabulary (shared until the next ``step``: do not modify it)."""
        if self._mask is None:
            self._mask = self._allowed()
        return self._mask

    def _allowed(self) -> np.ndarray:
        m = np.zeros(VOCAB_SIZE, dtype=bool)
        ph = self.phase
        if ph == "start":
            m[BAR] = True
        elif self.pending:
            m[self.pending[0]] = True
        elif ph == "bar":  # after BAR (and its forced meta): a note position or the next bar
            m[POS0: POS0 + self.cur_units] = True
            m[BAR] = True
        elif ph == "pos":
            m[TRACK0: TRACK0 + self.n_tracks] = True
        elif ph == "track":
            lo, hi = self.ranges[self.track]
            m[PITCH0 + lo: PITCH0 + hi + 1] = True
        elif ph == "pitch":
            m[VEL0:DUR0] = True
        elif ph == "vel":
            m[DUR0:VOCAB_SIZE] = True
        elif ph == "dur":
            m[TRACK0 + self.track + 1: TRACK0 + self.n_tracks] = True
            lo, hi = self.ranges[self.track]
            if self.pitch + 1 <= hi:
                m[PITCH0 + max(lo, self.pitch + 1): PITCH0 + hi + 1] = True
            m[POS0 + self.pos + 1: POS0 + self.cur_units] = True
            m[BAR] = True
        return m

    def logit_bias(self) -> np.ndarray | None:
        """What to add to the model's scores for the next token (None: nothing)."""
        if self._bias is None or self.phase not in ("track", "dur") or self.pending:
            return None
        if 0 <= self.track < len(self.drums) and self.drums[self.track]:
            return None
        return self._bias

    def step(self, tok: int) -> None:
        tok = int(tok)
        mask, self._mask = self.allowed(), None
        if self.pending:
            if tok != self.pending[0]:
                raise ValueError(f"expected {describe(self.pending[0])}, got {describe(tok)}")
            self.pending.pop(0)
            return
        if not mask[tok]:
            raise ValueError(f"token {describe(tok)} not allowed after phase {self.phase}")
        if tok == BAR:
            self.bars_done += 1
            k = self.bars_done - 1
            self.pending = list(self.forced[k]) if k < len(self.forced) else []
            self.phase, self.pos, self.track, self.pitch = "bar", -1, -1, -1
        elif POS0 <= tok < TRACK0:
            self.phase, self.pos, self.track = "pos", tok - POS0, -1
        elif TRACK0 <= tok < PROG0:
            self.phase, self.track, self.pitch = "track", tok - TRACK0, -1
        elif PITCH0 <= tok < VEL0:
            self.phase, self.pitch = "pitch", tok - PITCH0
        elif VEL0 <= tok < DUR0:
            self.phase = "vel"
        else:
            self.phase = "dur"


def check_sequence(tokens) -> None:
    """Raise ValueError unless ``tokens`` (a whole encoded song) follows the grammar."""
    toks = [int(t) for t in tokens]
    if not toks or toks[0] != BOS:
        raise ValueError("sequence must start with BOS")
    i = 1
    while i < len(toks) and PROG0 <= toks[i] < PITCH0:
        i += 1
    n_tracks = i - 1
    body = toks[i:]
    if body and body[-1] == EOS:
        body = body[:-1]
    # a bar's length comes from its TS; meta tokens are taken as forced
    units, forced, cur = [], [], RES * 4
    j = 0
    while j < len(body):
        if body[j] == BAR:
            meta = []
            k = j + 1
            while k < len(body) and TS0 <= body[k] < POS0:
                meta.append(body[k])
                if body[k] < TEMPO0:
                    n, d = METERS[body[k] - TS0]
                    cur = 4 * RES * n // d
                k += 1
            units.append(cur)
            forced.append(meta)
            j = k
        else:
            j += 1
    g = Grammar(max(1, n_tracks), units or [cur], forced)
    for t in body:
        g.step(t)
