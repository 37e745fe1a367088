"""``studio info`` and ``studio convert``."""

from __future__ import annotations

import bisect
import json
import os

from ..core.song import CONTROLLER_NAMES, PITCH_BEND, Song
from ..core.timing import bars, first_bar_number, song_seconds


def controller_counts(track) -> list[dict]:
    """How many events of each controller a track holds, by controller number (pitch bend last)."""
    counts: dict[int, int] = {}
    for c in track.controls:
        counts[c.number] = counts.get(c.number, 0) + 1
    return [{"number": n, "name": CONTROLLER_NAMES.get(n, f"CC {n}"), "count": counts[n]} for n in sorted(counts)]


def _controllers(items: list[dict]) -> str:
    """``Sustain (CC 64) 24, CC 91 3, Pitch bend 130``."""
    words = []
    for c in items:
        named = c["number"] != PITCH_BEND and not c["name"].startswith("CC ")
        number = f" (CC {c['number']})" if named else ""
        words.append(f"{c['name']}{number} {c['count']}")
    return ", ".join(words)


def program_name(program: int, is_drum: bool = False) -> str:
    """The General MIDI instrument name of a program number (0-127)."""
    from ..io.midi import GM_PROGRAM_NAMES

    return "Drum kit" if is_drum else GM_PROGRAM_NAMES[max(0, min(127, int(program)))]


def _clock(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss.s`` from an hour on), rounded to a tenth before it is split, so that
    599.99 s reads 10:00.0, not 9:60.0."""
    tenths = int(round(max(0.0, seconds) * 10))
    m, s = divmod(tenths, 600)
    s = s / 10
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def song_info(song: Song) -> dict:
    """What ``studio info`` reports, as plain data."""
    end = song.end_tick
    last = max([end] + [e.tick for e in (*song.tempos, *song.time_signatures, *song.key_signatures)])
    bar_list = bars(song, until=last + 1)
    starts = [b.start for b in bar_list]
    first = first_bar_number(song)  # a pickup is bar 0 and not counted, as a musician counts
    n_bars = len(bars(song)) - (1 - first) if end > 0 else 0

    def _bar_number(_song, tick: int) -> int:  # the bar holding tick, numbered as the score prints it
        return bisect.bisect_right(starts, tick) - 1 + first

    return {
        "title": song.title,
        "ppq": song.ppq,
        "notes": song.note_count,
        "bars": n_bars,
        "pickup": not first,
        "seconds": round(song_seconds(song), 3),
        "ticks": end,
        "tempos": [{"tick": t.tick, "bar": _bar_number(song, t.tick), "bpm": round(t.bpm, 3)} for t in song.tempos],
        "meters": [{"tick": s.tick, "bar": _bar_number(song, s.tick), "meter": str(s)} for s in song.time_signatures],
        "keys": [{"tick": k.tick, "bar": _bar_number(song, k.tick), "key": k.name} for k in song.key_signatures],
        "tracks": [
            {
                "name": t.name,
                "program": t.program,
                "instrument": program_name(t.program, t.is_drum),
                "channel": t.channel + 1,
                "is_drum": t.is_drum,
                "notes": len(t.notes),
                "lowest": min((n.pitch for n in t.notes), default=None),
                "highest": max((n.pitch for n in t.notes), default=None),
                "controllers": controller_counts(t),
            }
            for t in song.tracks
        ],
    }


def _changes(items, key, fmt) -> str:
    if not items:
        return "-"
    first = fmt(items[0][key])
    rest = [f"{fmt(i[key])} (bar {i['bar']})" for i in items[1:]]
    if len(rest) > 8:
        rest = rest[:8] + [f"... {len(rest) - 8} more"]
    return ", ".join([first] + rest)


def format_info(name: str, info: dict) -> str:
    lines = [
        f"{name}: {info['title']}",
        f"  length  {info['bars']} bar{'s' if info['bars'] != 1 else ''}{' after a pickup' if info.get('pickup') else ''}, "
        f"{_clock(info['seconds'])} ({info['seconds']:.1f} s)",
        f"  notes   {info['notes']} in {len(info['tracks'])} track{'s' if len(info['tracks']) != 1 else ''}",
        f"  tempo   {_changes(info['tempos'], 'bpm', lambda b: f'{b:g} bpm')}",
        f"  meter   {_changes(info['meters'], 'meter', str)}",
        f"  key     {_changes(info['keys'], 'key', str)}",
        "  tracks",
    ]
    width = max((len(t["name"]) for t in info["tracks"]), default=4)
    for i, t in enumerate(info["tracks"], 1):
        prog = "drums" if t["is_drum"] else f"program {t['program']:3d}"
        lines.append(f"    {i:2d}. {t['name']:<{width}}  {prog} {t['instrument']:<24} ch {t['channel']:2d}  {t['notes']:6d} notes")
        if t.get("controllers"):
            lines.append(f"        {'':<{width}}  controllers  {_controllers(t['controllers'])}")
    if not info["tracks"]:
        lines.append("    (none)")
    return "\n".join(lines)


def info(args) -> int:
    from ..io import load

    song = load(args.input)
    data = song_info(song)
    if args.json:
        data = {"file": os.path.basename(args.input), **data}
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(format_info(os.path.basename(args.input), data))
    return 0


def convert(args) -> int:
    from ..io import check_output, load, save

    check_output(args.output)  # refuse an unknown output kind before reading anything
    song = load(args.input)
    save(song, args.output)
    print(f"{os.path.basename(args.output)}: {len(song.tracks)} tracks, {song.note_count} notes")
    return 0
