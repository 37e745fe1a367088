"""The variation model: a selection rewritten by denoising on a piano-roll grid.

The face every model package has: :func:`load` and :func:`generate`. Inside: ``roll`` (Song <->
grid) · ``model`` (the denoiser and its sampler) · ``api`` (vary a Song) · ``train`` · ``eval``.
"""

from __future__ import annotations


def load(folder=None, device: str = "auto"):
    """The model on ``device`` from ``folder`` (default: the shipped weights), loaded once per process."""
    from .api import load_model

    return load_model(device, folder)[0]


def generate(song, request, progress=None) -> list:
    """``request.takes`` varied copies of ``song`` for a ``VaryRequest``; ``progress(fraction)``
    returning False cancels. Errors are ``StudioError`` in the user's words."""
    from .api import vary

    return vary(song, request.strength, start_tick=request.start_tick, end_tick=request.end_tick,
                tracks=list(request.tracks) if request.tracks is not None else None,
                locked=set(request.locked) or None, takes=request.takes, seed=request.seed, device=request.device,
                progress=progress, mode=getattr(request, "mode", "free"))
