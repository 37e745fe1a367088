"""The voice-leading checker in the assistant panel.

On four-voice (SATB) material — the song itself, or the take being auditioned — it lists the
problems :mod:`studio.core.voiceleading` finds (parallel fifths and octaves, crossing,
spacing, range, unresolved leading tones; optionally non-triadic sonorities), marks them in the
roll, and selects the notes of an issue when it is clicked.  "Redraw" asks the harmonizer to
rewrite one voice over the issue's span (or over the selection), keeping everything else.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                               QPushButton, QVBoxLayout, QWidget)

from ...core import voiceleading as vl
from ...core.satb import satb_tracks  # noqa: F401  (the four voices, as the requests see them)
from ...core.song import Note, Song
from ...core.timing import bars, first_bar_number
from ..notice import ElidedLabel

VOICES = ("soprano", "alto", "tenor", "bass")
DEFAULT_KINDS = frozenset(vl.KINDS) - {"non_tertian"}


def part_names(song: Song, idx: list[int]) -> list[str]:
    """What the four parts are called in the song, highest first: the tracks' own names (a string
    quartet's Violin I, Violin II, Viola, Cello), numbered where two share a name."""
    names = [song.tracks[i].name.strip() or f"Track {i + 1}" for i in idx]
    return [f"{n} (track {i + 1})" if names.count(n) > 1 else n for n, i in zip(names, idx)]


def beat_ticks(song: Song) -> list[int]:
    """Onsets of the beats (dotted quarters in compound meters) through the end of the song."""
    out = []
    for b in bars(song):
        ts = b.meter
        beat = ts.beat_ticks(song.ppq)
        if ts.denominator == 8 and ts.numerator in (6, 9, 12):
            beat *= 3
        out.extend(range(b.start, b.end, max(1, beat)))
    return out


def assumptions(song: Song, idx: list[int]) -> tuple[str, dict, list[str], str]:
    """What the checker takes the four parts to be: ``(texture, ranges by voice, part names, words)``.

    Voices (tracks named Soprano… or playing a choir sound) or a piece called a chorale are
    checked as a chorale: SATB ranges, spacing, crossing, parallels, the leading tone.
    Instruments are checked against their own ranges and for parallel fifths only."""
    tracks = [song.tracks[i] for i in idx]
    kind = vl.texture([t.name for t in tracks], [t.program for t in tracks], song.title or "")
    if kind == "chorale":
        return kind, dict(vl.SATB_RANGE), list(vl.VOICE_NAMES), \
            "Chorale rules (voices): SATB ranges, spacing, crossing, parallels, leading tone."
    ranges = {v: vl.instrument_range(t.program) for v, t in zip(vl.VOICE_NAMES, tracks)}
    names = [t.name.strip() or f"part {k + 1}" for k, t in enumerate(tracks)]
    return kind, ranges, names, ("Instrumental rules: each instrument's own range and parallel fifths; choir "
                                 "spacing, crossing and leading-tone rules are not applied, and octaves are doublings.")


def check_song(song: Song, kinds=DEFAULT_KINDS) -> tuple[list, list[int] | None]:
    """``(issues, voice tracks)`` for a four-voice song; ``([], None)`` otherwise."""
    idx = satb_tracks(song)
    if idx is None:
        return [], None
    parts = [song.tracks[i].notes for i in idx]
    key = song.key_signatures[0] if song.key_signatures else None
    key_arg = (key.tonic_pc, key.minor) if key is not None and (key.fifths or key.minor) else None
    kind, ranges, names, _words = assumptions(song, idx)
    if kind != "chorale":
        kinds = set(kinds) & set(vl.INSTRUMENTAL_KINDS)
    issues = vl.check(parts, ppq=song.ppq, beats=beat_ticks(song), key=key_arg, ranges=ranges, names=names)
    return [i for i in issues if i.kind in kinds], idx


def issue_notes(song: Song, idx: list[int], issue) -> dict[int, list[Note]]:
    """Notes of the voices involved in ``issue`` that sound during its span, by track index."""
    out = {}
    for v in issue.voices:
        if v < len(idx):
            t = idx[v]
            out[t] = [n for n in song.tracks[t].notes if n.start < issue.end and n.end > issue.tick]
    return out


def describe(song: Song, issue) -> str:
    from ...core.timing import bar_of

    bar = bar_of(song, issue.tick)
    bs = bars(song, until=issue.tick + 1)
    b = bs[bar] if bar < len(bs) else bs[-1]
    beat = (issue.tick - b.start) // max(1, b.meter.beat_ticks(song.ppq)) + 1
    return f"Bar {bar + first_bar_number(song)} beat {beat} — {issue.message}"


class CheckerWidget(QWidget):
    issueActivated = Signal(int)  # row in ``issues``
    redrawRequested = Signal(int, int, int)  # voice (0-3), start tick, end tick
    kindsChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.issues: list = []
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.summary = QLabel("No four-voice material to check.")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.assumed = ElidedLabel()  # what the checker takes the parts to be (one line; all of it in the tooltip)
        self.assumed.setStyleSheet("color:#666;")
        self.assumed.hide()
        lay.addWidget(self.assumed)
        self.list = QListWidget()
        self.list.setToolTip("Click an issue to select its notes and see it in the roll")
        self.list.setMinimumHeight(44)
        self.list.setWordWrap(True)  # long entries wrap instead of being cut off
        self.list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.chords = QCheckBox("Chords")
        self.chords.setToolTip("Also list beats whose notes are not a triad or seventh chord")
        self.chords.toggled.connect(lambda _on: self.kindsChanged.emit())
        row.addWidget(self.chords)
        row.addStretch(1)
        self.voice = QComboBox()
        self.voice.addItems(["Soprano", "Alto", "Tenor", "Bass"])  # the song's own parts once checked
        self.voice.setCurrentIndex(1)
        self.voice.setToolTip("The part the harmonizer rewrites over the issue's span")
        row.addWidget(self.voice)
        self.redraw = QPushButton("Redraw voice")
        self.redraw.setToolTip("Let the harmonizer rewrite this part over the picked issue's span "
                               "(or over the selection), keeping the other parts")
        self.redraw.clicked.connect(self._redraw)
        row.addWidget(self.redraw)
        lay.addLayout(row)
        self.list.currentRowChanged.connect(self._row_changed)
        self.list.itemClicked.connect(lambda item: self.issueActivated.emit(self.list.row(item)))
        self._span_fallback = None  # callable -> (start, end) or None: the selection's span
        self._set_enabled(False)

    def kinds(self):
        return DEFAULT_KINDS | ({"non_tertian"} if self.chords.isChecked() else set())

    def _set_enabled(self, on: bool) -> None:
        self.redraw.setEnabled(on)
        self.voice.setEnabled(on)

    def show_issues(self, song: Song | None, issues: list, satb: bool, where: str = "", assumed: str = "",
                    names: list[str] | None = None) -> None:
        """``names``: the four parts, highest first, as the song calls them (see :func:`part_names`)."""
        self.issues = list(issues)
        names = list(names) if names and len(names) == 4 else [v.capitalize() for v in VOICES]
        if [self.voice.itemText(k) for k in range(self.voice.count())] != names:
            row = self.voice.currentIndex()
            self.voice.clear()
            self.voice.addItems(names)
            self.voice.setCurrentIndex(max(0, row))
        self.assumed.setText(assumed)
        self.assumed.setVisible(bool(assumed) and satb)
        self.list.blockSignals(True)
        self.list.clear()
        for iss in self.issues:
            text = describe(song, iss)
            item = QListWidgetItem(text)
            item.setToolTip(f"{text}\n({iss.kind.replace('_', ' ')}; voices: "
                            f"{', '.join(names[v] for v in iss.voices if v < 4)})")
            self.list.addItem(item)
        self.list.blockSignals(False)
        if not satb:
            self.summary.setText("No four-voice material to check (harmonize a melody, or open a four-part piece).")
        elif not issues:
            self.summary.setText(f"No voice-leading problems{where}.")
        else:
            n = len(issues)
            self.summary.setText(f"{n} issue{'s' if n != 1 else ''}{where}: click one to select its notes.")
        self._set_enabled(satb)
        for w in (self.list, self.chords, self.voice, self.redraw):
            w.setVisible(satb)

    def _row_changed(self, row: int) -> None:
        if 0 <= row < len(self.issues):
            iss = self.issues[row]
            # redraw the lower voice of a pair by default (the soprano is usually the tune)
            self.voice.setCurrentIndex(max(v for v in iss.voices if v < 4) if iss.voices else 1)
            self.issueActivated.emit(row)

    def _redraw(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.issues):
            iss = self.issues[row]
            self.redrawRequested.emit(self.voice.currentIndex(), iss.tick, iss.end)
        else:
            span = self._span_fallback() if self._span_fallback else None
            start, end = span if span else (-1, -1)
            self.redrawRequested.emit(self.voice.currentIndex(), start, end)
