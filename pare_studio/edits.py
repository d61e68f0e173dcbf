"""Track edits as plain functions on an immutable state (no Qt): rename, delete, merge, split,
choose the tracks to export — plus a small undo/redo history.

Model
    :class:`EditState` is a frozen snapshot: the tracks (``TrackResult`` per id), the display
    names the user gave, the ids chosen for export, the next free track id and the video's
    geometry. Every operation (:func:`rename_track`, :func:`delete_tracks`,
    :func:`merge_tracks`, :func:`split_track`, :func:`set_export`,
    :func:`select_for_export`) returns a **new** state and never modifies the old one or its
    arrays; tracks an operation does not touch are shared between the two states, so keeping
    old states for undo costs only the tracks that changed.

Undo / redo
    Because states are immutable, undoing an edit is going back to the state before it.
    :class:`EditHistory` keeps that linear history for scripts and tests. The window wraps each
    edit in a ``QUndoCommand`` holding ``(before, after)`` states: ``redo()`` installs
    ``after``, ``undo()`` installs ``before``; :func:`describe` gives the command text.

Exports and saved projects use :meth:`EditState.to_result`, so they reflect every edit; a
track's id is kept through edits (a split's second part gets a new id), and the exported
``pare_output.pkl`` holds the chosen tracks under those ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np

from pare_studio.errors import TrackEditError
from pare_studio.results import TrackResult, VideoResult

#: Display name of a track the user has not renamed.
DEFAULT_NAME = "Person {id}"

#: Per-frame arrays of a track (everything but ``track_id``; ``joints2d`` may be None).
FRAME_KEYS = TrackResult.REFERENCE_KEYS


@dataclass(frozen=True, eq=False)
class EditState:
    """One immutable snapshot of the edited results.

    Attributes
    ----------
    tracks : ``{track_id: TrackResult}`` (read-only mapping; ids >= 1).
    names : ``{track_id: name}`` of renamed tracks only (others show :data:`DEFAULT_NAME`).
    export : ids of the tracks chosen for export.
    next_id : the id the next new track (a split's second part) gets.
    n_frames, width, height, fps, source : the video's geometry (see ``VideoResult``).
    """

    tracks: Mapping[int, TrackResult]
    names: Mapping[int, str] = field(default_factory=dict)
    export: frozenset[int] = frozenset()
    next_id: int = 1
    n_frames: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracks", MappingProxyType(dict(sorted(self.tracks.items()))))
        object.__setattr__(
            self,
            "names",
            MappingProxyType({k: v for k, v in self.names.items() if k in self.tracks}),
        )
        object.__setattr__(self, "export", frozenset(t for t in self.export if t in self.tracks))
        floor = max(self.tracks, default=0) + 1
        if self.next_id < floor:
            object.__setattr__(self, "next_id", floor)

    # -- construction / conversion -----------------------------------------------------------
    @classmethod
    def from_result(
        cls,
        result: VideoResult,
        names: Mapping[int, str] | None = None,
        export: Iterable[int] | None = None,
    ) -> EditState:
        """The unedited state of a run's results; every track selected for export by default."""
        return cls(
            tracks=dict(result.tracks),
            names=dict(names or {}),
            export=frozenset(result.tracks if export is None else export),
            n_frames=int(result.n_frames),
            width=int(result.width),
            height=int(result.height),
            fps=float(result.fps),
            source=str(result.source),
        )

    def to_result(self, selected_only: bool = False) -> VideoResult:
        """A ``VideoResult`` of the edited tracks (only those chosen for export if asked)."""
        ids = self.selected_ids() if selected_only else self.track_ids()
        return VideoResult(
            tracks={t: self.tracks[t] for t in ids},
            n_frames=self.n_frames,
            width=self.width,
            height=self.height,
            fps=self.fps,
            source=self.source,
        )

    # -- queries -------------------------------------------------------------------------------
    def track_ids(self) -> list[int]:
        return list(self.tracks)

    def selected_ids(self) -> list[int]:
        """Ids chosen for export, ascending."""
        return [t for t in self.tracks if t in self.export]

    def name(self, track_id: int) -> str:
        """Display name: the user's, else ``Person <id>``."""
        return self.names.get(track_id) or DEFAULT_NAME.format(id=track_id)

    def track(self, track_id: int) -> TrackResult:
        """The track, or :class:`TrackEditError` naming the ids there."""
        try:
            return self.tracks[int(track_id)]
        except KeyError:
            have = ", ".join(map(str, self.tracks)) or "none"
            raise TrackEditError(f"there is no track {track_id} (tracks: {have})") from None


# --------------------------------------------------------------------------------------------
# Checks


def merge_problem(state: EditState, target_id: int, other_id: int) -> str | None:
    """Why ``other_id`` cannot be merged into ``target_id``, or None when it can."""
    if target_id == other_id:
        return "choose two different tracks to merge"
    for t in (target_id, other_id):
        if t not in state.tracks:
            return f"there is no track {t}"
    shared = np.intersect1d(state.tracks[target_id].frame_ids, state.tracks[other_id].frame_ids)
    if shared.size:
        where = ", ".join(str(int(f)) for f in shared[:5]) + (" ..." if shared.size > 5 else "")
        return (
            f"tracks {target_id} and {other_id} are both present in {shared.size} frame(s) "
            f"({where}); only tracks that never appear together can be merged — split or "
            "delete the overlapping part first"
        )
    return None


def split_problem(state: EditState, track_id: int, frame: int) -> str | None:
    """Why ``track_id`` cannot be split at ``frame``, or None when it can."""
    if track_id not in state.tracks:
        return f"there is no track {track_id}"
    f = state.tracks[track_id].frame_ids
    if len(f) < 2:
        return f"track {track_id} has only {len(f)} frame(s); nothing to split"
    if not (int(f[0]) < frame <= int(f[-1])):
        return (
            f"track {track_id} spans frames {int(f[0])}..{int(f[-1])}; split at a frame after its "
            f"first (the frame starts the new track), got {frame}"
        )
    return None


# --------------------------------------------------------------------------------------------
# Operations (each returns a new state)


def rename_track(state: EditState, track_id: int, name: str) -> EditState:
    """Give a track a display name (blank = back to the default name)."""
    state.track(track_id)
    names = dict(state.names)
    clean = " ".join(str(name).split())
    if clean and clean != DEFAULT_NAME.format(id=track_id):
        names[track_id] = clean
    else:
        names.pop(track_id, None)
    return replace(state, names=names)


def delete_tracks(state: EditState, track_ids: Iterable[int]) -> EditState:
    """Remove tracks (their names and export choice go with them)."""
    ids = {int(t) for t in track_ids}
    for t in sorted(ids):
        state.track(t)
    tracks = {t: tr for t, tr in state.tracks.items() if t not in ids}
    return replace(state, tracks=tracks)


def _concat(key: str, a: TrackResult, b: TrackResult, order: np.ndarray) -> np.ndarray | None:
    va, vb = getattr(a, key), getattr(b, key)
    if va is None or vb is None:
        return None  # keypoints of one track only: cannot be joined (they stay per-track None)
    if va.shape[1:] != vb.shape[1:]:
        return None
    return np.concatenate((va, vb))[order]


def merge_tracks(state: EditState, target_id: int, other_id: int) -> EditState:
    """Join ``other_id``'s frames into ``target_id`` (rows sorted by frame); ``other_id`` goes.

    The tracks must not share a frame. The merged track keeps ``target_id``, its name, and is
    chosen for export when either was. ``joints2d`` (STAF keypoints, None for box tracking)
    survives only when both tracks have it.

    Raises
    ------
    TrackEditError
        Unknown ids, the same id twice, or overlapping frames (the message lists them).
    """
    problem = merge_problem(state, target_id, other_id)
    if problem:
        raise TrackEditError(f"cannot merge: {problem}")
    a, b = state.tracks[target_id], state.tracks[other_id]
    order = np.argsort(np.concatenate((a.frame_ids, b.frame_ids)), kind="stable")
    merged = TrackResult(track_id=target_id, **{k: _concat(k, a, b, order) for k in FRAME_KEYS})
    tracks = dict(state.tracks)
    tracks[target_id] = merged
    del tracks[other_id]
    export = set(state.export)
    if other_id in export:
        export.add(target_id)
    return replace(state, tracks=tracks, export=frozenset(export))


def split_track(state: EditState, track_id: int, frame: int) -> EditState:
    """Cut a track before ``frame``: frames < ``frame`` keep the id, the rest get a new one.

    The new track's id is ``state.next_id`` (ids are never reused within a history). It is
    chosen for export when the original was; a renamed track's second part is named
    ``"<name> (2)"``.

    Raises
    ------
    TrackEditError
        Unknown id, or ``frame`` not strictly after the track's first frame and at most its last.
    """
    problem = split_problem(state, track_id, int(frame))
    if problem:
        raise TrackEditError(f"cannot split: {problem}")
    tr = state.tracks[track_id]
    cut = int(np.searchsorted(tr.frame_ids, int(frame)))
    new_id = state.next_id

    def part(sl: slice, tid: int) -> TrackResult:
        values = {k: (None if getattr(tr, k) is None else getattr(tr, k)[sl]) for k in FRAME_KEYS}
        return TrackResult(track_id=tid, **values)

    tracks = dict(state.tracks)
    tracks[track_id] = part(slice(0, cut), track_id)
    tracks[new_id] = part(slice(cut, None), new_id)
    names = dict(state.names)
    if track_id in state.names:
        names[new_id] = f"{state.names[track_id]} (2)"
    export = set(state.export)
    if track_id in export:
        export.add(new_id)
    return replace(state, tracks=tracks, names=names, export=frozenset(export), next_id=new_id + 1)


def set_export(state: EditState, track_id: int, selected: bool) -> EditState:
    """Choose (or un-choose) one track for export."""
    state.track(track_id)
    export = set(state.export)
    if selected:
        export.add(int(track_id))
    else:
        export.discard(int(track_id))
    return replace(state, export=frozenset(export))


def select_for_export(state: EditState, track_ids: Iterable[int]) -> EditState:
    """Choose exactly these tracks for export."""
    ids = {int(t) for t in track_ids}
    for t in sorted(ids):
        state.track(t)
    return replace(state, export=frozenset(ids))


def describe(op: str, *args: object) -> str:
    """Undo-menu text of an operation (``describe("merge", 3, 1)`` → "Merge track 1 into 3")."""
    if op == "rename":
        return f"Rename track {args[0]} to {args[1]!r}" if len(args) > 1 else "Rename track"
    if op == "delete":
        ids = sorted(int(t) for t in args[0]) if args else []  # type: ignore[attr-defined]
        return "Delete track" + ("s " if len(ids) > 1 else " ") + ", ".join(map(str, ids))
    if op == "merge":
        return f"Merge track {args[1]} into {args[0]}"
    if op == "split":
        return f"Split track {args[0]} at frame {args[1]}"
    if op == "export":
        return "Choose tracks for export"
    return op


# --------------------------------------------------------------------------------------------
# Linear history (the window uses QUndoStack instead)


class EditHistory:
    """Undo / redo over immutable states.

    ``history.apply(merge_tracks(history.state, 1, 3), "Merge track 3 into 1")`` records an
    edit; :meth:`undo` / :meth:`redo` move along the history; applying after an undo drops the
    undone edits (as every editor does).
    """

    def __init__(self, state: EditState) -> None:
        self._states: list[EditState] = [state]
        self._texts: list[str] = []
        self._index = 0

    @property
    def state(self) -> EditState:
        return self._states[self._index]

    def apply(self, new_state: EditState, text: str = "") -> EditState:
        """Record ``new_state`` (the result of an operation on :attr:`state`)."""
        del self._states[self._index + 1 :]
        del self._texts[self._index :]
        self._states.append(new_state)
        self._texts.append(text)
        self._index += 1
        return new_state

    @property
    def can_undo(self) -> bool:
        return self._index > 0

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._states) - 1

    @property
    def undo_text(self) -> str:
        return self._texts[self._index - 1] if self.can_undo else ""

    @property
    def redo_text(self) -> str:
        return self._texts[self._index] if self.can_redo else ""

    def undo(self) -> EditState:
        """Go back one edit (``TrackEditError`` when there is none)."""
        if not self.can_undo:
            raise TrackEditError("nothing to undo")
        self._index -= 1
        return self.state

    def redo(self) -> EditState:
        """Re-apply the last undone edit (``TrackEditError`` when there is none)."""
        if not self.can_redo:
            raise TrackEditError("nothing to redo")
        self._index += 1
        return self.state
