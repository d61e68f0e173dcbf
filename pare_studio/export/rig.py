"""The SMPL rig in plain numpy: rest shape for given betas, joints, skinning (no torch).

The exporters need SMPL's *rig* rather than its network-facing layer: the template, the shape
and pose blend shapes, the joint regressor, the skinning weights, the kinematic tree and the
faces. :class:`SmplRig` holds them as float64 numpy arrays, read with the same chumpy-free,
code-free loader as the rest of PARE Studio (:mod:`pare_studio.core.smpl_io`).

SMPL (Loper et al. 2015), for betas β and per-joint rotations R (24, 3, 3), in the order smplx
computes it::

    v_shaped = v_template + shapedirs · β                     (6890, 3)  rest mesh of this body
    J        = J_regressor · v_shaped                          (24, 3)    rest joints
    v_posed  = v_shaped + posedirs · vec(R[1:] − I)            pose blend shapes (207 = 23·9)
    G_k      = G_parent(k) · [R_k | J_k − J_parent(k)]         world transform of joint k
    A_k      = G_k · [I | −J_k]                                relative to the rest pose
    v        = Σ_k w_k · A_k · v_posed                          linear blend skinning

:func:`skin` reproduces ``core.smpl.SmplBody`` vertices (which use smplx) to float precision,
with or without the pose blend shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pare_studio.core.constants import SMPL_NUM_BETAS, SMPL_NUM_JOINTS
from pare_studio.errors import SmplModelError


@dataclass(frozen=True)
class SmplRig:
    """SMPL's rig arrays (float64 unless stated).

    Attributes
    ----------
    v_template : (6890, 3) rest mesh of the mean body, metres, SMPL model frame (y up).
    shapedirs : (6890, 3, 10) shape blend shapes (first 10 components).
    posedirs : (6890, 3, 207) pose blend shapes.
    j_regressor : (24, 6890) dense joint regressor.
    weights : (6890, 24) skinning weights (rows sum to 1).
    parents : (24,) int64 parent joint of each joint, -1 for the root.
    faces : (13776, 3) int64 triangle vertex ids.
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    posedirs: np.ndarray
    j_regressor: np.ndarray
    weights: np.ndarray
    parents: np.ndarray
    faces: np.ndarray

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], source: str = "SMPL arrays") -> SmplRig:
        """Build from ``core.smpl_io.load_smpl_model`` output (validated again here)."""
        from pare_studio.core.smpl_io import validate_smpl_arrays

        validate_smpl_arrays(arrays, source)
        kintree = np.asarray(arrays["kintree_table"]).astype(np.int64)
        parents = kintree[0].copy()
        parents[0] = -1  # the file stores 2**32 - 1 for "no parent"
        return cls(
            v_template=np.asarray(arrays["v_template"], np.float64),
            shapedirs=np.asarray(arrays["shapedirs"], np.float64)[:, :, :SMPL_NUM_BETAS],
            posedirs=np.asarray(arrays["posedirs"], np.float64),
            j_regressor=np.asarray(arrays["J_regressor"], np.float64),
            weights=np.asarray(arrays["weights"], np.float64),
            parents=parents,
            faces=np.asarray(arrays["f"]).astype(np.int64),
        )

    @classmethod
    def from_smpl_dir(cls, smpl_dir: str | os.PathLike[str], gender: str = "neutral") -> SmplRig:
        """Read the SMPL model of ``smpl_dir`` (laid out as PARE's ``data/``; only the model file
        is needed). Raises :class:`SmplModelError` naming a missing or malformed file."""
        from pare_studio.core.smpl_io import SmplFiles, load_smpl_model

        files = SmplFiles.from_dir(smpl_dir, gender=gender, require=("model",))
        return cls.from_arrays(load_smpl_model(files.model), str(files.model))

    # ------------------------------------------------------------------------------------------
    def _betas(self, betas: np.ndarray) -> np.ndarray:
        b = np.asarray(betas, np.float64)
        if b.shape != (SMPL_NUM_BETAS,):
            raise ValueError(f"betas must be ({SMPL_NUM_BETAS},), got {b.shape}")
        if not np.isfinite(b).all():
            raise SmplModelError("betas contain NaN or inf")
        return b

    def shaped_vertices(self, betas: np.ndarray) -> np.ndarray:
        """(6890, 3) float64 rest mesh ``v_template + shapedirs · betas`` (metres)."""
        return self.v_template + self.shapedirs @ self._betas(betas)

    def rest_joints(self, betas: np.ndarray) -> np.ndarray:
        """(24, 3) float64 rest joint positions ``J_regressor · v_shaped`` (metres)."""
        return self.j_regressor @ self.shaped_vertices(betas)

    def bone_offsets(self, betas: np.ndarray) -> np.ndarray:
        """(24, 3) ``J_k − J_parent(k)`` (row 0 = J_0, the root's rest position)."""
        joints = self.rest_joints(betas)
        offsets = joints.copy()
        offsets[1:] -= joints[self.parents[1:]]
        return offsets


def check_rotations(pose: np.ndarray) -> np.ndarray:
    """(n, 24, 3, 3) float64 copy of ``pose``, or ``ValueError`` for another shape / NaN."""
    p = np.asarray(pose, np.float64)
    if p.ndim != 4 or p.shape[1:] != (SMPL_NUM_JOINTS, 3, 3):
        raise ValueError(f"pose must be (n, 24, 3, 3) rotation matrices, got {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError("pose contains NaN or inf")
    return p


def nearest_rotations(mats: np.ndarray) -> np.ndarray:
    """Project (..., 3, 3) matrices onto the nearest rotations (SVD, det +1), float64.

    PARE's 6-D decoding gives orthonormal matrices up to float32 noise; the reference's
    element-wise smoothing does not (spec §5.7). Exports go through this so every written
    rotation is exact.
    """
    m = np.asarray(mats, np.float64)
    u, _s, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    d = np.where(d == 0, 1.0, d)
    u[..., :, -1] *= d[..., None]
    return u @ vt


def global_transforms(
    parents: np.ndarray, rest_joints: np.ndarray, pose: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics: world rotation and position of each joint.

    Parameters
    ----------
    parents : (24,) parent ids (-1 = root; parents come before children).
    rest_joints : (24, 3) or (n, 24, 3) rest joint positions, metres.
    pose : (n, 24, 3, 3) local rotations (index 0 = global orientation about J_0).

    Returns
    -------
    rot : (n, 24, 3, 3) float64 world rotations. pos : (n, 24, 3) float64 posed joint
    positions (the root stays at J_0: SMPL rotates the body about its root joint).
    """
    pose = check_rotations(pose)
    n = pose.shape[0]
    joints = np.broadcast_to(np.asarray(rest_joints, np.float64), (n, SMPL_NUM_JOINTS, 3))
    rot = np.empty_like(pose)
    pos = np.empty((n, SMPL_NUM_JOINTS, 3))
    rot[:, 0] = pose[:, 0]
    pos[:, 0] = joints[:, 0]
    for k in range(1, SMPL_NUM_JOINTS):
        p = int(parents[k])
        rot[:, k] = rot[:, p] @ pose[:, k]
        pos[:, k] = pos[:, p] + np.einsum("nij,nj->ni", rot[:, p], joints[:, k] - joints[:, p])
    return rot, pos


def posed_joints(rig: SmplRig, pose: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """(n, 24, 3) float64 posed SMPL joints for one body shape ``betas`` (10,), metres."""
    return global_transforms(rig.parents, rig.rest_joints(betas), pose)[1]


def pose_feature(pose: np.ndarray) -> np.ndarray:
    """(n, 207) SMPL pose-blend-shape coefficients ``vec(R_k − I)`` of joints 1..23 (row-major)."""
    pose = check_rotations(pose)
    return (pose[:, 1:] - np.eye(3)).reshape(pose.shape[0], -1)


def skin(
    rig: SmplRig, pose: np.ndarray, betas: np.ndarray, pose_blendshapes: bool = True
) -> np.ndarray:
    """SMPL vertices for local rotations ``pose`` (n, 24, 3, 3) and one shape ``betas`` (10,).

    Parameters
    ----------
    pose_blendshapes : add SMPL's pose-dependent corrective offsets (``posedirs``) before
        skinning, as SMPL does; False gives plain linear blend skinning of the shaped mesh
        (what a glTF without morph targets can represent).

    Returns
    -------
    (n, 6890, 3) float64, metres, SMPL model frame (no translation).
    """
    pose = check_rotations(pose)
    v_shaped = rig.shaped_vertices(betas)
    joints = rig.j_regressor @ v_shaped
    rot, pos = global_transforms(rig.parents, joints, pose)
    v = np.broadcast_to(v_shaped, (pose.shape[0], *v_shaped.shape))
    if pose_blendshapes:
        v = v + np.einsum("vck,nk->nvc", rig.posedirs, pose_feature(pose))
    # A_k x = rot_k (x − J_k) + pos_k, blended with the weights.
    trans = pos - np.einsum("nkij,kj->nki", rot, joints)  # (n, 24, 3)
    blended_rot = np.einsum("vk,nkij->nvij", rig.weights, rot)
    blended_t = np.einsum("vk,nki->nvi", rig.weights, trans)
    return np.einsum("nvij,nvj->nvi", blended_rot, v) + blended_t
