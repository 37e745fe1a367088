"""The note-level diff between a take and the song, and applying it as NoteChanges."""

from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core import edits, takediff
from studio.core.song import Note, Song, Track


def _song(*tracks):
    return Song(tracks=[Track(name, notes=sorted(notes)) for name, notes in tracks])


def test_added_removed_changed():
    base = _song(("Piano", [Note(0, 60, 480), Note(480, 62, 480), Note(960, 64, 480), Note(1440, 65, 480)]))
    take = base.copy()
    t = take.tracks[0]
    t.remove(Note(480, 62, 480))  # removed, nothing at that onset
    t.remove(Note(960, 64, 480))
    t.add(Note(960, 64, 240))  # same pitch, shorter: changed
    t.remove(Note(1440, 65, 480))
    t.add(Note(1440, 67, 480))  # other pitch at the same onset: changed
    t.add(Note(1920, 69, 480))  # added
    d = takediff.diff(base, take)
    (td,) = d.tracks
    assert td.removed == (Note(480, 62, 480),)
    assert td.added == (Note(1920, 69, 480),)
    assert td.changed == ((Note(960, 64, 480), Note(960, 64, 240)), (Note(1440, 65, 480), Note(1440, 67, 480)))
    assert d.counts() == {"added": 1, "removed": 1, "changed": 2}
    assert d.span == (480, 2400)
    assert not d.empty


def test_identical_take_is_empty():
    base = _song(("A", [Note(0, 60, 480)]), ("B", [Note(0, 48, 960)]))
    d = takediff.diff(base, base.copy())
    assert d.empty and d.counts() == {"added": 0, "removed": 0, "changed": 0}


def test_harmonizer_take_adds_tracks_and_keeps_the_melody_track():
    base = _song(("Flute", [Note(0, 72, 480), Note(480, 71, 480)]))
    take = _song(("Soprano", [Note(0, 72, 480), Note(480, 71, 480)]), ("Alto", [Note(0, 67, 960)]),
                 ("Tenor", [Note(0, 64, 960)]), ("Bass", [Note(0, 48, 960)]))
    d = takediff.diff(base, take, anchor={0: 0}, by_index=False)
    assert [t.name for t in d.new_tracks] == ["Alto", "Tenor", "Bass"]
    assert d.tracks[0].song_track == 0 and d.tracks[0].empty
    assert d.counts()["added"] == 3
    song = takediff.applied(base, d)
    assert [t.name for t in song.tracks] == ["Flute", "Alto", "Tenor", "Bass"]
    assert base.tracks[0].name == "Flute" and len(base.tracks) == 1  # the base is untouched


def test_same_names_pair_with_existing_voices():
    base = _song(("Soprano", [Note(0, 72, 480)]), ("Alto", [Note(0, 67, 480)]), ("Tenor", [Note(0, 64, 480)]),
                 ("Bass", [Note(0, 48, 480)]))
    take = _song(("Soprano", [Note(0, 72, 480)]), ("Alto", [Note(0, 65, 480)]), ("Tenor", [Note(0, 64, 480)]),
                 ("Bass", [Note(0, 48, 480)]))
    d = takediff.diff(base, take, by_index=False)
    assert not d.new_tracks
    assert [t.song_track for t in d.tracks] == [0, 1, 2, 3]
    assert d.tracks[1].changed == ((Note(0, 67, 480), Note(0, 65, 480)),)


def test_edits_made_while_the_model_worked_survive_accepting():
    base = _song(("Piano", [Note(0, 60, 480), Note(480, 62, 480)]))
    take = base.copy()
    take.tracks[0].add(Note(1920, 67, 480))
    take.tracks[0].remove(Note(480, 62, 480))
    d = takediff.diff(base, take)
    now = base.copy()
    now.tracks[0].remove(Note(480, 62, 480))  # the user already deleted it
    now.tracks[0].add(Note(960, 64, 480))  # and drew a new note
    changes = takediff.note_changes(now, d)
    edits.apply_all(now, changes)
    assert now.tracks[0].notes == [Note(0, 60, 480), Note(960, 64, 480), Note(1920, 67, 480)]


def test_history_entry_is_json():
    import json

    e = takediff.HistoryEntry("variation", {"strength": 0.5, "tracks": (0,), "x": frozenset({(0, Note(0, 60, 1))})}, 7)
    data = e.to_json()
    assert json.loads(json.dumps(data)) == data and data["params"]["tracks"] == [0]


notes = st.lists(st.builds(Note, st.integers(0, 4000), st.integers(40, 90), st.integers(1, 960), st.integers(1, 127)),
                 max_size=25)


@settings(max_examples=60, deadline=None)
@given(notes, notes)
def test_applying_the_diff_gives_the_take_and_inverting_gives_the_base(a, b):
    base = _song(("T", a))
    take = _song(("T", b))
    d = takediff.diff(base, take)
    song = base.copy()
    changes = takediff.note_changes(song, d)
    edits.apply_all(song, changes)
    assert song.tracks[0].notes == take.tracks[0].notes
    for c in reversed(changes):
        edits.apply(song, c.inverted())
    assert song == base
    c = d.counts()
    assert c["added"] + c["changed"] == len(d.tracks[0].all_added)
