"""The AI assistant in the editor: a dock on the right that sends Continue / Harmonize / Vary
requests to the model worker process and shows the takes that come back.

``install_assistant(window)`` adds the dock to a main window and connects it to the window's
document, piano roll, score and transport through their public attributes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QLabel

from .panel import AssistantPanel

__all__ = ["AssistantPanel", "install_assistant"]


def _view_menu(window):
    for a in window.menuBar().actions():
        if a.menu() is not None and a.text().replace("&", "") == "View":
            return a.menu()
    return None


def install_assistant(window) -> AssistantPanel:
    """Add the assistant dock to ``window`` (a MainWindow) and wire it up.

    The model worker is not started here (the editor's own tests open many windows); the
    app starts it right after the window shows (``panel.start_worker()``), and the first
    Generate starts it otherwise.
    """
    from .overlay import RollOverlay
    from .score_overlay import ScoreOverlay

    doc = window.doc
    panel = AssistantPanel(doc, parent=window)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, panel)
    menu = _view_menu(window)
    if menu is not None:
        act = panel.toggleViewAction()
        act.setText("&Assistant")
        menu.addAction(act)
    editor = getattr(window, "editor", None)
    view = getattr(editor, "view", None)
    panel.cursor_tick = lambda: getattr(view, "playhead", 0)
    panel.loop_region = lambda: getattr(view, "loop", None)

    # the device in the status bar
    device = QLabel("Models: not started")
    device.setToolTip("Where the assistant's models run")
    device.setStyleSheet("padding: 0 8px; color:#444;")
    window.statusBar().addPermanentWidget(device)
    panel.worker.deviceChanged.connect(lambda name: device.setText(f"Models: {name}"))
    panel.worker.warmed.connect(lambda models, s: device.setToolTip(
        f"Models loaded in {s:.1f} s: {', '.join(models) or 'none'}"))
    panel.device_label = device

    # overlays: the take's diff and the checker's marks over the roll; the take in the score
    if view is not None and hasattr(view, "overlays"):
        overlay = RollOverlay(view, doc)
        panel.roll_overlay = overlay

        def on_take(entry):
            overlay.set_take(entry)
            if entry is not None:
                _reveal(view, entry)

        panel.take_listeners.append(on_take)
        panel.issuesChanged = lambda: overlay.set_issues(panel.issues, panel.issue_parts())

        def on_issue(row):
            overlay.set_current_issue(row)
            iss = panel.issues[row]
            g = view.geom
            if not (0 <= g.x_of(iss.tick) <= view.viewport().width() * 0.9):
                view.scroll_to_tick(iss.tick, 0.3)

        panel.issueSelected = on_issue
        panel.run_checker()
    score = getattr(window, "score", None)
    if score is not None:
        panel.score_overlay = ScoreOverlay(score, doc)
        panel.take_listeners.append(panel.score_overlay.set_take)

    # playback of a take (A) against the song (B) through the editor's transport
    transport = getattr(window, "transport", None)
    if transport is not None:
        transport.position.connect(panel.playhead_moved)
        def play_song(song, start):
            if not transport.available or transport.player is None:
                return False
            transport.stop()
            transport.start_tick = int(start)
            return bool(transport.play(int(start), song=song))

        panel.play_song = play_song
        panel.stop_playing = transport.stop

    esc = QShortcut(QKeySequence(Qt.Key.Key_Escape), panel)
    esc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    esc.activated.connect(panel.cancel)
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(panel.worker.close)
    window.assistant = panel
    return panel


def _reveal(view, entry) -> None:
    """Scroll the roll so that the take's changes are in view."""
    d = entry.diff
    lo, hi = d.span
    if hi <= lo:
        return
    g = view.geom
    w = view.viewport().width()
    if not (w * 0.05 <= g.x_of(lo) and g.x_of(min(hi, lo + w / g.ppx * 0.7)) <= w):
        view.scroll_to_tick(lo, 0.25)  # some of the music before the take stays in view
    pitches = sorted(n.pitch for t in d.tracks for n in t.all_added + t.removed) or \
        sorted(n.pitch for t in d.new_tracks for n in t.notes)
    if pitches:
        view.center_on_pitch(pitches[len(pitches) // 2])
