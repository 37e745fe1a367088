"""Recording: played messages become notes in ticks (count-in, tempo, overdub/replace, loop
takes, sustain), step input, the metronome's clicks on the rendered audio, MIDI input ports
(hot-plug, none at all), and the record controls in the editor driven by a fake MIDI port."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from studio.audio.midiin import FakeSource, MidiInput
from studio.core import edits
from studio.core.recording import OVERDUB, REPLACE, Recorder, count_in_seconds
from studio.core.song import Note, Song, TempoChange, TimeSignature, Track
from studio.core.stepinput import StepInput, parse_note_name

PHRASE = [(0, 60, 1.0), (1, 62, 0.5), (1.5, 64, 0.5), (2, 65, 2.0)]  # (beat, pitch, beats held)
EXPECTED = [Note(0, 60, 480, 100), Note(480, 62, 240, 100), Note(720, 64, 240, 100), Note(960, 65, 960, 100)]


def song_at(bpm: float, meter=(4, 4), notes=()) -> Song:
    return Song(tempos=[TempoChange(0, bpm)], time_signatures=[TimeSignature(0, *meter)],
                tracks=[Track("Piano", notes=list(notes))])


def play(rec: Recorder, phrase, bpm: float, offset: float, start_beat: float = 0.0, jitter=None) -> None:
    """Feed ``phrase`` as played at ``bpm``, its beat 0 ``offset`` seconds into the clock."""
    spb = 60.0 / bpm
    events = []
    for i, (beat, pitch, held) in enumerate(phrase):
        j = 0.0 if jitter is None else jitter[i]
        events.append((offset + (beat - start_beat) * spb + j, mido.Message("note_on", note=pitch, velocity=100)))
        events.append((offset + (beat - start_beat + held) * spb - 0.0001, mido.Message("note_off", note=pitch)))
    for t, msg in sorted(events, key=lambda e: e[0]):
        rec.feed(msg, t)


# ---- the recorder ------------------------------------------------------------------------------
@pytest.mark.parametrize("bpm", [120.0, 75.0])
@pytest.mark.parametrize("count_in", [0, 1, 2])
def test_phrase_lands_on_its_ticks_at_two_tempos_count_in_excluded(bpm, count_in):
    song = song_at(bpm)
    rec = Recorder(song, 0, start_tick=0, count_in_bars=count_in)
    assert rec.count_in == pytest.approx(count_in * 4 * 60.0 / bpm)
    if count_in:
        rec.feed(mido.Message("note_on", note=40, velocity=90), 0.01)  # noodling during the count-in
        rec.feed(mido.Message("note_off", note=40), 0.3)
    play(rec, PHRASE, bpm, rec.count_in)
    takes = rec.finish(rec.count_in + 5 * 60 / bpm)
    assert len(takes) == 1
    assert [n.pitch for n in takes[0].notes] == [60, 62, 64, 65]
    for got, want in zip(takes[0].notes, EXPECTED):
        assert abs(got.start - want.start) <= 1 and abs(got.duration - want.duration) <= 1


def test_recording_from_the_middle_of_a_song_through_a_tempo_change():
    song = song_at(120.0)
    song.tempos.append(TempoChange(1920, 60.0))  # bar 2 is half as fast
    rec = Recorder(song, 0, start_tick=1440, count_in_bars=1)  # beat 4 of bar 1
    # beat 4 of bar 1 at 120 bpm lasts 0.5 s, then quarters last 1 s
    t = rec.count_in
    rec.feed(mido.Message("note_on", note=60, velocity=80), t)
    rec.feed(mido.Message("note_off", note=60), t + 0.5)
    rec.feed(mido.Message("note_on", note=67, velocity=80), t + 0.5 + 1.0)
    rec.feed(mido.Message("note_off", note=67), t + 0.5 + 2.0)
    (take,) = rec.finish(t + 4)
    assert [(n.start, n.pitch, n.duration) for n in take.notes] == [(1440, 60, 480), (2400, 67, 480)]


def test_timing_is_kept_as_played_and_input_quantize_is_optional():
    song = song_at(120.0)
    jitter = [0.012, -0.02, 0.03, 0.0]  # seconds early/late, as a person plays
    raw = Recorder(song, 0, count_in_bars=1)
    play(raw, PHRASE, 120.0, raw.count_in, jitter=jitter)
    raw.finish(raw.count_in + 3)
    starts = [n.start for n in raw.take_notes(raw.takes[0])]
    assert starts == [round(0.012 * 960), 480 - round(0.02 * 960), 720 + round(0.03 * 960), 960]
    q = Recorder(song, 0, count_in_bars=1, quantize=120)
    play(q, PHRASE, 120.0, q.count_in, jitter=jitter)
    q.finish(q.count_in + 3)
    assert [n.start for n in q.take_notes(q.takes[0])] == [0, 480, 720, 960]


def test_a_note_struck_just_before_the_downbeat_counts_as_on_it():
    song = song_at(120.0)
    rec = Recorder(song, 0, count_in_bars=1)
    rec.feed(mido.Message("note_on", note=60, velocity=80), rec.count_in - 0.03)
    rec.feed(mido.Message("note_off", note=60), rec.count_in + 0.5)
    (take,) = rec.finish(rec.count_in + 1)
    assert take.notes == [Note(0, 60, 480, 80)]


def test_overdub_keeps_and_replace_removes_what_was_in_the_span():
    old = [Note(0, 48, 480), Note(960, 50, 480), Note(3840, 52, 480)]  # the last is after the take
    for mode, kept in ((OVERDUB, old), (REPLACE, [old[2]])):
        song = song_at(120.0, notes=old)
        rec = Recorder(song, 0, count_in_bars=1, mode=mode)
        play(rec, PHRASE, 120.0, rec.count_in)
        rec.finish(rec.count_in + 4 * 0.5)  # stopped at the end of bar 1
        change = rec.change(song)
        edits.apply(song, change)
        assert sorted(song.tracks[0].notes) == sorted(kept + EXPECTED), mode


def test_loop_recording_makes_one_take_per_pass():
    song = song_at(120.0)
    rec = Recorder(song, 0, start_tick=0, count_in_bars=1, loop=(0, 1920))
    bar = 2.0  # seconds
    t0 = rec.count_in
    for k, pitch in enumerate((60, 64, 67)):  # one note per pass, on beat 2
        rec.feed(mido.Message("note_on", note=pitch, velocity=90), t0 + k * bar + 0.5)
        rec.feed(mido.Message("note_off", note=pitch), t0 + k * bar + 1.0)
    rec.feed(mido.Message("note_on", note=72, velocity=90), t0 + 3 * bar - 0.25)  # held over the loop's end
    rec.feed(mido.Message("note_off", note=72), t0 + 3 * bar + 0.5)
    assert rec.position(t0 + 2 * bar + 0.5) == 480  # the playhead wraps
    takes = rec.finish(t0 + 3 * bar + 1.0)
    assert [[(n.start, n.pitch) for n in tk.notes] for tk in takes] == [[(480, 60)], [(480, 64)], [(480, 67), (1680, 72)]]
    assert takes[2].notes[-1].end == 1920  # cut at the loop's end
    assert all((tk.start, tk.end) == (0, 1920) for tk in takes)
    assert rec.change(song).added == tuple(takes[-1].notes)  # the last take goes in


def test_sustain_pedal_is_kept_as_controller_events():
    song = song_at(120.0)
    rec = Recorder(song, 0, count_in_bars=0)
    rec.feed(mido.Message("note_on", note=60, velocity=90), 0.0)
    rec.feed(mido.Message("control_change", control=64, value=127), 0.25)
    rec.feed(mido.Message("note_off", note=60), 0.5)
    rec.feed(mido.Message("control_change", control=64, value=0), 1.0)
    rec.feed(mido.Message("control_change", control=64, value=100), 1.25)  # down again, and still down at the stop
    (take,) = rec.finish(1.5)
    assert [(c.tick, c.control, c.value) for c in take.sustain] == [(240, 64, 127), (960, 64, 0), (1200, 64, 100),
                                                                    (1440, 64, 0)]


def test_count_in_is_whole_bars_of_the_meter_at_the_start():
    assert count_in_seconds(song_at(120.0, (6, 8)), 0, 1) == pytest.approx(1.5)
    assert count_in_seconds(song_at(90.0, (3, 4)), 0, 2) == pytest.approx(4.0)


# ---- step input ---------------------------------------------------------------------------------
def test_step_input_of_a_chord_and_a_rest():
    step = StepInput(0, cursor=0, length=240)
    song = song_at(120.0)
    for p in (60, 64, 67):  # a chord: keys held together
        assert step.feed(mido.Message("note_on", note=p, velocity=80)) is None
    assert step.feed(mido.Message("note_off", note=60)) is None
    assert step.feed(mido.Message("note_off", note=64)) is None
    chord = step.feed(mido.Message("note_off", note=67))
    edits.apply(song, chord)
    step.rest()
    step.feed(mido.Message("note_on", note=62, velocity=70))
    edits.apply(song, step.feed(mido.Message("note_off", note=62)))
    edits.apply(song, step.note(parse_note_name("b", step.last_pitch)))
    assert song.tracks[0].notes == [Note(0, 60, 240, 80), Note(0, 64, 240, 80), Note(0, 67, 240, 80),
                                    Note(480, 62, 240, 70), Note(720, 59, 240, 90)]
    assert step.cursor == 960


def test_note_names():
    assert parse_note_name("c", 60) == 60 and parse_note_name("b", 60) == 59 and parse_note_name("f", 60) == 65
    assert parse_note_name("F#4") == 66 and parse_note_name("Eb3") == 51 and parse_note_name("c'", 60) == 72
    assert parse_note_name("h") is None and parse_note_name("c99") is None


# ---- MIDI input ports ---------------------------------------------------------------------------
def test_hot_plug_and_no_midi_input():
    got = []
    src = FakeSource(names=())
    midi = MidiInput(lambda msg, t: got.append((msg, t)), src)
    midi.poll()
    assert not midi.available and midi.reason == "no MIDI input device is connected"
    assert not midi.poll()  # nothing changed: nothing to say again
    src.ports.append("USB Keyboard")  # plugged in later
    assert midi.poll() and midi.available and midi.port_name == "USB Keyboard"
    src.port().send(mido.Message("note_on", note=60, velocity=64), 1.0)
    src.port().send(mido.Message("clock"), 1.1)  # dropped: nothing uses it
    assert [(m.type, t) for m, t in got] == [("note_on", 1.0)]
    src.ports.remove("USB Keyboard")  # unplugged
    assert midi.poll() and not midi.available
    src.unavailable = "this system has no MIDI sequencer (no /dev/snd/seq)"
    midi.poll()
    assert midi.reason == src.unavailable


def test_the_chosen_port_is_used_when_it_appears():
    src = FakeSource(names=("A",))
    midi = MidiInput(lambda *_: None, src, wanted="B")
    midi.poll()
    assert midi.port_name == "A"  # the chosen one is not there: the one that is
    src.ports.append("B")
    midi.poll()
    assert midi.port_name == "B" and src.opened["A"].closed


def test_the_real_backend_says_why_there_is_no_midi_here():
    from studio.audio.midiin import MidiUnavailable, RtMidiSource

    try:
        names = RtMidiSource().names()
    except MidiUnavailable as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert isinstance(names, list)


# ---- the metronome, rendered --------------------------------------------------------------------
def _onsets(audio: np.ndarray, sr: int, min_gap: float = 0.1, fraction: float = 0.05) -> list[float]:
    """Onset times (s) found in the signal alone: where the magnitude first reaches ``fraction``
    of the loudest click after at least ``min_gap`` s of near-silence."""
    mag = np.abs(audio.mean(axis=1))
    thresh = fraction * float(mag.max())
    above = np.nonzero(mag >= thresh)[0]
    out, last = [], -10 ** 9
    for i in above:
        if i - last > min_gap * sr:
            out.append(i / sr)
        last = i
    return out


@pytest.mark.parametrize("meter,bpm,beat_seconds,per_bar", [((4, 4), 120.0, 0.5, 4), ((6, 8), 90.0, 1.0, 2),
                                                             ((4, 4), 97.0, 60 / 97, 4)])
def test_metronome_clicks_on_the_beats_within_2_ms(meter, bpm, beat_seconds, per_bar):
    from studio.audio.metronome import ACCENT_KEY, click_events, render_clicks
    from studio.audio.synth import bundled_soundfont, fluidsynth_available

    ok, why = fluidsynth_available()
    if not ok:
        pytest.skip(why)
    sr = 44100
    song = song_at(bpm, meter)
    bar = TimeSignature(0, *meter).bar_ticks()
    audio, clicks = render_clicks(song, 0, 2 * bar, count_in_bars=1, soundfont=bundled_soundfont(), sample_rate=sr)
    # one bar of count-in and two bars: clicks on every beat, the downbeats accented
    want = [k * beat_seconds for k in range(3 * per_bar)]
    assert [c.seconds for c in clicks] == pytest.approx(want)
    assert [c.accent for c in clicks] == [k % per_bar == 0 for k in range(3 * per_bar)]
    assert [c.tick for c in clicks][per_bar] == 0  # the count-in is before the start tick
    found = _onsets(audio, sr)
    assert len(found) == len(want)
    err_ms = [1000 * abs(f - w) for f, w in zip(found, want)]
    assert max(err_ms) <= 2.0, err_ms
    # the accent is another sound: the downbeat clicks differ from the others
    keys = [ev[3] for ev in click_events(clicks, sr) if ev[1]]
    assert keys == [ACCENT_KEY if c.accent else keys[1] for c in clicks] and keys[1] != ACCENT_KEY
    # its own volume: half the volume is quieter, none is silence
    quiet, _ = render_clicks(song, 0, bar, soundfont=bundled_soundfont(), sample_rate=sr, volume=0.3)
    loud, _ = render_clicks(song, 0, bar, soundfont=bundled_soundfont(), sample_rate=sr, volume=1.0)
    assert np.abs(quiet).max() < 0.7 * np.abs(loud).max()
    silent, _ = render_clicks(song, 0, bar, soundfont=bundled_soundfont(), sample_rate=sr, volume=0.0)
    assert np.abs(silent).max() == 0.0


def test_record_schedules_count_in_then_song_and_clicks():
    from studio.audio.metronome import METRONOME_CHANNEL, record_schedules

    song = song_at(120.0, notes=[Note(0, 60, 480)])
    first, again = record_schedules(song, [0], 44100, 0, count_in_bars=1, metronome=True, volume=0.8)
    lead = 2 * 44100  # one bar at 120 bpm
    song_on = [ev for ev in first.events if ev[2] == 0 and ev[1] is True]
    assert song_on == [(lead, True, 0, 60, 80)]
    click_frames = [ev[0] for ev in first.events if ev[2] == METRONOME_CHANNEL and ev[1] is True]
    assert click_frames[:5] == [round(k * 22050 / 64) * 64 for k in range(5)]
    assert first.start_seconds == pytest.approx(-2.0) and again is None
    off, _ = record_schedules(song, [0], 44100, 0, count_in_bars=1, metronome=False)
    clicks_off = [ev[0] for ev in off.events if ev[2] == METRONOME_CHANNEL and ev[1] is True]
    assert len(clicks_off) == 4  # the count-in still counts in
    _first, loop = record_schedules(song, [0], 44100, 0, loop=(0, 1920))
    assert loop is not None and loop.length == 2 * 44100


def test_midi_thru_sounds_in_the_next_audio_block():
    from studio.audio.metronome import onset_frame
    from studio.audio.player import Engine
    from studio.audio.synth import Synth, bundled_soundfont, fluidsynth_available

    ok, why = fluidsynth_available()
    if not ok:
        pytest.skip(why)
    block = 512
    with Synth(bundled_soundfont(), 44100, channels=64) as synth:
        eng = Engine(synth)
        eng.process(np.zeros((block, 2), np.float32))
        eng.post(("thru", True, 0, False, 60, 100))  # a key pressed on the keyboard, piano
        out = np.zeros((block, 2), np.float32)
        eng.process(out)
        f = onset_frame(out.mean(axis=1))
        assert f is not None and f < 256  # audible within 6 ms of the block's start
        eng.post(("thru", False, 0, False, 60, 0))
        eng.post(("thru", True, 73, False, 72, 100))  # the track's instrument changed: flute
        eng.process(out)
        assert synth.program_of(62) == (0, 73)


def test_the_count_in_counts_the_metronome_beats():
    rec = Recorder(song_at(90.0, (6, 8)), 0, count_in_bars=2)  # dotted quarters: 1 s each
    assert [rec.count_in_beat(t, 720) for t in (0.0, 0.99, 1.01, 3.5, 4.01)] == [1, 1, 2, 4, None]


def test_without_python_rtmidi_midi_input_says_so(monkeypatch):
    import builtins

    from studio.audio import midiin

    real_import = builtins.__import__

    def no_rtmidi(name, *args, **kwargs):
        if name == "rtmidi":
            raise ModuleNotFoundError("No module named 'rtmidi'", name="rtmidi")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(midiin, "_availability", None)
    monkeypatch.setattr(builtins, "__import__", no_rtmidi)
    ok, why = midiin.midi_available()
    assert not ok and "python-rtmidi is not installed" in why
    midi = MidiInput(lambda *_: None, midiin.RtMidiSource())
    midi.poll()
    assert not midi.available and midi.reason == why
    monkeypatch.setattr(midiin, "_availability", None)


def _changing_song():
    """A one-beat pickup in 4/4 at 120 bpm; from tick 2400 (bar 2) 3/4 at 60 bpm."""
    from studio.core.song import Song, TempoChange, Track

    song = Song(tracks=[Track("Piano", notes=[Note(0, 67, 480), Note(480, 60, 5000)])],
                tempos=[TempoChange(0, 120.0), TempoChange(2400, 60.0)],
                time_signatures=[TimeSignature(0, 4, 4), TimeSignature(2400, 3, 4)])
    song.pickup = 480
    return song


def test_playback_clicks_follow_tempo_meter_and_pickup():
    from studio.audio.metronome import ACCENT_KEY, BEAT_KEY, METRONOME_CHANNEL, clicks, with_clicks
    from studio.audio.schedule import build_schedule

    song = _changing_song()
    cl = clicks(song, 0, 5280)
    # the pickup is beat 4 (no bell); bar 1 in 4/4; bar 2 in 3/4 at half the speed
    assert [(c.tick, c.accent) for c in cl] == [(0, False), (480, True), (960, False), (1440, False), (1920, False),
                                                (2400, True), (2880, False), (3360, False), (3840, True),
                                                (4320, False), (4800, False)]
    assert [c.seconds for c in cl] == pytest.approx([0, .5, 1, 1.5, 2, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5])
    sr = 44100
    sched = with_clicks(build_schedule(song, [0], sr, 960, 4800), song, volume=0.5)
    on = [(f, key) for f, kind, ch, key, _v in sched.events if ch == METRONOME_CHANNEL and kind is True]
    want = [(s - 1.0, ACCENT_KEY if a else BEAT_KEY) for s, a in
            [(1, False), (1.5, False), (2, False), (2.5, True), (3.5, False), (4.5, False), (5.5, True), (6.5, False)]]
    assert [k for _f, k in on] == [k for _s, k in want]
    assert [f / sr for f, _k in on] == pytest.approx([s for s, _k in want], abs=64 / sr)
    assert [ev for ev in sched.events if ev[2] == 0] == [ev for ev in build_schedule(song, [0], sr, 960, 4800).events]


def test_player_adds_the_clicks_when_the_metronome_is_on(monkeypatch):
    from studio.audio.metronome import METRONOME_CHANNEL
    from studio.audio.player import Player

    monkeypatch.setenv("STUDIO_NO_AUDIO", "1")
    p = Player(preload=False)
    got = []
    monkeypatch.setattr(p, "prepare", lambda: True)
    monkeypatch.setattr(p, "play_schedules", lambda song, first, loop, tempo, programs, lp=None: got.append(
        (first, loop, programs)) or True)
    monkeypatch.setattr(Player, "playing", property(lambda self: True))
    monkeypatch.setattr(p, "position_tick", lambda: 960.0)
    song = _changing_song()

    def clicks_in(s):
        return [ev[0] for ev in s.events if ev[2] == METRONOME_CHANNEL and ev[1] is True]

    p.play(song, 0)
    assert not clicks_in(got[-1][0]) and (METRONOME_CHANNEL, 0, True) not in got[-1][2]
    p.play(song, 0, loop=(480, 2400), metronome=0.6)
    first, loop, programs = got[-1]
    assert len(clicks_in(first)) == 5 and len(clicks_in(loop)) == 4 and (METRONOME_CHANNEL, 0, True) in programs
    p.update(song)  # an edit while playing: on from the same place (tick 960), the clicks still on
    assert len(clicks_in(got[-1][0])) == 10 and clicks_in(got[-1][0])[0] == 0


def test_input_quantize_lies_on_the_real_bars():
    # a 3/8 bar first: the quarters of the 4/4 bars after it fall on 720, 1200, 1680...
    song = song_at(120.0)
    song.time_signatures = [TimeSignature(0, 3, 8), TimeSignature(720, 4, 4)]
    rec = Recorder(song, 0, 720, quantize=480)
    play(rec, [(0, 60, 0.9), (1, 62, 0.9), (2.1, 64, 0.9)], 120.0, 0.0, jitter=[0.03, -0.02, 0.0])
    rec.finish(3)
    assert [n.start for n in rec.take_notes(rec.takes[0])] == [720, 1200, 1680]
