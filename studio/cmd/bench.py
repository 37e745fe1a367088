"""``studio bench``: one run that measures the speed and memory goals and prints a table.

Each row has the figure, the target from the issues, and where there is one, the naive
version measured in the same run (so the ratio holds on any machine).  Sections that cannot
run here (no weights yet, no audio library) say why instead of failing the whole run.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..ml.child import run_python, run_studio


@dataclass
class Row:
    name: str
    value: float | None
    unit: str
    target: str = ""
    naive: float | None = None  # the same figure for the naive way, when there is one
    note: str = ""
    device: str = "cpu"

    def ok(self) -> str:
        """'yes' / 'no' / '' by parsing targets like '<= 0.5' or '>= 50'."""
        if self.value is None or not self.target:
            return ""
        op, _, num = self.target.partition(" ")
        try:
            t = float(num)
        except ValueError:
            return ""
        return "yes" if (self.value <= t if op == "<=" else self.value >= t) else "no"


def _best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


# ---- test material --------------------------------------------------------------------------
def k525_path() -> Path:
    import music21

    return Path(music21.__file__).parent / "omr" / "k525MIDIMvt1.mid"


# ---- sections --------------------------------------------------------------------------------
def bench_files(repeat: int) -> list[Row]:
    from ..io import load, save
    from ..ui.bench import ten_thousand_notes  # the editor's figures measure the same song

    song = ten_thousand_notes()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "10k.mid"
        save(song, path)
        t = _best_of(lambda: load(path), repeat)
    return [Row("open a 10,000-note MIDI", t * 1000, "ms", "<= 1000")]


def bench_render(repeat: int) -> list[Row]:
    from ..audio.parallel import worker_count
    from ..audio.render import measure_render
    from ..io import load

    rows = []
    # K.525 (5 tracks, 6,398 notes, about 5.5 minutes): split over the cores vs one FluidSynth
    song = load(k525_path())
    best = max((measure_render(song, tail_seconds=0.0) for _ in range(repeat)), key=lambda r: r["x_realtime"])
    one = measure_render(song, tail_seconds=0.0, workers=1)
    rows.append(Row("render K.525 to audio", best["x_realtime"], "x real time", ">= 50", naive=one["x_realtime"],
                    note=f"{best['audio_seconds']:.0f} s of audio in {best['render_seconds']:.1f} s with "
                         f"{best['processes']} processes (start and soundfont load included); naive: one "
                         f"FluidSynth with {one['threads']} threads, soundfont load apart"))
    # the first 60 s of it
    from ..core.timing import TempoMap

    cut = int(TempoMap(song).tick(60.0))
    part = song.copy()
    for t in part.tracks:
        t.notes = [n for n in t.notes if n.start < cut]
    m60 = max((measure_render(part, tail_seconds=0.0) for _ in range(repeat)), key=lambda r: r["x_realtime"])
    one60 = measure_render(part, tail_seconds=0.0, workers=1)
    rows.append(Row("render 60 s of audio", m60["x_realtime"], "x real time", ">= 50", naive=one60["x_realtime"],
                    note=f"{m60['processes']} process(es); {worker_count(part)} chosen for this length"))
    return rows


def bench_harmonize(repeat: int, device: str) -> list[Row]:
    from ..core.song import Note, Song, Track
    from ..ml.harmonizer.api import harmonize

    melody = [60, 62, 64, 65, 67, 65, 64, 62, 64, 65, 67, 69, 67, 65, 64, 60]
    notes = [Note(i * 960, p, 960) for i, p in enumerate(melody)]  # 8 bars of half notes
    song = Song(title="8 bars", tracks=[Track("Melody", notes=notes)])
    harmonize(song, seed=0, device=device)  # load + warm
    t = _best_of(lambda: harmonize(song, seed=1, device=device), repeat)
    return [Row("harmonize 8 bars (in-process)", t, "s", "<= 0.5", device=device)]


def bench_continue(repeat: int, device: str) -> list[Row]:
    from ..ml.continuation import api as continue_api

    rows = []
    backend = "auto" if device == "cpu" else "torch"
    cached = continue_api.tokens_per_second(True, device, backend)
    naive = continue_api.tokens_per_second(False, device, "torch", n_tokens=128)
    rows.append(Row("continuation tokens/s, KV cache", cached, "tok/s", ">= 1000", naive=naive, device=device,
                    note="naive: no cache (the whole window every step); cached: int8-weight ONNX graph, 1 thread "
                         "(as Continue runs)" if device == "cpu" else "naive: no cache"))
    if device == "cpu":
        for label, kind, threads in (("2 threads", "auto", 2), ("fp32 graph", "onnx", 1),
                                     ("torch step", "torch", 1)):
            rows.append(Row(f"continuation tokens/s, KV cache, {label}",
                            continue_api.tokens_per_second(True, device, kind, threads=threads), "tok/s", ""))
    song = _prompt_song()
    continue_api.continue_song(song, bars=4, seed=0, device=device)
    t = _best_of(lambda: continue_api.continue_song(song, bars=4, seed=1, device=device), repeat)
    rows.append(Row("continue 4 bars (in-process)", t, "s", "", device=device))
    return rows


def bench_commands() -> list[Row]:
    """Whole ``studio`` processes, start to exit, as a user runs them."""
    from ..core.song import Note, Song, Track
    from ..io import save

    rows = []
    with tempfile.TemporaryDirectory() as d:
        mel = [67, 69, 71, 72, 74, 72, 71, 69, 67, 71, 74, 72, 71, 69, 67, 66] * 4
        notes = [Note(i * 480, p, 480) for i, p in enumerate(mel)]  # 16 bars of quarter notes
        m16 = Path(d) / "melody16.mid"
        save(Song(title="16 bars", tracks=[Track("Melody", notes=notes)]), m16)
        prompt = Path(d) / "prompt.mid"
        save(_prompt_song(), prompt)
        for name, args, target in (
                ("studio harmonize, 16-bar melody (whole process)", ["harmonize", str(m16), "-o", str(Path(d) / "h.mid"),
                                                                     "--seed", "0"], "<= 3"),
                ("studio continue --bars 4 (whole process)", ["continue", str(prompt), "-o", str(Path(d) / "c.mid"),
                                                              "--bars", "4", "--seed", "0"], "<= 8")):
            run_studio(*args)  # first run: caches (ONNX graph, bytecode)
            runs = [run_studio(*args) for _ in range(3)]
            ok = [r.seconds for r in runs if r.ok]
            rows.append(Row(name, min(ok) if ok else None, "s", target,
                            note="" if ok else runs[-1].last_line()[:120]))
    return rows


def bench_vary(repeat: int, device: str) -> list[Row]:
    from ..ml.variation.api import vary

    song = _prompt_song()
    vary(song, 0.5, seed=0, device=device)
    t = _best_of(lambda: vary(song, 0.5, seed=1, device=device), repeat)
    return [Row("vary 4 bars (in-process)", t, "s", "<= 1", device=device)]


def _prompt_song():
    from ..core.song import Note, Song, Track

    mel = [67, 69, 71, 72, 74, 72, 71, 69, 67, 71, 74, 79, 78, 76, 74, 72]
    bass = [43, 43, 47, 48, 50, 48, 47, 45]
    return Song(title="prompt", tracks=[
        Track("Violin", 40, 0, notes=[Note(i * 480, p, 480) for i, p in enumerate(mel)]),
        Track("Cello", 42, 1, notes=[Note(i * 960, p, 960) for i, p in enumerate(bass)]),
    ])


def bench_gui() -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        from ..io import save
        from ..ui.bench import ten_thousand_notes

        path = Path(d) / "10k.mid"
        save(ten_thousand_notes(), path)
        r = run_studio(str(path), "--screenshot", str(Path(d) / "shot.png"), env={"QT_QPA_PLATFORM": "offscreen"})
        rows.append(Row("GUI peak memory (10k notes, screenshot)", r.peak_mib if r.ok else None, "MiB", "",
                        note="" if r.ok else r.last_line()))
    try:
        from ..ui import bench as uibench
    except ImportError as exc:
        rows.append(Row("GUI figures", None, "", note=f"not available: {exc}"))
        return rows
    for name, value, unit, target in uibench.measure():
        rows.append(Row(name, value, unit, target))
    return rows


def bench_worker_memory() -> list[Row]:
    code = ("import sys; from studio.ml.worker.server import _warm, MODEL_NAMES\n"
            "ok=[n for n in MODEL_NAMES if _warm(n)]\nprint(ok)")
    r = run_python(["-c", code])
    return [Row("worker peak memory (3 models loaded)", r.peak_mib if r.ok else None, "MiB", "",
                note="" if r.ok else r.stderr.strip()[-120:])]


# ---- driver ---------------------------------------------------------------------------------
def _section(rows: list[Row], name: str, fn, *a) -> None:
    t0 = time.perf_counter()
    try:
        rows.extend(fn(*a))
    except Exception as exc:  # one section failing must not hide the others
        rows.append(Row(name, None, "", note=f"not measured: {type(exc).__name__}: {str(exc)[:120]}"))
    print(f"  {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def run_all(quick: bool = False) -> list[Row]:
    repeat = 2 if quick else 5
    rows: list[Row] = []
    devices = ["cpu"]
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
        if torch.cuda.is_available():
            devices.append("cuda")
    except ImportError:
        pass
    _section(rows, "files", bench_files, repeat)
    _section(rows, "render", bench_render, max(1, repeat // 2))
    for dev in devices:
        _section(rows, f"harmonize[{dev}]", bench_harmonize, repeat, dev)
        _section(rows, f"continue[{dev}]", bench_continue, max(1, repeat // 2), dev)
        _section(rows, f"vary[{dev}]", bench_vary, repeat, dev)
    _section(rows, "commands", bench_commands)
    _section(rows, "gui", bench_gui)
    _section(rows, "worker", bench_worker_memory)
    return rows


def format_table(rows: list[Row]) -> str:
    head = ("figure", "value", "unit", "target", "met", "naive", "ratio", "device")
    lines = []
    for r in rows:
        val = "-" if r.value is None else f"{r.value:,.3g}" if r.value < 100 else f"{r.value:,.0f}"
        naive = "" if r.naive is None else f"{r.naive:,.3g}"
        ratio = f"{r.value / r.naive:.1f}x" if r.value and r.naive else ""
        lines.append((r.name, val, r.unit, r.target, r.ok(), naive, ratio, r.device if r.device != "cpu" else "cpu"))
        if r.note:
            lines.append(("  " + r.note, "", "", "", "", "", "", ""))
    widths = [max(len(str(x[i])) for x in [head] + lines) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*ln) for ln in lines]
    return "\n".join(out)


def bench(args) -> int:
    print("measuring (this takes a few minutes)...", file=sys.stderr)
    rows = run_all(quick=args.quick)
    print(format_table(rows))
    if args.json:
        from ..io.atomic import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps([asdict(r) for r in rows], indent=2).encode())
    return 0
