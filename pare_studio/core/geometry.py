"""Rotations, PARE's camera model and crop <-> image coordinate conversions.

Rotation helpers take torch tensors or numpy arrays and return the same kind (numpy input
is computed in torch, float64 stays float64). Camera conventions (spec §0, §3.4, §5.5):

* ``pred_cam = (s, tx, ty)``: weak-perspective camera in the 224-px crop, normalised units.
* ``cam_t = (tx, ty, 2 f / (img_res s + 1e-9))`` with ``f = 5000``: the equivalent
  perspective translation, metres.
* 2-D joints: ``f (X + t) / (Z + tz)`` with camera centre 0, divided by ``img_res / 2``,
  i.e. crop coordinates in [-1, 1] (pixel = 112 (u + 1)).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from pare_studio.core.constants import FOCAL_LENGTH, IMG_RES

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def _to_torch(x: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    if isinstance(x, torch.Tensor):
        return x, False
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return torch.from_numpy(np.ascontiguousarray(arr)), True


def _back(t: torch.Tensor, was_numpy: bool) -> torch.Tensor | np.ndarray:
    return t.detach().cpu().numpy() if was_numpy else t


# --------------------------------------------------------------------------------------------
# Rotations
# --------------------------------------------------------------------------------------------


def rot6d_to_rotmat(x: ArrayT) -> ArrayT:
    """PARE/SPIN 6-D rotation representation to rotation matrices.

    The six numbers of a joint are read as a 3x2 matrix **row by row**: column
    ``a1 = (x0, x2, x4)``, column ``a2 = (x1, x3, x5)``. Gram-Schmidt gives ``b1, b2``
    (normalised with ``max(|v|, 1e-12)``), ``b3 = b1 x b2``; ``R = [b1 b2 b3]`` as columns.

    Parameters
    ----------
    x : (..., 6) or (..., 6 K) float; a last axis of 6 K is read as K joints.

    Returns
    -------
    (..., 3, 3) for (..., 6) input, (..., K, 3, 3) for (..., 6 K) input; same dtype.
    """
    t, was_np = _to_torch(x)
    last = t.shape[-1]
    if last % 6 != 0 or last == 0:
        raise ValueError(
            f"rot6d_to_rotmat: last axis must be a multiple of 6, got {tuple(t.shape)}"
        )
    lead = tuple(t.shape[:-1]) if last == 6 else (*t.shape[:-1], last // 6)
    m = t.reshape(-1, 3, 2)
    a1, a2 = m[:, :, 0], m[:, :, 1]
    b1 = F.normalize(a1, dim=1)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1)
    b3 = torch.linalg.cross(b1, b2, dim=1)
    rot = torch.stack((b1, b2, b3), dim=-1)
    return _back(rot.reshape(*lead, 3, 3), was_np)  # type: ignore[return-value]


def axis_angle_to_rotmat(aa: ArrayT) -> ArrayT:
    """Axis-angle vectors (radians) to rotation matrices (Rodrigues).

    Same formula as smplx's ``batch_rodrigues`` (angle = ``|aa + 1e-8|``), so ground-truth
    meshes from (N, 72) poses match the reference's.

    Parameters
    ----------
    aa : (..., 3) or (..., 3 K) float; a last axis of 3 K is read as K joints (e.g. (N, 72)).

    Returns
    -------
    (..., 3, 3) or (..., K, 3, 3); same dtype.
    """
    t, was_np = _to_torch(aa)
    last = t.shape[-1]
    if last % 3 != 0 or last == 0:
        raise ValueError(
            f"axis_angle_to_rotmat: last axis must be a multiple of 3, got {tuple(t.shape)}"
        )
    lead = tuple(t.shape[:-1]) if last == 3 else (*t.shape[:-1], last // 3)
    v = t.reshape(-1, 3)
    angle = torch.norm(v + 1e-8, dim=1, keepdim=True)
    axis = v / angle
    cos = torch.cos(angle)[:, :, None]
    sin = torch.sin(angle)[:, :, None]
    rx, ry, rz = axis[:, 0], axis[:, 1], axis[:, 2]
    zeros = torch.zeros_like(rx)
    k = torch.stack((zeros, -rz, ry, rz, zeros, -rx, -ry, rx, zeros), dim=1).reshape(-1, 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device)[None]
    rot = eye + sin * k + (1 - cos) * torch.bmm(k, k)
    return _back(rot.reshape(*lead, 3, 3), was_np)  # type: ignore[return-value]


def rotmat_to_axis_angle(rot: ArrayT) -> ArrayT:
    """Rotation matrices to axis-angle vectors (radians, angle in [0, pi]).

    Goes through a unit quaternion chosen by Shepperd's method (largest of w, x, y, z first), so
    it stays accurate for angles near 0 and near pi.

    Parameters
    ----------
    rot : (..., 3, 3) float rotation matrices.

    Returns
    -------
    (..., 3); same dtype.
    """
    t, was_np = _to_torch(rot)
    if t.shape[-2:] != (3, 3):
        raise ValueError(f"rotmat_to_axis_angle: expected (..., 3, 3), got {tuple(t.shape)}")
    lead = t.shape[:-2]
    m = t.reshape(-1, 3, 3)
    m00, m01, m02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    m10, m11, m12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    m20, m21, m22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    # 4 candidate quaternions (w, x, y, z), each well conditioned when its first-listed
    # component is the largest; pick the best per matrix.
    tr = m00 + m11 + m22
    cands = torch.stack(
        (
            torch.stack((1 + tr, m21 - m12, m02 - m20, m10 - m01), dim=-1),
            torch.stack((m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20), dim=-1),
            torch.stack((m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21), dim=-1),
            torch.stack((m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22), dim=-1),
        ),
        dim=1,
    )  # (M, 4 candidates, 4)
    diag = torch.stack(
        (1 + tr, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1
    )
    best = diag.argmax(dim=-1)
    q = cands[torch.arange(m.shape[0], device=m.device), best]
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True).clamp_min(1e-12)
    q = torch.where(q[:, :1] < 0, -q, q)  # w >= 0 -> angle in [0, pi]
    w, xyz = q[:, 0], q[:, 1:]
    sin_half = torch.linalg.norm(xyz, dim=-1)
    angle = 2 * torch.atan2(sin_half, w)
    # angle / sin(angle/2), with its limit 2 (+ angle^2/12) near 0.
    small = sin_half < 1e-6
    scale = torch.where(
        small, 2 + angle**2 / 12, angle / torch.where(small, torch.ones_like(sin_half), sin_half)
    )
    aa = xyz * scale[:, None]
    return _back(aa.reshape(*lead, 3), was_np)  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Camera
# --------------------------------------------------------------------------------------------


def weak_cam_to_translation(
    cam: ArrayT, focal_length: float = FOCAL_LENGTH, img_res: int = IMG_RES
) -> ArrayT:
    """Weak-perspective ``(s, tx, ty)`` to translation ``(tx, ty, 2 f / (res s + 1e-9))``.

    Parameters
    ----------
    cam : (..., 3) float (torch or numpy).

    Returns
    -------
    (..., 3) same kind and dtype, metres.
    """
    s, tx, ty = cam[..., 0], cam[..., 1], cam[..., 2]
    tz = 2 * focal_length / (img_res * s + 1e-9)
    if isinstance(cam, torch.Tensor):
        return torch.stack((tx, ty, tz), dim=-1)
    return np.stack((tx, ty, tz), axis=-1).astype(np.asarray(cam).dtype, copy=False)


def perspective_projection(
    points: torch.Tensor,
    translation: torch.Tensor,
    focal_length: float = FOCAL_LENGTH,
    img_res: int | None = IMG_RES,
    rotation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Project 3-D points with PARE's camera: centre 0, focal ``focal_length``.

    ``p = R X + t``; ``u = f p_xy / p_z``; then divided by ``img_res / 2`` (crop coordinates
    in [-1, 1]) unless ``img_res`` is None (then pixels relative to the crop centre).

    Parameters
    ----------
    points : (N, J, 3) float, metres.
    translation : (N, 3) float, metres (``weak_cam_to_translation`` output).
    rotation : optional (N, 3, 3) camera rotation (identity in PARE).

    Returns
    -------
    (N, J, 2) same dtype.
    """
    if rotation is not None:
        points = torch.einsum("bij,bkj->bki", rotation, points)
    p = points + translation[:, None, :]
    uv = focal_length * (p[..., :2] / p[..., 2:3])
    if img_res is not None:
        uv = uv / (img_res / 2.0)
    return uv


# --------------------------------------------------------------------------------------------
# Crop <-> original image (numpy, demo post-processing, spec §5.5)
# --------------------------------------------------------------------------------------------


def _check_boxes(bboxes: np.ndarray, n: int, what: str) -> np.ndarray:
    b = np.asarray(bboxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] != n:
        raise ValueError(f"{what}: bboxes must be ({n}, 4) [cx, cy, w, h], got {b.shape}")
    return b


def crop_cam_to_orig_cam(
    pred_cam: np.ndarray, bboxes: np.ndarray, img_w: float, img_h: float
) -> np.ndarray:
    """Crop-space weak-perspective camera to the original image's (reference formula).

    With ``h = bbox[:, 2]``: ``sx = s h / W``, ``sy = s h / H``,
    ``tx' = (cx - W/2) / (W/2) / sx + tx``, ``ty' = (cy - H/2) / (H/2) / sy + ty``.

    Parameters
    ----------
    pred_cam : (n, 3) ``(s, tx, ty)``.
    bboxes : (n, 4) ``[cx, cy, w, h]`` pixels (square boxes, ``w == h``).
    img_w, img_h : original image size, pixels.

    Returns
    -------
    (n, 4) float64 ``[sx, sy, tx', ty']``.
    """
    cam = np.asarray(pred_cam, dtype=np.float64)
    if cam.ndim != 2 or cam.shape[1] != 3:
        raise ValueError(f"crop_cam_to_orig_cam: pred_cam must be (n, 3), got {cam.shape}")
    b = _check_boxes(bboxes, cam.shape[0], "crop_cam_to_orig_cam")
    cx, cy, h = b[:, 0], b[:, 1], b[:, 2]
    hw, hh = img_w / 2.0, img_h / 2.0
    sx = cam[:, 0] * (1.0 / (img_w / h))
    sy = cam[:, 0] * (1.0 / (img_h / h))
    tx = ((cx - hw) / hw / sx) + cam[:, 1]
    ty = ((cy - hh) / hh / sy) + cam[:, 2]
    return np.stack([sx, sy, tx, ty]).T


def crop_to_orig_coords(
    joints2d: np.ndarray, bboxes: np.ndarray, crop_size: int = IMG_RES
) -> np.ndarray:
    """Normalised crop coordinates ([-1, 1]) to original-image pixels (reference formula).

    ``u_px = 0.5 crop (u + 1)``, scaled by ``h / crop``, then offset by ``(cx - h/2, cy - h/2)``;
    the intermediate roundings to float32 are the reference's.

    Parameters
    ----------
    joints2d : (n, J, 2) float (``smpl_joints2d``).
    bboxes : (n, 4) ``[cx, cy, w, h]`` pixels.

    Returns
    -------
    (n, J, 2) float32 pixels.
    """
    kp = np.asarray(joints2d, dtype=np.float32)
    if kp.ndim != 3 or kp.shape[2] != 2:
        raise ValueError(f"crop_to_orig_coords: joints2d must be (n, J, 2), got {kp.shape}")
    b = _check_boxes(bboxes, kp.shape[0], "crop_to_orig_coords")
    cx, cy, h = b[:, 0], b[:, 1], b[:, 2]
    kp = 0.5 * crop_size * (kp + np.float32(1.0))
    kp = (kp.astype(np.float64) * (h[:, None, None] / crop_size)).astype(np.float32)
    out = np.empty_like(kp)
    out[:, :, 0] = (cx - h / 2)[:, None] + kp[:, :, 0]
    out[:, :, 1] = (cy - h / 2)[:, None] + kp[:, :, 1]
    return out


def orig_to_crop_coords(
    points2d: np.ndarray, bboxes: np.ndarray, crop_size: int = IMG_RES
) -> np.ndarray:
    """Inverse of :func:`crop_to_orig_coords`: image pixels to normalised crop coordinates.

    Parameters
    ----------
    points2d : (n, J, 2) pixels. bboxes : (n, 4) ``[cx, cy, w, h]``.

    Returns
    -------
    (n, J, 2) float64 in [-1, 1] for points inside the box.
    """
    p = np.asarray(points2d, dtype=np.float64)
    if p.ndim != 3 or p.shape[2] != 2:
        raise ValueError(f"orig_to_crop_coords: points2d must be (n, J, 2), got {p.shape}")
    b = _check_boxes(bboxes, p.shape[0], "orig_to_crop_coords")
    h = b[:, 2][:, None, None]
    origin = (b[:, :2] - b[:, 2:3] / 2)[:, None, :]
    return (p - origin) / h * 2.0 - 1.0
