"""argparse types for numbers: a bad one is a usage error (exit 2, one ``studio: error:`` line),
never a traceback later.  Used by the command line and by the training modules' own entry points.
"""

from __future__ import annotations

import argparse

MAX_SEED = 2**32 - 1  # what every random generator we seed accepts (numpy's legacy seeding is the narrowest)


def _shown(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:20]}... ({len(text):,} characters)"


def whole(lo: int, hi: int, what: str = "a whole number", *, open_hi: bool = False):
    """An argparse type: an integer in ``lo..hi`` (``open_hi``: ``hi`` is only a sanity bound,
    and the message says "``lo`` or more")."""

    def parse(text: str) -> int:
        t = text.strip()
        if len(t.lstrip("+-")) > 30 and t.lstrip("+-").isdigit():
            raise argparse.ArgumentTypeError(f"{_shown(text)} is far outside {lo}..{hi}")
        try:
            v = int(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not {what}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{v} must be {lo} or more" if open_hi else f"{v} is outside {lo}..{hi}")
        if v > hi:
            raise argparse.ArgumentTypeError(f"{v} is more than {hi:,}" if open_hi else f"{v} is outside {lo}..{hi}")
        return v

    parse.__name__ = what  # argparse names the type in some messages
    return parse


def real(lo: float = float("-inf"), hi: float = float("inf"), *, open_lo: bool = False):
    """An argparse type: a finite number in ``lo..hi`` (``open_lo``: ``lo`` itself excluded)."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a number") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a finite number")
        if v < lo or v > hi or (open_lo and v == lo):
            if hi == float("inf"):
                span = f"above {lo:g}" if open_lo else f"{lo:g} or more"
            else:
                span = f"above {lo:g} and at most {hi:g}" if open_lo else f"between {lo:g} and {hi:g}"
            raise argparse.ArgumentTypeError(f"{v:g} must be {span}")
        return v

    parse.__name__ = "number"
    return parse


seed = whole(0, MAX_SEED, "a seed (a whole number)")
MAX_TRAIN_MINUTES = 7 * 24 * 60.0  # a week: a bound that still catches an infinity
count = whole(1, 1_000_000, "a whole number", open_hi=True)
minutes = real(0.0, MAX_TRAIN_MINUTES, open_lo=True)  # a training run's wall-clock budget
