"""The editor (PySide6). Importing this package applies one interpreter-level workaround:

The PySide6 6.12 wheels return ``None``, ``True`` and ``False`` without taking a reference
(fine on Python 3.12+, where those objects are immortal). On Python 3.11 every such call drops
one reference, and after a few hundred calls the interpreter aborts ("none_dealloc" /
"bool_dealloc"). Python 3.12 made these singletons immortal by giving them an enormous
reference count; we do the same on older interpreters so the count can never reach zero. The
singletons are static objects that are never freed either way, so nothing else changes.
"""

import sys


def _pin_singletons() -> None:
    if sys.version_info >= (3, 12):  # already immortal
        return
    import ctypes

    for obj in (None, True, False, Ellipsis, NotImplemented):
        ref = ctypes.c_ssize_t.from_address(id(obj))
        if ref.value < (1 << 40):
            ref.value += 1 << 40


_pin_singletons()
