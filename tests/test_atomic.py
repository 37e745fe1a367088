"""Saves are atomic, and so is the ``.bak``: a full disk, a failing write or a kill -9 at any
moment leaves the file and its backup each a whole, readable version; temp files a killed
save left behind are removed by the next save, and nothing else is."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.core.errors import FileFormatError
from studio.core.song import Note, Song, Track
from studio.io import atomic, load, project, save

ROOT = Path(__file__).resolve().parents[1]


def song(n: int, title: str = "t") -> Song:
    return Song(title=title, tracks=[Track("A", notes=[Note(i * 60, 40 + i % 40, 50, 90) for i in range(n)])])


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_backup_is_the_previous_version_and_a_separate_file(tmp_path):
    path = tmp_path / "a.studio"
    save(song(3, "one"), path)
    save(song(4, "two"), path)
    save(song(5, "three"), path)
    assert load(path).title == "three" and project.read_project(path.with_name("a.studio.bak")).title == "two"
    assert not os.path.samefile(path, path.with_name("a.studio.bak"))
    assert parts(tmp_path) == []


def _fill(folder: Path, leave: int) -> None:
    """Fill the file system of ``folder`` until about ``leave`` bytes are free."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


_TMPFS_SCENARIO = textwrap.dedent(r"""
    import json, os, shutil, sys
    sys.path.insert(0, sys.argv[2])
    from pathlib import Path
    from test_atomic import song, _fill
    from studio.io import load, project, save
    from studio.core.errors import FileFormatError
    d = Path(sys.argv[1])
    path = d / "song.studio"
    save(song(100, "first"), path)
    save(song(3000, "second"), path)  # now song.studio = second, .bak = first (a small file)
    second, first = path.read_bytes(), (d / "song.studio.bak").read_bytes()
    out = {}
    # room for the new file, not for a copy of the old one besides: a backup copied over the
    # old .bak would be cut off here; a linked one needs no room
    _fill(d, len(second) + 16384)
    save(song(3000, "third"), path)
    out["saved_with_little_room"] = load(path).title
    out["bak_after"] = project.read_project(d / "song.studio.bak").title
    # no room at all: the save fails, both files stay as they were
    os.remove(d / "filler"); _fill(d, 2048)
    third, bak = path.read_bytes(), (d / "song.studio.bak").read_bytes()
    try:
        save(song(20000, "fourth"), path)
        out["full_disk"] = "saved?!"
    except FileFormatError as exc:
        out["full_disk"] = str(exc)
    out["file_intact"] = path.read_bytes() == third
    out["bak_intact"] = (d / "song.studio.bak").read_bytes() == bak
    out["parts"] = sorted(p.name for p in d.iterdir() if p.name.endswith(".part"))
    print(json.dumps(out))
""")


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare") or sys.platform != "linux":
        return False
    r = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                       capture_output=True, timeout=30)
    return r.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="cannot mount a tmpfs here (the fault-injected tests below cover it)")
def test_full_disk_on_a_small_tmpfs_keeps_file_and_backup(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "scenario.py"
    script.write_text(_TMPFS_SCENARIO)
    cmd = f"mount -t tmpfs -o size=2m tmpfs {mnt} && exec {sys.executable} {script} {mnt} {ROOT / 'tests'}"
    r = subprocess.run(["unshare", "-rm", "sh", "-c", cmd], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["saved_with_little_room"] == "third" and out["bak_after"] == "second", out
    assert "No space left on device" in out["full_disk"] and out["full_disk"].startswith("song.studio: ")
    assert out["file_intact"] and out["bak_intact"] and out["parts"] == []


def test_backup_copy_that_runs_out_of_space_keeps_the_old_backup(tmp_path, monkeypatch):
    """Where hard links are not available the backup is copied: a disk that fills up during
    the copy fails the save and leaves the previous .bak whole."""
    path = tmp_path / "b.studio"
    save(song(10, "one"), path)
    save(song(10, "two"), path)
    bak_before = path.with_name("b.studio.bak").read_bytes()
    file_before = path.read_bytes()

    def no_links(*a, **k):
        raise OSError(errno.EPERM, "Operation not permitted")

    def full_after_some(src, dst, length=0):
        dst.write(src.read(100))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "link", no_links)
    monkeypatch.setattr(shutil, "copyfileobj", full_after_some)
    with pytest.raises(FileFormatError, match="No space left"):
        save(song(10, "three"), path)
    assert path.read_bytes() == file_before
    assert path.with_name("b.studio.bak").read_bytes() == bak_before
    assert parts(tmp_path) == []
    monkeypatch.undo()
    monkeypatch.setattr(os, "link", no_links)  # the copying path itself works
    save(song(10, "three"), path)
    assert load(path).title == "three" and project.read_project(path.with_name("b.studio.bak")).title == "two"


def test_failing_write_leaves_file_and_backup(tmp_path):
    path = tmp_path / "c.studio"
    save(song(10, "one"), path)
    save(song(10, "two"), path)
    before = path.read_bytes(), path.with_name("c.studio.bak").read_bytes()

    def crash(written):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        project.write_project(song(20_000), path, _chunk_hook=crash)
    assert (path.read_bytes(), path.with_name("c.studio.bak").read_bytes()) == before
    assert parts(tmp_path) == []


_SAVER = textwrap.dedent(r"""
    import sys
    sys.path.insert(0, sys.argv[2])
    from test_atomic import song
    from studio.io import save
    i = 0
    print("ready", flush=True)
    while True:  # save and save again until killed
        i += 1
        save(song(3000 + i % 7, f"v{i}"), sys.argv[1])
""")


def test_kill_at_random_moments_of_saving(tmp_path):
    """kill -9 at random moments of back-to-back saves: the file and the .bak always load."""
    path = tmp_path / "k.studio"
    save(song(10, "v0"), path)
    save(song(10, "v0"), path)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    rng = random.Random(1)
    left = 0
    for run in range(6):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(ROOT / "tests")], env=env,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            proc.kill()
            proc.wait()
        assert load(path).title.startswith("v")
        assert project.read_project(path.with_name("k.studio.bak")).title.startswith("v")
        left += len(parts(tmp_path))
    # the saves were killed mid-way at least sometimes; the next save clears what they left
    save(song(10, "after"), path)
    assert parts(tmp_path) == []
    assert load(path).title == "after"


def test_only_our_own_stale_temp_files_are_removed(tmp_path):
    path = tmp_path / "s.studio"
    save(song(3), path)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = atomic._HOST
    names = {
        "dead": f".s.studio.{host}-{dead.pid}.abcd1234.part",  # a killed save of ours: goes
        "dead_bak": f".s.studio.bak.{host}-{dead.pid}.abcd1235.part",  # its backup link: goes
        "live": f".s.studio.{host}-{live.pid}.abcd1236.part",  # a save in progress: stays
        "other_host": f".s.studio.0123abcd-{dead.pid}.abcd1237.part",  # another machine's: stays
        "other_file": f".t.studio.{host}-{dead.pid}.abcd1238.part",  # another file's: stays
        "user": "s.studio.part",  # not a name we make: stays
        "old_style": ".s.studio.abcd1239.part",  # before pids were recorded: only once an hour old
    }
    try:
        for name in names.values():
            (tmp_path / name).write_bytes(b"{")
        link = tmp_path / f".s.studio.{host}-{dead.pid}.abcd1240.part"
        link.symlink_to(tmp_path / "user-data")  # a link, even with our name, is never touched
        (tmp_path / "user-data").write_text("keep")
        save(song(4), path)
        left = set(os.listdir(tmp_path))
        assert names["dead"] not in left and names["dead_bak"] not in left
        for k in ("live", "other_host", "other_file", "user", "old_style"):
            assert names[k] in left, k
        assert link.is_symlink() and (tmp_path / "user-data").read_text() == "keep"
        old = time.time() - 2 * 3600
        os.utime(tmp_path / names["old_style"], (old, old))
        save(song(5), path)
        assert names["old_style"] not in set(os.listdir(tmp_path)) and names["live"] in set(os.listdir(tmp_path))
    finally:
        live.kill()
        live.wait()


def test_long_names_still_get_a_temp_file(tmp_path):
    name = "é" * 120 + ".studio"  # 247 bytes: a temp name built on it would pass the 255-byte limit
    save(song(3), tmp_path / name)
    save(song(4), tmp_path / name)
    assert load(tmp_path / name).note_count == 4 and parts(tmp_path) == []


def test_the_autosave_folder_is_swept_when_the_editor_starts(tmp_path):
    from studio.ui.autosave import find_orphans

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = atomic._HOST
    ours = tmp_path / f".0a1b2c.studio.{host}-{dead.pid}.abcd1234.part"  # an autosave killed mid-write
    live = tmp_path / f".0a1b2c.json.{host}-{os.getpid()}.abcd1235.part"  # this process: maybe writing now
    other = tmp_path / ".cache.abcd1236.part"  # no host and pid: not a name of ours in a folder sweep
    for p in (ours, live, other):
        p.write_bytes(b"{")
    assert find_orphans(str(tmp_path)) == []
    assert not ours.exists() and live.exists() and other.exists()
