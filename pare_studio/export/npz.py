"""npz export: SMPL parameters of one track per file, readable with ``allow_pickle=False``.

Keys (n = frames of the track)::

    poses       (n, 72) float32   axis-angle, radians; joints in SMPL order, first 3 = global
                                  orientation (PARE's, i.e. in the camera frame)
    betas       (n, 10) float32   per-frame shape, as predicted
    trans       (n, 3)  float32   root translation in the camera frame, metres (zeros when not
                                  estimable, see trans_estimated)
    frame_ids   (n,)    int64     0-based video frames
    fps         ()      float64   frames per second
    gender      ()      str       "neutral"
    track_id    ()      int64
    trans_estimated ()  bool      whether trans came from the camera
    focal_length    ()  float64   assumed focal length, pixels (0 when not estimable)
    image_size      (2,) float64  (W, H) pixels used for trans (0, 0 when not estimable)
    coordinate_frame () str       "opencv_camera": x right, y down, z forward

The parameters are PARE's own, not moved into the y-up world of the other exports:
``SMPL(poses, betas).vertices + trans`` is the body in front of the camera, and
``axis_angle_to_rotmat(poses)`` gives back the pkl's rotation matrices (projected to exact
rotations). To get the y-up world of the BVH / glTF exports, rotate vertices and translation
by 180° about x (``diag(1, −1, −1)``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pare_studio.atomic import write_bytes_atomic
from pare_studio.export.common import ExportOptions, per_track_paths, select_tracks
from pare_studio.export.rig import check_rotations, nearest_rotations
from pare_studio.export.translation import CameraIntrinsics, root_translation
from pare_studio.results import TrackResult, VideoResult

NPZ_KEYS = (
    "poses",
    "betas",
    "trans",
    "frame_ids",
    "fps",
    "gender",
    "track_id",
    "trans_estimated",
    "focal_length",
    "image_size",
    "coordinate_frame",
)


def rotations_to_axis_angle(pose: np.ndarray) -> np.ndarray:
    """(n, 24, 3, 3) rotation matrices → (n, 72) float64 axis-angle (radians, angle ≤ π)."""
    from scipy.spatial.transform import Rotation

    rot = nearest_rotations(check_rotations(pose))
    n = rot.shape[0]
    return Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_rotvec().reshape(n, 72)


def track_arrays(
    track: TrackResult, fps: float, camera: CameraIntrinsics | None
) -> dict[str, np.ndarray]:
    """The npz payload of one track (module docstring)."""
    root = root_translation(track, camera)
    return {
        "poses": rotations_to_axis_angle(track.pose).astype(np.float32),
        "betas": np.asarray(track.betas, np.float32),
        "trans": root.trans.astype(np.float32),
        "frame_ids": np.asarray(track.frame_ids, np.int64),
        "fps": np.float64(fps),
        "gender": np.str_("neutral"),
        "track_id": np.int64(track.track_id),
        "trans_estimated": np.bool_(root.estimated),
        "focal_length": np.float64(camera.focal_px if camera and root.estimated else 0.0),
        "image_size": np.array(
            [camera.width, camera.height] if camera and root.estimated else [0.0, 0.0],
            np.float64,
        ),
        "coordinate_frame": np.str_("opencv_camera"),
    }


def write_npz(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` as an uncompressed npz atomically (no object arrays)."""
    bio = io.BytesIO()
    np.savez(bio, **arrays)
    return write_bytes_atomic(path, bio.getvalue())


def export_npz(
    result: VideoResult,
    out: str | os.PathLike[str],
    options: ExportOptions | None = None,
    track_ids: Sequence[int] | None = None,
) -> list[Path]:
    """One npz per track (``out`` for one track, ``<stem>_track<id>.npz`` for several).

    ``options.upright`` and ``options.betas`` do not apply (module docstring); ``fps`` and the
    camera settings do.
    """
    options = options or ExportOptions()
    tracks = select_tracks(result, track_ids)
    fps = options.resolve_fps(result)
    camera = options.camera(result)
    paths = per_track_paths(out, [t.track_id for t in tracks])
    return [write_npz(paths[t.track_id], track_arrays(t, fps, camera)) for t in tracks]


def load_npz_export(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read an npz export back (``allow_pickle=False``); plain dict of arrays."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
