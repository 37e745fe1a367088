"""Offline rendering of a Song to audio with FluidSynth (in this process, or split over several
by ``parallel.py``). The event schedule it plays, shared with the realtime player, is in
``schedule.py`` (its names are importable from here too)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ..core.errors import Cancelled, StudioError
from ..core.song import Song
from .schedule import (  # noqa: F401  (also imported from here by the player and the metronome)
    BEND, CC, HEADROOM, MAX_SECONDS, OFF, ON, RESET_ALL_CONTROLLERS, Progress, Schedule, Sequencer, audible,
    build_schedule)
from .synth import Synth, channels_needed

FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16")}


def render_with(synth: Synth, song: Song, progress: Progress | None = None, tail_seconds: float = 1.5,
                chunk_seconds: float = 1.0) -> np.ndarray:
    """Render ``song`` through an already loaded ``synth`` (its tracks set up here)."""
    channels = synth.setup(song.tracks)
    sched = build_schedule(song, channels, synth.sample_rate)
    sr = synth.sample_rate
    tail = max(0, int(round(tail_seconds * sr)))
    total = sched.length + tail
    if total > MAX_SECONDS * sr:
        minutes = total / sr / 60
        raise StudioError(f"{song.title or 'song'}: {minutes:.0f} minutes is too long to render (at most {MAX_SECONDS / 60:.0f})")
    out = np.zeros((total, 2), dtype=np.float32)
    chunk = max(64, int(chunk_seconds * sr))
    seq = Sequencer(synth, sched)
    pos = 0
    while pos < total:
        if progress is not None and progress(pos / total if total else 1.0) is False:
            raise Cancelled("render cancelled")
        if not seq.done:
            n = seq.render(out, pos, min(chunk, total - pos))
        else:
            n = min(chunk, total - pos)
            synth.write_into(out, pos, n)
        pos += n
    peak = max(float(out.max()), -float(out.min())) if total else 0.0  # no 2x-sized temporary
    if peak > HEADROOM:
        out *= np.float32(HEADROOM / peak)
    if progress is not None:
        progress(1.0)
    return out


def render_array(song: Song, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
                 progress: Progress | None = None, tail_seconds: float = 1.5, stats: dict | None = None,
                 workers: int | None = None) -> np.ndarray:
    """The song as float32 stereo, shape ``(frames, 2)``: its length through the tempo map
    plus ``tail_seconds`` of release.  ``progress(fraction)`` returning ``False`` cancels
    (:class:`~studio.core.errors.Cancelled`).  Mute and solo are honoured.  A ``stats``
    dict receives ``load_seconds`` and ``render_seconds`` (wall time).

    ``workers``: processes to render with (None: one per core for songs long enough to
    gain from it, see :mod:`studio.audio.parallel`; 1: in this process)."""
    from . import parallel  # noqa: PLC0415

    n = parallel.worker_count(song, sample_rate) if workers is None else max(1, int(workers))
    if n > 1:
        return parallel.render_parallel(song, soundfont, sample_rate, progress, tail_seconds, n, stats)
    cores = max(1, min(4, os.cpu_count() or 1))  # FluidSynth renders voices in parallel
    t0 = time.perf_counter()
    with Synth(soundfont, sample_rate, channels=channels_needed(len(song.tracks)), cpu_cores=cores,
                   dynamic_samples=True) as synth:
        t1 = time.perf_counter()
        audio = render_with(synth, song, progress, tail_seconds)
        if stats is not None:
            stats.update(load_seconds=t1 - t0, render_seconds=time.perf_counter() - t1,
                         audio_seconds=audio.shape[0] / sample_rate, soundfont=str(synth.soundfont))
        return audio


def output_format(path: str | os.PathLike) -> tuple[str, str]:
    """(soundfile format, subtype) for an output path, or a StudioError naming the path."""
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise StudioError(f"{path}: unknown audio format {ext or '(no extension)'!r}; use .wav or .flac")
    return FORMATS[ext]


def render_file(song: Song, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
                sample_rate: int = 44100, progress: Progress | None = None, tail_seconds: float = 1.5,
                stats: dict | None = None, workers: int | None = None) -> Path:
    """Render to ``path`` (.wav or .flac, 16-bit stereo), atomically: on any error or a
    cancel nothing is left at ``path`` (an older file there stays as it was)."""
    import soundfile  # noqa: PLC0415 - only exports need libsndfile

    from ..io.atomic import atomic_write  # noqa: PLC0415

    fmt, subtype = output_format(path)
    out_dir = Path(path).parent if str(Path(path).parent) else Path(".")
    if not out_dir.is_dir():
        raise StudioError(f"{path}: folder {str(out_dir)!r} does not exist")
    if not os.access(out_dir, os.W_OK):
        raise StudioError(f"{path}: cannot write in folder {str(out_dir)!r}")

    def inner(frac: float):
        return None if progress is None else progress(0.97 * frac)

    data = render_array(song, soundfont, sample_rate, inner, tail_seconds, stats, workers)
    t_write = time.perf_counter()

    def write(tmp: str) -> None:
        soundfile.write(tmp, data, int(sample_rate), format=fmt, subtype=subtype)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # a normal file's mode, not the temp file's private one

    try:
        atomic_write(path, write)
    except OSError as exc:
        raise StudioError(f"{path}: cannot write ({exc.strerror or exc})") from None
    if stats is not None:
        stats["write_seconds"] = time.perf_counter() - t_write
    if progress is not None:
        progress(1.0)
    return Path(path)


def measure_render(song: Song, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
                   tail_seconds: float = 1.5, workers: int | None = None) -> dict:
    """Render once and time it, wall and CPU time (this process and its render processes),
    for ``studio bench`` and the audio figures.  In one process the soundfont load is timed
    apart; split over processes, ``render_seconds`` covers everything (start, load, mix).
    Returns plain numbers plus the audio."""
    import resource  # noqa: PLC0415

    from . import parallel  # noqa: PLC0415

    def cpu() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):  # FluidSynth's threads, render processes
            ru = resource.getrusage(who)
            total += ru.ru_utime + ru.ru_stime
        return total

    n = parallel.worker_count(song, sample_rate) if workers is None else max(1, int(workers))
    cores = max(1, min(4, os.cpu_count() or 1))
    if n > 1:
        st: dict = {}
        t1, c1 = time.perf_counter(), cpu()
        audio = parallel.render_parallel(song, soundfont, sample_rate, None, tail_seconds, n, st)
        t2, c2 = time.perf_counter(), cpu()
        t0, sf, threads = t1, st["soundfont"], 1
    else:
        t0 = time.perf_counter()
        with Synth(soundfont, sample_rate, channels=channels_needed(len(song.tracks)), cpu_cores=cores,
                   dynamic_samples=True) as synth:
            t1, c1 = time.perf_counter(), cpu()
            audio = render_with(synth, song, tail_seconds=tail_seconds)
            t2, c2 = time.perf_counter(), cpu()
        sf, threads = str(synth.soundfont), cores
    seconds = audio.shape[0] / sample_rate
    return {
        "soundfont": sf, "threads": threads, "processes": n, "audio_seconds": seconds,
        "load_seconds": t1 - t0, "render_seconds": t2 - t1, "render_cpu_seconds": c2 - c1,
        "x_realtime": seconds / max(t2 - t1, 1e-9), "x_realtime_per_cpu_second": seconds / max(c2 - c1, 1e-9),
        "rms": float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0,
        "peak": float(np.max(np.abs(audio))) if audio.size else 0.0, "audio": audio,
    }
