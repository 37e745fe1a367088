"""Audio: soundfont lookup, FluidSynth rendering (timing, pitch, drums, mute/solo), WAV/FLAC
files, ``studio render``, and the realtime player with and without an output device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from studio.audio import synth as synth_mod
from studio.audio.render import audible, build_schedule, measure_render, render_array, render_file, render_with
from studio.audio.synth import (DRUM_BANK, DRUM_CHANNEL, Synth, assign_channels, bundled_soundfont,
                                find_soundfont, fluidsynth_available)
from studio.core.errors import Cancelled, StudioError
from studio.core.song import Note, Song, TempoChange, Track
from studio.core.timing import TempoMap, song_seconds

ok, why = fluidsynth_available()
pytestmark = pytest.mark.skipif(not ok, reason=f"FluidSynth unavailable: {why}")

ROOT = Path(__file__).resolve().parents[1]
NULL_CONF = Path(__file__).with_name("asound_null.conf")
SR = 44100
SMALL_SF = bundled_soundfont()  # loads in a fraction of a second; the system GM set takes ~1 s
FLUTE, OCARINA = 73, 79


def _music21_file(rel: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec("music21")
    return Path(spec.submodule_search_locations[0]) / rel


K525 = _music21_file("omr/k525MIDIMvt1.mid")


def tone_song(pitches=(69,), program=OCARINA, beats=4, bpm=120.0) -> Song:
    """One track per pitch, each a note held ``beats`` quarter notes from tick 0."""
    s = Song(title="tones", tempos=[TempoChange(0, bpm)])
    for p in pitches:
        s.tracks.append(Track(f"t{p}", program=program, notes=[Note(0, p, 480 * beats, 100)]))
    return s


def peak_hz(audio: np.ndarray, start_s=0.3, end_s=1.5) -> float:
    mono = audio[int(start_s * SR):int(end_s * SR)].mean(axis=1)
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    return float(np.fft.rfftfreq(len(mono), 1 / SR)[np.argmax(spec)])


def band_energy(audio: np.ndarray, hz: float, start_s=0.3, end_s=1.5) -> float:
    mono = audio[int(start_s * SR):int(end_s * SR)].mean(axis=1)
    spec = np.abs(np.fft.rfft(mono * np.hanning(len(mono))))
    f = np.fft.rfftfreq(len(mono), 1 / SR)
    return float(spec[(f > hz * 0.97) & (f < hz * 1.03)].sum())


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64)))) if a.size else 0.0


# ---- soundfont lookup ------------------------------------------------------------------
def test_find_soundfont_order(tmp_path, monkeypatch):
    monkeypatch.delenv("STUDIO_SOUNDFONT", raising=False)
    default = find_soundfont()
    assert default.is_file() and default.suffix.lower() in (".sf2", ".sf3")
    assert find_soundfont(SMALL_SF) == SMALL_SF  # explicit wins
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(SMALL_SF))
    assert find_soundfont() == SMALL_SF  # then the environment
    monkeypatch.setenv("STUDIO_SOUNDFONT", str(tmp_path / "gone.sf2"))
    with pytest.raises(StudioError, match="STUDIO_SOUNDFONT"):
        find_soundfont()
    # no system soundfont: the one inside pretty_midi
    monkeypatch.delenv("STUDIO_SOUNDFONT")
    monkeypatch.setattr(synth_mod, "SYSTEM_SOUNDFONTS", (str(tmp_path / "none.sf2"),))
    assert find_soundfont() == SMALL_SF


def test_bad_soundfonts_are_clear_errors(tmp_path):
    with pytest.raises(StudioError, match="not found"):
        find_soundfont(tmp_path / "missing.sf2")
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"this is not a soundfont at all")
    with pytest.raises(StudioError, match="not a SoundFont"):
        find_soundfont(junk)
    with pytest.raises(StudioError, match="not a file"):
        find_soundfont(tmp_path)


class _Hide:
    """A meta-path finder that makes ``import fluidsynth`` fail the way a machine without it does."""

    def __init__(self, exc):
        self.exc = exc

    def find_spec(self, name, path=None, target=None):
        if name == "fluidsynth":
            raise self.exc
        return None


@pytest.mark.parametrize("exc, needle", [
    (ModuleNotFoundError("No module named 'fluidsynth'", name="fluidsynth"), "pip install pyfluidsynth"),
    (ImportError("Couldn't find the FluidSynth library."), "libfluidsynth3"),
])
def test_missing_fluidsynth_is_reported(monkeypatch, exc, needle):
    monkeypatch.setattr(synth_mod, "_availability", None)
    monkeypatch.delitem(sys.modules, "fluidsynth")
    monkeypatch.setattr(sys, "meta_path", [_Hide(exc)] + sys.meta_path)
    good, reason = synth_mod.fluidsynth_available()
    assert not good and needle in reason
    with pytest.raises(StudioError, match="unavailable"):
        Synth(SMALL_SF)


# ---- channels and programs -------------------------------------------------------------
def test_drums_go_to_channel_10_and_tracks_get_their_own_channels():
    tracks = [Track("a"), Track("kit", is_drum=True)] + [Track(f"m{i}", program=i) for i in range(20)]
    chans = assign_channels(tracks)
    assert chans[1] == DRUM_CHANNEL == 9
    melodic = [c for t, c in zip(tracks, chans) if not t.is_drum]
    assert len(set(melodic)) == len(melodic) and all(c % 16 != 9 for c in melodic)
    with Synth(SMALL_SF, channels=32) as syn:
        got = syn.setup(tracks)
        assert got == chans
        assert syn.program_of(9) == (DRUM_BANK, 0)
        assert syn.program_of(chans[0]) == (0, 0)
        assert syn.program_of(chans[7]) == (0, 5)  # track m5 keeps its GM program


def test_drum_track_sounds_and_uses_the_percussion_bank():
    song = Song(tracks=[Track("kit", is_drum=True, channel=9, notes=[Note(i * 240, 38, 120, 110) for i in range(8)])])
    with Synth(SMALL_SF) as syn:
        audio = render_with(syn, song, tail_seconds=0.5)
        assert syn.program_of(DRUM_CHANNEL) == (DRUM_BANK, 0)
    assert rms(audio) > 0.005
    # the same pitch as a melodic note is a different sound (a D3, not a snare)
    mel = Song(tracks=[Track("p", program=0, notes=list(song.tracks[0].notes))])
    assert not np.allclose(render_array(mel, SMALL_SF, tail_seconds=0.5), audio, atol=1e-3)


# ---- schedule ----------------------------------------------------------------------------
def test_schedule_follows_the_tempo_map_and_merges_overlaps():
    song = Song(tempos=[TempoChange(0, 120.0), TempoChange(960, 60.0)])
    song.tracks.append(Track("a", notes=[Note(0, 60, 960), Note(480, 60, 960), Note(1440, 64, 480)]))
    sched = build_schedule(song, [0], SR)
    tm = TempoMap(song)
    assert tm.seconds(1440) == pytest.approx(2.0)
    ev = [e for e in sched.events if e[1] in (True, False)]  # notes only
    # the second C4 starts while the first is held: one note-off, at the later end
    c4 = [(f, on) for f, on, _c, p, _v in ev if p == 60]
    assert c4 == [(0, True), (int(0.5 * SR), True), (int(round(tm.seconds(1440) * SR)), False)]
    e4 = [(f, on) for f, on, _c, p, _v in ev if p == 64]
    assert e4 == [(2 * SR, True), (3 * SR, False)]
    assert sched.length == 3 * SR


def test_schedule_window_chases_held_notes_and_releases_at_the_end():
    song = Song(tracks=[Track("a", notes=[Note(0, 60, 1920), Note(960, 62, 480)])])
    sched = build_schedule(song, [0], SR, start_tick=480, end_tick=1200)
    notes = [e for e in sched.events if e[1] in (True, False)]
    assert notes[0][:4] == (0, True, 0, 60)  # held note starts with the window
    offs = [e for e in notes if not e[1]]
    assert {e[3] for e in offs} == {60, 62} and max(e[0] for e in offs) == sched.length
    assert sched.tick_at(sched.length, TempoMap(song)) == pytest.approx(1200)


def test_mute_and_solo_rules():
    song = tone_song((69, 76))
    assert audible(song) == [True, True]
    song.tracks[0].mute = True
    assert audible(song) == [False, True]
    song.tracks[0].mute, song.tracks[1].solo = False, True
    assert audible(song) == [False, True]
    song.tracks[1].mute = True  # mute beats solo
    assert audible(song) == [False, False]


# ---- rendering ----------------------------------------------------------------------------
def test_render_has_the_right_length_level_and_pitch():
    song = tone_song((69,), beats=4)  # 2 s of A4 at 120 bpm
    audio = render_array(song, SMALL_SF, tail_seconds=1.0)
    assert audio.dtype == np.float32 and audio.ndim == 2 and audio.shape[1] == 2
    assert audio.shape[0] == round(song_seconds(song) * SR) + SR
    assert rms(audio[: 2 * SR]) > 0.01
    assert np.abs(audio).max() <= 1.0
    assert peak_hz(audio) == pytest.approx(440.0, rel=0.01)
    # the system's GM soundfont (the default) agrees
    assert peak_hz(render_array(tone_song((69,), program=FLUTE), tail_seconds=0.2)) == pytest.approx(440.0, rel=0.01)


def test_notes_sound_when_the_tempo_map_says():
    # 120 bpm for two beats (1 s), then 60 bpm: tick 1440 is at 2.0 s
    song = Song(tempos=[TempoChange(0, 120.0), TempoChange(960, 60.0)])
    song.tracks.append(Track("a", program=OCARINA, notes=[Note(1440, 69, 480, 110)]))
    audio = render_array(song, SMALL_SF, tail_seconds=0.5)
    assert audio.shape[0] == round(3.0 * SR) + SR // 2
    env = np.abs(audio).max(axis=1)
    onset = int(np.argmax(env > 0.01))
    assert rms(audio[: int(1.9 * SR)]) < 1e-5
    assert abs(onset / SR - 2.0) < 0.03


def test_mute_and_solo_change_what_is_heard():
    song = tone_song((69, 76))  # A4 = 440 Hz and E5 = 659 Hz
    both = render_array(song, SMALL_SF, tail_seconds=0)
    assert band_energy(both, 440) > 0 and band_energy(both, 659.3) > 0
    song.tracks[0].mute = True
    only_e = render_array(song, SMALL_SF, tail_seconds=0)
    assert peak_hz(only_e) == pytest.approx(659.3, rel=0.01)
    assert band_energy(only_e, 440) < 0.05 * band_energy(both, 440)
    song.tracks[0].mute, song.tracks[0].solo = False, True
    only_a = render_array(song, SMALL_SF, tail_seconds=0)
    assert peak_hz(only_a) == pytest.approx(440, rel=0.01)
    assert band_energy(only_a, 659.3) < 0.05 * band_energy(both, 659.3)
    song.tracks[0].mute = True  # the soloed track muted too: silence
    assert rms(render_array(song, SMALL_SF, tail_seconds=0)) < 1e-6


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_files_read_back(tmp_path, ext):
    import soundfile

    song = tone_song((60, 64, 67), program=0, beats=2)
    seen = []
    out = render_file(song, tmp_path / f"chord{ext}", SMALL_SF, progress=lambda f: seen.append(f))
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels) == (44100, 2)
    assert info.format == ext[1:].upper() and info.subtype == "PCM_16"
    data, sr = soundfile.read(str(out), dtype="float32")
    ref = render_array(song, SMALL_SF)
    assert data.shape == ref.shape
    assert np.abs(data - ref).max() < 2e-4  # 16-bit quantisation only
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp files left
    assert oct(out.stat().st_mode & 0o777) != "0o600"


def test_cancel_and_errors_leave_nothing_half_written(tmp_path):
    song = tone_song(beats=8)
    target = tmp_path / "out.wav"
    target.write_bytes(b"old")
    with pytest.raises(Cancelled):
        render_file(song, target, SMALL_SF, progress=lambda f: f < 0.3)
    assert target.read_bytes() == b"old"
    with pytest.raises(StudioError, match="unknown audio format"):
        render_file(song, tmp_path / "out.mp3", SMALL_SF)
    with pytest.raises(StudioError, match="not found"):
        render_file(song, tmp_path / "x.wav", tmp_path / "none.sf2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_measure_render_reports_speed():
    m = measure_render(tone_song((60, 64, 67), program=0, beats=8), SMALL_SF, tail_seconds=0.5)
    assert m["audio_seconds"] == pytest.approx(4.5, abs=1e-3) and m["audio"].shape == (round(4.5 * SR), 2)
    assert m["x_realtime"] > 5 and m["render_cpu_seconds"] > 0 and m["rms"] > 0.01


def test_absurdly_long_song_is_refused_before_allocating():
    song = Song(tracks=[Track("a", notes=[Note(0, 60, 480), Note(480 * 2 * 60 * 60 * 5, 62, 480)])])  # 5 hours
    with pytest.raises(StudioError, match="too long"):
        render_array(song, SMALL_SF)


def test_real_piece_renders(tmp_path):
    from studio.io import load

    song = load(K525)
    cut = int(TempoMap(song).tick(6.0))  # the first six seconds keep the test quick
    for t in song.tracks:
        t.notes = [n for n in t.notes if n.start < cut]
    audio = render_array(song, SMALL_SF, tail_seconds=1.0)
    assert abs(audio.shape[0] / SR - (song_seconds(song) + 1.0)) < 0.01
    assert rms(audio) > 0.01


# ---- command line -----------------------------------------------------------------------
def _cli(capsys, *argv):
    from studio.cli import main

    code = main(list(argv))
    return code, capsys.readouterr()


def test_cli_render(tmp_path, capsys):
    src = _music21_file("midi/testPrimitive/test05.mid")
    out = tmp_path / "a.flac"
    code, cap = _cli(capsys, "render", str(src), "-o", str(out), "--soundfont", str(SMALL_SF), "--sample-rate", "22050")
    assert code == 0, cap.err
    import soundfile

    assert soundfile.info(str(out)).samplerate == 22050 and "wrote" in cap.out


def test_cli_render_bad_input_exit_2(tmp_path, capsys):
    src = _music21_file("midi/testPrimitive/test05.mid")
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x05\x01")  # truncated
    junk = tmp_path / "junk.sf2"
    junk.write_bytes(b"RIFF....WAVEfmt ")
    cases = [
        (str(src), "out.wav", ["--soundfont", str(tmp_path / "none.sf2")], "none.sf2"),
        (str(src), "out.wav", ["--soundfont", str(junk)], "not a SoundFont"),
        (str(src), "out.mp3", [], "unknown audio format"),
        (str(tmp_path / "missing.mid"), "out.wav", [], "missing.mid"),
        (str(bad), "out.wav", [], "bad.mid"),
        (str(src), "no/such/dir/out.wav", [], "does not exist"),
        (str(src), "out.wav", ["--sample-rate", "5"], "sample-rate"),
    ]
    for inp, out, extra, needle in cases:
        code, cap = _cli(capsys, "render", inp, "-o", str(tmp_path / out), *extra)
        assert code == 2, (out, extra, cap)
        lines = cap.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("studio: error:") and needle in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.mid", "junk.sf2"]


# ---- realtime engine (no device needed) -----------------------------------------------------
def test_engine_matches_offline_render_and_loops():
    from studio.audio.player import Engine

    song = tone_song((60, 64), program=0, beats=2)
    song.tracks[1].notes = [Note(480, 64, 480, 90)]
    with Synth(SMALL_SF, channels=64) as off:
        ref = render_with(off, song, tail_seconds=0.25)
    chans = assign_channels(song.tracks, 63)
    progs = [(c, t.program, t.is_drum) for t, c in zip(song.tracks, chans)]
    tm = TempoMap(song)
    with Synth(SMALL_SF, channels=64) as syn:
        eng = Engine(syn)
        eng.post(("play", 1, build_schedule(song, chans, SR, 0, None, tm), None, tm, progs))
        out = np.zeros_like(ref)
        ticks = []
        for i in range(0, len(ref), 512):
            eng.process(out[i:i + 512])
            ticks.append(eng.published[2])
        assert np.allclose(out, ref, atol=1e-6)
        assert eng.published[:2] == (1, False) and ticks[-1] == song.end_tick
        assert ticks[10] == pytest.approx(tm.tick(11 * 512 / SR))  # the clock is frames delivered
        # loop the first beat
        eng.post(("play", 2, build_schedule(song, chans, SR, 240, 480, tm), build_schedule(song, chans, SR, 0, 480, tm), tm, progs))
        block = np.zeros((512, 2), np.float32)
        seen = []
        for _ in range(200):
            eng.process(block)
            seen.append(eng.published[2])
        assert eng.published[1] and max(seen) <= 480 and min(seen) < 100 and rms(block) > 0
        eng.post(("stop", 3))
        eng.post(("preview", 72, 0, False, 90, 2000))
        eng.process(block)
        assert eng.published[:2] == (3, False)
        for _ in range(400):
            if not eng.process(block):
                break
        else:
            pytest.fail("the engine never went quiet")


# ---- player against real PortAudio (in a subprocess: ALSA reads its config once) -------------
PLAYER_SCRIPT = textwrap.dedent("""
    import json, time, sys
    from studio.audio.player import Player
    from studio.core.song import Song, Track, Note
    out = {}
    p = Player(soundfont=sys.argv[1])
    out["available"], out["reason"] = p.available, p.reason
    song = Song(tracks=[Track("a", notes=[Note(0, 60, 480), Note(480, 64, 480), Note(960, 67, 960)])])
    out["play"] = p.play(song)
    seen = []
    t0 = time.time()
    while time.time() - t0 < 10:
        seen.append(p.position_tick())
        if not p.playing:
            break
        time.sleep(0.002)
    out["playing_after"], out["seen"], out["end"] = p.playing, seen, p.position_tick()
    out["frames"] = p.frames_delivered()
    out["preview"] = p.preview(69, program=40)
    time.sleep(0.05)
    out["loop_play"] = p.play(song, start_tick=480, loop=(0, 960))
    time.sleep(0.2)
    out["loop_pos"] = p.position_tick()
    out["loop_playing"] = p.playing
    song.tracks[0].mute = True
    out["update"] = p.update(song)
    out["loop_after_update"] = p.loop
    p.stop()
    out["stopped"] = not p.playing
    p.close()
    print(json.dumps(out))
""")


def _run_player(conf: Path, extra_env=None) -> dict:
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf), **(extra_env or {}))
    env.pop("STUDIO_NO_AUDIO", None)
    res = subprocess.run([sys.executable, "-c", PLAYER_SCRIPT, str(SMALL_SF)], env=env, capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_player_without_a_device_says_why(tmp_path):
    conf = tmp_path / "asound.conf"  # the default device is a sound card that is not there
    conf.write_text("pcm.!default {\n    type hw\n    card 99\n}\n")
    got = _run_player(conf)
    assert got["available"] is False and got["play"] is False and got["preview"] is False
    assert got["reason"].startswith("Playback is off:") and "device" in got["reason"]
    assert got["end"] == 0 and got["frames"] == 0


def test_player_switched_off_by_environment(monkeypatch):
    from studio.audio.player import Player

    monkeypatch.setenv("STUDIO_NO_AUDIO", "1")
    p = Player()
    assert not p.available and "STUDIO_NO_AUDIO" in p.reason
    assert p.play(tone_song()) is False and not p.playing and p.position_tick() == 0
    p.stop()
    p.close()


def test_player_with_a_bad_soundfont_says_why(tmp_path, monkeypatch):
    from studio.audio.player import Player

    monkeypatch.delenv("STUDIO_NO_AUDIO", raising=False)
    p = Player(soundfont=tmp_path / "missing.sf2")
    assert not p.available and "soundfont not found" in p.reason
    assert p.preview(60) is False


def test_player_plays_on_a_null_device():
    got = _run_player(NULL_CONF)
    if not got["available"]:
        pytest.skip(f"PortAudio cannot open the ALSA null device here: {got['reason']}")
    assert got["play"] is True and got["playing_after"] is False
    seen = got["seen"]
    assert seen == sorted(seen) and got["end"] == 1920  # the playhead advanced to the end
    assert got["frames"] >= round(2.0 * SR)  # driven by frames delivered, not wall time
    assert got["preview"] is True and got["loop_play"] is True
    assert got["loop_playing"] is True and 0 <= got["loop_pos"] <= 960
    assert got["update"] is True and got["loop_after_update"] == [0, 960]
    assert got["stopped"] is True


def _long_song(seconds=40) -> Song:
    """A few tracks of notes at 120 bpm, with long notes held across the middle."""
    beats = int(seconds * 2)
    s = Song(title="long", tempos=[TempoChange(0, 120.0)])
    mel = [Note(b * 480, 60 + (b * 5) % 19, 440, 90) for b in range(beats)]
    pad = [Note(b * 480 * 8 - (240 if b else 0), 48 + (b % 3), 480 * 8, 70) for b in range(beats // 8)]
    s.tracks += [Track("mel", program=0, notes=mel), Track("pad", program=48, notes=pad)]
    return s


def test_short_silent_runup_puts_the_reverb_in_phase():
    """A synth run silently for runup_frames(start) frames (at most 16 s) then plays what a synth
    run silently for all ``start`` frames plays; half a second off, the reverb is audibly not."""
    from studio.audio.parallel import runup_frames

    start = 64 * (SR * 25 // 64)  # 25 s: past one period (16 s) of the reverb modulation and block phase
    assert runup_frames(start, SR) == start - 705600 and runup_frames(64 * 100, SR) == 6400

    def play(silence: int) -> np.ndarray:
        with Synth(SMALL_SF, SR, cpu_cores=1) as syn:
            syn.select(0, 48)
            buf = np.zeros((SR, 2), np.float32)
            while silence > 0:
                syn.write_into(buf, 0, min(silence, SR))
                silence -= min(silence, SR)
            syn.note_on(0, 60, 100)
            out = syn.get_samples(SR)
            syn.note_off(0, 60)
            return np.concatenate([out, syn.get_samples(2 * SR)]).astype(np.float64)

    def snr(a, ref):
        return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((a - ref) ** 2), 1e-30))

    ref = play(start)
    assert snr(play(runup_frames(start, SR)), ref) > 100
    assert snr(play(runup_frames(start, SR) + SR // 2 - SR // 2 % 64), ref) < 60


def test_parallel_render_equals_a_single_render():
    from studio.audio.parallel import HEAD_START, plan_cuts, render_parallel

    song = _long_song(50)  # the second segment's pre-roll starts past 16 s: a shortened run-up
    one = render_array(song, SMALL_SF, tail_seconds=1.0, workers=1)
    stats: dict = {}
    seen = []
    two = render_parallel(song, SMALL_SF, tail_seconds=1.0, workers=2, stats=stats, progress=seen.append)
    assert stats["processes"] == 2 and len(stats["cuts"]) == 1 and two.shape == one.shape
    assert seen[-1] == 1.0 and all(a <= b for a, b in zip(seen, seen[1:]))
    err = np.sum((two.astype(np.float64) - one) ** 2)
    snr = 10 * np.log10(np.sum(one.astype(np.float64) ** 2) / max(err, 1e-30))
    assert snr > 60  # the seam and the restarted synth are inaudible
    cut = int(stats["cuts"][0] * SR)
    assert cut % 64 == 0
    sched = build_schedule(song, [0, 1], SR)
    assert plan_cuts(sched.events, sched.length, 2, SR, int(HEAD_START * SR)) == [cut]
    # the first segment, rendered in this process while the other starts, is the longer one
    even = plan_cuts(sched.events, sched.length, 2, SR)[0]
    assert cut > even and abs(even - sched.length // 2) < sched.length // 10


def test_parallel_render_cancels_and_cleans_up():
    import threading

    from studio.audio.parallel import render_parallel

    threads = threading.active_count()
    with pytest.raises(Cancelled):
        render_parallel(_long_song(), SMALL_SF, workers=2, progress=lambda f: f < 0.2)
    import multiprocessing

    assert not [p for p in multiprocessing.active_children() if p.is_alive()]
    assert threading.active_count() == threads  # the in-process segment stopped too


# ---- controllers -----------------------------------------------------------------------
def _pedal_song(pedal: bool) -> Song:
    """Short piano notes (an eighth each at 120 bpm), with or without the sustain pedal held
    through them and lifted at 2 s."""
    from studio.core.song import SUSTAIN, Control

    notes = [Note(i * 240, p, 200, 90) for i, p in enumerate((60, 64, 67, 72))]
    controls = [Control(0, SUSTAIN, 127), Control(1920, SUSTAIN, 0)] if pedal else []
    return Song(title="pedal", tracks=[Track("Piano", program=0, notes=notes + [Note(1920, 36, 1, 1)],
                                             controls=controls)])


def release_rms(audio: np.ndarray) -> float:
    """RMS between 1.0 s and 1.8 s: after every key is up (0.95 s), before the pedal lifts (2 s)."""
    return rms(audio[int(1.0 * SR):int(1.8 * SR)])


def test_sustain_pedal_is_heard_in_a_render():
    dry = render_array(_pedal_song(False), SMALL_SF, tail_seconds=0.5, workers=1)
    wet = render_array(_pedal_song(True), SMALL_SF, tail_seconds=0.5, workers=1)
    assert release_rms(wet) > 3 * release_rms(dry)
    # once the pedal lifts (2 s) the notes stop: from 2.1 s on it is nearly silent
    assert rms(wet[int(2.1 * SR):]) < 0.1 * release_rms(wet)


def test_schedule_sets_volume_pan_and_chases_controllers():
    from studio.audio.render import BEND, CC
    from studio.core.song import PITCH_BEND, SUSTAIN, Control

    t = Track("a", notes=[Note(0, 60, 1920)], volume=90, pan=10,
              controls=[Control(0, SUSTAIN, 127), Control(240, PITCH_BEND, 1000), Control(960, SUSTAIN, 0)])
    sched = build_schedule(Song(tracks=[t]), [3], SR, start_tick=480)
    ctl = [(f, k, c, a, b) for f, k, c, a, b in sched.events if k in (CC, BEND)]
    # reset, volume, pan, then what was in force at tick 480 (pedal down, the bend), then the lift
    assert ctl == [(0, CC, 3, 121, 0), (0, CC, 3, 7, 90), (0, CC, 3, 10, 10), (0, CC, 3, 64, 127),
                   (0, BEND, 3, 1000, 0), (int(0.5 * SR), CC, 3, 64, 0)]
    # controllers come before the held note at frame 0
    assert [e[1] for e in sched.events[:6]] == [CC, CC, CC, CC, BEND, True]


def test_parallel_render_keeps_the_pedal_across_the_seam():
    from studio.audio.parallel import render_parallel
    from studio.core.song import SUSTAIN, Control

    song = _long_song(30)
    song.tracks[0].controls = [Control(b * 1920, SUSTAIN, v) for b in range(30) for v in (0, 127)]
    one = render_array(song, SMALL_SF, tail_seconds=1.0, workers=1)
    two = render_parallel(song, SMALL_SF, tail_seconds=1.0, workers=2)
    err = np.sum((two.astype(np.float64) - one) ** 2)
    assert 10 * np.log10(np.sum(one.astype(np.float64) ** 2) / max(err, 1e-30)) > 60
