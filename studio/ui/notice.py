"""A one-line notice bar above the editor (e.g. "Playback is off: …") that the user can close.

The text stays on one line: when it is longer than the window is wide it is cut with an
ellipsis and the whole text is in the tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton


class ElidedLabel(QLabel):
    """A QLabel that never wraps and never asks for more width than it gets."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(10)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self._full = text
        self.setToolTip(text)
        self._elide()

    def text(self) -> str:
        return self._full

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(10, self.width() - 4))
        super().setText(shown)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()


class NoticeBar(QFrame):
    closed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("NoticeBar")
        self.setStyleSheet("#NoticeBar { background:#fff3cd; border-bottom:1px solid #e0c36a; }"
                           "QLabel { color:#664d03; } QToolButton { border:none; color:#664d03; font-weight:bold; }")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 1, 2, 1)
        lay.setSpacing(4)
        self.label = ElidedLabel()
        lay.addWidget(self.label, 1)
        self.close_btn = QToolButton()
        self.close_btn.setText("✕")
        self.close_btn.setToolTip("Close this notice (the status bar keeps a short note)")
        self.close_btn.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.close_btn.clicked.connect(self.dismiss)
        lay.addWidget(self.close_btn)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.dismissed = False

    def text(self) -> str:
        return self.label.text()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt name
        self.label.setText(text)

    def show_text(self, text: str) -> None:
        """Show ``text`` unless the user closed this notice before."""
        self.setText(text)
        self.setVisible(not self.dismissed)

    def dismiss(self) -> None:
        self.dismissed = True
        self.hide()
        self.closed.emit()
