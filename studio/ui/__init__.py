"""The editor (PySide6). Importing this package applies one interpreter-level workaround:

PySide6 6.12 drops a reference to ``True`` on every ``Signal.emit()`` made from Python. On
Python 3.11, where ``True`` starts with a few hundred references, a few hundred emits later the
interpreter aborts ("bool_dealloc: deallocating True or False"). Python 3.12 made ``True`` and
``False`` immortal by giving them an enormous reference count; we do the same on older
interpreters, so the leak can never reach zero. The booleans are static objects that are never
freed either way, so this changes nothing else.
"""

import sys


def _pin_booleans() -> None:
    if sys.version_info >= (3, 12):  # already immortal
        return
    import ctypes

    for obj in (True, False):
        ref = ctypes.c_ssize_t.from_address(id(obj))
        if ref.value < (1 << 40):
            ref.value += 1 << 40


_pin_booleans()
