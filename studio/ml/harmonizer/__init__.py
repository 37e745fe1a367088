"""The harmonizer: a melody in, four voices (SATB) out.

The face every model package has: :func:`load` (the network for a device, once per process) and
:func:`generate` (a song and a request in, takes out). Inside: ``data`` (Bach's chorales on a
16th-note grid) · ``model`` (the network; ``TorchNet``) · ``sample`` (the one sampler, numpy,
over any network that hands it logits) · ``ort`` (the network on ONNX Runtime) · ``baseline``
(ForwardBach) · ``vlgrid`` (voice-leading faults on the grid) · ``api`` (Song <-> grid, harmonize,
regenerate) · ``train`` · ``eval``.
"""

from __future__ import annotations


def load(folder=None, device: str = "auto"):
    """The network the sampler runs on for ``device`` (ONNX Runtime on the CPU, else torch), from
    ``folder`` (default: the shipped weights); loaded once per process."""
    from .api import load_net

    return load_net(device, folder)


def generate(song, request, progress=None) -> list:
    """``request.takes`` new Songs for a ``HarmonizeRequest`` (voices under the melody) or a
    ``RegenerateRequest`` (some voices redrawn in a span); take ``i`` uses ``request.seed + i``.
    ``progress(fraction)`` returning False cancels. Errors are ``StudioError`` in the user's words."""
    from .api import harmonize, regenerate

    takes = max(1, int(getattr(request, "takes", 1) or 1))
    out = []
    for i in range(takes):
        seed = None if request.seed is None else request.seed + i
        report = None if progress is None else (lambda f, _a=i / takes: progress(_a + f / takes))
        if request.kind == "regenerate":
            out.append(regenerate(song, list(request.voices), start=request.start_tick, end=request.end_tick,
                                  temperature=request.temperature, candidates=request.candidates, seed=seed,
                                  device=request.device, progress=report))
        else:
            out.append(harmonize(song, melody_track=request.melody_track, keep=tuple(request.keep),
                                 temperature=request.temperature, candidates=request.candidates, seed=seed,
                                 device=request.device, progress=report))
    return out
