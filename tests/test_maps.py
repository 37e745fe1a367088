"""Tempo, meter and key changes at a bar, and pickups: the pure rows (studio.core.maps) and the
Song Properties dialog that edits them as one undo step."""

from __future__ import annotations

import pytest

from studio.core.errors import StudioError
from studio.core.maps import Change, apply_changes, changes_of
from studio.core.song import KeySignature, Note, Song, TempoChange, TimeSignature, Track
from studio.core.timing import bars


def song() -> Song:
    return Song(title="t", tracks=[Track("a", notes=[Note(i * 480, 60, 480) for i in range(40)])],
                tempos=[TempoChange(0, 100.0), TempoChange(1920 * 2 + 240, 80.0)],  # mid-bar, as MIDI files have
                time_signatures=[TimeSignature(0, 4, 4)], key_signatures=[KeySignature(0, 1, False)])


def test_rows_name_bars_and_keep_ticks():
    rows = changes_of(song())
    assert [(c.kind, c.bar, c.value) for c in rows] == [("Tempo", 1, "100"), ("Meter", 1, "4/4"), ("Key", 1, "G major"),
                                                        ("Tempo", 3, "80")]
    tempos, sigs, keys, pickup = apply_changes(song(), rows)
    assert tempos == song().tempos and sigs == song().time_signatures and keys == song().key_signatures and pickup == 0


def test_a_meter_change_moves_the_bars_after_it():
    rows = changes_of(song()) + [Change("Meter", 3, "3/4"), Change("Key", 5, "D minor"), Change("Tempo", 4, "60")]
    tempos, sigs, keys, _ = apply_changes(song(), rows)
    assert sigs == [TimeSignature(0, 4, 4), TimeSignature(3840, 3, 4)]
    assert keys[-1] == KeySignature(3840 + 2 * 1440, -1, True)  # bar 5 = two 3/4 bars after bar 3
    assert tempos[-1] == TempoChange(3840 + 1440, 60.0)
    # the mid-bar tempo change stays where it was (still in bar 3)
    assert TempoChange(1920 * 2 + 240, 80.0) in tempos


def test_a_change_moved_to_another_bar_goes_to_that_bar_start():
    rows = [c if c.kind != "Tempo" or c.bar != 3 else Change("Tempo", 2, c.value) for c in changes_of(song())]
    tempos, *_ = apply_changes(song(), rows)
    assert tempos == [TempoChange(0, 100.0), TempoChange(1920, 80.0)]


def test_pickup_makes_bar_zero():
    s = song()
    tempos, sigs, keys, pickup = apply_changes(s, changes_of(s) + [Change("Meter", 2, "2/4")], pickup=480)
    s.time_signatures, s.pickup = sigs, pickup
    assert [b.start for b in bars(s)][:4] == [0, 480, 480 + 1920, 480 + 1920 + 960]
    # the opening values stay at the start (now the pickup, bar 0)
    assert [(c.kind, c.bar, c.tick) for c in changes_of(s)] == [("Tempo", 0, 0), ("Meter", 0, 0), ("Key", 0, 0),
                                                                ("Meter", 2, 2400), ("Tempo", 3, 1920 * 2 + 240)]


@pytest.mark.parametrize("row, words", [
    (Change("Meter", 2, "1000000000/4"), "1 to 64 beats"),
    (Change("Meter", 2, "3/5"), "1 to 64 beats"),
    (Change("Tempo", 2, "fast"), "beats per minute"),
    (Change("Tempo", 2, "0"), "1 to 1000"),
    (Change("Key", 0, "C major"), "bars start at 1"),
])
def test_bad_rows_are_refused_in_words(row, words):
    with pytest.raises(StudioError, match=words):
        apply_changes(song(), changes_of(song()) + [row])


def test_pickup_must_be_shorter_than_the_bar():
    with pytest.raises(StudioError, match="pickup"):
        apply_changes(song(), changes_of(song()), pickup=1920)


# ---- the dialog --------------------------------------------------------------------------
def test_dialog_edits_maps_title_composer_and_pickup_in_one_undo_step(qtbot):
    pytest.importorskip("PySide6")
    from PySide6.QtGui import QUndoStack

    from studio.ui.songprops import SongMapsCommand, SongPropertiesDialog

    class Doc:
        def __init__(self, s):
            self.song, self.undo, self.maps = s, QUndoStack(), 0

        def notify_maps(self):
            self.maps += 1

    doc = Doc(song())
    dlg = SongPropertiesDialog(doc.song, at_bar=5)
    qtbot.addWidget(dlg)
    dlg.title.setText("Bourrée")
    dlg.composer.setText("  J.  S. Bach ")
    dlg.pickup.setValue(1)
    dlg.add_change("Meter")
    dlg.table.item(dlg.table.rowCount() - 1, 2).setText("3/4")
    values = dlg.values()
    doc.undo.push(SongMapsCommand(doc, *values))
    s = doc.song
    assert (s.title, s.composer, s.pickup) == ("Bourrée", "J. S. Bach", 480)
    assert s.time_signatures == [TimeSignature(0, 4, 4), TimeSignature(480 + 4 * 1920, 3, 4)]  # bar 5 after a pickup
    doc.undo.undo()
    assert (s.title, s.composer, s.pickup, s.time_signatures) == ("t", "", 0, [TimeSignature(0, 4, 4)]) and doc.maps == 2
    dlg.table.item(0, 2).setText("nonsense")
    dlg._accept()
    assert "tempo 'nonsense'" in dlg.error.text() and dlg.result_values is None
