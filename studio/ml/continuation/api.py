"""Continue a song by N bars with the shipped continuation model (used by the CLI and the worker).

``continue_song`` returns one Song per take: the input with N new bars written into its
own tracks (the track slots of the token header), the prompt left exactly as it was.
By default the new bars start at the bar after the last note; with ``from_bar`` (1-based)
they start there, replacing notes that begin inside the N bars and keeping later ones.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ...core.errors import Cancelled, StudioError
from ...core.song import Song
from ...core.timing import bar_of, bars as song_bars

DEFAULT_TEMPERATURE = 0.8  # chosen on the valid split (see card.json)
DEFAULT_TOP_P = 0.9
DEFAULT_KEY_STRENGTH = 0.0  # the card's "sampling" entry overrides these three
MAX_BARS = 64
MAX_TAKES = 16
RANGE_MARGIN = 5  # new notes stay within the track's prompt range widened by this many semitones
DEFAULT_MEMORY = 0  # positions kept past the context; the card's "sampling" entry gives the model's
MAX_MEMORY = 4096
PROMPT_ROOM = 32  # with memory, the prompt fills the cache but for this many positions
DEFAULT_REGISTER = 0.5  # strength of each track's register prior (the card's "sampling" entry overrides)
DEFAULT_RHYTHM = 0.5  # strength of each track's rhythm prior (likewise)
DEFAULT_MOTION = 0.0  # strength of each line's motion prior (likewise)
SMOOTH_LINES = 0.5  # the motion prior's strength when a musician asks for smooth lines
DEFAULT_PITCH_SAMPLING = (1.2, 0.95)  # (temperature, top-p) of a track's first pitch at an onset
DEFAULT_ONSET_SAMPLING = None  # likewise for what comes after a note: a chord note, another track, an onset, a bar
DEFAULT_CHORDS = True  # chordal tracks' chord sizes drawn from the bars before (the card may override)
DEFAULT_HOLD = True  # each track's note rate held to the one of the bars before (the card may override)
CONTEXT_BARS = 8  # the bars before the new ones that the priors and the held density read

_lock = threading.Lock()
_loaded: dict = {}


def model_folder() -> Path:
    from .. import checkpoint

    return checkpoint.model_dir("continuation")


def load_model(device: str = "auto", folder: str | Path | None = None):
    """The model and its metadata, loaded once per process and device."""
    from .. import checkpoint
    from .model import build

    dev = checkpoint.pick_device(device)
    folder = Path(folder) if folder else model_folder()
    key = (str(folder), str(dev))
    with _lock:
        if key not in _loaded:
            _loaded[key] = checkpoint.load(folder, build, dev)
        return _loaded[key]


def key_bias(song: Song, before: int, strength: float, bars_back: int = 8) -> "np.ndarray | None":
    """Per pitch class, ``strength`` x log(share in the prompt / 1/12), from the pitched notes
    of the last ``bars_back`` bars before tick ``before`` (duration-weighted, smoothed)."""
    import numpy as np

    from .texture import window_histogram

    if strength <= 0:
        return None
    bl = [b for b in song_bars(song, until=before) if b.start < before]
    lo = bl[-bars_back].start if len(bl) >= bars_back else 0
    hist = window_histogram(song, lo, before)
    if hist.sum() <= 0:
        return None
    share = (hist / hist.sum() + 0.02) / 1.24  # smoothed: an unused pitch class keeps a little weight
    return (strength * np.log(share * 12)).astype(np.float32)


def warm_up(device: str = "auto") -> None:
    """Load the model, and on the CPU prepare the ONNX Runtime decoder, before the first request."""
    model, _meta = load_model(device)
    if next(model.parameters()).device.type == "cpu":
        from . import decode as continuation_ort

        if continuation_ort.available():
            try:
                continuation_ort.session(model, 1, "int8")  # continue_song decodes on one thread
            except Exception:  # sampling falls back to the torch step and says so
                pass


def _check(song: Song, bars: int, from_bar, temperature, top_p, takes) -> None:
    if not isinstance(bars, int) or not 1 <= bars <= MAX_BARS:
        raise StudioError(f"the number of bars to write must be a whole number from 1 to {MAX_BARS} (got {bars})")
    if not isinstance(takes, int) or not 1 <= takes <= MAX_TAKES:
        raise StudioError(f"the number of takes must be from 1 to {MAX_TAKES} (got {takes})")
    if temperature is not None and not 0.05 <= temperature <= 5.0:
        raise StudioError(f"the temperature must be between 0.05 and 5 (got {temperature})")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise StudioError(f"top-p must be above 0 and at most 1 (got {top_p})")
    if from_bar is not None and (not isinstance(from_bar, int) or from_bar < 1):
        raise StudioError(f"the bar to continue from counts from 1 (got {from_bar})")
    if not song.tracks or song.note_count == 0:
        raise StudioError("the song has no notes to continue")


def plan(song: Song, bars: int, from_bar: int | None):
    """(first new bar, 0-based; the new bars as timing.Bar objects)."""
    if from_bar is None:
        first = bar_of(song, max(0, song.end_tick - 1)) + 1
    else:
        first = from_bar - 1
    bl = song_bars(song, until=max(song.end_tick, 1))
    while len(bl) < first + bars:
        from ...core.timing import Bar

        last = bl[-1]
        meter = song.time_signature_at(last.end)
        bl.append(Bar(last.index + 1, last.end, meter.bar_ticks(song.ppq), meter))
    return first, bl[first: first + bars], bl[:first]


def density_factors(density, n_tracks: int) -> list[float]:
    """Per-track density factors from None (as before), one control for every track (a name of
    :data:`.texture.DENSITY` or a number) or one per track; a StudioError when one is not valid."""
    from .texture import density_factor

    if density is None or density == () or density == []:
        return [1.0] * n_tracks
    items = [density] * n_tracks if isinstance(density, (str, int, float)) else list(density)
    if len(items) > n_tracks:
        raise StudioError(f"the density is given for {len(items)} tracks; the song has {n_tracks}")
    try:
        out = [density_factor(d) for d in items]
    except ValueError as exc:
        raise StudioError(str(exc)) from None
    return out + [1.0] * (n_tracks - len(out))


def continue_song(song: Song, bars: int = 4, from_bar: int | None = None, temperature: float | None = None,
                  top_p: float | None = None, takes: int = 1, seed: int | None = None, device: str = "auto",
                  progress=None, folder: str | Path | None = None, use_cache: bool = True,
                  threads: int | None = 1, key_strength: float | None = None, density=None,
                  keep_range: bool = False, cadence: bool = False, texture: bool = True,
                  memory: int | None = None, distinct: bool = True, anchor: int = 0,
                  duration_sampling: tuple[float, float | None] | None = None,
                  hold_density: bool | None = None, register_strength: float | None = None,
                  rhythm_strength: float | None = None,
                  pitch_sampling: tuple[float, float | None] | None = None,
                  onset_sampling: tuple[float, float | None] | None = None,
                  chords: bool | None = None, motion_strength: float | None = None) -> list[Song]:
    """``takes`` continuations of ``song`` by ``bars`` bars; ``progress(fraction)`` False cancels.

    The new bars keep each track's texture (:mod:`.texture`: a line stays one line, drums
    stay drums, each track in its range; ``texture=False`` leaves only the token grammar).
    ``key_strength`` (0 = the model alone) leans new pitches toward the pitch classes of
    the bars before, by that many nats per unit of log-ratio (see :func:`key_bias`).
    ``density``: "sparser", "as before", "denser" (or a factor) for every track, or one per
    track. ``keep_range``: no note outside a track's range before. ``cadence``: the last new
    bar opens on the tonic chord, held. ``memory``: positions kept past the model's context
    (Transformer-XL; default: the card's, 0 = none); ``anchor``: prompt positions kept in it for
    good. ``duration_sampling``: (temperature, top-p) for the durations (default: the card's,
    else as the other tokens); ``pitch_sampling`` likewise for the first pitch of a track at an
    onset. ``hold_density``: each track's note rate held to the one of the
    last 8 bars before times its density factor, and (``chords``, default: as ``hold_density``)
    each chordal track's onsets given as many notes as its onsets there, drawn from their shares
    (default: on; the card's "sampling" entry may say otherwise). ``register_strength`` and
    ``rhythm_strength``: how strongly each track's new pitches and durations lean toward the ones
    it played in the last 8 bars (:func:`.texture.context_priors`; 0 = not at all; default: the
    card's); ``motion_strength`` likewise how strongly each line's intervals lean toward the ones
    it moved by there (:func:`.texture.motion_priors`; :data:`SMOOTH_LINES` for "smooth lines").
    With ``distinct``, a take
    that repeats an earlier one (90 % of its notes) is drawn again, up to three times.

    On the CPU, sampling uses ``threads`` torch threads (default 1: one token's work is too
    small to share between cores, and a busy machine makes shared steps much slower).
    """
    import numpy as np

    from . import texture as X
    from . import tokens as T
    from .model import sample

    _check(song, bars, from_bar, temperature, top_p, takes)
    for name, value in (("key strength", key_strength), ("register strength", register_strength),
                        ("rhythm strength", rhythm_strength), ("motion strength", motion_strength)):
        if value is not None and not 0.0 <= float(value) <= 10.0:
            raise StudioError(f"the {name} must be between 0 and 10 (got {value})")
    if memory is not None and not 0 <= int(memory) <= MAX_MEMORY:
        raise StudioError(f"the memory must be from 0 to {MAX_MEMORY} positions (got {memory})")
    n_tracks = min(T.MAX_TRACKS, len(song.tracks))
    factors = density_factors(density, n_tracks)
    if progress is not None and progress(0.0) is False:
        raise Cancelled()
    model, meta = load_model(device, folder)
    if next(model.parameters()).device.type != "cpu":
        threads = None
    defaults = meta.get("sampling", {})
    temperature = temperature if temperature is not None else defaults.get("temperature", DEFAULT_TEMPERATURE)
    top_p = top_p if top_p is not None else defaults.get("top_p", DEFAULT_TOP_P)
    memory = int(defaults.get("memory", DEFAULT_MEMORY) if memory is None else memory)
    if hold_density is None:
        hold_density = bool(defaults.get("hold_density", DEFAULT_HOLD))
    rhythm = duration_sampling
    if rhythm is None and "duration_temperature" in defaults:
        rhythm = (float(defaults["duration_temperature"]), defaults.get("duration_top_p"))
    melody = pitch_sampling
    if melody is None and "pitch_temperature" in defaults:
        melody = (float(defaults["pitch_temperature"]), defaults.get("pitch_top_p"))
    if melody is None and DEFAULT_PITCH_SAMPLING is not None:
        melody = DEFAULT_PITCH_SAMPLING
    onsets = onset_sampling
    if onsets is None and "onset_temperature" in defaults:
        onsets = (float(defaults["onset_temperature"]), defaults.get("onset_top_p"))
    if onsets is None and DEFAULT_ONSET_SAMPLING is not None:
        onsets = DEFAULT_ONSET_SAMPLING
    first, new_bars, old_bars = plan(song, bars, from_bar)
    unit = T.unit_ticks(song)

    # the prompt: everything before the first new bar, cut at a bar line to fit the context
    # (and the memory: then the whole of it is seen, the new bars sliding past its start)
    enc = T.encode(song, until_bar=first)
    ctx = model.cfg.ctx
    budget = max(enc.n_header + 4, ctx - min(ctx // 2, 48 * bars + 16))
    if memory and use_cache:
        budget = ctx + memory - PROMPT_ROOM
    prompt = enc.tokens
    if len(prompt) > budget and enc.bar_index:
        for k in range(1, len(enc.bar_index)):
            if enc.n_header + 3 + len(prompt) - enc.bar_index[k] <= budget:
                prompt = T.window(enc, k, budget)
                break
        else:
            prompt = T.window(enc, len(enc.bar_index) - 1, budget)

    # what the grammar needs: bar lengths, restated meta, each track's texture
    prev = enc.bar_meta[-1] if enc.bar_meta else None
    units, forced = [], []
    for b in new_bars:
        ts = T.meter_token(b.meter.numerator, b.meter.denominator, int(round(b.length / unit)))
        tempo = T.tempo_token(song.tempo_at(b.start).bpm)
        units.append(max(1, int(round(b.length / unit))))
        forced.append([ts, tempo] if prev is None or prev[0] != ts else [tempo] if prev[1] != tempo else [])
        prev = (ts, tempo)
    region_start, region_end = new_bars[0].start, new_bars[-1].end
    tex = X.describe_tracks(song, region_start, n_tracks, unit, 0 if keep_range else RANGE_MARGIN, texture)
    tex.density = factors
    since = old_bars[-CONTEXT_BARS].start if len(old_bars) >= CONTEXT_BARS else 0
    register_strength = float(defaults.get("register_strength", DEFAULT_REGISTER)
                              if register_strength is None else register_strength)
    rhythm_strength = float(defaults.get("rhythm_strength", DEFAULT_RHYTHM)
                            if rhythm_strength is None else rhythm_strength)
    if register_strength or rhythm_strength:
        pitch_prior, dur_prior = X.context_priors(song, since, region_start, n_tracks, unit)
        if register_strength:
            tex.pitch_prior = [None if p is None else register_strength * p for p in pitch_prior]
        if rhythm_strength:
            tex.dur_prior = [None if p is None else rhythm_strength * p for p in dur_prior]
    if hold_density:
        # each track's rate from the bar of its first note in the window (a voice that enters late
        # is measured from its entry); a track silent there is left to the model
        tex.rates, tex.gaps = [], []
        for tr in song.tracks[:n_tracks]:
            ns = [n for n in tr.notes if since <= n.start < region_start]
            entry = max((b.start for b in old_bars if b.start <= ns[0].start), default=since) if ns else since
            span = max(1.0, (region_start - entry) / unit)
            tex.rates.append(len(ns) / span if ns else None)
            tex.gaps.append(span / max(1, len({n.start for n in ns})))
    if texture:
        tex.tail, tex.doubled = X.voice_leading(song, since, region_start, n_tracks, unit, tex.lines)
        if motion_strength is None:
            motion_strength = defaults.get("motion_strength", DEFAULT_MOTION)
        motion_strength = float(motion_strength)
        if motion_strength:
            tex.motion = [None if q is None else motion_strength * q
                          for q in X.motion_priors(song, since, region_start, n_tracks, tex.lines)]
    if cadence:
        tex.cadence = X.cadence_plan(song, region_start, old_bars, n_tracks)
    key_strength = defaults.get("key_strength", DEFAULT_KEY_STRENGTH) if key_strength is None else float(key_strength)
    bias = key_bias(song, region_start, key_strength)

    if chords is None:
        chords = hold_density and bool(defaults.get("chords", DEFAULT_CHORDS))
    if chords and texture:
        tex.chords = X.chord_sizes(song, since, region_start, n_tracks)

    def draw(k: int, seed_, report):
        streams = np.random.SeedSequence(seed_).spawn(k)  # each take's chord sizes, from the seed
        grammars = [X.TextureGrammar(n_tracks, units, forced, tex, bias, rhythm, melody, onsets,
                                     seed=streams[i].generate_state(1)[0]) for i in range(k)]
        outs = sample(model, prompt, grammars, bars, temperature=temperature, top_p=top_p, seed=seed_,
                      max_tokens=max(256, 200 * bars * max(1, n_tracks)), n_header=enc.n_header,
                      progress=report, use_cache=use_cache, threads=threads, memory=memory if use_cache else 0,
                      anchor=anchor)
        starts = [b.start for b in new_bars]
        result = []
        for toks in outs:
            per_track = []
            for ti, notes in enumerate(T.decode_notes(toks, starts, unit, n_tracks)):
                notes = [n for n in notes if n.start < region_end]
                if tex.lines[ti]:
                    notes = X.cut_overlaps(notes, region_end)
                else:
                    notes = [type(n)(n.start, n.pitch, min(n.duration, region_end - n.start), n.velocity)
                             for n in notes]
                per_track.append(notes)
            result.append(per_track)
        return result

    takes_notes = draw(takes, seed, progress)
    if distinct and takes > 1:
        base = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        for rnd in range(1, 4):
            again = [i for i in range(takes) if any(X.same_take(takes_notes[i], takes_notes[j]) for j in range(i))]
            if not again:
                break
            report = None if progress is None else (lambda f: progress(0.99))
            for i, notes in zip(again, draw(len(again), base + 7919 * rnd, report)):
                takes_notes[i] = notes
    result = []
    for per_track in takes_notes:
        take = song.copy()
        # the rewritten bars' fermatas marked notes that are gone; fermatas after the region stay
        take.fermatas = tuple(t for t in take.fermatas if not region_start <= t < region_end)
        for ti, notes in enumerate(per_track):
            tr = take.tracks[ti]
            tr.notes = [n for n in tr.notes if not region_start <= n.start < region_end] + notes
            tr.sort()
        result.append(take)
    if progress is not None and progress(1.0) is False:
        raise Cancelled()
    return result


def tokens_per_second(use_cache: bool = True, device: str = "auto", backend: str = "auto",
                      n_tokens: int = 512, song: Song | None = None, threads: int | None = 1,
                      memory: int | None = None) -> float:
    """Batch-1 sampling speed of the shipped model (grammar, top-p and all), new tokens per
    second of wall time, after the last 128 tokens of ``song`` (default: a two-track phrase).
    ``threads`` defaults to 1, as ``continue_song`` decodes; ``memory`` to the card's; the best
    of two runs."""
    from . import tokens as T
    from .model import tokens_per_second as measure

    model, meta = load_model(device)
    if memory is None:
        memory = int(meta.get("sampling", {}).get("memory", DEFAULT_MEMORY)) if use_cache else 0
    if song is None:
        from ...core.song import Note, Track

        mel = [67, 69, 71, 72, 74, 72, 71, 69, 67, 71, 74, 79, 78, 76, 74, 72]
        song = Song(title="prompt", tracks=[Track("Violin", 40, 0, notes=[Note(i * 480, p, 480) for i, p in enumerate(mel)]),
                                            Track("Cello", 42, 1, notes=[Note(i * 960, 43 + i, 960) for i in range(8)])])
    prompt = T.encode(song).tokens[-128:]
    return max(measure(model, prompt, n_tokens, use_cache, threads, backend, len(song.tracks), memory)[0]
               for _ in range(2))
