"""The log file: where it lives, what goes in, and that an unwritable folder is no failure."""

import os
import subprocess
import sys


def _run(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)


def test_records_go_to_the_log_file(tmp_path):
    code = ("import logging; from studio import logs; p = logs.setup('gui'); print(p);"
            "logging.getLogger('studio.x').error('boom %d', 7); logging.getLogger('studio.x').debug('hidden')")
    r = _run(code, {"STUDIO_LOG_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "studio.log")
    text = (tmp_path / "studio.log").read_text()
    assert "gui[" in text and "ERROR studio.x: boom 7" in text and "hidden" not in text


def test_default_folder_follows_xdg_state_home(tmp_path):
    r = _run("from studio import logs; print(logs.log_dir())", {"XDG_STATE_HOME": str(tmp_path), "STUDIO_LOG_DIR": ""})
    assert r.stdout.strip() == str(tmp_path / "cantor-studio")


def test_unwritable_folder_means_no_file_not_a_crash(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = _run("from studio import logs; print(logs.setup('worker'))", {"STUDIO_LOG_DIR": str(blocker / "sub")})
    assert r.returncode == 0 and r.stdout.strip() == "None"
