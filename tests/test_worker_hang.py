"""The model worker dying halfway through a large reply must never freeze the editor:
``WorkerClient.poll()`` returns at once, every time, and the job is reported failed within a
second.  Stand-in workers (plain functions run in the worker's place) make the moment exact."""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from pathlib import Path

from studio.core.song import Note, Song, Track
from studio.ml.worker import protocol as P
from studio.ml.worker.client import WorkerClient

from probe_job import ProbeRequest

BIG = 50 * 2**20  # what the reply's header promises


def _song(n: int = 2) -> Song:
    return Song(tracks=[Track("Melody", notes=[Note(i * 120, 40 + i % 60, 100) for i in range(n)])])


# ---- stand-in workers (module level: the spawned process imports them by name) ------------
def worker_dying_mid_reply(requests, replies, cancel, threads, warm_up=True, jobs=None):
    """Answers Ready, then starts a 50 MB reply: its length header and the first megabyte,
    says so through a marker file, and waits to be killed."""
    replies.put(P.Ready("stand-in"))
    requests.get()
    fd = replies.conn.fileno()
    os.write(fd, struct.pack("!i", BIG))
    os.write(fd, b"\x80" * 2**20)
    Path(os.environ["STUDIO_TEST_MARKER"]).write_text("writing")
    time.sleep(120)


def worker_with_big_answer(requests, replies, cancel, threads, warm_up=True, jobs=None):
    replies.put(P.Ready("stand-in"))
    req = requests.get()
    replies.put(P.Result(req.job, (P.Take(_song(200_000), "big"),)))
    requests.get()  # stay until shut down


def _poll(client: WorkerClient) -> tuple[list, float]:
    """``client.poll()`` run with a watchdog: the replies and the seconds it took; a poll that
    blocks fails the test after 3 s instead of hanging it."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(client.poll()), daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(3.0)
    assert not t.is_alive(), "WorkerClient.poll() blocked"
    return box[0], time.monotonic() - t0


def test_worker_killed_while_writing_a_large_reply(tmp_path, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("STUDIO_TEST_MARKER", str(marker))
    client = WorkerClient(warm_up=False, threads=1, target=worker_dying_mid_reply)
    try:
        job = client.submit(ProbeRequest(0, _song()))
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline, "the stand-in worker never started its reply"
            _poll(client)
            time.sleep(0.01)
        os.kill(client._proc.pid, signal.SIGKILL)  # a crash (OOM killer, segfault): not our own kill
        t0 = time.monotonic()
        worst, reply = 0.0, None
        while reply is None and time.monotonic() - t0 < 5:
            msgs, took = _poll(client)
            worst = max(worst, took)
            reply = next((m for m in msgs if getattr(m, "job", None) == job), None)
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        print(f"reported in {elapsed:.3f} s; slowest poll {worst * 1000:.1f} ms")
        assert isinstance(reply, P.Failed) and "stopped unexpectedly" in reply.message
        assert elapsed < 1.0 and worst < 0.1
        # and the next request starts a fresh worker
        client.submit(ProbeRequest(0, _song()))
        assert client.alive and client.restarts == 1
    finally:
        client.kill()
        client.close()


def test_a_large_reply_arrives_whole():
    client = WorkerClient(warm_up=False, threads=1, target=worker_with_big_answer)
    try:
        job = client.submit(ProbeRequest(0, _song()))
        t0, worst, reply = time.monotonic(), 0.0, None
        while reply is None and time.monotonic() - t0 < 60:
            msgs, took = _poll(client)
            worst = max(worst, took)
            reply = next((m for m in msgs if getattr(m, "job", None) == job), None)
            time.sleep(0.01)
        assert isinstance(reply, P.Result) and reply.takes[0].song.note_count == 200_000
        # (unpickling it holds the interpreter's lock in the reader thread for a moment, as it
        # did in poll() itself before: a pause proportional to the reply, not a hang)
        print(f"200,000-note reply; slowest poll {worst * 1000:.0f} ms")
    finally:
        client.close()


def test_cancel_never_waits_on_a_lock_the_worker_held():
    client = WorkerClient(warm_up=False, threads=1, target=worker_with_big_answer)
    client.start()
    try:
        assert not hasattr(client._cancel, "get_lock")  # a plain shared integer
    finally:
        client.close()
