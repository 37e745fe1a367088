"""Pictures of the editor without a display: ``studio FILE --screenshot PNG`` lays a window out
off-screen, writes a PNG of it and exits.

What the picture shows is given by the caller (hidden command-line options, see
``studio.cli.gui_parser``): ``track`` (1-based) is made current, ``select="A:B"`` selects its
notes in bars A..B, ``dialog="export"|"properties"`` opens that dialog and draws it over the window.
"""

from __future__ import annotations

import os
import time

from ..core.errors import StudioError


def wait_until(app, predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def open_for_screenshot(app, window_class, path, size, folder, track: int = 1, select: str | None = None):
    """A window laid out at ``size`` with ``path`` open, for a screenshot.

    It gets a fresh settings file and autosave folder inside ``folder`` (the user's saved window
    state must neither change the picture nor be changed by it); track ``track`` (1-based) is made
    current and, with ``select="A:B"``, its notes in bars A..B are selected."""
    from .settings import Settings

    settings = Settings(os.path.join(folder, "screenshot.ini"))
    win = window_class(settings=settings, autosave_folder=folder, start_audio=False)
    win.quiet = True
    win.resize(*size)
    win.show()
    ready = []  # the audio engine starts as in the app, so the picture shows playback on or off
    win.transport.ready.connect(lambda ok, _why: ready.append(ok))
    win.transport.start_engine()
    wait_until(app, lambda: bool(ready), 30)
    app.processEvents()
    if path and not win.open_path(path, ask=False):
        raise StudioError(win.statusBar().currentMessage() or f"{path}: cannot open")
    win.resize(*size)
    win.doc.set_current_track(max(1, int(track or 1)) - 1)
    if select:
        _select_bars(win, select)
    app.processEvents()
    return win


def screenshot(app, window_class, path, shot, size, track: int = 1, select: str | None = None,
               dialog: str | None = None) -> int:
    """Write a PNG of a window with ``path`` open (see :func:`open_for_screenshot`), with ``dialog``
    ("export" or "properties") drawn over it."""
    import tempfile

    kind = dialog or ""
    with tempfile.TemporaryDirectory() as autosave_dir:
        win = open_for_screenshot(app, window_class, path, size, autosave_dir, track, select)
        if win.score is not None:
            win.score.refresh_now()
            wait_until(app, lambda: win.score.collapsed or win.score.engraving is not None and not win.score.engraver.busy
                       and not win.score._debounce.isActive() and not win.score._rasters, 180)
            wait_until(app, lambda: False, 0.2)
        dialog = None
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
        raise StudioError(f"--select {text!r}: expected A:B (1-based bars)") from None
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
