"""Measuring the continuation model on the held-out (test) split: what ``studio eval continuation`` prints.

* NLL per token (nats) and perplexity over every token of every test piece, each token
  predicted once, in windows of the model's context that restart at bar lines.
* Held-out 4-bar openings continued by 4 bars, compared with the prompt: pitch-class
  correlation, scale consistency of the new notes, note-density ratio new/prompt, share of
  new bars that merely copy a prompt bar, and whether two seeds give different takes.
  The same figures for the real bars 5-8 of each piece are given as the corpus reference.
* Sampling speed (tokens/s, batch 1) with and without the KV cache, and the wall time of a
  whole ``studio continue --bars 4`` process.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from .. import cards
from ..child import run_studio
from . import tokens as T
from .model import tokens_per_second
from ...core.song import Song
from ...core.timing import bars as song_bars

MAJOR = (0, 2, 4, 5, 7, 9, 11)


# ---- note statistics ----------------------------------------------------------------------------
def pc_histogram(notes) -> np.ndarray:
    h = np.zeros(12)
    for n in notes:
        h[n.pitch % 12] += n.duration
    return h


def pc_correlation(a, b) -> float:
    ha, hb = pc_histogram(a), pc_histogram(b)
    if ha.std() == 0 or hb.std() == 0:
        return 0.0
    return float(np.corrcoef(ha, hb)[0, 1])


def best_scale(notes) -> tuple[int, float]:
    """(tonic of the major scale holding the most notes, that share); minor keys share the sets."""
    if not notes:
        return 0, 0.0
    pcs = np.array([n.pitch % 12 for n in notes])
    shares = [np.isin(pcs, [(t + s) % 12 for s in MAJOR]).mean() for t in range(12)]
    t = int(np.argmax(shares))
    return t, float(shares[t])


def in_scale_share(notes, tonic: int) -> float:
    if not notes:
        return 0.0
    scale = {(tonic + s) % 12 for s in MAJOR}
    return float(np.mean([n.pitch % 12 in scale for n in notes]))


def bar_patterns(song: Song, bl, lo: int, hi: int) -> list[frozenset]:
    """Each bar's notes as (track, pitch, onset in bar, duration), for bars ``lo``..``hi-1``."""
    out = []
    for b in bl[lo:hi]:
        out.append(frozenset((ti, n.pitch, n.start - b.start, n.duration)
                             for ti, tr in enumerate(song.tracks) for n in tr.notes if b.start <= n.start < b.end))
    return out


def notes_between(song: Song, start: int, end: int) -> list:
    return [n for tr in song.tracks for n in tr.notes if start <= n.start < end]


def compare(prompt_notes, new_notes, prompt_bars, new_bars) -> dict:
    tonic, _ = best_scale(prompt_notes)
    prompt_set = set().union(*prompt_bars) if prompt_bars else set()
    new_items = [x for b in new_bars for x in b]
    return {
        "pc_correlation": pc_correlation(prompt_notes, new_notes),
        "scale_consistency": best_scale(new_notes)[1],
        "in_prompt_key": in_scale_share(new_notes, tonic),
        "density_ratio": len(new_notes) / max(1, len(prompt_notes)),
        "copied_bars": float(np.mean([b in prompt_bars and len(b) > 0 for b in new_bars])) if new_bars else 0.0,
        "copied_notes": float(np.mean([x in prompt_set for x in new_items])) if new_items else 0.0,
        "empty": len(new_notes) == 0,
    }


def _mean(rows, key) -> float:
    return float(np.mean([r[key] for r in rows])) if rows else float("nan")


def summarize(rows: list[dict]) -> dict:
    dens = [r["density_ratio"] for r in rows]
    return {
        "pieces": len(rows),
        "pc_correlation": _mean(rows, "pc_correlation"),
        "scale_consistency": _mean(rows, "scale_consistency"),
        "in_prompt_key": _mean(rows, "in_prompt_key"),
        "density_ratio_mean": float(np.mean(dens)) if dens else float("nan"),
        "density_ratio_median": float(np.median(dens)) if dens else float("nan"),
        "density_ratio_within_0.5_2": float(np.mean([0.5 <= d <= 2 for d in dens])) if dens else float("nan"),
        "copied_bars": _mean(rows, "copied_bars"),
        "copied_notes": _mean(rows, "copied_notes"),
        "empty_continuations": int(sum(r["empty"] for r in rows)),
    }


# ---- held-out likelihood -----------------------------------------------------------------------
def heldout_windows(data: dict, ctx: int, split: str = "test") -> list[tuple[np.ndarray, int, int]]:
    """(window, first counted target, end of counted targets): every token of the split's pieces
    counted once, in windows of ``ctx + 1`` tokens that restart at bar lines."""
    from .train import SPLIT_CODE, piece_window

    items = []
    for p in np.nonzero(data["p_split"] == SPLIT_CODE[split])[0]:
        nb, b, h = int(data["p_nbars"][p]), 0, int(data["p_head"][p])
        while b < nb:
            w = piece_window(data, int(p), b, ctx + 1)
            lo = 0 if b == 0 else h + 3 - 1  # targets from the first note token of bar b on
            if len(w) < ctx + 1:
                items.append((w, lo, len(w) - 1))
                break
            last_bar = int(np.nonzero(w == T.BAR)[0][-1])
            nbars_in = int(np.sum(w == T.BAR))
            if nbars_in <= 1:  # one bar longer than the window: count it all, move on
                items.append((w, lo, len(w) - 1))
                b += 1
                continue
            end = last_bar  # count up to the cut bar's BAR and its own meta; its notes count next time
            while end + 1 < len(w) and T.TS0 <= w[end + 1] < T.POS0:
                end += 1
            items.append((w, lo, end))
            b += nbars_in - 1
    return items


@torch.no_grad()
def heldout_nll(model, data: dict, split: str = "test", max_windows: int | None = None, batch: int = 8) -> dict:
    """Every token of the split's pieces predicted once, in context windows that restart at bars."""
    items = heldout_windows(data, model.cfg.ctx, split)
    if max_windows:
        items = items[:max_windows]
    dev = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(items), batch):
        chunk = items[i: i + batch]
        L = max(len(w) for w, _, _ in chunk)
        arr = np.zeros((len(chunk), L), np.int64)
        weight = np.zeros((len(chunk), L - 1), bool)
        for r, (w, lo, hi) in enumerate(chunk):
            arr[r, : len(w)] = w
            weight[r, lo:hi] = True
        t = torch.from_numpy(arr).to(dev)
        logits, _ = model(t[:, :-1])
        nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), t[:, 1:], reduction="none")
        m = torch.from_numpy(weight).to(dev) & (t[:, 1:] != T.PAD)
        total += float(nll[m].sum())
        count += int(m.sum())
    nll = total / max(1, count)
    return {"nll_nats_per_token": nll, "perplexity": float(np.exp(nll)), "tokens": count, "windows": len(items)}


@torch.no_grad()
def decoder_nll(model, data: dict, windows: int = 40, split: str = "test") -> dict:
    """Held-out NLL through the cached decoding graphs that sampling uses on the CPU: the fp32
    ONNX graph and its int8-weight copy, each window fed token by token (teacher forcing).
    Also how often the two agree on the likeliest token, and their KL divergence (nats/token)."""
    from . import decode as continuation_ort

    items = heldout_windows(data, model.cfg.ctx, split)
    items = items[:: max(1, len(items) // windows)][:windows]  # spread over the split
    out = {"windows": len(items)}
    rows = {}
    for precision in ("fp32", "int8"):
        dec = continuation_ort.OrtDecoder(model, 1, precision)
        total, count, logps = 0.0, 0, []
        for w, lo, hi in items:
            cache = model.new_cache()
            first = model.forward_cached(torch.tensor([[int(w[0])]]), cache).float().numpy()
            dec.start(cache, 0)
            z = np.concatenate([first] + [dec.step(np.array([int(t)])) for t in w[1:hi]]).astype(np.float64)
            z -= z.max(-1, keepdims=True)
            z -= np.log(np.exp(z).sum(-1, keepdims=True))
            tgt = w[1:hi + 1]
            keep = np.arange(lo, hi)
            keep = keep[tgt[keep] != T.PAD]
            total -= float(z[keep, tgt[keep]].sum())
            count += len(keep)
            logps.append(z[keep])
        out[f"nll_{precision}"] = total / max(1, count)
        rows[precision] = np.concatenate(logps)
        out["tokens"] = count
    p, q = rows["fp32"], rows["int8"]
    out["argmax_agreement"] = float(np.mean(p.argmax(-1) == q.argmax(-1)))
    out["kl_fp32_to_int8"] = float(np.mean((np.exp(p) * (p - q)).sum(-1)))
    return out


# ---- speed -------------------------------------------------------------------------------------
def process_seconds(folder: Path, song: Song, bars: int = 4) -> tuple[float, float]:
    """Wall time and CPU time (user+system) of a whole ``python -m studio continue IN -o OUT --bars N`` process."""
    from ... import io

    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        models.mkdir()
        os.symlink(Path(folder).resolve(), models / "continuation")
        src, dst = Path(tmp) / "in.mid", Path(tmp) / "out.mid"
        io.save(song, src)
        r = run_studio("continue", str(src), "-o", str(dst), "--bars", str(bars), "--seed", "1", "--device", "cpu",
                       env={"STUDIO_MODELS": str(models)}, check=True)
        if not dst.exists():
            raise RuntimeError(f"studio continue wrote no file: {r.last_line()}")
        return r.seconds, r.cpu_seconds


# ---- the whole evaluation ----------------------------------------------------------------------
def truncate(song: Song, end: int) -> Song:
    s = song.copy()
    for tr in s.tracks:
        tr.notes = [n for n in tr.notes if n.start < end]
    return s


def evaluate(folder: str | Path, device: str = "auto", limit: int = 60, log=None, seeds=(1, 2),
             nll_windows: int | None = 400) -> dict:
    from .. import checkpoint
    from .model import build
    from .train import tokenize_pieces
    from .api import continue_song
    from ..corpus import load_corpus

    log = log or (lambda m: None)
    folder = Path(folder)
    dev = checkpoint.pick_device(device)
    model, meta = checkpoint.load(folder, build, dev)
    test = load_corpus("test", build=False)
    if not test:
        raise RuntimeError("no test pieces in the corpus cache (run `python -m studio.ml.corpus --build`)")
    data = tokenize_pieces(test)
    report = {"split": "test", "test_pieces": len(test), "test_tokens": int(data["p_len"].sum())}
    log(f"held-out NLL over {len(test)} test pieces ...")
    report["heldout"] = heldout_nll(model, data, "test", max_windows=nll_windows)
    log(json.dumps(report["heldout"]))
    if dev.type == "cpu":
        from . import decode as continuation_ort

        if continuation_ort.available():
            log("the same through the fp32 and int8 decoding graphs ...")
            report["decoding_graphs"] = decoder_nll(model, data)
            log(json.dumps(report["decoding_graphs"]))

    rows, raw_rows, ref_rows, differ, used = [], [], [], [], []
    for piece in test:
        if len(used) >= limit:
            break
        song = piece.song
        bl = song_bars(song)
        if len(bl) < 8:
            continue
        p_end, c_end = bl[4].start, bl[8].start if len(bl) > 8 else bl[7].end
        prompt_notes = notes_between(song, 0, p_end)
        real_new = notes_between(song, p_end, c_end)
        if len(prompt_notes) < 8 or not real_new:
            continue
        prompt = truncate(song, p_end)
        takes = []
        for s in seeds:
            takes.append(continue_song(prompt, bars=4, from_bar=5, seed=s, device=str(dev), folder=folder)[0])
        new_notes = notes_between(takes[0], p_end, c_end)
        rows.append(compare(prompt_notes, new_notes, bar_patterns(song, bl, 0, 4), bar_patterns(takes[0], bl, 4, 8)))
        alone = continue_song(prompt, bars=4, from_bar=5, seed=seeds[0], device=str(dev), folder=folder,
                              key_strength=0.0)[0]
        raw_rows.append(compare(prompt_notes, notes_between(alone, p_end, c_end), bar_patterns(song, bl, 0, 4),
                                bar_patterns(alone, bl, 4, 8)))
        ref_rows.append(compare(prompt_notes, real_new, bar_patterns(song, bl, 0, 4), bar_patterns(song, bl, 4, 8)))
        differ.append(not takes[0].notes_equal(takes[1]))
        used.append(piece.id)
        if len(used) % 10 == 0:
            log(f"continued {len(used)} openings")
    report["continuation"] = summarize(rows)
    report["continuation"]["two_seeds_differ"] = float(np.mean(differ)) if differ else float("nan")
    report["continuation"]["sampling"] = dict(meta.get("sampling", {}))
    report["continuation_model_alone"] = summarize(raw_rows)  # the same, without the key prior
    report["corpus_reference"] = summarize(ref_rows)
    report["openings"] = used

    prompt_song = truncate(test[0].song, song_bars(test[0].song)[min(4, len(song_bars(test[0].song)) - 1)].start)
    ptoks = T.encode(prompt_song).tokens[-128:]
    cpu_model = model if dev.type == "cpu" else checkpoint.load(folder, build, "cpu")[0]
    mem = int(meta.get("sampling", {}).get("memory", 0))
    c1, c1cpu = tokens_per_second(cpu_model, ptoks, 512, True, 1, memory=mem)
    c0, _ = tokens_per_second(cpu_model, ptoks, 512, True, 1)
    c2, _ = tokens_per_second(cpu_model, ptoks, 512, True, 2, memory=mem)
    f1, _ = tokens_per_second(cpu_model, ptoks, 512, True, 1, "onnx", memory=mem)
    u1, u1cpu = tokens_per_second(cpu_model, ptoks, 128, False, 1)
    report["speed"] = {
        "decoding": f"int8-weight ONNX graph (the CPU default), memory {mem} positions past the context",
        "tokens_per_s_cached_1_thread_no_memory": c0,
        "tokens_per_s_cached_1_thread": c1, "tokens_per_s_cached_1_thread_per_cpu_s": c1cpu,
        "tokens_per_s_cached_2_threads": c2, "tokens_per_s_cached_1_thread_fp32_graph": f1,
        "tokens_per_s_uncached_1_thread": u1, "tokens_per_s_uncached_1_thread_per_cpu_s": u1cpu,
        "load_average_1min": os.getloadavg()[0], "cpu_cores": os.cpu_count(),
    }
    try:
        wall, cpu = process_seconds(folder, prompt_song)
        report["speed"]["studio_continue_4_bars_wall_s"] = wall
        report["speed"]["studio_continue_4_bars_cpu_s"] = cpu
    except Exception as exc:  # report it rather than fail the whole evaluation
        report["speed"]["studio_continue_4_bars_error"] = str(exc)
    log(json.dumps(report["speed"]))
    report["params"] = sum(p.numel() for p in model.parameters())
    report["training"] = {k: meta.get(k) for k in ("step", "tokens", "valid_loss", "command")}
    return report


def write_card(folder: str | Path, report: dict) -> None:
    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text())
    card = {
        "name": "continuation",
        "model": "decoder-only Transformer, Music-Transformer relative attention (skewing), tied embeddings",
        "config": meta["config"],
        "params": report.get("params"),
        "tokens": "REMI-style: BOS, PROG per track slot; BAR, TS, TEMPO, POS (1/12 quarter), TRACK, PITCH, "
                  "VEL (8 bins), DUR (44 values); grammar-masked decoding (studio/ml/tokens.py)",
        "data": "music21 core corpus via studio.ml.corpus (files parsed so far when training ran), "
                "transposed by -5..+6 semitones during training",
        "split": "by work: sha1(work id) % 100 -> <90 train, <95 valid, else test (studio/ml/corpus.py)",
        "training": report.get("training"),
        "metrics": {k: report[k] for k in ("heldout", "decoding_graphs", "continuation", "continuation_model_alone",
                                           "corpus_reference", "speed") if k in report},
        "nll_unit": "nats per token",
        "evaluated_on": f"{report.get('test_pieces')} test pieces; {report['continuation']['pieces']} 4-bar openings",
        "command_eval": "studio eval continuation",
    }
    from .api import DEFAULT_TEMPERATURE, DEFAULT_TOP_P

    card["sampling_defaults"] = meta.get("sampling") or {"temperature": DEFAULT_TEMPERATURE, "top_p": DEFAULT_TOP_P}
    cards.write(folder, card, merge=True)  # keep what the trainer wrote (data sizes, runs); metrics are replaced
