"""Mouse gestures of the piano roll: draw, move, resize, rubber-band select, erase.

A gesture starts on a mouse press, shows a preview while the button is held (the song is not
touched), and on release pushes exactly one undo command. Ctrl (or Alt, where the window
manager leaves Alt-drag to the application) held while dragging bypasses the snap grid.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF

from ...core import edits
from ...core.song import Note
from .. import commands

DRAW, SELECT, ERASE = "draw", "select", "erase"


class Gesture:
    """Base: ``hidden`` notes are not drawn, ``preview`` notes are drawn instead."""

    hidden: frozenset = frozenset()
    preview: list = []
    band: QRectF | None = None
    free = False  # Ctrl (or Alt) was held when the drag began: no snapping

    def __init__(self, roll):
        self.roll = roll

    def move(self, tick: float, pitch: int, free: bool) -> None:
        pass

    def release(self) -> None:
        pass


class DrawGesture(Gesture):
    def __init__(self, roll, tick: float, pitch: int, free: bool):
        super().__init__(roll)
        g = roll.grid
        self.start = int(tick) if free else roll.snap.floor(tick)
        self.pitch = pitch
        # to the next grid line (for "Bar", the bar line); off the grid: a step, or a 16th with snapping off
        self.length = g if free and g > 1 else roll.snap.next(self.start) - self.start if g > 1 else roll.doc.song.ppq // 4
        self.velocity = roll.default_velocity
        self.preview = [Note(self.start, pitch, self.length, self.velocity)]

    def move(self, tick, pitch, free):
        g = 1 if free else self.roll.grid
        end = int(tick) if free else self.roll.snap.round(tick)
        first = self.roll.snap.next(self.start) - self.start  # the shortest note the grid draws
        self.length = max(first if g > 1 else 10, end - self.start)
        self.preview = [Note(self.start, self.pitch, self.length, self.velocity)]

    def release(self):
        doc = self.roll.doc
        commands.push_notes(doc, "Draw note", edits.insert(doc.current_track, self.preview))


class MoveGesture(Gesture):
    def __init__(self, roll, notes, anchor: Note, tick: float, pitch: int):
        super().__init__(roll)
        self.notes = list(notes)
        self.anchor = anchor
        self.t0, self.p0 = tick, pitch
        self.hidden = frozenset(self.notes)
        self.preview = list(self.notes)
        self.change = None

    def move(self, tick, pitch, free):
        target = self.anchor.start + (tick - self.t0)
        new_start = int(round(target)) if free else self.roll.snap.round(target)
        dt, dp = new_start - self.anchor.start, pitch - self.p0
        self.change = edits.move(self.roll.doc.current_track, self.notes, dt, dp)
        self.preview = list(self.change.added)

    def release(self):
        if self.change is not None:
            commands.push_notes(self.roll.doc, "Move notes", self.change)


class ResizeGesture(Gesture):
    def __init__(self, roll, notes, anchor: Note, tick: float):
        super().__init__(roll)
        self.notes = list(notes)
        self.anchor = anchor
        self.t0 = tick
        self.hidden = frozenset(self.notes)
        self.preview = list(self.notes)
        self.change = None

    def move(self, tick, pitch, free):
        snap = self.roll.snap
        target = self.anchor.end + (tick - self.t0)
        new_end = int(round(target)) if free else snap.round(target)
        if not free and new_end <= self.anchor.start:  # never shorter than the grid step it starts in
            new_end = snap.next(self.anchor.start)
        delta = new_end - self.anchor.end
        self.change = edits.resize(self.roll.doc.current_track, self.notes, delta,
                                   min_duration=10 if free else max(10, snap.step or new_end - self.anchor.start))
        self.preview = list(self.change.added)

    def release(self):
        if self.change is not None:
            commands.push_notes(self.roll.doc, "Resize notes", self.change)


class RubberBandGesture(Gesture):
    def __init__(self, roll, tick: float, pitch: int, additive: bool):
        super().__init__(roll)
        self.t0, self.p0 = tick, pitch
        self.base = set(roll.doc.selection) if additive else set()
        if not additive:
            roll.doc.clear_selection()
        self.band = QRectF()

    def move(self, tick, pitch, free):
        t0, t1 = sorted((self.t0, tick))
        p0, p1 = sorted((self.p0, pitch))
        self.band = QRectF(t0, p0, t1 - t0, p1 - p0)  # in (tick, pitch) units
        hit = {n for n in self.roll.doc.track.notes if n.start < t1 and n.end > t0 and p0 <= n.pitch <= p1}
        self.roll.doc.set_selection(self.base | hit)

    def release(self):
        self.band = None


class EraseGesture(Gesture):
    def __init__(self, roll, tick: float, pitch: int):
        super().__init__(roll)
        self.erased: list[Note] = []
        self.move(tick, pitch, False)

    def move(self, tick, pitch, free):
        n = self.roll.note_at_tick(tick, pitch)
        if n is not None and n not in self.erased:
            self.erased.append(n)
            self.hidden = frozenset(self.erased)

    def release(self):
        doc = self.roll.doc
        if self.erased:
            commands.push_notes(doc, "Erase notes", edits.delete(doc.current_track, self.erased), select_added=False)
            doc.set_selection(doc.selection - set(self.erased))
