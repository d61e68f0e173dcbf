"""Work around a PySide6 reference-count bug that aborts Python 3.11 after a few hundred signals.

With PySide6 6.12 on CPython 3.11, every ``SignalInstance.emit()`` of a Python-declared
``Signal`` returns ``True`` without taking a new reference, so each emit (ours, pyqtgraph's, with
or without receivers) drops one reference to ``True``. ``True`` starts with a few hundred
references; once they are gone the interpreter aborts with "Fatal Python error: bool_dealloc".
CPython >= 3.12 makes ``True``/``False``/``None`` immortal, which hides the bug there.

:func:`apply_pyside_workarounds` checks for the leak with a probe signal and, only when it is
present, gives those singletons 2**40 extra references, which is what immortality amounts to.
"""

from __future__ import annotations

import ctypes
import sys

_applied = False
_PAD = 1 << 40


def emit_leaks_true() -> bool:
    """Whether emitting a Python-declared signal drops a reference to ``True`` (the bug)."""
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        ping = Signal(int)

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(4):
        probe.ping.emit(0)
    after = sys.getrefcount(True)
    probe.deleteLater()
    return after < before


def apply_pyside_workarounds() -> bool:
    """Apply the fix once if this PySide6/CPython pair needs it; returns whether it was applied."""
    global _applied
    if _applied:
        return True
    if sys.implementation.name != "cpython" or sys.version_info >= (3, 12):
        return False
    if not emit_leaks_true():
        return False
    for obj in (True, False, None):
        ctypes.c_ssize_t.from_address(id(obj)).value += _PAD
    _applied = True
    return True
