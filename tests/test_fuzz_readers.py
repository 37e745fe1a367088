"""Fuzzing the MusicXML and project readers, like the MIDI one (test_malformed_midi.py).

Small valid files are made from songs, then mutated: bytes flipped, set, cut, inserted and
deleted, and numbers swapped for hostile ones (zero, negative, 2**64, 5,000 digits, NaN,
1e309, a string or a boolean where a number was).  Every result must be refused with one line
that names the file, or be a song within the limits that saves and reads back.

Each fuzz runs in a child process with its address space capped (``RLIMIT_AS``), so a
reader that tries to swallow gigabytes fails the test instead of the machine, and the
child's peak RSS is held to a ceiling as well.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
AS_LIMIT = 3 * 2**30  # address space of the fuzzing process
RSS_CEILING_MB = 1200  # its peak resident memory (music21 itself takes about 200 MB)
TIME_LIMIT_S = 60  # each fuzz, start-up included; the examples below take a fraction of it
# the same examples on every run of `make test`; STUDIO_FUZZ_RANDOM=1 draws new ones each time
DERANDOMIZE = not os.environ.get("STUDIO_FUZZ_RANDOM")

HOSTILE_NUMBERS = ["0", "-1", "-0", "1.5", "1e309", "-1e309", "NaN", "4294967296", "18446744073709551616",
                   "9" * 5000, "1e-300", "999999999", "1000000000", "65536", "2147483648", "007", "+3", "0x10"]
HOSTILE_JSON = HOSTILE_NUMBERS + ["true", "false", "null", '"5"', "[]", "{}", '"false"', "-" + "9" * 4301]


def _seed_songs():
    from studio.core.song import KeySignature, Note, Song, TempoChange, TimeSignature, Track

    return [
        Song(title="a", tracks=[Track("Melody", 73, 0, notes=[Note(i * 240, 60 + i % 12, 240 + 120 * (i % 3), 90)
                                                              for i in range(12)])],
             tempos=[TempoChange(0, 96.0)], time_signatures=[TimeSignature(0, 3, 4)],
             key_signatures=[KeySignature(0, -3, True)]),
        Song(title="b", tracks=[Track("Up", 0, 0, notes=[Note(0, 64, 960), Note(0, 67, 960), Note(1440, 72, 1200)]),
                                Track("Kit", 0, 9, is_drum=True, notes=[Note(0, 36, 60), Note(480, 38, 60)], mute=True)],
             tempos=[TempoChange(0, 120.0), TempoChange(1920, 60.0)], time_signatures=[TimeSignature(0, 6, 8)],
             meta={"ai_history": [{"kind": "continue", "seed": 3}]}),
    ]


_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


_BODY = re.compile(rb"<score-partwise|<score-timewise|\{")


@st.composite
def mutated(draw, seeds: list[bytes], replacements: list[str]):
    data = bytearray(draw(st.sampled_from(seeds)))
    kinds = ["number"] * 5 + ["flip", "set", "cut", "insert", "delete", "repeat"]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "number":  # in the body: the XML declaration's version is not the reader's business
            m = _BODY.search(bytes(data))
            spans = [n.span() for n in _NUMBER.finditer(bytes(data), m.start() if m else 0)]
            if spans:
                a, b = draw(st.sampled_from(spans))
                data[a:b] = draw(st.sampled_from(replacements)).encode()
        elif kind == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 40))]
        elif kind == "repeat":  # a stretch of the file again, up to 20 times (an element repeated, or cut)
            j = draw(st.integers(i, min(len(data), i + 400)))
            data[j:j] = data[i:j] * draw(st.integers(1, 20))
    return bytes(data)


def _check_outcome(path: Path) -> None:
    """``path`` loads into a sane song that saves and reads back, or is refused in one line."""
    from studio.core.errors import FileFormatError
    from studio.io import limits, load, project

    try:
        song = load(path)
    except FileFormatError as exc:
        text = str(exc)
        assert text.startswith(f"{path.name}: ") and "\n" not in text and len(text) < 400, text
        return
    assert limits.song_problem(song) is None
    for t in song.tracks:
        assert isinstance(t.is_drum, bool) and isinstance(t.mute, bool) and isinstance(t.solo, bool)
        for n in t.notes:
            assert 0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 and n.duration > 0 and n.start >= 0
    assert project.read_project_bytes(project.project_to_bytes(song)) == song


def _stable(xml: bytes) -> bytes:
    """music21's random ids and today's date made fixed, so the examples are the same every run."""
    names: dict[bytes, bytes] = {}

    def fix(m):
        return b'"' + names.setdefault(m.group(1), m.group(1)[:1] + str(len(names) + 1).encode()) + b'"'

    xml = re.sub(rb'"([PI][0-9a-f]{32})"', fix, xml)
    return re.sub(rb"<encoding-date>[^<]*</encoding-date>", b"<encoding-date>2020-01-01</encoding-date>", xml)


def _xml_seeds() -> list[bytes]:
    from studio.io.musicxml import song_to_musicxml_bytes

    return [_stable(song_to_musicxml_bytes(s)) for s in _seed_songs()]


def _project_seeds() -> list[bytes]:
    from studio.io.project import song_to_doc

    # indented, so that numbers and keys stand apart for the mutations
    return [json.dumps(song_to_doc(s), indent=1).encode() for s in _seed_songs()]


def fuzz_musicxml(examples: int = 150) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-xml-"))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(_xml_seeds(), HOSTILE_NUMBERS))
    def run(data):
        path = folder / "fuzz.musicxml"
        path.write_bytes(data)
        _check_outcome(path)

    run()


def fuzz_project(examples: int = 300) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-project-"))

    @settings(max_examples=examples, deadline=None, database=None, derandomize=DERANDOMIZE,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(mutated(_project_seeds(), HOSTILE_JSON))
    def run(data):
        path = folder / "fuzz.studio"
        path.write_bytes(data)
        _check_outcome(path)

    run()


_CHILD = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
sys.path.insert(0, {tests!r})
import test_fuzz_readers as f
t = time.perf_counter()
f.{fn}()
print(f"{{time.perf_counter() - t:.1f}}", flush=True)
"""


def _run_capped(fn: str) -> tuple[float, float, str]:
    """Run ``fn`` of this module in a memory-capped child; (seconds, peak RSS in MB, output)."""
    code = _CHILD.format(limit=AS_LIMIT, tests=str(ROOT / "tests"), fn=fn)
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="offscreen")
    with tempfile.TemporaryFile("w+") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        deadline = t0 + TIME_LIMIT_S
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here; keep Popen from waiting again
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    assert wall < TIME_LIMIT_S, f"{fn} ran past {TIME_LIMIT_S} s\n{text[-3000:]}"
    assert proc.returncode == 0, text[-4000:]
    return wall, peak_mb, text


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and ru_maxrss in kilobytes are Linux's")
@pytest.mark.parametrize("fn", ["fuzz_musicxml", "fuzz_project"])
def test_fuzz_reader_in_a_memory_capped_process(fn):
    wall, peak_mb, text = _run_capped(fn)
    print(f"{fn}: {wall:.1f} s, peak RSS {peak_mb:.0f} MB")
    assert peak_mb < RSS_CEILING_MB, f"{fn}: peak RSS {peak_mb:.0f} MB\n{text[-2000:]}"


# ---- what the fuzz found, kept as plain tests -----------------------------------------------
@pytest.mark.parametrize("old,new,message", [
    (rb'dynamics="[^"]*"', b'dynamics="1e309"', None),  # a velocity of infinity: the note keeps its default
    (rb"<alter>[^<]*</alter>", b"<alter>1e309</alter>", "a note without a proper pitch"),
    (rb'encoding="utf-8"', b'encoding="ttf-8"', "not readable MusicXML (unknown encoding: ttf-8)"),
    (rb"<beats>\d+</beats>", b"<beats>" + b"9" * 5000 + b"</beats>", "time signature 999999999999... (5,000 digits)/4"),
])
def test_found_by_fuzzing(tmp_path, old, new, message):
    from studio.core.errors import FileFormatError
    from studio.io import load

    xml, n = re.subn(old, new, _xml_seeds()[0], count=1)
    assert n == 1
    path = tmp_path / "found.musicxml"
    path.write_bytes(xml)
    if message is None:
        assert load(path).note_count == 12
        return
    with pytest.raises(FileFormatError) as info:
        load(path)
    assert message in str(info.value) and len(str(info.value)) < 200
