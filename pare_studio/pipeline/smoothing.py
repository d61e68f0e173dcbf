"""Temporal smoothing of a track's pose: the reference's One-Euro filter and a rotation-aware one.

Two methods, both One-Euro filters (Casiez et al. 2012: an exponential smoother whose cutoff
frequency rises with the filtered speed, so slow motion is smoothed hard and fast motion lags
little), with the same parameters ``min_cutoff`` and ``beta``:

``"reference"`` (:func:`one_euro_reference`)
    Exactly the reference's ``--smooth`` (spec §5.7): the 9 elements of each rotation matrix are
    filtered independently, Δt = 1 per row, ``d_cutoff = 1``, float32 arithmetic, no
    re-orthonormalisation, so the smoothed matrices are slightly non-orthonormal (shear/shrink
    during fast motion). Use it for parity with the reference's pkl.

``"rotation"`` (:func:`one_euro_rotation`)
    The same filter on the rotation group, per joint. The "difference" of two rotations is the
    rotation vector of ``R_prev⁻¹ R`` (the shortest rotation between them, radians), the speed is
    its filtered angular velocity, and the exponential smoothing step is a slerp of the previous
    estimate towards the measurement by the One-Euro weight. Outputs are exact rotations
    (orthonormal, det +1), the filter is independent of the frame's orientation (unlike
    element-wise filtering), and frame gaps in a track (``frame_ids`` jumps) count as Δt > 1.

After filtering the pose, :func:`smooth_track` recomputes the mesh and the 49 joints with the
predictor's SMPL body (betas unchanged), as the reference does. ``pred_cam``, ``orig_cam``,
``smpl_joints2d`` and ``bboxes`` are **not** changed: the reference leaves the camera and the 2-D
joints unsmoothed, so the smoothed mesh is drawn with the per-frame camera.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from pare_studio.results import TrackResult

if TYPE_CHECKING:
    import torch

#: Names accepted by :func:`smooth_pose` / ``RunOptions.smoothing_method``.
SMOOTHING_METHODS = ("reference", "rotation")

SmoothingMethod = Literal["reference", "rotation"]

#: The reference demo's defaults (``--min_cutoff``, ``--beta``).
DEFAULT_MIN_CUTOFF = 0.004
DEFAULT_BETA = 1.0
#: Cutoff of the derivative's low-pass (Hz with Δt in frames), as the reference.
D_CUTOFF = 1.0


def _check_pose(pose: np.ndarray) -> np.ndarray:
    pose = np.asarray(pose)
    if pose.ndim != 4 or pose.shape[1:] != (24, 3, 3):
        raise ValueError(f"pose must be (n, 24, 3, 3) rotation matrices, got {pose.shape}")
    return pose


# --------------------------------------------------------------------------------------------
# Reference: element-wise One-Euro


def one_euro_reference(
    pose: np.ndarray, min_cutoff: float = DEFAULT_MIN_CUTOFF, beta: float = DEFAULT_BETA
) -> np.ndarray:
    """The reference's One-Euro filter over rotation-matrix elements (spec §5.7).

    For rows ``t = 1..n-1`` with Δt = 1, starting from ``x̂₀ = pose[0]``, ``dx̂₀ = 0``::

        α(c)  = r / (r + 1),  r = 2π·c·Δt
        dx̂_t = α(1)·(x_t − x̂_{t−1})/Δt + (1 − α(1))·dx̂_{t−1}
        c_t   = min_cutoff + β·|dx̂_t|
        x̂_t  = α(c_t)·x_t + (1 − α(c_t))·x̂_{t−1}

    element-wise, in float32 like the reference.

    Parameters
    ----------
    pose : (n, 24, 3, 3) float rotation matrices of one track, in frame order.
    min_cutoff, beta : the One-Euro parameters (reference demo: 0.004, 1.0).

    Returns
    -------
    (n, 24, 3, 3) float32; row 0 is unchanged; rows are not re-orthonormalised.
    """
    pose = _check_pose(pose).astype(np.float32, copy=False)
    out = np.empty_like(pose)
    if len(pose) == 0:
        return out
    out[0] = pose[0]
    x_prev = pose[0]
    dx_prev: np.ndarray | float = 0.0
    t_e = np.ones_like(pose[0])  # the reference's t - t_prev, an array of ones (float32)
    two_pi = 2 * math.pi
    for t in range(1, len(pose)):
        x = pose[t]
        r_d = two_pi * D_CUTOFF * t_e
        a_d = r_d / (r_d + 1)
        dx = (x - x_prev) / t_e
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        cutoff = min_cutoff + beta * np.abs(dx_hat)
        r = two_pi * cutoff * t_e
        a = r / (r + 1)
        x_hat = a * x + (1 - a) * x_prev
        out[t] = x_hat
        x_prev, dx_prev = x_hat, dx_hat
    return out


# --------------------------------------------------------------------------------------------
# Rotation-aware One-Euro (unit quaternions, w-first)


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of (..., 4) quaternions ``(w, x, y, z)``."""
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        axis=-1,
    )


def _quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _quat_log(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) (axis·angle, radians) of unit quaternions with ``w >= 0``."""
    w = np.clip(q[..., 0], -1.0, 1.0)
    v = q[..., 1:]
    s = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(s, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(s > 1e-12, angle / s, 2.0)  # limit of angle/sin(angle/2) is 2
    return v * scale[..., None]


def _quat_exp(rv: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) of rotation vectors (..., 3)."""
    angle = np.linalg.norm(rv, axis=-1)
    half = 0.5 * angle
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(angle > 1e-12, np.sin(half) / angle, 0.5)
    return np.concatenate((np.cos(half)[..., None], rv * k[..., None]), axis=-1)


def _alpha(dt: np.ndarray | float, cutoff: np.ndarray | float) -> np.ndarray:
    r = 2 * math.pi * np.asarray(cutoff) * dt
    return r / (r + 1)


def one_euro_rotation(
    pose: np.ndarray,
    min_cutoff: float = DEFAULT_MIN_CUTOFF,
    beta: float = DEFAULT_BETA,
    frame_ids: np.ndarray | None = None,
    d_cutoff: float = D_CUTOFF,
) -> np.ndarray:
    """One-Euro filter on the rotation group, per joint (geodesic differences, slerp steps).

    For each joint, with ``x̂₀ = R₀`` and ``ω̂₀ = 0``::

        δ_t  = log(x̂_{t−1}⁻¹ R_t)                      rotation vector, radians
        ω̂_t = α(d_cutoff)·δ_t/Δt + (1 − α(d_cutoff))·ω̂_{t−1}
        c_t  = min_cutoff + β·‖ω̂_t‖
        x̂_t = x̂_{t−1} · exp(α(c_t)·δ_t)               slerp towards R_t

    Parameters
    ----------
    pose : (n, 24, 3, 3) rotation matrices of one track (orthonormal up to float noise).
    min_cutoff, beta : One-Euro parameters; the same scale as the reference's (speeds in
        radians per frame are comparable to its per-element speeds).
    frame_ids : (n,) int, the track's frames; Δt = their differences (None: Δt = 1).
    d_cutoff : cutoff of the speed's low-pass.

    Returns
    -------
    (n, 24, 3, 3) float32 rotation matrices (orthonormal, det +1); row 0 = pose[0] projected
    to the nearest rotation.
    """
    from scipy.spatial.transform import Rotation

    pose = _check_pose(pose)
    n = len(pose)
    if n == 0:
        return np.empty((0, 24, 3, 3), dtype=np.float32)
    if frame_ids is None:
        dts = np.ones(n, dtype=np.float64)
    else:
        fid = np.asarray(frame_ids, dtype=np.float64).reshape(-1)
        if fid.shape != (n,):
            raise ValueError(f"frame_ids must be ({n},), got {fid.shape}")
        dts = np.ones(n)
        dts[1:] = np.maximum(np.diff(fid), 1.0)
    quats = Rotation.from_matrix(pose.reshape(-1, 3, 3).astype(np.float64)).as_quat()
    q = np.roll(quats, 1, axis=-1).reshape(n, 24, 4)  # scipy is (x, y, z, w) -> (w, x, y, z)
    out = np.empty_like(q)
    x_hat = q[0]
    out[0] = x_hat
    omega = np.zeros((24, 3))
    for t in range(1, n):
        dt = dts[t]
        rel = _quat_mul(_quat_conj(x_hat), q[t])
        rel = np.where(rel[:, :1] < 0, -rel, rel)  # shortest way (q and -q are one rotation)
        delta = _quat_log(rel)
        a_d = _alpha(dt, d_cutoff)
        omega = a_d * delta / dt + (1 - a_d) * omega
        cutoff = min_cutoff + beta * np.linalg.norm(omega, axis=-1)
        a = _alpha(dt, cutoff)
        x_hat = _quat_mul(x_hat, _quat_exp(a[:, None] * delta))
        x_hat /= np.linalg.norm(x_hat, axis=-1, keepdims=True)
        out[t] = x_hat
    mats = Rotation.from_quat(np.roll(out.reshape(-1, 4), -1, axis=-1)).as_matrix()
    return mats.reshape(n, 24, 3, 3).astype(np.float32)


def smooth_pose(
    pose: np.ndarray,
    method: str = "reference",
    min_cutoff: float = DEFAULT_MIN_CUTOFF,
    beta: float = DEFAULT_BETA,
    frame_ids: np.ndarray | None = None,
) -> np.ndarray:
    """Smooth one track's pose with ``method`` (see the module docstring).

    Parameters
    ----------
    pose : (n, 24, 3, 3) rotation matrices, frame order.
    method : "reference" or "rotation".
    min_cutoff, beta : One-Euro parameters.
    frame_ids : (n,) the track's frames (used by "rotation" for Δt; "reference" ignores gaps, as
        the reference does).

    Returns
    -------
    (n, 24, 3, 3) float32.
    """
    if method == "reference":
        return one_euro_reference(pose, min_cutoff, beta)
    if method == "rotation":
        return one_euro_rotation(pose, min_cutoff, beta, frame_ids)
    raise ValueError(
        f"unknown smoothing method {method!r}; use one of {', '.join(SMOOTHING_METHODS)}"
    )


# --------------------------------------------------------------------------------------------
# Mesh recomputation


def recompute_mesh(
    smpl: torch.nn.Module,
    pose: np.ndarray,
    betas: np.ndarray,
    batch_size: int = 256,
    out: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and the 49 joints for given poses and betas with the predictor's SMPL body.

    Parameters
    ----------
    smpl : ``core.smpl.SmplBody`` (``forward(rotmat, betas) -> (vertices, joints49)``).
    pose : (n, 24, 3, 3) float rotation matrices.
    betas : (n, 10) float.
    batch_size : rows per SMPL call (bounds temporary memory).
    out : optional ``(verts, joints3d)`` float32 arrays of the right shapes to write into.

    Returns
    -------
    verts : (n, 6890, 3) float32, metres. joints3d : (n, 49, 3) float32, metres.
    """
    import torch

    n = len(pose)
    if out is not None:
        verts, joints = out
        if verts.shape != (n, 6890, 3) or joints.shape != (n, 49, 3):
            raise ValueError(f"out arrays must be ({n}, 6890, 3) and ({n}, 49, 3)")
    else:
        verts = np.empty((n, 6890, 3), dtype=np.float32)
        joints = np.empty((n, 49, 3), dtype=np.float32)
    try:
        device = next(smpl.buffers()).device
    except StopIteration:
        device = torch.device("cpu")
    with torch.inference_mode():
        for s in range(0, n, batch_size):
            rot = torch.as_tensor(
                np.ascontiguousarray(pose[s : s + batch_size], np.float32), device=device
            )
            bet = torch.as_tensor(
                np.ascontiguousarray(betas[s : s + batch_size], np.float32), device=device
            )
            v, j = smpl(rot, bet)
            verts[s : s + len(rot)] = v.detach().cpu().numpy()
            joints[s : s + len(rot)] = j.detach().cpu().numpy()
    return verts, joints


def smooth_track(
    track: TrackResult,
    smpl: torch.nn.Module,
    method: str = "reference",
    min_cutoff: float = DEFAULT_MIN_CUTOFF,
    beta: float = DEFAULT_BETA,
    inplace: bool = False,
) -> TrackResult:
    """``track`` with smoothed ``pose`` and the mesh and joints recomputed from it.

    ``betas``, ``pred_cam``, ``orig_cam``, ``smpl_joints2d``, ``bboxes`` and ``frame_ids`` are
    carried over unchanged (the reference's behaviour).

    Parameters
    ----------
    track : one person's results.
    smpl : the predictor's SMPL body (``predictor.smpl``).
    method, min_cutoff, beta : see :func:`smooth_pose`.
    inplace : overwrite ``track``'s ``pose``, ``verts`` and ``joints3d`` arrays (no second copy
        of the mesh in memory: 83 KB per frame) and return ``track``; default: a new TrackResult,
        ``track`` untouched.
    """
    pose = smooth_pose(track.pose, method, min_cutoff, beta, track.frame_ids)
    if inplace and track.verts.dtype == np.float32 and track.joints3d.dtype == np.float32:
        recompute_mesh(smpl, pose, track.betas, out=(track.verts, track.joints3d))
        track.pose[...] = pose
        return track
    verts, joints3d = recompute_mesh(smpl, pose, track.betas)
    return replace(track, pose=pose, verts=verts, joints3d=joints3d)
