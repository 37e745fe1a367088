"""The continuation model: relative attention, the KV cache, sampling, the API and the command."""

import json

import numpy as np
import pytest
import torch

from studio.core.errors import Cancelled, StudioError
from studio.core.song import Note, Song, TimeSignature, Track
from studio.core.timing import bars
from studio.ml.continuation import api as continue_api
from studio.ml import checkpoint
from studio.ml.continuation import tokens as T
from studio.ml.continuation.model import (Config, MusicTransformer, rel_logits_naive, rel_logits_skewed, sample)

TINY = Config(n_layer=1, d_model=32, n_head=2, d_ff=64, ctx=64, dropout=0.0)


def chorale(n_bars=4) -> Song:
    tracks = []
    for i, (name, base) in enumerate((("Soprano", 72), ("Alto", 67), ("Tenor", 60), ("Bass", 48))):
        notes = [Note(b * 1920 + q * 480, base + (0, 2, 4, 5)[(b + q) % 4] - (i % 2), 480) for b in range(n_bars)
                 for q in range(4)]
        tracks.append(Track(name, 52, i, notes=notes))
    return Song(title="c", tracks=tracks).normalize()


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "continuation"
    torch.manual_seed(0)
    checkpoint.save(MusicTransformer(TINY), TINY, folder)
    return folder


def test_skewing_equals_naive_relative_attention():
    torch.manual_seed(1)
    q = torch.randn(2, 3, 17, 8)
    for R in (17, 30, 5):  # exact length, longer table, clipped distances
        er = torch.randn(3, R, 8)
        fast, slow = rel_logits_skewed(q, er), rel_logits_naive(q, er)
        causal = torch.ones(17, 17, dtype=torch.bool).tril()
        assert torch.allclose(fast.masked_fill(~causal, 0), slow, atol=1e-5)


@pytest.mark.parametrize("n_layer", [1, 3])
def test_kv_cache_matches_full_forward_and_slides(n_layer):
    torch.manual_seed(2)
    model = MusicTransformer(Config(**{**vars(TINY), "n_layer": n_layer})).eval()
    x = torch.randint(4, T.VOCAB_SIZE, (2, 40))
    with torch.no_grad():
        full = model(x)[0]
        cache = model.new_cache()
        out = model.forward_cached(x[:, :25], cache)
        assert torch.allclose(out, full[:, 24], atol=1e-4)
        for i in range(25, 40):
            out = model.forward_cached(x[:, i: i + 1], cache)
        assert torch.allclose(out, full[:, 39], atol=1e-4)
        for i in range(60):  # past the context: old keys drop out, the first 3 stay
            out = model.forward_cached(x[:, :1], cache, keep_head=3)
        assert cache["pos"].numel() <= TINY.ctx and cache["pos"][:3].tolist() == [0, 1, 2]
        assert torch.isfinite(out).all()


def test_cached_decoding_follows_a_weight_update():
    """The cached step's arranged weights are made again when a parameter changes in place."""
    torch.manual_seed(5)
    model = MusicTransformer(TINY).eval()
    x = torch.randint(4, T.VOCAB_SIZE, (1, 12))
    with torch.no_grad():
        model.forward_cached(x, model.new_cache())
        model.blocks[0].mlp[0].weight.mul_(3.0)
        model.emb.weight.add_(0.5)
        assert torch.allclose(model.forward_cached(x, model.new_cache()), model(x)[0][:, -1], atol=1e-4)


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_fast_decoding_steps_match_the_full_pass_and_forward_cached(backend, tmp_path, monkeypatch):
    """The lean torch step and the ONNX Runtime fp32 step give the logits of the full forward
    pass (skewed attention, no cache) while the context holds everything, and forward_cached's
    past it (the oldest keys drop out, the header stays); the int8-weight graph gives nearly
    the same next-token distribution. Three blocks: every layer's cache is used."""
    from studio.ml.continuation import decode as continuation_ort
    from studio.ml.continuation.model import _step_function

    if backend != "torch" and not continuation_ort.available():
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    torch.manual_seed(4)
    model = MusicTransformer(Config(**{**vars(TINY), "n_layer": 3})).eval()
    x = torch.randint(4, T.VOCAB_SIZE, (2, 10 + 90))
    kl, agree = [], []
    with torch.inference_mode():
        full = model(x[:, :TINY.ctx])[0]
        ref_cache, cache = model.new_cache(), model.new_cache()
        model.forward_cached(x[:, :10], ref_cache, keep_head=3)
        model.forward_cached(x[:, :10], cache, keep_head=3)
        step = _step_function(model, cache, 3, backend, 1)
        for i in range(10, 100):  # 100 positions through a context of 64: the oldest keys drop out
            want = model.forward_cached(x[:, i: i + 1], ref_cache, keep_head=3)
            got = torch.from_numpy(step(x[:, i].tolist()))
            if i < TINY.ctx:
                assert torch.allclose(want, full[:, i], atol=1e-4), i
            if backend == "onnx-int8":
                lp, lq = torch.log_softmax(want, -1), torch.log_softmax(got, -1)
                kl.append(float((lp.exp() * (lp - lq)).sum(-1).max()))
                agree.append(float((want.argmax(-1) == got.argmax(-1)).float().mean()))
            else:
                assert torch.allclose(got, want, atol=1e-4), i
    if backend == "onnx-int8":  # a random model's logits are flat, so this is a loose bound
        assert max(kl) < 0.05 and np.mean(agree) > 0.8, (max(kl), np.mean(agree))
        assert list(tmp_path.glob("onnx/continuation-*-int8.onnx"))
    if backend == "onnx":
        assert list(tmp_path.glob("onnx/continuation-*.onnx"))  # the exported graph is cached


def test_auto_falls_back_to_the_fp32_graph_when_quantizing_fails(tmp_path, monkeypatch, caplog):
    from studio.ml.continuation import decode as continuation_ort
    from studio.ml.continuation.model import _step_function

    if not continuation_ort.available():
        pytest.skip("onnxruntime is not installed")

    def broken(src, dst):
        raise ImportError("No module named 'fusion_utils'")

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    monkeypatch.setattr(continuation_ort, "quantize", broken)
    torch.manual_seed(6)
    model = MusicTransformer(TINY).eval()
    x = torch.randint(4, T.VOCAB_SIZE, (1, 20))
    with torch.inference_mode():
        ref_cache, cache = model.new_cache(), model.new_cache()
        model.forward_cached(x[:, :10], ref_cache)
        model.forward_cached(x[:, :10], cache)
        step = _step_function(model, cache, 0, "auto", 1)
        for i in range(10, 20):
            want = model.forward_cached(x[:, i: i + 1], ref_cache)
            assert torch.allclose(torch.from_numpy(step(x[:, i].tolist())), want, atol=1e-4)
    assert "int8 decoding unavailable" in caplog.text and "fusion_utils" in caplog.text
    with pytest.raises(ImportError):
        _step_function(model, model.new_cache(), 0, "onnx-int8", 1)


def test_int8_graph_quantizes_the_weight_matrices_only(tmp_path, monkeypatch):
    import logging

    from studio.ml.continuation import decode as continuation_ort

    if not continuation_ort.available():
        pytest.skip("onnxruntime is not installed")
    import onnx

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    model = MusicTransformer(TINY).eval()
    root, seen = logging.getLogger(), []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    filters = list(root.filters)
    root.addHandler(handler)
    try:
        continuation_ort.session(model, 1, "int8")
    finally:
        root.removeHandler(handler)
    # the quantizer's advice never reaches a handler (the terminal), and the root logger is left as it was
    assert not [m for m in seen if "pre-processing" in m] and root.filters == filters
    ops = [n.op_type for n in onnx.load(str(continuation_ort.graph_path(model, "int8"))).graph.node]
    # qkv, proj and two feed-forward matrices per layer plus the output head; the position
    # tables and the cache products stay fp32
    assert ops.count("MatMulInteger") == 4 * TINY.n_layer + 1
    assert ops.count("MatMul") == 3 * TINY.n_layer


def test_pick_follows_mask_temperature_and_top_p():
    from studio.ml.continuation.model import pick

    scores = np.array([0.0, 5.0, 4.0, 1.0, 9.0], dtype=np.float32)
    allowed = np.array([True, True, True, True, False])
    draws = [pick(scores, allowed, 1.0, None, u) for u in np.linspace(0, 0.999, 400)]
    assert 4 not in draws  # masked out, although it scores highest
    counts = np.bincount(draws, minlength=5) / len(draws)
    p = np.exp(scores[:4] - scores[:4].max())
    p /= p.sum()
    assert np.allclose(counts[:4], p, atol=0.01)  # inverse CDF over the allowed tokens
    # top-p 0.5: token 1 alone holds 0.71 of the probability, so it is the only one kept
    assert {pick(scores, allowed, 1.0, 0.5, u) for u in np.linspace(0, 0.999, 50)} == {1}
    # top-p 0.9: tokens 1 and 2 (0.71 + 0.26 >= 0.9) are kept, never 0 or 3
    assert {pick(scores, allowed, 1.0, 0.9, u) for u in np.linspace(0, 0.999, 50)} == {1, 2}
    # a bias can overturn the order; a very low temperature takes the best allowed token
    bias = np.array([0, 0, 3, 0, 0], dtype=np.float32)
    assert pick(scores, allowed, 0.01, 0.9, 0.99, bias) == 2
    assert pick(scores, np.eye(5, dtype=bool)[3], 1.0, 0.9, 0.5) == 3


def test_sampling_obeys_grammar_bars_and_seed():
    torch.manual_seed(3)
    model = MusicTransformer(Config(n_layer=1, d_model=32, n_head=2, d_ff=64, ctx=1024, dropout=0.0)).eval()
    prompt = T.encode(chorale(2)).tokens
    def run(seed, use_cache=True):
        gs = [T.Grammar(4, [48, 48]) for _ in range(3)]
        return sample(model, prompt, gs, 2, temperature=1.0, top_p=0.9, seed=seed, n_header=5, use_cache=use_cache,
                      backend="onnx")
    a, b, c = run(7), run(7), run(8)
    assert a == b and a != c
    assert a[0] != a[1]  # takes in one batch differ
    for toks in a:
        assert toks[0] == T.BAR and toks.count(T.BAR) == 2
        T.check_sequence(prompt + toks)
    assert run(7, use_cache=False) == a  # the cache changes speed, not the result


def test_sampling_reads_denormal_floats_as_zero_and_sets_the_flag_back():
    torch.manual_seed(3)
    model = MusicTransformer(Config(n_layer=1, d_model=32, n_head=2, d_ff=64, ctx=256, dropout=0.0)).eval()
    tiny = torch.tensor([1e-30])
    seen = []

    class Watching(T.Grammar):
        def allowed(self):
            seen.append((tiny * 1e-10).item())  # 1e-40 is a denormal float32
            return super().allowed()

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    sample(model, T.encode(chorale(1)).tokens, [Watching(4, [48])], 1, seed=0, n_header=5, backend="onnx")
    assert seen and all(v == 0.0 for v in seen)  # flushed in the sampling thread
    assert (tiny * 1e-10).item() > 0  # and as before afterwards
    with pytest.raises(Cancelled):  # also when sampling stops early
        sample(model, T.encode(chorale(1)).tokens, [Watching(4, [48])], 1, seed=0, n_header=5, backend="onnx",
               progress=lambda fraction: False)
    assert (tiny * 1e-10).item() > 0


def test_continue_song_keeps_prompt_and_tracks(tiny_folder):
    song = chorale(4)
    takes = continue_api.continue_song(song, bars=2, takes=2, seed=5, folder=tiny_folder, device="cpu")
    assert len(takes) == 2
    end = 4 * 1920
    for take in takes:
        assert [(t.name, t.program, t.channel) for t in take.tracks] == [(t.name, t.program, t.channel) for t in song.tracks]
        for old, new in zip(song.tracks, take.tracks):
            assert [n for n in new.notes if n.start < end] == old.notes  # prompt untouched
            assert all(end <= n.start and n.end <= end + 2 * 1920 for n in new.notes if n.start >= end)
        assert take.note_count > song.note_count
    assert song.note_count == 64  # the input itself is not changed
    assert not takes[0].notes_equal(takes[1])


def test_continue_from_bar_replaces_only_those_bars(tiny_folder):
    song = chorale(6)
    song.fermatas = (1920 + 1440, 2 * 1920 + 1440, 4 * 1920 + 1440)  # bar 2, bar 3 (rewritten), bar 5
    take = continue_api.continue_song(song, bars=2, from_bar=3, seed=1, folder=tiny_folder, device="cpu")[0]
    for old, new in zip(song.tracks, take.tracks):
        assert [n for n in new.notes if n.start < 2 * 1920] == [n for n in old.notes if n.start < 2 * 1920]
        assert [n for n in new.notes if n.start >= 4 * 1920] == [n for n in old.notes if n.start >= 4 * 1920]
    # the rewritten bars' fermata went with its notes; the ones before and after stay
    assert take.fermatas == (1920 + 1440, 4 * 1920 + 1440)


def test_continue_song_in_three_four_keeps_bar_lines(tiny_folder):
    song = Song(tracks=[Track("Flute", 73, 0, notes=[Note(i * 480, 72 + i % 5, 480) for i in range(9)])],
                time_signatures=[TimeSignature(0, 3, 4)])
    take = continue_api.continue_song(song, bars=2, seed=3, folder=tiny_folder, device="cpu")[0]
    new = [n for n in take.tracks[0].notes if n.start >= 9 * 480]
    assert all(n.start < 15 * 480 and n.end <= 15 * 480 for n in new)


def test_bad_input_and_cancel(tiny_folder):
    with pytest.raises(StudioError):
        continue_api.continue_song(Song(), bars=2, folder=tiny_folder, device="cpu")
    for kw in ({"bars": 0}, {"takes": 0}, {"temperature": 0.0}, {"top_p": 1.5}, {"from_bar": 0}):
        with pytest.raises(StudioError):
            continue_api.continue_song(chorale(2), folder=tiny_folder, device="cpu", **kw)
    calls = []

    def progress(f):
        calls.append(f)
        return len(calls) < 5

    with pytest.raises(Cancelled):
        continue_api.continue_song(chorale(2), bars=4, seed=1, folder=tiny_folder, device="cpu", progress=progress)
    assert len(calls) == 5


def test_cli_continue_takes_and_errors(tiny_folder, tmp_path, studio_cli):
    from studio import io

    src = tmp_path / "in.mid"
    io.save(chorale(2), src)
    r = studio_cli(["continue", str(src), "-o", str(tmp_path / "out.mid"), "--bars", "1", "--takes", "2", "--seed", "3"],
             tiny_folder.parent)
    assert r.returncode == 0, r.stderr
    for i in (1, 2):
        song = io.load(tmp_path / f"out-{i}.mid")
        assert len(song.tracks) == 4 and song.note_count > 32
    r = studio_cli(["continue", str(tmp_path / "missing.mid"), "-o", str(tmp_path / "x.mid")], tiny_folder.parent)
    assert r.returncode == 2 and r.stderr.startswith("studio: error:") and len(r.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01")
    r = studio_cli(["continue", str(bad), "-o", str(tmp_path / "y.mid")], tiny_folder.parent)
    assert r.returncode == 2 and not (tmp_path / "y.mid").exists()
    r = studio_cli(["continue", str(src), "-o", str(tmp_path / "z.mid"), "--bars", "0"], tiny_folder.parent)
    assert r.returncode == 2 and "--bars" in r.stderr


def test_train_writes_weights_curve_and_resumes(tmp_path):
    from studio.ml.continuation import train as ct
    from studio.ml.corpus import CorpusPiece

    pieces = [CorpusPiece(f"p{i}", chorale(3 + i % 3), ("train", "train", "valid")[i % 3]) for i in range(9)]
    data = ct.tokenize_pieces(pieces)
    assert ct.summary(data)["valid_pieces"] == 3
    out = tmp_path / "run"
    from studio.ml.training import Run, fit

    run = Run(out, minutes=5.0, device="cpu", max_steps=4, checkpoint_minutes=1e9, log=lambda m: None)
    st = fit(ct.task(data, TINY, batch=2), run)
    assert st["step"] == 4
    for f in ("model.safetensors", "config.json", "state.pt", "log.jsonl", "learning_curve.png"):
        assert (out / f).exists(), f
    st = fit(ct.task(data, TINY, batch=2), Run(out, minutes=5.0, device="cpu", max_steps=2, resume=True,
                                               checkpoint_minutes=1e9, log=lambda m: None))
    assert st["step"] == 6 and st["tokens"] > 0  # resumed from step 4
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [4, 6]
    model, meta = checkpoint.load(out, lambda c: MusicTransformer(Config(**c)))
    assert meta["config"]["d_model"] == 32
    # without --config, going on from these weights (or this run) takes their configuration
    assert ct._config_of(out) == TINY and ct._config_of(None) == Config() and ct._config_of(tmp_path) == Config()


def test_transposition_keeps_pitches_in_range():
    from studio.ml.continuation import train as ct

    seq = np.array(T.encode(chorale(2)).tokens)
    rng = np.random.default_rng(0)
    shifts = {ct.allowed_shift(seq, rng) for _ in range(200)}
    assert shifts <= set(range(-5, 7)) and len(shifts) > 6
    up = ct.transpose(seq, 3)
    m = (seq >= T.PITCH0) & (seq < T.VEL0)
    assert np.all(up[m] == seq[m] + 3) and np.all(up[~m] == seq[~m])


def test_shipped_weights_continue_a_chorale():
    folder = checkpoint.model_dir("continuation")
    if not (folder / "model.safetensors").exists():
        pytest.skip("no shipped continuation weights yet")
    song = chorale(4)
    c_major = {0, 2, 4, 5, 7, 9, 11}
    for t in song.tracks:  # the fixture's alto and bass lie a semitone off: put all four voices in C major
        t.notes = [Note(n.start, n.pitch + 1, n.duration) if n.pitch % 12 not in c_major else n for n in t.notes]
    for seed in (0, 1):  # a trained model stays in the key and writes only the bars asked for
        take = continue_api.continue_song(song, bars=2, seed=seed, device="cpu")[0]
        new = [n for t in take.tracks for n in t.notes if n.start >= 4 * 1920]
        assert new and all(n.start < 6 * 1920 for n in new)
        assert np.mean([n.pitch % 12 in c_major for n in new]) >= 0.8


def test_key_prior_leans_toward_the_prompt_pitch_classes():
    scale = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64]  # C major, C E G most
    song = Song(tracks=[Track("p", notes=[Note(i * 480, p, 480) for i, p in enumerate(scale)])])
    end = song.end_tick
    assert continue_api.key_bias(song, end, 0.0) is None
    b = continue_api.key_bias(song, end, 1.0)
    assert b.shape == (12,) and b[0] > b[1] and b[7] > b[6]  # C and G over C# and F#
    drums = Song(tracks=[Track("kit", is_drum=True, notes=[Note(0, 36, 480)])])
    assert continue_api.key_bias(drums, 480, 1.0) is None  # drum notes are instruments, not pitches
    g = T.Grammar(2, [48], None, None, b, drums=[False, True])
    for tok in (T.BAR, T.POS0, T.TRACK0):
        g.step(tok)
    assert g.logit_bias() is not None and g.logit_bias()[T.PITCH0 + 60] == pytest.approx(b[0])
    g2 = T.Grammar(2, [48], None, None, b, drums=[False, True])
    for tok in (T.BAR, T.POS0, T.TRACK0 + 1):
        g2.step(tok)
    assert g2.logit_bias() is None


def test_key_strength_is_checked(tiny_folder):
    with pytest.raises(StudioError, match="key strength"):
        continue_api.continue_song(chorale(2), bars=1, folder=tiny_folder, key_strength=-1)
    out = continue_api.continue_song(chorale(2), bars=1, folder=tiny_folder, key_strength=2.0, seed=1)
    assert len(out) == 1


def test_decoder_nll_fp32_graph_equals_the_model_nll(tmp_path, monkeypatch):
    """Teacher-forced NLL through the ONNX decoding graphs: the fp32 graph scores exactly what the
    model scores on the same windows (restarts at bars included); the int8 copy comes close."""
    from studio.ml.continuation import eval as ce
    from studio.ml.continuation import decode as continuation_ort
    from studio.ml.continuation import train as ct
    from studio.ml.corpus import CorpusPiece

    if not continuation_ort.available():
        pytest.skip("onnxruntime is not installed")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    torch.manual_seed(5)
    model = MusicTransformer(TINY).eval()
    data = ct.tokenize_pieces([CorpusPiece(f"p{i}", chorale(6 + i), "test") for i in range(3)])
    windows = ce.heldout_windows(data, TINY.ctx, "test")
    assert len(windows) > 3 and any(lo > 0 for _w, lo, _hi in windows)  # long pieces restart at bars
    want = ce.heldout_nll(model, data, "test")
    got = ce.decoder_nll(model, data, windows=len(windows))
    assert got["windows"] == len(windows) and got["tokens"] == want["tokens"]
    assert got["nll_fp32"] == pytest.approx(want["nll_nats_per_token"], abs=1e-4)
    assert got["nll_int8"] == pytest.approx(want["nll_nats_per_token"], abs=0.05)
    assert 0 <= got["kl_fp32_to_int8"] < 0.05


def test_old_graphs_are_pruned_from_the_cache(tmp_path):
    """Each set of weights leaves its exported graphs; the ones used longest ago go."""
    import os

    from studio.ml import paths

    def make(name, age):
        f = tmp_path / name
        f.write_bytes(b"x")
        os.utime(f, (1e9 - age, 1e9 - age))
        return f

    for i in range(9):  # older keys have larger i
        make(f"continuation-k{i}.onnx", i * 100)
        make(f"continuation-k{i}-int8.onnx", i * 100 + 1)
    make("harmonizer-h0.onnx", 5000)  # another model's graph is not counted
    busy = make("continuation-k8.tmp123", 9000)  # a graph being written
    paths.graph_in_use(tmp_path / "continuation-k7-int8.onnx", keep=3)  # old, but used now
    left = sorted(f.name for f in tmp_path.iterdir())
    assert left == ["continuation-k0-int8.onnx", "continuation-k0.onnx", "continuation-k1-int8.onnx",
                    "continuation-k1.onnx", "continuation-k7-int8.onnx", "continuation-k7.onnx",
                    "continuation-k8.tmp123", "harmonizer-h0.onnx"]
    assert busy.exists()
    paths.graph_in_use(tmp_path / "missing-k1.onnx")  # nothing there: nothing happens
