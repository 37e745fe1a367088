"""Four-part (SATB) writing rules shared by the models and the editor: the voices' names and
ranges, which tracks of a song are which voice, and which track is the melody or the bass.

Pure Python (no Qt, no numpy): the GUI's checker and the harmonizer use the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import StudioError
from .key import PC_NAMES
from .song import Song

VOICES = ("soprano", "alto", "tenor", "bass")  # keys, in score order
VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")  # track names
SATB_RANGE = {"soprano": (60, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (36, 64)}  # MIDI, inclusive
# where each voice mostly sits in Bach's chorales (about the 2nd to 98th percentile of its notes)
TESSITURA = {"soprano": (62, 79), "alto": (57, 72), "tenor": (52, 67), "bass": (40, 60)}
MELODY_NAMES = ("soprano", "melody", "s.")
BASS_NAMES = ("bass", "b.")


def voice_index(name: str) -> int | None:
    """0-3 for a voice named soprano, alto, tenor or bass (any case), else None."""
    key = name.strip().lower()
    return VOICES.index(key) if key in VOICES else None


def pitched_tracks(song: Song) -> list[int]:
    """Tracks with notes that are not drums."""
    return [i for i, t in enumerate(song.tracks) if t.notes and not t.is_drum]


def mean_pitch(song: Song, i: int) -> float:
    notes = song.tracks[i].notes
    return sum(n.pitch for n in notes) / len(notes) if notes else 0.0


def satb_tracks(song: Song) -> list[int] | None:
    """Track indices of soprano, alto, tenor and bass, or None when the song is not four voices.

    The song must have exactly four pitched tracks with notes. Tracks named Soprano, Alto, Tenor
    or Bass take that voice; the others fill the remaining voices from the highest to the lowest
    average pitch (a "Melody" track over Alto, Tenor and Bass is the soprano).
    """
    cands = pitched_tracks(song)
    if len(cands) != 4:
        return None
    named: dict[int, int] = {}
    for i in cands:
        v = voice_index(song.tracks[i].name)
        if v is not None and v not in named:
            named[v] = i
    rest = sorted((i for i in cands if i not in named.values()), key=lambda i: -mean_pitch(song, i))
    return [named[v] if v in named else rest.pop(0) for v in range(4)]


def melody_track(song: Song, preferred: int | None = None) -> int | None:
    """The melody: ``preferred`` when it has notes; else a track named Soprano or Melody; else the
    highest pitched track with notes; None when no track has notes."""
    if preferred is not None and 0 <= preferred < len(song.tracks) and song.tracks[preferred].notes:
        return preferred
    cands = pitched_tracks(song)
    for i in cands:
        if song.tracks[i].name.strip().lower() in MELODY_NAMES:
            return i
    return max(cands, key=lambda i: mean_pitch(song, i)) if cands else None


def bass_track(song: Song, melody: int) -> int | None:
    """The track kept as the bass under ``melody``: one named Bass, else the lowest other pitched
    track with notes; None when there is none."""
    others = [i for i in pitched_tracks(song) if i != melody]
    for i in others:
        if song.tracks[i].name.strip().lower() in BASS_NAMES:
            return i
    return min(others, key=lambda i: mean_pitch(song, i)) if others else None


# ---- which voice a melody is -------------------------------------------------------------------

NEAR = 7  # semitones: a melody this close to a voice's tessitura is sung by that voice as written
FAR = 12  # a melody an octave or more from every voice's tessitura is not harmonized
TENOR_FIRST = 4  # a low melody this close to a tenor's tessitura is the tenor, even nearer a bass's


def pitch_name(midi: int) -> str:
    """``C4`` for MIDI 60."""
    return f"{PC_NAMES[midi % 12]}{midi // 12 - 1}"


def fit_shift(pitches: Sequence[int], target: tuple[int, int]) -> int:
    """Semitones that move ``pitches`` into ``target`` (lo, hi) with the fewest semitones left
    outside it, the smallest such move on ties (0 when they already fit)."""
    lo, hi = target
    best = None
    for s in range(-36, 37):
        out = sum(max(0, lo - (p + s)) + max(0, (p + s) - hi) for p in pitches)
        key = (out, abs(s))
        if best is None or key < best[0]:
            best = (key, s)
    return best[1]


@dataclass(frozen=True)
class Placement:
    """The voice a melody is harmonized as, at its written pitch."""

    voice: int  # 0 soprano, 2 tenor, 3 bass
    shift: int  # semitones from the melody to the voice's tessitura (what a model transposes by)
    low: int
    high: int

    @property
    def note(self) -> str:
        """What a user is told when the melody is not the soprano ("" when it is)."""
        if self.voice == 0:
            return ""
        name = VOICES[self.voice]
        return (f"the melody ({pitch_name(self.low)}–{pitch_name(self.high)}) lies in the {name} range; "
                f"harmonized with it as the {name}")


def place_melody(pitches: Sequence[int]) -> Placement:
    """The voice a single-line melody is harmonized as, keeping it at its written pitch.

    The soprano when the melody lies within ``NEAR`` semitones of a soprano's tessitura (or
    above it by less than an octave); a melody lower than that is the tenor (when it lies within
    ``TENOR_FIRST`` semitones of a tenor's tessitura), else the tenor or the bass, whichever's
    tessitura it lies nearer; a melody ``FAR`` from every voice is a
    ``StudioError`` in words (transposing it is the user's choice, not the model's).
    """
    ps = [int(p) for p in pitches]
    if not ps:
        raise StudioError("the melody has no notes")
    lo, hi = min(ps), max(ps)
    where = f"the melody ({pitch_name(lo)}–{pitch_name(hi)})"
    s = fit_shift(ps, TESSITURA["soprano"])
    if -FAR < s <= NEAR:
        return Placement(0, s, lo, hi)
    if s <= -FAR:
        raise StudioError(f"{where} lies above every voice's range (a soprano sings "
                          f"{pitch_name(SATB_RANGE['soprano'][0])}–{pitch_name(SATB_RANGE['soprano'][1])}); "
                          "transpose it down to harmonize it")
    t = fit_shift(ps, TESSITURA["tenor"])
    b = fit_shift(ps, TESSITURA["bass"])
    voice, shift = (2, t) if abs(t) <= min(abs(b), NEAR) or abs(t) <= TENOR_FIRST else (3, b)
    if abs(shift) <= NEAR:
        return Placement(voice, shift, lo, hi)
    if s < FAR:
        return Placement(0, s, lo, hi)
    raise StudioError(f"{where} lies below every voice's range (a bass sings "
                      f"{pitch_name(SATB_RANGE['bass'][0])}–{pitch_name(SATB_RANGE['bass'][1])}); "
                      "transpose it up to harmonize it")
