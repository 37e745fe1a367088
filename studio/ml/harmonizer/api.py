"""Harmonize a Song in-process: the function the command line and the GUI worker call.

``harmonize(song, ...)`` writes alto, tenor and bass under a melody (or alto and tenor
between a kept soprano and bass); ``regenerate(song, voices, start, end, ...)`` redraws one
voice or one span of a four-voice song with everything else kept. Both return a new Song
with tracks Soprano, Alto, Tenor, Bass; kept voices are copied note for note.

The melody is put on the model's 16th grid (notes off the grid are quantized, with a
warning) and kept at its written pitch as the voice whose range it lies in
(``satb.place_melody``: the soprano, or the tenor or bass of a low melody, the other voices
written around it, each in its own range; a melody an octave or more beyond every voice is an
error); the model sees it transposed to that voice's usual range (by less than an octave) and
the result is moved back. Pieces longer than the model's window are covered by overlapping
windows.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ...core.errors import Cancelled, StudioError, StudioWarning
from ...core import satb
from ...core.satb import VOICE_NAMES
from ...core.song import Note, Song, Track
from ...core.timing import bars
from . import data as ch
from . import sample

CHOIR_PROGRAM = 52  # General MIDI "Choir Aahs"
MAX_STEPS = 8192  # 512 bars of 4/4 in 16ths: longer than this is not a melody we harmonize
DEFAULTS = {"temperature": 1.0, "candidates": 4, "steps": 8, "final_temperature": 0.7, "repair": 8, "proposals": 8,
            "rerank_weight": 6.0, "texture_weight": 1.0, "leap_weight": 4.0, "parallel_weight": 16.0}
SOPRANO_TARGET = satb.TESSITURA["soprano"]  # where the model likes the soprano

_models: dict = {}
_lock = threading.Lock()


def load_model(device: str = "auto", folder: str | Path | None = None):
    """The harmonizer on ``device``, loaded once per process."""
    import torch

    from .. import checkpoint
    from .model import build

    dev = checkpoint.pick_device(device)
    folder = Path(folder) if folder else checkpoint.model_dir("harmonizer")
    key = (str(folder.resolve()), str(dev))
    with _lock:
        if key not in _models:
            model, meta = checkpoint.load(folder, build, dev)
            for p in model.parameters():
                p.requires_grad_(False)
            _models[key] = model
        return _models[key], torch.device(dev)


# ---- song -> grid -------------------------------------------------------------------------


def _step(song: Song) -> int:
    if song.ppq % 4:
        raise StudioError(f"a resolution of {song.ppq} ticks per quarter has no exact 16th grid")
    return song.ppq // 4


def meter_arrays(song: Song, first: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``pos, bar, beat`` (in 16ths) for grid steps ``first .. first + count``."""
    step = _step(song)
    pos = np.zeros(count, dtype=np.int64)
    blen = np.zeros(count, dtype=np.int64)
    beat = np.zeros(count, dtype=np.int64)
    bs = bars(song, until=(first + count) * step)
    bi = 0
    for i in range(count):
        tick = (first + i) * step
        while bi + 1 < len(bs) and bs[bi + 1].start <= tick:
            bi += 1
        b = bs[bi]
        length = b.length if tick < b.end else b.meter.bar_ticks(song.ppq)
        start = b.start if tick < b.end else b.end + ((tick - b.end) // length) * length
        ts = b.meter
        bt = ts.beat_ticks(song.ppq)
        if ts.denominator == 8 and ts.numerator in (6, 9, 12):
            bt *= 3  # compound meter: the beat is a dotted quarter
        pos[i] = (tick - start) // step
        blen[i] = max(1, length // step)
        beat[i] = max(1, bt // step)
    return pos, blen, beat


def _quantize(notes: Sequence[Note], step: int, what: str, warn) -> list[tuple[int, int, int]]:
    """``(start_step, end_step, pitch)`` of a monophonic line; chords are an error."""
    off = sum(1 for n in notes if n.start % step or n.duration % step)
    if off:
        warn(f"{off} {what} note(s) off the 16th-note grid were quantized for the model")
    out = []
    for n in sorted(notes, key=lambda n: (n.start, n.pitch)):
        a = int(round(n.start / step))
        b = max(a + 1, int(round((n.start + n.duration) / step)))
        if out and a <= out[-1][0]:
            raise StudioError(f"the {what} has several notes at once (a chord at tick {n.start}); it must be a single line")
        if out and out[-1][1] > a:
            if out[-1][1] - a > 1:
                raise StudioError(f"the {what} has overlapping notes at tick {n.start}; it must be a single line")
            out[-1] = (out[-1][0], a, out[-1][2])
        out.append((a, b, int(n.pitch)))
    return out


def _line_tokens(line, first: int, count: int, shift: int) -> np.ndarray:
    row = np.zeros(count, dtype=np.int64)
    for a, b, p in line:
        q = p + shift
        if not ch.LOW <= q <= ch.HIGH:
            raise StudioError("the melody's range is too wide to harmonize (more than four octaves)")
        row[a - first] = ch.encode(q, True)
        row[a - first + 1 : b - first] = ch.encode(q, False)
    return row


def choose_shift(pitches: Sequence[int], target: tuple[int, int] = SOPRANO_TARGET) -> int:
    """Semitones to move a melody so it sits in the soprano's range (0 when it already does)."""
    return satb.fit_shift(pitches, target)


def tokens_to_notes(row: np.ndarray, first: int, step: int, shift: int, velocity: int = 80) -> list[Note]:
    out: list[list[int]] = []
    prev = None
    for i, tok in enumerate(np.asarray(row)):
        pitch, onset = ch.decode(int(tok))
        if pitch is None:
            prev = None
            continue
        if onset or prev != pitch:
            out.append([first + i, pitch, 1])
        else:
            out[-1][2] += 1
        prev = pitch
    return [Note(a * step, p - shift, d * step, velocity) for a, p, d in out]


# ---- the model on grids -----------------------------------------------------------------


def sampling_params(temperature=None, candidates=None, steps=None) -> dict:
    """The sampler's settings: ``DEFAULTS`` with the caller's choices on top."""
    p = dict(DEFAULTS)
    if temperature is not None:
        p["temperature"] = float(temperature)
        p["final_temperature"] = min(p["final_temperature"], float(temperature))
    if candidates is not None:
        p["candidates"] = int(candidates)
    if steps is not None:
        p["steps"] = int(steps)
    return p


def _default_warn(msg: str) -> None:
    warnings.warn(StudioWarning(msg), stacklevel=3)


def pick_melody_track(song: Song, melody_track: int | None) -> int:
    if melody_track is not None:
        if not 0 <= melody_track < len(song.tracks):
            raise StudioError(f"there is no track {melody_track + 1} (the song has {len(song.tracks)} track(s))")
        if not song.tracks[melody_track].notes:
            raise StudioError(f"track {melody_track + 1} ({song.tracks[melody_track].name}) has no notes")
        return melody_track
    m = satb.melody_track(song)
    if m is None:
        raise StudioError("the song has no notes to harmonize")
    return m


def _pick_bass(song: Song, melody: int) -> int:
    b = satb.bass_track(song, melody)
    if b is None:
        raise StudioError("keeping the bass needs a second track holding a bass line")
    return b


def _output_song(song: Song, parts: list[list[Note]]) -> Song:
    out = Song(title=song.title, ppq=song.ppq, tempos=list(song.tempos), time_signatures=list(song.time_signatures),
               key_signatures=list(song.key_signatures), meta=dict(song.meta), fermatas=song.fermatas,
               pickup=song.pickup, composer=song.composer)
    for v, (name, notes) in enumerate(zip(VOICE_NAMES, parts)):
        out.tracks.append(Track(name=name, program=CHOIR_PROGRAM, channel=v, notes=sorted(notes)))
    return out


def _check_progress(progress):
    if progress is not None and progress(0.0) is False:
        raise Cancelled("harmonizing cancelled")


def harmonize(song: Song, melody_track: int | None = None, keep: Sequence[str] = ("soprano",),
              temperature: float | None = None, candidates: int | None = None, seed: int | None = None,
              device: str = "auto", progress: Callable[[float], bool] | None = None,
              steps: int | None = None, warn: Callable[[str], None] | None = None,
              weights: str | Path | None = None) -> Song:
    """A new Song: the melody (unchanged) with three newly written voices, tracks Soprano, Alto,
    Tenor, Bass. The melody is the Soprano, or, when it lies lower (``satb.place_melody``), the
    Tenor or the Bass, the other voices written around it; ``warn`` then says so.

    ``melody_track`` is 0-based (None: the track named Soprano/Melody, else the highest one).
    ``keep`` is ``("soprano",)`` (the melody) or ``("soprano", "bass")``; a kept bass comes from the
    track named Bass, else the lowest other track. ``progress(fraction) -> bool``: False cancels.
    """
    warn = warn or _default_warn
    keep = tuple(k.strip().lower() for k in keep)
    bad = [k for k in keep if k not in ("soprano", "bass")]
    if bad or "soprano" not in keep:
        raise StudioError(f"the voices to keep are the soprano, or the soprano and the bass (got {', '.join(keep)})")
    _check_progress(progress)
    step = _step(song)
    mi = pick_melody_track(song, melody_track)
    melody = song.tracks[mi].notes
    line = _quantize(melody, step, "melody", warn)
    place = satb.place_melody([p for _, _, p in line])
    mv = place.voice
    if mv == 3 and "bass" in keep:
        raise StudioError(f"{place.note.split(';')[0]}: no other bass can be kept under it")
    if place.note:
        warn(place.note)
    lines = {mv: line}
    kept_notes = {mv: list(melody)}
    if "bass" in keep:
        bi = _pick_bass(song, mi)
        lines[3] = _quantize(song.tracks[bi].notes, step, "bass", warn)
        kept_notes[3] = list(song.tracks[bi].notes)
    first = min(l[0][0] for l in lines.values())
    end = max(l[-1][1] for l in lines.values())
    # the grid starts on a quarter note of the bar (the network reads it a beat at a time) and
    # ends on one: silent steps before a pickup and after the last note, known in every voice
    first = max(0, first - int(meter_arrays(song, first, 1)[0][0] % 4))
    count = end - first
    count += -count % 4
    if count > MAX_STEPS:
        raise StudioError(f"the melody is {count // 16} bars of 4/4 long; the harmonizer takes at most {MAX_STEPS // 16}")
    shift = place.shift
    tokens = np.zeros((4, count), dtype=np.int64)
    given = np.zeros((4, count), dtype=bool)
    for v, l in lines.items():
        tokens[v] = _line_tokens(l, first, count, shift)
        given[v] = True
    given[:, : min(a for a, _, _ in line) - first] = True
    given[:, max(b for _, b, _ in line) - first:] = True
    pos, blen, beat = meter_arrays(song, first, count)
    marks = phrase_marks(song, line, first, count, step)
    voiced = tokens[mv] != ch.REST
    if 3 not in lines:
        phrase_cadences(song, line, first, shift, tokens, given, step)
        final_cadence(line, first, shift, tokens, given)
    return _run(song, tokens, given, pos, blen, beat, first, step, shift, kept_notes, temperature, candidates,
                seed, device, progress, steps, weights, marks, voiced)


def phrase_marks(song: Song, line, first: int, count: int, step: int) -> np.ndarray:
    """The network's fermata classes per grid step (``data.fermata_classes``). A song with fermatas
    says where its phrases end, as the chorales the network learned from did: a fermata over each
    melody note at (or sounding at) a fermata's tick, no fermata elsewhere, the last note marked as
    the end. Without any, phrase ends are guessed from rests and the last note (``data.phrase_marks``)."""
    if not song.fermatas:
        return ch.phrase_marks(line, first, count)
    marks = np.full(count, ch.FERMATA_NO, dtype=np.int64)
    spans = [(a, b) for a, b, _p in line]
    for tick in song.fermatas:
        at = int(round(tick / step))
        span = next(((a, b) for a, b in spans if a <= at < b), None)
        if span is not None:
            marks[span[0] - first:span[1] - first] = ch.FERMATA_YES
    if line:
        a, b, _p = line[-1]
        marks[a - first:b - first] = ch.FERMATA_LAST
    return marks


def phrase_cadences(song: Song, line, first: int, shift: int, tokens: np.ndarray, given: np.ndarray,
                    step: int) -> int:
    """The final cadence's V - I bass (``final_cadence``) also at each fermata before the last note,
    where that phrase's melody (the notes since the previous fermata, in their own key) ends as an
    authentic cadence. Returns how many were written."""
    ends = sorted({k for tick in song.fermatas for k, (a, b, _p) in enumerate(line)
                   if a <= int(round(tick / step)) < b and k < len(line) - 1})
    done, start = 0, 0
    for k in ends:
        done += final_cadence(line[start:k + 1], first, shift, tokens, given)
        start = k + 1
    return done


def final_cadence(line, first: int, shift: int, tokens: np.ndarray, given: np.ndarray) -> bool:
    """Write a V - I bass under the melody's last two notes when the melody asks for an authentic
    cadence: it ends on a note of its key's tonic chord after a note of the dominant seventh chord
    (its key by Krumhansl-Schmuckler). The bass lies below the melody (a tenor's too); its cells
    become given and the network writes the other voices around them. Returns whether it did."""
    from .figures import key_of

    if len(line) < 2 or line[-1][0] != line[-2][1]:
        return False
    tonic, minor = key_of([p for _, _, p in line], [b - a for a, b, _ in line])
    last, prev = (line[-1][2] - tonic) % 12, (line[-2][2] - tonic) % 12
    if last not in (0, 3 if minor else 4, 7) or prev not in (7, 11, 2, 5):
        return False
    t = (tonic + shift) % 12  # the tonic in the grid's key
    bass_i = next(p for p in range(43 + shift, 55 + shift) if p % 12 == t)
    bass_v = bass_i + 7 if bass_i + 7 <= 55 + shift else bass_i - 5
    lo = satb.SATB_RANGE["bass"][0] + shift
    while bass_i >= line[-1][2] + shift or bass_v >= line[-2][2] + shift:  # under a low melody
        bass_i, bass_v = bass_i - 12, bass_v - 12
    for (a, b, _), pitch in ((line[-1], bass_i), (line[-2], bass_v)):
        if not max(ch.LOW, lo) <= pitch <= ch.HIGH:
            return False
    for (a, b, _), pitch in ((line[-1], bass_i), (line[-2], bass_v)):
        tokens[3, a - first] = ch.encode(pitch, True)
        tokens[3, a - first + 1:b - first] = ch.encode(pitch, False)
        given[3, a - first:b - first] = True
    return True


def _run(song, tokens, given, pos, blen, beat, first, step, shift, kept_notes, temperature, candidates, seed,
         device, progress, steps, weights, marks=None, voiced=None) -> Song:
    from .data import metric_classes

    metric = metric_classes(pos, blen, beat)
    beats = np.nonzero(pos % beat == 0)[0]
    grid = fill_grid(tokens, given, metric, beats, shift, sampling_params(temperature, candidates, steps),
                     seed, progress, device, weights, marks=marks, voiced=voiced, quarters=np.nonzero(pos % 4 == 0)[0])
    parts = []
    for v in range(4):
        if v in kept_notes:
            parts.append(kept_notes[v])
        else:
            notes = tokens_to_notes(grid[v], first, step, shift)
            if any(not 0 <= n.pitch <= 127 for n in notes):
                raise StudioError("the melody is too far outside a soprano's range to harmonize: the other voices "
                                  "would fall outside MIDI's pitches (0-127); transpose it towards C4-G5")
            parts.append(notes)
    return _output_song(song, parts)


def warm_up(device: str = "auto") -> None:
    """Load the network the next request will use (the model worker calls this while idle)."""
    load_net(device)


def uses_onnx(device: str = "auto") -> bool:
    """Whether harmonizing runs on ONNX Runtime + numpy (the CPU, without importing torch)."""
    if device not in ("auto", "cpu"):
        return False
    from . import ort

    if not ort.available():
        return False
    return device == "cpu" or not ort.gpu_present()


def load_net(device: str = "auto", weights: str | Path | None = None) -> "sample.Net":
    """The network the sampler runs on for ``device``: the ONNX Runtime graph on the CPU, else (or
    when no graph can be made) the torch module on its device. Loaded once per process."""
    if uses_onnx(device):
        from . import ort

        try:
            return ort.load_net(weights)
        except Exception as exc:  # no graph could be made: the torch path still works
            import logging

            logging.getLogger(__name__).warning("ONNX Runtime harmonizer unavailable (%s); using torch", exc)
    from .model import TorchNet

    model, dev = load_model(device, weights)
    return TorchNet(model, dev)


def fill_grid(tokens, given, metric, beats, shift, params: dict, seed, progress, device, weights,
              marks=None, voiced=None, quarters=None) -> np.ndarray:
    """Fill the free cells of a [4, T] grid with the sampler ``params`` on the best network for ``device``
    (``marks``: the network's fermata classes per step, see ``data.phrase_marks``; ``voiced``: steps
    where the free voices must sound)."""
    p = dict(params)
    p["repair_rounds"] = p.pop("repair", 0)
    return sample.harmonize_grid(load_net(device, weights), tokens, given, metric, None, **p, seed=seed,
                                 beats=beats, progress=progress, shift=shift, marks=marks, voiced=voiced,
                                 quarters=quarters)


def voice_tracks(song: Song) -> list[int]:
    """Indices of the soprano, alto, tenor and bass tracks of a four-voice song (``satb.satb_tracks``)."""
    idx = satb.satb_tracks(song)
    if idx is None:
        n = len(satb.pitched_tracks(song))
        raise StudioError(f"regenerating needs four voices (tracks Soprano, Alto, Tenor, Bass); the song has {n} "
                          "non-empty track(s)")
    return idx


def regenerate(song: Song, voices: Sequence[int | str] | int | str, start: int | None = None, end: int | None = None,
               temperature: float | None = None, candidates: int | None = None, seed: int | None = None,
               device: str = "auto", progress: Callable[[float], bool] | None = None, steps: int | None = None,
               warn: Callable[[str], None] | None = None, weights: str | Path | None = None) -> Song:
    """Redraw ``voices`` (0-3 or names) between ticks ``start`` and ``end``; everything else is kept.

    Returns a new four-track Song (Soprano, Alto, Tenor, Bass). Notes outside the span are
    copied unchanged; a note crossing the span's edge is cut there.
    """
    warn = warn or _default_warn
    _check_progress(progress)
    if isinstance(voices, (int, str)):
        voices = [voices]
    vs = set()
    for v in voices:
        if isinstance(v, str):
            if satb.voice_index(v) is None:
                raise StudioError(f"unknown voice {v!r} (soprano, alto, tenor or bass)")
            vs.add(satb.voice_index(v))
        elif 0 <= int(v) < 4:
            vs.add(int(v))
        else:
            raise StudioError(f"voice {v} is not 0-3")
    if not vs:
        raise StudioError("no voice to regenerate")
    step = _step(song)
    idx = voice_tracks(song)
    originals = [list(song.tracks[i].notes) for i in idx]
    lines = [_quantize(n, step, VOICE_NAMES[v].lower(), warn) for v, n in enumerate(originals)]
    first = min(l[0][0] for l in lines if l)
    last = max(l[-1][1] for l in lines if l)
    a = first if start is None else max(first, int(round(start / step)))
    b = last if end is None else min(last, int(round(end / step)))
    if b <= a:
        raise StudioError("the span to regenerate is empty")
    count = last - first
    if count > MAX_STEPS:
        raise StudioError(f"the song is too long to regenerate ({count // 16} bars of 4/4)")
    shift = choose_shift([p for _, _, p in lines[0]] or [70])
    tokens = np.stack([_line_tokens(l, first, count, shift) for l in lines])
    given = np.ones((4, count), dtype=bool)
    for v in vs:
        given[v, a - first : b - first] = False
    pos, blen, beat = meter_arrays(song, first, count)
    from .data import metric_classes

    metric = metric_classes(pos, blen, beat)
    marks = phrase_marks(song, lines[0], first, count, step) if song.fermatas and lines[0] else None
    grid = fill_grid(tokens, given, metric, np.nonzero(pos % beat == 0)[0], shift,
                     sampling_params(temperature, candidates, steps), seed, progress, device, weights, marks=marks)
    parts = []
    ta, tb = a * step, b * step
    for v in range(4):
        if v not in vs:
            parts.append(originals[v])
            continue
        keep = []
        for n in originals[v]:
            if n.end <= ta or n.start >= tb:
                keep.append(n)
            elif n.start < ta:
                keep.append(Note(n.start, n.pitch, ta - n.start, n.velocity))
            elif n.end > tb:
                keep.append(Note(tb, n.pitch, n.end - tb, n.velocity))
        new = tokens_to_notes(grid[v, a - first : b - first], a, step, shift)
        held = ch.decode(int(grid[v, a - first]))[1] is False
        parts.append(_merge_at(keep, new, ta) if held else sorted(keep + new))
    return _output_song(song, parts)


def _merge_at(kept: list[Note], new: list[Note], tick: int) -> list[Note]:
    """Join a kept note ending at ``tick`` with the new note of the same pitch the model held from it."""
    before = [n for n in kept if n.end == tick]
    if before and new and new[0].start == tick and new[0].pitch == before[0].pitch:
        n0 = before[0]
        kept = [n for n in kept if n is not n0]
        new = [Note(n0.start, n0.pitch, n0.duration + new[0].duration, n0.velocity)] + new[1:]
    return sorted(kept + new)
