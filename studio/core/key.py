"""Key finding by Krumhansl-Schmuckler: correlate a pitch-class histogram with the
Krumhansl-Kessler major and minor profiles in all twelve transpositions.

Pure Python; the numpy users (the variation grid, the harmonizer's voice-leading grid) take
the profiles and the tie rule from here.
"""

from __future__ import annotations

from typing import Iterable, Sequence

MAJOR_PROFILE = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR_PROFILE = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def _corr(a: Sequence[float], b: Sequence[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5
    return num / den if den else 0.0


def estimate(histogram: Sequence[float]) -> tuple[int, bool]:
    """``(tonic pitch class, minor)`` for a 12-bin pitch-class histogram (any weights, e.g. note
    counts or durations). Ties go to the largest (correlation, tonic, minor); an empty histogram
    gives C major."""
    hist = [float(h) for h in histogram]
    if len(hist) != 12:
        raise ValueError("a pitch-class histogram has 12 bins")
    if not any(hist):
        return 0, False
    best = (-2.0, 0, False)
    for minor, prof in ((False, MAJOR_PROFILE), (True, MINOR_PROFILE)):
        for tonic in range(12):
            best = max(best, (_corr(hist, [prof[(i - tonic) % 12] for i in range(12)]), tonic, minor))
    return best[1], best[2]


def histogram(pitches: Iterable[int], weights: Iterable[float] | None = None) -> list[float]:
    """Pitch-class histogram of MIDI pitches (each weighted 1, or by ``weights``)."""
    hist = [0.0] * 12
    for p, w in zip(pitches, weights if weights is not None else iter(lambda: 1.0, None)):
        hist[int(p) % 12] += w
    return hist


def key_name(tonic: int, minor: bool) -> str:
    """``"F# minor"``-style name of a key."""
    return PC_NAMES[tonic % 12] + (" minor" if minor else " major")
