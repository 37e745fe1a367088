"""Voice-leading checks for four-part (SATB) writing. Pure Python: no Qt, no torch.

Voices are given top to bottom (soprano, alto, tenor, bass) as sequences of notes; a note is
anything with integer ``start``, ``duration`` and ``pitch`` (``studio.core.song.Note``).

``check(...)`` returns :class:`Issue` records (kind, tick span, voices involved, message) for
the piano roll and score views. ``measure(...)`` returns the counts and rates the harmonizer's
evaluation reports. Definitions:

* parallel fifths / octaves: two voices that both move in the same direction from one onset
  event to the next and form a perfect fifth (or an octave/unison), modulo the octave, on both;
* crossing: a lower voice sounds above the voice written above it (adjacent voices);
* spacing: more than an octave between soprano and alto or between alto and tenor;
* range: a note outside ``SATB_RANGE`` for its voice;
* leading tone: over a dominant bass, the seventh degree moves to anything other than the
  tonic when the bass then goes to the tonic (inner voices may also fall to the fifth);
* non-tertian: the pitch classes sounding on a beat are not part of one triad (major, minor,
  diminished, augmented) and not a seventh chord that has its root and seventh.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Iterable, Sequence

VOICE_NAMES = ("soprano", "alto", "tenor", "bass")
SATB_RANGE = {"soprano": (60, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (36, 64)}

KINDS = ("parallel_fifths", "parallel_octaves", "crossing", "spacing", "range", "leading_tone", "non_tertian")
# what is checked in instrumental writing (a string quartet, a wind quintet): parallel fifths and each
# instrument's own range; choir spacing, voice crossing and the leading tone's resolution are rules
# of four-part vocal (chorale) writing, and parallel octaves there are doublings (cello and viola in
# octaves), so none of these is applied
INSTRUMENTAL_KINDS = ("parallel_fifths", "range", "non_tertian")

# sounding ranges (MIDI pitches) of General MIDI instruments; families fall back to FAMILY_RANGES
INSTRUMENT_RANGES = {
    40: (55, 103), 41: (48, 91), 42: (36, 76), 43: (28, 67), 44: (28, 103), 45: (28, 103), 46: (23, 104),
    47: (38, 57), 48: (28, 103), 49: (28, 103), 56: (54, 86), 57: (40, 72), 58: (28, 58), 59: (54, 84),
    60: (34, 77), 61: (34, 86), 64: (56, 88), 65: (49, 81), 66: (44, 76), 67: (36, 69), 68: (58, 91),
    69: (52, 81), 70: (34, 75), 71: (50, 94), 72: (74, 108), 73: (60, 96), 74: (72, 98), 75: (60, 96),
    105: (48, 91), 110: (55, 103),
}
FAMILY_RANGES = {0: (21, 108), 1: (53, 108), 2: (24, 96), 3: (40, 88), 4: (28, 67), 5: (28, 103), 6: (28, 96),
                 7: (34, 86), 8: (34, 94), 9: (60, 98)}
VOCAL_PROGRAMS = frozenset({52, 53, 54})  # Choir Aahs, Voice Oohs, Synth Choir
VOCAL_NAMES = ("soprano", "alto", "tenor", "bass", "baritone", "mezzo", "contralto", "cantus", "altus", "bassus",
               "voice", "choir", "chorus", "sopran", "tenore", "basso", "s.", "a.", "t.", "b.")

_TRIADS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 8))
_SEVENTHS = ((0, 4, 7, 10), (0, 3, 7, 10), (0, 3, 6, 10), (0, 3, 6, 9), (0, 4, 7, 11))
_MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
_MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)


def instrument_range(program: int) -> tuple[int, int]:
    """Lowest and highest sounding pitch of a General MIDI instrument (wide for keyboards and synths)."""
    p = max(0, min(127, int(program)))
    return INSTRUMENT_RANGES.get(p) or FAMILY_RANGES.get(p // 8, (0, 127))


INSTRUMENT_WORDS = ("sax", "saxophone", "flute", "clarinet", "oboe", "bassoon", "horn", "trumpet", "trombone",
                    "tuba", "violin", "viola", "cello", "violoncello", "contrabass", "double", "recorder", "piano",
                    "organ", "guitar", "electric", "synth", "harp", "strings")


def is_vocal(name: str, program: int) -> bool:
    """A voice rather than an instrument: playing a choir sound, or named as a voice (Soprano, Alto,
    Tenor, Bass, S., Cantus…) without an instrument's name (Soprano Sax, Bass Guitar)."""
    words = [w.rstrip("0123456789") for w in name.strip().lower().replace("-", " ").split()]
    if program in VOCAL_PROGRAMS:
        return True
    return any(w in VOCAL_NAMES for w in words) and not any(w in INSTRUMENT_WORDS for w in words)


def texture(names: Sequence[str], programs: Sequence[int], title: str = "") -> str:
    """``"chorale"`` when the piece calls itself a chorale or all its parts but one are voices (a
    melody harmonized into alto, tenor and bass counts), else ``"instrumental"``: which rules
    :func:`check` should apply (see ``INSTRUMENTAL_KINDS``)."""
    t = title.lower()
    vocal = sum(is_vocal(n, p) for n, p in zip(names, programs))
    if "chorale" in t or "choral " in t + " " or vocal >= max(1, len(names) - 1):
        return "chorale"
    return "instrumental"


@dataclass(frozen=True, slots=True)
class Issue:
    kind: str
    tick: int
    end: int
    voices: tuple[int, ...]
    message: str


_NAMES: list = [VOICE_NAMES]  # the part names the messages use (check(names=...) sets them for one call)


def _name(v: int) -> str:
    names = _NAMES[-1]
    return names[v] if v < len(names) else f"voice {v + 1}"


def sounding(notes: Sequence, tick: int):
    """The pitch sounding at ``tick`` in a monophonic voice (the latest onset wins), else None."""
    return _at(sorted(notes, key=lambda n: n.start), tick)


def _at(notes: Sequence, tick: int):
    """``sounding`` for notes already sorted by start."""
    starts = getattr(notes, "starts", None)
    i = bisect.bisect_right(starts if starts is not None else [n.start for n in notes], tick)
    if i and notes[i - 1].start + notes[i - 1].duration > tick:
        return notes[i - 1].pitch
    return None


class _Voice(list):
    """Notes sorted by start, with their starts for bisection."""

    def __init__(self, notes):
        super().__init__(sorted(notes, key=lambda n: n.start))
        self.starts = [n.start for n in self]


def _prepare(parts) -> list[_Voice]:
    return [p if isinstance(p, _Voice) else _Voice(p) for p in parts]


def frames(parts: Sequence[Sequence], step: int, end: int | None = None) -> list[list[int | None]]:
    """Per voice, the pitch sounding on each ``step``-tick frame (None for silence)."""
    if end is None:
        end = max((n.start + n.duration for p in parts for n in p), default=0)
    count = (end + step - 1) // step
    out = []
    for p in parts:
        row: list[int | None] = [None] * count
        for n in sorted(p, key=lambda n: n.start):
            a = n.start // step
            b = max(a + 1, (n.start + n.duration + step - 1) // step)
            for f in range(a, min(b, count)):
                row[f] = n.pitch
        out.append(row)
    return out


def is_tertian(pcs: Iterable[int]) -> bool:
    s = {p % 12 for p in pcs}
    if len(s) <= 1:
        return True
    for root in range(12):
        for t in _TRIADS:
            if all((p - root) % 12 in t for p in s):
                return True
        if root in s:
            for t in _SEVENTHS:
                if (root + t[3]) % 12 in s and all((p - root) % 12 in t for p in s):
                    return True
    return False


def estimate_key(parts: Sequence[Sequence]) -> tuple[int, bool]:
    """``(tonic pitch class, minor)`` by Krumhansl-Schmuckler on duration-weighted pitch classes."""
    hist = [0.0] * 12
    for p in parts:
        for n in p:
            hist[n.pitch % 12] += n.duration
    if not any(hist):
        return 0, False
    best = (-2.0, 0, False)
    for minor, prof in ((False, _MAJOR_PROFILE), (True, _MINOR_PROFILE)):
        for tonic in range(12):
            r = [prof[(i - tonic) % 12] for i in range(12)]
            best = max(best, (_corr(hist, r), tonic, minor))
    return best[1], best[2]


def _corr(a, b) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
    return num / den if den else 0.0


def _events(parts: Sequence[Sequence]) -> list[int]:
    return sorted({n.start for p in parts for n in p})


def _parallels(parts, events) -> list[Issue]:
    out = []
    grid = [[_at(p, t) for t in events] for p in parts]
    for k in range(1, len(events)):
        for i in range(len(parts)):
            for j in range(i + 1, len(parts)):
                a0, a1, b0, b1 = grid[i][k - 1], grid[i][k], grid[j][k - 1], grid[j][k]
                if None in (a0, a1, b0, b1) or a0 == a1 or b0 == b1:
                    continue
                if (a1 - a0 > 0) != (b1 - b0 > 0):
                    continue
                i0, i1 = abs(a0 - b0) % 12, abs(a1 - b1) % 12
                if i0 == i1 == 7:
                    kind, what = "parallel_fifths", "parallel fifths"
                elif i0 == i1 == 0:
                    kind, what = "parallel_octaves", "parallel octaves"
                else:
                    continue
                out.append(Issue(kind, events[k - 1], events[k], (i, j), f"{what} between {_name(i)} and {_name(j)}"))
    return out


def _frame_issues(fr, step, kind, test, message) -> list[Issue]:
    """Merge consecutive frames where ``test(pitches) -> voices or None`` holds into issues."""
    out, cur = [], None
    for f in range(len(fr[0]) if fr else 0):
        vs = test([row[f] for row in fr])
        if vs and cur and cur[2] == vs and cur[1] == f:
            cur[1] = f + 1
            continue
        if cur:
            out.append(Issue(kind, cur[0] * step, cur[1] * step, cur[2], message(cur[2])))
            cur = None
        if vs:
            cur = [f, f + 1, vs]
    if cur:
        out.append(Issue(kind, cur[0] * step, cur[1] * step, cur[2], message(cur[2])))
    return out


def _crossing(ps) -> tuple[int, ...] | None:
    for i in range(len(ps) - 1):
        if ps[i] is not None and ps[i + 1] is not None and ps[i] < ps[i + 1]:
            return (i, i + 1)
    return None


def _spacing(ps) -> tuple[int, ...] | None:
    for i in range(min(2, len(ps) - 1)):
        if ps[i] is not None and ps[i + 1] is not None and ps[i] - ps[i + 1] > 12:
            return (i, i + 1)
    return None


def _leading_tones(parts, events, tonic: int) -> list[Issue]:
    if len(parts) < 2:
        return []
    lt, dom = (tonic + 11) % 12, (tonic + 7) % 12
    grid = [[_at(p, t) for t in events] for p in parts]
    bass = grid[-1]
    out = []
    for k in range(len(events) - 1):
        if bass[k] is None or bass[k + 1] is None or bass[k] % 12 != dom or bass[k + 1] % 12 != tonic:
            continue
        for v in range(len(parts) - 1):
            a, b = grid[v][k], grid[v][k + 1]
            if a is None or b is None or a % 12 != lt or a == b:
                continue
            inner = 0 < v < len(parts) - 1
            if b - a == 1 or (inner and a - b == 4):
                continue
            out.append(Issue("leading_tone", events[k], events[k + 1], (v,), f"leading tone in the {_name(v)} does not resolve"))
    return out


def check(parts: Sequence[Sequence], ppq: int = 480, beats: Sequence[int] | None = None,
          key: tuple[int, bool] | None = None, ranges: dict | None = None,
          names: Sequence[str] | None = None) -> list[Issue]:
    """All voice-leading issues of a four-part texture, sorted by tick.

    ``beats``: ticks of the beats to test for tertian sonorities (default: every quarter note);
    ``key``: ``(tonic pitch class, minor)`` (default: estimated from the notes);
    ``ranges``: by voice ("soprano" … "bass", top to bottom), the (lowest, highest) pitch (default ``SATB_RANGE``);
    ``names``: what the messages call the parts, top to bottom (default soprano … bass).
    """
    if names is not None:
        _NAMES.append(list(names))
        try:
            return check(parts, ppq, beats, key, ranges)
        finally:
            _NAMES.pop()
    parts = _prepare(parts)
    step = max(1, ppq // 4)
    ranges = ranges or SATB_RANGE
    events = _events(parts)
    issues = _parallels(parts, events)
    fr = frames(parts, step)
    issues += _frame_issues(fr, step, "crossing", _crossing, lambda vs: f"{_name(vs[1])} crosses above {_name(vs[0])}")
    issues += _frame_issues(fr, step, "spacing", _spacing, lambda vs: f"more than an octave between {_name(vs[0])} and {_name(vs[1])}")
    for v, p in enumerate(parts):
        lo, hi = ranges.get(VOICE_NAMES[v] if v < 4 else _name(v), (0, 127))
        for n in p:
            if not lo <= n.pitch <= hi:
                issues.append(Issue("range", n.start, n.start + n.duration, (v,), f"{_name(v)} out of range"))
    tonic = (key or estimate_key(parts))[0]
    issues += _leading_tones(parts, events, tonic)
    end = max((n.start + n.duration for p in parts for n in p), default=0)
    for b in (beats if beats is not None else range(0, end, ppq)):
        pcs = [x for x in (_at(p, b) for p in parts) if x is not None]
        if len(pcs) >= 2 and not is_tertian(pcs):
            issues.append(Issue("non_tertian", b, b + step, tuple(range(len(parts))), "the sonority on this beat is not a triad or seventh chord"))
    issues.sort(key=lambda i: (i.tick, KINDS.index(i.kind), i.voices))
    return issues


def measure(parts: Sequence[Sequence], ppq: int = 480, beats: Sequence[int] | None = None,
            key: tuple[int, bool] | None = None, ranges: dict | None = None) -> dict:
    """Counts for an evaluation: notes, parallels, frames with crossing/spacing, range, tertian beats."""
    parts = _prepare(parts)
    step = max(1, ppq // 4)
    ranges = ranges or SATB_RANGE
    events = _events(parts)
    par = _parallels(parts, events)
    fr = frames(parts, step)
    full = [f for f in range(len(fr[0]) if fr else 0) if all(row[f] is not None for row in fr)]
    notes = sum(len(p) for p in parts)
    out_range = sum(1 for v, p in enumerate(parts) for n in p
                    if not ranges.get(_name(v), (0, 127))[0] <= n.pitch <= ranges.get(_name(v), (0, 127))[1])
    end = max((n.start + n.duration for p in parts for n in p), default=0)
    beat_list = list(beats if beats is not None else range(0, end, ppq))
    tested = tertian = 0
    for b in beat_list:
        pcs = [x for x in (_at(p, b) for p in parts) if x is not None]
        if len(pcs) >= 3:
            tested += 1
            tertian += is_tertian(pcs)
    tonic = (key or estimate_key(parts))[0]
    return {
        "notes": notes,
        "parallels": len(par),
        "frames": len(full),
        "crossing_frames": sum(1 for f in full if _crossing([row[f] for row in fr])),
        "spacing_frames": sum(1 for f in full if _spacing([row[f] for row in fr])),
        "out_of_range": out_range,
        "beats": tested,
        "tertian_beats": tertian,
        "leading_tone": len(_leading_tones(parts, events, tonic)),
    }


def rates(counts: dict) -> dict:
    """Turn summed ``measure`` counts into the reported figures."""
    n, f, b = max(1, counts["notes"]), max(1, counts["frames"]), max(1, counts["beats"])
    return {
        "parallels_per_1000_notes": 1000.0 * counts["parallels"] / n,
        "crossing_pct": 100.0 * counts["crossing_frames"] / f,
        "spacing_pct": 100.0 * counts["spacing_frames"] / f,
        "out_of_range_pct": 100.0 * counts["out_of_range"] / n,
        "tertian_pct": 100.0 * counts["tertian_beats"] / b,
        "leading_tone_per_1000_notes": 1000.0 * counts["leading_tone"] / n,
    }


def penalty(parts: Sequence[Sequence], ppq: int = 480, beats: Sequence[int] | None = None,
            key: tuple[int, bool] | None = None) -> float:
    """A single badness score (per note) used to rank candidate harmonizations."""
    c = measure(_prepare(parts), ppq, beats, key)
    n = max(1, c["notes"])
    return (4.0 * c["parallels"] + 2.0 * c["out_of_range"] + 3.0 * c["leading_tone"]) / n + \
        (1.5 * c["crossing_frames"] + 1.0 * c["spacing_frames"]) / max(1, c["frames"]) + \
        1.0 * (c["beats"] - c["tertian_beats"]) / max(1, c["beats"])
