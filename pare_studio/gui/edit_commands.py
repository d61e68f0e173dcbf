"""EditCommand: a QUndoCommand over two immutable :class:`~pare_studio.edits.EditState` s.

Edits are pure functions returning a new state (:mod:`pare_studio.edits`), so a command only
needs the state before and the state after: ``redo()`` installs ``after``, ``undo()`` installs
``before``. Installing goes through a callback (the window's
:class:`~pare_studio.gui.edit_session.EditSession`), which refreshes every view.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QUndoCommand

from pare_studio.edits import EditState

#: ``install(state)``: make ``state`` the session's current state and refresh the views.
Installer = Callable[[EditState], None]


class EditCommand(QUndoCommand):
    """One track edit on the undo stack.

    Parameters
    ----------
    install : callback that makes a state current.
    before, after : the states around the edit (``after`` = an ``edits`` function of ``before``).
    text : Edit-menu text (``edits.describe``).
    """

    def __init__(self, install: Installer, before: EditState, after: EditState, text: str) -> None:
        super().__init__(text)
        self._install = install
        self.before = before
        self.after = after

    def redo(self) -> None:
        self._install(self.after)

    def undo(self) -> None:
        self._install(self.before)
