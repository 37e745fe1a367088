"""Broken and hostile MIDI files: every one is refused with one clear line and exit code 2.

The files are made here, byte by byte, from a small valid file: truncations, bit flips,
lying chunk lengths, absurd headers, huge delta times and track counts, bad data bytes,
things that are not MIDI at all.  Each goes through the real command line in a
subprocess; a hypothesis test then throws mutated files at the importer directly.
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.core.errors import FileFormatError
from studio.core.song import Note, Song, Track
from studio.io import midi

ROOT = Path(__file__).resolve().parents[1]


# ---- building blocks -------------------------------------------------------------------
def header(fmt=1, ntracks=1, division=480, length=6) -> bytes:
    return b"MThd" + struct.pack(">IHHH", length, fmt, ntracks, division)


def mtrk(body: bytes, length: int | None = None) -> bytes:
    return b"MTrk" + struct.pack(">I", len(body) if length is None else length) + body


EOT = b"\x00\xff\x2f\x00"
NOTE = b"\x00\x90\x3c\x40\x83\x60\x80\x3c\x00"  # middle C, a quarter note at 480 PPQ


def base_song() -> Song:
    notes = [Note(i * 240, 60 + (i % 12), 240, 64 + i % 30) for i in range(24)]
    return Song(title="Base", tracks=[Track("Piano", 0, 0, notes=notes), Track("Bass", 32, 1, notes=[Note(0, 36, 960)])])


def base_bytes() -> bytes:
    return midi.song_to_midi_bytes(base_song())


def _track_offsets(data: bytes) -> list[int]:
    out, pos = [], 14
    while pos + 8 <= len(data):
        out.append(pos)
        pos += 8 + struct.unpack(">I", data[pos + 4 : pos + 8])[0]
    return out


def _flip(data: bytes, index: int, bit: int) -> bytes:
    b = bytearray(data)
    b[index] ^= 1 << bit
    return bytes(b)


def malformed_cases() -> dict[str, bytes]:
    """Name -> bytes of a file that must be refused."""
    good = base_bytes()
    offs = _track_offsets(good)
    t1 = offs[1]  # the first instrument track (after the conductor track)
    first_note_on = good.index(b"\x90", t1 + 8)  # status byte of the first note-on
    rng = random.Random(1234)
    cases = {
        "empty": b"",
        "one_byte": b"M",
        "not_midi_text": b"This is a text file, not a song.\n" * 20,
        "png_signature": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "svg_document": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>',
        "json_document": b'{"tracks": [], "title": "not MIDI"}',
        "random_noise": bytes(rng.randrange(256) for _ in range(4096)),
        "magic_only": b"MThd",
        "header_cut": good[:11],
        "header_length_absurd": header(length=0x7FFFFFFF) + mtrk(NOTE + EOT),
        "header_length_too_small": b"MThd" + struct.pack(">IHH", 2, 1, 1) + mtrk(NOTE + EOT),
        "format_3": header(fmt=3) + mtrk(NOTE + EOT),
        "format_65535": header(fmt=0xFFFF) + mtrk(NOTE + EOT),
        "zero_tracks": header(ntracks=0) + mtrk(NOTE + EOT),
        "huge_track_count_header": header(ntracks=65535) + mtrk(NOTE + EOT),
        "300_real_tracks": header(ntracks=300) + mtrk(NOTE + EOT) * 300,
        "fewer_tracks_than_promised": header(ntracks=5) + mtrk(NOTE + EOT) * 2,
        "zero_division": header(division=0) + mtrk(NOTE + EOT),
        "absurd_smpte_division": header(division=0x8000 | (200 << 8) | 40) + mtrk(NOTE + EOT),
        "smpte_zero_ticks_per_frame": header(division=((256 - 25) << 8)) + mtrk(NOTE + EOT),
        "truncated_half": good[: len(good) // 2],
        "truncated_inside_track_header": good[: t1 + 5],
        "chunk_length_lies_big": good[: t1 + 4] + struct.pack(">I", 0x7FFFFFF0) + good[t1 + 8 :],
        "chunk_length_lies_small": header() + mtrk(NOTE + EOT, length=len(NOTE) + 2) + b"\x2f\x00",
        "chunk_length_lies_into_next": header(ntracks=2) + mtrk(NOTE + EOT, length=len(NOTE) + 10) + mtrk(NOTE + EOT),
        "garbage_chunk_type": good[:t1] + b"\x00\x01\x02\x03" + good[t1 + 4 :],
        "alien_chunk_only": header() + b"XFIH" + struct.pack(">I", 4) + b"abcd",
        "data_byte_without_status": header() + mtrk(b"\x00\x3c\x40" + EOT),
        "bad_data_byte_pitch": header() + mtrk(b"\x00\x90\x85\x40" + EOT),
        "bad_data_byte_velocity": header() + mtrk(b"\x00\x90\x3c\xc0" + EOT),
        "varlen_five_bytes": header() + mtrk(b"\xff\xff\xff\xff\x7f\x90\x3c\x40" + EOT),
        "event_cut_mid_note": header() + mtrk(b"\x00\x90\x3c"),
        "truncated_by_five_bytes": good[:-5],  # more than an end-of-track event is missing
        "realtime_byte_then_data_without_status": header() + mtrk(b"\x00\xf8\x3c\x40" + EOT),
        "huge_delta_times": header() + mtrk(b"\xff\xff\xff\x7f\x90\x3c\x40" + b"\xff\xff\xff\x7f\x80\x3c\x00" + EOT),
        "many_huge_deltas": header() + mtrk((b"\x8f\xff\xff\x7f\xff\x01\x00") * 40 + NOTE + EOT),
        "slow_tempo_nine_hours": header() + mtrk(b"\x00\xff\x51\x03\xff\xff\xff" + b"\x00\x90\x3c\x40\xbb\xa7\x00\x80\x3c\x00" + EOT),
        "tempo_zero": header() + mtrk(b"\x00\xff\x51\x03\x00\x00\x00" + NOTE + EOT),
        "tempo_wrong_length": header() + mtrk(b"\x00\xff\x51\x02\x07\xa1" + NOTE + EOT),
        "time_signature_zero_numerator": header() + mtrk(b"\x00\xff\x58\x04\x00\x02\x18\x08" + NOTE + EOT),
        "time_signature_absurd_denominator": header() + mtrk(b"\x00\xff\x58\x04\x04\x0f\x18\x08" + NOTE + EOT),
        "key_signature_twelve_sharps": header() + mtrk(b"\x00\xff\x59\x02\x0c\x00" + NOTE + EOT),
        "meta_length_past_end": header() + mtrk(b"\x00\xff\x03\x7fabc"),
        "sysex_length_past_end": header() + mtrk(b"\x00\xf0\xff\xff\xff\x7f\x01\x02"),
        "bitflip_magic": _flip(good, 3, 0),
        "bitflip_chunk_length": _flip(good, t1 + 4, 7),
        "bitflip_track_count": _flip(good, 10, 0),
        "bitflip_division_to_smpte": _flip(good, 12, 7),
        "bitflip_velocity_high_bit": _flip(good, first_note_on + 2, 7),
        "riff_wrapper_broken": b"RIFF" + struct.pack("<I", 100) + b"RMID" + b"data" + struct.pack("<I", 1000) + b"MTh",
    }
    return cases


# ---- the importer itself ---------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(malformed_cases()))
def test_importer_refuses(name):
    data = malformed_cases()[name]
    with pytest.raises(FileFormatError) as info:
        midi.read_midi_bytes(data, f"{name}.mid")
    msg = str(info.value)
    assert msg.startswith(f"{name}.mid: ") and "\n" not in msg and len(msg) < 300


def test_case_count_and_base_is_valid():
    assert len(malformed_cases()) >= 30
    song = midi.read_midi_bytes(base_bytes(), "base.mid")
    assert song.notes_equal(base_song())


def test_size_cap_checked_before_reading(tmp_path):
    big = tmp_path / "big.mid"
    with open(big, "wb") as fh:
        fh.write(header() + mtrk(NOTE + EOT))
        fh.truncate(midi.MAX_BYTES + 1)
    t = time.perf_counter()
    with pytest.raises(FileFormatError, match="larger than"):
        midi.read_midi(big)
    assert time.perf_counter() - t < 0.5


def test_event_cap(monkeypatch):
    monkeypatch.setattr(midi, "MAX_EVENTS", 1000)
    data = header() + mtrk(b"\x00\xff\x01\x00" * 1500 + NOTE + EOT)
    with pytest.raises(FileFormatError, match="more than 1,000 events"):
        midi.read_midi_bytes(data, "many.mid")
    midi.read_midi_bytes(header() + mtrk(b"\x00\xff\x01\x00" * 900 + NOTE + EOT), "fine.mid")


def test_dense_file_is_refused_before_mido_builds_messages(monkeypatch):
    """Events are counted from their lengths in the scan: a file packed with tiny events
    never reaches mido, whose message objects would cost seconds and hundreds of MB."""
    monkeypatch.setattr(midi, "MAX_EVENTS", 10_000)

    def never(*_a):
        raise AssertionError("mido was asked to parse a file over the event cap")

    monkeypatch.setattr(midi, "_mido_track", never)
    dense = header() + mtrk(b"\x00\xc0\x00" + b"\x00\x00" * 50_000 + EOT)  # running-status program changes
    t = time.perf_counter()
    with pytest.raises(FileFormatError, match="more than 10,000 events"):
        midi.read_midi_bytes(dense, "dense.mid")
    assert time.perf_counter() - t < 0.5
    # split over several tracks, the count is for the whole file
    split = header(ntracks=3) + mtrk(NOTE * 1_700 + EOT) * 3  # 3 x 3,401 events
    with pytest.raises(FileFormatError, match="more than 10,000 events"):
        midi.read_midi_bytes(split, "split.mid")


def test_worst_case_within_caps_is_fast():
    """A file just under the event cap for its size parses in bounded time."""
    body = NOTE * 20_000 + EOT  # 40k events, 180 kB
    t = time.process_time()  # CPU time: the machine's other work does not count
    song = midi.read_midi_bytes(header() + mtrk(body), "dense.mid")
    assert song.note_count == 20_000
    assert time.process_time() - t < 2.0


# ---- the real command line ---------------------------------------------------------------
def _run(args: list[str]) -> tuple[int, str, str, float]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("STUDIO_DEBUG", None)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True, text=True, env=env, timeout=30, cwd=ROOT)
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t


def test_cli_refuses_every_malformed_file(tmp_path):
    cases = malformed_cases()
    files = {}
    for name, data in cases.items():
        f = tmp_path / f"{name}.mid"
        f.write_bytes(data)
        files[name] = f
    convert_some = sorted(cases)[::4]
    jobs = [(n, ["info", str(files[n])]) for n in sorted(cases)]
    jobs += [(n, ["convert", str(files[n]), "-o", str(tmp_path / f"out_{n}.studio")]) for n in convert_some]
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda j: (j[0], j[1][0], *_run(j[1])), jobs))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / len(results)
    for name, verb, rc, out, err, secs in results:
        lines = err.strip().splitlines()
        assert rc == 2, f"{verb} {name}: exit {rc}, stderr {err!r}"
        assert len(lines) == 1 and lines[0].startswith("studio: error: ") and f"{name}.mid" in lines[0], (name, err)
        assert "Traceback" not in err
    times = sorted(r[-1] for r in results)
    print(f"\n{len(results)} CLI runs on {len(cases)} malformed files: all exit 2; "
          f"median {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s wall, {cpu:.2f} s CPU each")
    # CPU, not the wall clock: on a shared machine a refusal may wait for a core, but must not work long
    assert cpu < 1.0, f"{cpu:.2f} s of CPU per refusal"
    # nothing half-written: no outputs and no temporary files left behind
    assert not list(tmp_path.glob("out_*")) and not list(tmp_path.glob(".*part"))


# ---- fuzzing -----------------------------------------------------------------------------
_GOOD = base_bytes()


@st.composite
def mutated_midi(draw):
    data = bytearray(_GOOD)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[i : i + draw(st.integers(1, 8))]
    return bytes(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated_midi(), st.binary(max_size=300).map(lambda b: b"MThd\x00\x00\x00\x06" + b)))
def test_fuzz_importer_never_crashes(data):
    try:
        song = midi.read_midi_bytes(data, "fuzz.mid")
    except FileFormatError as exc:
        assert str(exc).startswith("fuzz.mid: ")
        return
    # whatever survives must be a sane song that writes and reads back
    for t in song.tracks:
        for n in t.notes:
            assert 0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 and n.duration > 0 and n.start >= 0
    again = midi.read_midi_bytes(midi.song_to_midi_bytes(song), "again.mid")
    assert again.note_count == song.note_count
