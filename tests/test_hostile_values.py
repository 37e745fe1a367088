"""Odd numbers and wrong types, on the command line and in project files: every one is a usage
error (exit 2, one ``studio: error:`` line), never an internal error, and never misread."""

from __future__ import annotations

import json

import pytest

from studio.cli import main
from studio.cmd.files import _clock, format_info, song_info
from studio.core.errors import FileFormatError
from studio.core.song import Note, Song, TempoChange, Track
from studio.io import load, project, save


def _run(capsys, argv) -> tuple[int, str]:
    rc = main(argv)
    err = capsys.readouterr().err
    return rc, err


HUGE = "9" * 5000  # past Python's 4,300-digit limit for int(str)

BAD_ARGS = [
    # (subcommand and its arguments, what the one line must say)
    (["harmonize", "{song}", "-o", "{out}", "--seed", "-1"], "--seed: -1 is outside 0..4294967295"),
    (["harmonize", "{song}", "-o", "{out}", "--seed", str(2**64)], "--seed: 18446744073709551616 is outside"),
    (["harmonize", "{song}", "-o", "{out}", "--seed=" + HUGE], "--seed: 99999999999999999999... (5,000 characters)"),
    (["harmonize", "{song}", "-o", "{out}", "--seed", "1.5"], "--seed: 1.5 is not a seed"),
    (["harmonize", "{song}", "-o", "{out}", "--temperature", "nan"], "--temperature: nan is not a finite number"),
    (["harmonize", "{song}", "-o", "{out}", "--temperature=-inf"], "--temperature: -inf is not a finite number"),
    (["harmonize", "{song}", "-o", "{out}", "--candidates", "0"], "--candidates: 0 must be 1 or more"),
    (["harmonize", "{song}", "-o", "{out}", "--melody-track", "-2"], "--melody-track: -2 must be 1 or more"),
    (["continue", "{song}", "-o", "{out}", "--seed", "-7"], "--seed: -7 is outside"),
    (["continue", "{song}", "-o", "{out}", "--bars", HUGE], "--bars: 99999999999999999999... (5,000 characters) is far outside"),
    (["continue", "{song}", "-o", "{out}", "--from-bar", "0"], "--from-bar: 0 must be 1 or more"),
    (["continue", "{song}", "-o", "{out}", "--top-p", "0"], "--top-p: 0 must be above 0 and at most 1"),
    (["continue", "{song}", "-o", "{out}", "--top-p", "1e400"], "--top-p: 1e400 is not a finite number"),
    (["continue", "{song}", "-o", "{out}", "--key-strength", "nan"], "--key-strength: nan is not a finite number"),
    (["continue", "{song}", "-o", "{out}", "--takes", "-1"], "--takes: -1 must be 1 or more"),
    (["vary", "{song}", "-o", "{out}", "--strength", "nan"], "--strength: nan is not a finite number"),
    (["vary", "{song}", "-o", "{out}", "--strength", "2"], "--strength: 2 must be between 0 and 1"),
    (["vary", "{song}", "-o", "{out}", "--strength", "0.5", "--seed", str(2**32)], "--seed: 4294967296 is outside"),
    (["render", "{song}", "-o", "{out}.wav", "--sample-rate", "-44100"], "--sample-rate: -44100 is outside 8000..192000"),
]


@pytest.mark.parametrize("argv,message", BAD_ARGS, ids=[" ".join(a[3:])[:40] for a, _ in BAD_ARGS])
def test_bad_numbers_on_the_command_line_are_usage_errors(tmp_path, capsys, argv, message):
    song = tmp_path / "in.studio"
    save(Song(tracks=[Track("A", notes=[Note(0, 60, 480)])]), song)
    argv = [a.format(song=song, out=tmp_path / "out.mid") for a in argv]
    rc, err = _run(capsys, argv)
    assert rc == 2, err
    assert err.count("\n") == 1 and err.startswith("studio: error: argument ") and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.studio"]  # nothing written


def test_good_seeds_at_the_edges_are_accepted():
    from studio.cli import build_parser

    for value in ("0", str(2**32 - 1)):
        args = build_parser().parse_args(["continue", "a.mid", "-o", "b.mid", "--seed", value])
        assert args.seed == int(value)


# ---- project values --------------------------------------------------------------------------
def _doc(**track) -> dict:
    t = {"name": "A", "notes": [[0, 60, 480, 80]], **track}
    return {"format_version": 1, "tracks": [t]}


BAD_DOCS = [
    (_doc(is_drum="false"), "tracks[0].is_drum: 'false' is not true or false"),
    (_doc(is_drum=0), "tracks[0].is_drum: 0 is not true or false"),
    (_doc(mute="yes"), "tracks[0].mute: 'yes' is not true or false"),
    (_doc(solo=None), "tracks[0].solo: None is not true or false"),
    ({"format_version": 1, "key_signatures": [[0, 2, "minor"]]}, "key_signatures[0] minor: 'minor' is not true or false"),
    (_doc(program="5"), "tracks[0].program: '5' is not a whole number"),
    (_doc(channel=1.5), "tracks[0].channel: 1.5 is not a whole number"),
    (_doc(name=7), "name and color must be text"),
    ({"format_version": 1, "title": ["x"]}, "title: text was expected"),
    ({"format_version": True}, "format_version True is not a version number"),
]


@pytest.mark.parametrize("doc,message", BAD_DOCS, ids=[m[:30] for _, m in BAD_DOCS])
def test_wrong_types_in_a_project_are_refused_precisely(tmp_path, doc, message):
    path = tmp_path / "bad.studio"
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError) as info:
        load(path)
    assert str(info.value) == f"bad.studio: {message}" or (str(info.value).startswith("bad.studio: ") and message in str(info.value))
    assert "\n" not in str(info.value)


def test_huge_numbers_in_a_project(tmp_path, capsys):
    path = tmp_path / "big.studio"
    for where in ('"ppq": {n}', '"tracks": [{{"notes": [[{n}, 60, 1, 80]]}}]', '"meta": {{"x": {n}}}'):
        path.write_text('{"format_version": 1, ' + where.format(n="4" * 4301) + "}")
        rc, err = _run(capsys, ["info", str(path)])
        assert rc == 2 and err == "studio: error: big.studio: holds a 4,301-digit number (at most 100 digits)\n", err
    path.write_text('{"format_version": 1, "ppq": -' + "1" * 200 + "}")
    rc, err = _run(capsys, ["info", str(path)])
    assert rc == 2 and "200-digit number" in err


def test_true_booleans_still_read_and_written_booleans_stay_booleans(tmp_path):
    path = tmp_path / "ok.studio"
    path.write_text(json.dumps(_doc(is_drum=True, mute=False, solo=True)))
    t = load(path).tracks[0]
    assert (t.is_drum, t.mute, t.solo) == (True, False, True)
    song = Song(tracks=[Track("A", is_drum=1, notes=[Note(0, 60, 480)])])  # a careless caller's 1
    save(song, path)
    assert json.loads(path.read_text())["tracks"][0]["is_drum"] is True
    assert load(path).tracks[0].is_drum is True


# ---- studio info's clock ---------------------------------------------------------------------
@pytest.mark.parametrize("seconds,text", [
    (599.99, "10:00.0"), (59.95, "1:00.0"), (59.94, "0:59.9"), (0.0, "0:00.0"), (61.25, "1:01.2"),
    (3599.96, "1:00:00.0"), (3661.0, "1:01:01.0"), (21599.99, "6:00:00.0"),
])
def test_clock_never_shows_sixty_seconds(seconds, text):
    assert _clock(seconds) == text


def test_info_of_a_song_just_under_ten_minutes():
    song = Song(tracks=[Track("A", notes=[Note(0, 60, 575_990)])], tempos=[TempoChange(0, 120.0)])  # 599.99 s
    text = format_info("x.studio", song_info(song))
    assert "10:00.0 (600.0 s)" in text and ":60" not in text


# ---- the AI history the assistant reads back --------------------------------------------------
def _hist(*entries) -> dict:
    return {"format_version": 1, "meta": {"ai_history": list(entries)}}


BAD_HISTORY = [
    (_hist({"kind": "continue", "params": {"seed": "abc"}}), "meta.ai_history[0].params.seed: 'abc' is not a number"),
    (_hist({"kind": "vary", "params": {"strength": 1e300}}), "meta.ai_history[0].params.strength: 1e+300 is outside 0..1"),
    (_hist({"kind": "continue", "seed": 2**40}), "meta.ai_history[0].seed: 1099511627776 is outside 0..2147483647"),
    (_hist({}, {"kind": "continue", "params": [1, 2]}), "meta.ai_history[1].params: an object was expected"),
    (_hist({"kind": "harmonize", "params": {"keep": 5}}), "meta.ai_history[0].params.keep: a list of names was expected"),
    (_hist({"kind": "continue", "params": {"bars": 2.5}}), "meta.ai_history[0].params.bars: 2.5 is not a whole number"),
    (_hist({"kind": "continue", "params": {"takes": True}}), "meta.ai_history[0].params.takes: True is not a number"),
    (_hist("continue"), "meta.ai_history[0]: an object was expected"),
    ({"format_version": 1, "meta": {"ai_history": {"a": 1}}}, "meta.ai_history: a list was expected"),
    (_hist({"kind": 3}), "meta.ai_history[0].kind: 3 is not text"),
]


@pytest.mark.parametrize("doc,message", BAD_HISTORY, ids=[m[16:50] for _, m in BAD_HISTORY])
def test_bad_ai_history_is_refused_precisely(tmp_path, doc, message):
    path = tmp_path / "h.studio"
    path.write_text(json.dumps(doc))
    with pytest.raises(FileFormatError) as info:
        load(path)
    assert str(info.value) == f"h.studio: {message}"


def test_the_history_the_assistant_writes_reads_back(tmp_path):
    from studio.core.takediff import HistoryEntry
    from studio.ml.worker import protocol as P

    song = Song(tracks=[Track("A", notes=[Note(0, 60, 480)])])
    entries = []
    for req in (P.ContinueRequest(1, song, seed=2**31 - 2, bars=8, from_bar=3, temperature=0.9, top_p=0.95, takes=2,
                                  key_strength=1.5),
                P.HarmonizeRequest(2, song, seed=0, keep=("soprano", "bass"), candidates=8, temperature=None),
                P.VaryRequest(3, song, seed=5, strength=0.25, start_tick=0, end_tick=1920, tracks=(0, 1),
                              locked=frozenset({(0, Note(0, 60, 480))})),
                P.RegenerateRequest(4, song, seed=7, voices=(1, 2), start_tick=480, end_tick=960)):
        e = HistoryEntry("model", req.params(), req.seed, "+3 notes").to_json()
        e["kind"] = req.kind
        entries.append(e)
    song.meta = {"ai_history": entries}
    save(song, tmp_path / "ok.studio")
    assert load(tmp_path / "ok.studio").meta == json.loads(json.dumps(song.meta))
