"""The computer keyboard as a piano, and note names typed for step input.

Two rows of the keyboard are a piano (the lower row Z S X D C V G B H N J M from C3, the upper
row Q 2 W 3 E R 5 T 6 Y 7 U I from C4; ``-`` and ``=`` move both an octave down and up).  It
is a toggle: while it is on those keys play notes and none of the editor's one-key shortcuts
fire; keys with Ctrl, Alt or Shift, and everything typed into a text field, pass through.

With step input on and the piano off, typing a note name in the roll enters it: a letter
A-G is that note nearest the last one entered, Shift makes it sharp, and 0 is a rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit

K = Qt.Key
LOWER = [K.Key_Z, K.Key_S, K.Key_X, K.Key_D, K.Key_C, K.Key_V, K.Key_G, K.Key_B, K.Key_H, K.Key_N, K.Key_J, K.Key_M,
         K.Key_Comma, K.Key_L, K.Key_Period, K.Key_Semicolon, K.Key_Slash]
UPPER = [K.Key_Q, K.Key_2, K.Key_W, K.Key_3, K.Key_E, K.Key_R, K.Key_5, K.Key_T, K.Key_6, K.Key_Y, K.Key_7, K.Key_U,
         K.Key_I, K.Key_9, K.Key_O, K.Key_0, K.Key_P]
PIANO_KEYS = {**{k: i for i, k in enumerate(LOWER)}, **{k: 12 + i for i, k in enumerate(UPPER)}}
NOTE_LETTERS = {K.Key_C: "c", K.Key_D: "d", K.Key_E: "e", K.Key_F: "f", K.Key_G: "g", K.Key_A: "a", K.Key_B: "b"}
BASE = 48  # C3, the lower row's first key
VELOCITY = 96


@dataclass(frozen=True, slots=True)
class KeyMessage:
    """A note played on the computer keyboard, shaped like a ``mido`` message."""

    type: str
    note: int
    velocity: int = 0


class KeyInput(QObject):
    """An application event filter feeding the record controller from the computer keyboard."""

    def __init__(self, controller, roll=None, parent=None):
        super().__init__(parent)
        self.rec = controller
        self.roll = roll  # the piano-roll editor: typed note names only count when it has the focus
        self.octave = 0
        self.piano = False
        self._down: dict[int, int] = {}  # Qt key -> pitch sounding
        QApplication.instance().installEventFilter(self)

    def set_piano(self, on: bool) -> None:
        self.piano = bool(on)
        self.rec.keyboard_piano = self.piano
        if not on:
            self.release_all()
        self.rec.stateChanged.emit()

    def release_all(self) -> None:
        for pitch in self._down.values():
            self.rec.play_key(KeyMessage("note_off", pitch))
        self._down.clear()

    def _text_focus(self) -> bool:
        w = QApplication.focusWidget()
        if isinstance(w, (QLineEdit, QTextEdit, QPlainTextEdit, QAbstractSpinBox)):
            return True
        return isinstance(w, QComboBox) and w.isEditable()

    def _ours(self) -> bool:
        """Whether the keyboard focus is in this filter's window (another editor window has its own)."""
        w = QApplication.focusWidget()
        return w is not None and self.parent() is not None and w.window() is self.parent().window()

    def _roll_focus(self) -> bool:
        w = QApplication.focusWidget()
        return self.roll is not None and w is not None and (w is self.roll or self.roll.isAncestorOf(w))

    def eventFilter(self, obj, event) -> bool:
        t = event.type()
        if t not in (QEvent.Type.KeyPress, QEvent.Type.KeyRelease, QEvent.Type.ShortcutOverride):
            return False
        if not (self.piano or self.rec.step is not None) or self._text_focus() or not self._ours():
            return False
        mods = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        M = Qt.KeyboardModifier
        key = event.key()
        if self.piano:
            if mods & (M.ControlModifier | M.AltModifier | M.MetaModifier | M.ShiftModifier):
                return False
            if key in PIANO_KEYS or key in (K.Key_Minus, K.Key_Equal):
                if t == QEvent.Type.ShortcutOverride:
                    event.accept()  # the key is ours: no shortcut fires
                    return True
                if not event.isAutoRepeat():
                    self._piano_key(key, t == QEvent.Type.KeyPress)
                return True
            return False
        # step input, typed note names
        if mods & (M.ControlModifier | M.AltModifier | M.MetaModifier) or not self._roll_focus():
            return False
        if key in NOTE_LETTERS or key == K.Key_0:
            if t == QEvent.Type.ShortcutOverride:
                event.accept()
                return True
            if t == QEvent.Type.KeyPress and not event.isAutoRepeat():
                if key == K.Key_0:
                    self.rec.step_rest()
                else:
                    from ...core.stepinput import parse_note_name  # noqa: PLC0415

                    name = NOTE_LETTERS[key] + ("#" if mods & M.ShiftModifier else "")
                    pitch = parse_note_name(name, self.rec.step.last_pitch)
                    if pitch is not None:
                        self.rec.step_note(pitch)
            return True
        return False

    def _piano_key(self, key, down: bool) -> None:
        if key in (K.Key_Minus, K.Key_Equal):
            if down:
                self.octave = max(-3, min(4, self.octave + (1 if key == K.Key_Equal else -1)))
                self.rec.notice.emit(f"Computer keyboard: lower row from C{3 + self.octave}")
            return
        if down:
            if key in self._down:
                return
            pitch = BASE + 12 * self.octave + PIANO_KEYS[key]
            if 0 <= pitch <= 127:
                self._down[key] = pitch
                self.rec.play_key(KeyMessage("note_on", pitch, VELOCITY))
        else:
            pitch = self._down.pop(key, None)
            if pitch is not None:
                self.rec.play_key(KeyMessage("note_off", pitch))

    def close(self) -> None:
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)
