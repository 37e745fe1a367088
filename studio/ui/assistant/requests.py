"""Turning the editor's state (song, current track, selection, cursor, loop) into model requests.

Plain functions over a Song and a few numbers, no widgets, so they are easy to test.  Each
returns the request plus the two things the diff needs: the song the take will be compared
with (``base``, a snapshot of the document's song) and the track anchor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.errors import StudioError
from ...core.satb import VOICE_NAMES, VOICES, bass_track, place_melody, satb_tracks
from ...core.satb import melody_track as _melody_track
from ...core.song import Note, Song
from ...core.timing import bar_of, bar_start, bars, first_bar_number
from ...ml.worker import protocol as P



@dataclass
class Plan:
    request: P.Request
    base: Song  # what the take is diffed against
    anchor: dict = field(default_factory=dict)  # take track -> song track fixed pairs
    by_index: bool = True
    where: str = ""  # words for the user: which notes the request works on


@dataclass
class Context:
    """What the user has in front of them when they click Generate."""

    song: Song
    track: int  # current track
    selection: list[Note] = field(default_factory=list)  # selected notes of the current track
    cursor: int = 0  # playhead tick
    loop: tuple[int, int] | None = None


def _none_if_min(value: float, minimum: float) -> float | None:
    return None if value <= minimum + 1e-9 else float(value)


def _bar_number_at_or_after(song: Song, tick: int) -> int:
    """1-based number of the first bar that starts at or after ``tick``."""
    if tick <= 0:
        return 1
    b = bar_of(song, tick)
    bs = bars(song, until=tick + 1)
    start = bs[b].start if b < len(bs) else tick
    return b + 1 if start == tick else b + 2


DENSITIES = ("sparser", "as before", "denser")


def continue_plan(ctx: Context, bars_: int, temperature: float | None, top_p: float | None, takes: int,
                  seed: int | None, key_strength: float | None = None, density: str = "as before",
                  density_track_only: bool = False, keep_range: bool = False, cadence: bool = False,
                  follow_density: bool = True, smooth_lines: bool = False) -> Plan:
    """Continue from the bar after the selection, else from the first bar at or after the
    playhead, else after the last note. The request names its first bar, so the words for
    the user ("Writes bars 6–9") are exactly the bars the take can change.

    ``density`` (one of :data:`DENSITIES`) for every track, or with ``density_track_only``
    for the current track alone; ``follow_density`` False lets the model choose each track's
    note rate instead of keeping the one of its bars before."""
    song = ctx.song.copy()
    if ctx.selection:
        from_bar = _bar_number_at_or_after(song, max(n.end for n in ctx.selection))
        why = "after the selection"
    elif 0 < ctx.cursor < song.end_tick:
        from_bar = _bar_number_at_or_after(song, ctx.cursor)
        why = "from the playhead"
    else:
        from_bar = bar_of(song, max(0, song.end_tick - 1)) + 2 if song.end_tick > 0 else 1
        why = "after the last note"
    shown = from_bar - 1 + first_bar_number(song)  # the numbers the ruler and the score print
    span = f"bar {shown}" if bars_ == 1 else f"bars {shown}–{shown + bars_ - 1}"
    later = song.end_tick > bar_start(song, from_bar - 1)
    where = f"Writes {span} ({why})" + ("; notes that start there are replaced" if later else "")
    per_track: tuple[str, ...] = ()
    if density != "as before":
        per_track = tuple(density if not density_track_only or i == ctx.track else "as before"
                          for i in range(len(song.tracks)))
    req = P.ContinueRequest(0, song, seed=seed, bars=int(bars_), from_bar=from_bar, temperature=temperature,
                            top_p=top_p, takes=int(takes), key_strength=key_strength, density=per_track,
                            keep_range=bool(keep_range), cadence=bool(cadence),
                            follow_density=None if follow_density else False, smooth_lines=bool(smooth_lines))
    return Plan(req, song, {}, True, where)


def melody_track(song: Song, current: int) -> int | None:
    """The current track when it has notes, else the melody by ``studio.core.satb``'s rule."""
    return _melody_track(song, current)


def harmonize_plan(ctx: Context, keep_bass: bool, temperature: float | None, candidates: int | None, takes: int,
                   seed: int | None) -> Plan:
    """Harmonize the current track (or, in a four-voice song, the soprano) as the melody: the
    take's soprano, or its tenor or bass when the melody lies that low (``satb.place_melody``)."""
    song = ctx.song.copy()
    idx = satb_tracks(song)
    m = idx[0] if idx is not None else melody_track(song, ctx.track)
    voice, note = 0, ""
    if m is not None:
        try:
            place = place_melody([n.pitch for n in song.tracks[m].notes])
            voice, note = place.voice, place.note
        except StudioError as exc:  # the worker answers with the same words
            note = str(exc)
    if idx is not None:  # four voices already: rewrite the others around the melody
        anchor = dict(enumerate(idx))
        anchor[voice], anchor[0] = idx[0], idx[voice]
    else:
        anchor = {voice: m} if m is not None else {}
        if keep_bass and m is not None:
            b = bass_track(song, m)
            if b is not None and voice != 3:
                anchor[3] = b
    keep = ("soprano", "bass") if keep_bass else ("soprano",)
    req = P.HarmonizeRequest(0, song, seed=seed, melody_track=m, keep=keep, temperature=temperature,
                             candidates=candidates, takes=int(takes))
    name = song.tracks[m].name if m is not None else "the melody"
    written = [VOICES[v] for v in range(4) if v != voice and not (keep_bass and v == 3)]
    where = f"melody: {name}{'; ' + note if note else ''}; writes {', '.join(written[:-1])} and {written[-1]}"
    return Plan(req, song, anchor, False, where)


def regenerate_plan(source: Song, base: Song, voices, start: int | None, end: int | None,
                    temperature: float | None, candidates: int | None, seed: int | None) -> Plan:
    """Redraw ``voices`` of the four-voice ``source``: the song itself, or the song with a take
    applied (whose first tracks are the song's own, and whose extra tracks are new)."""
    idx = satb_tracks(source)
    anchor = {}
    own = [source.tracks[i].name.strip() or f"track {i + 1}" for i in idx] if idx is not None else list(VOICES)
    source = source.copy()
    if idx is not None:
        for v, ti in enumerate(idx):
            # name the voices as the checker sees them, so the harmonizer redraws the same ones
            source.tracks[ti].name = VOICE_NAMES[v]
            if ti < len(base.tracks):
                anchor[v] = ti
    req = P.RegenerateRequest(0, source, seed=seed, voices=tuple(int(v) for v in voices), start_tick=start,
                              end_tick=end, temperature=temperature, candidates=candidates)
    names = ", ".join(own[v] for v in voices)  # the parts as the song calls them (Viola, Cello...)
    a, b = (_bar_no(base, start), _bar_no(base, max(start, end - 1))) if start is not None else (0, 0)
    span = "the whole piece" if start is None else f"bar {a}" if a == b else f"bars {a}–{b}"
    return Plan(req, base, anchor, False, f"redraws the {names} over {span}")


def _bar_no(song: Song, tick: int) -> int:
    """The number a score prints on the bar holding ``tick`` (a pickup is bar 0)."""
    return bar_of(song, tick) + first_bar_number(song)


def vary_span(ctx: Context, lock: bool) -> tuple[int, int] | None:
    """Ticks the variation rewrites: the loop region, else the selection's extent (unless its
    notes are locked), else the whole current track."""
    if ctx.loop and ctx.loop[1] > ctx.loop[0]:
        return int(ctx.loop[0]), int(ctx.loop[1])
    if ctx.selection and not lock:
        return min(n.start for n in ctx.selection), max(n.end for n in ctx.selection)
    notes = ctx.song.tracks[ctx.track].notes if 0 <= ctx.track < len(ctx.song.tracks) else []
    if not notes:
        return None
    return 0, max(n.end for n in notes)


def vary_plan(ctx: Context, strength: float, takes: int, lock: bool, seed: int | None, mode: str = "free") -> Plan:
    song = ctx.song.copy()
    span = vary_span(ctx, lock)
    start, end = span if span else (None, None)
    locked = frozenset((ctx.track, n) for n in ctx.selection) if lock else frozenset()
    req = P.VaryRequest(0, song, seed=seed, strength=float(strength), start_tick=start, end_tick=end,
                        tracks=(ctx.track,), locked=locked, takes=int(takes), mode=mode)
    name = song.tracks[ctx.track].name if 0 <= ctx.track < len(song.tracks) else "?"
    what = "the loop region" if ctx.loop else ("the selection" if ctx.selection and not lock else "the whole track")
    where = f"{name}: {what}" + (f", {len(locked)} locked note{'s' if len(locked) != 1 else ''}" if locked else "")
    return Plan(req, song, {}, True, where)
