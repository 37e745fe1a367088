"""The continuation model: the next bars of a song.

``tokens`` (REMI tokens and their grammar) · ``model`` (Music-Transformer with relative attention,
torch sampling) · ``decode`` (the cached decoding step as an ONNX Runtime graph, int8 on the CPU) ·
``api`` (continue a Song) · ``train`` · ``eval``.
"""
