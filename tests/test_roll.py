"""The variation model's piano-roll grid: Song <-> cells, meter, key."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.core.song import KeySignature, Note, Song, TimeSignature, Track
from studio.ml.variation import roll as R

Q = 480  # a quarter note
S = Q // 4  # a sixteenth step


def test_paint_and_decode_keep_repeated_notes_and_chords_apart():
    cells = np.zeros((16, R.N_PITCH), dtype=np.uint8)
    notes = [(0, 4, 60), (4, 6, 60), (0, 8, 64), (0, 8, 67), (10, 11, 72)]
    R.paint(cells, notes)
    q = 60 - R.LOW
    assert cells[0, q] == R.ONSET and cells[3, q] == R.HOLD and cells[4, q] == R.ONSET and cells[6, q] == R.REST
    assert sorted(R.decode(cells)) == sorted(notes)


def test_decode_turns_a_dangling_hold_into_a_note():
    cells = np.zeros((8, R.N_PITCH), dtype=np.uint8)
    cells[3:5, 10] = R.HOLD
    assert R.decode(cells, offset=2) == [(5, 7, R.LOW + 10)]


def test_paint_clips_to_the_window_and_drops_out_of_range_pitches():
    cells = np.zeros((8, R.N_PITCH), dtype=np.uint8)
    R.paint(cells, [(2, 12, 60), (5, 6, 10), (0, 4, 120)], offset=4)
    q = 60 - R.LOW
    assert list(cells[:, q]) == [R.HOLD] * 8  # started before the window: holds only
    assert cells.sum() == 8 * R.HOLD


def test_quantize_rounds_to_the_nearest_step_and_keeps_a_step_at_least():
    assert R.quantize(Note(0, 60, Q), S) == (0, 4, 60)
    assert R.quantize(Note(S + 50, 60, 10), S) == (1, 2, 60)
    assert R.quantize(Note(S + 70, 62, Q), S) == (2, 6, 62)


def test_song_roundtrip_for_notes_on_the_grid():
    song = Song(tracks=[
        Track("a", notes=[Note(0, 72, Q), Note(Q, 74, 2 * Q), Note(3 * Q, 76, S)]),
        Track("b", notes=[Note(0, 48, 4 * Q), Note(0, 55, 2 * Q), Note(2 * Q, 55, 2 * Q)]),
        Track("drums", is_drum=True, channel=9, notes=[Note(0, 36, S)]),
    ])
    r = R.song_to_roll(song)
    assert r.tracks == [0, 1]  # drums are not part of the roll
    assert r.cells.shape == (2, 16, R.N_PITCH)
    assert list(r.mono) == [True, False]
    for k, ti in enumerate(r.tracks):
        assert sorted(R.roll_to_notes(r, k, S)) == [Note(n.start, n.pitch, n.duration, 80) for n in song.tracks[ti].notes]


def test_window_offset_and_meter_positions():
    song = Song(time_signatures=[TimeSignature(0, 3, 4), TimeSignature(6 * Q, 4, 4)],
                tracks=[Track(notes=[Note(9 * Q, 60, Q)])])
    pos, length = R.meter_steps(song, 40)
    assert list(pos[:13]) == list(range(12)) + [0]
    assert length[0] == 12 and length[24] == 16 and pos[24] == 0 and pos[39] == 15
    r = R.song_to_roll(song, first_step=30, n_steps=8)
    assert r.cells[0, 6, 60 - R.LOW] == R.ONSET and r.bar_pos[0] == 6


def test_key_scale_and_estimate():
    assert set(np.nonzero(R.key_scale(KeySignature(0, 0, False)))[0]) == {0, 2, 4, 5, 7, 9, 11}
    a_minor = set(np.nonzero(R.key_scale(KeySignature(0, 0, True)))[0])
    assert {9, 11, 0, 2, 4, 5, 7, 6, 8} == a_minor  # natural minor plus raised sixth and seventh
    d_major = [62, 64, 66, 67, 69, 71, 73, 74, 62, 66, 69, 62, 66, 69]
    assert R.estimate_key(d_major).name == "D major"
    song = Song(tracks=[Track(notes=[Note(i * Q, p, Q) for i, p in enumerate(d_major)])])
    assert R.song_key(song).name == "D major"  # the C major default does not fit, so it is estimated
    song.key_signatures = [KeySignature(0, 2, False)]
    assert R.song_key(song) == KeySignature(0, 2, False)


def test_max_polyphony():
    assert R.max_polyphony([(0, 4, 60), (4, 8, 62)]) == 1
    assert R.max_polyphony([(0, 4, 60), (2, 8, 62), (3, 5, 64)]) == 3
    assert R.max_polyphony([]) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 8), st.integers(R.LOW, R.HIGH)), max_size=25))
def test_roundtrip_property(raw):
    # notes of one pitch that do not overlap survive paint -> decode exactly
    notes, busy = [], {}
    for s, d, p in sorted(raw):
        if busy.get(p, -1) <= s:
            notes.append((s, min(s + d, 32), p))
            busy[p] = s + d
    cells = np.zeros((32, R.N_PITCH), dtype=np.uint8)
    R.paint(cells, notes)
    assert sorted(R.decode(cells)) == sorted(notes)


def test_mostly_mono_tolerates_a_grace_note():
    line = [(i * 2, i * 2 + 2, 60 + i) for i in range(30)]
    assert R.mostly_mono(line)
    assert R.mostly_mono(line + [(4, 5, 70)])  # one grace note against a 60-step line
    assert not R.mostly_mono(line + [(s, e, p - 12) for s, e, p in line])  # a second voice throughout
