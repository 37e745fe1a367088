"""Shared test set-up: Qt runs off-screen, and the editor's settings, autosaves and app data
go to a throw-away folder so tests never touch the user's own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
_home = tempfile.mkdtemp(prefix="studio-test-home-")
os.environ.setdefault("XDG_CONFIG_HOME", os.path.join(_home, "config"))
os.environ.setdefault("XDG_DATA_HOME", os.path.join(_home, "data"))
os.environ.setdefault("XDG_STATE_HOME", os.path.join(_home, "state"))  # the log file
os.environ.setdefault("XDG_RUNTIME_DIR", os.path.join(_home, "run"))
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)

# PySide6 6.12 on Python 3.11 drops references to None/True/False; studio.ui guards against it
# (see studio/ui/__init__.py). Import it before any test touches Qt.
import studio.ui  # noqa: E402,F401


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def studio_cli():
    """``run(args, models=None)``: ``python -m studio ARGS`` from the repository root as a child
    process (models from the folder ``models`` when given); the CompletedProcess, text output."""

    def run(args, models=None, timeout=120):
        env = dict(os.environ, **({"STUDIO_MODELS": str(models)} if models is not None else {}))
        return subprocess.run([sys.executable, "-m", "studio", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)

    return run


@pytest.fixture
def editor_window(qtbot, tmp_path):
    """``make(score=False, size=None, settings="settings.ini", autosave=None)``: an editor window
    with its own settings file and autosave folder in ``tmp_path``, no audio engine started and no
    dialogs (``quiet``); shown at ``size`` when given. Closed by qtbot without asking to save."""
    from studio.ui.mainwindow import MainWindow
    from studio.ui.settings import Settings

    def make(score=False, size=None, settings="settings.ini", autosave=None):
        win = MainWindow(settings=Settings(str(tmp_path / settings)), autosave_folder=str(autosave or tmp_path / "autosave"),
                         start_audio=False, score=score)
        win.quiet = True
        qtbot.addWidget(win, before_close_func=lambda w: w.doc.mark_saved())
        if size:
            win.resize(*size)
            win.show()
            qtbot.waitExposed(win)
        return win

    return make
