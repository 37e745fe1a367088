"""The variation model, its sampler and the vary API, with tiny untrained models (no real training)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from studio.core.errors import Cancelled, StudioError
from studio.core.song import KeySignature, Note, Song, TimeSignature, Track
from studio.ml.variation import roll as R
from studio.ml.variation import model as V
from studio.ml.variation import api as vary_api

Q = 480
TINY = V.Config(d_model=32, n_layers=1, n_heads=2, mlp_mult=2)


def tiny_model(seed: int = 0) -> V.VariationModel:
    torch.manual_seed(seed)
    return V.build(TINY).eval()


def quartet(bars: int = 8) -> Song:
    """A little four-track piece in G major, 4/4: a melody, two inner parts, a bass with a chord track."""
    g_major = [67, 69, 71, 72, 74, 72, 71, 69]
    mel = [Note(i * Q, g_major[i % 8], Q, 90) for i in range(bars * 4)]
    alto = [Note(i * 2 * Q, [62, 64, 62, 60][i % 4], 2 * Q, 70) for i in range(bars * 2)]
    chords = [Note(i * 4 * Q, p, 4 * Q, 60) for i in range(bars) for p in (55, 59, 62)]
    bass = [Note(i * 2 * Q + 120, [43, 47, 48, 50][i % 4], 2 * Q - 120, 75) for i in range(bars * 2)]  # off the beat
    return Song(title="q", tracks=[Track("Violin", 40, notes=mel), Track("Viola", 41, notes=alto),
                                   Track("Piano", 0, notes=chords), Track("Cello", 42, notes=bass)],
                time_signatures=[TimeSignature(0, 4, 4)], key_signatures=[KeySignature(0, 1, False)])


def outside(song: Song, start: int, end: int, tracks) -> list[list[Note]]:
    return [[n for n in t.notes if not (i in tracks and start <= n.start < end)] for i, t in enumerate(song.tracks)]


# ---- the network ---------------------------------------------------------------------
def test_forward_shape_and_padding_does_not_leak():
    m = tiny_model()
    K, T, P = 2, 24, R.N_PITCH
    cells = torch.randint(0, 3, (1, K, T, P))
    masked = torch.rand(1, K, T, P) < 0.3
    scale = torch.zeros(1, 12, dtype=torch.bool)
    scale[0, [0, 2, 4, 5, 7, 9, 11]] = True
    pos = torch.arange(T)[None] % 16
    blen = torch.full((1, T), 16)
    mono = torch.tensor([[True, False]])
    out = m(cells, masked, scale, pos, blen, mono)
    assert out.shape == (1, K, T, P, 3)
    # a padded track and padded steps must not change what the real ones see
    cells2 = torch.cat([cells, torch.randint(0, 3, (1, 1, T, P))], 1)
    cells2 = torch.cat([cells2, torch.randint(0, 3, (1, 3, 5, P))], 2)
    masked2 = torch.zeros(1, 3, T + 5, P, dtype=torch.bool)
    masked2[:, :K, :T] = masked
    out2 = m(cells2, masked2, scale, torch.cat([pos, torch.zeros(1, 5, dtype=torch.long)], 1),
             torch.cat([blen, blen[:, :5]], 1), torch.tensor([[True, False, True]]),
             time_valid=torch.arange(T + 5)[None] < T, track_valid=torch.tensor([[True, True, False]]))
    assert torch.allclose(out, out2[:, :K, :T], atol=1e-5)


def test_masked_cell_values_are_ignored():
    m = tiny_model()
    cells = torch.randint(0, 3, (1, 1, 16, R.N_PITCH))
    masked = torch.zeros_like(cells, dtype=torch.bool)
    masked[..., 4:9, :] = True
    other = cells.clone()
    other[masked] = (other[masked] + 1) % 3
    args = (torch.zeros(1, 12, dtype=torch.bool), torch.zeros(1, 16, dtype=torch.long),
            torch.full((1, 16), 16), torch.tensor([[False]]))
    assert torch.equal(m(cells, masked, *args), m(other, masked, *args))


# ---- the sampler ---------------------------------------------------------------------
def test_sample_columns_obeys_the_constraints():
    torch.manual_seed(0)
    N, P = 400, R.N_PITCH
    logp = torch.log_softmax(torch.randn(N, P, 3) * 3, -1)
    allowed = torch.rand(N, P) < 0.5
    prev = torch.rand(N, P) < 0.2
    nxt = torch.zeros(N, P, dtype=torch.bool)
    mono = torch.arange(N) % 2 == 0
    out = V.sample_columns(logp, allowed, prev, nxt, mono, generator=torch.Generator().manual_seed(1))
    assert not ((out == R.ONSET) & ~allowed).any()
    assert not ((out == R.HOLD) & ~prev).any()
    assert ((out[mono] != R.REST).sum(-1) <= 1).all()
    assert (out[~mono] != R.REST).sum() > (out[mono] != R.REST).sum()  # polyphonic columns may hold chords
    # a known held note on the next step forces this cell to sound
    nxt = torch.zeros(N, P, dtype=torch.bool)
    nxt[:, 30] = True
    allowed[:, 30] = True
    out = V.sample_columns(logp, allowed, prev, nxt, mono)
    assert (out[:, 30] != R.REST).all()


def test_denoise_fills_masked_cells_only_and_is_reproducible():
    m = tiny_model()
    song = quartet(4)
    r = R.song_to_roll(song)
    cells = torch.from_numpy(r.cells.astype(np.int64))
    masked = torch.zeros_like(cells, dtype=torch.bool)
    masked[1:3, 8:40] = True
    args = (torch.from_numpy(r.scale), torch.from_numpy(r.bar_pos), torch.from_numpy(r.bar_len),
            torch.from_numpy(r.mono), torch.ones(4, R.N_PITCH, dtype=torch.bool))
    a = V.denoise(m, cells, masked, *args, n_iters=4, generator=torch.Generator().manual_seed(3))
    b = V.denoise(m, cells, masked, *args, n_iters=4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(a[~masked], cells[~masked])
    calls = []
    assert V.denoise(m, cells, masked, *args, n_iters=5, progress=lambda f: calls.append(f) or len(calls) < 2) is None
    assert len(calls) == 2


# ---- the vary API --------------------------------------------------------------------
def test_strength_zero_returns_the_input():
    song = quartet()
    outs = vary_api.vary(song, 0.0, takes=2, model=tiny_model())
    assert len(outs) == 2 and all(o.notes_equal(song) and o is not song for o in outs)


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0])
def test_context_and_locked_notes_stay_exact(strength):
    song = quartet()
    start, end, tracks = 8 * Q, 20 * Q, [0, 2, 3]
    locked = {(0, song.tracks[0].notes[10]), (3, song.tracks[3].notes[5]), (2, song.tracks[2].notes[7])}
    before = song.copy()
    out = vary_api.vary(song, strength, start_tick=start, end_tick=end, tracks=tracks, locked=locked, seed=5,
                        model=tiny_model())[0]
    assert song.notes_equal(before)  # the input is not touched
    assert outside(out, start, end, tracks) == outside(song, start, end, tracks)
    for ti, n in locked:
        assert n in out.tracks[ti].notes
    assert out.end_tick <= song.end_tick
    # new notes only use the key's scale (G major) or pitch classes the selection already had
    allowed = set(np.nonzero(R.key_scale(KeySignature(0, 1, False)))[0])
    allowed |= {n.pitch % 12 for i in tracks for n in song.tracks[i].notes if start <= n.start < end}
    for i in tracks:
        for n in out.tracks[i].notes:
            if start <= n.start < end:
                assert n.pitch % 12 in allowed
                assert n.start % 120 == 0 or n in song.tracks[i].notes


def test_takes_are_reproducible_by_seed_and_differ_from_each_other():
    song, m = quartet(), tiny_model()
    a = vary_api.vary(song, 1.0, takes=2, seed=11, model=m)
    b = vary_api.vary(song, 1.0, takes=2, seed=11, model=m)
    assert a[0].notes_equal(b[0]) and a[1].notes_equal(b[1])
    assert not a[0].notes_equal(a[1])


def test_low_strength_keeps_more_than_full_strength():
    song, m = quartet(), tiny_model()

    def kept(s):
        out = vary_api.vary(song, s, seed=2, model=m)[0]
        src = {(i, n.start, n.pitch) for i, t in enumerate(song.tracks) for n in t.notes}
        return len(src & {(i, n.start, n.pitch) for i, t in enumerate(out.tracks) for n in t.notes}) / len(src)

    assert kept(0.1) > kept(1.0)


def test_progress_reports_and_cancels():
    song, seen = quartet(), []
    vary_api.vary(song, 0.5, seed=1, model=tiny_model(), progress=lambda f: seen.append(f) or True)
    assert seen and seen[-1] == pytest.approx(1.0) and seen == sorted(seen)
    with pytest.raises(Cancelled):
        vary_api.vary(song, 0.5, seed=1, model=tiny_model(), progress=lambda f: False)


def test_long_selection_and_many_tracks_are_processed_in_pieces():
    song = quartet(20)  # 320 steps: three windows
    song.tracks += [t.copy() for t in song.tracks] + [Track("Drums", is_drum=True, channel=9, notes=[Note(0, 36, 120)])]
    out = vary_api.vary(song, 1.0, seed=0, model=tiny_model())[0]
    assert len(out.tracks) == 9 and out.tracks[8].notes == song.tracks[8].notes
    assert all(any(n.start >= 300 * 120 for n in t.notes) for t in out.tracks[:8] if t.notes)


@pytest.mark.parametrize("kwargs, message", [
    (dict(strength=1.5), "between 0 and 1"),
    (dict(strength=-0.1), "between 0 and 1"),
    (dict(strength=0.5, start_tick=960, end_tick=960), "empty"),
    (dict(strength=0.5, start_tick=10**7, end_tick=10**7 + 10), "after the end"),
    (dict(strength=0.5, tracks=[7]), "no track 8"),
    (dict(strength=0.5, tracks=[]), "no track"),
])
def test_bad_requests_are_user_errors(kwargs, message):
    with pytest.raises(StudioError, match=message):
        vary_api.vary(quartet(), model=tiny_model(), **kwargs)


def test_only_drums_selected_is_a_user_error():
    song = quartet()
    song.tracks.append(Track("Drums", is_drum=True, channel=9, notes=[Note(0, 36, 120)]))
    with pytest.raises(StudioError, match="drum"):
        vary_api.vary(song, 0.5, tracks=[4], model=tiny_model())


def test_a_selected_note_just_before_the_end_that_rounds_past_it_is_not_lost():
    song = quartet()
    start, end = 8 * Q, 16 * Q
    edge = Note(end - 30, 71, 200, 64)  # rounds to the first step after the selection
    song.tracks[0].add(edge)
    for s in (0.3, 1.0):
        out = vary_api.vary(song, s, start_tick=start, end_tick=end, tracks=[0], seed=4, model=tiny_model())[0]
        assert edge in out.tracks[0].notes


# ---- the event sampler: notes in the passage's own vocabulary --------------------------
from itertools import combinations  # noqa: E402

from studio.ml.variation import sample as VS  # noqa: E402


def test_log_esp_and_subset_sampling_match_brute_force():
    rng = np.random.default_rng(0)
    lw = rng.normal(size=6)
    E = VS.log_esp(lw, 3)
    for m in range(4):
        brute = sum(np.exp(sum(lw[list(c)])) for c in combinations(range(6), m))
        assert np.exp(E[m]) == pytest.approx(brute, rel=1e-9)
    counts: dict = {}
    for _ in range(4000):
        c = tuple(VS.sample_subset(lw, 2, rng))
        counts[c] = counts.get(c, 0) + 1
    z = np.exp(E[2])
    for c in combinations(range(6), 2):
        assert counts.get(c, 0) / 4000 == pytest.approx(np.exp(sum(lw[list(c)])) / z, abs=0.03)


def test_forward_filtering_backward_sampling_draws_paths_by_their_weight():
    rng = np.random.default_rng(1)
    S, n = 2, 4
    trans = rng.normal(size=(S, S))
    kinds = ["M", "T", "D", "S"]
    edges = []
    for i in range(n - 1):
        for j in range(i + 1, min(n, i + 3)):
            kind = kinds[(i + j) % 4]
            w = {"M": rng.normal(size=(S, S)), "T": rng.normal(size=S), "D": float(rng.normal()),
                 "S": rng.normal(size=S)}[kind]
            edges.append((i, j, kind, w, (i, j)))

    def weight(kind, w, s, s2):
        if kind == "M":
            return w[s, s2]
        if kind == "T":
            return trans[s, s2] + w[s2]
        if kind == "D":
            return w if s == s2 else -np.inf
        return w[s] if s2 == s + 1 else -np.inf
    init, final = np.array([0.0, -0.5]), np.array([0.3, 0.0])

    def paths(i, s, w):  # every path from (position i, state s): (key, log weight)
        if i == n - 1:
            yield (), w + final[s]
            return
        for a, b, kind, ew, _ in edges:
            if a == i:
                for s2 in range(S):
                    if weight(kind, ew, s, s2) == -np.inf:
                        continue
                    for rest, w2 in paths(b, s2, w + weight(kind, ew, s, s2)):
                        yield ((a, b, s2),) + rest, w2

    exact = {}
    for s0 in range(S):
        for key, w in paths(0, s0, init[s0]):
            exact[(s0,) + key] = exact.get((s0,) + key, 0.0) + np.exp(w)
    # the sampler returns (i, j, state at j): compare marginals over (edges, states) keys
    marg: dict = {}
    for k, v in exact.items():
        marg[k[1:]] = marg.get(k[1:], 0.0) + v
    z = sum(marg.values())
    counts: dict = {}
    for _ in range(3000):
        p = VS.ffbs(n, edges, S, init, final, rng, trans)
        key = tuple((i, j, int(s)) for i, j, s, _ in p)
        counts[key] = counts.get(key, 0) + 1
    for key, v in marg.items():
        assert counts.get(key, 0) / 3000 == pytest.approx(v / z, abs=0.03)


def test_grid_and_lengths_come_from_the_passage():
    pos = np.arange(64) % 16
    quarters = [(s, s + 4, 60) for s in range(0, 32, 4)] + [(32, 40, 62)]
    v = VS.analyse(quarters, pos, 0.3, True, "free")
    assert v.grid == 4 and v.note_lengths == [4, 8] and v.rest_lengths == []
    eighths = quarters + [(40, 42, 64), (42, 44, 65)]
    assert VS.analyse(eighths, pos, 0.3, True, "free").grid == 2
    wide = VS.analyse(quarters + [(44, 56, 60)], pos, 1.0, True, "free")
    assert wide.note_lengths == [4, 8, 12]  # at high strength: any multiple of the grid in the range used


def melody(bars: int = 8) -> Song:
    """A plain quarter-note melody in C major (one track)."""
    line = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 71, 67, 65, 64]
    notes = [Note(i * Q, line[i % 16], Q, 80) for i in range(bars * 4)]
    return Song(title="m", tracks=[Track("Flute", 73, notes=notes)], time_signatures=[TimeSignature(0, 4, 4)],
                key_signatures=[KeySignature(0, 0, False)])


@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
def test_a_quarter_note_melody_stays_on_quarters_without_rests(strength):
    song = melody()
    start, end = 8 * Q, 24 * Q
    for seed in range(3):
        out = vary_api.vary(song, strength, start_tick=start, end_tick=end, seed=seed, model=tiny_model(seed))[0]
        notes = out.tracks[0].notes
        assert all(n.start % Q == 0 and n.duration % Q == 0 for n in notes)
        if strength < 0.5:
            assert all(n.duration == Q for n in notes)  # the passage's own lengths only
        # one voice, and no rest anywhere in the line
        assert all(a.end == b.start for a, b in zip(notes, notes[1:]))


@pytest.mark.parametrize("strength", [0.25, 0.5, 1.0])
def test_texture_is_kept_single_lines_stay_single_chords_stay_chords(strength):
    song = quartet()
    out = vary_api.vary(song, strength, seed=3, model=tiny_model(1))[0]
    for i in (0, 1, 3):  # one-voice tracks: no two notes sound at once
        ns = out.tracks[i].notes
        assert all(a.end <= b.start for a, b in zip(ns, ns[1:])), i
    chords: dict = {}
    for n in out.tracks[2].notes:
        chords.setdefault(n.start, []).append(n)
    assert all(len(c) == 3 for c in chords.values())  # the chord track keeps its three-note chords


def test_keep_rhythm_changes_pitches_only():
    song = melody()
    start, end = 8 * Q, 24 * Q
    out = vary_api.vary(song, 1.0, start_tick=start, end_tick=end, seed=4, model=tiny_model(2), mode="rhythm")[0]
    sel = lambda s: [n for n in s.tracks[0].notes if start <= n.start < end]  # noqa: E731
    assert [(n.start, n.duration) for n in sel(out)] == [(n.start, n.duration) for n in sel(song)]
    assert [n.pitch for n in sel(out)] != [n.pitch for n in sel(song)]


def test_keep_pitches_changes_the_rhythm_only():
    song = melody()
    start, end = 8 * Q, 24 * Q
    sel = lambda s: [n for n in s.tracks[0].notes if start <= n.start < end]  # noqa: E731
    changed = False
    for seed in range(3):
        out = vary_api.vary(song, 1.0, start_tick=start, end_tick=end, seed=seed, model=tiny_model(seed),
                            mode="pitches")[0]
        assert [n.pitch for n in sel(out)] == [n.pitch for n in sel(song)]
        assert all(n.start % (Q // 2) == 0 for n in sel(out))  # a new rhythm: on the next finer division
        changed |= [(n.start, n.duration) for n in sel(out)] != [(n.start, n.duration) for n in sel(song)]
    assert changed


def test_an_unknown_mode_is_a_user_error():
    with pytest.raises(StudioError, match="mode"):
        vary_api.vary(quartet(), 0.5, model=tiny_model(), mode="upside-down")


def test_texture_figures_count_overlaps_off_grid_notes_and_short_rests():
    from studio.ml.variation import eval_texture as ET

    song = melody(4)
    start, end = 4 * Q, 12 * Q
    out = song.copy()
    sel = [n for n in out.tracks[0].notes if start <= n.start < end]
    # one new note a 16th late and a 16th short (off the quarter grid, leaving a 16th rest), one
    # new note laid over its neighbour (an overlap in a one-voice line)
    a, b = sel[1], sel[3]
    out.tracks[0].notes = sorted([n for n in out.tracks[0].notes if n not in (a, b)]
                                 + [Note(a.start + Q // 4, 70, Q - Q // 4, 80), Note(b.start, 71, 2 * Q, 80)])
    assert ET.grid_ticks(sel, song, end) == Q
    m = ET.passage_figures(song, out, start, end, [0], set())
    r = ET.summarize([m])
    assert r["new_notes"] == 2 and r["new_on_source_grid"] == 0.5
    assert r["single_line_overlap_new"] == 0.5  # the long one overlaps the next note
    assert m["short_rests"] == 1 and m["short_rests_source"] == 0
    assert r["kept"] == (len(sel) - 2) / len(sel)


# ---- a song that starts with a pickup ------------------------------------------------------------
def test_the_bar_grid_counts_a_pickup_as_the_end_of_a_bar():
    song = melody(2)
    song.pickup = Q // 2  # an eighth-note upbeat: bar 1 starts at tick 240 (step 2)
    pos, length = R.meter_steps(song, 20)
    assert list(pos[:4]) == [14, 15, 0, 1] and list(length[:4]) == [16] * 4 and pos[18] == 0
    song.time_signatures = [TimeSignature(0, 3, 4), TimeSignature(Q + 3 * Q, 2, 4)]
    song.pickup = Q  # a quarter upbeat in 3/4, then a 3/4 bar, then 2/4
    pos, length = R.meter_steps(song, 28)
    assert list(pos[:6]) == [8, 9, 10, 11, 0, 1] and list(length[:5]) == [12] * 5
    assert pos[16] == 0 and length[16] == 8 and pos[24] == 0


@pytest.mark.parametrize("strength", [0.6, 1.0])
def test_a_selection_after_a_pickup_is_varied_on_the_real_bar_grid(strength):
    """An eighth-note upbeat (in the guitar), then a tune of quarters, halves and quarter rests on
    the beats of the real bars: its variations keep their notes on those beats."""
    up = Q // 2
    phrase = [(60, 1), (62, 1), (None, 1), (64, 1), (65, 2), (67, 1), (None, 1), (64, 1), (62, 1), (60, 2)]
    tune, t = [], up
    for k in range(8):
        for p, d in phrase if k % 2 == 0 else phrase[::-1]:
            if p:
                tune.append(Note(t, p, d * Q, 80))
            t += d * Q
    guitar = [Note(0, 55, up, 70)] + [Note(up + k * 4 * Q, 48, 4 * Q, 70) for k in range(16)]
    song = Song(title="m", tracks=[Track("Flute", 73, notes=tune), Track("Guitar", 24, notes=guitar)],
                time_signatures=[TimeSignature(0, 4, 4)], key_signatures=[KeySignature(0, 0, False)], pickup=up)
    start, end = up + 8 * Q, up + 24 * Q
    for seed in range(6):
        out = vary_api.vary(song, strength, start_tick=start, end_tick=end, tracks=[0], seed=seed,
                            model=tiny_model(seed))[0]
        notes = [n for n in out.tracks[0].notes if start <= n.start < end]
        assert notes and all((n.start - up) % Q == 0 for n in notes), [(n.start, n.duration) for n in notes]
