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
from dataclasses import replace

from ...core.errors import Cancelled, StudioError
from . import protocol as P

MODEL_NAMES = ("harmonizer", "continuation", "variation")


def _seed_for(req: P.Request) -> int:
    return req.seed if req.seed is not None else random.randrange(1, 2**31 - 1)


def _run(model: str, req: P.Request, report) -> list[P.Take]:
    """One request through a model package's face: ``generate(song, request, progress)``."""
    seed = _seed_for(req)
    t0 = time.perf_counter()
    songs = importlib.import_module(f"..{model}", __package__).generate(req.song, replace(req, seed=seed), report)
    dt = time.perf_counter() - t0
    params = {**req.params(), "seed": seed}
    if model == "harmonizer":  # take i was drawn with seed + i
        return [P.Take(s, model, {**params, "seed": seed + i, "takes": 1}, seed + i, dt / len(songs))
                for i, s in enumerate(songs)]
    return [P.Take(s, model, {**params, "take": i + 1}, seed, dt) for i, s in enumerate(songs)]


def run_harmonize(req: P.HarmonizeRequest, report) -> list[P.Take]:
    return _run("harmonizer", req, report)


def run_regenerate(req: P.RegenerateRequest, report) -> list[P.Take]:
    return _run("harmonizer", req, report)


def run_continue(req: P.ContinueRequest, report) -> list[P.Take]:
    return _run("continuation", req, report)


def run_vary(req: P.VaryRequest, report) -> list[P.Take]:
    return _run("variation", req, report)


JOBS = {"harmonize": run_harmonize, "regenerate": run_regenerate, "continue": run_continue,
        "vary": run_vary}


def _warm(name: str) -> bool:
    """Load one model's weights through its package's ``load`` (each caches its model per process)."""
    try:
        importlib.import_module(f"..{name}", __package__).load(None, "auto")
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
