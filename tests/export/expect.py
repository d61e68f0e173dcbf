"""Expected values written out from the documented formulas (independent of the exporters)."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial.transform import Rotation

#: Camera frame → y-up world (180° about x).
U = np.diag([1.0, -1.0, -1.0])


def camera_translation(orig_cam: np.ndarray, width: float, fov_deg: float = 60.0) -> np.ndarray:
    """(n, 3) ``(tx, ty, 2 f / (W sx))`` with ``f = (W/2) / tan(fov/2)``."""
    f = (width / 2) / math.tan(math.radians(fov_deg) / 2)
    cam = np.asarray(orig_cam, np.float64)
    return np.stack([cam[:, 2], cam[:, 3], 2 * f / (width * cam[:, 0])], axis=1)


def exact(rot: np.ndarray) -> np.ndarray:
    """Nearest exact rotations of (..., 3, 3) matrices (scipy)."""
    r = np.asarray(rot, np.float64)
    return Rotation.from_matrix(r.reshape(-1, 3, 3)).as_matrix().reshape(r.shape)


def smpl_vertices(body: torch.nn.Module, pose: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """(n, 6890, 3) float64 vertices of ``core.smpl.SmplBody`` for one shape ``betas`` (10,)."""
    n = len(pose)
    with torch.inference_mode():
        v, _ = body(
            torch.tensor(exact(pose), dtype=torch.float32),
            torch.tensor(np.tile(betas, (n, 1)), dtype=torch.float32),
        )
    return v.numpy().astype(np.float64)


def rest_joints(arrays: dict, betas: np.ndarray) -> np.ndarray:
    """(24, 3) ``J_regressor · (v_template + shapedirs · betas)`` from the raw SMPL arrays."""
    v = arrays["v_template"] + np.einsum("vck,k->vc", arrays["shapedirs"][:, :, :10], betas)
    return np.asarray(arrays["J_regressor"], np.float64) @ v


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (radians) between rotation matrices (..., 3, 3), stable near 0."""
    diff = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=(-2, -1))
    return 2 * np.arcsin(np.clip(diff / (2 * math.sqrt(2)), 0, 1))
