"""The parts of a song's extra data (``Song.meta``) the app reads back, checked like any other
value of a project file.

``meta`` is free-form JSON, but ``meta["ai_history"]`` is not: the assistant lists its entries
and "Use these settings" puts their parameters back into spin boxes.  A project whose history
holds a seed of ``"abc"``, a strength of ``1e300`` or ``"params": [1, 2]`` is refused with a
precise message instead of failing later inside the editor.
"""

from __future__ import annotations

import math

HISTORY_KEY = "ai_history"
MAX_INT = 2**31 - 1  # what a spin box holds

# parameter -> (whole number?, lowest, highest); None is always allowed (the model's default)
NUMBERS: dict[str, tuple[bool, float, float]] = {
    "seed": (True, 0, MAX_INT),
    "bars": (True, 0, MAX_INT),
    "from_bar": (True, 0, MAX_INT),
    "takes": (True, 0, MAX_INT),
    "take": (True, 0, MAX_INT),
    "candidates": (True, 0, MAX_INT),
    "melody_track": (True, 0, MAX_INT),
    "start_tick": (True, 0, 2**53),
    "end_tick": (True, 0, 2**53),
    "temperature": (False, 0.0, 100.0),
    "top_p": (False, 0.0, 1.0),
    "key_strength": (False, 0.0, 100.0),
    "strength": (False, 0.0, 1.0),
}
TEXTS = ("kind", "model", "summary")
TEXT_LISTS = ("keep",)
WHOLE_LISTS = ("tracks", "voices")


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 24 else text[:20] + "..."


def _number(v, what: str, whole: bool, lo: float, hi: float) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        return f"{what}: {_short(v)} is not a number"
    if whole and v != int(v):
        return f"{what}: {_short(v)} is not a whole number"
    if not lo <= v <= hi:
        span = f"{lo}..{hi}" if whole else f"{lo:g}..{hi:g}"
        return f"{what}: {_short(v)} is outside {span}"
    return None


def history_problem(meta: dict) -> str | None:
    """What is wrong with ``meta["ai_history"]`` (one short sentence), or None."""
    hist = meta.get(HISTORY_KEY)
    if hist is None:
        return None
    where = f"meta.{HISTORY_KEY}"
    if not isinstance(hist, list):
        return f"{where}: a list was expected"
    for i, e in enumerate(hist):
        w = f"{where}[{i}]"
        if not isinstance(e, dict):
            return f"{w}: an object was expected"
        for key in TEXTS:
            if e.get(key) is not None and not isinstance(e[key], str):
                return f"{w}.{key}: {_short(e[key])} is not text"
        problem = _number(e.get("seed"), f"{w}.seed", *NUMBERS["seed"])
        if problem:
            return problem
        params = e.get("params", {})
        if params is None:
            continue
        if not isinstance(params, dict):
            return f"{w}.params: an object was expected"
        for key, v in params.items():
            wp = f"{w}.params.{key}"
            if key in NUMBERS:
                problem = _number(v, wp, *NUMBERS[key])
                if problem:
                    return problem
            elif key in TEXT_LISTS and v is not None:
                if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                    return f"{wp}: a list of names was expected"
            elif key in WHOLE_LISTS and v is not None:
                if not isinstance(v, list) or any(_number(x, wp, True, 0, MAX_INT) for x in v):
                    return f"{wp}: a list of whole numbers was expected"
    return None
