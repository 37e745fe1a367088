"""The editor (PySide6).

pyproject.toml keeps PySide6 below 6.12: the 6.12.0 wheels return ``None``, ``True`` and
``False`` without taking a reference, which is harmless on Python 3.12+ (those objects are
immortal there) but on Python 3.11 drops one reference per call until the interpreter aborts
("none_dealloc" / "bool_dealloc").  Should that release be installed anyway, importing this
package gives the singletons an enormous reference count, as Python 3.12 does, so the count
can never reach zero.  The singletons are static objects that are never freed either way.
"""

import sys


def _pyside_version() -> tuple[int, ...]:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("PySide6-Essentials", "PySide6"):
        try:
            return tuple(int(p) for p in version(dist).split(".")[:2])
        except (PackageNotFoundError, ValueError):
            continue
    return ()


def _pin_singletons() -> None:
    if sys.version_info >= (3, 12) or _pyside_version() < (6, 12):
        return
    import ctypes

    for obj in (None, True, False, Ellipsis, NotImplemented):
        ref = ctypes.c_ssize_t.from_address(id(obj))
        if ref.value < (1 << 40):
            ref.value += 1 << 40


_pin_singletons()
