"""``studio FILE --assist harmonize|continue|vary --screenshot PNG``: open FILE, send that
request through the panel and the worker with the panel's default parameters, wait for the
first take, show it with its diff overlay, write the screenshot and exit.

The screenshot's ``track`` and ``select`` apply first (the current track, and its notes in bars
A..B: what Vary and Continue work from); ``timeout`` (seconds, default 600) bounds the wait."""

from __future__ import annotations

import os
import tempfile

from ...core.errors import StudioError
from ..screenshot import open_for_screenshot, wait_until as wait_for

TIMEOUT = 600.0


def run_request(app, panel, kind: str, timeout: float = TIMEOUT):
    """Send ``kind`` with the panel's current parameters and wait; returns the first new take.

    Raises StudioError with the worker's one-line message when the request fails."""
    outcome = []
    panel.jobFinished.connect(outcome.append)
    try:
        panel.set_kind(kind)
        n_before = len(panel.model.entries)
        if panel.generate() is None:
            raise StudioError(panel.status.text())
        if not wait_for(app, lambda: bool(outcome), timeout):
            panel.cancel()
            raise StudioError(f"the {kind} request took longer than {timeout:.0f} s")
    finally:
        panel.jobFinished.disconnect(outcome.append)
    if outcome[0] != "takes":
        raise StudioError(f"{kind}: {panel.status.text()}")
    entry = panel.model.entry(n_before)
    panel.show_take(entry)
    return entry


def assist_screenshot(app, window_class, path, shot, size, kind: str, track: int = 1, select: str | None = None,
                      timeout: float | None = None) -> int:
    with tempfile.TemporaryDirectory() as autosave_dir:
        win = open_for_screenshot(app, window_class, path, size, autosave_dir, track, select)
        panel = win.assistant
        try:
            panel.start_worker()
            run_request(app, panel, kind, timeout or TIMEOUT)
            score = getattr(win, "score", None)
            wait_for(app, lambda: False, 0.3)
            if score is not None:
                wait_for(app, lambda: score.collapsed or score.engraving is not None and not score.engraver.busy
                         and not score._debounce.isActive() and not score._rasters, 180)
            wait_for(app, lambda: False, 0.2)
            pix = win.grab()
            tmp = shot + ".part.png"
            if not pix.save(tmp, "PNG"):
                raise StudioError(f"{shot}: cannot write the screenshot")
            os.replace(tmp, shot)
        finally:
            panel.worker.close()
            win.doc.mark_saved()
            win.close()
    return 0
