"""The app's log file: warnings, errors and worker tracebacks, one rotating file per user.

``$XDG_STATE_HOME/cantor-studio/studio.log`` (``~/.local/state/cantor-studio/studio.log``);
``$STUDIO_LOG_DIR`` overrides the folder. The GUI and the model worker both write to it,
each line naming its process. Logging never stops the app: an unwritable folder just means
no file.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

_done = False


def log_dir() -> Path:
    if os.environ.get("STUDIO_LOG_DIR"):
        return Path(os.environ["STUDIO_LOG_DIR"])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "cantor-studio"


def setup(process: str, level: int = logging.INFO) -> Path | None:
    """Send this process's log records (``level`` and up) to the log file; returns its path."""
    global _done
    if _done:
        return None
    _done = True
    path = log_dir() / "studio.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter(f"%(asctime)s {process}[%(process)d] %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)
    logging.captureWarnings(True)
    return path
