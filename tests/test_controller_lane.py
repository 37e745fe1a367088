"""The controller lane under the roll and the track list's volume and pan: strokes are undo
steps, the pedal is drawn as held spans, and what is edited is what plays and saves."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from studio.core.song import EXPRESSION, PITCH_BEND, SUSTAIN, Control, Note, Song, Track  # noqa: E402
from studio.ui.pianoroll.controllers import pedal_span, replace_span  # noqa: E402


@pytest.fixture
def win(editor_window):
    w = editor_window()
    notes = [Note(i * 480, 60 + i % 5, 400) for i in range(16)]
    w.doc.replace_song(Song(tracks=[Track("Piano", notes=notes, controls=[Control(0, SUSTAIN, 127), Control(1800, SUSTAIN, 0)]),
                                    Track("Strings", 48, 1, notes=notes)]))
    yield w
    w.doc.mark_saved()


def test_pedal_span_keeps_what_follows():
    cs = [Control(0, SUSTAIN, 127), Control(1000, SUSTAIN, 0), Control(3000, SUSTAIN, 127), Control(4000, SUSTAIN, 0)]
    # a new pedal from 1500 to 2500 between two others
    assert pedal_span(cs, SUSTAIN, 1500, 2500) == cs[:2] + [Control(1500, SUSTAIN, 127), Control(2500, SUSTAIN, 0)] + cs[2:]
    # a stroke ending while the pedal was already down again: it stays down from the stroke on
    assert pedal_span(cs, SUSTAIN, 2000, 3500) == cs[:2] + [Control(2000, SUSTAIN, 127), cs[3]]
    assert replace_span(cs, SUSTAIN, 0, 1000, []) == cs[2:]


def test_lane_shows_the_tracks_pedal_and_draws_as_one_undo_step(win):
    lane = win.editor.cc_lane
    assert lane.number == SUSTAIN and "Sustain" in lane.choice.currentText()
    assert lane.draw_stroke([(2400, 100), (2880, 90), (3360, 100)])
    t = win.doc.song.tracks[0]
    assert t.controls_of(SUSTAIN)[-2:] == [Control(2400, SUSTAIN, 127), Control(3360, SUSTAIN, 0)]
    assert win.isWindowModified()
    win.doc.undo.undo()
    assert t.controls == [Control(0, SUSTAIN, 127), Control(1800, SUSTAIN, 0)]
    win.doc.undo.redo()
    assert len(t.controls) == 4


def test_curves_for_other_controllers_and_pitch_bend(win):
    lane = win.editor.cc_lane
    lane.show_controller(EXPRESSION)
    assert lane.draw_stroke([(0, 100), (120, 90), (240, 80), (240, 70)])  # the last value at a step wins
    assert win.doc.song.tracks[0].controls_of(EXPRESSION) == [Control(0, EXPRESSION, 100), Control(120, EXPRESSION, 90),
                                                              Control(240, EXPRESSION, 70)]
    assert lane.erase_span(100, 200)
    assert [c.tick for c in win.doc.song.tracks[0].controls_of(EXPRESSION)] == [0, 240]
    lane.show_controller(PITCH_BEND)
    assert lane.value_at(lane.y_of(-4096)) == pytest.approx(-4096, abs=200)
    assert lane.draw_stroke([(480, lane.value_at(lane.y_of(2000)))])
    for number in (SUSTAIN, EXPRESSION, PITCH_BEND, 7, 10):
        lane.show_controller(number)
        assert not lane.grab().isNull()  # paints every kind


def test_the_lane_follows_the_current_track(win):
    lane = win.editor.cc_lane
    win.doc.set_current_track(1)
    assert lane.track is win.doc.song.tracks[1]
    assert lane.draw_stroke([(0, 1), (960, 1)])
    assert win.doc.song.tracks[1].controls_of(SUSTAIN) == [Control(0, SUSTAIN, 127), Control(960, SUSTAIN, 0)]
    assert len(win.doc.song.tracks[0].controls) == 2


def test_volume_and_pan_in_the_track_list(win, qtbot):
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    mix = win.tracklist.mix_controls(1)
    mix.volume.setValue(70)
    mix = win.tracklist.mix_controls(1)  # the list is rebuilt after each change
    QApplication.processEvents()
    mix = win.tracklist.mix_controls(1)
    mix.pan.setValue(20)
    t = win.doc.song.tracks[1]
    assert (t.volume, t.pan) == (70, 20)
    win.doc.undo.undo()
    assert (t.volume, t.pan) == (70, 64)
    win.doc.undo.undo()
    assert t.volume == 100
