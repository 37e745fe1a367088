"""Tempo, meter and key changes as a musician names them: "at bar 9, 3/4".

A :class:`Change` is one row of the song's maps: its kind, the bar it sits in (1-based, the
pickup being bar 0 when there is one), and its value as text.  :func:`changes_of` lists a
song's maps this way; :func:`apply_changes` turns edited rows back into the three maps,
placing each change at the start of its bar (meters first, since they move the bar lines),
except a change kept where it was (``tick`` set: a row not moved to another bar, such as a
tempo change in the middle of a bar read from a MIDI file, or the song's opening values when
a pickup is added).  Pure Python, no Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import StudioError
from .song import KeySignature, Song, TempoChange, TimeSignature
from .timing import bars

KINDS = ("Tempo", "Meter", "Key")
METER_DENOMINATORS = (1, 2, 4, 8, 16, 32, 64)
MAX_BEATS = 64


@dataclass(frozen=True)
class Change:
    kind: str  # one of KINDS
    bar: int  # 1-based; 0 is the pickup
    value: str  # "96", "3/4", "D minor"
    tick: int | None = None  # where it stays (None: at the start of ``bar``)


def _number(song: Song, tick: int) -> int:
    """The bar number (1-based; a pickup is bar 0) holding ``tick``."""
    bs = bars(song, until=tick + 1)
    index = next((b.index for b in reversed(bs) if b.start <= tick), 0)
    return index if song.pickup else index + 1


def changes_of(song: Song) -> list[Change]:
    """The song's tempo, meter and key maps as rows, in time order."""
    rows = [Change("Tempo", _number(song, t.tick), f"{t.bpm:g}", t.tick) for t in song.tempos]
    rows += [Change("Meter", _number(song, s.tick), str(s), s.tick) for s in song.time_signatures]
    rows += [Change("Key", _number(song, k.tick), k.name, k.tick) for k in song.key_signatures]
    return sorted(rows, key=lambda c: (c.tick or 0, KINDS.index(c.kind)))


def parse_value(kind: str, text: str):
    """The value of a row: bpm (float), (numerator, denominator) or a KeySignature."""
    text = text.strip()
    if kind == "Tempo":
        try:
            bpm = float(text.lower().replace("bpm", "").strip())
        except ValueError:
            raise StudioError(f"tempo {text!r}: a number of beats per minute was expected") from None
        if not 1 <= bpm <= 1000:
            raise StudioError(f"tempo {text}: must be 1 to 1000 BPM")
        return bpm
    if kind == "Meter":
        num, _, den = text.partition("/")
        try:
            n, d = int(num), int(den)
        except ValueError:
            raise StudioError(f"meter {text!r}: write it as 3/4") from None
        if not 1 <= n <= MAX_BEATS or d not in METER_DENOMINATORS:
            raise StudioError(f"meter {text}: 1 to {MAX_BEATS} beats of 1, 2, 4 ... 64")
        return n, d
    if kind == "Key":
        try:
            return KeySignature.from_name(text)
        except (KeyError, IndexError, ValueError):
            raise StudioError(f"key {text!r}: write it as 'D minor' or 'Bb major'") from None
    raise StudioError(f"unknown kind of change {kind!r}")


def apply_changes(song: Song, rows: list[Change], pickup: int | None = None) -> tuple[list, list, list, int]:
    """New (tempos, time signatures, keys, pickup) from edited rows; ``song`` is not changed.

    The first bar's meter, tempo and key are needed (a song without them keeps 4/4, 120 BPM,
    C major).  ``pickup``: ticks of a partial first bar (None: keep the song's)."""
    pickup = song.pickup if pickup is None else max(0, int(pickup))
    first = 0 if pickup else 1
    for c in rows:
        if c.bar < first:
            raise StudioError(f"{c.kind.lower()} at bar {c.bar}: bars start at {first}")
    parsed = [(c, parse_value(c.kind, c.value)) for c in rows]
    # meters first: each one moves the bar lines after it
    work = Song(ppq=song.ppq, tracks=[], time_signatures=[TimeSignature(0, 4, 4)], pickup=pickup)
    sigs: dict[int, TimeSignature] = {}
    for c, (n, d) in sorted(((c, v) for c, v in parsed if c.kind == "Meter"), key=lambda cv: cv[0].bar):
        tick = c.tick if c.tick is not None else _bar_tick(work, c.bar - first)
        sigs[tick] = TimeSignature(tick, n, d)
        work.time_signatures = sorted(sigs.values(), key=lambda s: s.tick) if 0 in sigs else \
            [TimeSignature(0, 4, 4)] + sorted(sigs.values(), key=lambda s: s.tick)
    if pickup and pickup >= work.time_signature_at(0).bar_ticks(song.ppq):
        raise StudioError("the pickup must be shorter than the first bar")
    tempos: dict[int, TempoChange] = {}
    keys: dict[int, KeySignature] = {}
    for c, v in parsed:
        if c.kind == "Meter":
            continue
        tick = c.tick if c.tick is not None else _bar_tick(work, c.bar - first)
        if c.kind == "Tempo":
            tempos[tick] = TempoChange(tick, v)
        else:
            keys[tick] = replace(v, tick=tick)
    out_t = sorted(tempos.values(), key=lambda t: t.tick) or [TempoChange(0, 120.0)]
    out_s = list(work.time_signatures)
    out_k = sorted(keys.values(), key=lambda k: k.tick) or [KeySignature(0, 0, False)]
    if out_t[0].tick:
        out_t.insert(0, TempoChange(0, out_t[0].bpm))
    if out_k[0].tick:
        out_k.insert(0, replace(out_k[0], tick=0))
    return out_t, out_s, out_k, pickup


def _bar_tick(song: Song, index: int) -> int:
    """Start of bar ``index`` (0-based), extending the meter map past the end."""
    if index <= 0:
        return 0
    if index > 99_999:
        raise StudioError(f"bar {index + 1} is past the last bar a song can have")
    bs = bars(song, until=1)
    while len(bs) <= index:
        bs = bars(song, until=bs[-1].end + 1 + (index - len(bs) + 1) * bs[-1].length)
    return bs[index].start
