"""Offline rendering split over several processes, one FluidSynth each.

FluidSynth renders voices on one core per block; its own multi-core mode synchronizes its
threads every 64 frames and scales poorly. Here the song's timeline is cut into segments,
one per core, each rendered by its own process into one shared buffer:

* Cuts are put where the fewest notes sound, near the even split points, on a 64-frame
  block boundary (FluidSynth applies events at block starts, so every event then lands on
  the same sample as in a single render).
* A segment's process first runs its synth silently so that the reverb's modulation is in
  phase with a single render at ``PREROLL`` seconds before its cut. That modulation is a
  1 Hz oscillator and events apply at 64-frame block starts, so the state repeats every
  lcm(64, sample rate) frames (16 s at 44.1 kHz) and the silent run is at most that long.
  It then replays the keys held there and renders up to the cut, thrown away, so envelopes,
  releases and the reverb tail have settled into what a single render has at the cut.
  Where a replayed key would still ring at the cut, the pre-roll starts earlier, at that
  note's own onset.
* The last ``XFADE`` frames of each pre-roll are handed back, and the seam is crossfaded.
* The first segment (no run-up, no pre-roll) is rendered by a thread of the calling process,
  which starts at once, while the other processes start up; it is made longer by the audio
  that start-up costs (``HEAD_START``), so that all segments end together.

A test compares this with a single render of the same song.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing import shared_memory

import numpy as np

from ..core.errors import Cancelled, StudioError
from ..core.song import SUSTAIN, Song
from .schedule import CC, HEADROOM, MAX_SECONDS, RESET_ALL_CONTROLLERS, Progress, Schedule, Sequencer, build_schedule
from .synth import Synth, assign_channels, channels_needed, find_soundfont

BLOCK = 64  # FluidSynth's internal block
PREROLL = 4.0  # seconds rendered before a cut and thrown away (at least)
MAX_PREROLL = 30.0  # ... and at most
RELEASE_GUARD = 3.0  # seconds a released note may still ring
XFADE = 1024  # frames crossfaded at each seam
MIN_SEGMENT_SECONDS = 60.0  # each process gets at least this much: starting one costs about a second
HEAD_START = 8.0  # seconds of audio the in-process first segment renders while the others start


@dataclass
class _Job:
    index: int
    soundfont: str
    sample_rate: int
    channels: int
    programs: list[tuple[int, int, bool]]  # (channel, program, is_drum)
    events: list[tuple[int, bool, int, int, int]]  # frames relative to ``start``
    start: int  # first frame rendered (the pre-roll's start), global
    cut: int  # first frame written to the output, global
    end: int  # frame after the last one written, global
    shm: str
    total: int


def plan_cuts(events: list[tuple[int, bool, int, int, int]], length: int, parts: int, sample_rate: int,
              head_start: int = 0) -> list[int]:
    """Cut frames (block-aligned, increasing) splitting ``length`` frames into ``parts``
    segments, each placed where the fewest keys are held within 10 % of an even split; the
    first segment is ``head_start`` frames longer than the others."""
    if parts <= 1 or length <= 0:
        return []
    head_start = max(0, min(int(head_start), length // parts))
    events = [e for e in events if e[1] is True or e[1] is False]  # the keys; controllers hold nothing
    frames = np.array([e[0] for e in events], dtype=np.int64)
    delta = np.array([1 if e[1] else -1 for e in events], dtype=np.int64)
    held = np.cumsum(delta)  # keys held just after each event
    cuts = []
    for k in range(1, parts):
        target = head_start + (length - head_start) * k // parts
        lo, hi = max(BLOCK, target - length // (10 * parts)), min(length - BLOCK, target + length // (10 * parts))
        cands = np.arange(lo - lo % BLOCK, hi, BLOCK)
        if not len(cands):
            continue
        idx = np.searchsorted(frames, cands, side="right") - 1
        count = np.where(idx >= 0, held[np.maximum(idx, 0)], 0)
        best = cands[np.lexsort((np.abs(cands - target), count))[0]]
        if not cuts or best > cuts[-1] + sample_rate * PREROLL:
            cuts.append(int(best))
    return cuts


def _notes(events) -> list[tuple[int, int]]:
    """(on frame, off frame) of every key press in a schedule; a key released while the
    sustain pedal is down sounds on until the pedal is lifted."""
    down: dict[tuple[int, int], int] = {}
    pedal: dict[int, list[int]] = {}  # channel -> on frames of keys released under the pedal
    out = []
    for f, kind, ch, a, b in events:
        if kind is True or kind is False:
            key = (ch, a)
            if kind:
                if key in down:
                    out.append((down[key], f))
                down[key] = f
            elif key in down:
                if ch in pedal:
                    pedal[ch].append(down.pop(key))
                else:
                    out.append((down.pop(key), f))
        elif kind == CC and (a == SUSTAIN or a == RESET_ALL_CONTROLLERS):
            if a == SUSTAIN and b >= 64:
                pedal.setdefault(ch, [])
            else:
                out += [(on, f) for on in pedal.pop(ch, [])]
    out += [(f, 1 << 62) for f in down.values()]
    out += [(f, 1 << 62) for ons in pedal.values() for f in ons]
    return out


def preroll_start(events, cut: int, sample_rate: int) -> int:
    """Where a segment's silent pre-roll begins: ``PREROLL`` seconds before ``cut``, or
    earlier so that no key replayed at the start still sounds (with its release) at the cut."""
    notes = _notes(events)
    guard = int(RELEASE_GUARD * sample_rate)
    start = max(0, cut - int(PREROLL * sample_rate))
    floor = max(0, cut - int(MAX_PREROLL * sample_rate))
    while start > floor:
        late = [a for a, b in notes if a < start < b and b + guard > cut]
        if not late:
            break
        start = max(floor, min(late) - BLOCK)
    return start - start % BLOCK


def runup_frames(start: int, sample_rate: int) -> int:
    """Frames of silence after which a fresh synth's reverb modulation and block phase are
    what a single render has at frame ``start`` (a block start)."""
    return start % math.lcm(BLOCK, int(sample_rate))


def _held_at(events, frame: int) -> list[tuple[int, int, int]]:
    """(channel, pitch, velocity) of the keys down just before ``frame``."""
    down: dict[tuple[int, int], int] = {}
    for f, on, ch, pitch, vel in events:
        if f >= frame:
            break
        if on is not True and on is not False:
            continue
        if on:
            down[(ch, pitch)] = vel
        else:
            down.pop((ch, pitch), None)
    return [(ch, p, v) for (ch, p), v in down.items()]


def _segment_events(events, start: int, end: int):
    """Events for rendering frames ``start..end``: the controllers sent before ``start`` (in
    their order) and the held keys, at ``start``; then the rest."""
    out = [(0, kind, ch, a, b) for f, kind, ch, a, b in events if f < start and kind is not True and kind is not False]
    out += [(0, True, ch, p, v) for ch, p, v in _held_at(events, start)]
    out += [(f - start, on, ch, p, v) for f, on, ch, p, v in events if start <= f < end]
    return out


def _worker(job: _Job, progress, cancel, xfade_name: str, in_process: bool = False) -> None:
    try:
        shm = shared_memory.SharedMemory(name=job.shm)
        xf = shared_memory.SharedMemory(name=xfade_name)
        try:
            out = np.ndarray((job.total, 2), dtype=np.float32, buffer=shm.buf)
            seams = np.ndarray((max(1, len(progress)), XFADE, 2), dtype=np.float32, buffer=xf.buf)
            with Synth(job.soundfont, job.sample_rate, channels=job.channels, cpu_cores=1,
                       dynamic_samples=True) as synth:
                for ch, program, drum in job.programs:
                    synth.select(ch, program, drum)
                # run the synth silently: the reverb's modulation then has the phase it has at
                # the pre-roll's start in a single render (about 400x real time)
                left = runup_frames(job.start, job.sample_rate)
                silent = np.zeros((min(left, job.sample_rate * 4) or 1, 2), dtype=np.float32)
                while left > 0:
                    synth.write_into(silent, 0, min(left, len(silent)))
                    left -= min(left, len(silent))
                sched = Schedule(0, 0, job.sample_rate, 0.0, job.end - job.start, job.events)
                seq = Sequencer(synth, sched)
                pre = job.cut - job.start
                if pre:
                    scratch = np.zeros((pre, 2), dtype=np.float32)
                    seq.render(scratch, 0, pre)
                    n = min(XFADE, pre)
                    seams[job.index, XFADE - n:] = scratch[pre - n:]
                chunk = job.sample_rate // 2
                pos = job.cut
                while pos < job.end:
                    if cancel.is_set():
                        return
                    n = min(chunk, job.end - pos)
                    seq.render(out, pos, n)  # the schedule spans start..end: always n frames
                    pos += n
                    progress[job.index] = pos - job.cut
        finally:
            shm.close()
            xf.close()
    except BaseException:  # the parent turns this into one line
        progress[job.index] = -1
        if in_process:  # the log gets the details; the caller reports a failed worker
            import logging

            logging.getLogger(__name__).exception("render segment %d failed", job.index)
            return
        traceback.print_exc()
        raise


def render_parallel(song: Song, soundfont=None, sample_rate: int = 44100, progress: Progress | None = None,
                    tail_seconds: float = 1.5, workers: int = 2, stats: dict | None = None) -> np.ndarray:
    """The same audio as ``render.render_array`` (float32 stereo), rendered by ``workers`` processes."""
    sf = str(find_soundfont(soundfont))
    channels = channels_needed(len(song.tracks))
    chans = assign_channels(song.tracks, channels)
    sched = build_schedule(song, chans, sample_rate)
    sr = int(sample_rate)
    tail = max(0, int(round(tail_seconds * sr)))
    total = sched.length + tail
    if total > MAX_SECONDS * sr:
        raise StudioError(f"{song.title or 'song'}: {total / sr / 60:.0f} minutes is too long to render "
                          f"(at most {MAX_SECONDS / 60:.0f})")
    cuts = plan_cuts(sched.events, sched.length, workers, sr, int(HEAD_START * sr))
    bounds = [0, *cuts, total]
    programs = [(ch, t.program, t.is_drum) for t, ch in zip(song.tracks, chans)]
    ctx = mp.get_context("spawn")
    shm = shared_memory.SharedMemory(create=True, size=max(8, total * 2 * 4))
    xf = shared_memory.SharedMemory(create=True, size=max(1, len(bounds) - 1) * XFADE * 2 * 4)
    t0 = time.perf_counter()
    procs: list = []
    local: threading.Thread | None = None
    cancel = ctx.Event()
    try:
        out = np.ndarray((total, 2), dtype=np.float32, buffer=shm.buf)  # new shared memory reads as zeros
        done = ctx.Array("q", len(bounds) - 1, lock=False)
        for i in reversed(range(len(bounds) - 1)):  # the processes first: they take a while to start
            cut, end = bounds[i], bounds[i + 1]
            start = 0 if i == 0 else preroll_start(sched.events, cut, sr)
            last = i == len(bounds) - 2
            events = _segment_events(sched.events, start, sched.length + 1 if last else end)
            job = _Job(i, sf, sr, channels, programs, events, start, cut, end, shm.name, total)
            if i == 0:
                local = threading.Thread(target=_worker, args=(job, done, cancel, xf.name, True), daemon=True)
                local.start()
                continue
            p = ctx.Process(target=_worker, args=(job, done, cancel, xf.name), daemon=True)
            p.start()
            procs.append(p)
        workers_ = [*procs, local]
        while any(w.is_alive() for w in workers_):
            if any(done[i] < 0 for i in range(len(bounds) - 1)):
                break
            if progress is not None and progress(sum(max(0, d) for d in done[:]) / total) is False:
                cancel.set()
                for w in workers_:
                    w.join(5)
                raise Cancelled("render cancelled")
            time.sleep(0.02)
        if any(done[i] < 0 for i in range(len(bounds) - 1)):
            cancel.set()
        for w in workers_:
            w.join()
        failed = [p for p in procs if p.exitcode != 0] or [i for i in range(len(bounds) - 1) if done[i] < 0]
        if failed:
            raise StudioError(f"{sf}: rendering failed in a worker process")
        seams = np.ndarray((len(bounds) - 1, XFADE, 2), dtype=np.float32, buffer=xf.buf)
        ramp = np.linspace(0.0, 1.0, XFADE, dtype=np.float32)[:, None]
        audio = out.copy()
        for i, cut in enumerate(cuts, start=1):
            n = min(XFADE, cut)
            a, b = audio[cut - n:cut], seams[i, XFADE - n:]
            audio[cut - n:cut] = a * (1.0 - ramp[XFADE - n:]) + b * ramp[XFADE - n:]
    finally:
        if local is not None and local.is_alive():
            cancel.set()
            local.join()
        for p in procs:
            if p.is_alive():
                p.kill()
        shm.close()
        shm.unlink()
        xf.close()
        xf.unlink()
    peak = max(float(audio.max()), -float(audio.min())) if total else 0.0
    if peak > HEADROOM:
        audio *= np.float32(HEADROOM / peak)
    if stats is not None:
        stats.update(render_seconds=time.perf_counter() - t0, load_seconds=0.0, audio_seconds=total / sr,
                     soundfont=sf, processes=len(procs) + 1, cuts=[c / sr for c in cuts])
    if progress is not None:
        progress(1.0)
    return audio


def worker_count(song: Song, sample_rate: int = 44100) -> int:
    """How many processes a render of ``song`` should use on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    from ..core.timing import TempoMap

    seconds = TempoMap(song).seconds(song.end_tick)
    return max(1, min(cores, 8, int(seconds // MIN_SEGMENT_SECONDS)))
