"""The continuation judged against the real next bars, per corpus family, on held-out pieces.

A *window* is a piece of the test split cut at bar ``b``: the prompt is everything before it,
and the real bars ``b``..``b+3`` are what the new bars are compared with. Each piece gives its
opening (``b = 4``); families with fewer pieces than asked also get windows further in
(``b = 12, 20, ...``, every 6 bars for keyboard music), spread over their pieces.

The figures (per window and seed, then averaged over the windows of a family; the spread is
over seeds):

* ``overlap``: the share of new notes in single-line tracks (one line in the prompt, see
  :func:`.texture.is_single_line`) that overlap another note of the same track;
* ``pitch_oa``: the overlapping area of the new and the real notes' MIDI-pitch histograms
  (note counts, normalized; 1 = the same distribution);
* ``dur_oa``: the same for the durations (on the tokens' duration table);
* ``density``: new notes / real notes;
* ``motion_oa``: in single-line tracks, the overlapping area of the new and the real notes'
  histograms of interval sizes from note to note (0..12 semitones, larger ones together);
  ``steps`` and ``steps_real``: the share of those intervals that are steps (1 or 2 semitones);
* ``parallels``: parallel fifths and octaves between single-line tracks (the voice-leading
  checker's, :func:`studio.core.voiceleading.check`) that arrive in the new bars, per 1000 new
  notes of those tracks, pooled over the windows; ``parallels_real`` the same in the real bars;
* ``key_corr``: after a 4-bar opening, the correlation of the duration-weighted pitch-class
  histograms of the last 4 new bars and of the 4 prompt bars (with ``bars=16`` or ``32``:
  whether the key holds).

The baseline is the copy of the prompt: the 4 bars before ``b`` written again as bars
``b``..``b+3``. Run ``python -m studio.ml.continuation.families --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from . import tokens as T
from .texture import is_single_line, overlap_flags
from ...core import voiceleading
from ...core.song import Note, Song
from ...core.timing import bars as song_bars

FAMILIES = ("quartets", "chorales", "vocal", "keyboard", "folk")
_KEYBOARD = ("schumann_clara", "schumann_robert", "joplin", "chopin", "beach", "cpebach")


def family_of(piece_id: str) -> str | None:
    top, _, rest = piece_id.partition("/")
    if top == "bach" and "bwv" in rest:
        return "chorales"
    if top in ("beethoven", "mozart", "haydn") and "/" in rest:
        return "quartets"
    if top in ("palestrina", "josquin", "trecento", "monteverdi"):
        return "vocal"
    if top in _KEYBOARD and "opus17" not in rest:  # Clara Schumann's op. 17 is a piano trio
        return "keyboard"
    if top in ("ryansMammoth", "oneills1850", "essenFolksong", "airdsAirs"):
        return "folk"
    return None


# ---- figures ----------------------------------------------------------------------------------
def notes_in(song: Song, start: int, end: int) -> list[Note]:
    """The pitched notes starting in [start, end)."""
    return [n for tr in song.tracks if not tr.is_drum for n in tr.notes if start <= n.start < end]


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    if a.sum() == 0 or b.sum() == 0:
        return 0.0
    return float(np.minimum(a / a.sum(), b / b.sum()).sum())


def pitch_hist(notes) -> np.ndarray:
    return np.bincount([n.pitch for n in notes], minlength=128).astype(float)


def dur_hist(notes, ppq: int) -> np.ndarray:
    unit = ppq / T.RES
    idx = [T.dur_token(max(1, int(round(n.duration / unit)))) - T.DUR0 for n in notes]
    return np.bincount(idx, minlength=len(T.DURATIONS)).astype(float)


def key_corr(a, b) -> float:
    ha, hb = np.zeros(12), np.zeros(12)
    for h, ns in ((ha, a), (hb, b)):
        for n in ns:
            h[n.pitch % 12] += n.duration
    if ha.std() == 0 or hb.std() == 0:
        return 0.0
    return float(np.corrcoef(ha, hb)[0, 1])


def line_overlaps(song: Song, start: int, end: int, lines: list[bool]) -> tuple[int, int]:
    """(new notes of single-line tracks overlapping another note of the track, new notes in them)."""
    bad = total = 0
    for ti, tr in enumerate(song.tracks):
        if ti >= len(lines) or not lines[ti]:
            continue
        notes = sorted(n for n in tr.notes if n.start < end and n.end > start - 16 * song.ppq)
        for n, f in zip(notes, overlap_flags(notes, song.ppq // 24)):
            if start <= n.start < end:
                total += 1
                bad += f
    return bad, total


def line_parallels(song: Song, start: int, end: int, lines: list[bool]) -> tuple[int, int]:
    """(parallel fifths and octaves between single-line tracks arriving in [start, end), notes of
    those tracks starting there); (0, 0) with fewer than two such tracks."""
    idx = [i for i, tr in enumerate(song.tracks) if i < len(lines) and lines[i] and not tr.is_drum]
    if len(idx) < 2:
        return 0, 0
    parts = [[n for n in song.tracks[i].notes if start - 4 * song.ppq <= n.start < end] for i in idx]
    bad = sum(1 for s in voiceleading.check(parts, song.ppq, beats=[])
              if s.kind in ("parallel_fifths", "parallel_octaves") and start <= s.end < end)
    return bad, sum(1 for p in parts for n in p if start <= n.start)


def line_intervals(song: Song, start: int, end: int, lines: list[bool]) -> np.ndarray:
    """Counts of interval sizes 0..12 (12: an octave or more) between consecutive notes of the
    single-line tracks, for the notes starting in [start, end)."""
    h = np.zeros(13)
    for i, tr in enumerate(song.tracks):
        if i < len(lines) and lines[i] and not tr.is_drum:
            ps = [n.pitch for n in sorted(tr.notes, key=lambda n: n.start) if start <= n.start < end]
            if len(ps) > 1:
                h += np.bincount(np.minimum(np.abs(np.diff(ps)), 12), minlength=13)
    return h


def window_figures(take: Song, real: Song, start: int, end: int, lines: list[bool]) -> dict:
    new, ref = notes_in(take, start, end), notes_in(real, start, end)
    bad, tot = line_overlaps(take, start, end, lines)
    par, par_n = line_parallels(take, start, end, lines)
    par_r, par_rn = line_parallels(real, start, end, lines)
    return {"overlap_bad": bad, "overlap_total": tot, "pitch_oa": overlap_area(pitch_hist(new), pitch_hist(ref)),
            "dur_oa": overlap_area(dur_hist(new, take.ppq), dur_hist(ref, real.ppq)),
            "density": len(new) / max(1, len(ref)), "n_new": len(new), "n_real": len(ref),
            "par": par, "par_notes": par_n, "par_real": par_r, "par_real_notes": par_rn,
            **_motion(line_intervals(take, start, end, lines), line_intervals(real, start, end, lines))}


def _motion(new: np.ndarray, real: np.ndarray) -> dict:
    if new.sum() < 3 or real.sum() < 3:
        return {}
    return {"motion_oa": overlap_area(new, real), "steps": float(new[1:3].sum() / new.sum()),
            "steps_real": float(real[1:3].sum() / real.sum())}


def copy_take(song: Song, src_start: int, src_end: int, end: int) -> Song:
    """The baseline: the notes of [src_start, src_end) written again from src_end on, up to ``end``."""
    take = song.copy()
    shift = src_end - src_start
    for tr in take.tracks:
        old = [n for n in tr.notes if n.start < src_end]
        src = [n for n in old if n.start >= src_start]
        new, k = [], 1
        while src_start + k * shift < end:
            new += [Note(n.start + k * shift, n.pitch, n.duration, n.velocity) for n in src
                    if n.start + k * shift < end]
            k += 1
        tr.notes = sorted(old + new)
    return take


def truncate(song: Song, end: int) -> Song:
    s = song.copy()
    for tr in s.tracks:
        tr.notes = [n for n in tr.notes if n.start < end]
    return s


# ---- windows and runs ---------------------------------------------------------------------------
def windows(pieces, per_family: int = 20, seed: int = 0) -> list[tuple[str, str, Song, int]]:
    """(family, piece id, song, b) for the pieces' openings, then further windows where a family is short."""
    rng = np.random.default_rng(seed)
    by_fam: dict[str, list] = {f: [] for f in FAMILIES}
    for p in pieces:
        f = family_of(p.id)
        if f is None:
            continue
        bl = song_bars(p.song)
        if len(bl) >= 8 and p.song.note_count >= 16:
            by_fam[f].append((p, bl))
    out = []
    for f, items in by_fam.items():
        if len(items) > per_family:
            idx = np.sort(rng.choice(len(items), per_family, replace=False))
            items = [items[i] for i in idx]
        chosen, b = [], 4
        while len(chosen) < per_family and items:
            added = False
            for p, bl in items:
                if len(chosen) >= per_family:
                    break
                if len(bl) >= b + 4 and notes_in(p.song, bl[b].start, bl[b + 3].end) \
                        and len(notes_in(p.song, bl[b - 4].start, bl[b].start)) >= 8:
                    chosen.append((f, p.id, p.song, b))
                    added = True
            if not added:
                break
            b += 6 if f == "keyboard" else 8
        out += chosen
    return out


def run(wins, continue_fn, seeds=(1, 2, 3), bars: int = 4, log=None) -> list[dict]:
    """One row per window and seed. ``continue_fn(prompt, bars, from_bar, seed) -> Song``;
    None for the copy baseline."""
    rows = []
    for fam, pid, song, b in wins:
        bl = song_bars(song)
        start = bl[b].start
        last = b + bars - 1
        real_end = bl[last].end if last < len(bl) else None
        prompt = truncate(song, start)
        lines = [is_single_line([n for n in tr.notes if n.start < start][-64:], song.ppq) and not tr.is_drum
                 for tr in song.tracks]
        prompt_notes = notes_in(song, bl[b - 4].start, start)
        for s in seeds:
            if continue_fn is None:
                take = copy_take(song, bl[b - 4].start, start, real_end or start + bars * bl[b].length)
            else:
                take = continue_fn(prompt, bars, b + 1, s)
            row = {"family": fam, "piece": pid, "b": b, "seed": s, "lines": int(sum(lines))}
            if real_end is not None:
                row.update(window_figures(take, song, start, real_end, lines))
            tb = song_bars(take, until=max(take.end_tick, 1))
            lo = tb[b + bars - 4].start if len(tb) > b + bars - 4 else start
            hi = tb[b + bars - 1].end if len(tb) > b + bars - 1 else take.end_tick
            row["key_corr"] = key_corr(notes_in(take, lo, hi), prompt_notes)
            if real_end is not None:
                row["key_corr_real"] = key_corr(notes_in(song, lo, hi), prompt_notes)
            rows.append(row)
        if log:
            log(f"{fam} {pid} bar {b + 1}")
    return rows


def _per_seed(rows) -> dict:
    out = {"windows": len(rows), "key_corr": float(np.mean([r["key_corr"] for r in rows]))}
    ov = [r for r in rows if "overlap_total" in r]
    if ov:
        out["overlap"] = sum(r["overlap_bad"] for r in ov) / max(1, sum(r["overlap_total"] for r in ov))
        for k in ("pitch_oa", "dur_oa", "density"):
            out[k] = float(np.mean([r[k] for r in ov]))
        mo = [r for r in ov if "motion_oa" in r]
        for k in ("motion_oa", "steps", "steps_real") if mo else ():
            out[k] = float(np.mean([r[k] for r in mo]))
        pr = [r for r in ov if "par" in r]
        if pr and sum(r["par_notes"] for r in pr):
            out["parallels"] = 1000 * sum(r["par"] for r in pr) / sum(r["par_notes"] for r in pr)
            out["parallels_real"] = 1000 * sum(r["par_real"] for r in pr) / max(1, sum(r["par_real_notes"] for r in pr))
    real = [r["key_corr_real"] for r in rows if "key_corr_real" in r]
    if real:
        out["key_corr_real_bars"] = float(np.mean(real))
    return out


def summarize(rows: list[dict]) -> dict:
    """Per family (and "all"): each figure's mean over seeds and its standard deviation over seeds."""
    res = {}
    for fam in FAMILIES + ("all",):
        fr = [r for r in rows if fam == "all" or r["family"] == fam]
        if not fr:
            continue
        per = [_per_seed([r for r in fr if r["seed"] == s]) for s in sorted({r["seed"] for r in fr})]
        res[fam] = {k: round(float(np.mean([p[k] for p in per])), 4) for k in per[0] if all(k in p for p in per)}
        res[fam].update({f"{k}_sd": round(float(np.std([p[k] for p in per])), 4)
                         for k in ("overlap", "pitch_oa", "dur_oa", "density", "key_corr", "parallels", "motion_oa")
                         if all(k in p for p in per)})
        res[fam]["windows"] = per[0]["windows"]
    return res


def load_pieces(extra_keyboard: bool = True):
    """The test split's pieces (cached corpus), plus the valid split's keyboard pieces: the test
    split holds a single keyboard piece (valid pieces were not trained on either)."""
    from ..corpus import load_corpus

    pieces = load_corpus("test", build=False)
    if extra_keyboard:
        pieces += [p for p in load_corpus("valid", build=False) if family_of(p.id) == "keyboard"]
    return pieces


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studio.ml.continuation.families",
                                 description="Continuation figures per corpus family against the real next bars.")
    ap.add_argument("--bars", type=int, default=4)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--per-family", type=int, default=20)
    ap.add_argument("--openings-only", action="store_true")
    ap.add_argument("--copy", action="store_true", help="the copy-the-prompt baseline instead of the model")
    ap.add_argument("--options", default="{}", help="JSON: keyword arguments for continue_song")
    ap.add_argument("--out", help="write rows and summary (JSON) here")
    ap.add_argument("--card", metavar="KEY", help="also put the summary into the model card under "
                                                  "metrics.families.KEY")
    a = ap.parse_args(argv)
    from .api import continue_song

    opts = json.loads(a.options)
    wins = windows(load_pieces(), a.per_family)
    if a.openings_only:
        wins = [w for w in wins if w[3] == 4]
    if not wins:
        print("no held-out pieces in the corpus cache (python -m studio.ml.corpus --build)", file=sys.stderr)
        return 1
    fn = None if a.copy else (lambda song, bars, from_bar, seed: continue_song(
        song, bars=bars, from_bar=from_bar, seed=seed, **opts)[0])
    t0 = time.time()
    rows = run(wins, fn, [int(s) for s in a.seeds.split(",")], a.bars,
               log=lambda m: print(m, file=sys.stderr, flush=True))
    report = {"bars": a.bars, "options": opts, "copy": a.copy, "seconds": round(time.time() - t0, 1),
              "summary": summarize(rows), "rows": rows}
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(report, fh, indent=1)
    if a.card:
        write_card(a.card, report)
    print(json.dumps(report["summary"], indent=1))
    return 0


def write_card(key: str, report: dict, folder=None) -> None:
    """Merge a run's summary into ``card.json`` under ``metrics.families.<key>``."""
    from .. import cards
    from .api import model_folder

    folder = folder or model_folder()
    card = cards.read(folder)
    fam = card.setdefault("metrics", {}).setdefault("families", {})
    fam[key] = {"bars": report["bars"], "options": report["options"], "copy_baseline": report["copy"],
                "seeds": sorted({r["seed"] for r in report["rows"]}), **report["summary"]}
    fam["how"] = ("python -m studio.ml.continuation.families (test-split windows per corpus family, the real "
                  "next bars; figures averaged over windows, sd over seeds; see the module's notes)")
    cards.write(folder, card)


if __name__ == "__main__":
    sys.exit(main())
