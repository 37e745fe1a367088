"""The main window: files, title, autosave and restore, score clicks, settings, the screenshot
command, and the rule that the GUI never imports torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("PySide6")
from PySide6.QtCore import QPointF  # noqa: E402

from studio.core.song import KeySignature, Note, Song, TempoChange, TimeSignature, Track  # noqa: E402
from studio.io import load, save  # noqa: E402
from studio.ui import commands  # noqa: E402
from studio.ui.songprops import SongMapsCommand  # noqa: E402
from studio.ui.autosave import find_orphans  # noqa: E402
from studio.ui.settings import VERSION, Settings  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_song() -> Song:
    mel = [60, 62, 64, 65, 67, 65, 64, 62]
    return Song(title="Little", tracks=[Track("Melody", 73, 0, notes=[Note(i * 480, p, 480) for i, p in enumerate(mel)]),
                                        Track("Bass", 32, 1, notes=[Note(i * 1920, 36 + i, 1920) for i in range(2)])])


@pytest.fixture
def window(editor_window):
    made = []

    def make(folder=None):
        win = editor_window(autosave=folder)
        made.append(win)
        return win
    yield make
    for w in made:
        w.doc.mark_saved()


def test_open_edit_title_and_save(window, tmp_path):
    win = window()
    src = tmp_path / "in.mid"
    save(small_song(), src)
    assert win.open_path(str(src), ask=False)
    assert "in.mid" in win.windowTitle() and not win.isWindowModified()
    win.doc.undo.push(commands.NoteEdit(win.doc, "x", [commands.edits.insert(0, [Note(4000, 70, 240)])]))
    assert win.isWindowModified()
    out = tmp_path / "song.studio"
    assert win.save_to(str(out))
    assert not win.isWindowModified() and "song.studio" in win.windowTitle()
    assert load(out).notes_equal(win.doc.song)
    assert win.settings.recent_files[0] == str(out)


def test_bad_file_gives_one_line_and_keeps_the_song(window, tmp_path):
    win = window()
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd\x00\x00garbage")
    before = win.doc.song
    assert not win.open_path(str(bad), ask=False)
    assert win.doc.song is before
    msg = win.statusBar().currentMessage()
    assert "bad.mid" in msg and "\n" not in msg


def test_autosave_writes_beside_never_over_the_users_file_and_restores(window, tmp_path, qtbot):
    from studio.ui.app import offer_restore
    from studio.ui.mainwindow import MainWindow

    folder = tmp_path / "autosave"
    win = window(folder)
    user_file = tmp_path / "mine.studio"
    save(small_song(), user_file)
    assert win.open_path(str(user_file), ask=False)
    original = user_file.read_bytes()
    assert not win.autosaver.tick()  # nothing changed: nothing written
    win.editor.doc.set_selection(win.doc.track.notes[:2])
    win.editor.transpose(5)
    assert win.autosaver.tick()
    assert user_file.read_bytes() == original
    files = sorted(os.listdir(folder))
    assert len(files) == 2 and files[0].endswith(".json")
    rec = json.loads((folder / files[0]).read_text())
    assert rec["path"] == str(user_file) and rec["pid"] == os.getpid()
    edited = win.doc.song.copy()

    # "crash": the window goes away without cleaning up; a new start finds the autosave
    win.autosaver.stop()
    orphans = find_orphans(str(folder))
    assert len(orphans) == 1 and orphans[0].original_path == str(user_file)
    fresh = window(folder)
    restored = offer_restore(fresh, MainWindow, orphans, ask=False)
    assert restored == [fresh]
    assert fresh.doc.song.notes_equal(edited)
    assert fresh.doc.modified and fresh.isWindowModified()
    assert fresh.doc.path == str(user_file)  # Save goes back to the user's own file
    assert [o.song_path for o in find_orphans(str(folder))] == [fresh.autosaver.song_path]
    # saving removes the autosave
    assert fresh.save_to(str(user_file))
    assert not os.path.exists(fresh.autosaver.song_path)
    assert load(user_file).notes_equal(edited)


def test_song_properties_drive_the_grid_and_undo(window):
    win = window()
    win.doc.replace_song(small_song())
    bar0 = win.editor.geom.bar_at(0)
    assert bar0.length == 1920
    win.doc.undo.push(SongMapsCommand(win.doc, "Waltz", "", 0, [TempoChange(0, 90.0)], [TimeSignature(0, 3, 4)],
                                     [KeySignature.from_name("D minor")]))
    assert win.editor.geom.bar_at(0).length == 1440
    s = win.doc.song
    assert (s.title, s.tempo_at(0).bpm, str(s.time_signature_at(0)), s.key_at(0).name) == ("Waltz", 90.0, "3/4", "D minor")
    win.doc.undo.undo()
    assert win.editor.geom.bar_at(0).length == 1920 and win.doc.song.title == "Little"
    menus = {a.text().replace("&", ""): a.menu() for a in win.menuBar().actions()}
    assert win.a_props in menus["File"].actions()  # File > Song Properties pushes SongMapsCommand


def test_track_properties_are_undoable(window, qtbot):
    win = window()
    win.doc.replace_song(small_song())
    win.tracklist._set(1, "mute", True)
    win.tracklist._set(0, "program", 40)
    assert win.doc.song.tracks[1].mute and win.doc.song.tracks[0].program == 40
    win.doc.undo.undo()
    win.doc.undo.undo()
    assert not win.doc.song.tracks[1].mute and win.doc.song.tracks[0].program == 73
    win.a_add_track.trigger()
    assert len(win.doc.song.tracks) == 3 and win.doc.current_track == 2
    win.doc.undo.undo()
    assert len(win.doc.song.tracks) == 2


def test_export_midi_in_the_background(window, tmp_path, qtbot):
    win = window()
    win.doc.replace_song(small_song())
    out = tmp_path / "out.mid"
    job = win.export_to(str(out))
    with qtbot.waitSignal(job.finished, timeout=20000) as blocker:
        pass
    assert blocker.args == [""]
    assert load(out).notes_equal(win.doc.song)


def test_clicking_a_note_in_the_score_selects_it_in_the_roll(qtbot, tmp_path):
    from studio.ui.mainwindow import MainWindow
    from studio.ui.score.view import ScoreView

    win = MainWindow(settings=Settings(str(tmp_path / "s.ini")), autosave_folder=str(tmp_path / "a"),
                     start_audio=False, score=False)
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.mark_saved())
    win.doc.replace_song(small_song())
    score = ScoreView(win.doc, inline=True)
    score.noteClicked.connect(win.select_from_score)
    score.resize(700, 600)
    with qtbot.waitSignal(score.engraved, timeout=60000):
        score.refresh_now()
    e = score.engraving
    assert e.pages and not e.error
    heads = [n for n in e.notes.values() if n.staff == 0]
    assert sorted((n.tick, n.pitch) for n in heads) == [(n.start, n.pitch) for n in win.doc.song.tracks[0].notes]
    target = next(n for n in heads if n.tick == 4 * 480)
    score.click(QPointF(target.x + 1, target.y + score.offsets[target.page]))
    assert win.doc.current_track == 0 and win.doc.selection == {Note(1920, 67, 480)}
    score.set_playhead(1920 + 240)
    r = score.cursor_rect()
    assert r is not None and target.x < r.center().x()
    win.doc.mark_saved()


def test_settings_are_typed_and_versioned(tmp_path):
    path = str(tmp_path / "s.ini")
    s = Settings(path)
    assert s.grid == "1/16" and s.recent_files == [] and s.soundfont == ""
    for i in range(15):
        s.add_recent(f"/tmp/f{i}.mid")
    s.add_recent("/tmp/f3.mid")
    s.grid = "1/8T"
    s.sync()
    t = Settings(path)
    assert t.recent_files[0] == "/tmp/f3.mid" and len(t.recent_files) == 10 and len(set(t.recent_files)) == 10
    assert t.grid == "1/8T" and t._int("version", 0) == VERSION


def test_gui_never_imports_torch_and_screenshot_command(tmp_path):
    song = tmp_path / "s.mid"
    save(small_song(), song)
    shot = tmp_path / "shot.png"
    code = ("import sys, runpy; sys.argv=['studio', sys.argv[1], '--screenshot', sys.argv[2]];\n"
            "from studio.cli import main\nrc = main(sys.argv[1:])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(rc)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", STUDIO_SCORE="0")
    r = subprocess.run([sys.executable, "-c", code, str(song), str(shot)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-800:]
    from PySide6.QtGui import QImage

    img = QImage(str(shot))
    assert (img.width(), img.height()) == (1600, 1000)
    r = subprocess.run([sys.executable, "-m", "studio", str(tmp_path / "missing.mid"), "--screenshot", str(shot)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "missing.mid" in r.stderr


def test_without_audio_the_editor_works_and_a_banner_says_why(qtbot, tmp_path, monkeypatch):
    from studio.ui.mainwindow import MainWindow

    monkeypatch.setenv("STUDIO_NO_AUDIO", "1")
    win = MainWindow(settings=Settings(str(tmp_path / "s.ini")), autosave_folder=str(tmp_path / "a"),
                     start_audio=False, score=False)
    qtbot.addWidget(win, before_close_func=lambda w: w.doc.mark_saved())
    with qtbot.waitSignal(win.transport.ready, timeout=20000) as blocker:
        win.transport.start_engine()
    ok, why = blocker.args
    assert not ok and "STUDIO_NO_AUDIO" in why
    assert not win.banner.isHidden() and "Playback is off" in win.banner.text()
    assert not win.transport.play()  # nothing happens, nothing breaks
    win.editor.transpose(1)  # editing still works


def test_dropping_a_file_opens_it(window, tmp_path, qtbot):
    from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    win = window()
    src = tmp_path / "dropped.mid"
    save(small_song(), src)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(src))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    win.dropEvent(ev)
    assert win.doc.song.notes_equal(load(src)) and "dropped.mid" in win.windowTitle()


TRANSPORT_SCRIPT = """
import json, os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import studio.ui
from PySide6.QtCore import QCoreApplication
from studio.core.song import Note, Song, Track
from studio.ui.screenshot import wait_until
from studio.ui.document import Document
from studio.ui.transport import Transport

app = QCoreApplication([])
doc = Document(Song(tracks=[Track("a", notes=[Note(i * 240, 60 + i, 240) for i in range(16)])]))
tr = Transport(doc)
ready, pos, states = [], [], []
tr.ready.connect(lambda ok, why: ready.append((ok, why)))
tr.position.connect(pos.append)
tr.playingChanged.connect(states.append)
tr.start_engine()
wait_until(app, lambda: ready, 30)
played = tr.play(0)
wait_until(app, lambda: states[-1:] == [False], 20)
tr.close()
print(json.dumps({"ready": ready, "played": played, "pos": pos, "states": states}))
"""


def test_transport_plays_through_the_audio_engine_and_the_playhead_follows(tmp_path):
    """The Qt adapter over the real player, on ALSA's null device (runs unclocked, so fast)."""
    conf = os.path.join(ROOT, "tests", "asound_null.conf")
    env = dict(os.environ, ALSA_CONFIG_PATH=conf)
    env.pop("STUDIO_NO_AUDIO", None)
    r = subprocess.run([sys.executable, "-c", TRANSPORT_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-600:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if not out["ready"][0][0]:
        pytest.skip(f"no audio engine here: {out['ready'][0][1]}")
    assert out["played"] and out["states"] == [True, False]
    assert out["pos"] == sorted(out["pos"]) and out["pos"][-1] >= 3600


def test_score_engraves_in_a_helper_process_and_is_not_blank(qtbot, tmp_path):
    from studio.ui.mainwindow import MainWindow

    win = MainWindow(settings=Settings(str(tmp_path / "s.ini")), autosave_folder=str(tmp_path / "a"),
                     start_audio=False, score=True)
    qtbot.addWidget(win, before_close_func=lambda w: (w.doc.mark_saved(), w.score.close_engraver()))
    win.resize(1600, 1000)
    win.show()
    with qtbot.waitSignal(win.score.engraved, timeout=120000):
        win.doc.replace_song(small_song())
    e = win.score.engraving
    assert e.pages and not e.error and len(e.notes) == 10
    img = win.score.images[0]
    dark = sum(1 for x in range(0, img.width(), 3) for y in range(0, img.height(), 3)
               if img.pixelColor(x, y).lightness() < 100)
    assert dark > 50  # staff lines, clefs and note heads are there: QtSvg did not draw it blank
    # an edit re-engraves (debounced, in the background)
    with qtbot.waitSignal(win.score.engraved, timeout=120000):
        win.doc.set_selection(win.doc.track.notes[:1])
        win.editor.delete_selection()
    assert len(win.score.engraving.notes) == 9
