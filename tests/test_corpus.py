"""The corpus loader: split by work, Song conversion from music21, the JSON cache."""

import pytest

from studio.core.song import Note, Song, TimeSignature, Track
from studio.ml import corpus


def test_split_is_fixed_and_keeps_works_together():
    assert corpus.split_of("bach/bwv66.6.mxl") == corpus.split_of("bach/bwv66.6.mxl")
    # all movements of one quartet, all chorales of one cantata: one work, one split
    assert corpus.work_of("beethoven/opus18no1/movement1.mxl") == "beethoven/opus18no1"
    assert {corpus.split_of(f"beethoven/opus18no1/movement{i}.mxl") for i in range(1, 5)} == {
        corpus.split_of("beethoven/opus18no1/movement1.mxl")}
    assert corpus.work_of("bach/bwv66.6.mxl") == corpus.work_of("bach/bwv66.4.mxl") == "bach/bwv66"
    assert corpus.work_of("essenFolksong/han1.abc#3") == "essenFolksong/han1.abc#3"
    # about 90/5/5 over many ids
    ids = [f"folk/x{i}.abc" for i in range(4000)]
    counts = {s: sum(corpus.split_of(i) == s for i in ids) for s in corpus.SPLITS}
    assert 0.87 < counts["train"] / 4000 < 0.93
    assert counts["valid"] > 100 and counts["test"] > 100


def test_song_json_round_trip():
    song = Song(title="t", tracks=[Track("a", 40, 0, notes=[Note(0, 60, 480, 90), Note(480, 62, 240)]),
                                   Track("b", 40, 1, notes=[Note(0, 48, 960)])],
                time_signatures=[TimeSignature(0, 3, 4)])
    back = corpus.song_from_json(corpus.song_to_json(song))
    assert back.notes_equal(song)
    assert [t.program for t in back.tracks] == [40, 40]
    assert back.time_signatures == song.time_signatures


def test_abc_collection_splits_into_tunes():
    text = "% header\nM:4/4\n\nX:1\nT:a\nK:C\nCDEF|\n\nX:2\nT:b\nK:G\nGABc|\n"
    tunes = corpus._split_abc(text)
    assert len(tunes) == 2 and all(t.startswith("% header") for t in tunes)
    assert "T:b" in tunes[1] and "T:a" not in tunes[1]


def test_chorale_to_song_keeps_parts_and_pickup():
    from music21 import corpus as m21corpus

    score = m21corpus.parse("bach/bwv66.6")
    song = corpus.song_from_music21(score, "bach/bwv66.6.mxl")
    assert [t.name for t in song.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert all(t.program == 52 for t in song.tracks)  # voices: choir
    assert song.key_signatures[0].fifths == 3 and song.key_signatures[0].minor
    # one-beat pickup: the first note sits on the last beat of an empty first bar
    assert song.tracks[0].notes[0].start == 3 * 480
    assert all(n.start % 240 == 0 for t in song.tracks for n in t.notes)


def test_program_guess():
    assert corpus.guess_program(["Violoncello"], "x/y.mxl") == 42
    assert corpus.guess_program(["Viola"], "x/y.mxl") == 41
    assert corpus.guess_program([""], "ryansMammoth/a.abc") == 40


def test_load_corpus_builds_cache_and_filters_split(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    rels = ["bach/bwv66.6.mxl", "bach/bwv1.6.mxl", "ryansMammoth/7thRegimentReel.abc"]
    monkeypatch.setattr(corpus, "source_files", lambda: rels)
    seen = []
    pieces = corpus.load_corpus("all", progress=lambda f: seen.append(f) or True)
    assert sorted(p.id for p in pieces) == sorted(rels)
    assert seen and seen[-1] == 1.0
    assert all(p.split == corpus.split_of(p.id) for p in pieces)
    for rel in rels:
        assert corpus._cache_file(rel).exists()
    valid = corpus.load_corpus("valid", build=False)
    assert [p.id for p in valid] == [p.id for p in pieces if p.split == "valid"]
    assert len(corpus.load_corpus("all", max_pieces=2, build=False)) == 2
    with pytest.raises(ValueError):
        corpus.load_corpus("nope")
