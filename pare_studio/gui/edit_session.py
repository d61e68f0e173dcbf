"""EditSession: the window's track edits (one QUndoStack) and live smoothing.

The session owns the current :class:`~pare_studio.edits.EditState` (edited tracks, names,
export choice) and the :class:`~pare_studio.project.SmoothingSettings`. It never touches widgets:
it emits signals and the window shows :meth:`display_tracks` (see ``editing_features``).

Edits
    :meth:`rename`, :meth:`delete`, :meth:`merge`, :meth:`split`, :meth:`set_export` and
    :meth:`select_for_export` compute the new state with :mod:`pare_studio.edits` and push an
    :class:`~pare_studio.gui.edit_commands.EditCommand` on :attr:`undo_stack`; undo / redo
    install the state before / after. Impossible edits raise ``TrackEditError`` and push
    nothing. :meth:`reset` starts over from new results (and clears the undo stack).

Smoothing
    With smoothing enabled, every track is smoothed in the background
    (:class:`~pare_studio.gui.task_thread.TaskThread`, channel ``"smooth"``, latest request
    wins): a slider move cancels the computation still running for the previous value. Results
    are cached per raw track object (edits share untouched tracks between states, so a rename
    or a split of another track recomputes nothing). Until a track's new smoothing arrives, the
    display keeps its previous smoothing (no flicker), or the raw track.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from pare_studio import edits
from pare_studio.cancel import CancelToken
from pare_studio.edits import EditState
from pare_studio.errors import TrackEditError
from pare_studio.gui.edit_commands import EditCommand
from pare_studio.gui.smoothing_jobs import load_body, settings_key, smooth_track_cancellable
from pare_studio.gui.task_thread import TaskThread
from pare_studio.project import SmoothingSettings
from pare_studio.results import TrackResult, VideoResult

log = logging.getLogger(__name__)

SMOOTH_CHANNEL = "smooth"
#: Smoothed tracks kept for raw tracks that are not in the current state (undo targets).
_EXTRA_CACHE = 4


@dataclass(frozen=True)
class _Smoothed:
    raw: TrackResult
    key: tuple[str, float, float]
    track: TrackResult


class EditSession(QObject):
    """Edits with undo / redo, plus the smoothed tracks (module docstring).

    Signals
    -------
    state_changed() : the edit state was replaced (edit, undo, redo, reset).
    display_changed() : what :meth:`display_tracks` returns changed (state or smoothing).
    smoothing_changed() : the smoothing settings changed.
    smoothing_busy_changed(bool) : a smoothing computation started / ended.
    failed(str) : a background smoothing failed (message for the user).
    """

    state_changed = Signal()
    display_changed = Signal()
    smoothing_changed = Signal()
    smoothing_busy_changed = Signal(bool)
    failed = Signal(str)

    def __init__(self, tasks: TaskThread, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.undo_stack = QUndoStack(self)
        self._tasks = tasks
        self._state: EditState | None = None
        self._smoothing = SmoothingSettings()
        self._smpl_dir: Path | None = None
        self._cache: OrderedDict[int, _Smoothed] = OrderedDict()  # id(raw) -> smoothed
        self._priority: int | None = None
        tasks.reported.connect(self._on_reported)
        tasks.failed.connect(self._on_failed)
        tasks.busy_changed.connect(self._on_busy)

    # -- state --------------------------------------------------------------------------------

    @property
    def state(self) -> EditState | None:
        return self._state

    def reset(self, state: EditState | None, smoothing: SmoothingSettings | None = None) -> None:
        """Start from ``state`` (new results or an opened project): the undo history is cleared."""
        self.undo_stack.clear()
        self._state = state
        if smoothing is not None and smoothing != self._smoothing:
            self._smoothing = smoothing
            self.smoothing_changed.emit()
        self._prune()
        self.state_changed.emit()
        self.display_changed.emit()
        self._request_smoothing()

    def install(self, state: EditState) -> None:
        """Make ``state`` current (the undo commands call this)."""
        self._state = state
        self._prune()
        self.state_changed.emit()
        self.display_changed.emit()
        self._request_smoothing()

    def apply(self, new_state: EditState, text: str) -> bool:
        """Push the edit ``current → new_state`` on the undo stack (applies it)."""
        old = self._require()
        if _same(old, new_state):
            return False
        self.undo_stack.push(EditCommand(self.install, old, new_state, text))
        return True

    def _require(self) -> EditState:
        if self._state is None:
            raise TrackEditError("there are no tracks to edit: run PARE or open results first")
        return self._state

    # -- edits --------------------------------------------------------------------------------

    def rename(self, track_id: int, name: str) -> bool:
        s = self._require()
        return self.apply(
            edits.rename_track(s, track_id, name), edits.describe("rename", track_id, name)
        )

    def delete(self, track_ids: Iterable[int]) -> bool:
        ids = [int(t) for t in track_ids]
        s = self._require()
        return self.apply(edits.delete_tracks(s, ids), edits.describe("delete", ids))

    def merge(self, target_id: int, other_id: int) -> bool:
        s = self._require()
        return self.apply(
            edits.merge_tracks(s, target_id, other_id), edits.describe("merge", target_id, other_id)
        )

    def split(self, track_id: int, frame: int) -> bool:
        s = self._require()
        return self.apply(
            edits.split_track(s, track_id, frame), edits.describe("split", track_id, frame)
        )

    def set_export(self, track_id: int, selected: bool) -> bool:
        s = self._require()
        text = f"{'Export' if selected else 'Do not export'} track {track_id}"
        return self.apply(edits.set_export(s, track_id, selected), text)

    def select_for_export(self, track_ids: Iterable[int]) -> bool:
        s = self._require()
        return self.apply(edits.select_for_export(s, track_ids), edits.describe("export"))

    # -- smoothing ----------------------------------------------------------------------------

    @property
    def smoothing(self) -> SmoothingSettings:
        return self._smoothing

    @property
    def smpl_dir(self) -> Path | None:
        return self._smpl_dir

    def set_smpl_dir(self, smpl_dir: Path | None) -> None:
        """The SMPL folder used to recompute smoothed meshes (None: smoothing unavailable)."""
        new = Path(smpl_dir) if smpl_dir is not None else None
        if new != self._smpl_dir:
            self._smpl_dir = new
            self._cache.clear()
            self.display_changed.emit()
            self._request_smoothing()

    @property
    def can_smooth(self) -> bool:
        return self._smpl_dir is not None

    def set_smoothing(self, settings: SmoothingSettings) -> None:
        """Change the smoothing; the tracks are re-smoothed in the background."""
        if settings == self._smoothing:
            return
        self._smoothing = settings
        self.smoothing_changed.emit()
        self.display_changed.emit()
        self._request_smoothing()

    def set_priority_track(self, track_id: int | None) -> None:
        """Smooth this track first (the selected one)."""
        self._priority = None if track_id is None or track_id < 0 else int(track_id)

    @property
    def smoothing_active(self) -> bool:
        """Smoothing is enabled and possible."""
        return self._smoothing.enabled and self.can_smooth

    def smoothed_track(self, track_id: int, current_only: bool = True) -> TrackResult | None:
        """The smoothed version of the current track ``track_id`` (None when not computed).

        ``current_only``: only with the current settings (else the latest computed for it).
        """
        if self._state is None or track_id not in self._state.tracks:
            return None
        entry = self._cache.get(id(self._state.tracks[track_id]))
        if entry is None or entry.raw is not self._state.tracks[track_id]:
            return None
        if current_only and entry.key != settings_key(self._smoothing):
            return None
        return entry.track

    def is_smoothing_current(self) -> bool:
        """Every track has its smoothing for the current settings (True when disabled)."""
        if not self.smoothing_active or self._state is None:
            return True
        return all(self.smoothed_track(t) is not None for t in self._state.tracks)

    @property
    def smoothing_busy(self) -> bool:
        return self._tasks.is_busy(SMOOTH_CHANNEL)

    # -- what the views show and exports use --------------------------------------------------

    def raw_tracks(self) -> dict[int, TrackResult]:
        """The edited tracks, unsmoothed."""
        return dict(self._state.tracks) if self._state is not None else {}

    def display_tracks(self) -> dict[int, TrackResult]:
        """The edited tracks as shown: smoothed when enabled (latest computed), else raw."""
        if self._state is None:
            return {}
        if not self.smoothing_active:
            return dict(self._state.tracks)
        out = {}
        for tid, raw in self._state.tracks.items():
            sm = self.smoothed_track(tid, current_only=False)
            out[tid] = sm if sm is not None else raw
        return out

    def display_result(self) -> VideoResult | None:
        """:meth:`display_tracks` with the video's geometry (None without results)."""
        if self._state is None:
            return None
        s = self._state
        return VideoResult(
            tracks=self.display_tracks(),
            n_frames=s.n_frames,
            width=s.width,
            height=s.height,
            fps=s.fps,
            source=s.source,
        )

    def presmoothed(self) -> dict[int, TrackResult]:
        """``{track_id: smoothed}`` of the tracks already smoothed with the current settings."""
        if self._state is None:
            return {}
        out = {}
        for tid in self._state.tracks:
            sm = self.smoothed_track(tid)
            if sm is not None:
                out[tid] = sm
        return out

    def export_result(self) -> VideoResult | None:
        """The tracks chosen for export, smoothed when smoothing is on.

        None when smoothing is on and some chosen track's smoothing is still being computed
        (export through a background job then, which smooths what is missing).
        """
        if self._state is None:
            return None
        s = self._state
        tracks = {}
        for tid in s.selected_ids():
            if self.smoothing_active:
                sm = self.smoothed_track(tid)
                if sm is None:
                    return None
                tracks[tid] = sm
            else:
                tracks[tid] = s.tracks[tid]
        return VideoResult(
            tracks=tracks,
            n_frames=s.n_frames,
            width=s.width,
            height=s.height,
            fps=s.fps,
            source=s.source,
        )

    # -- background smoothing -----------------------------------------------------------------

    def _missing(self) -> list[tuple[int, TrackResult]]:
        if self._state is None or not self.smoothing_active:
            return []
        todo = [(t, tr) for t, tr in self._state.tracks.items() if self.smoothed_track(t) is None]
        todo.sort(key=lambda item: (item[0] != self._priority, item[0]))
        return todo

    def _request_smoothing(self) -> None:
        todo = self._missing()
        if not todo:
            self._tasks.cancel(SMOOTH_CHANNEL)
            return
        settings = self._smoothing
        smpl_dir = self._smpl_dir
        assert smpl_dir is not None

        def work(token: CancelToken, report: object) -> None:
            body = load_body(smpl_dir)
            for _tid, raw in todo:
                token.check()
                smoothed = smooth_track_cancellable(raw, body, settings, token)
                report(_Smoothed(raw, settings_key(settings), smoothed))  # type: ignore[operator]

        try:
            self._tasks.submit(SMOOTH_CHANNEL, work)
        except RuntimeError:  # the window is closing: its task thread has stopped
            log.debug("smoothing not started: the task thread was shut down")

    def _on_reported(self, ticket: int, channel: str, value: object) -> None:
        if channel != SMOOTH_CHANNEL or not isinstance(value, _Smoothed):
            return
        self._cache[id(value.raw)] = value
        self._cache.move_to_end(id(value.raw))
        self._prune()
        if self._state is not None and any(value.raw is t for t in self._state.tracks.values()):
            self.display_changed.emit()

    def _on_failed(self, ticket: int, channel: str, message: str, details: str) -> None:
        if channel == SMOOTH_CHANNEL:
            self.failed.emit(f"Smoothing failed: {message}")

    def _on_busy(self, channel: str, busy: bool) -> None:
        if channel == SMOOTH_CHANNEL:
            self.smoothing_busy_changed.emit(busy)

    def _prune(self) -> None:
        """Keep the smoothing of current tracks and of a few others (undo targets)."""
        current = {id(t) for t in self._state.tracks.values()} if self._state is not None else set()
        extra = [k for k in self._cache if k not in current]
        for k in extra[: max(0, len(extra) - _EXTRA_CACHE)]:
            del self._cache[k]  # entries hold their raw track, so an id is never reused meanwhile


def _same(a: EditState, b: EditState) -> bool:
    """Whether an edit changed nothing (same tracks, names, export choice)."""
    return (
        dict(a.names) == dict(b.names)
        and a.export == b.export
        and list(a.tracks) == list(b.tracks)
        and all(a.tracks[t] is b.tracks[t] for t in a.tracks)
    )
