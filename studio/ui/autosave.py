"""Autosave: every 30 s a modified document is written to the app-data folder, never over the
user's own file. A clean exit removes those copies; after a crash, the next start finds them
(their process is gone) and offers to restore each one.

Each document has two files in the folder: ``<id>.studio`` (the song) and ``<id>.json``
(the process id, the user's file path, the title and the time).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

from PySide6.QtCore import QObject, QStandardPaths, QTimer

INTERVAL_MS = 30_000


def default_folder() -> str:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return os.path.join(base or os.path.expanduser("~/.local/share/cantor-studio"), "autosave")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Orphan:
    """An autosaved document whose editor is no longer running."""

    song_path: str
    record_path: str
    original_path: str
    title: str
    saved_at: float

    def discard(self) -> None:
        for p in (self.song_path, self.record_path):
            try:
                os.remove(p)
            except FileNotFoundError:
                pass


def find_orphans(folder: str | None = None) -> list[Orphan]:
    folder = folder or default_folder()
    out = []
    if not os.path.isdir(folder):
        return out
    from ..io.atomic import clean_stale_temp_files  # noqa: PLC0415

    clean_stale_temp_files(folder=folder)  # what autosaves killed mid-write left behind
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".json"):
            continue
        rec_path = os.path.join(folder, name)
        song_path = rec_path[:-5] + ".studio"
        try:
            with open(rec_path, encoding="utf-8") as fh:
                rec = json.load(fh)
        except (OSError, ValueError):
            continue
        if not os.path.exists(song_path):
            continue
        if _alive(int(rec.get("pid", 0))) and int(rec.get("pid", 0)) != os.getpid():
            continue  # another editor that is still running owns it
        out.append(Orphan(song_path, rec_path, str(rec.get("path", "")), str(rec.get("title", "Untitled")),
                          float(rec.get("saved_at", 0))))
    out.sort(key=lambda o: -o.saved_at)
    return out


class Autosaver(QObject):
    def __init__(self, doc, folder: str | None = None, interval_ms: int = INTERVAL_MS, parent=None):
        super().__init__(parent)
        self.doc = doc
        self.folder = folder or default_folder()
        self.id = os.urandom(16).hex()
        self._saved_revision = -1
        self.last_error = ""
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        doc.modifiedChanged.connect(lambda modified: None if modified else self.discard())

    @property
    def song_path(self) -> str:
        return os.path.join(self.folder, f"{self.id}.studio")

    @property
    def record_path(self) -> str:
        return os.path.join(self.folder, f"{self.id}.json")

    def tick(self) -> bool:
        """Write the document if it changed since the last autosave. Returns whether it wrote."""
        doc = self.doc
        if not doc.modified:
            self.discard()
            return False
        if doc.revision == self._saved_revision:
            return False
        from ..io import save  # noqa: PLC0415
        from ..io.atomic import atomic_write_bytes  # noqa: PLC0415

        try:
            os.makedirs(self.folder, exist_ok=True)
            save(doc.song, self.song_path)
            record = {"pid": os.getpid(), "path": doc.path, "title": doc.display_name, "saved_at": time.time()}
            atomic_write_bytes(self.record_path, json.dumps(record).encode("utf-8"))
        except Exception as exc:  # a full disk must not stop editing; the window shows it in the status bar
            self.last_error = f"autosave failed: {exc}"
            return False
        self._saved_revision = doc.revision
        self.last_error = ""
        return True

    def discard(self) -> None:
        """Remove this document's autosave (after a save, or when it is closed on purpose)."""
        self._saved_revision = -1
        for p in (self.song_path, self.record_path):
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
            except OSError:
                pass

    def stop(self) -> None:
        self.timer.stop()
