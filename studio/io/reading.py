"""Reading a whole input file under a size cap, with every failure as one clear line."""

from __future__ import annotations

import os

from ..core.errors import FileFormatError


def read_limited(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of ``path``; a :class:`FileFormatError` naming the file when it is missing, a
    folder, unreadable, or larger than ``limit`` bytes (``what``: "MIDI files", "projects")."""
    label = os.path.basename(str(path))
    try:
        size = os.path.getsize(path)
        if size > limit:
            raise FileFormatError(f"{label}: {size / 1e6:.1f} MB is larger than the {limit // 2**20} MB limit for {what}")
        with open(path, "rb") as fh:
            return fh.read(limit + 1)
    except FileNotFoundError:
        raise FileFormatError(f"{label}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{label}: is a folder, not a file") from None
    except OSError as exc:
        raise FileFormatError(f"{label}: cannot read ({exc.strerror or exc})") from None
