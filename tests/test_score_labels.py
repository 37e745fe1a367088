"""What the score prints around the notes: the short staff names of later systems, and the bar
numbers of a window of bars when the song begins with a pickup (the pickup is bar 0)."""

from __future__ import annotations

import re

import pytest

from studio.core.song import Note, Song, TimeSignature, Track
from studio.io.musicxml import abbreviation, short_names, song_to_musicxml_bytes


def test_string_quartet_staves_have_distinct_standard_abbreviations():
    names = ["Violin 1", "Violin 2", "Viola", "Violoncello"]
    assert short_names(names) == ["Vln. 1", "Vln. 2", "Vla.", "Vc."]
    assert [abbreviation(n) for n in ("Violin I", "Cello", "Contrabass", "Flute 2", "Bass clarinet")] == [
        "Vln. I", "Vc.", "Cb.", "Fl. 2", "B. Cl."]
    assert [abbreviation(n) for n in ("Soprano", "Alto", "Tenor", "Bass")] == ["S.", "A.", "T.", "B."]
    assert abbreviation("Track 1") == "Track 1" and abbreviation("Synthesizer lead") == "Syn."


def test_two_names_that_would_abbreviate_alike_keep_their_full_names():
    assert short_names(["Synth lead", "Synth pad", "Violin"]) == ["Synth lead", "Synth pad", "Vln."]


def test_the_musicxml_carries_the_abbreviations():
    tracks = [Track(n, 40, i, notes=[Note(0, 60 + i, 480)]) for i, n in enumerate(["Violin 1", "Violin 2", "Viola", "Violoncello"])]
    xml = song_to_musicxml_bytes(Song(title="Q", tracks=tracks)).decode()
    assert re.findall(r"<part-abbreviation>([^<]*)<", xml) == ["Vln. 1", "Vln. 2", "Vla.", "Vc."]


def pickup_song(bars_: int = 10) -> Song:
    """A quarter-note pickup, then ``bars_`` full bars of 4/4 quarter notes."""
    notes = [Note(0, 67, 480)] + [Note(480 + i * 480, 60 + i % 8, 480) for i in range(4 * bars_)]
    return Song(title="Up", tracks=[Track("Violin 1", 40, 0, notes=notes)], time_signatures=[TimeSignature(0, 4, 4)],
                pickup=480)


def test_a_window_after_a_pickup_numbers_its_bars_as_a_musician_counts():
    from studio.ui.score.engrave import number_bars, window

    song = pickup_song()
    sub, *_ = window(song, 4, 3)  # bar indices 4, 5, 6: bars 4, 5, 6 after a pickup bar 0
    xml = number_bars(song_to_musicxml_bytes(sub).decode(), song, 4)
    assert re.findall(r'<measure\b[^>]*\bnumber="(\d+)"', xml)[:3] == ["4", "5", "6"]
    plain = Song(title="x", tracks=[Track("P", 0, 0, notes=[Note(i * 480, 60, 480) for i in range(40)])])
    sub, *_ = window(plain, 4, 3)  # no pickup: bar index 4 is bar 5
    xml = number_bars(song_to_musicxml_bytes(sub).decode(), plain, 4)
    assert re.findall(r'<measure\b[^>]*\bnumber="(\d+)"', xml)[:3] == ["5", "6", "7"]
    first, *_ = window(song, 0, 3)
    xml = number_bars(song_to_musicxml_bytes(first).decode(), song, 0)
    assert re.findall(r'<measure\b[^>]*\bnumber="(\d+)"', xml)[:3] == ["0", "1", "2"]


def test_the_engraved_window_prints_those_numbers():
    pytest.importorskip("verovio")
    from studio.ui.score.engrave import engrave

    e = engrave(pickup_song(), 600, 4, 4)
    svg = b"".join(p.svg for p in e.pages).decode()
    shown = re.findall(r'class="mNum[^"]*">\s*<text[^>]*>(\d+)<', svg)
    assert shown and shown[0] == "4", shown
