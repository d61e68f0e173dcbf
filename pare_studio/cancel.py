"""A thread-safe cancel flag shared by the CLI (Ctrl+C), the window (Cancel) and the pipelines."""

from __future__ import annotations

import threading

from pare_studio.errors import Cancelled


class CancelToken:
    """Cooperative cancellation: the owner calls :meth:`cancel`, workers call :meth:`check`.

    ``check`` raises :class:`~pare_studio.errors.Cancelled`; pipelines call it between batches,
    so a cancel takes effect within one batch and never leaves a half-written output.
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled("Cancelled by the user; nothing was written.")
