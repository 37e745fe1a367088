"""Held-out figures for the variation model: loss per masked cell, the strength curve on held-out
passages (with and without locked notes), a string quartet timed through ``studio vary``; written
into eval.json and the model card."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from .. import cards

STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
PASSAGE_BARS = 4
LOCK_SHARE = 0.2  # share of the selected notes locked in the sanity runs


def passages(pieces, limit: int | None, seed: int = 7):
    """One held-out passage per piece: ``PASSAGE_BARS`` bars from the middle, all its tracks."""
    import random

    from ...core.timing import bars

    rng = random.Random(seed)
    out = []
    for cp in pieces:
        song = cp.song
        bs = bars(song)
        if len(bs) < PASSAGE_BARS + 2 or not song.note_count:
            continue
        a = rng.randrange(1, len(bs) - PASSAGE_BARS)
        start, end = bs[a].start, bs[a + PASSAGE_BARS - 1].end
        tracks = [i for i, t in enumerate(song.tracks) if not t.is_drum][:8]
        if not any(start <= n.start < end for i in tracks for n in song.tracks[i].notes):
            continue
        out.append((cp.id, song, start, end, tracks))
        if limit is not None and len(out) >= limit:
            break
    return out


def passage_metrics(src, out, start, end, tracks, locked) -> dict:
    """Kept share, scale consistency, density, length, context and locked-note exactness."""
    from . import roll as R

    def sel(song):
        return [(i, n) for i in tracks for n in song.tracks[i].notes if start <= n.start < end]

    s_notes, o_notes = sel(src), sel(out)
    src_keys = {(i, n.start, n.pitch) for i, n in s_notes if (i, n) not in locked}
    out_keys = {(i, n.start, n.pitch) for i, n in o_notes}
    key = R.song_key(src, start, [n.pitch for _, n in s_notes])
    scale = R.key_scale(key)
    in_key = lambda ns: sum(bool(scale[n.pitch % 12]) for _, n in ns) / max(1, len(ns))  # noqa: E731
    context_ok = all(
        [n for n in a.notes if not (i in tracks and start <= n.start < end)]
        == [n for n in b.notes if not (i in tracks and start <= n.start < end)]
        for i, (a, b) in enumerate(zip(src.tracks, out.tracks))
    ) and len(src.tracks) == len(out.tracks)
    locked_ok = all(n in set(out.tracks[i].notes) for i, n in locked)
    return {
        "kept": len(src_keys & out_keys) / max(1, len(src_keys)),
        "n_src": len(src_keys),
        "n_kept": len(src_keys & out_keys),
        "scale_out": in_key(o_notes),
        "scale_src": in_key(s_notes),
        "density": len(o_notes) / max(1, len(s_notes)),
        "length_ok": out.end_tick == src.end_tick,
        "context_ok": context_ok,
        "locked_ok": locked_ok,
    }


def strength_curve(model, items, strengths=STRENGTHS, seed: int = 0, lock: bool = False, log=None) -> dict:
    import numpy as np

    from .api import vary as vary_song
    from .eval_texture import locked_notes

    rows = {}
    for s in strengths:
        ms, times = [], []
        for j, (pid, song, start, end, tracks) in enumerate(items):
            locked = locked_notes(song, tracks, start, end, LOCK_SHARE if lock else 0.0, j)
            t0 = time.perf_counter()
            out = vary_song(song, s, start_tick=start, end_tick=end, tracks=tracks, locked=locked,
                            seed=seed + j, model=model)[0]
            times.append(time.perf_counter() - t0)
            ms.append(passage_metrics(song, out, start, end, tracks, locked))
        n_src = sum(m["n_src"] for m in ms)
        dens = np.array([m["density"] for m in ms])
        rows[str(s)] = {
            "kept": sum(m["n_kept"] for m in ms) / max(1, n_src),
            "scale_consistency": float(np.mean([m["scale_out"] for m in ms])),
            "scale_consistency_source": float(np.mean([m["scale_src"] for m in ms])),
            "density_mean": float(dens.mean()),
            "density_min": float(dens.min()),
            "density_max": float(dens.max()),
            "density_share_in_0.5_2": float(np.mean((dens >= 0.5) & (dens <= 2.0))),
            "length_unchanged": all(m["length_ok"] for m in ms),
            "context_exact": all(m["context_ok"] for m in ms),
            "locked_exact": all(m["locked_ok"] for m in ms),
            "seconds_per_passage": float(np.mean(times)),
        }
        if log:
            r = rows[str(s)]
            log(f"strength {s:.2f}: kept {r['kept']:.3f} scale {r['scale_consistency']:.3f} "
                f"(source {r['scale_consistency_source']:.3f}) density {r['density_mean']:.2f} "
                f"[{r['density_min']:.2f}, {r['density_max']:.2f}] context {r['context_exact']} "
                f"locked {r['locked_exact']} length {r['length_unchanged']} {r['seconds_per_passage']:.2f} s")
    return rows


def plot_strength(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [float(k) for k in curve]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
    ax.plot(xs, [curve[k]["kept"] for k in curve], "o-", color="C0", label="source notes kept (onset + pitch)")
    ax.plot(xs, [curve[k]["scale_consistency"] for k in curve], "s--", color="C1", label="scale consistency")
    ax.plot([0.25], [0.55], "v", color="grey", label="targets: >= 0.55 kept at 0.25, <= 0.6 at 0.75")
    ax.plot([0.75], [0.60], "^", color="grey")
    ax.set_xlabel("strength")
    ax.set_ylabel("share")
    ax.set_ylim(0, 1.05)
    ax2 = ax.twinx()
    ax2.plot(xs, [curve[k]["density_mean"] for k in curve], "d:", color="C2", label="note density / source (mean)")
    ax2.axhspan(0.5, 2.0, color="C2", alpha=0.06)
    ax2.set_ylim(0, 2.5)
    ax2.set_ylabel("density ratio (band: 0.5-2)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left")
    ax.set_title("Variation: strength curve on held-out passages")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)


def quartet_timing(song, start_bar: int = 5, device: str = "auto") -> dict:
    """Whole-process time of ``studio vary`` on 4 bars of a string quartet (a fresh interpreter)."""
    import tempfile

    from ... import io
    from ..child import run_studio

    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "quartet.mid"
        io.save(song, src)
        r = run_studio("vary", str(src), "-o", str(Path(d) / "out.mid"), "--strength", "0.5",
                       "--bars", f"{start_bar}:{start_bar + 3}", "--seed", "1", "--device", device, check=True)
    return {"seconds": r.seconds, "cpu_seconds": r.cpu_seconds, "load_average": os.getloadavg()[0],
            "command": f"studio vary quartet.mid -o out.mid --strength 0.5 --bars {start_bar}:{start_bar + 3} --seed 1"}


def in_process_timing(model, song, start, end, strength: float, repeat: int = 3) -> float:
    from .api import vary as vary_song

    vary_song(song, strength, start_tick=start, end_tick=end, seed=0, model=model)
    best = float("inf")
    for r in range(repeat):
        t0 = time.perf_counter()
        vary_song(song, strength, start_tick=start, end_tick=end, seed=r + 1, model=model)
        best = min(best, time.perf_counter() - t0)
    return best


def _quartet(pieces):
    """A string quartet movement: from the held-out pieces if there is one, else Haydn's op. 74/1."""
    for cp in pieces:
        if cp.id.startswith(("haydn/", "mozart/", "beethoven/")) and len(cp.song.tracks) == 4:
            return cp.id, cp.song
    from music21 import corpus

    from ..corpus import song_from_music21

    rel = "haydn/opus74no1/movement3.mxl"
    return rel, song_from_music21(corpus.parse(rel), rel)


def run_eval(weights=None, out=None, device="auto", limit=None, log=print) -> dict:
    import json

    from ...core.timing import bars
    from .. import checkpoint
    from . import train as vt
    from ..corpus import load_corpus
    from .api import load_model

    folder = Path(weights) if weights else checkpoint.model_dir("variation")
    out = Path(out) if out else folder
    out.mkdir(parents=True, exist_ok=True)
    model, meta, dev = load_model(device, folder)
    log(f"model from {folder} on {dev}")
    test = load_corpus("test", build=False)
    valid = load_corpus("valid", build=False)
    res = {"weights": str(folder), "device": str(dev)}
    # texture and readability, per strength and mode, on held-out passages of five kinds
    from types import SimpleNamespace

    from . import eval_texture as ET
    from .api import vary as vary_song

    def vary_fn(song, s, a, b, tracks, locked, seed, mode):
        return vary_song(song, s, start_tick=a, end_tick=b, tracks=tracks, locked=locked, seed=seed, model=model,
                         mode=mode)[0]

    log("texture and readability passages (test split):")
    tex = ET.passages(log=log)
    kinds: dict = {}
    for kind, *_ in tex:
        kinds[kind] = kinds.get(kind, 0) + 1
    res["texture_passages"] = {"split": "test", "bars": ET.BARS, "count": len(tex), "kinds": kinds}
    res["texture"] = ET.run(vary_fn, tex, log=log)
    log("with 20% of the selected notes locked:")
    res["texture_locked"] = ET.run(vary_fn, tex, strengths=(0.25, 0.5, 1.0), modes=("free",),
                                   lock_share=LOCK_SHARE, log=log)["free"]
    if test:
        test_p = [p for p in (vt.piece_from_song(cp.id, cp.song) for cp in test) if p is not None and p.n_steps >= 16]
        valid_p = [p for p in (vt.piece_from_song(cp.id, cp.song) for cp in valid)
                   if p is not None and p.n_steps >= 16]
        res["test_loss_nats_per_masked_cell"] = vt.evaluate_loss(model, vt.fixed_batches(test_p, 24, seed=99))
        res["valid_loss_nats_per_masked_cell"] = vt.evaluate_loss(model, vt.fixed_batches(valid_p, 24, seed=99))
        log(f"held-out loss: test {res['test_loss_nats_per_masked_cell']:.4f}, "
            f"valid {res['valid_loss_nats_per_masked_cell']:.4f} nats per masked cell")
        items = passages(test, limit if limit is not None else 60)
        res["passages"] = {"split": "test", "count": len(items), "bars": PASSAGE_BARS,
                           "pieces": sorted({pid.split("/")[0] for pid, *_ in items})}
        log(f"{len(items)} held-out passages of {PASSAGE_BARS} bars")
        res["strength_curve"] = strength_curve(model, items, log=log)
        log("with 20% of the selected notes locked:")
        res["strength_curve_locked"] = strength_curve(model, items, strengths=(0.25, 0.5, 1.0), lock=True, log=log)
    else:
        # no corpus cache: the loss (a property of the weights) is carried over from the last full
        # eval of these weights; the strength curve is read off the texture passages
        log("no corpus cache: held-out loss carried over from the last eval of these weights")
        with contextlib.suppress(OSError, ValueError):
            last = json.loads((folder / "eval.json").read_text())
            for k in ("test_loss_nats_per_masked_cell", "valid_loss_nats_per_masked_cell"):
                if k in last:
                    res[k] = last[k]
            res["loss_note"] = "carried over from the previous eval of the same weights (no corpus cache here)"
        res["strength_curve"] = {
            s: {"kept": r["all"]["kept"], "scale_consistency": r["all"]["scale_consistency"],
                "density_mean": r["all"]["density"], "context_exact": r["all"]["context_exact"],
                "locked_exact": r["all"]["locked_exact"], "seconds_per_passage": r["all"]["seconds_per_passage"]}
            for s, r in res["texture"]["free"].items()}
    plot_strength(res["strength_curve"], out / "strength_curve.png")
    held = [SimpleNamespace(id=pid, song=song) for kind, pid, song, *_ in tex if kind == "quartet"]
    qid, qsong = _quartet(held + test + valid)
    if qsong.tracks:
        bs = bars(qsong)
        start_bar = min(5, max(1, len(bs) - 8))
        res["quartet"] = qid
        qt = quartet_timing(qsong, start_bar, device)
        res["cli_seconds_4_bars_quartet"] = qt["seconds"]
        res["cli_cpu_seconds_4_bars_quartet"] = qt["cpu_seconds"]
        res["load_average_during_timing"] = qt["load_average"]
        a, b = bs[start_bar - 1].start, bs[min(len(bs), start_bar + 7) - 1].end
        res["in_process_seconds_8_bars_quartet_s0.5"] = in_process_timing(model, qsong, a, b, 0.5)
        res["in_process_seconds_8_bars_quartet_s1"] = in_process_timing(model, qsong, a, b, 1.0)
        log(f"quartet {qid}: studio vary 4 bars {qt['seconds']:.2f} s wall, {qt['cpu_seconds']:.2f} s CPU "
            f"(whole process, load average {qt['load_average']:.1f}); "
            f"8 bars in-process {res['in_process_seconds_8_bars_quartet_s0.5']:.2f} s at 0.5, "
            f"{res['in_process_seconds_8_bars_quartet_s1']:.2f} s at 1")
    (out / "eval.json").write_text(json.dumps(res, indent=2))
    write_card(folder, meta, res)
    return res


def write_card(folder: Path, meta: dict, res: dict) -> None:
    import json

    from .train import INFER_UNIT, WINDOW

    tr = meta.get("train", {})
    card = {
        "name": "variation",
        "task": "rewrite a selection of a multi-track piano roll; strength = share of beats re-noised",
        "model": {"kind": "absorbing-state (mask) discrete diffusion, axial Transformer over (track, step) columns",
                  "config": meta.get("config"), "parameters": tr.get("params"),
                  "weights": "model.safetensors (fp16)"},
        "grid": {"step": "sixteenth note", "tracks": "up to 8", "pitches": "MIDI 21-108",
                 "cells": "rest / onset / hold per pitch", "window_steps": WINDOW, "noise_unit_steps": INFER_UNIT},
        "data": {"source": "music21 core corpus via studio.ml.corpus (cached Songs)",
                 "split": "by work: sha1(work) -> 90/5/5 train/valid/test (see studio/ml/corpus.py)",
                 "augmentation": "random transposition by -6..+5 semitones per window",
                 "train_pieces": tr.get("train_pieces"), "valid_pieces": tr.get("valid_pieces"),
                 "note": "the corpus cache was still filling while the model trained: training started on "
                         "Bach and Monteverdi and took in new pieces (folk tunes) every ten minutes; "
                         "train_pieces is the count at the end"},
        "sampler": {"kind": "whole notes, rests and chords drawn on each track's own grid by forward-filtering / "
                            "backward-sampling over segmentations, scored by the network's cells; revealed over "
                            "ceil(8 * strength) network calls (studio/ml/variation/sample.py)",
                    "vocabulary": "grid = coarsest division every selected onset and length is a multiple of; "
                                  "lengths = those the selection uses (from strength 0.5: any multiple of the grid "
                                  "between its shortest and longest); rests of the lengths the line rests for, any "
                                  "grid length where it was silent; one-voice tracks one pitch at a time, chordal "
                                  "tracks the chord sizes they use; register prior from the selection",
                    "modes": {"free": "new rhythm and pitches", "rhythm": "new pitches on the same onsets, lengths "
                              "and chord sizes", "pitches": "the same pitches in order on a new rhythm (grid halved)"}},
        "training": {k: tr.get(k) for k in ("steps", "minutes_trained", "lr", "tokens", "seed", "threads", "command")},
        "metrics": res,
        "commands": {"train": tr.get("command") or "studio train variation --minutes 65",
                     "eval": "studio eval variation"},
    }
    cards.write(folder, card)


