"""Starting the editor: ``run_gui(args)`` for ``studio [FILE]`` and its ``--screenshot`` mode
(``screenshot.py``). Tools and tests steer it with hidden options (``studio.cli.gui_parser``), not
environment variables: ``--track/--select/--dialog`` for a picture, ``--first-paint`` for the
start-up benchmark, ``--no-restore`` to skip the offer to restore autosaved work.
"""

from __future__ import annotations

import os
import sys
import time

from ..core.errors import StudioError

_windows: list = []  # keeps restored windows alive


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise StudioError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x1000") from None
    if not (200 <= w <= 8000 and 200 <= h <= 8000):
        raise StudioError(f"--size {text!r}: width and height must be 200..8000 pixels")
    return w, h


def make_app(argv=None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv or sys.argv[:1]))
    app.setApplicationName("Cantor Studio")
    app.setOrganizationName("Cantor")
    app.setApplicationDisplayName("Cantor Studio")
    return app


def run_gui(args) -> int:
    assist = getattr(args, "assist", None)
    size = _parse_size(getattr(args, "size", None) or "1600x1000")
    shot = getattr(args, "screenshot", None)
    path = getattr(args, "file", None)
    if shot:
        if not shot.lower().endswith(".png"):
            raise StudioError(f"{shot}: the screenshot must be a .png file")
        folder = os.path.dirname(os.path.abspath(shot))
        if not os.path.isdir(folder):
            raise StudioError(f"{shot}: the folder {folder} does not exist")
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    if path and not os.path.exists(path):
        raise StudioError(f"{path}: no such file")
    from .. import logs

    logs.setup("gui")
    app = make_app()
    from .mainwindow import MainWindow

    track, select = getattr(args, "track", 1), getattr(args, "select", None)
    if shot and assist:
        from .assistant.run import assist_screenshot

        return assist_screenshot(app, MainWindow, path, shot, size, assist, track, select,
                                 getattr(args, "assist_timeout", None))
    if shot:
        from .screenshot import screenshot

        return screenshot(app, MainWindow, path, shot, size, track, select, getattr(args, "dialog", None))
    win = MainWindow()
    first_paint = getattr(args, "first_paint", None)
    if first_paint:  # benchmark: report the first paint, then quit
        _quit_after_first_paint(app, win, first_paint == "notes")
    win.show()
    if path:
        win.open_path(path, ask=False)
    win.assistant.start_worker()  # the models load and warm up in the background
    if assist:
        win.assistant.set_kind(assist)
        win.assistant.generate()
    _windows.append(win)
    if not (getattr(args, "no_restore", False) or first_paint):
        from PySide6.QtCore import QTimer

        QTimer.singleShot(300, lambda: offer_restore(win, MainWindow))
    return app.exec()


def _quit_after_first_paint(app, win, notes: bool) -> None:
    """Print the wall-clock time of the roll's first paint with notes (or of an empty roll), then quit."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class Watch(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and not getattr(self, "done", False):
                wanted = not notes or win.doc.song.note_count > 0
                if wanted:
                    self.done = True
                    print(f"first-paint {time.time():.6f} {time.process_time():.6f}", flush=True)
                    QTimer.singleShot(0, app.quit)
            return False

    watch = Watch(win)
    win.editor.view.viewport().installEventFilter(watch)


def offer_restore(win, window_class, orphans=None, ask: bool = True) -> list:
    """Offer to bring back documents autosaved by an editor that did not exit cleanly."""
    from PySide6.QtWidgets import QMessageBox

    from ..io import load
    from .autosave import find_orphans

    orphans = find_orphans(win.autosaver.folder) if orphans is None else orphans
    if not orphans:
        return []
    if ask:
        names = "\n".join(f"• {o.title}" + (f"  ({o.original_path})" if o.original_path else "") for o in orphans)
        answer = QMessageBox.question(
            win, "Restore unsaved work?",
            f"Cantor Studio did not close properly. Restore {len(orphans)} unsaved document(s)?\n\n{names}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Cancel:
            return []  # keep them for next time
        if answer == QMessageBox.StandardButton.No:
            for o in orphans:
                o.discard()
            return []
    restored = []
    for o in orphans:
        try:
            song = load(o.song_path)
        except StudioError as exc:
            win.statusBar().showMessage(f"could not restore {o.title}: {exc}", 8000)
            continue
        target = win if (not restored and not win.doc.modified and not win.doc.path and win.doc.song.note_count == 0) \
            else window_class(settings=win.settings, autosave_folder=win.autosaver.folder)
        keep = o.original_path if o.original_path.lower().endswith(".studio") else ""
        target.doc.replace_song(song, keep)
        target.source_name = o.title
        target.doc.mark_restored()
        target.update_title()
        target.autosaver.tick()  # the new autosave exists before the old one goes
        o.discard()
        if target is not win:
            target.show()
            _windows.append(target)
        restored.append(target)
    return restored
