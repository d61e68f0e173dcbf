"""What every animation export shares: options, the world frame, and a track made ready to write.

World frame
    PARE's bodies live in the camera frame of the video (OpenCV axes: x right, y down, z
    forward; the global orientation includes the flip that makes the SMPL body stand upright in
    the image). With ``upright=True`` (the default) exports use y-up axes with the camera at the
    origin looking down −z — the convention of glTF, OpenGL and Blender's cameras — obtained by
    the proper rotation ``U = diag(1, −1, −1)`` (180° about x) applied to everything::

        world vertex = U · (SMPL vertex + T)                T: root translation (translation.py)
        root joint   : rotation U·R_0, position U·(J_0 + T)
        other joints : their SMPL local rotations R_k, unchanged

    ``upright=False`` writes the camera frame as is (U = I).

Body shape
    A skeleton or skinned mesh has one rest shape, while PARE predicts betas per frame. Exports
    use the track's mean betas over its frames (``betas="mean"``, the default) or its first
    frame's (``betas="first"``). The npz export keeps the per-frame betas as well.

Rotations
    Every rotation is projected to the nearest exact rotation first
    (:func:`~pare_studio.export.rig.nearest_rotations`): the reference's element-wise smoothing
    produces slightly non-orthonormal matrices.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pare_studio.errors import TrackEditError
from pare_studio.export.rig import SmplRig, check_rotations, nearest_rotations
from pare_studio.export.translation import (
    DEFAULT_FOV_DEG,
    CameraIntrinsics,
    camera_intrinsics,
    root_translation,
)
from pare_studio.results import TrackResult, VideoResult

#: Camera frame (x right, y down, z forward) → y-up frame with the camera looking down −z.
UPRIGHT = np.diag([1.0, -1.0, -1.0])

#: Frame rate used when neither the options nor the video give one (a bare pkl has none).
FALLBACK_FPS = 30.0

BETAS_CHOICES = ("mean", "first")


@dataclass(frozen=True)
class ExportOptions:
    """Settings shared by the BVH, glTF, OBJ and npz exports.

    Attributes
    ----------
    fps : frame rate of the written animation; None = the video's (``VideoResult.fps``), else
        :data:`FALLBACK_FPS`.
    upright : y-up world with the camera looking down −z (module docstring); False keeps
        PARE's camera frame.
    translation : place the body at the root translation estimated from the camera
        (:mod:`pare_studio.export.translation`); False keeps the root joint at its rest place.
    focal_length : assumed focal length, pixels; None derives it from ``fov_deg``.
    fov_deg : assumed horizontal field of view, degrees.
    image_size : (W, H) pixels, overriding the video's / the estimate from the cameras.
    betas : "mean" (track mean, default) or "first" (first frame) rest shape.
    """

    fps: float | None = None
    upright: bool = True
    translation: bool = True
    focal_length: float | None = None
    fov_deg: float = DEFAULT_FOV_DEG
    image_size: tuple[float, float] | None = None
    betas: str = "mean"

    def __post_init__(self) -> None:
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"fps must be a positive number, got {self.fps}")
        if self.betas not in BETAS_CHOICES:
            raise ValueError(f"betas must be one of {', '.join(BETAS_CHOICES)}, got {self.betas!r}")
        if not 0.0 < self.fov_deg < 180.0:
            raise ValueError(f"fov_deg must be between 0 and 180, got {self.fov_deg}")

    def resolve_fps(self, result: VideoResult) -> float:
        """The frame rate to write: the option, else the video's, else :data:`FALLBACK_FPS`."""
        if self.fps is not None:
            return float(self.fps)
        if result.fps and result.fps > 0 and math.isfinite(result.fps):
            return float(result.fps)
        return FALLBACK_FPS

    def world_rotation(self) -> np.ndarray:
        """(3, 3) the axis change U applied to everything (module docstring)."""
        return UPRIGHT.copy() if self.upright else np.eye(3)

    def camera(self, result: VideoResult) -> CameraIntrinsics | None:
        """The assumed camera, or None when translation is off or the image size is unknown."""
        if not self.translation:
            return None
        return camera_intrinsics(result, self.image_size, self.focal_length, self.fov_deg)


@dataclass(frozen=True)
class PreparedTrack:
    """One track in the export world, ready for a writer.

    Attributes
    ----------
    track_id : the track's id.
    frame_ids : (n,) int64 video frames of the rows.
    fps : frames per second of the animation.
    rotations : (n, 24, 3, 3) float64 exact local joint rotations; row 0 is the root's world
        orientation ``U·R_0``.
    trans : (n, 3) float64 world translation of the whole body ``U·T``, metres.
    root_positions : (n, 3) float64 world position of the root joint ``U·(J_0 + T)``, metres.
    betas : (10,) float64 the rest shape used.
    rest_joints : (24, 3) float64 rest joints for ``betas`` (SMPL model frame), metres.
    world : (3, 3) the axis change U.
    translation_estimated : whether ``trans`` came from the camera (False: zeros).
    """

    track_id: int
    frame_ids: np.ndarray
    fps: float
    rotations: np.ndarray
    trans: np.ndarray
    root_positions: np.ndarray
    betas: np.ndarray
    rest_joints: np.ndarray
    world: np.ndarray
    translation_estimated: bool

    def __len__(self) -> int:
        return int(self.frame_ids.shape[0])

    @property
    def times(self) -> np.ndarray:
        """(n,) float64 video time of each row, seconds (``frame_id / fps``)."""
        return self.frame_ids.astype(np.float64) / self.fps


def track_betas(track: TrackResult, mode: str = "mean") -> np.ndarray:
    """(10,) float64 rest shape of a track: mean over its frames or its first frame's."""
    betas = np.asarray(track.betas, np.float64)
    if len(betas) == 0:
        raise TrackEditError(f"track {track.track_id} has no frames; nothing to export")
    if mode == "mean":
        return betas.mean(axis=0)
    if mode == "first":
        return betas[0].copy()
    raise ValueError(f"betas must be one of {', '.join(BETAS_CHOICES)}, got {mode!r}")


def prepare_track(
    track: TrackResult,
    rig: SmplRig,
    options: ExportOptions,
    fps: float,
    camera: CameraIntrinsics | None,
) -> PreparedTrack:
    """Put one track in the export world (module docstring).

    Parameters
    ----------
    track : the track (pose (n, 24, 3, 3), betas (n, 10), orig_cam (n, 4), frame_ids (n,)).
    rig : the SMPL rig (rest joints for the chosen betas).
    options : export options (``upright``, ``betas``).
    fps : animation frame rate.
    camera : assumed camera for the root translation; None = no translation.
    """
    if len(track) == 0:
        raise TrackEditError(f"track {track.track_id} has no frames; nothing to export")
    world = options.world_rotation()
    rot = nearest_rotations(check_rotations(track.pose))
    rot[:, 0] = world @ rot[:, 0]
    betas = track_betas(track, options.betas)
    rest = rig.rest_joints(betas)
    root = root_translation(track, camera)
    trans_cam = root.trans
    trans = trans_cam @ world.T
    root_pos = (rest[0] + trans_cam) @ world.T
    return PreparedTrack(
        track_id=int(track.track_id),
        frame_ids=np.asarray(track.frame_ids, np.int64).copy(),
        fps=float(fps),
        rotations=rot,
        trans=trans,
        root_positions=root_pos,
        betas=betas,
        rest_joints=rest,
        world=world,
        translation_estimated=root.estimated,
    )


def fill_gaps(prepared: PreparedTrack) -> PreparedTrack:
    """The track on every frame from its first to its last (formats without gaps, e.g. BVH).

    Missing frames get rotations slerped per joint between the neighbouring frames and
    translations interpolated linearly. A track without gaps is returned as is.
    """
    f = prepared.frame_ids
    full = np.arange(int(f[0]), int(f[-1]) + 1, dtype=np.int64)
    if len(full) == len(f):
        return prepared
    from scipy.spatial.transform import Rotation, Slerp

    n_full = len(full)
    rot = np.empty((n_full, *prepared.rotations.shape[1:]))
    for k in range(prepared.rotations.shape[1]):
        slerp = Slerp(f.astype(np.float64), Rotation.from_matrix(prepared.rotations[:, k]))
        rot[:, k] = slerp(full.astype(np.float64)).as_matrix()
    rot[np.searchsorted(full, f)] = prepared.rotations  # keep the given rows bit for bit

    def interp(a: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(full, f, a[:, c]) for c in range(a.shape[1])], axis=1)

    return PreparedTrack(
        track_id=prepared.track_id,
        frame_ids=full,
        fps=prepared.fps,
        rotations=rot,
        trans=interp(prepared.trans),
        root_positions=interp(prepared.root_positions),
        betas=prepared.betas,
        rest_joints=prepared.rest_joints,
        world=prepared.world,
        translation_estimated=prepared.translation_estimated,
    )


def select_tracks(result: VideoResult, track_ids: Sequence[int] | None) -> list[TrackResult]:
    """The tracks to export, in the given order (None = all, ascending ids).

    Raises
    ------
    TrackEditError
        An id that is not in ``result`` (the message lists the ids there), or no track at all.
    """
    if track_ids is None:
        ids = sorted(result.tracks)
    else:
        ids = list(dict.fromkeys(int(t) for t in track_ids))
        missing = [t for t in ids if t not in result.tracks]
        if missing:
            have = ", ".join(str(t) for t in sorted(result.tracks)) or "none"
            raise TrackEditError(
                f"track(s) {', '.join(map(str, missing))} not in the results (tracks: {have})"
            )
    if not ids:
        raise TrackEditError("no track to export (the results hold none, or none is selected)")
    return [result.tracks[t] for t in ids]


def per_track_paths(out: str | Path, track_ids: Sequence[int]) -> dict[int, Path]:
    """Output file of each track for one-person-per-file formats (BVH, npz).

    One track: ``out`` itself. Several: ``<stem>_track<id><suffix>`` next to ``out``
    (``walk.bvh`` → ``walk_track1.bvh``, ``walk_track3.bvh``).
    """
    out = Path(out)
    ids = list(track_ids)
    if len(ids) == 1:
        return {ids[0]: out}
    return {t: out.with_name(f"{out.stem}_track{t}{out.suffix}") for t in ids}
