"""The record controls in the editor, driven by a fake MIDI port and a hand-moved clock:
a recording is one undo step, notes show while they are played, Space stops, loop takes can be
swapped, step input, the computer keyboard as a piano, and Record saying why it cannot."""

from __future__ import annotations

import mido
import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402

from studio.audio.midiin import FakeSource  # noqa: E402
from studio.core.song import Note, TempoChange  # noqa: E402
from studio.ui.settings import Settings  # noqa: E402


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def rig(editor_window, monkeypatch):
    """A window (no audio engine started, so recording is silent) reading a fake keyboard."""
    monkeypatch.setenv("STUDIO_NO_AUDIO", "1")
    win = editor_window(settings="s.ini")
    clock = Clock()
    src = FakeSource(("Fake Keyboard",), clock=clock)
    win.record.clock = clock
    win.record.use_source(src)
    win.resize(1400, 900)
    win.show()
    return win, src, clock


def _play(src, clock, pitch, at, length, velocity=100):
    """A key pressed ``at`` seconds from now on the clock and held ``length`` seconds."""
    t0 = clock.t
    clock.t = t0 + at
    src.port().send(mido.Message("note_on", note=pitch, velocity=velocity))
    clock.t = t0 + at + length
    src.port().send(mido.Message("note_off", note=pitch))
    clock.t = t0


def test_recording_from_a_fake_port_is_one_undo_step(rig, qtbot):
    win, src, clock = rig
    rec, doc = win.record, win.doc
    doc.song.tempos = [TempoChange(0, 100.0)]
    doc.song.tracks[0].notes = [Note(7680, 40, 480)]  # in bar 5: outside the take, kept either way
    win.settings.count_in_bars = 1
    win.settings.record_mode = "replace"
    before = list(doc.song.tracks[0].notes)
    depth = doc.undo.count()
    assert win.record.ui.status.text() == "MIDI: Fake Keyboard"
    win.record.ui.a_record.trigger()
    assert rec.recording and win.transport.playing
    spb = 0.6  # seconds per beat at 100 bpm
    lead = 4 * spb
    clock.t += 0.5
    rec._drain()
    assert rec.count == 1 + int(0.5 / spb) and "count-in" in win.record.ui.status.text()
    clock.t -= 0.5
    for k, p in enumerate((60, 62, 64, 65)):
        _play(src, clock, p, lead + k * spb, spb / 2)
    # while recording, the notes played so far are drawn over the roll
    clock.t += lead + 3.2 * spb
    src.port().send(mido.Message("note_on", note=67, velocity=90))  # still held
    rec._drain()
    shown = rec.recorder.notes_so_far(rec.now())
    assert [n.pitch for n in shown] == [60, 62, 64, 65, 67]
    img = win.editor.view.viewport().grab().toImage()
    reds = sum(1 for x in range(0, img.width(), 3) for y in range(0, img.height(), 3)
               if QColor(img.pixel(x, y)).red() > 200 and QColor(img.pixel(x, y)).green() < 90)
    assert reds > 20
    assert doc.undo.count() == depth  # nothing is in the song until the recording stops
    clock.t += spb
    win.transport.toggle()  # Space stops the recording too
    assert not rec.recording and not win.transport.playing
    notes = doc.song.tracks[0].notes
    assert [(n.start, n.pitch, n.duration) for n in notes[:5]] == [
        (0, 60, 240), (480, 62, 240), (960, 64, 240), (1440, 65, 240), (1536, 67, 480)]
    assert notes[5:] == before and doc.undo.count() == depth + 1
    assert doc.undo.undoText() == "Record"
    doc.undo.undo()  # the whole take goes
    assert doc.song.tracks[0].notes == before
    doc.undo.redo()
    assert len(doc.song.tracks[0].notes) == 6


def test_loop_recording_offers_its_takes(rig):
    win, src, clock = rig
    rec, doc = win.record, win.doc
    win.settings.count_in_bars = 0
    win.transport.set_loop((0, 1920))
    rec.record()
    for k, p in enumerate((60, 64)):
        _play(src, clock, p, k * 2.0, 0.5)
    clock.t += 2.0 + 1.0
    rec.stop()
    assert [[n.pitch for n in tk.notes] for tk in rec.takes] == [[60], [64]]
    assert [n.pitch for n in doc.song.tracks[0].notes] == [64]
    assert rec.ui.takes_menu.isEnabled() and len(rec.ui.takes_menu.actions()) == 2
    depth = doc.undo.count()
    rec.ui.takes_menu.actions()[0].trigger()
    assert [n.pitch for n in doc.song.tracks[0].notes] == [60] and doc.undo.count() == depth + 1
    doc.undo.undo()
    assert [n.pitch for n in doc.song.tracks[0].notes] == [64]


def test_step_input_from_the_fake_keyboard_and_typed_names(rig, qtbot):
    win, src, clock = rig
    rec, doc = win.record, win.doc
    win.grid_combo.setCurrentText("1/8")
    win.record.ui.a_step.trigger()
    assert rec.step is not None and "step input" in win.record.ui.status.text()
    port = src.port()
    for p in (60, 64, 67):
        port.send(mido.Message("note_on", note=p, velocity=70))
    for p in (60, 64, 67):
        port.send(mido.Message("note_off", note=p))
    rec._drain()
    win.editor.view.setFocus()
    qtbot.keyClick(win.editor.view, Qt.Key.Key_0)  # a rest
    qtbot.keyClick(win.editor.view, Qt.Key.Key_D)  # D nearest the chord's top note (G4): D4; not the Draw tool
    qtbot.keyClick(win.editor.view, Qt.Key.Key_F, Qt.KeyboardModifier.ShiftModifier)  # F#
    notes = [(n.start, n.pitch, n.duration) for n in doc.song.tracks[0].notes]
    assert notes == [(0, 60, 240, ), (0, 64, 240), (0, 67, 240), (480, 62, 240), (720, 66, 240)]
    assert win.editor.view.tool != "draw" and rec.step.cursor == 960 and win.editor.view.playhead == 960
    assert doc.undo.count() == 3
    win.record.ui.a_step.trigger()
    assert rec.step is None


def test_computer_keyboard_piano_is_a_toggle(rig, qtbot):
    win, src, clock = rig
    rec, doc = win.record, win.doc
    view = win.editor.view
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_D)  # off: D is the Draw tool
    assert view.tool == "draw"
    qtbot.keyClick(view, Qt.Key.Key_S)
    win.record.ui.a_piano.trigger()
    assert rec.keyboard_piano
    rec.set_step_input(True)
    qtbot.keyPress(view, Qt.Key.Key_Z)  # C3 ...
    qtbot.keyPress(view, Qt.Key.Key_C)  # ... E3 ...
    qtbot.keyPress(view, Qt.Key.Key_Q)  # ... C4, held together
    for k in (Qt.Key.Key_Z, Qt.Key.Key_C, Qt.Key.Key_Q):
        qtbot.keyRelease(view, k)
    assert [n.pitch for n in doc.song.tracks[0].notes] == [48, 52, 60]
    assert view.tool == "select"  # D, S and friends play notes now, they do not switch tools
    qtbot.keyClick(view, Qt.Key.Key_Equal)  # octave up
    qtbot.keyClick(view, Qt.Key.Key_Z)
    assert doc.song.tracks[0].notes[-1].pitch == 60
    rec.set_step_input(False)
    win.record.ui.a_piano.trigger()
    assert not rec.keyboard_piano


def test_without_midi_or_audio_the_app_starts_and_record_says_why(editor_window, qtbot, monkeypatch):
    from studio.audio.midiin import RtMidiSource

    monkeypatch.setenv("STUDIO_NO_AUDIO", "1")
    win = editor_window(settings="s.ini")
    with qtbot.waitSignal(win.transport.ready, timeout=20000):
        win.transport.start_engine()
    src = FakeSource(())
    src.unavailable = "this system has no MIDI sequencer (no /dev/snd/seq)"
    win.record.use_source(src)
    assert win.record.ui.status.text() == "No MIDI input"
    win.record.ui.a_record.trigger()
    msg = win.statusBar().currentMessage()
    assert not win.record.recording and msg.startswith("Cannot record: this system has no MIDI sequencer")
    assert "Computer Keyboard as Piano" in msg
    # the real backend on this machine says something of the same kind, once, without output
    win.record.use_source(RtMidiSource())
    assert not win.record.midi.available and win.record.midi.reason
    # with the computer keyboard, recording works without audio: silent, and it says so
    win.record.ui.a_piano.trigger()
    win.record.ui.a_record.trigger()
    assert win.record.recording and "silent" in win.statusBar().currentMessage()
    win.transport.stop()
    assert not win.record.recording


def test_hot_plugged_keyboard_shows_up_in_the_menu(rig):
    win, src, clock = rig
    src.ports.append("Second Keyboard")
    win.record.poll_ports()
    names = [a.text() for a in win.record.ui.ports_menu.actions()]
    assert names == ["Fake Keyboard", "Second Keyboard"]
    win.record.ui.ports_menu.actions()[1].trigger()
    assert win.record.midi.port_name == "Second Keyboard" and win.settings.midi_input == "Second Keyboard"


RECORD_WITH_AUDIO = """
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import mido
import studio.ui
from PySide6.QtCore import QCoreApplication
from studio.audio.midiin import FakeSource
from studio.core.song import Note, Song, TempoChange, Track
from studio.ui.screenshot import wait_until
from studio.ui.document import Document
from studio.ui.record.controller import RecordController
from studio.ui.settings import Settings
from studio.ui.transport import Transport

app = QCoreApplication([])
doc = Document(Song(tempos=[TempoChange(0, 240.0)], tracks=[Track("a", program=73, notes=[Note(0, 48, 1920)])]))
tr = Transport(doc)
ready = []
tr.ready.connect(lambda ok, why: ready.append((ok, why)))
tr.start_engine()
wait_until(app, lambda: ready, 30)
if not ready[0][0]:
    print(json.dumps({"ready": ready}))
    sys.exit(0)
settings = Settings(sys.argv[1])
settings.count_in_bars = 1
src = FakeSource(("k",))
rec = RecordController(doc, tr, settings, None, src)
started = rec.record()
playing = tr.player.playing
port = src.port()
t0 = rec._t0
lead = rec.recorder.count_in
port.send(mido.Message("note_on", note=72, velocity=90), t0 + lead + 0.25)
port.send(mido.Message("note_off", note=72), t0 + lead + 0.5)
wait_until(app, lambda: False, 0.3)
tr.stop()
notes = [(n.start, n.pitch, n.duration) for n in doc.track.notes]
thru = tr.player._engine.synth.program_of(62)
tr.close()
print(json.dumps({"ready": ready, "started": started, "playing": playing, "notes": notes, "thru": list(thru),
                  "undo": doc.undo.count()}))
"""


def test_recording_with_the_audio_engine_running(tmp_path):
    """Count-in and clicks through the real player (ALSA's null device: unclocked), thru on the
    track's instrument, and the take placed by the recording clock."""
    import json
    import os
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ALSA_CONFIG_PATH=os.path.join(root, "tests", "asound_null.conf"))
    env.pop("STUDIO_NO_AUDIO", None)
    r = subprocess.run([sys.executable, "-c", RECORD_WITH_AUDIO, str(tmp_path / "s.ini")], cwd=root, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-800:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if not out["ready"][0][0]:
        pytest.skip(f"no audio engine here: {out['ready'][0][1]}")
    assert out["started"] and out["playing"]
    assert out["notes"] == [[0, 48, 1920], [480, 72, 480]] and out["undo"] == 1  # a beat is 0.25 s
    assert out["thru"] == [0, 73]  # the key was heard with the track's flute


def test_while_recording_seeks_and_auditions_leave_the_player_alone(rig):
    win, src, clock = rig
    rec = win.record
    rec.record()
    win.transport.seek(1920)  # a click in the ruler
    assert not win.transport.play(0)  # an audition, an edit's replay
    assert rec.recording and win.transport.playing
    rec.stop()
    assert not win.transport.held and not rec.recording


def test_low_latency_audio_is_a_setting_the_engine_opens_with(rig):
    win, src, clock = rig
    assert win.transport.latency is None
    win.record.ui.a_latency.trigger()
    assert win.settings.low_latency and win.transport.latency == pytest.approx(0.02)
    win.record.ui.a_latency.trigger()
    assert not win.settings.low_latency and win.transport.latency is None


def test_the_sustain_pedal_is_recorded_into_the_track_as_controllers(rig):
    from studio.core.song import Control

    win, src, clock = rig
    rec, doc = win.record, win.doc
    win.settings.count_in_bars = 0
    win.settings.record_mode = "replace"
    track = doc.song.tracks[0]
    track.controls = [Control(480, 64, 127), Control(960, 64, 0), Control(9600, 64, 127)]  # the first two are in the take
    rec.record()
    t0 = clock.t
    port = src.port()
    port.send(mido.Message("note_on", note=60, velocity=90), t0 + 0.0)
    port.send(mido.Message("control_change", control=64, value=120), t0 + 0.25)  # 120 bpm: tick 240
    port.send(mido.Message("note_off", note=60), t0 + 0.5)
    port.send(mido.Message("control_change", control=64, value=0), t0 + 1.0)  # tick 960
    clock.t = t0 + 2.0
    rec.stop()
    assert track.controls == [Control(240, 64, 120), Control(960, 64, 0), Control(9600, 64, 127)]
    assert "2 pedal changes" in win.statusBar().currentMessage()
    doc.undo.undo()
    assert track.controls == [Control(480, 64, 127), Control(960, 64, 0), Control(9600, 64, 127)]
    assert track.notes == []


def test_opening_another_song_while_recording_records_nothing_into_it(rig):
    from studio.core.song import Song, Track

    win, src, clock = rig
    rec, doc = win.record, win.doc
    win.settings.count_in_bars = 0
    rec.record()
    _play(src, clock, 60, 0.1, 0.2)
    doc.replace_song(Song(tracks=[Track("Other")]))
    clock.t += 1.0
    rec.stop()
    assert doc.song.tracks[0].notes == [] and doc.undo.count() == 0
    assert "nothing was recorded" in win.statusBar().currentMessage() and not rec.use_take(0)


def test_metronome_toggle_clicks_in_playback_and_is_remembered(rig, qtbot, tmp_path):
    win, _src, _clock = rig
    tr = win.transport
    played = []

    class FakePlayer:
        sample_rate = 44100
        playing = True

        def play(self, song, start_tick=0, loop=None, **clicks):
            played.append((start_tick, clicks))
            return True

        def position_tick(self):
            return 1234.0

        def stop(self):
            pass

    tr.player, tr.available = FakePlayer(), True
    a = win.record.ui.a_metronome
    assert not a.isChecked() and not win.settings.metronome  # off at first
    assert a in win.transport_bar.actions()  # beside Play and Loop
    tr.play(0)
    assert played[-1] == (0, {})
    a.trigger()  # on while playing: plays on from where it is, with the clicks
    assert played[-1][0] == 1234 and played[-1][1]["metronome"] == pytest.approx(win.settings.metronome_volume / 100)
    win.record.ui.volume.setValue(30)
    qtbot.waitUntil(lambda: played[-1][1].get("metronome") == pytest.approx(0.3), timeout=2000)
    tr.stop()
    tr.play(0)
    assert played[-1][1]["metronome"] == pytest.approx(0.3)
    win.settings.sync()
    again = Settings(str(tmp_path / "s.ini"))
    assert again.metronome and again.metronome_volume == 30
    a.trigger()
    assert not Settings(str(tmp_path / "s.ini")).metronome
    tr.play(0)
    assert played[-1] == (0, {})
