"""The harmonizer: a melody in, four voices (SATB) out.

``data`` (Bach's chorales on a 16th-note grid) · ``model`` (the network and its torch sampler) ·
``baseline`` (ForwardBach, the feed-forward baseline) · ``ort`` (the same sampler in numpy over
ONNX Runtime) · ``vlgrid`` (voice-leading faults on the grid) · ``api`` (harmonize / regenerate a
Song) · ``train`` (training and held-out evaluation).
"""
