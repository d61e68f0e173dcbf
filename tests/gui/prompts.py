"""Answering the window's "Save changes to the project?" box in tests.

The box is modal: :class:`PromptAnswerer` polls for it (10 ms timer) and clicks a button once it
has been visible for a while, recording its text. ``tests/gui/conftest.py`` runs one that answers
"Discard" after 0.5 s in every GUI test, so a window left with unsaved edits never blocks
pytest-qt's closing of the widgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pare_studio.gui.window_editing import WindowEditing


class PromptAnswerer:
    """Clicks ``button`` of each "Save changes?" box once it has been shown for ``delay_s``."""

    def __init__(self, button: str, delay_s: float = 0.0) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer
        from PySide6.QtWidgets import QMessageBox

        self.button = getattr(QMessageBox.StandardButton, button)
        self.delay_ms = int(delay_s * 1000)
        self.seen: list[str] = []
        self._box: object = None
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._poll)
        self._timer.start()

    def _poll(self) -> None:
        from PySide6.QtWidgets import QApplication, QMessageBox

        box = QApplication.activeModalWidget()
        if not (
            isinstance(box, QMessageBox)
            and box.objectName() == WindowEditing.SAVE_BOX_NAME
            and box.isVisible()
        ):
            return
        if box is not self._box:
            self._box = box
            self._clock.start()
        if self._clock.elapsed() >= self.delay_ms:
            self.seen.append(box.text())
            self._box = None
            box.button(self.button).click()

    def stop(self) -> None:
        self._timer.stop()


@contextmanager
def save_prompt(button: str) -> Iterator[list[str]]:
    """Answer every "Save changes?" box shown inside the block with ``button``
    ("Save" | "Discard" | "Cancel"); yields the list of the texts of the boxes answered."""
    answerer = PromptAnswerer(button)
    try:
        yield answerer.seen
    finally:
        answerer.stop()
