"""Joining tied pieces into notes, the one rule both MusicXML readers follow (music21's)."""

from __future__ import annotations

from ..core.song import Note


class TieJoiner:
    """Collects note pieces in reading order; a piece whose tie stops or continues lengthens the
    open note of the same pitch that ends where it starts (the same voice first, else any)."""

    def __init__(self) -> None:
        self._acc: list[list[int]] = []  # [start, pitch, duration, velocity]
        self._open: dict[int, list[tuple[int, str]]] = {}  # pitch -> (index in _acc, voice) a tie continues

    def add(self, start: int, midi: int, dur: int, vel: int, kind: str | None, vid: str) -> None:
        acc, waiting = self._acc, self._open.get(midi, [])
        fits = [w for w in waiting if abs(acc[w[0]][0] + acc[w[0]][2] - start) <= 1]
        found = next((w for w in fits if w[1] == vid), fits[0] if fits else None)
        if kind in ("stop", "continue") and found is not None:
            k = found[0]
            acc[k][2] = start + dur - acc[k][0]
            waiting.remove(found)
            if kind == "continue":
                waiting.append((k, vid))
            return
        acc.append([start, midi, dur, vel])
        if kind in ("start", "continue"):
            self._open.setdefault(midi, []).append((len(acc) - 1, vid))

    def notes(self) -> list[Note]:
        return sorted(Note(s, p, d, v) for s, p, d, v in self._acc)
