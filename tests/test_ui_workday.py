"""The editor for a working day: keys that work on Linux, a window that fits a 1280x720 laptop,
focus that stays on the roll, panels that follow the playhead (pytest-qt, off-screen)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QEvent, QObject, QPoint, Qt  # noqa: E402
from PySide6.QtGui import QKeySequence  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.core.song import KeySignature, Note, Song, TempoChange, TimeSignature, Track  # noqa: E402
from studio.ui import commands  # noqa: E402
from studio.ui.songprops import SongMapsCommand  # noqa: E402

CTRL, SHIFT = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier


def quartet_song() -> Song:
    mel = [72, 74, 76, 77, 79, 77, 76, 74] * 2
    return Song(title="Four", tracks=[
        Track("Soprano", 52, 0, notes=[Note(i * 480, p, 480) for i, p in enumerate(mel)]),
        Track("Alto", 52, 1, notes=[Note(i * 960, 67, 960) for i in range(8)]),
        Track("Tenor", 52, 2, notes=[Note(i * 960, 60, 960) for i in range(8)]),
        Track("Bass", 52, 3, notes=[Note(i * 960, 48, 960) for i in range(8)])])


@pytest.fixture
def window(editor_window):
    def make(settings_name="settings.ini", score=False, size=(1280, 720)):
        win = editor_window(score=score, size=size, settings=settings_name)
        win.activateWindow()
        return win
    return make


def load(win, song: Song) -> None:
    win.doc.replace_song(song)
    win.editor.show_song_start()
    QApplication.processEvents()  # the track list rebuilds after the signal


class PaintCounter(QObject):
    def __init__(self, widget):
        super().__init__(widget)
        self.count = 0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


# ---- keys ------------------------------------------------------------------------------------
def test_redo_has_no_ambiguous_keys_and_ctrl_y_and_ctrl_shift_z_redo(window, qtbot):
    win = window()
    keys = [k.toString() for k in win.a_redo.shortcuts()]
    assert len(keys) == len(set(keys)), keys  # a key listed twice is an ambiguous shortcut: it does nothing
    assert "Ctrl+Y" in keys and "Ctrl+Shift+Z" in keys
    load(win, quartet_song())
    view = win.editor.view
    view.setFocus()
    for redo in ((Qt.Key.Key_Y, CTRL), (Qt.Key.Key_Z, CTRL | SHIFT)):
        win.doc.set_selection(win.doc.track.notes[:2])
        qtbot.keyClick(view, Qt.Key.Key_Up)
        assert win.doc.undo.index() == 1
        qtbot.keyClick(view, Qt.Key.Key_Z, CTRL)
        assert win.doc.undo.index() == 0
        qtbot.keyClick(view, *redo)
        assert win.doc.undo.index() == 1, redo
        win.doc.undo.clear()


def test_home_moves_the_playhead_and_scrolls_to_it(window, qtbot):
    win = window()
    load(win, quartet_song())
    hb = win.editor.view.horizontalScrollBar()
    hb.setValue(hb.maximum() // 2)
    win.transport.seek(20_000)
    win.a_home.trigger()
    assert win.editor.view.playhead == 0 and hb.value() == 0


def test_ruler_repaints_after_a_meter_change_and_file_new(window, qtbot):
    win = window()
    load(win, quartet_song())
    ruler = win.editor.ruler
    counter = PaintCounter(ruler)
    qtbot.wait(50)
    before = counter.count
    s = win.doc.song
    win.doc.undo.push(SongMapsCommand(win.doc, s.title, "", 0, [TempoChange(0, 100.0)], [TimeSignature(0, 3, 4)],
                                     [KeySignature(0, 0, False)]))
    qtbot.waitUntil(lambda: counter.count > before, timeout=2000)
    assert [b.start for b in win.editor.geom.bars_between(0, 3000)][:3] == [0, 1440, 2880]
    before = counter.count
    win.doc.mark_saved()  # nothing to ask about
    win.new_file()
    qtbot.waitUntil(lambda: counter.count > before, timeout=2000)
    assert [b.start for b in win.editor.geom.bars_between(0, 3000)][:2] == [0, 1920]


# ---- fitting a laptop screen -------------------------------------------------------------------
@pytest.mark.parametrize("size", [(1280, 720), (1600, 1000)])
def test_the_window_fits_and_the_roll_gets_most_of_the_width(window, qtbot, size):
    win = window(score=True, size=size)
    load(win, quartet_song())
    qtbot.wait(50)
    assert win.minimumSizeHint().height() <= 600 and win.minimumSizeHint().width() <= 1100
    assert (win.width(), win.height()) == size
    sb = win.statusBar()
    assert sb.isVisible() and sb.mapTo(win, QPoint(0, sb.height())).y() <= size[1]
    roll = win.editor.width()
    assert roll >= 0.45 * size[0], roll  # the main surface
    assert roll > win.tracks_dock.width() and roll > win.assistant.width()
    if win.score is not None and win.score.width() > 0:
        assert roll > win.score.width()


def test_dock_and_pane_sizes_are_remembered(window, qtbot):
    win = window(score=True, size=(1600, 1000))
    win.resizeDocks([win.tracks_dock], [260], Qt.Orientation.Horizontal)
    win.toggle_score(False)
    qtbot.wait(20)
    width = win.tracks_dock.width()
    assert win.score.width() == 0 and not win.a_score.isChecked()
    win.save_layout()
    again = window(score=True, size=(1600, 1000))
    qtbot.wait(20)
    assert abs(again.tracks_dock.width() - width) <= 4
    assert again.score.width() == 0
    again.a_score.trigger()  # View > Score brings it back
    assert again.score.width() > 100 and again.a_score.isChecked()


def test_without_audio_the_notice_is_one_closable_line(window, qtbot):
    win = window()
    win._audio_ready(False, "audio output is switched off (STUDIO_NO_AUDIO is set). " * 4)
    b = win.banner
    assert b.isVisible() and "Playback is off" in b.text()
    assert b.height() <= 2 * b.fontMetrics().height() + 6  # one line, however long the reason
    assert b.height() < 0.06 * win.height()
    b.close_btn.click()
    assert not b.isVisible() and win.audio_note.isVisible() and "Playback is off" in win.audio_note.toolTip()
    win._audio_ready(False, "still off")
    assert not b.isVisible()  # closed stays closed


# ---- the assistant follows the playhead ------------------------------------------------------
def test_continue_description_follows_the_playhead_and_names_the_bars_it_writes(window, qtbot):
    win = window()
    load(win, quartet_song())  # 4 bars of 4/4
    panel = win.assistant
    panel.set_kind("continue")
    panel.c_bars.setValue(3)
    win.transport.seek(0)
    qtbot.waitUntil(lambda: "bars 5–7 (after the last note)" in panel.where.text(), timeout=2000)
    assert panel.plan().request.from_bar == 5
    win.transport.seek(1920 + 480)  # bar 2, beat 2: the next bar line is bar 3
    qtbot.waitUntil(lambda: "bars 3–5 (from the playhead)" in panel.where.text(), timeout=2000)
    assert panel.plan().request.from_bar == 3 and "replaced" in panel.where.text()
    win.doc.set_selection(win.doc.track.notes[:4])  # bar 1
    qtbot.waitUntil(lambda: "bars 2–4 (after the selection)" in panel.where.text(), timeout=2000)
    assert panel.plan().request.from_bar == 2


# ---- focus and the track list ------------------------------------------------------------------
def focused():
    return QApplication.focusWidget()


def test_focus_comes_back_to_the_roll_after_a_track_switch(window, qtbot):
    win = window()
    load(win, quartet_song())
    view, tl = win.editor.view, win.tracklist
    view.setFocus()
    qtbot.mouseClick(tl.cell(2), Qt.MouseButton.LeftButton)
    assert win.doc.current_track == 2 and focused() is view
    # double-click a faint note of another track: that track becomes current, Up transposes it
    g = win.editor.geom
    n = win.doc.song.tracks[1].notes[0]
    pos = QPoint(int(g.x_of(n.start + 100)), int(g.y_of(n.pitch) + g.key_h / 2))
    qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert win.doc.current_track == 1 and win.doc.selected_notes() == [n]
    qtbot.wait(20)  # the track list follows (its row and ▶ mark)
    assert focused() is view
    qtbot.keyClick(focused(), Qt.Key.Key_Up)
    assert win.doc.song.tracks[1].notes[0].pitch == n.pitch + 1
    assert tl.table.currentRow() == 1 and tl.table.cellWidget(1, 0).text() == "▶"
    assert tl.table.cellWidget(0, 0).text() == ""


def test_renaming_a_track_gives_the_keys_back(window, qtbot):
    win = window()
    load(win, quartet_song())
    cell = win.tracklist.cell(0)
    cell.name.start()
    assert focused() is cell.name.edit
    qtbot.keyClicks(cell.name.edit, "Flute")
    qtbot.keyClick(cell.name.edit, Qt.Key.Key_Return)
    assert win.doc.song.tracks[0].name == "Flute"
    qtbot.wait(20)
    assert focused() is win.editor.view
    qtbot.keyClick(focused(), Qt.Key.Key_D)  # the Draw tool, not a track called "Fluted"
    assert win.editor.view.tool == "draw" and win.doc.song.tracks[0].name == "Flute"
    cell = win.tracklist.cell(0)
    cell.name.start()
    qtbot.keyClicks(cell.name.edit, "xyz")
    qtbot.keyClick(cell.name.edit, Qt.Key.Key_Escape)  # Esc cancels
    assert win.doc.song.tracks[0].name == "Flute" and focused() is win.editor.view


def test_instruments_by_family_with_search_and_a_drum_kit(window, qtbot):
    from studio.ui.instruments import FAMILIES, family_of, label

    assert len(FAMILIES) == 16 and family_of(35) == "Bass" and family_of(40) == "Strings"
    win = window()
    load(win, quartet_song())
    cell = win.tracklist.cell(0)
    assert cell.instrument.text().startswith("Choir Aahs")  # the full name, not "53 Choi"
    picker = win.tracklist.choose_instrument(0)
    picker.search.setText("fretless")
    visible = [k for k, it in picker._items.items() if not it.isHidden()]
    assert visible == [(35, False)]
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    t = win.doc.song.tracks[0]
    assert (t.program, t.is_drum) == (35, False)
    qtbot.wait(20)
    assert win.tracklist.cell(0).instrument.text().startswith(label(35))
    picker = win.tracklist.choose_instrument(3)
    picker.search.setText("drum")
    qtbot.keyClick(picker.search, Qt.Key.Key_Return)
    assert win.doc.song.tracks[3].is_drum
    win.doc.undo.undo()
    win.doc.undo.undo()
    assert not win.doc.song.tracks[3].is_drum and win.doc.song.tracks[0].program == 52


def test_mute_and_solo_show_their_state(window, qtbot):
    win = window()
    load(win, quartet_song())
    tl = win.tracklist
    m = tl.mute_solo(1).mute
    before = m.grab().toImage().pixelColor(m.width() // 2, 3)
    m.click()
    assert win.doc.song.tracks[1].mute
    qtbot.wait(20)
    m = tl.mute_solo(1).mute
    after = m.grab().toImage().pixelColor(m.width() // 2, 3)
    assert m.isChecked() and "on" in m.toolTip()
    assert abs(after.hue() - 40) < 15 and after.saturation() > 150 and before.saturation() < 60  # amber when on


# ---- off the grid ------------------------------------------------------------------------------
def test_grid_values_off_bar_dotted_and_triplets():
    from studio.ui.pianoroll.geometry import GRID_NAMES, grid_ticks

    assert {"Off", "Bar", "1/8.", "1/16."} <= set(GRID_NAMES)
    assert [grid_ticks(n) for n in ("Off", "Bar", "1/4.", "1/8.", "1/16", "1/8T")] == [1, 1920, 720, 360, 120, 160]
    assert grid_ticks("Bar", 480, 1440) == 1440  # a 3/4 bar


def _roll_point(ed, tick, pitch):
    g = ed.geom
    return QPoint(int(round(g.x_of(tick))), int(g.y_of(pitch) + g.key_h / 2))


def _drag(qtbot, ed, a, b, mods=Qt.KeyboardModifier.NoModifier):
    vp = ed.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, mods, a)
    for i in range(1, 5):
        p = a + (b - a) * i / 4
        qtbot.mouseMove(vp, QPoint(int(p.x()), int(p.y())))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, mods, b)


def test_ctrl_drag_and_snap_off_leave_the_grid(window, qtbot):
    win = window()
    load(win, quartet_song())
    ed = win.editor
    ed.geom.ppx = 0.2
    ed.geom.zoomed.emit()
    ed.view.horizontalScrollBar().setValue(0)
    ed.view.center_on_pitch(72)
    n = win.doc.track.notes[0]  # C5 at 0
    _drag(qtbot, ed, _roll_point(ed, 100, 72), _roll_point(ed, 100 + 75, 72), CTRL)
    moved = win.doc.track.notes[0]
    assert moved.pitch == 72 and 60 <= moved.start <= 90 and moved.start % 120  # off the 1/16 grid
    win.doc.undo.undo()
    _drag(qtbot, ed, _roll_point(ed, 100, 72), _roll_point(ed, 100 + 75, 72))
    assert win.doc.track.notes[0].start % 120 == 0  # without Ctrl it snaps
    win.doc.undo.undo()
    assert win.doc.track.notes[0] == n
    win.grid_combo.setCurrentText("Off")
    assert ed.grid == 1 and win.settings.grid == "Off"
    ed.set_tool("draw")
    _drag(qtbot, ed, _roll_point(ed, 5000, 90), _roll_point(ed, 5000 + 333, 90))
    drawn = [x for x in win.doc.track.notes if x.pitch == 90]
    assert len(drawn) == 1 and drawn[0].start % 120 and drawn[0].duration >= 300


# ---- the voice-leading checker knows a quartet from a choir ------------------------------------------
def test_checker_uses_choir_rules_for_voices_and_instrument_ranges_for_a_quartet():
    from studio.core import voiceleading as vl
    from studio.ui.assistant import checker as chk

    # a string quartet, wide apart and high: choir rules would list range and spacing issues
    vln1 = [Note(i * 480, 88 + (i % 3), 480) for i in range(8)]  # E6.. : above a soprano, fine on a violin
    vln2 = [Note(i * 480, 69, 480) for i in range(8)]
    vla = [Note(i * 480, 55, 480) for i in range(8)]
    vc = [Note(i * 480, 38, 480) for i in range(8)]
    quartet = Song(title="String Quartet", tracks=[Track("Violin I", 40, 0, notes=vln1), Track("Violin II", 40, 1, notes=vln2),
                                                   Track("Viola", 41, 2, notes=vla), Track("Violoncello", 42, 3, notes=vc)])
    issues, idx = chk.check_song(quartet)
    assert idx == [0, 1, 2, 3]
    assert not [i for i in issues if i.kind in ("range", "spacing", "crossing")], issues
    assert "Instrumental" in chk.assumptions(quartet, idx)[3]
    # the same notes as a choir: the soprano is out of range and the spacing is wide
    choir = Song(title="Four", tracks=[Track(n, 52, k, notes=list(t.notes)) for k, (n, t) in
                                       enumerate(zip(("Soprano", "Alto", "Tenor", "Bass"), quartet.tracks))])
    issues, idx = chk.check_song(choir)
    kinds = {i.kind for i in issues}
    assert {"range", "spacing"} <= kinds and "Chorale" in chk.assumptions(choir, idx)[3]
    # a cello below its lowest string is still out of range, named as the cello
    low = quartet.copy()
    low.tracks[3].notes = [Note(0, 30, 480)] + low.tracks[3].notes[1:]
    issues, _ = chk.check_song(low)
    assert [i.message for i in issues if i.kind == "range"] == ["Violoncello out of range"]
    assert vl.texture(["Soprano", "Alto", "Tenor", "Bass"], [0, 0, 0, 19]) == "chorale"
    assert vl.texture(["Flute", "Oboe", "Clarinet", "Bassoon"], [73, 68, 71, 70]) == "instrumental"


# ---- takes -------------------------------------------------------------------------------------
def _continue_take(win, bars_from=4, n=4):
    """A hand-made Continue take: ``n`` new bars of quarter notes after bar ``bars_from``."""
    from studio.core import takediff
    from studio.ml.worker import protocol as P
    from studio.ui.assistant.takes import TakeEntry

    base = win.doc.song.copy()
    take = base.copy()
    take.tracks[0].notes = list(take.tracks[0].notes) + [Note(1920 * bars_from + i * 480, 72 + i % 5, 480)
                                                         for i in range(4 * n)]
    d = takediff.diff(base, take, {}, True)
    params = {"bars": n, "from_bar": bars_from + 1, "temperature": 0.8, "keep": ("soprano",), "locked": ()}
    e = TakeEntry(P.Take(take, "continuation", params, 77, 1.25), "continue", base, d)
    panel = win.assistant
    panel.model.add([e])
    panel.takes_view.setCurrentIndex(panel.model.index(len(panel.model.entries) - 1))
    return e


def test_take_tooltips_are_words_and_parameters_explain_themselves(window, qtbot):
    from PySide6.QtWidgets import QFormLayout

    win = window()
    load(win, quartet_song())
    e = _continue_take(win)
    panel = win.assistant
    tip = panel.model.data(panel.model.index(0), Qt.ItemDataRole.ToolTipRole)
    assert "Continuation take, made in 1.2 s" in tip and "temperature 0.8" in tip and "seed 77" in tip
    assert "=" not in tip and "('" not in tip and "keeps the soprano" in tip
    labels = 0
    for form in panel.tabs.findChildren(QFormLayout):
        for r in range(form.rowCount()):
            lab = form.itemAt(r, QFormLayout.ItemRole.LabelRole)
            if lab is not None and lab.widget() is not None and lab.widget().text():
                assert lab.widget().toolTip(), lab.widget().text()
                labels += 1
    assert labels >= 10
    assert all(panel.tabs.tabToolTip(i) for i in range(panel.tabs.count()))
    panel.discard_all()
    assert e not in panel.model.entries


def test_undo_of_an_accepted_take_brings_it_back(window, qtbot):
    win = window()
    load(win, quartet_song())
    win.doc.undo.clear()
    panel = win.assistant
    e = _continue_take(win)
    before = win.doc.song.copy()
    assert panel.accept_current()
    assert e not in panel.model.entries and win.doc.song.note_count == before.note_count + 16
    win.doc.undo.undo()
    assert win.doc.song == before
    assert panel.model.entries == [e] and panel.current_entry() is e and panel.shown is e
    win.doc.undo.redo()
    assert e not in panel.model.entries and panel.shown is None
    win.doc.undo.undo()
    assert panel.accept_current()  # it can be accepted again
    assert win.doc.song.note_count == before.note_count + 16


def test_the_score_shows_the_take_with_its_new_bars(window, qtbot):
    from studio.ui.score.view import ScoreView

    win = window()
    song = quartet_song()
    song.title = "A rather long title for a narrow score pane, as some imported files have"
    load(win, song)
    score = ScoreView(win.doc, inline=True)  # engraves in this process: deterministic for a test
    score.resize(420, 500)
    from studio.ui.assistant.score_overlay import ScoreOverlay

    overlay = ScoreOverlay(score, win.doc)
    with qtbot.waitSignal(score.engraved, timeout=60000):
        score.refresh_now()
    assert score.engraving.last_bar == 4 and score.header.text().startswith("Bars 1–4")
    e = _continue_take(win, bars_from=4, n=4)  # bars 5-8, after the song's end
    with qtbot.waitSignal(score.engraved, timeout=60000):
        overlay.set_take(e)
    eng = score.engraving
    assert eng.first_bar <= 4 and eng.last_bar >= 8  # the new bars are engraved
    assert score.header.text().startswith(f"Bars {eng.first_bar + 1}–{eng.last_bar} · take {e.number}")
    assert overlay.marks()  # the take's notes are ringed
    with qtbot.waitSignal(score.engraved, timeout=60000):
        score.refresh_now()  # a re-engraving (a resize, an edit) still shows the take
    assert score.engraving.last_bar >= 8 and "take" in score.header.text()
    assert score.header.toolTip().endswith(song.title) or song.title in score.header.toolTip()
    with qtbot.waitSignal(score.engraved, timeout=60000):
        overlay.set_take(None)
    assert "take" not in score.header.text()


# ---- same-pitch notes never overlap ---------------------------------------------------------------
def test_same_pitch_notes_do_not_lie_on_top_of_each_other(window, qtbot):
    from studio.core import edits

    win = window()
    song = Song(tracks=[Track("Piano", 0, 0, notes=[Note(0, 60, 960), Note(960, 64, 480)])])
    load(win, song)
    doc, ed = win.doc, win.editor
    before = doc.song.copy()
    commands.push_notes(doc, "Draw note", edits.insert(0, [Note(480, 60, 960)]))  # starts inside C4
    assert sorted(doc.track.notes) == [Note(0, 60, 480), Note(480, 60, 960), Note(960, 64, 480)]
    assert doc.selected_notes() == [Note(480, 60, 960)]  # the new note is the one selected
    doc.undo.undo()
    assert doc.song == before
    doc.set_selection([Note(0, 60, 960)])
    ed.copy()
    win.transport.seek(0)
    ed.paste()  # on top of itself: still one note
    assert sorted(doc.track.notes) == sorted(before.tracks[0].notes)
    doc.undo.undo()
    doc.set_selection([Note(960, 64, 480)])
    ed.transpose(-4)  # E4 down onto the end of the long C4: C4 now ends where it begins
    assert sorted(doc.track.notes) == [Note(0, 60, 960), Note(960, 60, 480)]
    doc.undo.undo()
    assert doc.song == before
    # overlaps already in a file are left alone when the edit does not touch them
    doc.track.notes.append(Note(100, 72, 500))
    doc.track.notes.append(Note(200, 72, 500))
    doc.track.sort()
    changes, fate = edits.resolve_overlaps(doc.song, [edits.insert(0, [Note(3000, 72, 100)])])
    assert changes == [] and fate == {}


def test_help_menu_lists_the_shortcuts(window, qtbot):
    from studio.ui.helpdialog import ShortcutsDialog, shortcut_rows

    win = window()
    menus = [a.text().replace("&", "") for a in win.menuBar().actions()]
    assert menus[-1] == "Help"
    rows = {(what, keys) for _m, what, keys in shortcut_rows(win)}
    assert ("Redo", "Ctrl+Shift+Z, Ctrl+Y") in rows or any(w == "Redo" and "Ctrl+Y" in k for w, k in rows)
    assert any(w == "Keyboard Shortcuts" and k == "F1" for w, k in rows)
    dlg = ShortcutsDialog(win)
    dlg.search.setText("grid")
    found = dlg.items()
    assert any("Ctrl while dragging" in keys for _w, keys in found)
    dlg.close()


def test_gui_bench_children_run_this_checkout(tmp_path):
    """``studio bench`` starts ``python -m studio``: it must run this checkout's code, not the one
    an editable install in the environment points at (which may lack the first-paint hook)."""
    import os
    import subprocess
    import sys

    from studio.ui import bench

    env = bench._child_env(str(tmp_path))
    r = subprocess.run([sys.executable, "-c", "import studio, os; print(os.path.dirname(os.path.dirname(studio.__file__)))"],
                       env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=60)
    assert os.path.realpath(r.stdout.strip()) == os.path.realpath(bench.ROOT)


def test_chromatic_notes_are_spelled_by_key():
    from studio.core.song import KeySignature
    from studio.core.spelling import name, spell
    from studio.io.musicxml import _spelling

    c = KeySignature(0, 0, False)
    assert [name(p) for p in (61, 63, 66, 68, 70)] == ["C♯4", "E♭4", "F♯4", "G♯4", "B♭4"]  # B♭–A, not A♯–A
    assert _spelling(70, c) == ("B", -1, 4)
    assert _spelling(65, KeySignature(0, 6, False)) == ("E", 1, 4)  # E♯ in F♯ major
    assert _spelling(61, KeySignature(0, -1, True)) == ("C", 1, 4)  # the leading tone of D minor
    assert spell(70, "A", True) == ("B", -1, 4) and spell(60, "C#", False) == ("B", 1, 3)


def test_performed_midi_is_quantized_for_the_score_only():
    import random

    from studio.io.musicxml import song_to_music21
    from studio.ui.score.engrave import window

    rng = random.Random(3)
    notes = []
    for i in range(32):  # eighth notes played by hand: early or late, a little detached
        start = i * 240 + rng.randint(-25, 25) + 480
        notes.append(Note(max(0, start), 60 + (i * 5) % 12, 240 - rng.randint(40, 90), 70))
    song = Song(title="played", tracks=[Track("Piano", 0, 0, notes=sorted(notes))])
    sub, *_ = window(song, 0, 4)
    shown = sub.tracks[0].notes
    assert all(n.start % 120 == 0 and n.duration >= 120 for n in shown)
    rests = lambda s: sum(1 for _ in song_to_music21(s).parts[0].recurse().getElementsByClass("Rest"))  # noqa: E731
    raw = Song(title="raw", tracks=[Track("Piano", 0, 0, notes=[n for n in song.tracks[0].notes if n.start < 4 * 1920])])
    assert rests(sub) <= 4 < rests(raw)  # the bar's first beat rest at most, not a rest after every note
    assert song.tracks[0].notes == sorted(notes)  # the song itself is untouched
    # written music is left exactly as it is
    written = Song(tracks=[Track("Piano", 0, 0, notes=[Note(i * 240, 60, 200) for i in range(16)])])
    assert window(written, 0, 2)[0].tracks[0].notes == written.tracks[0].notes


def test_no_key_is_bound_twice(window):
    """A key bound to two actions (or twice to one) in reach of the same widget does nothing in Qt
    ("Ambiguous shortcut overload")."""
    from PySide6.QtGui import QAction

    win = window()
    seen = {}
    for a in win.findChildren(QAction):
        owners = tuple(sorted(id(w) for w in a.associatedObjects()))
        for k in a.shortcuts():
            key = (k.toString(), a.shortcutContext(), owners)
            assert key not in seen or seen[key] is a and False, f"{k.toString()}: {a.text()} and {seen[key].text()}"
            seen[key] = a


def test_a_quartets_octave_doubling_is_not_a_fault_but_its_fifths_are():
    from studio.ui.assistant import checker as chk

    up = [Note(i * 480, p, 480) for i, p in enumerate((60, 62, 64, 65))]
    song = Song(title="Quartet", tracks=[
        Track("Violin I", 40, 0, notes=[Note(n.start, n.pitch + 19, 480) for n in up]),  # a twelfth above: parallel fifths
        Track("Violin II", 40, 1, notes=[Note(n.start, 76, 480) for n in up]),
        Track("Viola", 41, 2, notes=[Note(n.start, n.pitch, 480) for n in up]),
        Track("Violoncello", 42, 3, notes=[Note(n.start, n.pitch - 12, 480) for n in up])])  # octaves with the viola
    kinds = {i.kind for i in chk.check_song(song)[0]}
    assert "parallel_fifths" in kinds and "parallel_octaves" not in kinds


def test_which_parts_count_as_voices():
    from studio.core import voiceleading as vl

    assert vl.is_vocal("Alto", 0) and vl.is_vocal("Choir", 0) and vl.is_vocal("Strings?", 52)
    assert not vl.is_vocal("Soprano Sax", 64) and not vl.is_vocal("Bass Guitar", 33) and not vl.is_vocal("Violin 1", 40)
    assert vl.texture(["Melody", "Alto", "Tenor", "Bass"], [73, 52, 52, 52]) == "chorale"  # a harmonized tune
    assert vl.texture(["Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax"], [64, 65, 66, 67]) == "instrumental"


def test_the_position_shows_a_pickup_as_the_last_beats_of_bar_0(window):
    win = window()
    song = quartet_song()
    song.pickup = 480  # a one-beat upbeat in 4/4: beat 4 of bar 0
    load(win, song)
    win._position(0)
    assert win.position_label.text().strip() == "0.4"
    win._position(480 + 960)
    assert win.position_label.text().strip() == "1.3"
