"""Spelling a MIDI pitch in a key: which letter and accidental a score should print.

Notes of the key's scale take the scale's letters (E# in F# major, C♭ in G♭ major). Notes
outside it are spelled as tonal music spells them, whichever way the line moves:

* major: ♯1, ♭3, ♯4, ♯5, ♭7 — in C: C♯, E♭, F♯, G♯, B♭ (B♭–A, not A♯–A);
* minor: ♭2, raised 3, ♯4, raised 6 and 7 — in A minor: B♭, C♯, D♯, F♯, G♯.

Pure Python; the MusicXML writer and the piano roll's note names use it.
"""

from __future__ import annotations

import functools

LETTERS = "CDEFGAB"
LETTER_PC = (0, 2, 4, 5, 7, 9, 11)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# semitones above the tonic -> (scale degree 0-6 whose letter it takes)
CHROMATIC_MAJOR = {1: 0, 3: 2, 6: 3, 8: 4, 10: 6}
CHROMATIC_MINOR = {1: 1, 4: 2, 6: 3, 9: 5, 11: 6}


@functools.lru_cache(maxsize=8192)
def spell(midi: int, tonic: str, minor: bool) -> tuple[str, int, int]:
    """``(letter, alter, octave)`` of ``midi`` in the key whose tonic is named ``tonic`` ("F#", "Bb", "E-").

    ``alter`` is -2..2 semitones; the octave is the written one (B♯3 sounds as C4)."""
    letter = tonic[0].upper()
    acc = tonic[1:].replace("-", "b")
    tonic_pc = (LETTER_PC[LETTERS.index(letter)] + acc.count("#") - acc.count("b")) % 12
    d = (midi - tonic_pc) % 12
    scale = MINOR if minor else MAJOR
    degree = scale.index(d) if d in scale else (CHROMATIC_MINOR if minor else CHROMATIC_MAJOR)[d]
    step = LETTERS[(LETTERS.index(letter) + degree) % 7]
    alter = (midi - LETTER_PC[LETTERS.index(step)] + 6) % 12 - 6
    return step, alter, (midi - alter) // 12 - 1


def name(midi: int, tonic: str = "C", minor: bool = False) -> str:
    """``"B♭4"``, ``"C♯5"``, ``"E𝄪3"``-style names for labels."""
    step, alter, octave = spell(midi, tonic, minor)
    return f"{step}{ {-2: '𝄫', -1: '♭', 0: '', 1: '♯', 2: '𝄪'}[alter]}{octave}".replace(" ", "")
