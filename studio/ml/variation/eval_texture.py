"""Held-out figures a musician reads a variation by: does it keep the texture (a one-voice part
stays one voice, chords stay chords, each part in its range), is it readable (new notes on the
passage's own grid, no rests shorter than that grid inside a line), how much does it keep, does it
keep the key — per strength and mode, on held-out passages of five kinds: plain quarter-note
melodies (chorale sopranos whose passage uses only quarters and longer), folk melodies, Bach
chorales, string quartets (Beethoven op. 59/1, Mozart K. 156) and keyboard (Clara Schumann's
Polonaise op. 1/3).  All of them are in the corpus's test split (by work)."""

from __future__ import annotations

import bisect
import random
import time
from collections import defaultdict

import numpy as np

from ...core.song import Song
from ...core.timing import bars

BARS = 4
STRENGTHS = (0.25, 0.5, 0.75, 1.0)
MODES = ("free", "rhythm", "pitches")
TICKS_PER_QUARTER_DIVISIONS = (1, 2, 3, 4, 6, 8, 12)  # quarter, eighth, triplet eighth, 16th, ...
RANGE_SLACK = 3


def locked_notes(song: Song, tracks, start: int, end: int, share: float, seed: int) -> set:
    """A reproducible ``share`` of the selected notes (tracks, ``start <= onset < end``) to lock, as
    (track index, note) pairs; none when ``share`` is 0."""
    if not share:
        return set()
    rng = random.Random(seed)
    return {(i, n) for i in tracks for n in song.tracks[i].notes if start <= n.start < end and rng.random() < share}


def heldout_files() -> dict[str, list[str]]:
    """Corpus files per kind, all of the test split."""
    from .. import corpus as C

    test = [r for r in C.source_files() if C.split_of(r) == "test"]
    return {
        "quartet": [r for r in test if r.startswith(("beethoven/opus59no1/", "mozart/k156/"))],
        "keyboard": [r for r in test if r.startswith("schumann_clara/polonaise")],
        "chorale": [r for r in test if r.startswith("bach/")],
        "folk-melody": [r for r in test if r.startswith("essenFolksong/")][:2],
    }


def _songs(rel: str, limit: int = 12) -> list[tuple[str, Song]]:
    """The pieces of one corpus file, from the corpus cache (parsed into it when missing)."""
    from .. import corpus as C

    f = C._cache_file(rel)
    data = C._read(f) if f.exists() else None
    if data is None:
        f.parent.mkdir(parents=True, exist_ok=True)
        C._parse_and_store(rel)
        data = C._read(f) or {"pieces": []}
    return [(p["id"], C.song_from_json(p["song"])) for p in data["pieces"][:limit]]


def _pick(song, rng, n=1):
    bs = bars(song)
    if len(bs) < BARS + 2:
        return []
    starts = sorted(rng.sample(range(1, len(bs) - BARS), min(n, len(bs) - BARS - 1)))
    return [(bs[a].start, bs[a + BARS - 1].end) for a in starts]


def grid_ticks(notes, song, end: int) -> int:
    """The passage's own grid: the coarsest division every onset (from its bar line) and every
    length of ``notes`` is a multiple of."""
    starts = sorted(b.start for b in bars(song, end + 1))
    for per_q in TICKS_PER_QUARTER_DIVISIONS:
        g = song.ppq // per_q
        if all((n.start - starts[max(0, bisect.bisect_right(starts, n.start) - 1)]) % g == 0 and n.duration % g == 0
               for n in notes):
            return g
    return max(1, song.ppq // 12)


def is_one_voice(notes) -> bool:
    ns = sorted(notes)
    return all(a.end <= b.start for a, b in zip(ns, ns[1:]))


def passages(seed: int = 3, log=None) -> list[tuple]:
    """``(kind, id, song, start, end, tracks)`` for every held-out passage."""
    rng = random.Random(seed)
    out = []
    files = heldout_files()
    for kind in ("chorale", "quartet", "keyboard", "folk-melody"):
        for rel in files[kind]:
            if log:
                log(f"  {rel}")
            for pid, song in _songs(rel):
                if kind == "chorale":
                    for a, b in _pick(song, rng):
                        out.append(("chorale", pid, song, a, b, list(range(len(song.tracks)))))
                    sop = Song(title=song.title, ppq=song.ppq, tracks=[song.tracks[0].copy()],
                               tempos=list(song.tempos), time_signatures=list(song.time_signatures),
                               key_signatures=list(song.key_signatures))
                    for a, b in _pick(sop, rng, 3):
                        sel = [n for n in sop.tracks[0].notes if a <= n.start < b]
                        if sel and grid_ticks(sel, sop, b) == sop.ppq:
                            out.append(("quarter-melody", pid + ":soprano", sop, a, b, [0]))
                            break
                elif kind == "quartet":
                    out += [("quartet", pid, song, a, b, list(range(len(song.tracks)))) for a, b in _pick(song, rng, 2)]
                elif kind == "keyboard":
                    out += [("keyboard", pid, song, a, b, list(range(len(song.tracks)))) for a, b in _pick(song, rng, 5)]
                elif sum(o[0] == kind for o in out) < 12 and rng.random() < 0.5:
                    out += [(kind, pid, song, a, b, [0]) for a, b in _pick(song, rng)]
    return out


def passage_figures(src, out, start, end, tracks, locked) -> dict:
    """Counts for one varied passage (summed over passages by :func:`summarize`)."""
    from . import roll as R

    def sel(song):
        return {i: [n for n in song.tracks[i].notes if start <= n.start < end] for i in tracks}

    s_sel, o_sel = sel(src), sel(out)
    s_all = [n for ns in s_sel.values() for n in ns]
    o_all = [n for ns in o_sel.values() for n in ns]
    src_keys = {(i, n.start, n.pitch) for i in tracks for n in s_sel[i] if (i, n) not in locked}
    out_keys = {(i, n.start, n.pitch) for i in tracks for n in o_sel[i]}
    scale = R.key_scale(R.song_key(src, start, [n.pitch for n in s_all]))
    bar_starts = sorted(b.start for b in bars(src, end + 1))
    m = defaultdict(int)
    m.update(n_src=len(src_keys), n_kept=len(src_keys & out_keys), n_out=len(o_all), n_src_all=len(s_all),
             in_scale=sum(bool(scale[n.pitch % 12]) for n in o_all))
    m["chord_src"], m["chord_out"] = [], []
    m["locked_ok"] = all(n in set(out.tracks[i].notes) for i, n in locked)
    m["context_ok"] = all([n for n in a.notes if not (i in tracks and start <= n.start < end)]
                          == [n for n in b.notes if not (i in tracks and start <= n.start < end)]
                          for i, (a, b) in enumerate(zip(src.tracks, out.tracks)))
    for i in tracks:
        sn, on = s_sel[i], o_sel[i]
        if not sn:
            continue
        g = grid_ticks(sn, src, end)
        srcset = set(sn)
        lengths = {n.duration for n in sn}
        lo, hi = min(n.pitch for n in sn) - RANGE_SLACK, max(n.pitch for n in sn) + RANGE_SLACK
        for n in on:
            if n in srcset:
                continue
            b = bar_starts[max(0, bisect.bisect_right(bar_starts, n.start) - 1)]
            m["new"] += 1
            m["new_on_grid"] += (n.start - b) % g == 0 and (n.duration % g == 0 or n.end >= src.end_tick)
            m["new_length_in_source"] += n.duration in lengths
            m["new_in_range"] += lo <= n.pitch <= hi
        if is_one_voice(sn):
            near = [o for o in out.tracks[i].notes if o.end > start - 8 * src.ppq and o.start < end + 8 * src.ppq]
            for n in on:
                ov = any(o is not n and o.start < n.end and o.end > n.start for o in near)
                m["line_notes"] += 1
                m["line_overlap"] += ov
                if n not in srcset:
                    m["line_new"] += 1
                    m["line_new_overlap"] += ov
        else:
            for ns, key in ((sn, "chord_src"), (on, "chord_out")):
                by = defaultdict(int)
                for n in ns:
                    by[n.start] += 1
                if by:
                    m[key].append(float(np.mean(list(by.values()))))

        def short_rests(notes):
            c, reach = 0, None
            for n in sorted(notes, key=lambda n: n.start):
                if reach is not None and 0 < n.start - reach < g:
                    c += 1
                reach = n.end if reach is None else max(reach, n.end)
            return c
        m["short_rests"] += short_rests(on)
        m["short_rests_source"] += short_rests(sn)
    return m


def summarize(ms) -> dict:
    def s(k):
        return sum(m[k] for m in ms)

    new = max(1, s("new"))
    cs = [x for m in ms for x in m["chord_src"]]
    co = [x for m in ms for x in m["chord_out"]]
    return {
        "passages": len(ms),
        "kept": s("n_kept") / max(1, s("n_src")),
        "scale_consistency": s("in_scale") / max(1, s("n_out")),
        "density": s("n_out") / max(1, s("n_src_all")),
        "single_line_overlap_new": s("line_new_overlap") / max(1, s("line_new")),
        "single_line_overlap_all": s("line_overlap") / max(1, s("line_notes")),
        "new_on_source_grid": s("new_on_grid") / new,
        "new_length_in_source": s("new_length_in_source") / new,
        "short_rests_per_100_new": 100 * s("short_rests") / new,
        "short_rests_source": s("short_rests_source"),
        "new_in_range": s("new_in_range") / new,
        "new_notes": s("new"),
        "chord_size_source": float(np.mean(cs)) if cs else None,
        "chord_size_out": float(np.mean(co)) if co else None,
        "locked_exact": all(m["locked_ok"] for m in ms),
        "context_exact": all(m["context_ok"] for m in ms),
    }


def run(vary_fn, items, strengths=STRENGTHS, modes=MODES, lock_share: float = 0.0, seed: int = 0, log=None) -> dict:
    """``{mode: {strength: {"all": figures, kind: figures, ...}}}``; ``vary_fn(song, strength,
    start, end, tracks, locked, seed, mode) -> Song``."""
    res: dict = {}
    for mode in modes:
        for s in strengths:
            per_kind, times = defaultdict(list), []
            for j, (kind, _pid, song, a, b, tracks) in enumerate(items):
                locked = locked_notes(song, tracks, a, b, lock_share, j)
                t0 = time.perf_counter()
                out = vary_fn(song, s, a, b, tracks, locked, seed + j, mode)
                times.append(time.perf_counter() - t0)
                per_kind[kind].append(passage_figures(song, out, a, b, tracks, locked))
            row = {"all": summarize([m for ms in per_kind.values() for m in ms])}
            row.update({k: summarize(ms) for k, ms in sorted(per_kind.items())})
            row["all"]["seconds_per_passage"] = float(np.mean(times))
            res.setdefault(mode, {})[str(s)] = row
            if log:
                for k, r in row.items():
                    log(f"{mode:8s} {s:4.2f} {k:15s} n={r['passages']:3d} kept {r['kept']:.3f} "
                        f"scale {r['scale_consistency']:.3f} density {r['density']:.2f} "
                        f"overlap {100 * r['single_line_overlap_new']:.1f}% (all {100 * r['single_line_overlap_all']:.1f}%) "
                        f"on-grid {r['new_on_source_grid']:.3f} lengths {r['new_length_in_source']:.3f} "
                        f"short rests/100 {r['short_rests_per_100_new']:.1f} range {r['new_in_range']:.3f}")
    return res
