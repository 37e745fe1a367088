"""Model cards: ``models/<name>/card.json`` (data, split, steps, metrics, the commands that made it).

One reader and one writer for every model. A card is written atomically; ``merge`` keeps the keys
an earlier writer put there (the trainer's data sizes and runs) and replaces the ones given.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..io.atomic import atomic_write

NAME = "card.json"


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
    folder.mkdir(parents=True, exist_ok=True)
    if merge:
        card = {**read(folder), **{k: v for k, v in card.items() if v is not None}}
    path = folder / NAME
    text = json.dumps(card, indent=2)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
