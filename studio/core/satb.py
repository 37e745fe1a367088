"""Four-part (SATB) writing rules shared by the models and the editor: the voices' names and
ranges, which tracks of a song are which voice, and which track is the melody or the bass.

Pure Python (no Qt, no numpy): the GUI's checker and the harmonizer use the same rules.
"""

from __future__ import annotations

from .song import Song

VOICES = ("soprano", "alto", "tenor", "bass")  # keys, in score order
VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")  # track names
SATB_RANGE = {"soprano": (60, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (36, 64)}  # MIDI, inclusive
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
