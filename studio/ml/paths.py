"""Where the shipped weights and the caches live (no torch here: cheap to import)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = Path(os.environ.get("STUDIO_MODELS", REPO_ROOT / "models"))


def model_dir(name: str) -> Path:
    return MODELS_DIR / name


def cache_root() -> Path:
    base = os.environ.get("STUDIO_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "cantor-studio"
