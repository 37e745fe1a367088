"""File formats: one module per format, and :func:`load` / :func:`save` that pick one by extension.

``load`` and ``save`` raise :class:`~studio.core.errors.FileFormatError` (a user-facing
error, ``"<file name>: <problem>"``) for anything wrong with a file; ``save`` is always atomic,
so a failure never leaves half a file behind.  music21 is imported only when a MusicXML
file is read or written.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.errors import FileFormatError
from ..core.song import Song
from .limits import check_song

MIDI_EXTS = (".mid", ".midi")
MUSICXML_IN_EXTS = (".musicxml", ".xml", ".mxl")
MUSICXML_OUT_EXTS = (".musicxml", ".xml")
PROJECT_EXTS = (".studio",)

SUPPORTED_IN = MIDI_EXTS + MUSICXML_IN_EXTS + PROJECT_EXTS
SUPPORTED_OUT = MIDI_EXTS + MUSICXML_OUT_EXTS + PROJECT_EXTS


def _ext(path) -> str:
    return Path(path).suffix.lower()


def _label(path) -> str:
    return os.path.basename(str(path)) or str(path)


def _sniff(path) -> str | None:
    """The kind of file its first bytes show ('midi', 'musicxml', 'project'), if they are clear."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return None
    if head[:4] == b"MThd" or (head[:4] == b"RIFF" and head[8:12] == b"RMID"):
        return "midi"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:4] == b"PK\x03\x04" or (text[:1] == b"<" and (b"score-partwise" in head or b"score-timewise" in head)):
        return "musicxml"
    if text[:1] == b"{" and b"format_version" in head:
        return "project"
    return None


def load(path: str | os.PathLike, progress=None) -> Song:
    """Read any supported file into a Song.

    The extension picks the reader, unless the file's first bytes plainly show another
    supported kind (a MIDI file saved as ``.xml``, say): then that reader is used.
    ``progress(fraction)`` is called while a MusicXML file is read (the others are quick).
    What a reader repaired to read a file is said as a :class:`~studio.core.errors.FileWarning`.
    """
    ext = _ext(path)
    if ext not in SUPPORTED_IN:
        raise FileFormatError(f"{_label(path)}: unknown file type {ext or '(no extension)'!r}; can read {', '.join(SUPPORTED_IN)}")
    if not os.path.exists(path):
        raise FileFormatError(f"{_label(path)}: no such file")
    if os.path.isdir(path):
        raise FileFormatError(f"{_label(path)}: is a folder, not a file")
    kind = "midi" if ext in MIDI_EXTS else "musicxml" if ext in MUSICXML_IN_EXTS else "project"
    kind = _sniff(path) or kind
    if kind == "midi":
        from .midi import read_midi

        song = read_midi(path)
    elif kind == "musicxml":
        from .musicxml import read_musicxml

        song = read_musicxml(path, progress)
    else:
        from .project import read_project

        song = read_project(path)
    check_song(song, _label(path))  # the same limits for every format (see limits.py)
    return song


def check_output(path: str | os.PathLike) -> str:
    """The extension of an output path, or a FileFormatError when we cannot write that kind."""
    ext = _ext(path)
    if ext not in SUPPORTED_OUT:
        raise FileFormatError(f"{_label(path)}: cannot write {ext or 'files without an extension'}; can write {', '.join(SUPPORTED_OUT)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileFormatError(f"{_label(path)}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise FileFormatError(f"{_label(path)}: is a folder")
    return ext


def save(song: Song, path: str | os.PathLike) -> None:
    """Write a Song in the format named by the extension (atomically)."""
    ext = check_output(path)
    try:
        if ext in MIDI_EXTS:
            from .midi import write_midi

            write_midi(song, path)
        elif ext in MUSICXML_OUT_EXTS:
            from .musicxml import write_musicxml

            write_musicxml(song, path)
        else:
            from .project import write_project

            write_project(song, path)
    except PermissionError:
        raise FileFormatError(f"{_label(path)}: permission denied") from None
    except OSError as exc:
        raise FileFormatError(f"{_label(path)}: cannot write ({exc.strerror or exc})") from None


__all__ = ["load", "save", "check_output", "SUPPORTED_IN", "SUPPORTED_OUT"]
