"""Jitter metrics: per-joint acceleration over time, before / after smoothing.

Jitter of a tracked body shows up as large frame-to-frame acceleration of its joints (the
smoothing of :mod:`pare_studio.pipeline.smoothing` exists to reduce it). For joint positions
``x_t`` the acceleration at frame t is the central second difference::

    a_t = (x_{t+1} − 2·x_t + x_{t−1}) · fps²          m/s²  (m/frame² when fps is None)

defined only where frames t−1, t and t+1 are all present in the track (first and last frames
and the frames next to a gap are NaN). The same for rotations: the angular acceleration of a
joint is ``‖log(R_t⁻¹·R_{t+1}) − log(R_{t−1}⁻¹·R_t)‖`` (rad/frame², times fps²), the change of
its local angular velocity, independent of the joint's orientation.

:func:`joint_acceleration` gives the (n, J) magnitudes to plot over time; :func:`mean_acceleration`
the per-joint mean over the frames where it is defined, the usual "acceleration error" summary.
"""

from __future__ import annotations

import numpy as np

from pare_studio.export.rig import check_rotations
from pare_studio.results import TrackResult


def _triples(frame_ids: np.ndarray | None, n: int) -> np.ndarray:
    """(n,) bool: frame t has both neighbours t−1 and t+1 in the track."""
    ok = np.zeros(n, bool)
    if n < 3:
        return ok
    if frame_ids is None:
        ok[1:-1] = True
        return ok
    f = np.asarray(frame_ids, np.int64).reshape(-1)
    if f.shape != (n,):
        raise ValueError(f"frame_ids must be ({n},), got {f.shape}")
    ok[1:-1] = (f[1:-1] - f[:-2] == 1) & (f[2:] - f[1:-1] == 1)
    return ok


def _scale(fps: float | None) -> float:
    if fps is None:
        return 1.0
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return float(fps) ** 2


def joint_acceleration(
    joints: np.ndarray, frame_ids: np.ndarray | None = None, fps: float | None = None
) -> np.ndarray:
    """Acceleration magnitude of each joint at each frame.

    Parameters
    ----------
    joints : (n, J, 3) joint positions over a track's frames, metres.
    frame_ids : (n,) the track's frames (None = consecutive).
    fps : frames per second; None gives metres per frame².

    Returns
    -------
    (n, J) float64, m/s² (or m/frame²); NaN where undefined (module docstring).
    """
    x = np.asarray(joints, np.float64)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"joints must be (n, J, 3), got {x.shape}")
    n = x.shape[0]
    out = np.full(x.shape[:2], np.nan)
    ok = _triples(frame_ids, n)
    if ok.any():
        acc = x[2:] - 2 * x[1:-1] + x[:-2]
        mag = np.linalg.norm(acc, axis=-1) * _scale(fps)
        inner = ok[1:-1]
        out[1:-1][inner] = mag[inner]
    return out


def rotation_acceleration(
    pose: np.ndarray, frame_ids: np.ndarray | None = None, fps: float | None = None
) -> np.ndarray:
    """Angular acceleration magnitude of each joint's local rotation at each frame.

    Parameters
    ----------
    pose : (n, J, 3, 3) rotation matrices (SMPL local rotations, J = 24).
    frame_ids, fps : as :func:`joint_acceleration`.

    Returns
    -------
    (n, J) float64, rad/s² (or rad/frame²); NaN where undefined.
    """
    from scipy.spatial.transform import Rotation

    p = np.asarray(pose, np.float64)
    if p.ndim != 4 or p.shape[2:] != (3, 3):
        raise ValueError(f"pose must be (n, J, 3, 3), got {p.shape}")
    if p.shape[1] == 24:
        p = check_rotations(p)
    n, j = p.shape[:2]
    out = np.full((n, j), np.nan)
    ok = _triples(frame_ids, n)
    if not ok.any():
        return out
    rel = np.swapaxes(p[:-1], -1, -2) @ p[1:]  # R_t^-1 R_{t+1}, (n-1, J, 3, 3)
    omega = Rotation.from_matrix(rel.reshape(-1, 3, 3)).as_rotvec().reshape(n - 1, j, 3)
    mag = np.linalg.norm(omega[1:] - omega[:-1], axis=-1) * _scale(fps)  # at frames 1..n-2
    inner = ok[1:-1]
    out[1:-1][inner] = mag[inner]
    return out


def mean_acceleration(acceleration: np.ndarray) -> np.ndarray:
    """(J,) mean over the frames where the acceleration is defined (NaN for a joint with none).

    ``acceleration`` is the (n, J) output of :func:`joint_acceleration` or
    :func:`rotation_acceleration`.
    """
    a = np.asarray(acceleration, np.float64)
    count = np.isfinite(a).sum(axis=0)
    total = np.where(np.isfinite(a), a, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def track_jitter(track: TrackResult, fps: float | None = None) -> dict[str, np.ndarray]:
    """Jitter of one track, for the before / after plot.

    Returns
    -------
    ``{"joints": (n, 49) m/s² of the pkl's 49 joints (joints3d), "rotations": (n, 24) rad/s² of
    the 24 SMPL joint rotations, "mean_joints": (49,), "mean_rotations": (24,)}``; per frame
    when ``fps`` is None.
    """
    joints = joint_acceleration(track.joints3d, track.frame_ids, fps)
    rots = rotation_acceleration(track.pose, track.frame_ids, fps)
    return {
        "joints": joints,
        "rotations": rots,
        "mean_joints": mean_acceleration(joints),
        "mean_rotations": mean_acceleration(rots),
    }
