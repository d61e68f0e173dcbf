"""ViewerState: the one object every widget reads and writes (napari's ViewerModel, small).

Widgets never talk to each other: the timeline sets ``state.frame``; the frame view, the 3D view
and the track list listen to ``frame_changed``, ``selection_changed`` and friends. Every signal is
emitted on the GUI thread (the engine's results reach the state through queued signals).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from pare_studio.results import TrackResult, VideoResult

if TYPE_CHECKING:
    from pare_studio.pipeline.video import FrameSource

#: Frame rate used for playback when neither the video nor the result knows one.
FALLBACK_FPS = 25.0


@dataclass(frozen=True)
class DisplayOptions:
    """What the views draw (View menu toggles)."""

    show_boxes: bool = True
    show_joints2d: bool = True
    show_mesh_overlay: bool = True
    wireframe: bool = False
    show_joints3d: bool = False
    all_tracks_3d: bool = True
    show_grid: bool = True
    show_raw_ghost: bool = True  # smoothing on: the raw body as a ghost in 3D


class ViewerState(QObject):
    """The video, the result and the cursor shared by the widgets.

    Signals
    -------
    source_changed() : a video / image folder was opened or closed.
    result_changed() : the whole result was replaced or cleared.
    track_added(int) : one track was added to the result (streamed from a run).
    frame_changed(int) : the current frame changed.
    selection_changed(int) : the selected track changed (-1 = none).
    visibility_changed(int, bool) : a track was shown / hidden.
    display_changed() : a display option changed.
    faces_changed() : the mesh topology became (un)available.
    labels_changed() : track names or the export choice changed (the edit session's).
    """

    source_changed = Signal()
    result_changed = Signal()
    track_added = Signal(int)
    frame_changed = Signal(int)
    selection_changed = Signal(int)
    visibility_changed = Signal(int, bool)
    display_changed = Signal()
    faces_changed = Signal()
    labels_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source: FrameSource | None = None
        self._video_path: Path | None = None
        self._result: VideoResult | None = None
        self._result_path: Path | None = None
        self._faces: np.ndarray | None = None
        self._frame = 0
        self._selected: int | None = None
        self._hidden: set[int] = set()
        self._display = DisplayOptions()
        self._names: dict[int, str] = {}
        self._export: frozenset[int] | None = None
        self._ghosts: dict[int, TrackResult] = {}
        self._keeping_view = False

    # -- video --------------------------------------------------------------------------------

    @property
    def source(self) -> FrameSource | None:
        return self._source

    @property
    def video_path(self) -> Path | None:
        return self._video_path

    def set_source(self, source: FrameSource | None, path: Path | None = None) -> None:
        """Show ``source`` (closing the previous one); keeps the result only if it fits."""
        old = self._source
        self._source = source
        self._video_path = (
            Path(path) if path is not None else (Path(source.path) if source else None)
        )
        if old is not None and old is not source:
            old.close()
        self.source_changed.emit()
        self._clamp_and_emit_frame(force=True)

    def read_frame(self, i: int) -> np.ndarray | None:
        """Frame ``i`` of the video, (H, W, 3) uint8 RGB, or None (no video / unreadable)."""
        if self._source is None:
            return None
        return self._source.read(i)

    # -- result -------------------------------------------------------------------------------

    @property
    def result(self) -> VideoResult | None:
        return self._result

    @property
    def result_path(self) -> Path | None:
        """The pkl the result was loaded from or last saved to, if any."""
        return self._result_path

    def set_result(
        self, result: VideoResult | None, path: Path | None = None, keep_view: bool = False
    ) -> None:
        """Replace the whole result (None clears it).

        Selection and hidden tracks reset, unless ``keep_view`` (a run's final result replacing
        the tracks it streamed): then the choices stay for the tracks that still exist.
        """
        old_hidden, old_selected = set(self._hidden), self._selected
        self._result = result
        self._result_path = Path(path) if path is not None else None
        ids = set(result.tracks) if result is not None else set()
        self._hidden = (old_hidden & ids) if keep_view else set()
        self._selected = old_selected if keep_view and old_selected in ids else None
        if self._selected is None and ids:
            self._selected = min(ids)
        self._keeping_view = keep_view
        try:
            self.result_changed.emit()
        finally:
            self._keeping_view = False
        self.selection_changed.emit(self.selected_track)
        self._clamp_and_emit_frame(force=True)

    @property
    def keeping_view(self) -> bool:
        """True while ``result_changed`` announces a ``keep_view`` replacement (e.g. an edit)."""
        return self._keeping_view

    def adopt_result(self, result: VideoResult, path: Path | None = None) -> None:
        """Take a run's final result: when it holds exactly the tracks already streamed (the same
        objects), only the reference changes and the views are left as they are; otherwise it is
        :meth:`set_result` with ``keep_view``."""
        current = self._result
        same = (
            current is not None
            and set(current.tracks) == set(result.tracks)
            and all(current.tracks[t] is result.tracks[t] for t in result.tracks)
        )
        if not same:
            self.set_result(result, path=path, keep_view=True)
            return
        self._result = result
        self._result_path = Path(path) if path is not None else None

    def set_result_path(self, path: Path | None) -> None:
        self._result_path = Path(path) if path is not None else None

    def begin_streaming(
        self, n_frames: int, width: int, height: int, fps: float, source: str
    ) -> None:
        """Start an empty result that :meth:`add_track` fills as a run reports tracks.

        When nothing is shown yet, the empty result is taken silently (the views have nothing to
        clear), which keeps the start of a run from repainting the window.
        """
        empty = VideoResult(
            tracks={}, n_frames=n_frames, width=width, height=height, fps=fps, source=source
        )
        if self._result is None or not self._result.tracks:
            self._result, self._result_path = empty, None
            self._hidden.clear()
            return
        self.set_result(empty)

    def add_track(self, track: TrackResult) -> None:
        """Add (or replace) one track of the current result."""
        if self._result is None:
            w, h = self.frame_size
            self._result = VideoResult(n_frames=self.n_frames, width=w, height=h, fps=self.fps)
        self._result.tracks[int(track.track_id)] = track
        self._result.tracks = dict(sorted(self._result.tracks.items()))
        self.track_added.emit(int(track.track_id))
        if self._selected is None:
            self.select_track(int(track.track_id))

    @property
    def track_ids(self) -> list[int]:
        return sorted(self._result.tracks) if self._result is not None else []

    def track(self, track_id: int) -> TrackResult | None:
        if self._result is None:
            return None
        return self._result.tracks.get(int(track_id))

    # -- topology -----------------------------------------------------------------------------

    @property
    def faces(self) -> np.ndarray | None:
        """(13776, 3) int SMPL faces, or None (no SMPL folder: meshes are drawn as points)."""
        return self._faces

    def set_faces(self, faces: np.ndarray | None) -> None:
        self._faces = None if faces is None else np.ascontiguousarray(faces, dtype=np.uint32)
        self.faces_changed.emit()

    # -- geometry of the timeline -------------------------------------------------------------

    @property
    def n_frames(self) -> int:
        """Frames on the timeline: the video's, else the result's."""
        if self._source is not None:
            return len(self._source)
        if self._result is not None:
            if self._result.n_frames:
                return int(self._result.n_frames)
            ends = [int(t.frame_ids[-1]) + 1 for t in self._result.tracks.values() if len(t)]
            return max(ends, default=0)
        return 0

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) in pixels: the video's, else the result's, else (0, 0)."""
        if self._source is not None:
            return tuple(self._source.size)  # type: ignore[return-value]
        if self._result is not None and self._result.width and self._result.height:
            return (int(self._result.width), int(self._result.height))
        return (0, 0)

    @property
    def fps(self) -> float:
        if self._source is not None and self._source.fps > 0:
            return float(self._source.fps)
        if self._result is not None and self._result.fps > 0:
            return float(self._result.fps)
        return FALLBACK_FPS

    # -- cursor -------------------------------------------------------------------------------

    @property
    def frame(self) -> int:
        return self._frame

    def set_frame(self, frame: int) -> None:
        """Move the cursor (clamped to the timeline); emits ``frame_changed`` when it moves."""
        n = self.n_frames
        f = int(np.clip(int(frame), 0, max(n - 1, 0)))
        if f != self._frame:
            self._frame = f
            self.frame_changed.emit(f)

    def step(self, delta: int) -> None:
        self.set_frame(self._frame + int(delta))

    def _clamp_and_emit_frame(self, force: bool = False) -> None:
        n = self.n_frames
        f = int(np.clip(self._frame, 0, max(n - 1, 0)))
        if force or f != self._frame:
            self._frame = f
            self.frame_changed.emit(f)

    # -- selection and visibility -------------------------------------------------------------

    @property
    def selected_track(self) -> int:
        """Selected track id, -1 when none."""
        return -1 if self._selected is None else self._selected

    def select_track(self, track_id: int | None) -> None:
        tid = None if track_id is None or int(track_id) < 0 else int(track_id)
        if tid != self._selected:
            self._selected = tid
            self.selection_changed.emit(self.selected_track)

    def is_visible(self, track_id: int) -> bool:
        return int(track_id) not in self._hidden

    def set_track_visible(self, track_id: int, visible: bool) -> None:
        tid = int(track_id)
        if visible == self.is_visible(tid):
            return
        if visible:
            self._hidden.discard(tid)
        else:
            self._hidden.add(tid)
        self.visibility_changed.emit(tid, bool(visible))

    def visible_tracks_at(self, frame: int | None = None) -> list[tuple[TrackResult, int]]:
        """(track, row) of every visible track present at ``frame`` (default: current frame)."""
        if self._result is None:
            return []
        f = self._frame if frame is None else int(frame)
        return [(t, r) for t, r in self._result.tracks_at(f) if self.is_visible(t.track_id)]

    # -- display options ----------------------------------------------------------------------

    @property
    def display(self) -> DisplayOptions:
        return self._display

    def set_display(self, **changes: Any) -> None:
        """Change display options by name, e.g. ``set_display(wireframe=True)``."""
        names = {f.name for f in fields(DisplayOptions)}
        unknown = set(changes) - names
        if unknown:
            raise KeyError(f"unknown display option(s): {', '.join(sorted(unknown))}")
        new = replace(self._display, **changes)
        if new != self._display:
            self._display = new
            self.display_changed.emit()

    # -- track labels and ghosts (set by the edit session, window_editing.py) -----------------

    def track_name(self, track_id: int) -> str:
        """The name the user gave the track, '' when not renamed."""
        return self._names.get(int(track_id), "")

    def is_exported(self, track_id: int) -> bool:
        """Whether the track is chosen for export (True when no choice was made)."""
        return self._export is None or int(track_id) in self._export

    def set_track_labels(self, names: dict[int, str], export: set[int] | None) -> None:
        """Track names and the ids chosen for export (None = all); emits ``labels_changed``."""
        new_names = {int(k): str(v) for k, v in names.items()}
        new_export = None if export is None else frozenset(int(t) for t in export)
        if new_names != self._names or new_export != self._export:
            self._names, self._export = new_names, new_export
            self.labels_changed.emit()

    def ghost_track(self, track_id: int) -> TrackResult | None:
        """The raw (unsmoothed) track drawn as a ghost with ``track_id``, if any."""
        return self._ghosts.get(int(track_id))

    def set_ghost_tracks(self, tracks: dict[int, TrackResult] | None) -> None:
        """Raw tracks to draw as ghosts under the shown ones (None = none); redraws the 3D view."""
        new = dict(tracks or {})
        if new.keys() == self._ghosts.keys() and all(new[t] is self._ghosts[t] for t in new):
            return
        self._ghosts = new
        self.display_changed.emit()
