"""What the renderer should draw, as an immutable snapshot built from the state (no Qt, no GL).

The GUI thread builds a :class:`SceneSnapshot` whenever the frame, the tracks or the display
options change — only references to the track arrays, so it costs microseconds. The renderer
(its own thread, or the Qt canvas) applies the newest one: the 3D viewport shows the selected or
all visible people; the 2D overlay shows every visible person over the frame.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from pare_studio.gui.placement import display_points
from pare_studio.gui.state import DisplayOptions, ViewerState
from pare_studio.gui.track_utils import track_color

_seq = itertools.count(1)
#: Colour of the raw body behind a smoothed one, RGBA (alpha = the ghost's opacity).
RAW_GHOST_COLOR = (0.75, 0.75, 0.8, 0.3)


@dataclass(frozen=True)
class TrackDraw:
    """One person at one frame.

    verts : (6890, 3) float32, metres, SMPL output frame (y down), as in pare_output.pkl.
    joints : (49, 3) float32 in the same frame, or None (joints hidden).
    orig_cam : (4,) ``(sx, sy, tx, ty)`` original-image weak-perspective camera.
    color : RGBA floats.
    in_3d : drawn in the 3D viewport (else only in the 2D overlay).
    """

    track_id: int
    verts: np.ndarray
    joints: np.ndarray | None
    orig_cam: np.ndarray
    color: tuple[float, float, float, float]
    in_3d: bool = True


@dataclass(frozen=True)
class SceneSnapshot:
    """Everything drawn for one frame.

    faces : (F, 3) mesh faces, or None (3D: vertices as points; no 2D overlay).
    frame_size : (width, height) of the video, pixels ((0, 0) = unknown: no 2D overlay).
    overlay : render the 2D mesh overlay.
    reset_view : aim the 3D camera at these meshes (a new result, or the user asked).
    raw_ghosts : the raw (unsmoothed) bodies of the 3D people while smoothing is shown
        (``ViewerState.set_ghost_tracks``), drawn translucent; never in the 2D overlay.
    """

    seq: int
    frame: int
    tracks: tuple[TrackDraw, ...]
    faces: np.ndarray | None
    options: DisplayOptions
    frame_size: tuple[int, int] = (0, 0)
    overlay: bool = False
    reset_view: bool = False
    raw_ghosts: tuple[TrackDraw, ...] = ()

    @property
    def tracks_3d(self) -> tuple[TrackDraw, ...]:
        return tuple(d for d in self.tracks if d.in_3d)


def build_snapshot(state: ViewerState, reset_view: bool = False) -> SceneSnapshot:
    """The scene for ``state.frame``: every visible person (3D: the selected one unless "all")."""
    opts = state.display
    draws = []
    for track, row in state.visible_tracks_at():
        if track.verts is None or track.orig_cam is None:
            continue
        in_3d = opts.all_tracks_3d or track.track_id == state.selected_track
        joints = track.joints3d[row] if opts.show_joints3d and track.joints3d is not None else None
        draws.append(
            TrackDraw(
                track_id=int(track.track_id),
                verts=track.verts[row],
                joints=joints,
                orig_cam=np.asarray(track.orig_cam[row], dtype=np.float64),
                color=(*track_color(track.track_id), 1.0),
                in_3d=in_3d,
            )
        )
    ghosts = []
    if opts.show_raw_ghost:
        for d in draws:
            raw = state.ghost_track(d.track_id) if d.in_3d else None
            row = raw.index_of(state.frame) if raw is not None else None
            if raw is not None and row is not None and raw.verts is not None:
                ghosts.append(replace(d, verts=raw.verts[row], joints=None, color=RAW_GHOST_COLOR))
    w, h = state.frame_size
    return SceneSnapshot(
        seq=next(_seq),
        frame=state.frame,
        tracks=tuple(draws),
        faces=state.faces,
        options=opts,
        frame_size=(int(w), int(h)),
        overlay=bool(opts.show_mesh_overlay and state.faces is not None and w and h),
        reset_view=reset_view,
        raw_ghosts=tuple(ghosts),
    )


@dataclass(frozen=True)
class TrackGeometry:
    """A person's mesh in the viewport frame, computed once per snapshot by the renderer.

    verts : (6890, 3) float32, y up (:func:`placement.display_points`).
    normals : (6890, 3) float32 unit normals, or None (no faces).
    cull : faces to cull ("back" / "front", :func:`vispy_mesh_visual.hidden_side`), None = none.
    """

    verts: np.ndarray
    normals: np.ndarray | None
    cull: str | None = None


def prepare_geometry(
    snap: SceneSnapshot,
    normals: Callable[[np.ndarray, np.ndarray], np.ndarray],
    cull: Callable[[np.ndarray, np.ndarray], str | None] | None = None,
) -> dict[int, TrackGeometry]:
    """Place every person of ``snap`` and compute normals (shared by the 3D view and the overlay).

    ``cull(verts, faces)`` picks the side to cull; it is asked once, for the first person.
    """
    out = {}
    side = None
    for d in snap.tracks:
        verts = display_points(d.verts, d.orig_cam)
        if snap.faces is None:
            out[d.track_id] = TrackGeometry(verts, None)
            continue
        if cull is not None and side is None:
            side = cull(verts, snap.faces)
        out[d.track_id] = TrackGeometry(verts, normals(verts, snap.faces), side)
    return out
