"""The assistant dock: Continue / Harmonize / Vary parameters, Generate and Cancel with
progress, the takes list (audition, A/B, Accept, Discard) and the voice-leading checker.

The panel never changes the song except through :class:`~.takes.AcceptTake` on the undo
stack.  Requests go to the model worker process through :class:`~.worker_qt.AssistantWorker`.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QItemSelectionModel, Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractSpinBox, QDockWidget, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QListView, QProgressBar,
                               QPushButton, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from ...core import takediff
from ...core.song import Song
from ...core.timing import bars
from . import checker as chk
from . import requests as rq
from .history import HistoryWidget
from .params import ParamPages
from .takes import AcceptTake, TakeEntry, TakesModel
from .worker_qt import AssistantWorker

MAX_CHECK_NOTES = 3000  # the checker runs after every edit; longer pieces are not checked live
VERB = {"continue": "Continuing", "harmonize": "Harmonizing", "vary": "Varying", "regenerate": "Redrawing",
        "probe": "Working"}


class AssistantPanel(ParamPages, QDockWidget):
    takesArrived = Signal(int)  # how many
    jobFinished = Signal(str)  # "takes", "failed", "cancelled"

    def __init__(self, doc, worker: AssistantWorker | None = None, parent=None):
        super().__init__("Assistant", parent)
        self.setObjectName("AssistantDock")
        self.doc = doc
        self.worker = worker or AssistantWorker(parent=self)
        self.cursor_tick = lambda: 0  # set by install_assistant: the playhead
        self.loop_region = lambda: None  # the ruler's loop region
        self.play_song = None  # callable(song, start_tick) or None
        self.stop_playing = None
        self.model = TakesModel(self)
        # called with the TakeEntry shown, or None (plain callbacks: a Qt signal carrying None
        # upsets reference counting in this PySide6 version)
        self.take_listeners: list = []
        self.shown: TakeEntry | None = None
        self._plan: rq.Plan | None = None
        self._plan_doc_song = None
        self._verb = "Working"
        self._t_submit = 0.0
        self.last_latency: float | None = None  # seconds from click to first take
        self._startup_status = False  # the status line shows worker start-up news
        self.issues: list = []
        self._issue_song: Song | None = None
        self._issue_tracks: list[int] | None = None
        self._build()
        self._connect()
        self._check_timer = QTimer(self)
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(200)
        self._check_timer.timeout.connect(self.run_checker)
        self._check_timer.start()
        self._where_timer = QTimer(self)  # the playhead moves 30 times a second while playing
        self._where_timer.setSingleShot(True)
        self._where_timer.setInterval(120)
        self._where_timer.timeout.connect(self._update_where)

    # ---- widgets ------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        lay = QVBoxLayout(body)
        lay.setContentsMargins(6, 6, 6, 0)
        self.tabs = QTabWidget()
        self.tabs.addTab(self._continue_page(), "Continue")
        self.tabs.addTab(self._harmonize_page(), "Harmonize")
        self.tabs.addTab(self._vary_page(), "Vary")
        for i, tip in enumerate(("Write more bars after the selection, the playhead or the last note",
                                 "Write alto, tenor and bass under a melody (a four-part chorale)",
                                 "Rewrite the selection, the loop region or the track, keeping its shape")):
            self.tabs.setTabToolTip(i, tip)
        for form in self.tabs.findChildren(QFormLayout):  # a label explains its own setting
            for r in range(form.rowCount()):
                lab = form.itemAt(r, QFormLayout.ItemRole.LabelRole)
                fld = form.itemAt(r, QFormLayout.ItemRole.FieldRole)
                if lab is None or fld is None or lab.widget() is None:
                    continue
                w = fld.widget() or (fld.layout().itemAt(0).widget() if fld.layout() and fld.layout().count() else None)
                if w is not None and w.toolTip() and not lab.widget().toolTip():
                    lab.widget().setToolTip(w.toolTip())
        lay.addWidget(self.tabs)
        self.where = QLabel()
        self.where.setWordWrap(True)
        self.where.setMinimumHeight(2 * self.where.fontMetrics().lineSpacing() + 2)
        self.where.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.where.setStyleSheet("color:#555;")
        lay.addWidget(self.where)
        row = QHBoxLayout()
        self.generate_btn = QPushButton("Generate")
        self.generate_btn.setDefault(True)
        self.generate_btn.setToolTip("Send the request to the model (Ctrl+G)")
        self.generate_btn.setShortcut("Ctrl+G")
        self.generate_btn.setStyleSheet("font-weight:bold; padding:4px 14px;")
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop the model (Esc)")
        self.cancel_btn.setEnabled(False)
        row.addWidget(self.generate_btn, 1)
        row.addWidget(self.cancel_btn)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("Idle")
        lay.addWidget(self.progress)
        self.status = QLabel("The model worker starts with the first request.")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(2 * self.status.fontMetrics().lineSpacing() + 4)
        self.status.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        lay.addWidget(self.status)
        lay.addStretch(1)

        takes_page = QWidget()
        bl = QVBoxLayout(takes_page)
        bl.setContentsMargins(0, 4, 0, 0)
        self.takes_view = QListView()
        self.takes_view.setModel(self.model)
        self.takes_view.setMinimumHeight(90)
        self.takes_view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.takes_view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.takes_view.setToolTip("Pick a take to see it over the roll; nothing changes until you Accept it")
        bl.addWidget(self.takes_view, 1)
        r1 = QHBoxLayout()
        self.play_take_btn = QPushButton("▶ Take")
        self.play_take_btn.setToolTip("Play the song with this take (A)")
        self.play_orig_btn = QPushButton("▶ Original")
        self.play_orig_btn.setToolTip("Play the song as it is, from the same place (B)")
        self.stop_btn = QPushButton("■")
        self.stop_btn.setToolTip("Stop playback")
        self.stop_btn.setMaximumWidth(34)
        for b in (self.play_take_btn, self.play_orig_btn, self.stop_btn):
            r1.addWidget(b)
        bl.addLayout(r1)
        r2 = QHBoxLayout()
        self.accept_btn = QPushButton("Accept")
        self.accept_btn.setToolTip("Apply this take to the song (one undo step)")
        self.accept_btn.setStyleSheet("font-weight:bold;")
        self.discard_btn = QPushButton("Discard")
        self.discard_btn.setToolTip("Drop this take")
        self.clear_btn = QPushButton("Discard all")
        self.clear_btn.setToolTip("Drop every take in the list")
        for b in (self.accept_btn, self.discard_btn, self.clear_btn):
            r2.addWidget(b)
        bl.addLayout(r2)
        self.history = HistoryWidget()
        box = QTabWidget()
        box.addTab(takes_page, "Takes")
        box.addTab(self.history, "AI history")
        self.lower_tabs = box

        vbox = QGroupBox("Voice leading")
        vl = QVBoxLayout(vbox)
        vl.setContentsMargins(4, 4, 4, 4)
        self.checker = chk.CheckerWidget()
        self.checker._span_fallback = self._selection_span
        vl.addWidget(self.checker)
        # three panes the user can resize (the main window remembers the sizes): the request,
        # the takes, the checker. The request pane scrolls when the window is short.
        top = QScrollArea()
        top.setWidget(body)
        top.setWidgetResizable(True)
        top.setFrameShape(QFrame.Shape.NoFrame)
        top.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        top.setMinimumHeight(70)
        for sb in self.tabs.findChildren(QAbstractSpinBox):  # "model default" need not set the panel's width
            sb.setMinimumWidth(70)
        for form in self.tabs.findChildren(QFormLayout):  # a long row puts its label above it
            form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        box.setMinimumHeight(150)
        # what the request will write, Generate, the progress and the status stay in view under the
        # scrolling parameters
        lay.removeWidget(self.where)
        lay.removeItem(row)
        lay.removeWidget(self.progress)
        lay.removeWidget(self.status)
        self.status.setMinimumHeight(self.status.fontMetrics().lineSpacing() + 4)
        request = QWidget()
        rl = QVBoxLayout(request)
        rl.setContentsMargins(0, 0, 0, 2)
        rl.setSpacing(2)
        rl.addWidget(top, 1)
        under = QWidget()  # beside the scroll area, not inside it: no extra width
        ul = QVBoxLayout(under)
        ul.setContentsMargins(6, 0, 6, 0)
        ul.setSpacing(4)
        ul.addWidget(self.where)
        ul.addLayout(row)
        ul.addWidget(self.progress)
        ul.addWidget(self.status)
        rl.addWidget(under)
        self._request_scroll = top
        split = QSplitter(Qt.Orientation.Vertical)
        split.setObjectName("AssistantSplitter")
        for w in (request, box, vbox):
            split.addWidget(w)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 2)
        split.setStretchFactor(2, 1)
        split.setChildrenCollapsible(False)
        self.splitter = split
        self._checker_box, self._takes_box = vbox, box
        outer = QWidget()
        ol = QVBoxLayout(outer)
        ol.setContentsMargins(0, 0, 0, 4)
        ol.addWidget(split)
        self.setWidget(outer)
        self.setMinimumWidth(250)
        self._update_buttons()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        top = self._request_scroll  # never narrower than the request's widgets (no sideways scrolling)
        top.setMinimumWidth(top.widget().minimumSizeHint().width() + top.verticalScrollBar().sizeHint().width())

    def default_split(self) -> None:
        """The request pane at its natural height when there is room, the rest shared."""
        total = max(1, self.splitter.height())
        fixed = self.splitter.widget(0).sizeHint().height() - self._request_scroll.sizeHint().height()
        want = self._request_scroll.widget().sizeHint().height() + max(0, fixed)
        top = min(want, max(200, total - 300))
        rest = max(0, total - top)
        self.splitter.setSizes([top, rest // 2, rest - rest // 2])

    def _connect(self) -> None:
        w = self.worker
        w.progress.connect(self._progress)
        w.takesReady.connect(self._takes_ready)
        w.failed.connect(self._failed)
        w.cancelled.connect(self._cancelled)
        w.deviceChanged.connect(self._device)
        w.warmed.connect(self._warmed)
        w.busyChanged.connect(lambda _b: self._update_buttons())
        self.generate_btn.clicked.connect(self.generate)
        self.cancel_btn.clicked.connect(self.cancel)
        self.takes_view.selectionModel().currentChanged.connect(lambda cur, _prev: self._show_row(cur.row()))
        self.model.rowsRemoved.connect(lambda *_: self._update_buttons())
        self.model.modelReset.connect(lambda *_: self._update_buttons())
        self.accept_btn.clicked.connect(self.accept_current)
        self.discard_btn.clicked.connect(self.discard_current)
        self.clear_btn.clicked.connect(self.discard_all)
        self.play_take_btn.clicked.connect(lambda: self.audition(take=True))
        self.play_orig_btn.clicked.connect(lambda: self.audition(take=False))
        self.stop_btn.clicked.connect(lambda: self.stop_playing() if self.stop_playing else None)
        self.tabs.currentChanged.connect(lambda _i: self._update_where())
        self.v_lock.toggled.connect(lambda _on: self._update_where())
        self.h_keep_sb.toggled.connect(lambda _on: self._update_where())
        self.c_bars.valueChanged.connect(lambda _v: self._update_where())
        for sig in (self.doc.selectionChanged, self.doc.currentTrackChanged, self.doc.tracksChanged):
            sig.connect(lambda *_: self._update_where())
        for sig in (self.doc.notesChanged, self.doc.mapsChanged):
            sig.connect(lambda *_: self.playhead_moved())
        self._song_ref = self.doc.song
        self.doc.tracksChanged.connect(self._song_maybe_replaced)
        self.doc.notesChanged.connect(lambda *_: self._check_timer.start())
        self.doc.tracksChanged.connect(lambda *_: self._check_timer.start())
        self.history.reuse.connect(self.use_settings)
        for sig in (self.doc.notesChanged, self.doc.tracksChanged):
            sig.connect(lambda *_: self.history.refresh(self.doc.song))
        self.history.refresh(self.doc.song)
        self.checker.issueActivated.connect(self._issue_activated)
        self.checker.redrawRequested.connect(self.redraw_voice)
        self.checker.kindsChanged.connect(self.run_checker)

    def _song_maybe_replaced(self) -> None:
        """Another song was loaded into the document: its takes and a running job are void."""
        if self.doc.song is self._song_ref:
            return
        self._song_ref = self.doc.song
        if self.worker.busy:
            self.worker.cancel()
        if self.model.entries:
            self.discard_all()

    # ---- worker -------------------------------------------------------------------------------
    def start_worker(self) -> None:
        """Start the model worker (it warms the models up in the background)."""
        if not self.worker.client.alive:
            self.worker.start()
            if not self.worker.busy:
                self._set_status("Starting the model worker…")
                self._startup_status = True

    def _device(self, name: str) -> None:
        if self._startup_status:
            self._set_status(f"Models run on {name}; loading them in the background…")
            self._startup_status = True

    def _warmed(self, models, seconds: float) -> None:
        if self._startup_status:
            missing = [m for m in ("continuation", "harmonizer", "variation") if m not in models]
            text = f"Ready on {self.worker.device}" + (f": {', '.join(models)} loaded in {seconds:.1f} s." if models else ".")
            if missing:
                text += f" Not available: {', '.join(missing)} (no weights)."
            self._set_status(text)
            self._startup_status = True

    def playhead_moved(self, _tick: int = 0) -> None:
        """The description under the parameters follows the playhead (Continue starts there)."""
        self._where_timer.start()

    # ---- requests -----------------------------------------------------------------------------
    def _update_where(self) -> None:
        try:
            self.where.setText(self.plan().where)
        except Exception as exc:  # the summary is a hint; never let it break the panel
            self.where.setText(str(exc))

    def generate(self) -> int | None:
        """Send the current tab's request; returns the job id (None when there is nothing to do)."""
        if not any(t.notes for t in self.doc.song.tracks):
            self._set_status("Draw or open some notes first: the assistant works from the music in the song.", error=True)
            return None
        return self.submit(self.plan())

    def submit(self, plan: rq.Plan) -> int:
        self.start_worker()
        self._plan = plan
        self._plan_doc_song = self.doc.song
        self._t_submit = time.perf_counter()
        job = self.worker.submit(plan.request)
        verb = VERB.get(plan.request.kind, "Working")
        self.progress.setValue(0)
        self.progress.setFormat(f"{verb}… %p%")
        self._verb = verb
        self._set_status(f"{verb}: {plan.where}." if plan.where else f"{verb}…")
        self._update_buttons()
        return job

    def cancel(self) -> None:
        if self.worker.busy:
            self.worker.cancel()
            self.progress.setFormat("Cancelling…")

    def redraw_voice(self, voice: int, start: int, end: int) -> int | None:
        """Ask the harmonizer to rewrite one voice between two ticks (-1: the whole piece)."""
        source, base = self._checked_song(), self.doc.song.copy()
        if chk.satb_tracks(source) is None:
            self._set_status("Redrawing a voice needs four voices (harmonize the melody first).", error=True)
            return None
        if start >= 0 and end > start:
            start, end = self._pad_to_beats(source, start, end)
        else:
            start = end = None
        plan = rq.regenerate_plan(source, base, [voice], start, end, rq._none_if_min(self.h_temp.value(), 0.0),
                                  self.h_cands.value() or None, self.h_seed.value() or None)
        return self.submit(plan)

    @staticmethod
    def _pad_to_beats(song: Song, start: int, end: int) -> tuple[int, int]:
        """Widen a span to whole beats with one beat of room on each side (the model needs context
        to write a new line that joins the old one)."""
        beats = chk.beat_ticks(song) or [0]
        before = [b for b in beats if b <= start]
        after = [b for b in beats if b >= end]
        a = before[-2] if len(before) >= 2 else (before[-1] if before else 0)
        b = after[1] if len(after) >= 2 else (after[0] if after else end)
        return a, max(b, a + 1)

    def _selection_span(self):
        sel = self.doc.selected_notes()
        if not sel:
            return None
        return min(n.start for n in sel), max(n.end for n in sel)

    # ---- replies ------------------------------------------------------------------------------
    def _progress(self, _job: int, fraction: float, message: str) -> None:
        self.progress.setValue(int(round(1000 * fraction)))
        elapsed = time.perf_counter() - self._t_submit
        self.progress.setFormat(f"{message or self._verb + '…'} %p% · {elapsed:.0f} s")

    def _takes_ready(self, _job: int, takes: list) -> None:
        plan = self._plan
        if self._plan_doc_song is not self.doc.song:  # another song was loaded meanwhile
            self._set_status("The takes were for the song that was open before; they were dropped.")
            self.jobFinished.emit("cancelled")
            return
        dt = time.perf_counter() - self._t_submit
        self.last_latency = dt
        entries = []
        for t in takes:
            d = takediff.diff(plan.base, t.song, plan.anchor, plan.by_index)
            entries.append(TakeEntry(t, plan.request.kind, plan.base, d))
        first_row = len(self.model.entries)
        self.model.add(entries)
        self.progress.setValue(1000)
        self.progress.setFormat("Done")
        n = len(entries)
        same = sum(1 for e in entries if e.diff.empty)
        msg = f"{n} take{'s' if n != 1 else ''} in {dt:.1f} s on {self.worker.device or 'the worker'}."
        if same:
            msg += f" {same} of them change{'s' if same == 1 else ''} nothing."
        self._set_status(msg + " Pick one to hear it; Accept keeps it.")
        if entries:
            self.takes_view.setCurrentIndex(self.model.index(first_row))
        self._update_buttons()
        self.takesArrived.emit(n)
        self.jobFinished.emit("takes")

    def _failed(self, _job: int, message: str) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("Failed")
        self._set_status(message, error=True)
        self._update_buttons()
        self.jobFinished.emit("failed")

    def _cancelled(self, _job: int) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("Cancelled")
        self._set_status("Cancelled. The song is unchanged.")
        self._update_buttons()
        self.jobFinished.emit("cancelled")

    def _set_status(self, text: str, error: bool = False) -> None:
        self._startup_status = False  # worker start-up news no longer overwrites this
        self.status.setText(text)
        self.status.setStyleSheet("color:#b00020;" if error else "color:#333;")

    # ---- takes --------------------------------------------------------------------------------
    def current_entry(self) -> TakeEntry | None:
        return self.model.entry(self.takes_view.currentIndex().row())

    def _show_row(self, row: int) -> None:
        self.show_take(self.model.entry(row))

    def show_take(self, entry: TakeEntry | None) -> None:
        self.shown = entry
        if entry is not None:
            idx = self.model.index(self.model.entries.index(entry))
            if self.takes_view.currentIndex() != idx:
                self.takes_view.selectionModel().setCurrentIndex(idx, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        for fn in list(self.take_listeners):
            fn(entry)
        self._update_buttons()
        self.run_checker()

    def accept_current(self) -> bool:
        e = self.current_entry()
        if e is None:
            return False
        now, then = self.doc.song.tracks, e.base.tracks
        if len(now) != len(then) or any(a.name != b.name for a, b in zip(now, then)):
            self._set_status("Tracks were added, removed or renamed since this take was made, so it no longer "
                             "fits the song. Generate it again.", error=True)
            return False
        cmd = AcceptTake(self.doc, e)
        row = self.model.entries.index(e)
        song = self.doc.song
        cmd.on_undo = lambda: self._put_back(e, row, song)  # Undo brings the take back to the list
        cmd.on_redo = lambda: self._take_out(e)
        self.doc.undo.push(cmd)
        self._set_status(f"Accepted: {e.diff.summary()}. Undo takes it back.")
        return True

    def _take_out(self, e: TakeEntry) -> None:
        self.model.remove(e)
        if self.shown is e:
            self.show_take(None)
            self.takes_view.clearSelection()
        self._update_buttons()

    def _put_back(self, e: TakeEntry, row: int, song) -> None:
        if self.doc.song is not song:  # another song was opened since
            return
        self.model.put_back(e, row)
        self.takes_view.setCurrentIndex(self.model.index(self.model.entries.index(e)))
        self._set_status(f"Take {e.number} is back in the list: Accept it again, or pick another.")
        self._update_buttons()

    def discard_current(self) -> None:
        e = self.current_entry()
        if e is not None:
            self.model.remove(e)
            self.show_take(self.current_entry())

    def discard_all(self) -> None:
        self.model.clear()
        self.show_take(None)

    def audition(self, take: bool = True) -> bool:
        e = self.current_entry()
        if self.play_song is None:
            self._set_status("Playback is not available here.", error=True)
            return False
        if e is None and take:
            return False
        song = e.applied(self.doc.song) if (e is not None and take) else self.doc.song
        start = self._bar_start_before(e.diff.span[0]) if e is not None else int(self.cursor_tick() or 0)
        ok = bool(self.play_song(song, start))
        if not ok:
            self._set_status("Playback is off (no audio device or soundfont).", error=True)
        return ok

    def _bar_start_before(self, tick: int) -> int:
        bs = bars(self.doc.song, until=max(1, tick + 1))
        prev = [b.start for b in bs if b.start <= tick]
        return prev[-2] if len(prev) >= 2 and tick - prev[-1] < bs[0].length // 2 else (prev[-1] if prev else 0)

    def _update_buttons(self) -> None:
        busy = self.worker.busy
        has = self.current_entry() is not None
        self.generate_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        for b in (self.accept_btn, self.discard_btn, self.play_take_btn):
            b.setEnabled(has)
        self.clear_btn.setEnabled(bool(self.model.entries))

    # ---- checker ------------------------------------------------------------------------------
    def _checked_song(self) -> Song:
        """What the checker looks at: the song with the shown take applied, else the song."""
        return self.shown.applied(self.doc.song) if self.shown is not None else self.doc.song

    def run_checker(self) -> None:
        song = self._checked_song()
        if song.note_count > MAX_CHECK_NOTES:
            issues, idx = [], None
        else:
            issues, idx = chk.check_song(song, self.checker.kinds())
        self.issues, self._issue_song, self._issue_tracks = issues, song, idx
        where = f" in take {self.shown.number}" if self.shown is not None else ""
        assumed = chk.assumptions(song, idx)[3] if idx is not None else ""
        self.checker.show_issues(song, issues, idx is not None, where, assumed,
                                 chk.part_names(song, idx) if idx is not None else None)
        self.issuesChanged()

    def issuesChanged(self) -> None:
        """Hook for the overlay (set by install_assistant)."""

    def issue_parts(self) -> list:
        if self._issue_tracks is None or self._issue_song is None:
            return []
        return [self._issue_song.tracks[i].notes for i in self._issue_tracks]

    def _issue_activated(self, row: int) -> None:
        if not 0 <= row < len(self.issues) or self._issue_tracks is None:
            return
        iss = self.issues[row]
        self.issueSelected(row)
        notes = chk.issue_notes(self._issue_song, self._issue_tracks, iss)
        if self.shown is None:
            # select the notes in the song: the lower voice's track becomes current
            tracks = [t for t in notes if notes[t]]
            if tracks:
                cur = self.doc.current_track
                track = cur if cur in tracks else tracks[-1]
                self.doc.set_selection(notes[track], track=track)
        else:
            self._set_status("These notes belong to the take: Accept it to edit them, or Redraw the voice.")

    def issueSelected(self, row: int) -> None:
        """Hook for the overlay and the roll (set by install_assistant)."""
