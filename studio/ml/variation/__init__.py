"""The variation model: a selection rewritten by denoising on a piano-roll grid.

``roll`` (Song <-> grid) · ``model`` (the denoiser and its sampler) · ``api`` (vary a Song) ·
``train``.
"""
