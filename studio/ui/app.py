"""Starting the editor: ``run_gui(args)`` for ``studio [FILE]``, and the ``--screenshot`` mode
that lays the window out off-screen, writes a PNG of it and exits.

Hidden helpers for checking screens without a display (environment variables):
``STUDIO_SCREENSHOT_SELECT=A:B`` selects the current track's notes in bars A..B (1-based) first,
``STUDIO_SCREENSHOT_TRACK=N`` makes track N (1-based) current, and
``STUDIO_SCREENSHOT_DIALOG=export|properties`` opens that dialog and draws it over the window.
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


def wait_until(app, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


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

    if shot and assist:
        from .assistant.run import assist_screenshot

        return assist_screenshot(app, MainWindow, path, shot, size, assist)
    if shot:
        return _screenshot(app, MainWindow, path, shot, size)
    win = MainWindow()
    if os.environ.get("STUDIO_BENCH_FIRST_PAINT"):  # benchmark hook: report the first paint, then quit
        _quit_after_first_paint(app, win)
    win.show()
    if path:
        win.open_path(path, ask=False)
    win.assistant.start_worker()  # the models load and warm up in the background
    if assist:
        win.assistant.set_kind(assist)
        win.assistant.generate()
    _windows.append(win)
    if not os.environ.get("STUDIO_NO_AUTOSAVE_RESTORE"):
        from PySide6.QtCore import QTimer

        QTimer.singleShot(300, lambda: offer_restore(win, MainWindow))
    return app.exec()


def _quit_after_first_paint(app, win) -> None:
    """Print the wall-clock time of the roll's first paint with notes (or of an empty roll), then quit."""
    from PySide6.QtCore import QEvent, QObject, QTimer

    class Watch(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint and not getattr(self, "done", False):
                wanted = os.environ.get("STUDIO_BENCH_FIRST_PAINT") != "notes" or win.doc.song.note_count > 0
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


def open_for_screenshot(app, window_class, path, size, folder):
    """A window laid out at ``size`` with ``path`` open, for a screenshot.

    It gets a fresh settings file and autosave folder inside ``folder`` (the user's saved window
    state must neither change the picture nor be changed by it), and the screenshot variables
    ``STUDIO_SCREENSHOT_TRACK=N`` / ``STUDIO_SCREENSHOT_SELECT=A:B`` are applied."""
    from .settings import Settings

    settings = Settings(os.path.join(folder, "screenshot.ini"))
    win = window_class(settings=settings, autosave_folder=folder, start_audio=False)
    win.quiet = True
    win.resize(*size)
    win.show()
    app.processEvents()
    if path and not win.open_path(path, ask=False):
        raise StudioError(win.statusBar().currentMessage() or f"{path}: cannot open")
    win.resize(*size)
    win.doc.set_current_track(int(os.environ.get("STUDIO_SCREENSHOT_TRACK", "1") or 1) - 1)
    sel = os.environ.get("STUDIO_SCREENSHOT_SELECT", "")
    if sel:
        _select_bars(win, sel)
    app.processEvents()
    return win


def _screenshot(app, window_class, path, shot, size) -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as autosave_dir:
        win = open_for_screenshot(app, window_class, path, size, autosave_dir)
        if win.score is not None:
            win.score.refresh_now()
            wait_until(app, lambda: win.score.collapsed or win.score.engraving is not None and not win.score.engraver.busy
                       and not win.score._debounce.isActive() and not win.score._rasters, 180)
            wait_until(app, lambda: False, 0.2)
        dialog = None
        kind = os.environ.get("STUDIO_SCREENSHOT_DIALOG", "")
        if kind == "export":
            out = os.path.join(autosave_dir, "export.wav")
            job = win.export_to(out)
            if job is not None:
                wait_until(app, lambda: job.dialog.value() >= 300 or not job.running, 120)
                dialog = job.dialog
        elif kind == "properties":
            from .songprops import SongPropertiesDialog

            dialog = SongPropertiesDialog(win.doc.song, win)
            dialog.show()
            app.processEvents()
        pix = win.grab()
        if dialog is not None:
            _draw_dialog(pix, dialog)
            if kind == "export" and win.export_job is not None:
                win.export_job.cancelled = True
                wait_until(app, lambda: not win.export_job.running, 30)
        tmp = shot + ".part.png"
        if not pix.save(tmp, "PNG"):
            raise StudioError(f"{shot}: cannot write the screenshot")
        os.replace(tmp, shot)
        win.doc.mark_saved()  # nothing to ask about on the way out
        win.close()
    return 0


def _draw_dialog(pix, dialog) -> None:
    """Draw ``dialog`` over the window picture with a title bar, as a window manager would."""
    from PySide6.QtCore import QPoint, QRect, Qt
    from PySide6.QtGui import QColor, QFont, QPainter, QPen

    dpix = dialog.grab()
    bar = 26
    x, y = (pix.width() - dpix.width()) // 2, (pix.height() - dpix.height()) // 3
    p = QPainter(pix)
    p.fillRect(QRect(x - 6, y - bar - 4, dpix.width() + 12, dpix.height() + bar + 12), QColor(0, 0, 0, 40))  # shadow
    p.fillRect(QRect(x, y - bar, dpix.width(), bar), QColor(226, 229, 234))
    font = QFont()
    font.setBold(True)
    p.setFont(font)
    p.setPen(QColor(40, 40, 48))
    p.drawText(QRect(x, y - bar, dpix.width(), bar), Qt.AlignmentFlag.AlignCenter, dialog.windowTitle())
    p.drawPixmap(QPoint(x, y), dpix)
    p.setPen(QPen(QColor(120, 124, 134), 1))
    p.drawRect(QRect(x, y - bar, dpix.width() - 1, dpix.height() + bar - 1))
    p.end()


def _select_bars(win, text: str) -> None:
    from ..core.timing import bars

    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError:
        raise StudioError(f"STUDIO_SCREENSHOT_SELECT={text!r}: expected A:B (1-based bars)") from None
    bs = bars(win.doc.song)
    a, b = max(1, a), min(len(bs), b)
    t0, t1 = bs[a - 1].start, bs[b - 1].end
    win.doc.set_selection([n for n in win.doc.track.notes if t0 <= n.start < t1])
    win.editor.view.scroll_to_tick(max(0, t0 - bs[a - 1].length // 2), 0.0)
    sel = win.doc.selected_notes()
    if sel:
        win.editor.view.center_on_pitch(sorted(n.pitch for n in sel)[len(sel) // 2])
    if win.score is not None:
        win.score.first_bar = a - 1
