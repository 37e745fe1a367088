"""Choosing a track's sound: the 128 General MIDI programs grouped in their 16 families, with a
search box, plus the drum kit (General MIDI's percussion channel).

:class:`InstrumentPicker` is a small popup: type to filter ("bass", "str", "42"), Up/Down and
Enter to pick, Esc to close. It reports ``picked(program, is_drum)``.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout

from .gm import GM_NAMES

FAMILIES = ("Piano", "Chromatic Percussion", "Organ", "Guitar", "Bass", "Strings", "Ensemble", "Brass", "Reed",
            "Pipe", "Synth Lead", "Synth Pad", "Synth Effects", "Ethnic", "Percussive", "Sound Effects")
DRUMS = "Drum kit"


def family_of(program: int) -> str:
    return FAMILIES[max(0, min(127, program)) // 8]


def label(program: int, is_drum: bool = False) -> str:
    """What the track list shows: the full name, e.g. "Electric Bass (finger)" or "Drum kit"."""
    return DRUMS if is_drum else GM_NAMES[max(0, min(127, program))]


def matches(program: int, text: str) -> bool:
    """Whether ``text`` (any case; words in any order) finds this program by name, family or number."""
    words = text.lower().split()
    hay = f"{program + 1} {GM_NAMES[program]} {family_of(program)}".lower()
    return all(w in hay for w in words)


class InstrumentPicker(QFrame):
    picked = Signal(int, bool)  # program, is_drum

    def __init__(self, program: int = 0, is_drum: bool = False, parent=None):
        super().__init__(parent, Qt.WindowType.Popup)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search instruments (name, family or number)")
        self.search.setClearButtonEnabled(True)
        lay.addWidget(self.search)
        self.tree = QTreeWidget()
        self.tree.setHeaderHidden(True)
        self.tree.setUniformRowHeights(True)
        lay.addWidget(self.tree)
        self._items: dict[tuple[int, bool], QTreeWidgetItem] = {}
        drums = QTreeWidgetItem([DRUMS])
        drums.setData(0, Qt.ItemDataRole.UserRole, (0, True))
        drums.setToolTip(0, "General MIDI percussion (channel 10): each key is a different drum")
        self.tree.addTopLevelItem(drums)
        self._items[(0, True)] = drums
        for f, fam in enumerate(FAMILIES):
            top = QTreeWidgetItem([fam])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.tree.addTopLevelItem(top)
            for p in range(f * 8, f * 8 + 8):
                it = QTreeWidgetItem([f"{p + 1}  {GM_NAMES[p]}"])
                it.setData(0, Qt.ItemDataRole.UserRole, (p, False))
                top.addChild(it)
                self._items[(p, False)] = it
        cur = self._items[(0, True) if is_drum else (max(0, min(127, program)), False)]
        if cur.parent() is not None:
            cur.parent().setExpanded(True)
        self.tree.setCurrentItem(cur)
        self.tree.scrollToItem(cur)
        self.search.textChanged.connect(self.filter)
        self.search.returnPressed.connect(self._pick_current)
        self.tree.itemActivated.connect(self._pick)
        self.tree.itemClicked.connect(self._pick)
        self.search.installEventFilter(self)
        self.resize(300, 380)

    def filter(self, text: str) -> None:
        text = text.strip()
        first = None
        for (p, drum), it in self._items.items():
            hit = not text or (all(w in "drum kit percussion" for w in text.lower().split()) if drum else matches(p, text))
            it.setHidden(not hit)
            if hit and first is None and (text or drum):
                first = it
        for i in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(i)
            if top.childCount():
                shown = any(not top.child(k).isHidden() for k in range(top.childCount()))
                top.setHidden(not shown)
                top.setExpanded(bool(text) and shown)
        if text and first is not None:
            self.tree.setCurrentItem(first)

    def eventFilter(self, obj, event):  # Up/Down in the search box move through the list
        from PySide6.QtCore import QEvent

        if obj is self.search and event.type() == QEvent.Type.KeyPress and event.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.tree.setFocus()
            self.tree.keyPressEvent(event)
            self.search.setFocus()
            return True
        return False

    def _pick_current(self) -> None:
        it = self.tree.currentItem()
        if it is not None and not it.isHidden():
            self._pick(it)

    def _pick(self, item, _col: int = 0) -> None:
        data = item.data(0, Qt.ItemDataRole.UserRole)
        if data is None:  # a family heading
            item.setExpanded(not item.isExpanded())
            return
        self.picked.emit(int(data[0]), bool(data[1]))
        self.close()

    def popup_at(self, pos) -> None:
        self.move(pos)
        self.show()
        self.search.setFocus()
