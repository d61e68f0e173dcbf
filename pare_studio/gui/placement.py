"""Where a mesh goes on screen: weak-perspective projection and 3D-viewport placement (no Qt).

The reference renders each person with the original-image weak-perspective camera
``orig_cam = (sx, sy, tx, ty)`` (spec §5.8): after its 180° rotation about X, pixel coordinates
are ``u = (1 + sx (X + tx)) W / 2`` and ``v = (1 + sy (Y + ty)) H / 2`` for a vertex (X, Y, Z) in
the SMPL output frame (x right, y down, z away from the camera).

The 3D viewport needs one common frame for everyone. We use the perspective camera that gives
the same pixels at the mesh's centre: with a horizontal field of view ``fov``, focal length
``f = W / (2 tan(fov / 2))`` and depth ``z = 2 f / (W sx) = 1 / (sx tan(fov / 2))``, so the person
sits at ``(tx, ty, z)`` in the camera frame. Display coordinates are y-up: ``(x, -y, -z)``.
"""

from __future__ import annotations

import math

import numpy as np

#: Field of view used to turn weak-perspective scale into depth, degrees.
DEFAULT_FOV_DEG = 55.0


def project_weak_perspective(
    points: np.ndarray, orig_cam: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Project SMPL-frame points into the original image with ``orig_cam``.

    Parameters
    ----------
    points : (V, 3) float, metres, SMPL output frame (y down).
    orig_cam : (4,) float ``(sx, sy, tx, ty)``.
    width, height : image size in pixels.

    Returns
    -------
    (V, 2) float64 pixel coordinates ``(u, v)``, origin at the top-left corner.
    """
    sx, sy, tx, ty = (float(c) for c in np.asarray(orig_cam, dtype=np.float64).ravel()[:4])
    p = np.asarray(points, dtype=np.float64)
    out = np.empty((p.shape[0], 2), dtype=np.float64)
    out[:, 0] = (1.0 + sx * (p[:, 0] + tx)) * (0.5 * width)
    out[:, 1] = (1.0 + sy * (p[:, 1] + ty)) * (0.5 * height)
    return out


def camera_translation(orig_cam: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """Camera-frame position (metres, y down, z forward) of a person's SMPL origin.

    Parameters
    ----------
    orig_cam : (4,) ``(sx, sy, tx, ty)``; ``sx`` must be > 0.
    fov_deg : horizontal field of view of the virtual camera.

    Returns
    -------
    (3,) float64 ``(tx, ty, 1 / (sx tan(fov / 2)))``.
    """
    sx, _sy, tx, ty = (float(c) for c in np.asarray(orig_cam, dtype=np.float64).ravel()[:4])
    z = 1.0 / (max(abs(sx), 1e-6) * math.tan(math.radians(fov_deg) / 2.0))
    return np.array([tx, ty, z], dtype=np.float64)


def display_points(
    points: np.ndarray, orig_cam: np.ndarray, fov_deg: float = DEFAULT_FOV_DEG
) -> np.ndarray:
    """SMPL-frame points placed in the shared y-up viewport frame.

    Parameters
    ----------
    points : (V, 3) float, metres, SMPL output frame.
    orig_cam : (4,) the track's ``orig_cam`` at that frame.

    Returns
    -------
    (V, 3) float32 ``(x, -y, -z)`` of ``points + camera_translation(orig_cam)``.
    """
    p = np.asarray(points, dtype=np.float64) + camera_translation(orig_cam, fov_deg)
    p[:, 1:] *= -1.0
    return p.astype(np.float32)
