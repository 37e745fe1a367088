"""Atomic file writing: a temp file in the same folder, fsync, then rename over the target.

A crash, a kill or a full disk mid-write leaves the old file (or no file) at the path, never
half a file.  The optional ``.bak`` is made the same way: a hard link to the old file (no data
is copied, so it needs no disk space) renamed over the previous ``.bak``; where the file system
has no hard links, a copy written to a temp file, synced and renamed.  Either way the ``.bak``
too is always a whole file: the previous backup until the moment the new one is complete.

Temp files are named ``.<name>.<host>-<pid>.<random>.part`` beside the target.  A kill can
leave one behind; the next save of the same file removes those whose writing process is gone
(same host, no such process) or that are a day old — never a file of a live save, never
anything that is not a plain file of ours.  The editor also sweeps its autosave folder this way
when it starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import Callable

STALE_SECONDS = 24 * 3600  # a temp file this old is stale whoever wrote it: no save takes a day
_NAME_MAX = 255
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]
_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's alphabet for the random part
_RANDOM = r"[a-z0-9_]{8}"


def _stem(name: str) -> str:
    """``name`` shortened (on a character boundary) so that a temp name built on it fits."""
    room = _NAME_MAX - len(f"..bak.{_HOST}-4194304.abcdefgh.part")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= room:
        return name
    return raw[:room].decode("utf-8", "ignore")


def _prefix(name: str, bak: bool = False) -> str:
    return f".{_stem(name)}{'.bak' if bak else ''}.{_HOST}-{os.getpid()}."


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # make a rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process we can ask about: treat as alive (keep the file)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


_ANY_OURS = re.compile(rf"\..+\.([0-9a-f]{{8}})-(\d{{1,10}})\.{_RANDOM}\.part")


def stale_temp_files(path: str | os.PathLike | None = None, *, folder: str | os.PathLike | None = None) -> list[Path]:
    """The temp files that saves of ours left behind and that nothing is writing any more:
    those of ``path`` (and its ``.bak``), or with ``folder``, every one in that folder (names
    with a host and pid only, so a file of some other program's is never taken for ours)."""
    if folder is not None:
        folder, pattern = Path(folder), _ANY_OURS
    else:
        path = Path(path)
        folder = path.parent if str(path.parent) else Path(".")
        stem = re.escape(_stem(path.name))
        pattern = re.compile(rf"\.{stem}(?:\.bak)?\.(?:([0-9a-f]{{8}})-(\d{{1,10}})\.)?{_RANDOM}\.part")
    now = time.time()
    out = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        m = pattern.fullmatch(name)
        if not m:
            continue
        full = folder / name
        try:
            st = os.lstat(full)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
            continue  # links, folders and other users' files are never ours to remove
        host, pid = m.group(1), m.group(2)
        old = now - st.st_mtime > STALE_SECONDS
        if host is None:  # a name from before pids were recorded: only by age
            dead = now - st.st_mtime > 3600
        elif host == _HOST:
            dead = int(pid) != os.getpid() and not _pid_alive(int(pid))
        else:
            dead = False  # another machine's save (a shared folder): only by age
        if dead or old:
            out.append(full)
    return out


def clean_stale_temp_files(path: str | os.PathLike | None = None, *, folder: str | os.PathLike | None = None) -> int:
    """Remove :func:`stale_temp_files` (same arguments); returns how many went. Never raises."""
    n = 0
    for p in stale_temp_files(path, folder=folder):
        with contextlib.suppress(OSError):
            os.unlink(p)
            n += 1
    return n


def _random_part() -> str:
    return "".join(secrets.choice(_LETTERS) for _ in range(8))


def _copy_to_temp(path: Path, folder: Path, prefix: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=folder)
    try:
        with open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        with contextlib.suppress(OSError):
            shutil.copystat(path, tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp


def _backup(path: Path, folder: Path) -> None:
    """Make ``path + ".bak"`` a whole copy of ``path``, replacing the old ``.bak`` atomically."""
    bak = path.with_name(path.name + ".bak")
    for _ in range(100):
        tmp = str(folder / f"{_prefix(path.name, bak=True)}{_random_part()}.part")
        try:
            os.link(path, tmp)
            break
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some network shares): copy and sync instead
            tmp = _copy_to_temp(path, folder, _prefix(path.name, bak=True))
            break
    else:
        raise FileExistsError(f"no free temp name beside {path}")
    try:
        os.replace(tmp, bak)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], backup: bool = False) -> None:
    """Call ``write(tmp_path)`` to produce the file, then move it into place.

    With ``backup``, an existing file at ``path`` is kept as ``path + ".bak"`` (made
    atomically, see the module's notes).  Stale temp files of earlier, killed saves of the
    same path are removed first.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    clean_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path.name), suffix=".part", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if backup and path.is_file():
            _backup(path, folder)
        os.replace(tmp, path)
        _fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, backup: bool = False) -> None:
    def w(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(data)

    atomic_write(path, w, backup=backup)
