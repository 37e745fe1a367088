"""The continuation model: the next bars of a song.

The face every model package has: :func:`load` and :func:`generate`. Inside: ``tokens`` (REMI
tokens and their grammar) · ``model`` (Music-Transformer with relative attention, sampling) ·
``step`` (the cached decoding step, defined once) · ``decode`` (that step as an ONNX Runtime
graph, int8 on the CPU) · ``api`` (continue a Song) · ``train`` · ``eval``.
"""

from __future__ import annotations


def load(folder=None, device: str = "auto"):
    """The model on ``device`` from ``folder`` (default: the shipped weights), loaded once per
    process; on the CPU its ONNX Runtime decoder is prepared too."""
    from .api import load_model, warm_up

    if folder is None:
        warm_up(device)
    return load_model(device, folder)[0]


def generate(song, request, progress=None) -> list:
    """``request.takes`` continuations of ``song`` for a ``ContinueRequest``; ``progress(fraction)``
    returning False cancels. Errors are ``StudioError`` in the user's words."""
    from .api import SMOOTH_LINES, continue_song

    return continue_song(song, bars=request.bars, from_bar=request.from_bar, temperature=request.temperature,
                         top_p=request.top_p, takes=request.takes, seed=request.seed, device=request.device,
                         progress=progress, key_strength=request.key_strength,
                         density=tuple(getattr(request, "density", ())) or None,
                         keep_range=getattr(request, "keep_range", False), cadence=getattr(request, "cadence", False),
                         motion_strength=SMOOTH_LINES if getattr(request, "smooth_lines", False) else None,
                         hold_density=getattr(request, "follow_density", None))
