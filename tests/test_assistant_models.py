"""The assistant panel end to end with the shipped model weights on the CPU: continue a melody,
harmonize a melody into four tracks (and redraw one voice), vary a selection, and the
``--assist`` screenshot mode.  Each test skips cleanly when its model's weights are not there."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.core.song import Note, Song, Track

pytest.importorskip("PySide6")

ROOT = Path(__file__).resolve().parents[1]
MODELS = Path(os.environ.get("STUDIO_MODELS", ROOT / "models"))
SCREENS = os.environ.get("STUDIO_SCREENS_DIR", "")
TIMEOUT_MS = 240_000


def _have(name: str) -> bool:
    f = MODELS / name / "model.safetensors"
    return f.exists() and f.stat().st_size > 1000  # not a placeholder


needs = {n: pytest.mark.skipif(not _have(n), reason=f"no shipped weights in models/{n}/")
         for n in ("continuation", "harmonizer", "variation")}


def _melody(bars=4) -> Song:
    # "Ode to Joy", in G major, quarter notes with a half note at each phrase end
    line = [71, 71, 72, 74, 74, 72, 71, 69, 67, 67, 69, 71, (71, 720), (69, 240), (69, 960)]
    notes, t = [], 0
    while t < bars * 1920:
        for item in line:
            p, d = item if isinstance(item, tuple) else (item, 480)
            if t >= bars * 1920:
                break
            notes.append(Note(t, p, min(d, bars * 1920 - t), 90))
            t += d
    from studio.core.song import KeySignature

    return Song(title="Ode", tracks=[Track("Melody", program=73, notes=notes)],
                key_signatures=[KeySignature(0, 1, False)])


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    os.environ["STUDIO_SCORE"] = "0"
    from studio.ui.mainwindow import MainWindow

    win = MainWindow(autosave_folder=str(tmp_path_factory.mktemp("autosave")), start_audio=False)
    win.quiet = True
    win.resize(1600, 1000)
    win.show()
    win.assistant.start_worker()
    yield win
    win.assistant.worker.close()
    win.doc.mark_saved()
    win.close()


@pytest.fixture
def panel(window):
    p = window.assistant
    p.discard_all()
    window.doc.replace_song(_melody())
    return p


def _run(panel, qtbot, kind=None, go=None):
    got = []
    panel.jobFinished.connect(got.append)
    try:
        if go is None:
            panel.set_kind(kind)
            assert panel.generate() is not None
        else:
            assert go() is not None
        qtbot.waitUntil(lambda: bool(got), timeout=TIMEOUT_MS)
    finally:
        panel.jobFinished.disconnect(got.append)
    assert got == ["takes"], panel.status.text()
    return panel.shown


def _accept_and_undo(window, panel, before):
    doc = window.doc
    n = doc.undo.count()
    assert panel.accept_current()
    assert doc.undo.count() == n + 1 and doc.song != before
    assert doc.song.meta["ai_history"][-1]["seed"] is not None
    doc.undo.undo()
    assert doc.song == before


def _shot(window, name, tmp_path):
    from PySide6.QtTest import QTest

    QTest.qWait(100)  # let the views catch up (the track list rebuilds on the next turn)
    path = os.path.join(SCREENS or str(tmp_path), name)
    assert window.grab().save(path, "PNG")


@needs["continuation"]
def test_continue_a_melody(window, panel, qtbot, tmp_path):
    before = copy.deepcopy(window.doc.song)
    panel.c_bars.setValue(2)
    panel.c_takes.setValue(2)
    panel.c_seed.setValue(11)
    entry = _run(panel, qtbot, "continue")
    assert len(panel.model.entries) == 2 and entry is panel.model.entries[0]
    d = entry.diff
    assert not d.new_tracks and d.counts()["removed"] == 0 and d.counts()["added"] > 0
    end = before.end_tick
    assert all(end <= n.start < end + 2 * 1920 for t in d.tracks for n in t.added)
    assert window.doc.song == before  # nothing changes before Accept
    _shot(window, "assistant_continue_take.png", tmp_path)
    _accept_and_undo(window, panel, before)


@needs["harmonizer"]
def test_harmonize_a_melody_into_four_tracks_then_redraw_a_voice(window, panel, qtbot, tmp_path):
    doc = window.doc
    doc.replace_song(_melody(bars=2))
    before = copy.deepcopy(doc.song)
    panel.h_seed.setValue(5)
    entry = _run(panel, qtbot, "harmonize")
    d = entry.diff
    assert [t.name for t in d.new_tracks] == ["Alto", "Tenor", "Bass"]
    assert all(t.notes for t in d.new_tracks) and d.tracks[0].empty  # the melody is kept note for note
    assert panel.checker.redraw.isEnabled()  # the checker looks at the four voices of the take
    assert panel.accept_current()
    assert [t.name for t in doc.song.tracks] == ["Melody", "Alto", "Tenor", "Bass"]
    after_harmonize = copy.deepcopy(doc.song)
    panel.run_checker()
    _shot(window, "assistant_harmonized_checker.png", tmp_path)
    # redraw the alto over the second bar; everything else stays
    entry = _run(panel, qtbot, go=lambda: panel.redraw_voice(1, 1920, 3840))
    for td in entry.diff.tracks:
        if td.song_track != 1:
            assert td.empty
        for n in td.all_removed + td.all_added:
            assert n.end > 1920 - 480 and n.start < 3840 + 480
    assert not entry.diff.new_tracks
    _accept_and_undo(window, panel, after_harmonize)
    doc.undo.undo()
    assert doc.song == before


@needs["variation"]
def test_vary_a_selection(window, panel, qtbot, tmp_path):
    doc = window.doc
    before = copy.deepcopy(doc.song)
    sel = [n for n in doc.track.notes if 1920 <= n.start < 3840]  # bar 2
    doc.set_selection(sel)
    panel.v_strength.setValue(100)
    panel.v_takes.setValue(1)
    panel.v_seed.setValue(3)
    panel.v_lock.setChecked(False)
    entry = _run(panel, qtbot, "vary")
    for td in entry.diff.tracks:
        for n in td.all_removed + td.all_added:
            assert 1920 <= n.start < 3840, n
    _shot(window, "assistant_vary_take.png", tmp_path)
    assert window.doc.song == before
    if not entry.diff.empty:
        _accept_and_undo(window, panel, before)
    # locked notes come back untouched
    doc.set_selection(sel[:2])
    panel.v_lock.setChecked(True)
    entry = _run(panel, qtbot, "vary")
    removed = {n for td in entry.diff.tracks for n in td.all_removed}
    assert not removed & set(sel[:2])


@needs["continuation"]
def test_assist_screenshot_mode(tmp_path):
    from studio.io import save

    src = tmp_path / "tune.studio"
    save(_melody(), str(src))
    out = tmp_path / "shot.png"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_SCORE="0")
    r = subprocess.run([sys.executable, "-m", "studio", str(src), "--assist", "continue", "--screenshot", str(out)],
                       capture_output=True, text=True, timeout=400, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.exists() and out.stat().st_size > 10_000
