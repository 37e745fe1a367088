"""Help ▸ Keyboard Shortcuts: every menu action with its keys (read from the actions themselves,
so the list cannot go stale), and the mouse gestures of the piano roll."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHeaderView, QLineEdit, QTreeWidget, QTreeWidgetItem,
                               QVBoxLayout)

GESTURES = [
    ("Piano roll", "Click a note", "Select it (Shift+click adds or removes)"),
    ("Piano roll", "Drag a note", "Move it; drag its right edge to change its length"),
    ("Piano roll", "Ctrl while dragging", "Off the grid: place, move or resize freely (Alt works too where "
                                          "the window manager does not take it)"),
    ("Piano roll", "Drag on empty space", "Select notes in a rectangle (Draw tool: draw a note)"),
    ("Piano roll", "Right-click or right-drag", "Erase notes"),
    ("Piano roll", "Double-click a faint note", "Edit that note's track"),
    ("Piano roll", "Ctrl+wheel / Ctrl+Shift+wheel", "Zoom in time / in pitch"),
    ("Piano roll", "Shift+wheel", "Scroll in time"),
    ("Ruler", "Click / drag / right-click", "Move the playhead / set the loop region / clear the loop"),
    ("Track list", "Double-click a name", "Rename (Enter keeps, Esc cancels)"),
    ("Track list", "Click the instrument", "Choose a sound by family, or search; the drum kit is at the top"),
    ("Score", "Click a note head", "Select that note in the roll"),
]


def shortcut_rows(window) -> list[tuple[str, str, str]]:
    """(menu, action, keys) for every action in the window's menus that has keys."""
    rows = []

    def walk(menu, path):
        for a in menu.actions():
            if a.menu() is not None:
                walk(a.menu(), path)
                continue
            if a.isSeparator() or not a.text():
                continue
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in a.shortcuts())
            if keys:
                rows.append((path, a.text().replace("&", "").rstrip("…").split("\t")[0], keys))

    for top in window.menuBar().actions():
        if top.menu() is not None:
            walk(top.menu(), top.text().replace("&", ""))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, window):
        super().__init__(window)
        self.setWindowTitle("Keyboard shortcuts and mouse gestures")
        lay = QVBoxLayout(self)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search (e.g. redo, zoom, Ctrl)")
        self.search.setClearButtonEnabled(True)
        lay.addWidget(self.search)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["What", "Keys or gesture"])
        self.tree.setRootIsDecorated(True)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setWordWrap(True)
        groups: dict[str, QTreeWidgetItem] = {}

        def add(group, what, keys):
            if group not in groups:
                groups[group] = QTreeWidgetItem([group])
                self.tree.addTopLevelItem(groups[group])
            it = QTreeWidgetItem([what, keys])
            it.setToolTip(1, keys)
            groups[group].addChild(it)

        for menu, what, keys in shortcut_rows(window):
            add(menu, what, keys)
        for group, gesture, what in GESTURES:
            add(f"Mouse: {group}", what, gesture)
        self.tree.expandAll()
        lay.addWidget(self.tree)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.search.textChanged.connect(self.filter)
        self.resize(620, 560)

    def filter(self, text: str) -> None:
        t = text.strip().lower()
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            shown = 0
            for k in range(top.childCount()):
                it = top.child(k)
                hit = not t or t in it.text(0).lower() or t in it.text(1).lower() or t in top.text(0).lower()
                it.setHidden(not hit)
                shown += hit
            top.setHidden(shown == 0)

    def items(self) -> list[tuple[str, str]]:
        out = []
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            for k in range(top.childCount()):
                it = top.child(k)
                if not it.isHidden() and not top.isHidden():
                    out.append((it.text(0), it.text(1)))
        return out


def about_text() -> str:
    return ("<b>Cantor Studio</b><br>A composition workstation: draw in the piano roll, read the score, and let "
            "the assistant continue, harmonize or vary your music. Everything runs on this computer.")
