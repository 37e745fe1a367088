"""The model worker: a separate process that runs Continue / Harmonize / Vary jobs.

The editor talks to it through :mod:`studio.ml.worker.client`.  Jobs are plain functions
``run(request, report) -> list[Take]``; ``report(fraction)`` returns False once the job is
cancelled, and the model code checks it once per token or sampling step.  A crash or an
out-of-memory kill of this process never takes the editor down: the client notices and
starts a fresh worker on the next request.
"""

from __future__ import annotations

import importlib
import logging
import os
import queue
import random
import sys
import time
import traceback

from ...core.errors import Cancelled, StudioError
from . import protocol as P

MODEL_NAMES = ("harmonizer", "continuation", "variation")


def _seed_for(req: P.Request) -> int:
    return req.seed if req.seed is not None else random.randrange(1, 2**31 - 1)


def run_harmonize(req: P.HarmonizeRequest, report) -> list[P.Take]:
    from ..harmonizer.api import harmonize

    seed = _seed_for(req)
    takes = []
    for i in range(max(1, req.takes)):
        t0 = time.perf_counter()
        frac0, span = i / req.takes, 1.0 / req.takes
        song = harmonize(
            req.song, melody_track=req.melody_track, keep=tuple(req.keep), temperature=req.temperature,
            candidates=req.candidates, seed=seed + i, device=req.device,
            progress=lambda f, _a=frac0, _s=span: report(_a + _s * f),
        )
        params = {**req.params(), "seed": seed + i, "takes": 1}
        takes.append(P.Take(song, "harmonizer", params, seed + i, time.perf_counter() - t0))
    return takes


def run_regenerate(req: P.RegenerateRequest, report) -> list[P.Take]:
    from ..harmonizer.api import regenerate

    seed = _seed_for(req)
    takes = []
    for i in range(max(1, req.takes)):
        t0 = time.perf_counter()
        frac0, span = i / req.takes, 1.0 / req.takes
        song = regenerate(
            req.song, list(req.voices), start=req.start_tick, end=req.end_tick, temperature=req.temperature,
            candidates=req.candidates, seed=seed + i, device=req.device,
            progress=lambda f, _a=frac0, _s=span: report(_a + _s * f),
        )
        params = {**req.params(), "seed": seed + i, "takes": 1}
        takes.append(P.Take(song, "harmonizer", params, seed + i, time.perf_counter() - t0))
    return takes


def run_continue(req: P.ContinueRequest, report) -> list[P.Take]:
    from ..continuation.api import continue_song

    seed = _seed_for(req)
    t0 = time.perf_counter()
    songs = continue_song(
        req.song, bars=req.bars, from_bar=req.from_bar, temperature=req.temperature, top_p=req.top_p,
        takes=req.takes, seed=seed, device=req.device, progress=report, key_strength=req.key_strength,
    )
    dt = time.perf_counter() - t0
    params = {**req.params(), "seed": seed}
    return [P.Take(s, "continuation", {**params, "take": i + 1}, seed, dt) for i, s in enumerate(songs)]


def run_vary(req: P.VaryRequest, report) -> list[P.Take]:
    from ..variation.api import vary

    seed = _seed_for(req)
    t0 = time.perf_counter()
    songs = vary(
        req.song, req.strength, start_tick=req.start_tick, end_tick=req.end_tick,
        tracks=list(req.tracks) if req.tracks is not None else None, locked=set(req.locked) or None,
        takes=req.takes, seed=seed, device=req.device, progress=report,
    )
    dt = time.perf_counter() - t0
    params = {**req.params(), "seed": seed}
    return [P.Take(s, "variation", {**params, "take": i + 1}, seed, dt) for i, s in enumerate(songs)]


JOBS = {"harmonize": run_harmonize, "regenerate": run_regenerate, "continue": run_continue,
        "vary": run_vary}


def _warm(name: str) -> bool:
    """Load one model's weights (each API caches its model once per process): its ``warm_up()``
    when it has one, else its ``load_model()``."""
    api = {"harmonizer": "harmonizer.api", "continuation": "continuation.api", "variation": "variation.api"}[name]
    try:
        mod = importlib.import_module(f"..{api}", __package__)
        warm_up = getattr(mod, "warm_up", None) or getattr(mod, "load_model", None)
        if warm_up is None:
            return False
        warm_up()
        return True
    except Exception:  # a model that is missing or broken says so when it is used
        return False


def _jobs(extra: dict[str, str] | None) -> dict:
    """The product's jobs plus ``extra`` ones given as ``{kind: "module:function"}`` (tests give the
    worker a model-free job this way)."""
    jobs = dict(JOBS)
    for kind, where in (extra or {}).items():
        module, fn = where.split(":")
        jobs[kind] = getattr(importlib.import_module(module), fn)
    return jobs


def worker_main(requests, replies, cancel_job, threads: int | None = None, warm_up: bool = True,
                jobs: dict[str, str] | None = None) -> None:
    """Entry point of the worker process: warm the models up while idle (unless ``warm_up`` is
    False), serve requests until Shutdown."""
    import torch

    from ... import logs

    logs.setup("worker")
    torch.set_num_threads(threads or max(1, min(4, (os.cpu_count() or 2))))
    from ..checkpoint import device_label, pick_device

    replies.put(P.Ready(device_label(pick_device("auto"))))
    to_warm = list(MODEL_NAMES) if warm_up else []
    table = _jobs(jobs)
    warm_start, warmed = time.perf_counter(), []
    while True:
        try:
            req = requests.get(timeout=0.05 if to_warm else None)
        except queue.Empty:
            name = to_warm.pop(0)
            if _warm(name):
                warmed.append(name)
            if not to_warm:
                replies.put(P.Warmed(tuple(warmed), time.perf_counter() - warm_start))
            continue
        if isinstance(req, P.Shutdown) or req is None:
            return
        _serve(req, replies, cancel_job, table)


def _serve(req: P.Request, replies, cancel_job, jobs: dict) -> None:
    last = [0.0]

    def report(fraction: float, message: str = "") -> bool:
        if cancel_job.value == req.job:
            return False
        now = time.perf_counter()
        if now - last[0] >= 0.05 or fraction >= 1.0:
            last[0] = now
            replies.put(P.Progress(req.job, float(min(1.0, max(0.0, fraction))), message))
        return True

    try:
        takes = jobs[req.kind](req, report)
        if cancel_job.value == req.job:
            replies.put(P.CancelledReply(req.job))
        else:
            replies.put(P.Result(req.job, tuple(takes)))
    except Cancelled:
        replies.put(P.CancelledReply(req.job))
    except StudioError as exc:
        replies.put(P.Failed(req.job, str(exc)))
    except Exception as exc:  # report in one line; the detail goes to stderr and the log file
        traceback.print_exc(file=sys.stderr)
        logging.getLogger(__name__).exception("%s job %s failed", req.kind, req.job)
        replies.put(P.Failed(req.job, f"{req.kind} failed: {type(exc).__name__}: {exc}"))
