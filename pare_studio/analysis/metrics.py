"""Evaluation metrics of the PARE paper (spec §6.4): MPJPE, PA-MPJPE and V2V.

Everything is computed in float64. Inputs are in **metres**; the error functions return
**millimetres** (metres x 1000), per joint or per sample, so that means over samples are the
numbers of the paper's table. Joints are the 14 LSP joints regressed from the mesh with
``J_regressor_h36m`` and expressed relative to the H36M pelvis (:func:`joints14_from_vertices`).
"""

from __future__ import annotations

import numpy as np

from pare_studio.core.constants import H36M_PELVIS, H36M_TO_J14

#: Metres -> millimetres.
M_TO_MM = 1000.0


def _as_batch(points: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 2:
        return arr[None], True
    if arr.ndim != 3:
        raise ValueError(f"{name}: expected (J, D) or (N, J, D) points, got shape {arr.shape}")
    return arr, False


def compute_similarity_transform(S1: np.ndarray, S2: np.ndarray) -> np.ndarray:
    """Align ``S1`` to ``S2`` with the least-squares similarity transform (scale, rotation, shift).

    Per sample, as the reference's ``compute_similarity_transform`` (spec §6.4): centre both
    point sets; ``var1 = sum ||X1||^2``; ``K = X1 X2^T`` (3x3); ``K = U S V^T``;
    ``Z = I`` with ``Z[-1, -1] = sign(det(U V^T))``; ``R = V Z U^T``;
    ``scale = trace(R K) / var1``; ``t = mu2 - scale R mu1``; result ``scale R S1 + t``.
    A degenerate ``S1`` (all points equal) gives scale 0, i.e. every point at the centroid of
    ``S2`` (the reference would return NaN).

    Parameters
    ----------
    S1, S2 : (J, 3) or (N, J, 3) float, the same shape; S1 is moved onto S2.

    Returns
    -------
    S1_hat : float64 array of the shape of ``S1``.
    """
    s1, single = _as_batch(S1, "S1")
    s2, _ = _as_batch(S2, "S2")
    if s1.shape != s2.shape:
        raise ValueError(f"point sets differ in shape: {np.shape(S1)} vs {np.shape(S2)}")
    # Work with (N, 3, J) as the reference does.
    p1 = np.swapaxes(s1, 1, 2)
    p2 = np.swapaxes(s2, 1, 2)
    mu1 = p1.mean(axis=2, keepdims=True)
    mu2 = p2.mean(axis=2, keepdims=True)
    x1 = p1 - mu1
    x2 = p2 - mu2
    var1 = np.sum(x1**2, axis=(1, 2))
    k = x1 @ np.swapaxes(x2, 1, 2)
    u, _s, vh = np.linalg.svd(k)
    v = np.swapaxes(vh, 1, 2)
    ut = np.swapaxes(u, 1, 2)
    z = np.broadcast_to(np.eye(3), k.shape).copy()
    z[:, -1, -1] *= np.sign(np.linalg.det(u @ np.swapaxes(v, 1, 2)))
    r = v @ (z @ ut)
    # A degenerate S1 (all points equal, var1 = 0) collapses onto the centroid of S2 (scale 0)
    # instead of the reference's NaN.
    tr = np.trace(r @ k, axis1=1, axis2=2)
    scale = np.divide(tr, var1, out=np.zeros_like(tr), where=var1 > 0)
    t = mu2 - scale[:, None, None] * (r @ mu1)
    p1_hat = scale[:, None, None] * (r @ p1) + t
    out = np.swapaxes(p1_hat, 1, 2)
    return out[0] if single else out


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise ValueError(
            "expected prediction and ground truth of the same shape (N, J, 3), "
            f"got {p.shape} and {g.shape}"
        )
    return p, g


def mpjpe_per_joint(pred_joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """Euclidean error of each joint, no alignment beyond what the inputs carry.

    Parameters
    ----------
    pred_joints, gt_joints : (N, J, 3) float, metres (pelvis-aligned for the paper's MPJPE).

    Returns
    -------
    (N, J) float64, millimetres.
    """
    p, g = _check_pair(pred_joints, gt_joints)
    return np.sqrt(((p - g) ** 2).sum(axis=-1)) * M_TO_MM


def pa_mpjpe_per_joint(pred_joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """Per-joint error after the per-sample similarity Procrustes alignment of pred onto GT.

    Parameters
    ----------
    pred_joints, gt_joints : (N, J, 3) float, metres.

    Returns
    -------
    (N, J) float64, millimetres.
    """
    p, g = _check_pair(pred_joints, gt_joints)
    aligned = compute_similarity_transform(p, g)
    return np.sqrt(((aligned - g) ** 2).sum(axis=-1)) * M_TO_MM


def mpjpe(pred_joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """MPJPE of each sample: mean over joints of :func:`mpjpe_per_joint`; (N,) float64, mm."""
    return mpjpe_per_joint(pred_joints, gt_joints).mean(axis=-1)


def pa_mpjpe(pred_joints: np.ndarray, gt_joints: np.ndarray) -> np.ndarray:
    """PA-MPJPE of each sample: mean over joints of :func:`pa_mpjpe_per_joint`; (N,) float64, mm."""
    return pa_mpjpe_per_joint(pred_joints, gt_joints).mean(axis=-1)


def v2v_per_vertex(pred_vertices: np.ndarray, gt_vertices: np.ndarray) -> np.ndarray:
    """Euclidean error of each vertex with **no alignment at all** (spec §6.4).

    Parameters
    ----------
    pred_vertices, gt_vertices : (N, V, 3) float, metres, both in the SMPL model frame.

    Returns
    -------
    (N, V) float64, millimetres.
    """
    p, g = _check_pair(pred_vertices, gt_vertices)
    return np.sqrt(((p - g) ** 2).sum(axis=-1)) * M_TO_MM


def v2v(pred_vertices: np.ndarray, gt_vertices: np.ndarray) -> np.ndarray:
    """V2V / PVE of each sample: mean vertex error, no alignment; (N,) float64, millimetres."""
    return v2v_per_vertex(pred_vertices, gt_vertices).mean(axis=-1)


def joints14_from_vertices(vertices: np.ndarray, j_regressor_h36m: np.ndarray) -> np.ndarray:
    """The 14 evaluation joints of meshes, relative to the H36M pelvis.

    ``J_regressor_h36m @ vertices`` gives 17 H36M joints; joint 0 is the pelvis; the 14 LSP joints
    are ``H36M_TO_J14`` (rankle, rknee, rhip, lhip, lknee, lankle, rwrist, relbow, rshoulder,
    lshoulder, lelbow, lwrist, neck, headtop) minus the pelvis.

    Parameters
    ----------
    vertices : (N, 6890, 3) or (6890, 3) float, metres.
    j_regressor_h36m : (17, 6890) float.

    Returns
    -------
    (N, 14, 3) (or (14, 3)) float64, metres, pelvis at the origin.
    """
    verts, single = _as_batch(vertices, "vertices")
    reg = np.asarray(j_regressor_h36m, dtype=np.float64)
    if reg.ndim != 2 or reg.shape[1] != verts.shape[1]:
        raise ValueError(
            f"J_regressor_h36m of shape {reg.shape} does not fit meshes of "
            f"{verts.shape[1]} vertices"
        )
    joints = np.matmul(reg, verts)  # (N, 17, 3)
    pelvis = joints[:, H36M_PELVIS : H36M_PELVIS + 1]
    out = joints[:, list(H36M_TO_J14)] - pelvis
    return out[0] if single else out
