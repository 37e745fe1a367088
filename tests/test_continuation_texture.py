"""The continuation's texture rules and controls: one line stays one line, drums stay drums,
ranges, density, the cadence, takes that differ, and the memory past the context."""


import numpy as np
import pytest
import torch

from studio.core.song import Note, Song, Track
from studio.ml import checkpoint
from studio.ml.continuation import texture as X
from studio.ml.continuation import tokens as T
from studio.ml.continuation.families import (copy_take, key_corr, line_intervals, line_overlaps, line_parallels,
                                             overlap_area, window_figures)
from studio.ml.continuation.model import Config, MusicTransformer

TINY = Config(n_layer=1, d_model=32, n_head=2, d_ff=64, ctx=64, dropout=0.0)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "continuation"
    torch.manual_seed(0)
    checkpoint.save(MusicTransformer(TINY), TINY, folder)
    return folder


def quartet(n_bars=4) -> Song:
    """Violin and viola one line each (eighths / quarters), piano in chords, a drum track."""
    vl = [Note(i * 240, 72 + (0, 2, 4, 5, 7, 5, 4, 2)[i % 8], 240) for i in range(8 * n_bars)]
    va = [Note(i * 480, 60 + (0, 4, 7, 4)[i % 4], 480) for i in range(4 * n_bars)]
    pno = [Note(b * 1920 + h * 960, p, 960) for b in range(n_bars) for h in range(2) for p in (48, 52, 55)]
    dr = [Note(i * 480, (36, 42, 38, 42)[i % 4], 120) for i in range(4 * n_bars)]
    return Song(title="q", tracks=[Track("Violin", 40, 0, notes=vl), Track("Viola", 41, 1, notes=va),
                                   Track("Piano", 0, 2, notes=pno), Track("Drums", 0, 9, notes=dr, is_drum=True)])


def _grammar(song, bars=4, cadence=False, density=None, margin=5):
    unit = T.unit_ticks(song)
    region = 4 * 1920
    tex = X.describe_tracks(song, region, len(song.tracks), unit, margin)
    if density:
        tex.density = density
    if cadence:
        from studio.core.timing import bars as song_bars

        tex.cadence = X.cadence_plan(song, region, song_bars(song, until=region), len(song.tracks))
    return X.TextureGrammar(len(song.tracks), [48] * bars, None, tex), tex


def _random_walk(g, rng, n_bars, max_tokens=6000, scores=None):
    """Sample through the grammar with random scores (any model could give them)."""
    out = []
    for _ in range(max_tokens):
        m = g.allowed()
        z = rng.normal(size=T.VOCAB_SIZE) * 3 if scores is None else scores(g)
        b = g.logit_bias()
        if b is not None:
            z = z + b
        z = np.where(m, z, -np.inf)
        tok = int(np.argmax(z))
        if tok == T.BAR and g.bars_done == n_bars:
            break
        g.step(tok)
        out.append(tok)
    return out


def test_describe_tracks_finds_lines_chords_and_kits():
    s = quartet()
    tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
    assert tex.lines == [True, True, False, False]
    assert tex.drums == [False, False, False, True]
    assert tex.drum_pitches[3] == [36, 38, 42]
    assert tex.ranges[0] == (72 - 5, 79 + 5)


@pytest.mark.parametrize("seed", range(6))
def test_a_line_stays_one_line_and_drums_stay_drums(seed):
    s = quartet()
    g, tex = _grammar(s)
    toks = _random_walk(g, np.random.default_rng(seed), 4)
    starts = [4 * 1920 + 1920 * k for k in range(4)]
    per_track = T.decode_notes([T.BAR] + toks[1:] if toks[0] == T.BAR else toks, starts, T.unit_ticks(s), 4)
    for t in (0, 1):  # no chord and no note starting while another sounds, whatever the scores
        ns = sorted(per_track[t])
        assert len({n.start for n in ns}) == len(ns)
        assert all(a.end <= b.start for a, b in zip(ns, ns[1:]))
    assert {n.pitch for n in per_track[3]} <= {36, 38, 42}
    for t in (0, 1, 2):
        lo, hi = tex.ranges[t]
        assert all(lo <= n.pitch <= hi for n in per_track[t])


def test_a_held_prompt_note_keeps_its_line_waiting():
    s = quartet()
    s.tracks[1].notes[-1] = Note(s.tracks[1].notes[-1].start, 64, 480 + 1920)  # held a bar into the new bars
    g, tex = _grammar(s)
    assert tex.busy[1] == 48
    toks = _random_walk(g, np.random.default_rng(0), 4)
    per_track = T.decode_notes(toks, [4 * 1920 + 1920 * k for k in range(4)], T.unit_ticks(s), 4)
    assert all(n.start >= 5 * 1920 for n in per_track[1])


@pytest.mark.parametrize("seed", range(6))
def test_cadence_ends_on_the_tonic_chord_with_every_active_track(seed):
    s = quartet()  # C major
    g, tex = _grammar(s, cadence=True)
    assert tex.cadence["tonic"] == 0 and not tex.cadence["minor"]
    toks = _random_walk(g, np.random.default_rng(seed), 4)
    last = 4 * 1920 + 3 * 1920
    per_track = T.decode_notes(toks, [4 * 1920 + 1920 * k for k in range(4)], T.unit_ticks(s), 4)
    bass = tex.cadence["bass"]
    for t in tex.cadence["active"]:
        final = [n for n in per_track[t] if n.start >= last]
        assert final and all(n.start == last and n.end >= last + 1920 for n in final)
        assert all(n.pitch % 12 in ({0} if t == bass else {0, 4, 7}) for n in final)
    for t in (0, 1):  # the lines end in time for the final chord
        assert all(n.end <= last for n in per_track[t] if n.start < last)


def test_density_control_moves_the_note_count():
    s = quartet()
    counts = {}
    for name in ("sparser", "as before", "denser"):
        f = X.density_factor(name)
        n = 0
        for seed in range(8):
            g, _ = _grammar(s, density=[f] * 4)
            n += sum(1 for t in _random_walk(g, np.random.default_rng(seed), 4) if t >= T.DUR0)
        counts[name] = n
    assert counts["sparser"] < counts["as before"] < counts["denser"]
    with pytest.raises(ValueError):
        X.density_factor("louder")


def test_held_density_follows_the_rate_before_times_the_factor():
    s = quartet()
    rates = [len(tr.notes) / (4 * 48) for tr in s.tracks]
    counts = []
    for f in (0.6, 1.0, 1.6):
        n = 0
        for seed in range(6):
            tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
            tex.density, tex.rates = [f] * 4, rates
            g = X.TextureGrammar(4, [48] * 4, None, tex)
            n += sum(1 for t in _random_walk(g, np.random.default_rng(seed), 4) if t >= T.DUR0)
        counts.append(n)
    assert counts[0] < counts[1] < counts[2]


def test_held_density_counts_the_onset_at_hand():
    """A chord on the first onset is what the rate asks for, not a track ahead of it."""
    s = quartet()
    tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
    tex.rates, tex.gaps = [0.0, 0.0, 6 / 48, 0.0], [1.0, 1.0, 24.0, 1.0]  # the piano: 3 notes every 24 units
    g = X.TextureGrammar(4, [48] * 4, None, tex)
    for tok in (T.BAR, T.POS0, T.TRACK0 + 2, T.PITCH0 + 48, T.VEL0 + 3, T.dur_token(24), T.PITCH0 + 52,
                T.VEL0 + 3, T.dur_token(24)):
        g.step(tok)
    b = g.logit_bias()  # two notes of three written at the first onset: a third is favoured
    assert b[T.PITCH0 + 55] > 0


def test_held_density_stops_a_track_far_ahead_of_its_rate():
    s = quartet()
    tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
    tex.rates, tex.gaps = [1 / 48, 1 / 12, 0.0, 0.0], [48.0, 12.0, 1.0, 1.0]  # the violin: one note a bar
    g = X.TextureGrammar(4, [48] * 4, None, tex)
    g.step(T.BAR)
    g.step(T.POS0)
    assert g.allowed()[T.TRACK0]  # its first note is due
    for tok in (T.TRACK0, T.PITCH0 + 72, T.VEL0 + 3, T.dur_token(6)):
        g.step(tok)
    assert g.allowed()[T.TRACK0 + 1]  # the viola may play at the same onset
    g.step(T.POS0 + 6)
    assert g.allowed()[T.TRACK0]  # one note ahead is let through
    for tok in (T.TRACK0, T.PITCH0 + 74, T.VEL0 + 3, T.dur_token(6)):
        g.step(tok)
    g.step(T.POS0 + 12)
    m = g.allowed()
    assert not m[T.TRACK0] and m[T.TRACK0 + 1]  # a third violin note in the bar would run far ahead


def test_context_priors_lean_to_the_track_register_and_rhythm():
    s = quartet()
    pitch, dur = X.context_priors(s, 0, 4 * 1920, 4, T.unit_ticks(s))
    assert pitch[3] is None and dur[3] is None  # drums: their pitches are instruments
    vl = pitch[0]
    assert vl[76] > 0 and vl[77] > 0 and vl[84] < vl[79] < vl[77] and vl[40] < -2 and vl[100] < -2
    q = np.exp(vl) / np.exp(vl).sum()
    assert abs(float((q * vl).sum())) < 1e-4  # zero on average over the prior's own distribution
    eighth, whole = T.dur_token(6) - T.DUR0, T.dur_token(48) - T.DUR0
    assert dur[0][eighth] > 0 > dur[0][whole]  # the violin plays eighths
    assert dur[2][T.dur_token(24) - T.DUR0] > dur[2][eighth]  # the piano half notes


def test_chord_sizes_come_from_the_track_before():
    s = quartet()
    sizes = X.chord_sizes(s, 0, 4 * 1920, 4)
    assert sizes[2][2] == 1.0 and sizes[0][0] == 1.0 and sizes[3] is None
    tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
    tex.chords = sizes
    for seed in range(4):
        g = X.TextureGrammar(4, [48] * 4, None, tex, seed=seed)
        toks = _random_walk(g, np.random.default_rng(seed), 4)
        per_track = T.decode_notes(toks, [4 * 1920 + 1920 * k for k in range(4)], T.unit_ticks(s), 4)
        onsets = {}
        for n in per_track[2]:
            onsets[n.start] = onsets.get(n.start, 0) + 1
        assert onsets and set(onsets.values()) == {3}  # every piano onset a three-note chord


def test_pitch_and_duration_sampling_per_phase():
    s = quartet()
    tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
    g = X.TextureGrammar(4, [48] * 4, None, tex, rhythm=(1.0, 1.0), melody=(1.2, 0.95), onsets=(0.9, None))
    seen = {}
    for tok in (T.BAR, T.POS0, T.TRACK0, T.PITCH0 + 72, T.VEL0 + 3, T.dur_token(6)):
        seen[g.phase] = g.sampling(0.8, 0.9)
        g.step(tok)
    seen[g.phase] = g.sampling(0.8, 0.9)
    assert seen["track"] == (1.2, 0.95) and seen["vel"] == (1.0, 1.0) and seen["pitch"] == (0.8, 0.9)
    assert seen["bar"] == seen["pos"] == seen["dur"] == (0.9, None)


def test_estimate_key_and_same_take():
    c_major = np.array([5, 0, 3, 0, 4, 3, 0, 5, 0, 3, 0, 2], float)
    assert X.estimate_key(c_major) == (0, False)
    a_minor = np.roll(np.array([5, 0, 3, 4, 0, 3, 0, 5, 3, 0, 2, 1], float), 9)
    assert X.estimate_key(a_minor) == (9, True)
    a = [[Note(0, 60, 10), Note(10, 62, 10)], []]
    assert X.same_take(a, [list(a[0]), []])
    assert not X.same_take(a, [[Note(0, 60, 10), Note(10, 64, 10)], []])


def test_figures_on_known_material():
    s = quartet(8)
    start, end = 4 * 1920, 8 * 1920
    lines = [True, True, False, False]
    same = window_figures(s, s, start, end, lines)
    assert same["pitch_oa"] == pytest.approx(1.0) and same["dur_oa"] == pytest.approx(1.0)
    assert same["density"] == 1.0 and same["overlap_bad"] == 0
    bad = s.copy()
    bad.tracks[0].notes.append(Note(start + 100, 90, 480))  # a second note over a line
    assert line_overlaps(bad, start, end, lines)[0] == 4  # it and the three eighths it sounds over
    assert overlap_area(np.array([1.0, 0]), np.array([0, 1.0])) == 0.0
    cp = copy_take(s, 0, start, end)  # the quartet repeats every bar: the copy is the real music
    assert window_figures(cp, s, start, end, lines)["pitch_oa"] == pytest.approx(1.0)
    assert key_corr(s.tracks[0].notes, s.tracks[0].notes) == pytest.approx(1.0)
    # motion: the violin moves by steps only (C D E F G F E D), the viola by thirds and fourths
    assert same["motion_oa"] == pytest.approx(1.0) and same["steps"] == same["steps_real"]
    assert line_intervals(s, start, end, lines)[1:3].sum() > 0
    leaps = s.copy()
    leaps.tracks[0].notes = [Note(n.start, 72 + 7 * (i % 2), n.duration) for i, n in enumerate(leaps.tracks[0].notes)]
    f = window_figures(leaps, s, start, end, lines)
    assert f["steps"] < f["steps_real"] and f["motion_oa"] < 1.0
    # parallels: the violin doubled an octave lower in the viola's place
    par = s.copy()
    par.tracks[1].notes = [Note(n.start, n.pitch - 12, n.duration) for n in s.tracks[0].notes]
    bad_n, notes = line_parallels(par, start, end, lines)
    assert notes == 2 * 8 * 4 and bad_n > 20 and line_parallels(s, start, end, lines)[0] == 0


@pytest.mark.parametrize("grow", [128, 8])  # 8: the buffers grow many times on the way
def test_memory_decoding_matches_the_full_forward(tmp_path, monkeypatch, grow):
    """Past the context the cache keeps ``memory`` more positions: the ONNX step over the larger
    cache gives the logits of the full forward pass with distances clamped (Transformer-XL)."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path))
    from studio.ml.continuation import decode

    monkeypatch.setattr(decode, "GROW", grow)
    torch.manual_seed(3)
    model = MusicTransformer(TINY).eval()
    n = 100  # more than ctx = 64
    x = torch.randint(4, T.VOCAB_SIZE, (1, n))
    with torch.no_grad():
        full = model(x)[0][0]  # every position sees all before it (distances clamped at ctx-1)
        cache = model.new_cache(memory=64)
        model.forward_cached(x[:, :10], cache)
        dec = decode.OrtDecoder(model, 1, "fp32", memory=64)
        dec.start(cache, 0)
        outs = [dec.step(np.array([int(x[0, i])])) for i in range(10, n)]
    got = np.concatenate(outs[:-1])
    assert np.allclose(got, full[10:n - 1].numpy(), atol=1e-3)


def test_continue_song_keeps_lines_and_takes_differ(tiny_folder):
    from studio.ml.continuation.api import continue_song

    s = quartet()
    takes = continue_song(s, bars=2, takes=3, seed=4, folder=tiny_folder, device="cpu", cadence=True,
                          density=["denser", "as before", "sparser", "as before"], keep_range=True, memory=32)
    for t in takes:
        for ti in (0, 1):
            ns = sorted(n for n in t.tracks[ti].notes if n.start >= 4 * 1920)
            assert all(a.end <= b.start for a, b in zip(ns, ns[1:]))
            lo, hi = min(n.pitch for n in s.tracks[ti].notes), max(n.pitch for n in s.tracks[ti].notes)
            assert all(lo <= n.pitch <= hi for n in ns)  # keep range: no margin
    new = [[[n for n in tr.notes if n.start >= 4 * 1920] for tr in t.tracks] for t in takes]
    assert all(any(ns for ns in take) for take in new)
    assert not any(X.same_take(new[i], new[j]) for i in range(3) for j in range(i))


def test_smooth_lines_moves_the_lines_by_their_own_intervals(tiny_folder):
    from studio.core.errors import StudioError
    from studio.ml.continuation.api import continue_song

    s = quartet(8)  # the violin moves by steps
    steps = {}
    for strength in (0.0, 4.0):
        n = total = 0
        for seed in range(3):
            t = continue_song(s, bars=2, seed=seed, folder=tiny_folder, device="cpu", motion_strength=strength)[0]
            ps = [x.pitch for x in sorted(t.tracks[0].notes) if x.start >= 8 * 1920 - 240]
            d = np.abs(np.diff(ps))
            n, total = n + int(((d >= 1) & (d <= 2)).sum()), total + len(d)
        steps[strength] = n / max(1, total)
    assert steps[4.0] > steps[0.0] + 0.2  # an untrained model: the prior alone makes the difference
    with pytest.raises(StudioError, match="motion strength"):
        continue_song(s, bars=1, folder=tiny_folder, device="cpu", motion_strength=11)


def test_redrawn_take_when_two_repeat(tiny_folder, monkeypatch):
    """A take that repeats an earlier one is drawn again with another seed."""
    from studio.ml.continuation import api

    from studio.ml.continuation import model as M

    calls = []

    orig = M.sample

    def twice_the_same(model, prompt, grammars, n_bars, **kw):
        calls.append((len(grammars), kw["seed"]))
        out = orig(model, prompt, grammars[:1], n_bars, **kw)
        return out * len(grammars) if len(calls) == 1 else orig(model, prompt, grammars, n_bars, **kw)

    monkeypatch.setattr(M, "sample", twice_the_same)
    takes = api.continue_song(quartet(), bars=1, takes=2, seed=9, folder=tiny_folder, device="cpu")
    assert calls[0] == (2, 9) and calls[1][0] == 1 and calls[1][1] != 9
    assert not takes[0].notes_equal(takes[1])


def test_cli_density_range_and_cadence(tiny_folder, tmp_path, studio_cli):
    from studio import io

    src = tmp_path / "in.mid"
    io.save(quartet(), src)
    out = tmp_path / "out.mid"
    r = studio_cli(["continue", str(src), "-o", str(out), "--bars", "2", "--seed", "1", "--density", "1=denser,3=sparser",
              "--keep-range", "--cadence"], tiny_folder.parent)
    assert r.returncode == 0, r.stderr
    assert io.load(out).note_count > quartet().note_count
    free = tmp_path / "free.mid"
    r = studio_cli(["continue", str(src), "-o", str(free), "--bars", "2", "--seed", "1", "--free-density"], tiny_folder.parent)
    assert r.returncode == 0, r.stderr
    assert io.load(free).note_count > quartet().note_count
    smooth = tmp_path / "smooth.mid"
    r = studio_cli(["continue", str(src), "-o", str(smooth), "--bars", "2", "--seed", "1", "--smooth-lines"],
                   tiny_folder.parent)
    assert r.returncode == 0, r.stderr
    assert io.load(smooth).note_count > quartet().note_count
    for bad, word in (("louder", "density"), ("9=denser", "track 9"), ("x=denser", "TRACK=LEVEL")):
        r = studio_cli(["continue", str(src), "-o", str(tmp_path / "bad.mid"), "--density", bad], tiny_folder.parent)
        assert r.returncode == 2 and r.stderr.startswith("studio: error: --density") and word in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.mid").exists()


def test_a_silent_track_enters_at_the_playing_tracks_rate():
    """The viola is silent before: free to enter; from its entry it is held like the others, to
    ENTRY_RATE times the mean rate of the tracks that played."""
    s = quartet()
    s.tracks[1].notes = []
    tex = X.describe_tracks(s, 4 * 1920, 4, T.unit_ticks(s), 5)
    tex.rates, tex.gaps = [1 / 12, None, 1 / 12, None], [12.0, 1.0, 12.0, 1.0]
    g = X.TextureGrammar(4, [48] * 4, None, tex)
    assert g.waiting.tolist() == [False, True, False, False]  # not the drums
    g.step(T.BAR)
    g.step(T.POS0 + 12)
    assert g.allowed()[T.TRACK0 + 1]
    b = g.logit_bias()
    assert b is None or b[T.TRACK0 + 1] == 0  # no push to enter while it waits
    for tok in (T.TRACK0 + 1, T.PITCH0 + 60, T.VEL0 + 3, T.dur_token(2)):
        g.step(tok)
    assert g.held[1] and g.entry[1] == 12 and g.target[1] == pytest.approx(X.ENTRY_RATE / 12)
    g.step(T.POS0 + 14)
    assert g.allowed()[T.TRACK0 + 1]  # a second note soon after its entry is let through
    for tok in (T.TRACK0 + 1, T.PITCH0 + 62, T.VEL0 + 3, T.dur_token(2)):
        g.step(tok)
    g.step(T.POS0 + 16)
    m = g.allowed()
    assert not m[T.TRACK0 + 1] and m[T.TRACK0]  # a third would run far ahead of its rate; the violin may play


def _lines(pitches_a, pitches_b, dur=480):
    a = [Note(i * dur, p, dur) for i, p in enumerate(pitches_a)]
    b = [Note(i * dur, p, dur) for i, p in enumerate(pitches_b)]
    return Song(title="two", tracks=[Track("Soprano", 52, 0, notes=a), Track("Bass", 52, 1, notes=b)])


def _two_line_grammar(s, region):
    unit = T.unit_ticks(s)
    tex = X.describe_tracks(s, region, 2, unit, 12)
    tex.tail, tex.doubled = X.voice_leading(s, 0, region, 2, unit, tex.lines)
    return X.TextureGrammar(2, [48] * 2, None, tex), tex


def test_no_parallel_fifths_or_octaves_between_lines():
    from studio.core import voiceleading

    # contrary and oblique motion before (no doubling), ending on G5 over C3, a fifth
    s = _lines([72, 71, 72, 74, 76, 77, 76, 79], [48, 50, 48, 47, 45, 50, 52, 48])
    g, tex = _two_line_grammar(s, 8 * 480)
    assert tex.lines == [True, True] and tex.doubled == set()
    for tok in (T.BAR, T.POS0, T.TRACK0, T.PITCH0 + 77, T.VEL0 + 3, T.dur_token(12), T.TRACK0 + 1):
        g.step(tok)
    m = g.allowed()  # the soprano falls G5 -> F5: the bass may not fall from C3 to B-flat (a fifth again)
    assert not m[T.PITCH0 + 46] and not m[T.PITCH0 + 34]
    assert m[T.PITCH0 + 45] and m[T.PITCH0 + 48] and m[T.PITCH0 + 58]  # another interval, oblique, contrary
    def fond_of_fifths(g):  # scores that put the bass a fifth or an octave under the soprano's new note
        z = rng.normal(size=T.VOCAB_SIZE) * 3
        top = g.vl_notes[0]
        if g.phase == "dur" and g.track == 0:
            z[T.TRACK0 + 1] += 20  # both voices move at each onset
        if g.phase == "track" and g.track == 1 and top and top[-1][0] == g._at(g.pos):
            p = np.arange(128)
            z[T.PITCH0:T.VEL0] += 20 * np.isin(np.abs(top[-1][2] - p) % 12, (0, 7))
        return z

    for seed in range(6):  # whatever the scores, no parallels arrive in the new bars
        g, _ = _two_line_grammar(s, 8 * 480)
        rng = np.random.default_rng(seed)
        toks = _random_walk(g, rng, 2, scores=fond_of_fifths)
        per_track = T.decode_notes(toks, [8 * 480, 12 * 480], T.unit_ticks(s), 2)
        parts = [s.tracks[i].notes + per_track[i] for i in range(2)]
        issues = [i for i in voiceleading.check(parts, 480, beats=[]) if i.kind.startswith("parallel")]
        assert not [i for i in issues if i.end >= 8 * 480], issues


def test_a_doubling_before_keeps_its_octaves():
    s = _lines([72, 74, 76, 77, 79, 77, 76, 74], [60, 62, 64, 65, 67, 65, 64, 62])  # in octaves throughout
    g, tex = _two_line_grammar(s, 8 * 480)
    assert (0, 1, 0) in tex.doubled
    for tok in (T.BAR, T.POS0, T.TRACK0, T.PITCH0 + 72, T.VEL0 + 3, T.dur_token(12), T.TRACK0 + 1):
        g.step(tok)
    assert g.allowed()[T.PITCH0 + 60]  # D -> C in both: the octave doubling goes on


def test_a_line_keeps_its_motion():
    """A soprano that moved by steps: the next pitch a step away gains over a leap or a repeat;
    a bass that leapt by fourths and fifths: the other way round."""
    s = _lines([72, 74, 76, 77, 76, 74, 72, 74], [48, 53, 48, 55, 48, 53, 43, 48])
    unit = T.unit_ticks(s)
    tex = X.describe_tracks(s, 8 * 480, 2, unit, 12)
    tex.tail, tex.doubled = X.voice_leading(s, 0, 8 * 480, 2, unit, tex.lines)
    tex.motion = X.motion_priors(s, 0, 8 * 480, 2, tex.lines)
    g = X.TextureGrammar(2, [48] * 2, None, tex)
    for tok in (T.BAR, T.POS0, T.TRACK0):
        g.step(tok)
    b = g.logit_bias()[T.PITCH0:T.PITCH0 + 128]  # the soprano's last pitch: D5 (74)
    assert b[72] > b[74] and b[76] > b[81] and b[75] > b[67]
    for tok in (T.PITCH0 + 76, T.VEL0 + 3, T.dur_token(12), T.TRACK0 + 1):
        g.step(tok)
    b = g.logit_bias()[T.PITCH0:T.PITCH0 + 128]  # the bass's last pitch: C3 (48)
    assert b[53] > b[50] and b[43] > b[47]
    g2 = X.TextureGrammar(2, [48] * 2, None, X.describe_tracks(s, 8 * 480, 2, unit, 12))
    for tok in (T.BAR, T.POS0, T.TRACK0):
        g2.step(tok)
    assert g2.logit_bias() is None  # no prior asked for, none given
    assert X.motion_priors(s, 0, 3 * 480, 2, tex.lines) == [None, None]  # too few intervals to tell
