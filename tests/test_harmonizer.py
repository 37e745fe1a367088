"""Harmonizer data, model, training step and sampling, with tiny configs (no real training)."""

import numpy as np
import pytest
import torch

from studio.ml.harmonizer import data as ch
from studio.ml.harmonizer import baseline as fb
from studio.ml.harmonizer import model as hz
from studio.ml.harmonizer import sample as hs
from studio.ml.harmonizer import train as ht

TINY = hz.Config(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, max_len=32)
TINY_PATCH = hz.Config(d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, max_len=32, arch="patch",
                       max_dist=4)
NAMES = ("bach/bwv269", "bach/bwv347", "bach/bwv153.1")


@pytest.fixture(scope="module")
def few():
    from music21 import corpus

    out = []
    for name in NAMES:
        c = ch.chorale_from_score(corpus.parse(name), name)
        assert c is not None, name
        out.append(c)
    return out


def test_token_round_trip():
    for pitch in (ch.LOW, 60, ch.HIGH):
        for onset in (True, False):
            assert ch.decode(ch.encode(pitch, onset)) == (pitch, onset)
    assert ch.decode(ch.REST) == (None, False)
    with pytest.raises(ValueError):
        ch.encode(ch.HIGH + 1, True)
    t = np.array([0, ch.encode(60, True), ch.encode(60, False)])
    assert list(ch.token_pitch(ch.transpose_tokens(t, 3))) == [-1, 63, 63]
    assert list(ch.token_onset(t)) == [False, True, False]


def test_grid_matches_music21_notes(few):
    from music21 import corpus

    from studio.ml.harmonizer.api import tokens_to_notes

    score = corpus.parse(NAMES[0])
    c = few[0]
    for v, part in enumerate(score.parts):
        want = [(float(n.offset) * 4, float(n.duration.quarterLength) * 4, n.pitch.midi)
                for n in part.stripTies().flatten().notes]
        got = [(n.start / 120, n.duration / 120, n.pitch) for n in tokens_to_notes(c.voices[v], 0, 120, 0)]
        assert got == want
    # the pickup: bwv269 is in 3/4 and starts on the third beat; fermatas mark phrase ends
    assert c.pos[0] == 8 and c.bar[0] == 12 and c.beat[0] == 4 and c.pos[4] == 0
    assert c.fermata.sum() > 0 and c.fermata[-1] == 1


def test_transpositions_keep_voices_in_range(few):
    for c in few:
        shifts = c.shifts()
        assert 0 in shifts and len(shifts) >= 3
        for s in shifts:
            for v, name in enumerate(ch.VOICES):
                lo, hi = c.pitch_span(v)
                assert ch.AUG_RANGE[name][0] <= lo + s and hi + s <= ch.AUG_RANGE[name][1]


def test_split_lists_are_disjoint_and_tunes_stay_together(few):
    assert not set(ch.VALID_TUNES) & set(ch.TEST_TUNES)
    assert len(ch.VALID_TUNES) >= 20 and len(ch.TEST_TUNES) >= 20
    # a copy of a held-out chorale under another name follows its tune
    held = few[0]
    twin = ch.Chorale("copy", held.voices.copy(), held.pos, held.bar, held.beat, held.fermata)
    old = ch.VALID_TUNES
    try:
        ch.VALID_TUNES = (held.name,)
        sp = ch.split([held, twin, few[1]])
        assert {c.name for c in sp["valid"]} == {held.name, "copy"}
    finally:
        ch.VALID_TUNES = old


def test_cache_round_trip(few, tmp_path):
    path = tmp_path / "c.npz"
    ch.save_cache(few, path)
    back = ch.load_cache(path)
    assert [c.name for c in back] == list(NAMES)
    for a, b in zip(few, back):
        assert np.array_equal(a.voices, b.voices) and np.array_equal(a.pos, b.pos) and np.array_equal(a.fermata, b.fermata)


def test_masks_cover_the_jobs(few):
    b = ht.Batches(few, 32, seed=1)
    pad = np.zeros(32, dtype=bool)
    pad[20:] = True
    sop_only = 0
    for _ in range(300):
        g = b.mask(pad)
        assert g[:, pad].all() and not g[:, ~pad].all()
        sop_only += bool(g[0].all() and not g[1:, ~pad].any())
    assert 50 < sop_only < 150  # about 30% are "soprano given, the rest hidden"
    tok, given, met, fer, p = b.next(4)
    assert tok.shape == (4, 4, 32) and given.dtype == torch.bool and met.shape == (4, 32)
    assert int(tok.max()) < ch.VOCAB and int(met.max()) < hz.METRIC_CLASSES


@pytest.mark.parametrize("cfg", [TINY, TINY_PATCH], ids=["step", "patch"])
def test_hidden_cells_do_not_leak(cfg):
    torch.manual_seed(0)
    m = hz.build(cfg.__dict__).eval()
    tok = torch.randint(1, ch.VOCAB, (1, 4, 16))
    given = torch.ones(1, 4, 16, dtype=torch.bool)
    given[0, 1:, 5:9] = False
    met, fer = torch.zeros(1, 16, dtype=torch.long), torch.zeros(1, 16, dtype=torch.long)
    a = m(tok, given, met, fer)
    tok2 = tok.clone()
    tok2[0, 1:, 5:9] = 3  # change only hidden cells
    assert torch.allclose(a, m(tok2, given, met, fer))
    tok3 = tok.clone()
    tok3[0, 0, 0] = 7  # a given cell does matter
    assert not torch.allclose(a, m(tok3, given, met, fer))
    assert a.shape == (1, 4, 16, ch.VOCAB)


def test_one_training_step_and_checkpoint(few, tmp_path, monkeypatch):
    monkeypatch.setattr(ch, "VALID_TUNES", (NAMES[2],))
    monkeypatch.setattr(ch, "TEST_TUNES", ())
    from studio.ml import checkpoint
    from studio.ml.training import Run, fit

    r = fit(ht.harmonizer_task(few * 4, TINY, batch=4), Run(tmp_path / "h", minutes=0.001, device="cpu", log=lambda m: None))
    assert r["step"] >= 1 and np.isfinite(r["best"])
    model, meta = checkpoint.load(tmp_path / "h", hz.build)
    assert meta["config"]["d_model"] == 32 and meta["steps"] >= 1 and np.isfinite(meta["valid_nll"]["given_soprano"])
    r = fit(ht.forward_bach_task(few * 4, batch=16), Run(tmp_path / "f", minutes=0.001, device="cpu", log=lambda m: None))
    assert r["step"] >= 1 and np.isfinite(r["best"])
    # the beat-patched network trains through the same loop and loads back as itself
    r = fit(ht.harmonizer_task(few * 4, TINY_PATCH, batch=4), Run(tmp_path / "p", minutes=0.001, device="cpu", log=lambda m: None))
    assert r["step"] >= 1 and np.isfinite(r["best"])
    model, meta = checkpoint.load(tmp_path / "p", hz.build)
    assert isinstance(model, hz.PatchHarmonizer) and meta["config"]["arch"] == "patch"


def test_patch_batches_mark_the_last_note_and_start_on_beats(few):
    b = ht.PatchBatches(few, 64, seed=3)
    tok, given, met, fer, pad = b.next(64)
    assert (fer <= 3).all() and (fer == ch.FERMATA_LAST).any()
    # the soprano-only job is there, and never a window without a hidden cell
    sop_only = (given[:, 0].all(-1) & ~(given[:, 1:] | pad[:, None]).any((1, 2)))
    assert sop_only.float().mean() > 0.15 and (~given).any((1, 2)).all()
    # a window never starts inside a held note
    assert not ((tok[:, :, 0] > ch.P) & ~pad[:, :1]).any()


def test_sampling_keeps_given_cells_and_holds_are_consistent():
    torch.manual_seed(0)
    net = hz.TorchNet(hz.Harmonizer(TINY), "cpu")
    T = 70  # longer than the window: overlapping windows
    rng = np.random.default_rng(0)
    tok = rng.integers(1, ch.VOCAB, (2, 4, T))
    given = np.zeros((2, 4, T), dtype=bool)
    given[:, 0] = True
    given[:, 3, :10] = True
    met, fer = np.zeros((2, T), dtype=np.int64), np.zeros((2, T), dtype=np.int64)
    calls = []
    x = hs.gibbs(net, tok, given, met, fer, 5, 0.8, np.random.default_rng(1),
                 progress=lambda f: calls.append(f) or True)
    assert np.array_equal(x[given], tok[given])
    assert not np.array_equal(x[~given], tok[~given])
    assert len(calls) == 6 and calls[-1] == 1.0
    free = x[:, 1:3]
    assert np.array_equal(hs.fix_holds(free), free)
    from studio.core.errors import Cancelled

    with pytest.raises(Cancelled):
        hs.gibbs(net, tok, given, met, fer, 5, 0.8, np.random.default_rng(1), progress=lambda f: f < 0.3)


def test_the_sampler_is_the_same_code_on_any_network():
    """Two networks handing the sampler the same logits get the same notes for the same seed."""
    torch.manual_seed(0)
    model = hz.Harmonizer(TINY)
    a = hz.TorchNet(model, "cpu")

    class Recorded:  # the same logits through a plain numpy function, as ONNX Runtime hands them over
        vocab, max_len = a.vocab, a.max_len

        def __call__(self, *args):
            return a(*args).copy()

    T = 40
    rng = np.random.default_rng(2)
    tok = np.zeros((4, T), dtype=np.int64)
    tok[0] = rng.integers(1, ch.VOCAB, T)
    given = np.zeros((4, T), dtype=bool)
    given[0] = True
    met = hz.metric_classes(np.arange(T) % 16, np.full(T, 16), np.full(T, 4))
    kw = dict(candidates=3, steps=4, seed=5, beats=np.arange(0, T, 4), repair_rounds=2, shift=0)
    x = hs.harmonize_grid(a, tok, given, met, **kw)
    assert np.array_equal(x, hs.harmonize_grid(Recorded(), tok, given, met, **kw))
    assert np.array_equal(x[0], tok[0])


def _fix_holds_reference(tokens):
    """The step-by-step definition of fix_holds, to check the vectorized one against."""
    P = ch.P
    t = tokens.clone()
    for i in range(t.shape[-1]):
        cur = t[..., i]
        hold = cur > P
        if i == 0:
            t[..., i] = torch.where(hold, cur - P, cur)
            continue
        prev = t[..., i - 1]
        prev_pitch = torch.where(prev > P, prev - 1 - P, prev - 1)
        cur2 = torch.where(hold & (prev == 0), cur - P, cur)
        t[..., i] = torch.where(hold & (prev != 0) & (cur - 1 - P != prev_pitch), 1 + P + prev_pitch, cur2)
    return t


def test_fix_holds_matches_the_step_by_step_definition():
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        t = torch.randint(0, ch.VOCAB, (3, 4, 50), generator=g)
        t[torch.rand(t.shape, generator=g) < 0.2] = 0  # plenty of rests
        assert np.array_equal(hs.fix_holds(t.numpy()), _fix_holds_reference(t).numpy())


def test_forward_bach_shapes_and_soprano_kept(few):
    m = fb.ForwardBach(fb.Config(context=2, emb=8, hidden=16))
    c = few[0]
    met = hz.metric_classes(c.pos, c.bar, c.beat)
    x = fb.features(c.voices[0], met, 2)
    assert x.shape == (c.length, 10)
    assert m(torch.from_numpy(x)).shape == (c.length, 3, ch.VOCAB)
    out = fb.harmonize_tokens(m, c.voices[0], met)
    assert out.shape == (4, c.length) and np.array_equal(out[0], c.voices[0])


def test_metric_classes():
    pos = np.array([0, 1, 2, 4, 8, 12, 6])
    got = hz.metric_classes(pos, np.full(7, 16), np.full(7, 4)).tolist()
    assert got == [0, 4, 3, 2, 1, 2, 3]
    assert hz.metric_classes(np.array([0, 8, 16]), np.full(3, 24), np.full(3, 8)).tolist() == [0, 2, 2]  # 3/2


def test_patch_network_reads_any_length_and_padding_is_inert():
    """The beat-patched network: a grid that is not a whole number of patches gives the same
    logits as the same grid padded to one; padding after the end changes nothing before it."""
    torch.manual_seed(0)
    m = hz.build(TINY_PATCH.__dict__).eval()
    assert isinstance(m, hz.PatchHarmonizer)
    tok = torch.randint(1, ch.VOCAB, (2, 4, 22))
    given = torch.rand(2, 4, 22) < 0.5
    met, fer = torch.randint(0, 5, (2, 22)), torch.randint(0, 4, (2, 22))
    a = m(tok, given, met, fer)
    assert a.shape == (2, 4, 22, ch.VOCAB)
    pad = torch.zeros(2, 40, dtype=torch.bool)
    pad[:, 22:] = True
    b = m(torch.nn.functional.pad(tok, (0, 18)), torch.nn.functional.pad(given, (0, 18), value=True),
          torch.nn.functional.pad(met, (0, 18), value=ch.METRIC_CLASSES - 1), torch.nn.functional.pad(fer, (0, 18)), pad)
    assert torch.allclose(a, b[:, :, :22], atol=1e-5)
    # a far-away patch still matters (the clipped relative bias does not cut attention off)
    tok2 = tok.clone()
    tok2[:, 0, 20] = 5
    given2 = given.clone()
    given2[:, 0, 20] = True
    assert not torch.allclose(m(tok2, given2, met, fer)[:, :, :4], m(tok, given2, met, fer)[:, :, :4])


def test_phrase_marks():
    line = [(0, 4, 67), (4, 8, 69), (10, 14, 71), (14, 22, 72)]  # a rest of an 8th after the second note
    marks = ch.phrase_marks(line, 0, 24)
    assert list(marks[:4]) == [0] * 4 and list(marks[4:8]) == [2] * 4 and list(marks[8:14]) == [0] * 6
    assert list(marks[14:22]) == [3] * 8 and list(marks[22:]) == [0, 0]


@pytest.mark.parametrize("arch", ["step", "patch"])
def test_onnx_and_torch_hand_the_sampler_the_same_logits(tmp_path, monkeypatch, arch):
    """The torch-free harmonizer: the ONNX Runtime and the torch network give the sampler the same
    log-probabilities (padded, exact and overlapping windows), and the API keeps the melody."""
    from studio.ml import checkpoint
    from studio.ml.harmonizer import api as harmonize_api, ort as harmonize_ort

    if not harmonize_ort.available():
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    cfg = TINY if arch == "step" else TINY_PATCH
    folder = tmp_path / "harmonizer"
    checkpoint.save(hz.build(cfg.__dict__), cfg, folder)
    model, _ = checkpoint.load(folder, hz.build, "cpu")
    net = harmonize_ort.OrtNet(folder, threads=1)
    tnet = hz.TorchNet(model, "cpu")
    assert list((tmp_path / "cache" / "onnx").glob("harmonizer-*.onnx"))
    rng = np.random.default_rng(1)
    for T in (20, 32, 70):  # one padded window, one exact, several overlapping
        tok = rng.integers(0, ch.VOCAB, (2, 4, T))
        given = rng.random((2, 4, T)) < 0.5
        met = rng.integers(0, 5, (2, T))
        fer = rng.integers(0, 4, (2, T))
        want = hs.log_probs(tnet, tok, given, met, fer)
        got = hs.log_probs(net, tok, given, met, fer)
        assert np.allclose(got, want, atol=1e-4), T
    from studio.core.song import Note, Song, Track

    mel = [Note(i * 480, p, 480) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])]
    out = harmonize_api.harmonize(Song(tracks=[Track("Melody", notes=mel)]), seed=3, device="cpu", weights=folder)
    assert [t.name for t in out.tracks] == ["Soprano", "Alto", "Tenor", "Bass"]
    assert out.tracks[0].notes == mel and all(t.notes for t in out.tracks[1:])
    for v, name in enumerate(ch.VOICES[1:], start=1):
        lo, hi = ch.SATB_RANGE[name]
        assert all(lo <= n.pitch <= hi for n in out.tracks[v].notes), name


def test_harmonizing_on_the_cpu_does_not_import_torch_once_the_graph_is_cached(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys; from studio.core.song import Note, Song, Track; from studio.ml.harmonizer import api\n"
            "mel = [Note(i * 480, p, 480) for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])]\n"
            "api.harmonize(Song(tracks=[Track('Melody', notes=mel)]), seed=1, device='cpu')\n"
            "print('torch' in sys.modules)")
    env = {**os.environ, "STUDIO_CACHE": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.strip() == "True"  # the first run exports the network with torch
    assert second.stdout.strip() == "False"
