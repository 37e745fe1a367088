"""The music21 corpus as Songs: parsed once into a cache, split by work, loaded in seconds.

``load_corpus(split)`` returns :class:`CorpusPiece` objects (id, Song, split).  The first
call parses music21's core corpus (``music21.corpus.getCorePaths()``: Bach, Palestrina,
Monteverdi, the string quartets, the folk collections, ...) with at most two worker
processes, one file at a time under a time limit, skipping what music21 cannot read, and
writes one gzip'd JSON file per source file into the cache folder
(``$STUDIO_CACHE/corpus`` or ``~/.cache/cantor-studio/corpus``).  No music21 object is
pickled; later loads only read JSON.

Split (fixed): every piece belongs to a *work*; ``sha1(work)`` decides, 90/5/5 percent
train/valid/test.  The work is the folder for multi-movement works (``beethoven/opus18no1``,
``mozart/k458``), the cantata for Bach chorales (``bach/bwv66.6`` -> ``bach/bwv66``), the
file for everything else; each tune of a multi-tune ABC collection is its own work and its
id is ``file#n`` (n = 1-based order of the tune in the file).

Build the cache ahead of time with ``python -m studio.ml.corpus --build``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import Cancelled
from ..core.song import PPQ, KeySignature, Note, Song, TempoChange, TimeSignature, Track
from . import paths

CACHE_VERSION = 2
SPLITS = ("train", "valid", "test")
FILE_TIME_LIMIT = 150  # seconds for one file (one ABC tune: TUNE_TIME_LIMIT)
TUNE_TIME_LIMIT = 20
SKIP_SUFFIXES = {".rntxt", ".txt", ".py", ".json", ".csv", ".mid", ".midi"}  # analyses, not music
# parse order: the small, varied collections first so a partial cache is already useful
_PRIORITY = ("bach/", "monteverdi/", "ryansMammoth/", "beethoven/", "haydn/", "mozart/", "palestrina/",
             "josquin/", "oneills1850/", "corelli/", "airdsAirs/", "schumann", "handel/", "trecento/")


@dataclass(frozen=True)
class CorpusPiece:
    id: str  # corpus-relative path, plus "#n" for the n-th tune of a multi-tune file
    song: Song
    split: str  # "train", "valid" or "test"


# ---- folders -----------------------------------------------------------------------------
def cache_dir() -> Path:
    return paths.cache_root() / "corpus"


def corpus_root() -> Path:
    import music21.corpus

    return Path(music21.corpus.__file__).resolve().parent


def source_files() -> list[str]:
    """Corpus-relative paths of the music files in music21's core corpus, in parse order."""
    from music21 import corpus

    root = corpus_root()
    rels = []
    for p in corpus.getCorePaths():
        p = Path(p)
        if p.suffix.lower() in SKIP_SUFFIXES:
            continue
        try:
            rels.append(p.resolve().relative_to(root).as_posix())
        except ValueError:
            continue

    def rank(rel: str):
        for i, prefix in enumerate(_PRIORITY):
            if rel.startswith(prefix):
                return (i, rel)
        # the rest, then the big folk-song collections (slowest per note) last
        return (len(_PRIORITY) + rel.startswith("essenFolksong/"), rel)

    return sorted(rels, key=rank)


def _cache_file(rel: str) -> Path:
    return cache_dir() / (rel.replace("/", "__") + ".json.gz")


# ---- split -------------------------------------------------------------------------------
_MULTI_MOVEMENT = re.compile(r"^[^/]+/[^/]+/")  # composer/work/file


def work_of(piece_id: str) -> str:
    """The work a piece belongs to: all its movements/numbers go to the same split."""
    rel, _, tune = piece_id.partition("#")
    if _MULTI_MOVEMENT.match(rel):
        return rel.rsplit("/", 1)[0]
    stem = rel.rsplit(".", 1)[0]
    m = re.match(r"^bach/bwv(\d+)", stem)
    if m:
        return f"bach/bwv{m.group(1)}"
    return piece_id if tune else stem


def split_of(piece_id: str) -> str:
    h = int(hashlib.sha1(work_of(piece_id).encode()).hexdigest()[:8], 16) % 100
    return "train" if h < 90 else "valid" if h < 95 else "test"


# ---- Song <-> JSON -----------------------------------------------------------------------
def song_to_json(song: Song) -> dict:
    return {
        "title": song.title,
        "tracks": [
            {"name": t.name, "program": t.program, "channel": t.channel, "is_drum": t.is_drum,
             "notes": [x for n in t.notes for x in (n.start, n.pitch, n.duration, n.velocity)]}
            for t in song.tracks
        ],
        "tempos": [[e.tick, e.bpm] for e in song.tempos],
        "time_signatures": [[e.tick, e.numerator, e.denominator] for e in song.time_signatures],
        "key_signatures": [[e.tick, e.fifths, int(e.minor)] for e in song.key_signatures],
    }


def song_from_json(d: dict) -> Song:
    tracks = []
    for t in d["tracks"]:
        v = t["notes"]
        notes = [Note(v[i], v[i + 1], v[i + 2], v[i + 3]) for i in range(0, len(v), 4)]
        tracks.append(Track(name=t["name"], program=t["program"], channel=t["channel"],
                            is_drum=t["is_drum"], notes=notes))
    return Song(
        title=d.get("title", "Untitled"), ppq=PPQ, tracks=tracks,
        tempos=[TempoChange(int(a), float(b)) for a, b in d["tempos"]] or [TempoChange(0, 120.0)],
        time_signatures=[TimeSignature(*map(int, x)) for x in d["time_signatures"]] or [TimeSignature(0)],
        key_signatures=[KeySignature(int(a), int(b), bool(c)) for a, b, c in d["key_signatures"]]
        or [KeySignature(0)],
    )


# ---- music21 -> Song ---------------------------------------------------------------------
_PROGRAM_WORDS = [  # (substring of a lower-cased part/instrument name, GM program)
    ("piano", 0), ("pianoforte", 0), ("harpsichord", 6), ("cembalo", 6), ("organ", 19), ("guitar", 24),
    ("lute", 24), ("violoncello", 42), ("cello", 42), ("contrabass", 43), ("double bass", 43),
    ("viola", 41), ("violin", 40), ("fiddle", 40), ("flute", 73), ("piccolo", 72), ("recorder", 74),
    ("oboe", 68), ("english horn", 69), ("clarinet", 71), ("bassoon", 70), ("horn", 60),
    ("trumpet", 56), ("trombone", 57), ("tuba", 58), ("harp", 46), ("timpani", 47),
    ("soprano", 52), ("alto", 52), ("tenor", 52), ("bass", 52), ("cantus", 52), ("quintus", 52),
    ("sextus", 52), ("altus", 52), ("voice", 52), ("vox", 52), ("canto", 52), ("basso", 52),
]
# collections whose parts name no instrument: the family they were written for
_FAMILY_PROGRAM = {"ryansMammoth": 40, "oneills1850": 40, "airdsAirs": 40, "nottingham-dataset": 40,
                   "palestrina": 52, "monteverdi": 52, "josquin": 52, "trecento": 52, "luca": 52,
                   "ciconia": 52, "lusitano": 52, "essenFolksong": 73, "miscFolk": 73}


def guess_program(names: list[str], rel: str) -> int:
    for name in names:
        low = (name or "").lower()
        for word, prog in _PROGRAM_WORDS:
            if word in low:
                return prog
    return _FAMILY_PROGRAM.get(rel.split("/", 1)[0], 0)


def _ticks(ql) -> int:
    return int(round(float(ql) * PPQ))


def song_from_music21(score, rel: str = "", title: str | None = None) -> Song:
    """One Track per part; pickup bars are padded so bar lines fall where the meter says."""
    from music21 import chord, key, meter, note, stream, tempo

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    first = parts[0]
    shift = 0
    measures = list(first.getElementsByClass(stream.Measure))
    if measures:
        m0 = measures[0]
        ts0 = m0.timeSignature or m0.getContextByClass(meter.TimeSignature)
        if ts0 is not None:
            bar = ts0.barDuration.quarterLength
            dur = m0.duration.quarterLength
            if 0 < dur < bar:
                shift = _ticks(bar - dur)
    flat0 = first.flatten()
    time_sigs = [TimeSignature(0 if _ticks(e.offset) == 0 else _ticks(e.offset) + shift,
                               int(e.numerator), int(e.denominator))
                 for e in flat0.getElementsByClass(meter.TimeSignature)]
    keys = []
    for e in flat0.getElementsByClass(key.KeySignature):
        minor = isinstance(e, key.Key) and e.mode == "minor"
        t = _ticks(e.offset)
        keys.append(KeySignature(0 if t == 0 else t + shift, max(-7, min(7, int(e.sharps))), minor))
    tempos = []
    with contextlib.suppress(Exception):
        for start, _end, mm in score.metronomeMarkBoundaries():
            bpm = mm.getQuarterBPM()
            if bpm and 10 <= bpm <= 400:
                t = _ticks(start)
                tempos.append(TempoChange(0 if t == 0 else t + shift, float(round(bpm, 2))))
    tracks = []
    for i, part in enumerate(parts):
        inst = part.getInstrument(returnDefault=False)
        names = [getattr(part, "partName", None) or ""]
        if inst is not None:
            names += [inst.instrumentName or "", inst.partName or ""]
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else None
        if program is None:
            program = guess_program(names, rel)
        notes = []
        for el in part.stripTies().flatten().notes:
            if el.duration.isGrace or el.duration.quarterLength <= 0:
                continue
            start = _ticks(el.offset) + shift
            dur = max(1, _ticks(el.duration.quarterLength))
            vel = el.volume.velocity if el.volume is not None and el.volume.velocity else 80
            pitches = el.pitches if isinstance(el, chord.Chord) else [el.pitch] if isinstance(el, note.Note) else []
            for p in pitches:
                if 0 <= p.midi <= 127:
                    notes.append(Note(start, int(p.midi), dur, int(vel)))
        notes = sorted(set(notes))
        channel = i if i < 9 else i + 1
        tracks.append(Track(name=(names[0] or f"Part {i + 1}").strip() or f"Part {i + 1}",
                            program=int(program) % 128, channel=min(channel, 15), notes=notes))
    md_title = title
    if md_title is None and score.metadata is not None:
        md_title = score.metadata.title
    song = Song(title=md_title or rel, tracks=[t for t in tracks if t.notes],
                tempos=tempos or [TempoChange(0, 100.0)],
                time_signatures=time_sigs or [TimeSignature(0, 4, 4)],
                key_signatures=keys or [KeySignature(0, 0, False)])
    return song.normalize()


# ---- parsing one file (runs in a worker process) -----------------------------------------
class _Timeout(Exception):
    pass


def _alarm(_sig, _frame):
    raise _Timeout()


@contextlib.contextmanager
def _time_limit(seconds: int):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _split_abc(text: str) -> list[str]:
    """An ABC collection as one text per tune, each with the file's header lines."""
    chunks = re.split(r"(?m)^(?=X:)", text)
    header = chunks[0] if chunks and not chunks[0].startswith("X:") else ""
    tunes = [c for c in chunks if c.startswith("X:")]
    return [header + t for t in tunes] if tunes else [text]


def _scores_of(obj):
    from music21 import stream

    if isinstance(obj, stream.Opus):
        return list(obj.scores)
    return [obj]


def parse_file(rel: str) -> dict:
    """Parse one corpus file into ``{"source", "pieces": [{"id", "song"}], "errors"}``."""
    from music21 import converter

    path = corpus_root() / rel
    pieces, errors = [], []
    try:
        if path.suffix.lower() == ".abc":
            tunes = _split_abc(path.read_text(encoding="utf-8", errors="replace"))
            multi = len(tunes) > 1
            for n, text in enumerate(tunes, 1):
                pid = f"{rel}#{n}" if multi else rel
                try:
                    with _time_limit(TUNE_TIME_LIMIT):
                        for k, sc in enumerate(_scores_of(converter.parseData(text, format="abc"))):
                            song = song_from_music21(sc, rel)
                            if song.note_count:
                                pieces.append({"id": pid if k == 0 else f"{pid}.{k}", "song": song_to_json(song)})
                except _Timeout:
                    errors.append(f"{pid}: time limit")
                except Exception as exc:  # music21 cannot read this tune: skip it
                    errors.append(f"{pid}: {type(exc).__name__}: {str(exc)[:120]}")
        else:
            with _time_limit(FILE_TIME_LIMIT):
                scores = _scores_of(converter.parse(str(path), forceSource=True))
                for n, sc in enumerate(scores, 1):
                    song = song_from_music21(sc, rel)
                    if song.note_count:
                        pid = f"{rel}#{n}" if len(scores) > 1 else rel
                        pieces.append({"id": pid, "song": song_to_json(song)})
    except _Timeout:
        errors.append(f"{rel}: time limit")
    except Exception as exc:
        errors.append(f"{rel}: {type(exc).__name__}: {str(exc)[:120]}")
    return {"version": CACHE_VERSION, "source": rel, "pieces": pieces, "errors": errors}


def _parse_and_store(rel: str) -> tuple[str, int, int]:
    with contextlib.suppress(Exception):
        os.nice(5)
    result = parse_file(rel)
    out = _cache_file(rel)
    tmp = out.with_suffix(f".{os.getpid()}.part")
    with gzip.open(tmp, "wt", encoding="utf-8") as fh:
        json.dump(result, fh, separators=(",", ":"))
    os.replace(tmp, out)
    return rel, len(result["pieces"]), len(result["errors"])


# ---- building and loading the cache ------------------------------------------------------
def _missing(rels: list[str]) -> list[str]:
    return [r for r in rels if not _cache_file(r).exists()]


def _report(progress, fraction: float) -> None:
    if progress is not None and progress(max(0.0, min(1.0, fraction))) is False:
        raise Cancelled()


def build_cache(processes: int = 2, progress=None, log=None) -> dict:
    """Parse every corpus file not yet cached (at most ``processes`` workers); return a summary.

    Only one process builds at a time (a lock file); another caller waits for it.
    """
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    rels = source_files()
    with open(folder / "build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # someone else is building: wait, reporting what is done
            while True:
                _report(progress, 1 - len(_missing(rels)) / max(1, len(rels)))
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    time.sleep(2.0)
        todo = _missing(rels)
        done = len(rels) - len(todo)
        t0 = time.time()
        n_pieces = n_errors = 0
        if todo:
            import multiprocessing as mp

            # on a terminal a progress bar; otherwise (no caller watching) a line every 5 %
            bar = _console_bar(len(rels), done) if progress is None and log is None else None
            step = max(1, len(todo) // 20)
            ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            with ctx.Pool(max(1, processes), maxtasksperchild=25) as pool:
                for k, (rel, np_, ne) in enumerate(pool.imap_unordered(_parse_and_store, todo), 1):
                    done += 1
                    n_pieces += np_
                    n_errors += ne
                    if log:
                        log(f"[{done}/{len(rels)}] {rel}: {np_} pieces, {ne} skipped ({time.time() - t0:.0f}s)")
                    elif bar is not None:
                        bar.update(1)
                    elif progress is None and (k % step == 0 or k == len(todo)):
                        print(f"corpus cache: {done}/{len(rels)} files parsed ({time.time() - t0:.0f} s)",
                              file=sys.stderr, flush=True)
                    _report(progress, done / len(rels))
            if bar is not None:
                bar.close()
        return {"files": len(rels), "parsed_now": len(todo), "pieces_now": n_pieces, "errors_now": n_errors}


def _console_bar(total: int, done: int):
    """A tqdm bar with the time left when stderr is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    import shutil

    from tqdm import tqdm

    return tqdm(total=total, initial=done, unit="file", desc="corpus cache", file=sys.stderr,
                ncols=shutil.get_terminal_size().columns)


def load_corpus(split: str = "train", max_pieces: int | None = None, progress=None,
                build: bool = True) -> list[CorpusPiece]:
    """Pieces of one split (``"train"``, ``"valid"``, ``"test"`` or ``"all"``), in a fixed order.

    Parses and caches missing files first unless ``build`` is False (then only what is
    cached is returned).  ``progress(fraction)`` returning False cancels (raises Cancelled).
    With ``max_pieces``, stops once that many pieces are loaded.
    """
    if split not in SPLITS + ("all",):
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS + ('all',)}")
    rels = source_files()
    if build and _missing(rels):
        if max_pieces is None or _count_cached(rels, split) < max_pieces:
            build_cache(progress=(lambda f: progress(0.9 * f)) if progress else None)
    out: list[CorpusPiece] = []
    for i, rel in enumerate(rels):
        f = _cache_file(rel)
        if not f.exists():
            continue
        data = _read(f)
        if data is None:
            continue
        for p in data["pieces"]:
            s = split_of(p["id"])
            if split in ("all", s):
                out.append(CorpusPiece(p["id"], song_from_json(p["song"]), s))
                if max_pieces is not None and len(out) >= max_pieces:
                    return out
        if i % 50 == 0:
            _report(progress, 0.9 + 0.1 * i / len(rels) if build else i / len(rels))
    _report(progress, 1.0)
    return out


def _read(f: Path) -> dict | None:
    try:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError, EOFError):
        return None
    return data if data.get("version") == CACHE_VERSION else None


def cached_pieces(split: str = "train") -> int:
    """How many pieces of ``split`` the cache holds now (nothing is parsed)."""
    return _count_cached(source_files(), split)


def _count_cached(rels: list[str], split: str) -> int:
    n = 0
    for rel in rels:
        f = _cache_file(rel)
        if f.exists() and (d := _read(f)) is not None:
            n += sum(1 for p in d["pieces"] if split in ("all", split_of(p["id"])))
    return n


def stats() -> dict:
    """Pieces and notes per split in the cache, and the files that could not be read."""
    rels = source_files()
    out = {s: {"pieces": 0, "notes": 0} for s in SPLITS}
    skipped, missing = 0, 0
    for rel in rels:
        f = _cache_file(rel)
        d = _read(f) if f.exists() else None
        if d is None:
            missing += 1
            continue
        skipped += len(d["errors"])
        for p in d["pieces"]:
            s = out[split_of(p["id"])]
            s["pieces"] += 1
            s["notes"] += sum(len(t["notes"]) // 4 for t in p["song"]["tracks"])
    return {"files": len(rels), "files_not_cached": missing, "skipped": skipped, **out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studio.ml.corpus", description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="store_true", help="parse and cache every missing file")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--stats", action="store_true", help="print pieces/notes per split")
    a = ap.parse_args(argv)
    if a.build:
        print(json.dumps(build_cache(a.processes, log=lambda s: print(s, flush=True))), flush=True)
    if a.stats or not a.build:
        print(json.dumps(stats(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
