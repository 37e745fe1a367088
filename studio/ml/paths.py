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


GRAPHS_KEPT = 6  # per model, the sets of weights whose exported ONNX graphs stay in the cache


def graph_in_use(path: Path, keep: int = GRAPHS_KEPT) -> None:
    """Mark ``path``, an exported graph in the cache named ``<model>-<weights key>[-<kind>].<ext>``,
    as just used, and delete the files of that model's other weights beyond the ``keep`` used
    most recently. Each set of weights (a training checkpoint, an update of the shipped ones)
    leaves its graphs behind, 10-20 MB a set; one deleted by mistake is exported again when
    needed. Files being written (``.tmp<pid>``) are left alone."""
    try:
        os.utime(path)
    except OSError:
        return
    model, _, rest = path.name.partition("-")
    this = rest.split(".")[0].split("-")[0]
    used: dict[str, list] = {}
    for f in path.parent.glob(f"{model}-*"):
        if ".tmp" in f.name:
            continue
        key = f.name.partition("-")[2].split(".")[0].split("-")[0]
        try:
            used.setdefault(key, []).append((f.stat().st_mtime, f))
        except OSError:
            continue
    for key in sorted(used, key=lambda k: max(m for m, _ in used[k]), reverse=True)[keep:]:
        if key != this:
            for _, f in used[key]:
                try:
                    f.unlink()
                except OSError:
                    pass
