"""Messages between the editor and the model worker process.

Plain frozen dataclasses (they cross the process boundary by pickling through a
multiprocessing queue).  This module imports neither torch nor Qt: the GUI uses it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.song import Note, Song


# ---- requests --------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    job: int
    song: Song
    seed: int | None = None
    device: str = "auto"

    kind = "request"

    def params(self) -> dict:
        """The parameters that reproduce this request (stored in the project's AI history)."""
        skip = {"job", "song", "locked"}
        return {k: v for k, v in self.__dict__.items() if k not in skip}


@dataclass(frozen=True)
class ContinueRequest(Request):
    bars: int = 4
    from_bar: int | None = None  # 1-based; None = after the end
    temperature: float | None = None
    top_p: float | None = None
    takes: int = 1
    key_strength: float | None = None  # None: the model's default
    density: tuple[str, ...] = ()  # per track: "sparser", "as before" or "denser"; () = all as before
    keep_range: bool = False  # new notes stay within each track's range before
    cadence: bool = False  # end on the tonic chord
    smooth_lines: bool = False  # each line moves by the intervals it used before (more steps)
    follow_density: bool | None = None  # each track's note rate and chord sizes follow its bars before

    kind = "continue"


@dataclass(frozen=True)
class HarmonizeRequest(Request):
    melody_track: int | None = None  # 0-based; None = the first track with notes
    keep: tuple[str, ...] = ("soprano",)
    temperature: float | None = None
    candidates: int | None = None
    takes: int = 1

    kind = "harmonize"


@dataclass(frozen=True)
class VaryRequest(Request):
    strength: float = 0.5
    start_tick: int | None = None
    end_tick: int | None = None
    tracks: tuple[int, ...] | None = None  # 0-based
    locked: frozenset[tuple[int, Note]] = frozenset()
    takes: int = 1
    mode: str = "free"  # "free", "rhythm" (keep the rhythm) or "pitches" (keep the pitches)

    kind = "vary"


@dataclass(frozen=True)
class RegenerateRequest(Request):
    """Redraw some voices of a four-voice (SATB) song between two ticks, keeping the rest
    (the harmonizer's infilling)."""

    voices: tuple[int, ...] = (1,)  # 0 soprano .. 3 bass
    start_tick: int | None = None
    end_tick: int | None = None
    temperature: float | None = None
    candidates: int | None = None
    takes: int = 1

    kind = "regenerate"


@dataclass(frozen=True)
class Shutdown:
    pass


# ---- replies ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Ready:
    """Sent once the worker process is up; ``device`` names where models run."""

    device: str


@dataclass(frozen=True)
class Warmed:
    models: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class Progress:
    job: int
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class Take:
    song: Song
    model: str
    params: dict = field(default_factory=dict)
    seed: int | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class Result:
    job: int
    takes: tuple[Take, ...]


@dataclass(frozen=True)
class Failed:
    job: int
    message: str  # one line, for the user


@dataclass(frozen=True)
class CancelledReply:
    job: int
