"""Error measures of the occlusion sensitivity analysis (spec §7, metrics of §6.4).

Two kinds of error per occluder position and joint, both in **millimetres** on the 14 LSP
evaluation joints (:data:`~pare_studio.core.constants.J14_NAMES`):

* **against ground truth** (the reference's analysis): MPJPE and PA-MPJPE of the occluded
  prediction vs the ground-truth mesh, joints regressed with ``J_regressor_h36m`` and
  pelvis-aligned, exactly as the evaluation (:mod:`pare_studio.analysis.metrics`). These are the
  errors themselves, not differences to the unoccluded error (as the reference).
* **against the unoccluded prediction** (needs no ground truth): the displacement of each joint
  of the occluded prediction from the same joint of the unoccluded prediction, both
  pelvis-aligned, no other alignment.

Which 14 joints the displacement uses
    With ``J_regressor_h36m`` (PARE's ``data/J_regressor_h36m.npy``): the evaluation joints, the
    same as the ground-truth mode (joint source ``"h36m_regressor"``). Without it (a SMPL folder
    made for prediction only): the LSP joints among PARE's 49 joints (the "24 GT joints"
    ``J24_TO_J14``) relative to joint 39 "Pelvis (MPII)" (joint source ``"smpl_joints49"``).
    The two agree closely but not exactly; results record which one was used.

All 49 joints
    :attr:`PredictionJoints.joints49` are PARE's 49 joints relative to joint 39 "Pelvis (MPII)";
    their displacement is the optional all-joints view.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pare_studio.analysis.metrics import (
    M_TO_MM,
    joints14_from_vertices,
    mpjpe_per_joint,
    pa_mpjpe_per_joint,
)
from pare_studio.core.constants import J14_NAMES, J24_TO_J14, NUM_JOINTS
from pare_studio.errors import InputArrayError
from pare_studio.results import PareOutput

#: Error kinds of the analysis, in the order files and figures list them.
ERROR_KINDS: tuple[str, ...] = ("mpjpe", "pampjpe", "displacement")
#: Error kinds that need ground truth.
GT_ERROR_KINDS: tuple[str, ...] = ("mpjpe", "pampjpe")

#: Joint source names (see the module docstring).
JOINTS_H36M = "h36m_regressor"
JOINTS_SMPL49 = "smpl_joints49"

#: Index of "Pelvis (MPII)" among PARE's 49 joints (the root of the 49-joint view).
PELVIS_49 = 39
#: First of the "24 GT joints" among the 49.
_GT24_START = 25


def lsp14_from_joints49(joints49: np.ndarray) -> np.ndarray:
    """The 14 LSP joints of PARE's 49 joints, relative to "Pelvis (MPII)".

    Parameters
    ----------
    joints49 : (N, 49, 3) float, metres.

    Returns
    -------
    (N, 14, 3) float64, metres.
    """
    j = np.asarray(joints49, dtype=np.float64)
    idx = [_GT24_START + i for i in J24_TO_J14]
    return j[:, idx] - j[:, PELVIS_49 : PELVIS_49 + 1]


def joints49_pelvis_aligned(joints49: np.ndarray) -> np.ndarray:
    """PARE's 49 joints relative to "Pelvis (MPII)": (N, 49, 3) float, metres -> float64."""
    j = np.asarray(joints49, dtype=np.float64)
    return j - j[:, PELVIS_49 : PELVIS_49 + 1]


def displacement_mm(joints: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Euclidean distance of each joint from the reference joint, millimetres.

    Parameters
    ----------
    joints : (N, J, 3) float, metres.
    reference : (J, 3) or (N, J, 3) float, metres (broadcast over N).

    Returns
    -------
    (N, J) float64, millimetres.
    """
    d = np.asarray(joints, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    return np.sqrt((d**2).sum(axis=-1)) * M_TO_MM


def check_regressor(j_regressor_h36m: np.ndarray | None) -> np.ndarray | None:
    """``J_regressor_h36m`` as float64 (17, 6890), or None; :class:`InputArrayError` otherwise."""
    if j_regressor_h36m is None:
        return None
    reg = np.asarray(j_regressor_h36m, dtype=np.float64)
    if reg.ndim != 2 or reg.shape[0] != 17:
        raise InputArrayError(f"J_regressor_h36m must be (17, 6890), got shape {reg.shape}")
    return reg


@dataclass(frozen=True)
class PredictionJoints:
    """The joints of N predictions that the analysis compares.

    Attributes
    ----------
    joints14 : (N, 14, 3) float64, metres, pelvis at the origin (see ``source``).
    joints49 : (N, 49, 3) float64, metres, relative to "Pelvis (MPII)".
    source : :data:`JOINTS_H36M` or :data:`JOINTS_SMPL49` (how ``joints14`` was made).
    """

    joints14: np.ndarray
    joints49: np.ndarray
    source: str

    @classmethod
    def of(cls, output: PareOutput, j_regressor_h36m: np.ndarray | None) -> PredictionJoints:
        """Joints of ``output`` (N crops); the 14 from the regressor when it is given."""
        reg = check_regressor(j_regressor_h36m)
        if reg is not None:
            j14 = joints14_from_vertices(output.smpl_vertices, reg)
            source = JOINTS_H36M
        else:
            j14 = lsp14_from_joints49(output.smpl_joints3d)
            source = JOINTS_SMPL49
        return cls(j14, joints49_pelvis_aligned(output.smpl_joints3d), source)


@dataclass(frozen=True)
class GroundTruth:
    """Ground truth of one crop for the reference's error mode.

    Attributes
    ----------
    joints14 : (14, 3) float64, metres, the 14 evaluation joints of the ground-truth mesh relative
        to the H36M pelvis.
    j_regressor_h36m : (17, 6890) float64, the regressor that made them (and makes the
        prediction's joints).
    """

    joints14: np.ndarray
    j_regressor_h36m: np.ndarray

    def __post_init__(self) -> None:
        j = np.asarray(self.joints14, dtype=np.float64)
        if j.shape != (len(J14_NAMES), 3) or not np.isfinite(j).all():
            raise InputArrayError(f"ground-truth joints must be finite (14, 3), got {j.shape}")
        object.__setattr__(self, "joints14", j)
        object.__setattr__(self, "j_regressor_h36m", check_regressor(self.j_regressor_h36m))

    @classmethod
    def from_vertices(cls, vertices: np.ndarray, j_regressor_h36m: np.ndarray) -> GroundTruth:
        """From a ground-truth mesh (6890, 3) (or (1, 6890, 3)), metres, SMPL model frame."""
        reg = check_regressor(j_regressor_h36m)
        if reg is None:
            raise InputArrayError("ground truth needs J_regressor_h36m")
        v = np.asarray(vertices, dtype=np.float64).reshape(-1, reg.shape[1], 3)
        if v.shape[0] != 1:
            raise InputArrayError(f"expected one ground-truth mesh, got {v.shape[0]}")
        return cls(joints14_from_vertices(v, reg)[0], reg)

    def errors(self, joints14: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MPJPE and PA-MPJPE per joint of N predictions' evaluation joints.

        Parameters
        ----------
        joints14 : (N, 14, 3) float, metres, pelvis-aligned (regressed with
            :attr:`j_regressor_h36m`).

        Returns
        -------
        mpjpe, pampjpe : (N, 14) float64 each, millimetres.
        """
        pred = np.asarray(joints14, dtype=np.float64)
        gt = np.broadcast_to(self.joints14, pred.shape)
        return mpjpe_per_joint(pred, gt), pa_mpjpe_per_joint(pred, gt)


#: Number of joints of each view, for shape checks and figure layout.
NUM_JOINTS14 = len(J14_NAMES)
NUM_JOINTS49 = NUM_JOINTS
