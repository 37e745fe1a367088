"""Held-out figures for the harmonizer and the ForwardBach baseline: NLL, voice-leading fault rates
and texture figures (``figures``) against Bach's own on the test chorales given Bach's soprano, the
same on non-Bach melodies (folk songs), latency; written into the model cards.

NLL is reported in nats per cell, a cell being one (voice, 16th step) token.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import cards, checkpoint
from . import data as ch
from . import baseline as fb
from . import figures
from .model import Harmonizer, metric_classes
from .train import eval_windows, harmonizer_nll



@torch.no_grad()
def chain_nll(model: Harmonizer, windows, device, blocks: int = 8, batch: int = 32, seed: int = 7) -> float:
    """Joint NLL estimate (nats/cell) of alto/tenor/bass given the soprano: the hidden cells in
    ``blocks`` random blocks, each scored given the soprano and the blocks before it."""
    model.eval()
    tok, met, fer, pad = windows
    g = torch.Generator().manual_seed(seed)
    total, cells = 0.0, 0
    for s in range(0, len(tok), batch):
        t, m, f, p = (a[s : s + batch].to(device) for a in (tok, met, fer, pad))
        B, _, L = t.shape
        assign = torch.randint(0, blocks, (B, 4, L), generator=g).to(device)
        assign[:, 0] = -1
        for k in range(blocks):
            given = (assign < k) | p[:, None, :]
            target = (assign == k) & ~p[:, None, :]
            logits = model(t, given, m, f, p)
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1), reduction="none").view(B, 4, L)
            total += float((nll * target).sum())
            cells += int(target.sum())
    return total / max(1, cells)


def chorale_parts(tokens: np.ndarray, shift: int = 0) -> list:
    """Four note lists (ticks at PPQ 480) from a [4, T] token grid."""
    from .api import tokens_to_notes

    return [tokens_to_notes(tokens[v], 0, 120, shift) for v in range(4)]


def chorale_melody(c: ch.Chorale):
    """The soprano of a chorale as a one-track Song on the chorale's grid (bar lines where the
    chorale has them: a pickup keeps its place in the bar)."""
    from ...core.song import Song, TimeSignature, Track

    meter = {16: (4, 4), 12: (3, 4), 24: (3, 2), 8: (2, 4)}.get(int(c.bar[0]), (4, 4))
    off = int(c.pos[0]) * 120
    notes = [n.moved(off) for n in chorale_parts(c.voices)[0]]
    return Song(title=c.name, tracks=[Track(name="Melody", notes=notes)], time_signatures=[TimeSignature(0, *meter)])


def beat_ticks(c: ch.Chorale) -> list[int]:
    return [t * 120 for t in range(c.length) if c.pos[t] % max(1, c.beat[t]) == 0]


# Non-Bach melodies (Essen collection in music21's corpus: children's songs, Erk's and Böhme's
# German folk songs; most in major keys, so the final-cadence figure means something), plus
# "Ode to Joy" in C as a musician would type it.
FOLK_SOURCES = (("essenFolksong/kinder0", 16), ("essenFolksong/erk5", 12), ("essenFolksong/boehme10", 8))
FOLK_METERS = ("2/4", "3/4", "4/4", "3/2")
ODE_TO_JOY = ((64, 4), (64, 4), (65, 4), (67, 4), (67, 4), (65, 4), (64, 4), (62, 4), (60, 4), (60, 4), (62, 4),
              (64, 4), (64, 6), (62, 2), (62, 8), (64, 4), (64, 4), (65, 4), (67, 4), (67, 4), (65, 4), (64, 4),
              (62, 4), (60, 4), (60, 4), (62, 4), (64, 4), (62, 6), (60, 2), (60, 8))  # (pitch, 16ths)


def _folk_from_corpus(name: str, count: int) -> list[dict]:
    """The first ``count`` melodies of corpus file ``name`` in a meter of ``FOLK_METERS`` that sit on
    the 16th grid (pickups keep their place in the bar)."""
    from music21 import corpus

    data = []
    for s in corpus.parse(name).scores:
        sigs = list(s.recurse().getElementsByClass("TimeSignature"))
        if len(s.parts) > 1 or not sigs or {t.ratioString for t in sigs} != {sigs[0].ratioString}:
            continue
        if sigs[0].ratioString not in FOLK_METERS:
            continue
        measures = list(s.recurse().getElementsByClass("Measure"))
        pad = float(measures[0].paddingLeft or 0) if measures else 0.0
        notes = [n for n in s.flatten().notes if not n.duration.isGrace]
        if not 16 <= len(notes) <= 90 or any(n.isChord for n in notes):
            continue
        ev = [((float(n.offset) + pad) * 4, float(n.duration.quarterLength) * 4, n.pitch.midi) for n in notes]
        if any(abs(a - round(a)) > 1e-6 or abs(d - round(d)) > 1e-6 or d <= 0 for a, d, _ in ev):
            continue
        num, den = sigs[0].numerator, sigs[0].denominator
        data.append({"source": name, "title": s.metadata.title if s.metadata else "", "meter": [num, den],
                     "notes": [[int(round(a)) * 120, int(p), int(round(d)) * 120] for a, d, p in ev]})
        if len(data) == count:
            break
    return data


def folk_melodies() -> list:
    """The evaluation's non-Bach melodies as Songs (one track, the melody). Cached as JSON."""
    from ...core.song import Note, Song, TimeSignature, Track

    path = ch.cache_dir() / "folk_melodies_v2.json"
    if path.exists():
        data = json.loads(path.read_text())
    else:
        data = [m for name, count in FOLK_SOURCES for m in _folk_from_corpus(name, count)]
        t, notes = 0, []
        for p, d in ODE_TO_JOY:
            notes.append([t * 120, p, d * 120])
            t += d
        data.append({"source": "hand-entered", "title": "Ode to Joy (C major)", "meter": [4, 4], "notes": notes})
        path.write_text(json.dumps(data))
    songs = []
    for d in data:
        t = Track(name="Melody", notes=sorted(Note(a, p, dur) for a, p, dur in d["notes"]))
        songs.append(Song(title=d["title"], tracks=[t], time_signatures=[TimeSignature(0, *d["meter"])]))
    return songs


def quarter_ticks(c: ch.Chorale) -> list[int]:
    """Ticks of the quarter notes of the bar (where the texture figures look for beats)."""
    return [t * 120 for t in range(c.length) if c.pos[t] % 4 == 0]


def _song_quarters(song) -> list[int]:
    from ...core.timing import bars

    return [t for b in bars(song) for t in range(b.start, b.end, song.ppq)]


def written_out_of_range(parts, melody_voice: int = 0) -> tuple[int, int]:
    """(notes of the written voices outside their SATB range, notes of the written voices): every
    voice but the melody's."""
    from ...core import voiceleading as vl

    n = bad = 0
    for v in (v for v in range(4) if v != melody_voice):
        lo, hi = vl.SATB_RANGE[vl.VOICE_NAMES[v]]
        n += len(parts[v])
        bad += sum(1 for x in parts[v] if not lo <= x.pitch <= hi)
    return bad, n


def _add(acc: dict, counts: dict) -> None:
    for k, v in counts.items():
        acc[k] = acc.get(k, 0) + v


def _song_beats(song) -> list[int]:
    from ...core.timing import bars

    out = []
    for b in bars(song):
        bt = b.meter.beat_ticks(song.ppq)
        out += list(range(b.start, b.end, bt))
    return out


def _figures(vl_counts: dict, texture: list[dict], out_of_range: list[int]) -> dict:
    """Voice-leading rates (summed counts), texture figures (mean over pieces), written voices out of range."""
    from ...core import voiceleading as vl

    return {**vl.rates(vl_counts), "notes": vl_counts.get("notes", 0), **figures.summarize(texture),
            "written_out_of_range_pct": 100.0 * out_of_range[0] / max(1, out_of_range[1])}


def _song_parts(song) -> list:
    return [t.notes for t in song.tracks[:4]]


def _latency(test: list[ch.Chorale], device: str, weights) -> dict:
    """Seconds to harmonize 8 bars in-process (2 threads) and a 16-bar melody as a whole process."""
    import os
    import statistics
    import tempfile

    from ... import io
    from ...core.song import Song, Track
    from ..child import run_studio
    from . import api

    c = next(x for x in test if int(x.bar[0]) == 16 and x.length >= 256)
    step0 = int((16 - int(c.pos[0])) % 16)  # start on a downbeat

    def melody(bars_: int) -> Song:
        notes = [n for n in chorale_parts(c.voices[:, step0 : step0 + 16 * bars_])[0]]
        return Song(title="latency", tracks=[Track(name="Melody", notes=notes)])

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        s8 = melody(8)
        api.harmonize(s8, seed=0, device=device, weights=weights)  # load and warm up
        runs = {}
        for k in (1, api.DEFAULTS["candidates"]):
            times = []
            for r in range(5):
                t0 = time.perf_counter()
                api.harmonize(s8, seed=r, candidates=k, device=device, weights=weights)
                times.append(time.perf_counter() - t0)
            runs[f"in_process_8_bars_k{k}_s"] = round(statistics.median(times), 3)
    finally:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "melody16.mid"), os.path.join(d, "out.mid")
        io.save(melody(16), src)
        env = {"STUDIO_MODELS": str(Path(weights).resolve().parent)} if weights else None
        times = [run_studio("harmonize", src, "-o", dst, "--seed", "0", env=env, check=True).seconds for _ in range(3)]
        runs["process_16_bars_s"] = round(statistics.median(times), 3)
    runs["threads_in_process"] = 2
    runs["load_average_1min"] = round(os.getloadavg()[0], 2)  # the machine is shared: context for the figures
    return runs


def evaluate(weights=None, limit: int | None = None, device: str = "auto", out=None, latency: bool = True,
             log=lambda m: print(m, file=__import__("sys").stderr)) -> dict:
    """Every figure of the harmonizer's card: held-out NLL, voice-leading rates, folk melodies, latency."""
    from ...core import satb
    from ...core import voiceleading as vl
    from . import api
    from .model import build

    dev = checkpoint.pick_device(device)
    if dev.type == "cpu":
        torch.set_num_threads(1)
    folder = Path(weights) if weights else checkpoint.model_dir("harmonizer")
    fb_folder = folder.parent / "forward_bach" if folder.name == "harmonizer" else folder.with_name(folder.name + "_forward_bach")
    model, meta = checkpoint.load(folder, build, dev)
    fbm, fb_meta = checkpoint.load(fb_folder, fb.build, dev) if (fb_folder / "model.safetensors").exists() else (None, {})
    data = ch.split(ch.load_chorales())
    report: dict = {"unit": "nats per (voice, 16th step) cell; a cell is one of 99 tokens (rest, onset or hold of a pitch)"}
    t0 = time.time()
    nll = {}
    for side in ("valid", "test"):
        w = eval_windows(data[side], model.cfg.max_len)
        h = harmonizer_nll(model, w, dev)
        nll[side] = {"harmonizer_given_soprano": h["given_soprano"], "harmonizer_random_mask": h["random_mask"],
                     "harmonizer_joint_8_blocks": chain_nll(model, w, dev)}
        if fbm is not None:
            nll[side]["forward_bach_given_soprano"] = fb.nll(fbm, fb.dataset(data[side], fbm.cfg.context), dev)
    report["nll"] = nll
    log(f"NLL done in {time.time() - t0:.0f}s: {nll}")
    test = data["test"][: limit or None]
    names = ("bach", "harmonizer", "forward_bach")
    acc = {k: {} for k in names}
    tex = {k: [] for k in names}
    oor = {k: [0, 0] for k in names}

    def score(name, parts, beats, quarters, melody_voice=0):
        _add(acc[name], vl.measure(parts, 480, beats))
        tex[name].append(figures.piece(parts, 480, quarters))
        b, n = written_out_of_range(parts, melody_voice)
        oor[name][0] += b
        oor[name][1] += n

    for i, c in enumerate(test):
        beats, quarters = beat_ticks(c), quarter_ticks(c)
        score("bach", chorale_parts(c.voices), beats, quarters)
        sop = c.voices[0]
        metric = metric_classes(c.pos, c.bar, c.beat)
        # the melody as a user would give it (no fermatas), through the product's path on this device
        res = api.harmonize(chorale_melody(c), seed=i, device=str(dev), weights=folder, warn=lambda m: None)
        off = int(c.pos[0]) * 120
        score("harmonizer", [[n.moved(-off) for n in t.notes] for t in res.tracks[:4]], beats, quarters)
        if fbm is not None:
            score("forward_bach", chorale_parts(fb.harmonize_tokens(fbm, sop, metric)), beats, quarters)
    report["test_chorales"] = {"count": len(test), **{k: _figures(acc[k], tex[k], oor[k]) for k in names if acc[k]}}
    log(f"chorales done in {time.time() - t0:.0f}s")
    folk = folk_melodies()
    names = ("harmonizer", "forward_bach")
    acc = {k: {} for k in names}
    tex = {k: [] for k in names}
    oor = {k: [0, 0] for k in names}
    for i, song in enumerate(folk):
        res = api.harmonize(song, seed=i, device=str(dev), weights=folder, warn=lambda m: None)
        beats, quarters = _song_beats(res), _song_quarters(res)
        mv = satb.place_melody([n.pitch for n in song.tracks[0].notes]).voice
        score("harmonizer", _song_parts(res), beats, quarters, mv)
        if fbm is not None:
            line = api._quantize(song.tracks[0].notes, 120, "melody", lambda m: None)
            first, end = line[0][0], line[-1][1]
            shift = api.choose_shift([p for _, _, p in line])
            sop = api._line_tokens(line, first, end - first, shift)
            pos, blen, beat = api.meter_arrays(song, first, end - first)
            g = fb.harmonize_tokens(fbm, sop, metric_classes(pos, blen, beat))
            parts = [song.tracks[0].notes] + [api.tokens_to_notes(g[v], first, 120, shift) for v in (1, 2, 3)]
            score("forward_bach", parts, beats, quarters)
    report["folk_melodies"] = {"source": "music21 corpus " + ", ".join(n for n, _ in FOLK_SOURCES) + "; Ode to Joy",
                               "count": len(folk), "titles": [s.title for s in folk],
                               **{k: _figures(acc[k], tex[k], oor[k]) for k in names if acc[k]}}
    log(f"folk done in {time.time() - t0:.0f}s")
    if latency:
        report["latency"] = _latency(data["test"], str(dev), folder)
    report["sampling"] = dict(api.DEFAULTS)
    report["model"] = {"params": model.num_params(), "config": meta.get("config"), "train_steps": meta.get("steps"),
                       "train_minutes": meta.get("minutes"), "train_command": meta.get("command"),
                       "forward_bach_params": fbm.num_params() if fbm is not None else None,
                       "forward_bach_steps": fb_meta.get("steps")}
    report["seconds"] = round(time.time() - t0, 1)
    _write_card(folder, fb_folder, meta, fb_meta, report, data)
    if out:
        p = Path(out)
        p = p if p.suffix == ".json" else p / "harmonizer_eval.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(report, indent=2))
    return report


def _write_card(folder: Path, fb_folder: Path, meta: dict, fb_meta: dict, report: dict, data: dict) -> None:
    split = {k: len(v) for k, v in data.items()}
    common = {
        "data": "Bach chorales from music21's corpus (music21.corpus.chorales.Iterator), the four-part ones on a "
                "16th grid: " + f"{sum(split.values())} chorales; transposed per example to every shift in -6..+6 "
                "that keeps each voice in range",
        "split": {**split, "rule": "by tune (first 12 soprano intervals); held-out lists frozen in studio/ml/chorales.py",
                  "valid": sorted(c.name for c in data["valid"]), "test": sorted(c.name for c in data["test"])},
        "eval_command": "studio eval harmonizer",
    }
    patch = (meta.get("config") or {}).get("arch") == "patch"
    kind = ("Coconet-style masked Transformer over the 4 x T SATB grid, one position per beat (4 sixteenth steps "
            "x 4 voices), relative-position attention" if patch else
            "Coconet-style masked Transformer over the 4 x T SATB grid")
    card = {"name": "harmonizer", "kind": kind, **common,
            "steps": meta.get("steps"), "minutes": meta.get("minutes"), "command": meta.get("command"),
            "valid_history": meta.get("history"), "metrics": report}
    cards.write(folder, card, merge=True)  # keeps what the trainer and earlier notes wrote there
    if (fb_folder / "model.safetensors").exists():
        fcard = {"name": "forward_bach", "kind": "feed-forward baseline: soprano window in, alto/tenor/bass out",
                 **common, "steps": fb_meta.get("steps"), "minutes": fb_meta.get("minutes"),
                 "command": fb_meta.get("command"),
                 "metrics": {"nll": {s: {"given_soprano": v.get("forward_bach_given_soprano")} for s, v in report["nll"].items()},
                             "test_chorales": report["test_chorales"].get("forward_bach"),
                             "folk_melodies": report["folk_melodies"].get("forward_bach")}}
        cards.write(fb_folder, fcard)


def table(report: dict) -> str:
    rows = [("figure", "Bach", "harmonizer", "ForwardBach", "target")]
    tc, fm = report["test_chorales"], report["folk_melodies"]
    spec = [("offbeat_motion", "off-beat motion", ">= 0.45"), ("bass_by_step", "bass moves by step", ">= 0.58"),
            ("sevenths_on_beats", "seventh chords on beats", ">= 0.09"),
            ("inner_onsets_per_beat", "inner-voice onsets per beat", ""),
            ("distinct_sonorities", "distinct sonorities per piece", ""),
            ("final_authentic_cadence", "final authentic cadence", ""),
            ("final_authentic_cadence_major", "final authentic cadence, major keys", ">= 0.6"),
            ("parallels_per_1000_notes", "parallel 5ths+8ves / 1000 notes", "<= 2.5"),
            ("crossing_pct", "frames with crossing %", "<= 5"), ("spacing_pct", "spacing > octave %", "<= 5"),
            ("written_out_of_range_pct", "written voices out of range %", "<= 1"),
            ("tertian_pct", "tertian beats %", "")]
    f = lambda d, k: "-" if not d or d.get(k) is None else f"{d[k]:.3f}"  # noqa: E731
    for k, label, target in spec:
        rows.append((f"test chorales: {label}", f(tc.get("bach"), k), f(tc.get("harmonizer"), k), f(tc.get("forward_bach"), k), target))
    for k, label, target in spec:
        rows.append((f"folk melodies: {label}", "", f(fm.get("harmonizer"), k), f(fm.get("forward_bach"), k), target))
    for side, v in report["nll"].items():
        rows.append((f"{side} NLL given soprano (nats/cell)", "", f"{v['harmonizer_given_soprano']:.3f}",
                     f"{v['forward_bach_given_soprano']:.3f}" if "forward_bach_given_soprano" in v else "-", ""))
        rows.append((f"{side} NLL joint, 8 blocks (nats/cell)", "", f"{v['harmonizer_joint_8_blocks']:.3f}", "", ""))
    for k, v in report.get("latency", {}).items():
        rows.append((f"latency {k}", "", str(v), "", "<= 0.5 s (8 bars), <= 3 s (process)" if "8_bars_k4" in k or "process" in k else ""))
    w = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w[i]) for i, c in enumerate(r)) for r in rows)
