"""The editor's side of the model worker: start it, send requests, read replies, cancel, restart.

Pure Python, no Qt and no torch: the GUI polls :meth:`WorkerClient.poll` from a timer.
The worker is a separate *spawned* process, so torch is imported there only.

Cancel is cooperative first (the job checks a shared flag once per token or step); if the
job has not stopped ``hard_cancel_after`` seconds later, the process is killed and a fresh
one is started on the next request.  A worker that dies on its own is noticed on the next
poll and reported as a one-line failure of the job it was running.

Replies come back through a one-way pipe whose only writer is the worker (the editor closes
its own copy once the worker has started), read by a small thread into an in-process queue:
:meth:`WorkerClient.poll` only ever takes from that queue, so it never blocks, even when the
worker dies halfway through writing a large reply (the thread then meets the end of the pipe
and stops).  The cancel flag is a plain shared integer without a lock, so a worker killed
while it reads the flag cannot leave a lock held that :meth:`cancel` would wait on forever.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import queue
import threading
import time

from . import protocol as P


class ReplySender:
    """The worker's end of the reply pipe, with the ``put`` of a queue (safe across threads)."""

    def __init__(self, conn):
        self.conn = conn
        self._lock = None

    def __getstate__(self):
        return {"conn": self.conn}

    def __setstate__(self, state):
        self.conn, self._lock = state["conn"], None

    def put(self, msg) -> None:
        if self._lock is None:
            self._lock = threading.Lock()
        with self._lock:
            self.conn.send(msg)


def _read_replies(conn, out: queue.SimpleQueue) -> None:
    """Move replies from the pipe into ``out`` until the worker's end is closed (it exited or
    was killed, maybe halfway through a reply, which is dropped)."""
    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            except Exception:  # a reply that does not unpickle: the stream cannot be trusted after it
                return
            out.put(msg)
    finally:
        conn.close()


class WorkerClient:
    # how long a dead worker's last replies may take to come through the pipe before its
    # running jobs are reported as failed anyway
    DRAIN_SECONDS = 0.5

    def __init__(self, hard_cancel_after: float = 0.15, threads: int | None = None, warm_up: bool = True,
                 target=None, jobs: dict[str, str] | None = None):
        self._ctx = mp.get_context("spawn")
        self._target = target  # the worker's entry point (tests put a stand-in here)
        self.hard_cancel_after = hard_cancel_after
        self.threads = threads
        self.warm_up = warm_up  # load the models while idle
        self.jobs = dict(jobs or {})  # extra jobs, {kind: "module:function"} importable in the worker
        self._proc = None
        self._requests = None
        self._replies: queue.SimpleQueue | None = None
        self._reader: threading.Thread | None = None
        self._dead_since: float | None = None
        self._cancel = None
        self._next_job = 1
        self._running: dict[int, P.Request] = {}  # sent and not yet answered
        self._cancel_deadline: dict[int, float] = {}
        self.device: str | None = None  # filled by the worker's Ready
        self.warmed: tuple[str, ...] = ()
        self.restarts = 0
        self._killed = False  # killed and maybe not reaped yet: never send it another request

    # ---- life cycle -----------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and not self._killed and self._proc.is_alive()

    def start(self) -> None:
        if self.alive:
            return
        if self._proc is not None:  # a worker that died or was killed: reap it first
            self._proc.join(timeout=2.0)
        self._killed = False

        self._requests = self._ctx.Queue()
        receive, send = self._ctx.Pipe(duplex=False)
        self._replies = queue.SimpleQueue()
        self._cancel = self._ctx.Value("q", 0, lock=False)
        self._dead_since = None
        target = self._target
        if target is None:
            from .server import worker_main as target  # a light import: torch loads in the child only

        self._proc = self._ctx.Process(
            target=target, args=(self._requests, ReplySender(send), self._cancel, self.threads, self.warm_up,
                                 dict(self.jobs)),
            name="studio-worker", daemon=True,
        )
        try:
            self._proc.start()
        finally:
            send.close()  # the worker holds the only writing end now: its death ends the pipe
        self._reader = threading.Thread(target=_read_replies, args=(receive, self._replies),
                                        name="studio-worker-replies", daemon=True)
        self._reader.start()

    def close(self) -> None:
        if self._proc is None:
            return
        if self._proc.is_alive():
            try:
                self._requests.put(P.Shutdown())
            except Exception:
                pass
            self._proc.join(timeout=1.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(timeout=1.0)
        self._proc = None

    def kill(self, wait: bool = True) -> None:
        """Kill the worker outright (used by hard cancel, and by tests simulating a crash).

        ``wait=False`` returns at once (a hard cancel must not wait for the process to be
        reaped); the dead process is joined when the next worker starts."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._killed = True
            if wait:
                self._proc.join(timeout=2.0)

    # ---- jobs -----------------------------------------------------------------------
    def submit(self, request: P.Request) -> int:
        """Send a request (its ``job`` field is replaced by a fresh id, which is returned)."""
        if not self.alive:
            if self._proc is not None:
                self.restarts += 1
                self._proc.join(timeout=2.0)  # reap a worker killed without waiting
            self._proc = None
            self._killed = False
            self.start()
        job = self._next_job
        self._next_job += 1
        req = dataclasses.replace(request, job=job)
        self._running[job] = req
        self._requests.put(req)
        return job

    def cancel(self, job: int) -> None:
        if job not in self._running:
            return
        self._cancel.value = job
        self._cancel_deadline[job] = time.monotonic() + self.hard_cancel_after

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def poll(self) -> list:
        """Replies that arrived since the last call (never blocks)."""
        out = []
        if self._replies is not None:
            while True:
                try:
                    msg = self._replies.get_nowait()
                except queue.Empty:
                    break
                if isinstance(msg, P.Ready):
                    self.device = msg.device
                elif isinstance(msg, P.Warmed):
                    self.warmed = msg.models
                elif isinstance(msg, (P.Result, P.Failed, P.CancelledReply)):
                    if isinstance(msg, P.Result) and msg.job in self._cancel_deadline:
                        msg = P.CancelledReply(msg.job)  # finished as the user cancelled: drop it
                    self._running.pop(msg.job, None)
                    self._cancel_deadline.pop(msg.job, None)
                elif isinstance(msg, P.Progress) and msg.job in self._cancel_deadline:
                    continue  # the user has stopped caring about this job's progress
                out.append(msg)
        now = time.monotonic()
        for job, deadline in list(self._cancel_deadline.items()):
            if now >= deadline and job in self._running:
                # the job did not stop in time: a hard cancel is a kill
                self.kill(wait=False)
                for j in list(self._running):
                    out.append(P.CancelledReply(j) if j in self._cancel_deadline else
                               P.Failed(j, "the model worker was restarted; please try again"))
                self._running.clear()
                self._cancel_deadline.clear()
                break
        if self._running and self._proc is not None and (self._killed or not self._proc.is_alive()):
            if not self._killed and self._reader is not None and self._reader.is_alive():
                # it may have answered just before it exited: give the pipe a moment to drain
                self._dead_since = self._dead_since or now
                if now - self._dead_since < self.DRAIN_SECONDS:
                    return out
            code = self._proc.exitcode
            for j in list(self._running):
                out.append(P.Failed(j, f"the model worker stopped unexpectedly (exit code {code}); "
                                       "the song is untouched and the next request starts a new worker"))
            self._running.clear()
            self._cancel_deadline.clear()
        return out

    def wait(self, job: int, timeout: float = 60.0, on_progress=None):
        """Block until ``job`` is answered (for the command line and tests). Returns the reply."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for msg in self.poll():
                if isinstance(msg, P.Progress) and on_progress:
                    on_progress(msg)
                if getattr(msg, "job", None) == job and not isinstance(msg, P.Progress):
                    return msg
            time.sleep(0.01)
        raise TimeoutError(f"job {job} took longer than {timeout} s")
