"""Pure-Python core of Cantor Studio: the song model, edits and timing. No Qt, no torch."""

from .errors import FileFormatError, StudioError
from .song import PPQ, KeySignature, Note, Song, TempoChange, TimeSignature, Track

__all__ = [
    "PPQ", "KeySignature", "Note", "Song", "TempoChange", "TimeSignature", "Track",
    "StudioError", "FileFormatError",
]
