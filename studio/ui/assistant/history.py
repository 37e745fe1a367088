"""The project's AI history: every accepted take's model, parameters and seed, listed from
``Song.meta["ai_history"]``; "Use these settings" puts them back into the panel so the take
can be made again (with the same song and selection, the same seed gives the same take)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from .takes import KIND_LABEL, history

HIDDEN = ("device", "locked", "job")


def describe(n: int, e: dict) -> str:
    kind = KIND_LABEL.get(e.get("kind", ""), e.get("kind", "") or "Take")
    seed = e.get("seed")
    return f"{n}. {kind} · {e.get('model', '?')} · seed {seed if seed is not None else '—'} · {e.get('summary', '')}"


class HistoryWidget(QWidget):
    reuse = Signal(dict)  # a history entry whose settings the panel should take

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 4, 0, 0)
        self.empty = QLabel("Accepted takes are listed here with their model, settings and seed; "
                            "the list is saved with the project.")
        self.empty.setWordWrap(True)
        self.empty.setStyleSheet("color:#555;")
        lay.addWidget(self.empty)
        self.list = QListWidget()
        self.list.setToolTip("Accepted takes, oldest first")
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        row.addStretch(1)
        self.use_btn = QPushButton("Use these settings")
        self.use_btn.setToolTip("Put this take's model settings and seed back into the panel")
        self.use_btn.clicked.connect(self._use)
        row.addWidget(self.use_btn)
        lay.addLayout(row)
        self.entries: list[dict] = []
        self.list.currentRowChanged.connect(lambda _r: self.use_btn.setEnabled(self.list.currentRow() >= 0))
        self.use_btn.setEnabled(False)

    def refresh(self, song) -> None:
        entries = history(song)
        if entries == self.entries:
            return
        self.entries = [dict(e) for e in entries]
        self.list.clear()
        for i, e in enumerate(self.entries):
            item = QListWidgetItem(describe(i + 1, e))
            params = e.get("params") or {}
            item.setToolTip(", ".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in HIDDEN and v is not None))
            self.list.addItem(item)
        self.empty.setVisible(not self.entries)
        self.use_btn.setEnabled(False)

    def _use(self) -> None:
        row = self.list.currentRow()
        if 0 <= row < len(self.entries):
            self.reuse.emit(self.entries[row])
