"""TaskThread: one background QThread for the window's own computations (smoothing, exports).

The inference engine owns the predictor and runs the pipeline; recomputing smoothed meshes and
writing exports are separate, shorter jobs that must neither freeze the GUI thread nor wait
behind a video run, so they get this small thread of their own.

Model
    Work is posted on a named *channel*. Each channel holds at most one waiting task: posting
    again replaces the waiting one (latest request wins) and cancels the running one of that
    channel through its :class:`~pare_studio.cancel.CancelToken`. Channels are served in the
    order they were posted. A task is a callable ``fn(token, report)``; it checks
    ``token.check()`` between steps (raising ``Cancelled``) and may call ``report(value)`` to
    hand partial results to the GUI thread.

Signals (emitted on the GUI thread, with the ticket :meth:`TaskThread.submit` returned)
    ``reported(ticket, channel, value)``, ``finished(ticket, channel, value)``,
    ``failed(ticket, channel, message, details)``, ``cancelled(ticket, channel)``,
    ``busy_changed(channel, busy)``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from pare_studio.cancel import CancelToken
from pare_studio.errors import Cancelled, PareStudioError

log = logging.getLogger(__name__)

#: ``fn(token, report) -> value``: the work of one task (runs in the task thread).
TaskFn = Callable[[CancelToken, Callable[[Any], None]], Any]

_tickets = itertools.count(1)


@dataclass
class _Task:
    channel: str
    fn: TaskFn
    ticket: int = field(default_factory=lambda: next(_tickets))
    token: CancelToken = field(default_factory=CancelToken)


class _Worker(QObject):
    """Runs tasks in the thread; only :class:`TaskThread` talks to it."""

    reported = Signal(int, str, object)
    finished = Signal(int, str, object)
    failed = Signal(int, str, str, str)
    cancelled = Signal(int, str)

    def __init__(self, owner: TaskThread) -> None:
        super().__init__()
        self._owner = owner

    @Slot()
    def serve(self) -> None:
        while True:
            task = self._owner._take()  # noqa: SLF001
            if task is None:
                return
            self._run(task)

    def _run(self, task: _Task) -> None:
        def report(value: Any) -> None:
            task.token.check()
            self.reported.emit(task.ticket, task.channel, value)

        outcome: tuple[str, Any, str] = ("cancelled", None, "")
        try:
            task.token.check()
            value = task.fn(task.token, report)
            task.token.check()
            outcome = ("finished", value, "")
        except Cancelled:
            pass
        except PareStudioError as exc:
            outcome = ("failed", str(exc), "")
        except (ValueError, OSError) as exc:
            outcome = ("failed", str(exc), traceback.format_exc())
        except Exception as exc:  # a bug: say so, keep the details
            log.exception("background task on %s failed", task.channel)
            outcome = (
                "failed",
                f"Unexpected error: {type(exc).__name__}: {exc}",
                traceback.format_exc(),
            )
        # no longer running before the GUI thread hears of it (it may post the next task at once)
        self._owner._finish(task)  # noqa: SLF001
        kind, value, details = outcome
        if kind == "finished":
            self.finished.emit(task.ticket, task.channel, value)
        elif kind == "failed":
            self.failed.emit(task.ticket, task.channel, value, details)
        else:
            self.cancelled.emit(task.ticket, task.channel)


class TaskThread(QObject):
    """A background thread serving latest-wins channels (module docstring)."""

    reported = Signal(int, str, object)
    finished = Signal(int, str, object)
    failed = Signal(int, str, str, str)
    cancelled = Signal(int, str)
    busy_changed = Signal(str, bool)

    _wake = Signal()

    def __init__(self, name: str = "pare-tasks", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._waiting: dict[str, _Task] = {}  # insertion order = serving order
        self._running: dict[str, _Task] = {}
        self._busy: set[str] = set()
        self._stopped = False
        self._current: dict[str, int] = {}  # channel -> newest ticket (GUI thread)
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(self)
        self._worker.moveToThread(self._thread)
        self._wake.connect(self._worker.serve)
        w = self._worker
        w.reported.connect(self._on_reported)
        w.finished.connect(self._on_finished)
        w.failed.connect(self._on_failed)
        w.cancelled.connect(self._on_cancelled)
        self._thread.start()

    # -- commands (GUI thread) ----------------------------------------------------------------

    @property
    def thread(self) -> QThread:
        return self._thread

    def submit(self, channel: str, fn: TaskFn) -> int:
        """Post ``fn`` on ``channel`` (replacing a waiting task, cancelling a running one).

        Returns the task's ticket; results of older tickets of the channel are not delivered.
        """
        task = _Task(channel, fn)
        with self._lock:
            if self._stopped:
                raise RuntimeError("the task thread was shut down")
            self._waiting.pop(channel, None)
            running = self._running.get(channel)
            if running is not None:
                running.token.cancel()
            self._waiting[channel] = task
        self._current[channel] = task.ticket
        self._set_busy(channel, True)
        self._wake.emit()
        return task.ticket

    def cancel(self, channel: str) -> None:
        """Drop the waiting task of ``channel`` and cancel its running one."""
        with self._lock:
            self._waiting.pop(channel, None)
            running = self._running.get(channel)
            if running is not None:
                running.token.cancel()
        self._current.pop(channel, None)
        if running is None:
            self._set_busy(channel, False)

    def is_busy(self, channel: str) -> bool:
        """Whether ``channel`` has a task waiting or running."""
        return channel in self._busy

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        """Cancel everything, stop the thread and wait for it; True when it finished."""
        with self._lock:
            self._stopped = True
            self._waiting.clear()
            for task in self._running.values():
                task.token.cancel()
        self._thread.quit()
        done = bool(self._thread.wait(timeout_ms))
        if not done:
            log.warning("task thread did not stop within %d ms", timeout_ms)
        return done

    # -- worker side (task thread) ------------------------------------------------------------

    def _take(self) -> _Task | None:
        with self._lock:
            if self._stopped or not self._waiting:
                return None
            channel = next(iter(self._waiting))
            task = self._waiting.pop(channel)
            self._running[channel] = task
            return task

    def _finish(self, task: _Task) -> None:
        with self._lock:
            if self._running.get(task.channel) is task:
                del self._running[task.channel]

    # -- delivery (GUI thread) ----------------------------------------------------------------

    def _is_current(self, ticket: int, channel: str) -> bool:
        return self._current.get(channel) == ticket

    def _on_reported(self, ticket: int, channel: str, value: object) -> None:
        if self._is_current(ticket, channel):
            self.reported.emit(ticket, channel, value)

    def _on_finished(self, ticket: int, channel: str, value: object) -> None:
        if self._settle(ticket, channel):
            self.finished.emit(ticket, channel, value)

    def _on_failed(self, ticket: int, channel: str, message: str, details: str) -> None:
        if self._settle(ticket, channel):
            self.failed.emit(ticket, channel, message, details)

    def _on_cancelled(self, ticket: int, channel: str) -> None:
        if self._settle(ticket, channel):
            self.cancelled.emit(ticket, channel)

    def _settle(self, ticket: int, channel: str) -> bool:
        """A task ended: update busy (before anyone hears of it); True when it is current."""
        current = self._is_current(ticket, channel)
        if current:
            del self._current[channel]
        with self._lock:
            pending = channel in self._waiting or channel in self._running
        if not pending:
            self._set_busy(channel, False)
        return current

    def _set_busy(self, channel: str, busy: bool) -> None:
        if busy == (channel in self._busy):
            return
        if busy:
            self._busy.add(channel)
        else:
            self._busy.discard(channel)
        self.busy_changed.emit(channel, busy)
