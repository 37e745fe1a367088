"""The editor's fermata: a toggle on the selected notes (Edit menu, a key of its own), undoable,
drawn over the notes in the roll and engraved in the score."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio.core.song import Note, Song, Track  # noqa: E402


@pytest.fixture
def win(editor_window):
    w = editor_window(size=(1280, 720))
    song = Song(title="Phrase", tracks=[Track("Soprano", notes=[Note(i * 480, 67 + i, 480) for i in range(8)])])
    w.doc.replace_song(song)
    w.editor.show_song_start()
    QApplication.processEvents()
    return w


def test_toggle_fermata_on_the_selection_is_one_undo_step(win):
    doc = win.doc
    a = win.a_fermata
    assert a.shortcut().toString() == "Ctrl+Shift+F"
    edit_menu = next(m for m in win.menuBar().actions() if m.text() == "&Edit").menu()
    assert a in edit_menu.actions()
    a.trigger()  # nothing selected: nothing happens
    assert doc.song.fermatas == () and doc.undo.count() == 0
    notes = doc.track.notes
    doc.set_selection([notes[3], notes[7]])
    a.trigger()
    assert doc.song.fermatas == (3 * 480, 7 * 480) and doc.undo.undoText() == "Add fermata"
    doc.set_selection([notes[3]])
    a.trigger()
    assert doc.song.fermatas == (7 * 480,) and doc.undo.undoText() == "Remove fermata"
    doc.undo.undo()
    assert doc.song.fermatas == (3 * 480, 7 * 480)
    doc.undo.undo()
    assert doc.song.fermatas == () and not doc.modified
    doc.undo.redo()
    assert doc.song.fermatas == (3 * 480, 7 * 480) and doc.modified


def test_the_roll_draws_a_mark_above_each_note_with_a_fermata(win):
    view = win.editor.view
    doc = win.doc
    assert view.fermata_rects(0, 0, 8 * 480) == []
    doc.set_selection([doc.track.notes[3]])
    win.a_fermata.trigger()
    rects = view.fermata_rects(0, 0, 8 * 480)
    assert len(rects) == 1
    note = view._note_rect(doc.track.notes[3])
    r = rects[0]
    assert r.bottom() <= note.top() and note.left() <= r.center().x() <= note.right()
    # and it is painted: the pixels just above the note are no longer the row's background
    img = view.viewport().grab().toImage()
    dark = [(x, y) for x in range(int(r.left()), int(r.right()) + 1) for y in range(int(r.top()), int(r.bottom()) + 1)
            if 0 <= x < img.width() and 0 <= y < img.height() and img.pixelColor(x, y).lightness() < 100]
    assert dark


def test_the_scores_window_of_bars_keeps_their_fermatas():
    from studio.ui.score.engrave import window

    song = Song(title="Phrase", tracks=[Track("Soprano", notes=[Note(i * 480, 67 + i, 480) for i in range(12)])],
                fermatas=(3 * 480, 7 * 480))
    assert window(song, 0, 1)[0].fermatas == (3 * 480,)
    assert window(song, 1, 2)[0].fermatas == (3 * 480,)  # bar 2's fermata, counted from the window's start
