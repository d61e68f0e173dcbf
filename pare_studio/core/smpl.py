"""The SMPL body model as PARE uses it: smplx's rotation-matrix layer plus PARE's 49 joints.

``SmplBody`` wraps ``smplx.SMPLLayer`` built from arrays we loaded ourselves
(:mod:`pare_studio.core.smpl_io`; smplx never unpickles a file), adds the 9
``J_regressor_extra`` joints to smplx's 45 (24 kinematic + 21 vertex joints) and picks the
49 PARE joints with :data:`~pare_studio.core.constants.JOINT_MAP` (spec §3.2-3.3).
No translation is applied: the mesh is in the SMPL model frame.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from pare_studio.core.constants import (
    JOINT_MAP,
    SMPL_NUM_BETAS,
    SMPL_NUM_JOINTS,
    SMPL_NUM_VERTICES,
    SMPL_VERTEX_IDS,
)
from pare_studio.core.geometry import axis_angle_to_rotmat
from pare_studio.core.smpl_io import (
    SmplFiles,
    load_j_regressor_extra,
    load_j_regressor_h36m,
    load_smpl_model,
    validate_smpl_arrays,
)
from pare_studio.errors import SmplModelError


class SmplBody(nn.Module):
    """SMPL (10 betas, rotation-matrix pose) with PARE's 49 joints.

    Parameters
    ----------
    model_arrays : the SMPL model arrays (``load_smpl_model`` output).
    j_regressor_extra : (9, 6890) regressor of the extra joints.
    j_regressor_h36m : optional (17, 6890) H36M regressor (evaluation), stored as buffer
        ``J_regressor_h36m`` and used by :meth:`h36m_joints`.
    source : description of where the arrays came from, for messages.

    Buffers are float32; move the module with ``.to(device)``.
    """

    def __init__(
        self,
        model_arrays: Mapping[str, np.ndarray],
        j_regressor_extra: np.ndarray,
        j_regressor_h36m: np.ndarray | None = None,
        source: str = "SMPL arrays",
    ) -> None:
        super().__init__()
        from smplx import SMPLLayer
        from smplx.utils import Struct

        validate_smpl_arrays(model_arrays, source)
        struct = Struct(**{k: np.asarray(v) for k, v in model_arrays.items()})
        # smplx prints a warning to stdout for 10-component shape spaces; keep stdout clean
        # (the CLI's stdout is for results).
        with contextlib.redirect_stdout(io.StringIO()):
            self.layer = SMPLLayer(
                model_path="",
                data_struct=struct,
                num_betas=SMPL_NUM_BETAS,
                vertex_ids=SMPL_VERTEX_IDS,
                dtype=torch.float32,
            )
        extra = np.asarray(j_regressor_extra)
        if extra.shape != (9, SMPL_NUM_VERTICES):
            raise SmplModelError(
                f"J_regressor_extra has shape {extra.shape}, expected (9, {SMPL_NUM_VERTICES})"
            )
        self.register_buffer("J_regressor_extra", torch.tensor(extra, dtype=torch.float32))
        self.register_buffer(
            "joint_map", torch.tensor(JOINT_MAP, dtype=torch.long), persistent=False
        )
        if j_regressor_h36m is not None:
            h36m = np.asarray(j_regressor_h36m)
            if h36m.shape != (17, SMPL_NUM_VERTICES):
                raise SmplModelError(
                    f"J_regressor_h36m has shape {h36m.shape}, expected (17, {SMPL_NUM_VERTICES})"
                )
            self.register_buffer("J_regressor_h36m", torch.tensor(h36m, dtype=torch.float32))
        else:
            self.register_buffer("J_regressor_h36m", None)
        self._faces = np.asarray(model_arrays["f"]).astype(np.int64)
        self.eval()

    @classmethod
    def from_files(cls, files: SmplFiles, with_h36m: bool = False) -> SmplBody:
        """Build from a resolved SMPL folder (``with_h36m`` also loads J_regressor_h36m.npy)."""
        arrays = load_smpl_model(files.model)
        extra = load_j_regressor_extra(files.j_regressor_extra)
        h36m = load_j_regressor_h36m(files.j_regressor_h36m) if with_h36m else None
        return cls(arrays, extra, h36m, source=str(files.model))

    @property
    def faces(self) -> np.ndarray:
        """(13776, 3) int64 triangle vertex ids."""
        return self._faces

    @property
    def device(self) -> torch.device:
        return self.J_regressor_extra.device

    def forward(
        self, rotmat: torch.Tensor, betas: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Posed mesh and PARE joints.

        Parameters
        ----------
        rotmat : (N, 24, 3, 3) float32 rotation matrices, index 0 = global orientation.
        betas : (N, 10) float32 shape coefficients.

        Returns
        -------
        vertices : (N, 6890, 3) float32, metres, SMPL model frame (no translation).
        joints49 : (N, 49, 3) float32, metres (order :data:`JOINT_NAMES`).
        """
        vertices, joints54 = self.forward_full(rotmat, betas)
        return vertices, joints54[:, self.joint_map]

    def forward_full(
        self, rotmat: torch.Tensor, betas: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`forward` but returns all 54 joints (24 SMPL, 21 vertex, 9 extra)."""
        if rotmat.ndim != 4 or tuple(rotmat.shape[1:]) != (SMPL_NUM_JOINTS, 3, 3):
            raise ValueError(f"SmplBody: rotmat must be (N, 24, 3, 3), got {tuple(rotmat.shape)}")
        if betas.ndim != 2 or betas.shape[1] != SMPL_NUM_BETAS or betas.shape[0] != rotmat.shape[0]:
            raise ValueError(
                f"SmplBody: betas must be ({rotmat.shape[0]}, {SMPL_NUM_BETAS}), "
                f"got {tuple(betas.shape)}"
            )
        out = self.layer(
            betas=betas,
            body_pose=rotmat[:, 1:],
            global_orient=rotmat[:, :1],
            pose2rot=False,
        )
        vertices = out.vertices
        extra = torch.einsum("bik,ji->bjk", vertices, self.J_regressor_extra)
        return vertices, torch.cat((out.joints, extra), dim=1)

    def forward_axis_angle(
        self, pose: torch.Tensor, betas: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` for axis-angle poses (ground truth of evaluation datasets).

        Parameters
        ----------
        pose : (N, 72) float32 axis-angle, radians (first 3 = global orientation).
        betas : (N, 10) float32.
        """
        if pose.ndim != 2 or pose.shape[1] != 3 * SMPL_NUM_JOINTS:
            raise ValueError(f"SmplBody: axis-angle pose must be (N, 72), got {tuple(pose.shape)}")
        rotmat = axis_angle_to_rotmat(pose)  # (N, 24, 3, 3)
        return self.forward(rotmat, betas)

    def h36m_joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """(N, 17, 3) Human3.6M joints regressed from (N, 6890, 3) vertices."""
        if self.J_regressor_h36m is None:
            raise SmplModelError(
                "this SMPL body was built without J_regressor_h36m.npy "
                "(use SmplBody.from_files(files, with_h36m=True))"
            )
        return torch.einsum("bik,ji->bjk", vertices, self.J_regressor_h36m)
