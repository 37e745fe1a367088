"""Model cards: ``models/<name>/card.json`` (data, split, steps, metrics, the commands that made it).

One reader and one writer for every model. A card is written atomically; ``merge`` keeps the keys
an earlier writer put there (the trainer's data sizes and runs) and replaces the ones given.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ..io.atomic import atomic_write

NAME = "card.json"
_unchanged = 0  # > 0 inside unchanged(): write() leaves cards alone


@contextlib.contextmanager
def unchanged():
    """Inside this block :func:`write` leaves every card as it is: an evaluation that was not
    asked to update the model's card (``studio eval`` without ``--update-card``)."""
    global _unchanged
    _unchanged += 1
    try:
        yield
    finally:
        _unchanged -= 1


def card_context(update: bool):
    """``unchanged()`` unless ``update``."""
    return contextlib.nullcontext() if update else unchanged()


def read(folder: str | Path) -> dict:
    """The card in ``folder``; an empty dict when there is none or it cannot be read."""
    try:
        card = json.loads((Path(folder) / NAME).read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def write(folder: str | Path, card: dict, merge: bool = False) -> Path:
    """Write ``card`` as ``folder/card.json``; with ``merge``, over the card already there (keys whose
    new value is None keep the old one)."""
    folder = Path(folder)
    if _unchanged:
        return folder / NAME
    folder.mkdir(parents=True, exist_ok=True)
    if merge:
        card = {**read(folder), **{k: v for k, v in card.items() if v is not None}}
    path = folder / NAME
    text = json.dumps(card, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
