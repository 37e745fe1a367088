"""The worker process machinery, with a model-free probe job (the models have their own tests)."""

import sys
import time

import pytest

from studio.core.song import Note, Song, Track
from studio.ml.worker import protocol as P
from studio.ml.worker.client import WorkerClient

from probe_job import JOBS, ProbeRequest


@pytest.fixture(scope="module")
def client():
    c = WorkerClient(warm_up=False, threads=1, jobs=JOBS)
    c.start()
    yield c
    c.close()


def _song():
    return Song(tracks=[Track("Melody", notes=[Note(0, 60, 480), Note(480, 64, 480)])])


def test_probe_job_returns_a_take_with_progress(client):
    job = client.submit(ProbeRequest(0, _song(), steps=10, step_seconds=0.06))
    seen = []
    reply = client.wait(job, timeout=60, on_progress=seen.append)
    assert isinstance(reply, P.Result)
    assert reply.takes[0].song.notes_equal(_song())
    assert seen and 0 < seen[-1].fraction <= 1
    assert client.device  # "CPU" or "CUDA: <name>"


def test_cancel_stops_within_a_fifth_of_a_second(client):
    job = client.submit(ProbeRequest(0, _song(), steps=1000, step_seconds=0.01))
    # wait until it is really running
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(isinstance(m, P.Progress) for m in client.poll()):
            break
        time.sleep(0.01)
    t0 = time.monotonic()
    client.cancel(job)
    reply = client.wait(job, timeout=5)
    assert isinstance(reply, P.CancelledReply)
    assert time.monotonic() - t0 < 0.2


def test_crashed_worker_is_reported_and_restarted(client):
    job = client.submit(ProbeRequest(0, _song(), steps=10, step_seconds=0.01, crash=True))
    reply = client.wait(job, timeout=60)
    assert isinstance(reply, P.Failed)
    assert "stopped unexpectedly" in reply.message and "\n" not in reply.message
    job2 = client.submit(ProbeRequest(0, _song(), steps=3, step_seconds=0.01))
    assert isinstance(client.wait(job2, timeout=60), P.Result)
    assert client.restarts == 1


def test_client_does_not_import_torch():
    import subprocess

    code = ("import sys; from studio.ml.worker.client import WorkerClient; from studio.ml.worker import protocol; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
