"""Timing a ``studio`` command in a child process (the evaluations' and ``studio bench``'s whole-process figures)."""

import sys
import time
from pathlib import Path

import pytest

from studio.core.errors import StudioError
from studio.core.song import Note, Song, Track
from studio.io import save
from studio.ml.child import ROOT, run_python, run_studio


def test_the_child_runs_this_checkout_from_anywhere(tmp_path, monkeypatch):
    """Another folder as the working directory and another ``studio`` first on the path do not
    change which code the child runs."""
    decoy = tmp_path / "decoy" / "studio"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise SystemExit('the decoy ran')\n")
    monkeypatch.chdir(decoy.parent)
    monkeypatch.setenv("PYTHONPATH", str(decoy.parent))
    r = run_python(["-c", "import sys, studio; print(studio.__file__, file=sys.stderr)"])
    assert r.ok, r.stderr
    assert Path(r.stderr.strip()).resolve() == Path(ROOT, "studio", "__init__.py").resolve()


def test_a_studio_command_is_timed_and_its_error_kept(tmp_path):
    song = Song(title="t", tracks=[Track("Melody", notes=[Note(i * 480, 60 + i, 480) for i in range(8)])])
    save(song, tmp_path / "a.mid")
    r = run_studio("info", str(tmp_path / "a.mid"))
    assert r.ok and r.seconds > 0 and r.cpu_seconds > 0 and r.peak_mib > 0
    assert "@@" not in r.stderr  # the launcher's report is not part of the command's output

    bad = run_studio("info", str(tmp_path / "missing.mid"))
    assert bad.code == 2 and bad.last_line().startswith("studio: error:")
    with pytest.raises(StudioError, match="studio info failed: studio: error:"):
        run_studio("info", str(tmp_path / "missing.mid"), check=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_child_past_its_time_is_stopped_with_the_launcher(tmp_path):
    mark = tmp_path / "pid"
    t0 = time.monotonic()
    r = run_python(["-c", f"import os, time; open({str(mark)!r}, 'w').write(str(os.getpid())); time.sleep(120)"],
                   timeout=5)
    assert r.code == -9 and "timed out after 5 s" in r.last_line()
    assert time.monotonic() - t0 < 60  # back at the timeout, not when the command would have ended
    stat = Path(f"/proc/{int(mark.read_text())}/stat")
    for _ in range(50):  # the command itself is gone too (or dead, waiting to be reaped), not only its launcher
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
                break
        except FileNotFoundError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the command outlived its timeout")
