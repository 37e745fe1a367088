"""Texture and cadence figures of a four-part setting, on hand-written chorale fragments."""

from studio.core.song import Note
from studio.ml.harmonizer import figures

Q, E = 480, 240  # quarter and eighth at 480 ppq


def line(*notes):
    """(pitch, ticks) pairs one after another from tick 0."""
    out, t = [], 0
    for p, d in notes:
        out.append(Note(t, p, d))
        t += d
    return out


def cadence_in_c(last_bass=48):
    """Four beats in C major: I - IV - V7 - I, the alto passing on the first beat's off-beat."""
    s = line((72, Q), (72, Q), (71, Q), (72, Q))
    a = line((67, E), (65, E), (65, Q), (65, Q), (64, Q))  # G-F passing, then F (IV), F (the V7's seventh), E
    t = line((64, Q), (60, Q), (62, Q), (60, Q))
    b = line((48, Q), (53, Q), (55, Q), (last_bass, Q))
    return [s, a, t, b]


def test_hand_counted_figures():
    c = figures.piece(cadence_in_c(), 480, key=(0, False))
    r = figures.rates(c)
    assert c["beats"] == 4
    assert r["offbeat_motion"] == 1 / 4  # only the alto's F on the first beat's off-beat
    assert c["bass_intervals"] == 3 and c["bass_steps"] == 1  # C-F leap, F-G step, G-C leap
    assert c["seventh_beats"] == 1  # G B D F on beat 3
    assert c["sonorities"] == 4  # {C E G}, {C F} (IV without its third), G7, {C E}
    assert c["atb_onsets"] == 13 and r["inner_onsets_per_beat"] == 13 / 12
    assert c["final_authentic"] == 1


def test_final_cadence_needs_dominant_then_tonic_in_the_bass():
    assert figures.piece(cadence_in_c(last_bass=45), 480, key=(0, False))["final_authentic"] == 0  # V - vi
    parts = cadence_in_c()
    assert figures.piece(parts, 480, key=(9, True))["final_authentic"] == 0  # not V - I of A minor


def test_key_of_melodies():
    c_major = [60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60]
    assert figures.key_of(c_major) == (0, False)
    a_minor = [69, 71, 72, 74, 76, 72, 69, 68, 69, 64, 69]
    assert figures.key_of(a_minor) == (9, True)


def test_summary_is_a_mean_over_pieces_and_counts_major_keys():
    a = figures.piece(cadence_in_c(), 480, key=(0, False))
    b = figures.piece(cadence_in_c(last_bass=45), 480, key=(9, True))
    s = figures.summarize([a, b])
    assert s["pieces"] == 2 and s["major_pieces"] == 1
    assert s["final_authentic_cadence"] == 0.5 and s["final_authentic_cadence_major"] == 1.0
    assert s["bass_by_step"] == round((1 / 3 + 1 / 3) / 2, 3)
