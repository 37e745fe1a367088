"""What a musician hears in a four-part chorale, as figures: texture and cadence.

Measured on a 16th grid (each voice's sounding pitch per step). A beat is a quarter-note step
of the bar where all four voices sound. Per piece:

* off-beat motion: share of beats whose following 8th (step +2) has a new onset in A, T or B;
* bass by step: share of successive bass onsets a whole tone or less apart;
* sevenths on beats: share of beats whose pitch-class set is a dominant, minor, half-diminished,
  diminished or major seventh chord; distinct sonorities: distinct pitch-class sets on beats;
* inner-voice onsets per beat: onsets of A, T and B over three times the beats;
* final authentic cadence: the melody's key (Krumhansl-Schmuckler) has its tonic in the bass
  at the last bass onset and its dominant at the bass onset before.

Sets of pieces are summarized by the mean over pieces (the cadence as a share of pieces).
The same functions run on token grids, so the sampler can weigh its candidates by them.
"""

from __future__ import annotations

import numpy as np

_SEVENTH_TYPES = ((0, 4, 7, 10), (0, 3, 7, 10), (0, 3, 6, 10), (0, 3, 6, 9), (0, 4, 7, 11))
SEVENTHS = np.zeros(4096, dtype=bool)
for _r in range(12):
    for _t in _SEVENTH_TYPES:
        SEVENTHS[sum(1 << ((_r + i) % 12) for i in _t)] = True
_MAJOR = np.array((6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88))
_MINOR = np.array((6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17))
TEXTURE = ("offbeat_motion", "bass_by_step", "sevenths_on_beats", "inner_onsets_per_beat", "distinct_sonorities")


def key_of(pitches, durations=None) -> tuple[int, bool]:
    """Krumhansl-Schmuckler key of a melody, weighted by duration: ``(tonic pitch class, minor)``."""
    h = np.zeros(12)
    d = np.ones(len(pitches)) if durations is None else np.asarray(durations, dtype=float)
    np.add.at(h, np.asarray(pitches, dtype=np.int64) % 12, d)
    if h.std() == 0:
        return 0, False
    best = None
    for minor, prof in ((False, _MAJOR), (True, _MINOR)):
        for t in range(12):
            r = float(np.corrcoef(h, np.roll(prof, t))[0, 1])
            if best is None or r > best[0]:
                best = (r, t, minor)
    return best[1], best[2]


def note_grid(parts, ppq: int) -> tuple[np.ndarray, np.ndarray]:
    """``pitch`` [4, T] (-1 = silent) and ``onset`` [4, T] of four note lists on the 16th grid."""
    step = max(1, ppq // 4)
    T = max(((n.start + n.duration) // step for p in parts for n in p), default=0)
    pitch = np.full((4, T), -1, dtype=np.int64)
    onset = np.zeros((4, T), dtype=bool)
    for v, p in enumerate(parts[:4]):
        for n in p:
            a = n.start // step
            b = max(a + 1, (n.start + n.duration) // step)
            pitch[v, a:b] = n.pitch
            onset[v, a] = True
    return pitch, onset


def counts(pitch: np.ndarray, onset: np.ndarray, quarter_steps, key: tuple[int, bool]) -> dict:
    """The figures' counts for one piece. ``quarter_steps``: grid steps on a quarter note of the bar."""
    T = pitch.shape[1]
    q = np.asarray([t for t in quarter_steps if 0 <= t < T], dtype=np.int64)
    full = (pitch >= 0).all(0)
    beats = q[full[q]] if len(q) else q
    nxt = beats + 2
    ok = nxt < T
    bass = pitch[3, onset[3]]
    d = np.abs(np.diff(bass))
    masks = np.bitwise_or.reduce(np.where(pitch[:, beats] >= 0, 1 << (np.maximum(pitch[:, beats], 0) % 12), 0), 0) \
        if len(beats) else np.zeros(0, dtype=np.int64)
    tonic, minor = key
    return {
        "beats": int(len(beats)),
        "offbeat_beats": int(ok.sum()),
        "offbeat_moves": int(onset[1:, nxt[ok]].any(0).sum()),
        "bass_intervals": int(len(d)),
        "bass_steps": int((d <= 2).sum()),
        "seventh_beats": int(SEVENTHS[masks].sum()),
        "sonorities": int(len(set(masks.tolist()))),
        "atb_onsets": int(onset[1:].sum()),
        "minor": int(minor),
        "final_authentic": int(len(bass) >= 2 and bass[-1] % 12 == tonic and bass[-2] % 12 == (tonic + 7) % 12),
    }


def rates(c: dict) -> dict:
    """One piece's figures from its counts."""
    return {
        "offbeat_motion": c["offbeat_moves"] / max(1, c["offbeat_beats"]),
        "bass_by_step": c["bass_steps"] / max(1, c["bass_intervals"]),
        "sevenths_on_beats": c["seventh_beats"] / max(1, c["beats"]),
        "inner_onsets_per_beat": c["atb_onsets"] / 3 / max(1, c["beats"]),
        "distinct_sonorities": float(c["sonorities"]),
        "final_authentic_cadence": float(c["final_authentic"]),
    }


def piece(parts, ppq: int = 480, quarter_ticks=None, key=None) -> dict:
    """Counts for four note lists (soprano first). ``quarter_ticks``: ticks of the bars' quarter
    notes (default: every quarter from tick 0); ``key``: default the melody's."""
    pitch, onset = note_grid(parts, ppq)
    step = max(1, ppq // 4)
    if quarter_ticks is None:
        qs = range(0, pitch.shape[1], 4)
    else:
        qs = [t // step for t in quarter_ticks if t % step == 0]
    if key is None:
        mel = parts[0]
        key = key_of([n.pitch for n in mel], [n.duration for n in mel])
    return counts(pitch, onset, qs, key)


def summarize(pieces: list[dict]) -> dict:
    """Mean of the per-piece figures; the cadence also over major-key melodies only."""
    if not pieces:
        return {"pieces": 0}
    rs = [rates(c) for c in pieces]
    out = {k: round(float(np.mean([r[k] for r in rs])), 3) for k in TEXTURE}
    out["final_authentic_cadence"] = round(float(np.mean([r["final_authentic_cadence"] for r in rs])), 3)
    major = [r["final_authentic_cadence"] for r, c in zip(rs, pieces) if not c["minor"]]
    out["final_authentic_cadence_major"] = round(float(np.mean(major)), 3) if major else None
    out["pieces"] = len(pieces)
    out["major_pieces"] = len(major)
    return out
