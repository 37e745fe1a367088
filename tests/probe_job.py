"""A model-free job for testing the model worker and the assistant panel: ``steps`` steps of
``step_seconds`` each, reporting progress; ``crash`` ends the worker process mid-job. The tests
give it to the worker with ``WorkerClient(jobs=JOBS)`` (the product knows nothing of it)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from studio.core.errors import Cancelled
from studio.ml.worker import protocol as P

JOBS = {"probe": "probe_job:run"}


@dataclass(frozen=True)
class ProbeRequest(P.Request):
    steps: int = 10
    step_seconds: float = 0.01
    crash: bool = False

    kind = "probe"


def run(req: ProbeRequest, report) -> list[P.Take]:
    for i in range(req.steps):
        if req.crash and i == req.steps // 2:
            os._exit(3)
        time.sleep(req.step_seconds)
        if not report((i + 1) / req.steps):
            raise Cancelled()
    return [P.Take(req.song, "probe", req.params(), req.seed)]
