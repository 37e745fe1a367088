"""The command line's commands, one module per area (``files``, ``render``, one per model, ``bench``).

Shared by the model commands: where the takes go, and the command line a training run records."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def take_paths(out: str, takes: int) -> list[Path]:
    """OUT for one take; OUT-1, OUT-2, ... (before the suffix) for several."""
    p = Path(out)
    if takes == 1:
        return [p]
    return [p.with_name(f"{p.stem}-{i}{p.suffix}") for i in range(1, takes + 1)]


def command_line() -> str:
    """``studio train ...`` as it was typed (for the model card), or "" when not run that way."""
    return "studio " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
