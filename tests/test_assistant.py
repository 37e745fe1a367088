"""The assistant panel driven end to end with the model-free probe job and hand-made takes:
progress and Cancel, a killed worker, Accept / Undo bit-exact, AI history, the checker.

The tests with the shipped model weights are in test_assistant_models.py.
"""

from __future__ import annotations

import copy
import os
import sys
import time

import pytest

from studio.core.song import Note, Song, Track
from studio.ml.worker import protocol as P

from probe_job import JOBS, ProbeRequest

pytest.importorskip("PySide6")

SCREENS = os.environ.get("STUDIO_SCREENS_DIR", "")


def _melody(bars=4) -> Song:
    pitches = [67, 69, 71, 72, 74, 72, 71, 69, 67, 71, 69, 67, 66, 67, 69, 67]
    notes = [Note(i * 480, pitches[i % len(pitches)], 480, 90) for i in range(4 * bars)]
    return Song(title="Tune", tracks=[Track("Melody", program=73, notes=notes)])


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    os.environ["STUDIO_SCORE"] = "0"
    from studio.ui.mainwindow import MainWindow

    win = MainWindow(autosave_folder=str(tmp_path_factory.mktemp("autosave")), start_audio=False)
    win.quiet = True
    win.resize(1600, 1000)
    win.show()
    win.assistant.worker.client.warm_up = False  # the probe needs no model
    win.assistant.worker.client.jobs = JOBS
    win.assistant.worker.client.threads = 1
    yield win
    win.assistant.worker.close()
    win.doc.mark_saved()
    win.close()


@pytest.fixture
def panel(window, qtbot):
    p = window.assistant
    p.discard_all()
    window.doc.replace_song(_melody())
    return p


def _plan(song, **kw):
    from studio.ui.assistant.requests import Plan

    return Plan(ProbeRequest(0, song.copy(), **kw), song.copy())


def _wait_progress(qtbot, panel, at_least=0.1, timeout=90_000):
    qtbot.waitUntil(lambda: panel.progress.value() >= at_least * 1000, timeout=timeout)


def _shot(window, name, tmp_path):
    from PySide6.QtTest import QTest

    QTest.qWait(100)
    folder = SCREENS or str(tmp_path)
    path = os.path.join(folder, name)
    assert window.grab().save(path, "PNG")
    return path


def test_progress_then_cancel_leaves_the_song_alone(window, panel, qtbot, tmp_path):
    before = copy.deepcopy(window.doc.song)
    got = []
    panel.jobFinished.connect(got.append)
    panel.submit(_plan(window.doc.song, steps=2000, step_seconds=0.01))
    assert panel.cancel_btn.isEnabled()
    _wait_progress(qtbot, panel, 0.05)
    assert panel.progress.value() > 0 and "%p%" in panel.progress.format()  # a running percentage
    _shot(window, "assistant_progress.png", tmp_path)
    t0 = time.perf_counter()
    panel.cancel_btn.click()
    qtbot.waitUntil(lambda: got == ["cancelled"], timeout=5000)
    dt = time.perf_counter() - t0
    assert dt < 0.35, f"cancel took {dt:.3f} s"
    assert window.doc.song == before and not panel.model.entries
    assert "Cancelled" in panel.status.text() and not panel.cancel_btn.isEnabled()
    panel.jobFinished.disconnect(got.append)


def test_killed_worker_is_reported_and_the_next_request_works(window, panel, qtbot):
    before = copy.deepcopy(window.doc.song)
    got = []
    panel.jobFinished.connect(got.append)
    panel.submit(_plan(window.doc.song, steps=2000, step_seconds=0.01))
    _wait_progress(qtbot, panel, 0.02)
    panel.worker.kill()
    qtbot.waitUntil(lambda: got == ["failed"], timeout=10_000)
    text = panel.status.text()
    assert "stopped unexpectedly" in text and "\n" not in text
    assert window.doc.song == before
    panel.submit(_plan(window.doc.song, steps=3, step_seconds=0.01))
    qtbot.waitUntil(lambda: got == ["failed", "takes"], timeout=90_000)
    assert len(panel.model.entries) == 1 and panel.model.entries[0].diff.empty
    panel.jobFinished.disconnect(got.append)


def _harmonized_take(song: Song) -> Song:
    """What the harmonizer sends back: the melody as Soprano over three new voices."""
    mel = song.tracks[0].notes
    take = Song(title=song.title, tempos=list(song.tempos), time_signatures=list(song.time_signatures),
                key_signatures=list(song.key_signatures))
    take.tracks.append(Track("Soprano", program=52, notes=list(mel)))
    for name, down in (("Alto", 5), ("Tenor", 12), ("Bass", 24)):
        take.tracks.append(Track(name, program=52, notes=[Note(n.start, n.pitch - down, n.duration) for n in mel]))
    return take


def _add_take(panel, take_song, kind="harmonize", anchor=None, by_index=False):
    from studio.core import takediff
    from studio.ui.assistant.takes import TakeEntry

    base = panel.doc.song.copy()
    d = takediff.diff(base, take_song, anchor if anchor is not None else {0: 0}, by_index)
    e = TakeEntry(P.Take(take_song, "harmonizer", {"temperature": 0.7, "keep": ("soprano",)}, 1234, 0.5), kind, base, d)
    panel.model.add([e])
    panel.takes_view.setCurrentIndex(panel.model.index(len(panel.model.entries) - 1))
    return e


def test_accept_is_one_undo_step_and_undo_is_bit_exact(window, panel, qtbot, tmp_path):
    doc = window.doc
    doc.undo.clear()
    before = copy.deepcopy(doc.song)
    e = _add_take(panel, _harmonized_take(doc.song))
    assert panel.shown is e and window.assistant.roll_overlay.entry is e
    assert doc.song == before  # showing a take changes nothing
    _shot(window, "assistant_take_overlay_synthetic.png", tmp_path)
    assert panel.accept_btn.isEnabled()
    panel.accept_btn.click()
    assert doc.undo.count() == 1
    assert [t.name for t in doc.song.tracks] == ["Melody", "Alto", "Tenor", "Bass"]
    assert len({t.channel for t in doc.song.tracks}) == 4
    hist = doc.song.meta["ai_history"]
    assert hist[-1]["model"] == "harmonizer" and hist[-1]["seed"] == 1234 and hist[-1]["params"]["keep"] == ["soprano"]
    after = copy.deepcopy(doc.song)
    doc.undo.undo()
    assert doc.song == before and "ai_history" not in doc.song.meta
    doc.undo.redo()
    assert doc.song == after
    doc.undo.undo()
    assert doc.song == before


def test_ai_history_round_trips_through_the_project_file(window, panel, tmp_path):
    from studio.io.project import read_project, write_project

    doc = window.doc
    e = _add_take(panel, _harmonized_take(doc.song))
    panel.accept_current()
    path = tmp_path / "song.studio"
    write_project(doc.song, path)
    again = read_project(path)
    assert again.meta["ai_history"] == doc.song.meta["ai_history"]
    assert again.meta["ai_history"][0]["params"]["temperature"] == 0.7
    assert e not in panel.model.entries


def test_discard_drops_the_take_without_touching_the_song(window, panel):
    before = copy.deepcopy(window.doc.song)
    _add_take(panel, _harmonized_take(window.doc.song))
    panel.discard_btn.click()
    assert not panel.model.entries and panel.shown is None and window.doc.song == before
    assert window.assistant.roll_overlay.entry is None


def _satb_with_parallel_fifths() -> Song:
    # soprano and bass move C->D over a held alto/tenor: soprano G4->A4, bass C3->D3 (fifths + octave)
    s = [Note(0, 67, 480), Note(480, 69, 480)]
    a = [Note(0, 64, 960)]
    t = [Note(0, 60, 960)]
    b = [Note(0, 48, 480), Note(480, 50, 480)]
    return Song(tracks=[Track("Soprano", notes=s), Track("Alto", notes=a), Track("Tenor", notes=t),
                        Track("Bass", notes=b)])


def test_checker_lists_parallels_and_clicking_selects_the_notes(window, panel, qtbot):
    window.doc.replace_song(_satb_with_parallel_fifths())
    panel.run_checker()
    kinds = [i.kind for i in panel.issues]
    assert "parallel_fifths" in kinds
    row = kinds.index("parallel_fifths")
    assert window.assistant.roll_overlay.issues == panel.issues
    item = panel.checker.list.item(row)
    assert "Bar 1 beat 1" in item.text() and "parallel fifths" in item.text()
    panel.checker.list.setCurrentRow(row)
    sel = window.doc.selected_notes()
    assert sel and window.doc.current_track in (0, 3)
    assert {n.pitch for n in sel} <= {67, 69, 48, 50}


def test_checker_looks_at_the_shown_take(window, panel):
    from studio.ui.assistant.checker import satb_tracks

    assert satb_tracks(window.doc.song) is None
    _add_take(panel, _harmonized_take(window.doc.song))
    assert "take" in panel.checker.summary.text()
    # the fake take doubles the melody in octaves: parallel octaves everywhere
    assert any(i.kind == "parallel_octaves" for i in panel.issues)
    panel.discard_all()
    assert not panel.issues


def test_requests_follow_selection_cursor_and_loop(window, panel):
    from studio.ui.assistant import requests as rq

    doc = window.doc
    sel = [n for n in doc.track.notes if n.start < 1920 * 2]  # bars 1-2
    doc.set_selection(sel)
    ctx = panel.context()
    plan = rq.continue_plan(ctx, 4, None, None, 1, None)
    assert plan.request.from_bar == 3 and "bars 3–6" in plan.where
    v = rq.vary_plan(ctx, 0.5, 1, False, 7)
    assert (v.request.start_tick, v.request.end_tick) == (0, 3840) and v.request.tracks == (0,)
    v = rq.vary_plan(ctx, 0.5, 1, True, 7)
    assert len(v.request.locked) == len(sel) and v.request.start_tick == 0 and v.request.end_tick == doc.song.end_tick
    doc.clear_selection()
    from studio.core.timing import bar_of

    plan = rq.continue_plan(panel.context(), 2, None, None, 1, None)  # after the last note, by number
    assert plan.request.from_bar == bar_of(doc.song, doc.song.end_tick - 1) + 2 and "after the last note" in plan.where
    h = rq.harmonize_plan(panel.context(), False, None, None, 1, None)
    assert h.request.melody_track == 0 and h.anchor == {0: 0} and not h.by_index
    assert h.request.song == doc.song and h.request.song is not doc.song  # a snapshot


def test_key_strength_box_reaches_the_request(window, panel):
    from studio.ui.assistant.params import KEY_DEFAULT

    pages = panel  # the panel builds its parameter pages itself
    assert pages.c_key.value() == pytest.approx(KEY_DEFAULT)
    assert pages.plan("continue").request.key_strength is None  # the model's default
    pages.c_key.setValue(0.0)
    assert pages.plan("continue").request.key_strength == 0.0  # the model alone
    pages.c_key.setValue(1.5)
    req = pages.plan("continue").request
    assert req.key_strength == pytest.approx(1.5) and req.params()["key_strength"] == pytest.approx(1.5)
    pages.use_settings({"kind": "continue", "params": {"bars": 2, "key_strength": None}})
    assert pages.c_key.value() == pytest.approx(KEY_DEFAULT)
    pages.c_key.setValue(KEY_DEFAULT)


def test_density_range_and_cadence_reach_the_request(window, panel):
    from studio.ui.assistant import requests as rq

    req = panel.plan("continue").request
    assert req.density == () and not req.keep_range and not req.cadence and not req.smooth_lines  # by default
    assert panel.c_follow.isChecked() and req.follow_density is None  # the model's default: follow
    panel.c_density.setCurrentIndex(rq.DENSITIES.index("denser"))
    panel.c_keep_range.setChecked(True)
    panel.c_cadence.setChecked(True)
    panel.c_follow.setChecked(False)
    panel.c_smooth.setChecked(True)
    req = panel.plan("continue").request
    n = len(window.doc.song.tracks)
    assert req.density == ("denser",) * n and req.keep_range and req.cadence and req.follow_density is False
    assert req.smooth_lines
    panel.c_density_track.setChecked(True)
    req = panel.plan("continue").request
    cur = window.doc.current_track
    assert req.density[cur] == "denser" and all(d == "as before" for i, d in enumerate(req.density) if i != cur)
    params = req.params()
    panel.use_settings({"kind": "continue", "params": {"bars": 2}})  # older history: the defaults
    assert panel.c_density.currentIndex() == rq.DENSITIES.index("as before") and not panel.c_cadence.isChecked()
    panel.use_settings({"kind": "continue", "params": params})
    assert panel.c_density.currentIndex() == rq.DENSITIES.index("denser")
    assert panel.c_density_track.isChecked() == (n > 1) and panel.c_keep_range.isChecked() and panel.c_cadence.isChecked()
    assert not panel.c_follow.isChecked() and panel.c_smooth.isChecked()
    panel.use_settings({"kind": "continue", "params": {"bars": 4}})
    assert panel.c_follow.isChecked() and not panel.c_smooth.isChecked()


def test_device_shows_in_the_status_bar(window, panel, qtbot):
    panel.start_worker()
    qtbot.waitUntil(lambda: bool(panel.worker.device), timeout=90_000)
    assert panel.device_label.text() in ("Models: CPU", "Models: MPS") or "CUDA" in panel.device_label.text()


def test_gui_process_never_imports_torch():
    import subprocess

    code = r"""
import os, sys, tempfile
os.environ["QT_QPA_PLATFORM"] = "offscreen"; os.environ["STUDIO_SCORE"] = "0"
sys.path.insert(0, TESTS)
def main():
    from studio.ui.app import make_app
    from studio.ui.screenshot import wait_until
    app = make_app()
    from studio.ui.mainwindow import MainWindow
    from studio.core.song import Song, Track, Note
    from studio.ui.assistant.requests import Plan
    w = MainWindow(autosave_folder=tempfile.mkdtemp(), start_audio=False)
    w.assistant.worker.client.warm_up = False
    from probe_job import JOBS, ProbeRequest
    w.assistant.worker.client.jobs = JOBS
    s = Song(tracks=[Track("M", notes=[Note(0, 60, 480)])])
    w.doc.replace_song(s)
    w.assistant.submit(Plan(ProbeRequest(0, s.copy(), steps=3), s.copy()))
    assert wait_until(app, lambda: w.assistant.model.entries, 90)
    w.assistant.worker.close()
    assert "torch" not in sys.modules, "the GUI imported torch"
    print("ok")
if __name__ == "__main__":
    main()
"""
    code = code.replace("TESTS", repr(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_harmonizing_a_four_voice_song_rewrites_its_own_voices(window, panel):
    from studio.ui.assistant import requests as rq

    doc = window.doc
    doc.replace_song(_satb_with_parallel_fifths())
    doc.set_current_track(2)  # the tenor is current: the soprano is still the melody
    h = rq.harmonize_plan(panel.context(), False, None, None, 1, None)
    assert h.request.melody_track == 0 and h.anchor == {0: 0, 1: 1, 2: 2, 3: 3}
    flute = Song(tracks=[Track("Flute", notes=[Note(0, 72, 480)]), Track("Cello", notes=[Note(0, 48, 480)])])
    doc.replace_song(flute)
    h = rq.harmonize_plan(panel.context(), True, None, None, 1, None)
    assert h.request.keep == ("soprano", "bass") and h.anchor == {0: 0, 3: 1}


def test_regenerate_names_the_voices_the_way_the_checker_sees_them(window, panel):
    from studio.ui.assistant import requests as rq

    song = Song(tracks=[Track("Tune", notes=[Note(0, 72, 480)]), Track("Alto", notes=[Note(0, 76, 480)]),
                        Track("Tenor", notes=[Note(0, 60, 480)]), Track("Bass", notes=[Note(0, 48, 480)])])
    plan = rq.regenerate_plan(song, song.copy(), [1], 0, 480, None, None, None)
    assert [t.name for t in plan.request.song.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert song.tracks[0].name == "Tune"  # the document's song keeps its names
    assert plan.anchor == {0: 0, 1: 1, 2: 2, 3: 3} and plan.request.voices == (1,)


def test_loading_another_song_drops_the_takes(window, panel):
    _add_take(panel, _harmonized_take(window.doc.song))
    assert panel.model.entries
    window.doc.replace_song(_melody(2))
    assert not panel.model.entries and panel.shown is None


def test_audition_plays_the_take_then_the_original(window, panel):
    played = []
    old = panel.play_song
    panel.play_song = lambda song, start: played.append((song, start)) or True
    try:
        e = _add_take(panel, _harmonized_take(window.doc.song))
        assert panel.audition(take=True) and panel.audition(take=False)
    finally:
        panel.play_song = old
    (take_song, t0), (orig, t1) = played
    assert len(take_song.tracks) == 4 and orig is window.doc.song and len(orig.tracks) == 1
    assert t0 == t1 == 0 and e.diff.span[0] == 0


def test_a_take_no_longer_fits_after_the_tracks_change(window, panel):
    from studio.ui import commands

    doc = window.doc
    _add_take(panel, _harmonized_take(doc.song))
    doc.undo.push(commands.AddTrack(doc))
    before = copy.deepcopy(doc.song)
    assert not panel.accept_current()
    assert "Generate it again" in panel.status.text() and doc.song == before


def test_a_job_that_ignores_cancel_is_killed_in_time_and_the_worker_comes_back(window, panel, qtbot):
    got = []
    panel.jobFinished.connect(got.append)
    # one-second steps: the job only looks at the cancel flag once a second
    panel.submit(_plan(window.doc.song, steps=100, step_seconds=1.0))
    _wait_progress(qtbot, panel, 0.01)
    t0 = time.perf_counter()
    panel.cancel()
    qtbot.waitUntil(lambda: got == ["cancelled"], timeout=5000)
    dt = time.perf_counter() - t0
    assert dt < 0.3, f"hard cancel took {dt:.3f} s"
    qtbot.waitUntil(lambda: panel.worker.client.alive, timeout=5000)  # restarted in the background
    panel.submit(_plan(window.doc.song, steps=2, step_seconds=0.01))
    qtbot.waitUntil(lambda: got == ["cancelled", "takes"], timeout=90_000)
    panel.jobFinished.disconnect(got.append)


def test_ai_history_lists_accepted_takes_and_gives_their_settings_back(window, panel):
    doc = window.doc
    assert panel.history.list.count() == 0
    _add_take(panel, _harmonized_take(doc.song))
    panel.accept_current()
    assert panel.history.list.count() == 1
    assert "seed 1234" in panel.history.list.item(0).text()
    panel.h_seed.setValue(0)
    panel.set_kind("continue")
    panel.history.list.setCurrentRow(0)
    panel.history.use_btn.click()
    assert panel.kind == "harmonize" and panel.h_seed.value() == 1234 and abs(panel.h_temp.value() - 0.7) < 1e-9
    doc.undo.undo()
    assert panel.history.list.count() == 0


def test_missing_weights_are_one_clear_line(window, panel, qtbot, tmp_path, monkeypatch):
    panel.worker.close()
    monkeypatch.setenv("STUDIO_MODELS", str(tmp_path))  # an empty models folder
    got = []
    panel.jobFinished.connect(got.append)
    try:
        panel.set_kind("continue")
        before = copy.deepcopy(window.doc.song)
        assert panel.generate() is not None
        qtbot.waitUntil(lambda: bool(got), timeout=90_000)
    finally:
        panel.jobFinished.disconnect(got.append)
        panel.worker.close()  # the next test starts a worker with the real models folder
    assert got == ["failed"]
    text = panel.status.text()
    assert "weights" in text and "\n" not in text and "Traceback" not in text
    assert window.doc.song == before and not panel.model.entries


def test_redraw_offers_the_songs_own_parts_by_name(window, panel):
    from studio.ui.assistant import requests as rq

    quartet = _satb_with_parallel_fifths()
    for t, name, program in zip(quartet.tracks, ("Violin I", "Violin II", "Viola", "Cello"), (40, 40, 41, 42)):
        t.name, t.program = name, program
    quartet.pickup = 480  # the fifths fall from the pickup (bar 0) into bar 1
    window.doc.replace_song(quartet)
    panel.run_checker()
    combo = panel.checker.voice
    assert [combo.itemText(k) for k in range(combo.count())] == ["Violin I", "Violin II", "Viola", "Cello"]
    fifths = next(i for i in panel.issues if i.kind == "parallel_fifths")
    row = panel.issues.index(fifths)
    assert panel.checker.list.item(row).text().startswith("Bar 0 beat 1")
    assert "Violin I" in panel.checker.list.item(row).toolTip() and "soprano" not in panel.checker.list.item(row).toolTip()
    plan = rq.regenerate_plan(quartet, quartet.copy(), [2], 480, 960, None, None, None)
    assert plan.where == "redraws the Viola over bar 1"
    assert rq.regenerate_plan(quartet, quartet.copy(), [3], 0, 2400, None, None, None).where == \
        "redraws the Cello over bars 0–1"
    assert [t.name for t in plan.request.song.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]  # what the model reads
    # two parts of one name are told apart by their track numbers; a chorale keeps its voices' names
    quartet.tracks[1].name = "Violin I"
    window.doc.replace_song(quartet)
    panel.run_checker()
    assert [combo.itemText(k) for k in range(combo.count())][:2] == ["Violin I (track 1)", "Violin I (track 2)"]
    window.doc.replace_song(_satb_with_parallel_fifths())
    panel.run_checker()
    assert [combo.itemText(k) for k in range(combo.count())] == ["Soprano", "Alto", "Tenor", "Bass"]
