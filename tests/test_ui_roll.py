"""The piano roll driven by real mouse and key events (pytest-qt, off-screen)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QPoint, Qt  # noqa: E402

from studio.core.song import Note, Song, Track  # noqa: E402
from studio.ui.document import Document  # noqa: E402
from studio.ui.pianoroll import tools  # noqa: E402
from studio.ui.pianoroll.editor import RollEditor  # noqa: E402

L, NO, SH, ALT, CTRL = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier, \
    Qt.KeyboardModifier.AltModifier, Qt.KeyboardModifier.ControlModifier


def make_song(*notes) -> Song:
    return Song(tracks=[Track("Piano", 0, 0, notes=sorted(notes)), Track("Bass", 32, 1, notes=[Note(0, 40, 1920)])])


@pytest.fixture
def roll(qtbot):
    def make(*notes):
        doc = Document(make_song(*notes))
        ed = RollEditor(doc)
        qtbot.addWidget(ed)
        ed.resize(1000, 700)
        ed.show()
        qtbot.waitExposed(ed)
        ed.geom.ppx, ed.geom.key_h = 0.1, 12.0  # a quarter note = 48 px
        ed.geom.zoomed.emit()
        ed.view.horizontalScrollBar().setValue(0)
        ed.view.center_on_pitch(62)
        ed.set_grid("1/16")
        return ed
    return make


def at(ed, tick, pitch) -> QPoint:
    g = ed.geom
    return QPoint(int(round(g.x_of(tick))), int(g.y_of(pitch) + g.key_h / 2))


def drag(qtbot, ed, a, b, mods=NO, steps=4):
    vp = ed.view.viewport()
    qtbot.mousePress(vp, L, mods, a)
    for i in range(1, steps + 1):
        p = a + (b - a) * i / steps
        qtbot.mouseMove(vp, QPoint(int(p.x()), int(p.y())))
    qtbot.mouseRelease(vp, L, mods, b)


def notes(ed, track=0):
    return list(ed.doc.song.tracks[track].notes)


def test_draw_a_note_sets_its_length_by_dragging(qtbot, roll):
    ed = roll()
    ed.set_tool(tools.DRAW)
    drag(qtbot, ed, at(ed, 485, 60), at(ed, 962, 60))
    assert notes(ed) == [Note(480, 60, 480, 90)]
    assert ed.doc.undo.count() == 1
    assert ed.doc.modified


def test_move_by_drag_is_one_undo_step_and_snaps(qtbot, roll):
    ed = roll(Note(0, 60, 480))
    drag(qtbot, ed, at(ed, 240, 60), at(ed, 240 + 487, 62), steps=8)
    assert notes(ed) == [Note(480, 62, 480)]
    assert ed.doc.undo.count() == 1
    ed.doc.undo.undo()
    assert notes(ed) == [Note(0, 60, 480)]


def test_alt_drag_bypasses_the_snap(qtbot, roll):
    ed = roll(Note(0, 60, 480))
    drag(qtbot, ed, at(ed, 240, 60), at(ed, 240 + 500, 60), mods=ALT)
    (n,) = notes(ed)
    assert n.start % 120 != 0 and abs(n.start - 500) <= 10


def test_resize_by_the_right_edge(qtbot, roll):
    ed = roll(Note(0, 60, 480))
    edge = at(ed, 480, 60) - QPoint(2, 0)
    drag(qtbot, ed, edge, at(ed, 960, 60) - QPoint(2, 0))
    assert notes(ed) == [Note(0, 60, 960)]
    assert ed.doc.undo.count() == 1


def test_click_select_and_delete_key(qtbot, roll):
    ed = roll(Note(0, 60, 480), Note(480, 64, 480))
    qtbot.mouseClick(ed.view.viewport(), L, NO, at(ed, 600, 64))
    assert ed.doc.selection == {Note(480, 64, 480)}
    assert ed.doc.undo.count() == 0  # a click without a drag changes nothing
    qtbot.keyClick(ed.view, Qt.Key.Key_Delete)
    assert notes(ed) == [Note(0, 60, 480)]


def test_rubber_band_and_shift_click_select(qtbot, roll):
    ed = roll(Note(0, 60, 240), Note(240, 62, 240), Note(960, 67, 240))
    drag(qtbot, ed, at(ed, 700, 70), at(ed, 10, 59))  # from empty space, right to left
    assert ed.doc.selection == {Note(0, 60, 240), Note(240, 62, 240)}
    qtbot.mouseClick(ed.view.viewport(), L, SH, at(ed, 1000, 67))
    assert len(ed.doc.selection) == 3


def test_erase_tool_and_right_click_erase(qtbot, roll):
    ed = roll(Note(0, 60, 480), Note(480, 62, 480), Note(960, 64, 480))
    ed.set_tool(tools.ERASE)
    drag(qtbot, ed, at(ed, 100, 60), at(ed, 600, 62))
    assert notes(ed) == [Note(960, 64, 480)]
    assert ed.doc.undo.count() == 1
    ed.set_tool(tools.SELECT)
    qtbot.mouseClick(ed.view.viewport(), Qt.MouseButton.RightButton, NO, at(ed, 1000, 64))
    assert notes(ed) == []


def test_quantize_key(qtbot, roll):
    ed = roll(Note(130, 60, 350), Note(490, 62, 100))
    qtbot.keyClick(ed.view, Qt.Key.Key_Q)
    assert notes(ed) == [Note(120, 60, 360), Note(480, 62, 120)]
    ed.doc.undo.undo()
    assert notes(ed) == [Note(130, 60, 350), Note(490, 62, 100)]


def test_copy_paste_at_playhead_and_duplicate(qtbot, roll):
    ed = roll(Note(0, 60, 480), Note(480, 64, 480))
    qtbot.keyClick(ed.view, Qt.Key.Key_A, CTRL)
    qtbot.keyClick(ed.view, Qt.Key.Key_C, CTRL)
    ed.set_playhead(3840)
    qtbot.keyClick(ed.view, Qt.Key.Key_V, CTRL)
    assert notes(ed)[2:] == [Note(3840, 60, 480), Note(4320, 64, 480)]
    assert ed.doc.selection == {Note(3840, 60, 480), Note(4320, 64, 480)}  # the pasted notes
    qtbot.keyClick(ed.view, Qt.Key.Key_D, CTRL)
    assert Note(4800, 60, 480) in notes(ed) and len(notes(ed)) == 6
    qtbot.keyClick(ed.view, Qt.Key.Key_X, CTRL)
    assert len(notes(ed)) == 4


def test_arrow_keys_transpose_and_move_by_grid(qtbot, roll):
    ed = roll(Note(480, 60, 240))
    ed.doc.set_selection(ed.doc.track.notes)
    qtbot.keyClick(ed.view, Qt.Key.Key_Up)
    qtbot.keyClick(ed.view, Qt.Key.Key_Up, SH)
    qtbot.keyClick(ed.view, Qt.Key.Key_Right)
    qtbot.keyClick(ed.view, Qt.Key.Key_Left)
    qtbot.keyClick(ed.view, Qt.Key.Key_Left)
    assert notes(ed) == [Note(360, 73, 240)]
    assert ed.doc.undo.count() == 5


def test_undo_redo_returns_to_the_original_song(qtbot, roll):
    ed = roll(Note(0, 60, 480), Note(480, 62, 480), Note(960, 64, 480))
    original = ed.doc.song.copy()
    ed.set_tool(tools.DRAW)
    drag(qtbot, ed, at(ed, 1440, 65), at(ed, 1920, 65))
    ed.set_tool(tools.SELECT)
    drag(qtbot, ed, at(ed, 100, 60), at(ed, 340, 59))
    drag(qtbot, ed, at(ed, 960 + 470, 64), at(ed, 1230, 64), mods=ALT)  # resize off the grid
    qtbot.mouseClick(ed.view.viewport(), L, NO, at(ed, 600, 62))
    qtbot.keyClick(ed.view, Qt.Key.Key_Delete)
    qtbot.keyClick(ed.view, Qt.Key.Key_Q)
    after = ed.doc.song.copy()
    n = ed.doc.undo.count()
    assert n == 5 and not after.notes_equal(original)
    for _ in range(n):
        qtbot.keyClick(ed.view, Qt.Key.Key_Z, CTRL)
    assert ed.doc.song.notes_equal(original)
    assert not ed.doc.modified
    for _ in range(n):
        ed.doc.undo.redo()
    assert ed.doc.song.notes_equal(after)


def test_other_tracks_are_not_editable_ghosts(qtbot, roll):
    ed = roll()
    drag(qtbot, ed, at(ed, 100, 40), at(ed, 800, 40))  # the bass note lies here, on track 2
    assert notes(ed, 1) == [Note(0, 40, 1920)] and ed.doc.undo.count() == 0
    qtbot.mouseDClick(ed.view.viewport(), L, NO, at(ed, 500, 40))  # double-click a ghost: edit its track
    assert ed.doc.current_track == 1 and ed.doc.selection == {Note(0, 40, 1920)}
    drag(qtbot, ed, at(ed, 100, 40), at(ed, 100, 41))
    assert notes(ed, 1) == [Note(0, 41, 1920)]


def test_zoom_keys_and_ctrl_wheel(qtbot, roll):
    ed = roll()
    ppx = ed.geom.ppx
    qtbot.keyClick(ed.view, Qt.Key.Key_Z)
    assert ed.geom.ppx > ppx
    qtbot.keyClick(ed.view, Qt.Key.Key_Z, SH)
    qtbot.keyClick(ed.view, Qt.Key.Key_Z, SH)
    assert ed.geom.ppx < ppx
    kh = ed.geom.key_h
    qtbot.keyClick(ed.view, Qt.Key.Key_Z, ALT)
    assert ed.geom.key_h > kh


def test_velocity_lane_drag_and_ramp(qtbot, roll):
    ed = roll(*[Note(i * 480, 60, 240, 80) for i in range(5)])
    lane = ed.lane
    x = lambda t: int(ed.geom.x_of(t))  # noqa: E731
    # drag at the second note's bar to velocity ~127 (top of the lane)
    qtbot.mousePress(lane, L, NO, QPoint(x(480), 2))
    qtbot.mouseRelease(lane, L, NO, QPoint(x(480), 2))
    assert [n.velocity for n in notes(ed)] == [80, 127, 80, 80, 80]
    assert ed.doc.undo.count() == 1
    # select notes 2..5 and draw a line from loud to soft across them: a ramp, one undo step
    ed.doc.set_selection(notes(ed)[1:])
    h = lane.height()
    qtbot.mousePress(lane, Qt.MouseButton.RightButton, NO, QPoint(x(480), int(lane.y_of(120))))
    qtbot.mouseMove(lane, QPoint(x(1000), h // 2))
    qtbot.mouseRelease(lane, Qt.MouseButton.RightButton, NO, QPoint(x(1920), int(lane.y_of(30))))
    vel = [n.velocity for n in notes(ed)]
    assert vel[0] == 80  # not selected: untouched
    assert vel[1] > vel[2] > vel[3] > vel[4] and abs(vel[1] - 120) <= 2 and abs(vel[4] - 30) <= 2
    assert ed.doc.undo.count() == 2
    ed.doc.undo.undo()
    assert [n.velocity for n in notes(ed)] == [80, 127, 80, 80, 80]


def test_paint_only_visible_notes_of_a_big_song(qtbot, roll):
    ed = roll(*[Note(i * 120, 40 + i % 40, 110) for i in range(10_000)])
    vis = ed.view.index.visible(ed.doc.song, 0, ed.geom.tick_at(0), ed.geom.tick_at(ed.view.viewport().width()))
    assert 0 < len(vis) < 200
    ed.view.viewport().repaint()  # must not raise


# ---- the grid on the song's real bars: meter changes and a pickup ---------------------------------
def _changing_song():
    """A quarter-note pickup in 4/4, a 4/4 bar, then 3/4 from tick 2400: bar lines at 0 (bar 0, the
    pickup), 480, 2400, 3840, 5280..."""
    from studio.core.song import TimeSignature

    song = make_song(Note(480, 60, 480))
    song.pickup = 480
    song.time_signatures = [TimeSignature(0, 4, 4), TimeSignature(2400, 3, 4)]
    return song


def test_snap_grid_follows_the_meter_map_and_the_pickup():
    from studio.core.grid import SnapGrid
    from studio.core.song import TimeSignature
    from studio.core.timing import bars

    song = _changing_song()
    bar = SnapGrid(bars(song, until=8000), None)
    assert [bar.round(t) for t in (200, 300, 1500, 2300, 3000, 3200, 5000, 5300)] == \
        [0, 480, 2400, 2400, 2400, 3840, 5280, 5280]
    assert bar.floor(2399) == 480 and bar.next(2400) == 3840 and bar.prev(2400) == 480 and bar.ceil(2401) == 3840
    assert bar.next(9000) - bar.floor(9000) == 1440  # past the bars given, the last meter goes on
    # a note grid counts from each bar line: dotted quarters in the 3/4 bars after a 3/8 bar
    song.time_signatures = [TimeSignature(0, 3, 8), TimeSignature(720, 3, 4)]
    song.pickup = 0
    dq = SnapGrid(bars(song, until=8000), 720)
    assert [dq.floor(t) for t in (100, 800, 1500, 2200, 2300)] == [0, 720, 1440, 2160, 2160]
    q = SnapGrid(bars(song, until=8000), 480)
    assert q.round(1190) == 1200 and q.floor(700) == 480 and q.next(480) == 720  # a bar line is a snap point


def test_bar_snap_draws_moves_and_seeks_on_the_real_bar_lines(qtbot, roll):
    ed = roll()
    ed.doc.song.pickup, ed.doc.song.time_signatures = _changing_song().pickup, _changing_song().time_signatures
    ed.doc.song.tracks[0].notes[:] = []
    ed.refresh_bars()
    ed.set_grid("Bar")
    ed.set_tool(tools.DRAW)
    drag(qtbot, ed, at(ed, 2500, 64), at(ed, 3700, 64))  # in the first 3/4 bar
    assert notes(ed) == [Note(2400, 64, 1440, 90)]
    ed.set_tool(tools.SELECT)
    drag(qtbot, ed, at(ed, 2600, 64), at(ed, 2600 + 1500, 64))  # a 3/4 bar later
    assert notes(ed) == [Note(3840, 64, 1440, 90)]
    drag(qtbot, ed, at(ed, 4000, 64), at(ed, 4000 - 3300, 64))  # back over the 4/4 bar: to its line
    assert notes(ed)[0].start == 480
    ed.doc.set_selection(ed.doc.track.notes)
    qtbot.keyClick(ed.view, Qt.Key.Key_Right)  # by the 4/4 bar it stands in
    assert notes(ed)[0].start == 2400
    qtbot.keyClick(ed.view, Qt.Key.Key_Right)  # then by a 3/4 bar
    assert notes(ed)[0].start == 3840
    seen = []
    ed.seekRequested.connect(seen.append)
    r = ed.ruler
    qtbot.mouseClick(r, L, NO, QPoint(int(round(ed.geom.x_of(300))), r.height() // 2))
    qtbot.mouseClick(r, L, NO, QPoint(int(round(ed.geom.x_of(5100))), r.height() // 2))
    assert seen == [480, 5280]


def test_note_grid_counts_from_each_bar_line(qtbot, roll):
    ed = roll()
    from studio.core.song import TimeSignature

    ed.doc.song.time_signatures = [TimeSignature(0, 3, 8), TimeSignature(720, 4, 4)]
    ed.refresh_bars()
    ed.set_grid("1/4")
    ed.set_tool(tools.DRAW)
    drag(qtbot, ed, at(ed, 1250, 64), at(ed, 1700, 64))  # the 2nd quarter of the 4/4 bar starts at 1200
    (n,) = [x for x in notes(ed) if x.pitch == 64]
    assert (n.start, n.end) == (1200, 1680)
    ed.doc.set_selection([Note(1190, 60, 500, 90)])
    ed.doc.song.tracks[0].notes[:] = sorted(ed.doc.song.tracks[0].notes + [Note(1190, 60, 500, 90)])
    ed.doc.set_selection([Note(1190, 60, 500, 90)])
    ed.quantize()
    assert Note(1200, 60, 480, 90) in notes(ed)
    ed.set_tool(tools.DRAW)
    qtbot.mouseClick(ed.view.viewport(), L, CTRL, at(ed, 3010, 70))  # off the grid: a grid step long
    (free,) = [x for x in notes(ed) if x.pitch == 70]
    assert abs(free.start - 3010) < 15 and free.duration == 480


def test_a_pickup_does_not_thin_out_the_bar_numbers():
    from studio.core.timing import bars
    from studio.ui.pianoroll.ruler import label_spacing

    song = _changing_song()  # a quarter upbeat, a 4/4 bar, then 3/4
    assert label_spacing(bars(song, until=9000)) == 1440  # the 3/4 bars, not the upbeat
