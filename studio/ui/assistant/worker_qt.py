"""The model worker seen from Qt: a QObject over :class:`studio.ml.worker.client.WorkerClient`.

A QTimer polls the client's reply queue (every 30 ms while a job runs, more slowly when
idle) and turns replies into signals.  Nothing here imports torch: the worker is a separate
process, started in the background when the panel opens and warmed up there.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from ...ml.worker import protocol as P
from ...ml.worker.client import WorkerClient

BUSY_MS = 30
IDLE_MS = 250


class AssistantWorker(QObject):
    started = Signal(int, str)  # job id, kind
    progress = Signal(int, float, str)  # job, fraction 0..1, message
    takesReady = Signal(int, list)  # job, [Take]
    failed = Signal(int, str)  # job, one-line message
    cancelled = Signal(int)
    deviceChanged = Signal(str)  # "CPU" or "CUDA: <name>"
    warmed = Signal(tuple, float)  # model names, seconds
    busyChanged = Signal(bool)

    def __init__(self, client: WorkerClient | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self.client = client or WorkerClient()
        self.job: int | None = None  # the job the panel waits for
        self.kinds: dict[int, str] = {}
        self._device = ""
        self._timer = QTimer(self)
        self._timer.setInterval(IDLE_MS)
        self._timer.timeout.connect(self.poll)

    # ---- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker process (it loads and warms the models in the background)."""
        self.client.start()
        self._timer.start()

    def close(self) -> None:
        self._timer.stop()
        self.client.close()

    @property
    def device(self) -> str:
        return self._device

    @property
    def busy(self) -> bool:
        return self.job is not None

    # ---- jobs ---------------------------------------------------------------------------
    def submit(self, request: P.Request) -> int:
        """Send ``request``; any job still running for the panel is cancelled first."""
        if self.job is not None:
            self.cancel()
        was_busy = self.busy
        job = self.client.submit(request)
        self.job = job
        self.kinds[job] = request.kind
        self._timer.start(BUSY_MS)
        self.started.emit(job, request.kind)
        if not was_busy:
            self.busyChanged.emit(True)
        return job

    def cancel(self) -> None:
        if self.job is not None:
            self.client.cancel(self.job)
            self._timer.start(BUSY_MS)
            # look again right when a job that ignores the request is to be killed
            QTimer.singleShot(int(self.client.hard_cancel_after * 1000) + 2, self.poll)

    def kill(self) -> None:
        """Kill the worker process (as a crash would); the next poll reports the running job failed."""
        self.client.kill()

    def _restart(self) -> None:
        if not self.client.alive and self.job is None:
            self.client.start()

    def _done(self, job: int) -> bool:
        """Forget ``job``; True when it was the one the panel waits for."""
        self.kinds.pop(job, None)
        if job == self.job:
            self.job = None
            self.busyChanged.emit(False)
            return True
        return False

    def poll(self) -> None:
        for msg in self.client.poll():
            if isinstance(msg, P.Ready):
                self._device = msg.device
                self.deviceChanged.emit(msg.device)
            elif isinstance(msg, P.Warmed):
                self.warmed.emit(tuple(msg.models), float(msg.seconds))
            elif isinstance(msg, P.Progress):
                if msg.job == self.job:
                    self.progress.emit(msg.job, float(msg.fraction), msg.message)
            elif isinstance(msg, P.Result):
                if self._done(msg.job):
                    self.takesReady.emit(msg.job, list(msg.takes))
            elif isinstance(msg, P.Failed):
                if self._done(msg.job):
                    self.failed.emit(msg.job, msg.message)
            elif isinstance(msg, P.CancelledReply):
                if self._done(msg.job):
                    self.cancelled.emit(msg.job)
                if not self.client.alive:
                    # a job that ignored Cancel was killed: start a fresh worker soon (after the
                    # panel has shown "Cancelled"), so that the next request finds the models loaded
                    QTimer.singleShot(100, self._restart)
        if self.client.device and self.client.device != self._device:
            self._device = self.client.device
            self.deviceChanged.emit(self._device)
        if self.job is None and not self.client.busy:
            self._timer.setInterval(IDLE_MS)
