"""The ``.studio`` project file: versioned JSON, written atomically with a ``.bak``.

Layout (format_version 3)::

    {"format_version": 3, "app": "cantor-studio", "title": ..., "composer": ..., "ppq": 480,
     "pickup": ticks of a partial first bar (0: none),
     "fermatas": [tick, ...] (the onsets of the notes carrying a fermata),
     "tempos": [[tick, bpm], ...], "time_signatures": [[tick, num, den], ...],
     "key_signatures": [[tick, fifths, minor], ...],
     "tracks": [{"name", "program", "channel", "is_drum", "color", "mute", "solo",
                 "volume": 0-127, "pan": 0-127,
                 "notes": [[start, pitch, duration, velocity], ...],
                 "controls": [[tick, number, value], ...]}, ...],
     "meta": {...}}

``controls``: number 0-127 is a MIDI controller (value 0-127), 128 is pitch bend
(value -8192..8191); events keep their order within a tick.  Version 1 had no composer,
pickup, volume, pan or controls; version 2 had no fermatas.

Older documents are brought up to date one version at a time through ``MIGRATIONS``;
a document from a *newer* version is refused rather than misread.
"""

from __future__ import annotations

import json
import os
from typing import Callable

from ..core.errors import FileFormatError
from ..core.song import PITCH_BEND, PPQ, Control, KeySignature, Note, Song, TempoChange, TimeSignature, Track, json_copy
from . import limits
from .meta import history_problem
from .reading import read_limited
from .atomic import atomic_write

FORMAT_VERSION = 3
APP = "cantor-studio"
MAX_BYTES = limits.PROJECT_MAX_BYTES
MAX_NOTES = limits.MAX_EVENTS
MAX_TRACKS = limits.MAX_TRACKS
MAX_TICKS = limits.MAX_TICKS  # 6 hours at 1000 bpm


class _Bad(Exception):
    pass


# ---- migrations: each takes a document of version N and returns one of version N + 1 ----
def _v0_to_v1(doc: dict) -> dict:
    """Version 0 (early builds): one ``bpm`` and ``meter`` string, notes as dicts with
    ``pitch``/``start``/``dur``/``vel``, no key, no per-track colour/mute/solo."""
    num, _, den = str(doc.get("meter", "4/4")).partition("/")
    tracks = []
    for t in doc.get("tracks", []):
        notes = [[n["start"], n["pitch"], n["dur"], n.get("vel", 80)] for n in t.get("notes", [])]
        tracks.append({"name": t.get("name", "Track"), "program": t.get("program", 0),
                       "channel": t.get("channel", 0), "is_drum": t.get("channel", 0) == 9, "notes": notes})
    return {
        "format_version": 1,
        "app": APP,
        "title": doc.get("title", "Untitled"),
        "ppq": doc.get("ppq", PPQ),
        "tempos": [[0, float(doc.get("bpm", 120.0))]],
        "time_signatures": [[0, int(num or 4), int(den or 4)]],
        "key_signatures": [[0, 0, False]],
        "tracks": tracks,
        "meta": {},
    }


def _v1_to_v2(doc: dict) -> dict:
    """Version 1 had no composer, pickup, per-track volume, pan or controllers: a v1 song
    plays as it did with General MIDI's defaults (volume 100, pan centre, no events)."""
    out = dict(doc)
    out["format_version"] = 2
    out.setdefault("composer", "")
    out.setdefault("pickup", 0)
    tracks = doc.get("tracks", [])
    if isinstance(tracks, list):  # anything else is reported by the reader, precisely
        out["tracks"] = [{"volume": 100, "pan": 64, "controls": [], **t} if isinstance(t, dict) else t for t in tracks]
    return out


def _v2_to_v3(doc: dict) -> dict:
    """Version 2 had no fermatas: a v2 song has none (the harmonizer guesses its phrase ends)."""
    out = dict(doc)
    out["format_version"] = 3
    out.setdefault("fermatas", [])
    return out


MIGRATIONS: dict[int, Callable[[dict], dict]] = {0: _v0_to_v1, 1: _v1_to_v2, 2: _v2_to_v3}


def migrate(doc: dict) -> dict:
    """Bring a document to FORMAT_VERSION through the migration chain."""
    version = doc.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise _Bad(f"format_version {version!r} is not a version number")
    if version > FORMAT_VERSION:
        raise _Bad(
            f"written by a newer Cantor Studio (project format {version}; this version reads up to "
            f"{FORMAT_VERSION}). Update Cantor Studio to open it"
        )
    while version < FORMAT_VERSION:
        step = MIGRATIONS.get(version)
        if step is None:
            raise _Bad(f"no way to upgrade project format {version}")
        try:
            doc = step(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise _Bad(f"cannot upgrade project format {version}: {type(exc).__name__}: {exc}") from None
        version = doc["format_version"]
    return doc


# ---- document <-> Song --------------------------------------------------------------
def song_to_doc(song: Song) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "app": APP,
        "title": song.title,
        "composer": song.composer,
        "ppq": song.ppq,
        "pickup": song.pickup,
        "fermatas": list(song.fermatas),
        "tempos": [[t.tick, t.bpm] for t in song.tempos],
        "time_signatures": [[s.tick, s.numerator, s.denominator] for s in song.time_signatures],
        "key_signatures": [[k.tick, k.fifths, bool(k.minor)] for k in song.key_signatures],
        "tracks": [
            {
                "name": t.name,
                "program": t.program,
                "channel": t.channel,
                "is_drum": bool(t.is_drum),
                "color": t.color,
                "mute": bool(t.mute),
                "solo": bool(t.solo),
                "volume": t.volume,
                "pan": t.pan,
                "notes": [[n.start, n.pitch, n.duration, n.velocity] for n in t.notes],
                "controls": [[c.tick, c.number, c.value] for c in t.controls],
            }
            for t in song.tracks
        ],
        "meta": json_copy(song.meta),
    }


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 24 else text[:20] + "..."


def _int(v, what: str, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")) or v != int(v):
        raise _Bad(f"{what}: {_short(v)} is not a whole number")
    v = int(v)
    if not lo <= v <= hi:
        raise _Bad(f"{what}: {_short(v)} is outside {lo}..{hi}")
    return v


def _bool(v, what: str) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"{what}: {_short(v)} is not true or false")
    return v


def _list(v, what: str) -> list:
    if not isinstance(v, list):
        raise _Bad(f"{what}: a list was expected")
    return v


def doc_to_song(doc: dict) -> Song:
    if not isinstance(doc, dict):
        raise _Bad("not a project (the top level is not an object)")
    ppq = _int(doc.get("ppq", PPQ), "ppq", 1, 65535)

    def tk(v, what):  # ticks from the document's resolution to ours
        v = _int(v, what, 0, 2**53)
        v = v if ppq == PPQ else (v * PPQ * 2 + ppq) // (2 * ppq)
        if v > MAX_TICKS:
            raise _Bad(f"{what}: tick {v:,} is past the {MAX_TICKS:,} tick limit")
        return v

    tempos = []
    for i, e in enumerate(_list(doc.get("tempos", []), "tempos")):
        e = _list(e, f"tempos[{i}]")
        if len(e) != 2 or isinstance(e[1], bool) or not isinstance(e[1], (int, float)) or not 1 <= e[1] <= 1000:
            raise _Bad(f"tempos[{i}]: [tick, bpm] with bpm in 1..1000 expected, got {e!r}")
        tempos.append(TempoChange(tk(e[0], f"tempos[{i}]"), float(e[1])))
    sigs = []
    for i, e in enumerate(_list(doc.get("time_signatures", []), "time_signatures")):
        e = _list(e, f"time_signatures[{i}]")
        if len(e) != 3:
            raise _Bad(f"time_signatures[{i}]: [tick, numerator, denominator] expected")
        sigs.append(TimeSignature(tk(e[0], f"time_signatures[{i}]"), _int(e[1], f"time_signatures[{i}]", 1, 64),
                                  _int(e[2], f"time_signatures[{i}]", 1, 64)))
    keys = []
    for i, e in enumerate(_list(doc.get("key_signatures", []), "key_signatures")):
        e = _list(e, f"key_signatures[{i}]")
        if len(e) != 3:
            raise _Bad(f"key_signatures[{i}]: [tick, fifths, minor] expected")
        keys.append(KeySignature(tk(e[0], f"key_signatures[{i}]"), _int(e[1], f"key_signatures[{i}]", -7, 7),
                                 _bool(e[2], f"key_signatures[{i}] minor")))
    tracks = []
    total = 0
    for ti, t in enumerate(_list(doc.get("tracks", []), "tracks")):
        w = f"tracks[{ti}]"
        if not isinstance(t, dict):
            raise _Bad(f"{w}: an object was expected")
        if ti >= MAX_TRACKS:
            raise _Bad(f"more than {MAX_TRACKS} tracks (limit)")
        notes = []
        for ni, n in enumerate(_list(t.get("notes", []), f"{w}.notes")):
            wn = f"{w}.notes[{ni}]"
            if not isinstance(n, list) or len(n) != 4:
                raise _Bad(f"{wn}: [start, pitch, duration, velocity] expected")
            start = tk(n[0], wn)
            end = tk(n[0] + _int(n[2], wn, 1, 2**53), wn)
            notes.append(Note(start, _int(n[1], wn, 0, 127), max(1, end - start), _int(n[3], wn, 1, 127)))
        controls = []
        for ci, c in enumerate(_list(t.get("controls", []), f"{w}.controls")):
            wc = f"{w}.controls[{ci}]"
            if not isinstance(c, list) or len(c) != 3:
                raise _Bad(f"{wc}: [tick, number, value] expected")
            number = _int(c[1], wc, 0, PITCH_BEND)
            lo, hi = (-8192, 8191) if number == PITCH_BEND else (0, 127)
            controls.append(Control(tk(c[0], wc), number, _int(c[2], wc, lo, hi)))
        total += len(notes) + len(controls)
        if total > MAX_NOTES:
            raise _Bad(f"more than {MAX_NOTES:,} notes and controller events (limit)")
        name, color = t.get("name", f"Track {ti + 1}"), t.get("color", "")
        if not isinstance(name, str) or not isinstance(color, str):
            raise _Bad(f"{w}: name and color must be text")
        tracks.append(Track(
            name=name,
            program=_int(t.get("program", 0), f"{w}.program", 0, 127),
            channel=_int(t.get("channel", 0), f"{w}.channel", 0, 15),
            is_drum=_bool(t.get("is_drum", False), f"{w}.is_drum"),
            notes=notes,
            color=color,
            mute=_bool(t.get("mute", False), f"{w}.mute"),
            solo=_bool(t.get("solo", False), f"{w}.solo"),
            controls=controls,
            volume=_int(t.get("volume", 100), f"{w}.volume", 0, 127),
            pan=_int(t.get("pan", 64), f"{w}.pan", 0, 127),
        ))
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise _Bad("meta: an object was expected")
    try:
        json.dumps(meta, allow_nan=False)
    except ValueError:
        raise _Bad("meta: holds NaN or infinity, which a project cannot keep") from None
    problem = history_problem(meta)  # the AI history the assistant reads back
    if problem:
        raise _Bad(problem)
    title = doc.get("title", "Untitled")
    if not isinstance(title, str):
        raise _Bad("title: text was expected")
    composer = doc.get("composer", "")
    if not isinstance(composer, str):
        raise _Bad("composer: text was expected")
    pickup = tk(doc.get("pickup", 0), "pickup")
    fermatas = _list(doc.get("fermatas", []), "fermatas")
    if len(fermatas) > MAX_NOTES:
        raise _Bad(f"more than {MAX_NOTES:,} fermatas (limit)")
    fermatas = [tk(f, f"fermatas[{i}]") for i, f in enumerate(fermatas)]
    song = Song(title=title, ppq=PPQ, tracks=tracks, tempos=tempos, time_signatures=sigs,
                key_signatures=keys, meta=json_copy(meta), composer=composer, pickup=pickup,
                fermatas=tuple(fermatas))
    return song.normalize()


# ---- files -----------------------------------------------------------------------------
def project_to_bytes(song: Song) -> bytes:
    return json.dumps(song_to_doc(song), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


MAX_DIGITS = 100  # no value of a project needs more; Python refuses to read past 4,300


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_DIGITS:
        raise _Bad(f"holds a {digits:,}-digit number (at most {MAX_DIGITS} digits)")
    return int(text)


def read_project_bytes(data: bytes, name: str = "") -> Song:
    label = os.path.basename(name) or "project"
    try:
        if not data.strip():
            raise _Bad("empty file")
        try:
            doc = json.loads(data.decode("utf-8"), parse_int=_parse_int)
        except UnicodeDecodeError:
            raise _Bad("not a project file (not UTF-8 text)") from None
        except json.JSONDecodeError as exc:
            raise _Bad(f"not a project file (JSON error at line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
        if not isinstance(doc, dict) or ("format_version" not in doc and "tracks" not in doc):
            raise _Bad("not a Cantor Studio project (no format_version)")
        return doc_to_song(migrate(doc))
    except _Bad as exc:
        raise FileFormatError(f"{label}: {exc}") from None
    except RecursionError:
        raise FileFormatError(f"{label}: nested too deeply") from None


def read_project(path: str | os.PathLike) -> Song:
    data = read_limited(path, MAX_BYTES, "projects")
    return read_project_bytes(data, str(path))


def write_project(song: Song, path: str | os.PathLike, *, _chunk_hook: Callable[[int], None] | None = None) -> None:
    """Save atomically (temp file, fsync, rename); the previous file is kept as ``<path>.bak``.

    ``_chunk_hook`` is called with the byte count after each chunk is written (tests use it
    to simulate a crash in the middle of a save).
    """
    label = os.path.basename(str(path))
    limits.check_song(song, label)
    try:
        data = project_to_bytes(song)
    except (TypeError, ValueError) as exc:  # something in Song.meta that JSON cannot hold
        raise FileFormatError(f"{label}: cannot save this song's extra data ({exc})") from None
    limits.check_size(data, MAX_BYTES, label, "projects")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            step = 1 << 16
            for i in range(0, len(data), step):
                fh.write(data[i : i + step])
                if _chunk_hook is not None:
                    _chunk_hook(i + step)

    atomic_write(path, write, backup=True)
