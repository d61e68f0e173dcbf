"""SMPL body + PARE joints + projection against the reference outputs (no network involved)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pare_studio.core.constants import JOINT_MAP, JOINT_NAMES, SMPL_VERTEX_JOINT_IDS
from pare_studio.core.geometry import (
    perspective_projection,
    rotmat_to_axis_angle,
    weak_cam_to_translation,
)
from pare_studio.core.smpl import SmplBody
from pare_studio.core.smpl_io import SmplFiles
from pare_studio.errors import SmplModelError
from tests.conftest import assert_parity


@pytest.fixture(scope="module")
def body(smpl_dir: Path) -> SmplBody:
    return SmplBody.from_files(SmplFiles.from_dir(smpl_dir), with_h36m=True)


def test_constants_consistent() -> None:
    assert len(JOINT_MAP) == len(JOINT_NAMES) == 49
    assert max(JOINT_MAP) == 53 and min(JOINT_MAP) == 0
    assert len(SMPL_VERTEX_JOINT_IDS) == 21


def test_smpl_parity_with_reference(body: SmplBody, parity_expected: dict[str, np.ndarray]) -> None:
    e = parity_expected
    with torch.inference_mode():
        verts, joints = body(torch.from_numpy(e["pred_pose"]), torch.from_numpy(e["pred_shape"]))
        cam_t = weak_cam_to_translation(torch.from_numpy(e["pred_cam"]))
        joints2d = perspective_projection(joints, cam_t)
    assert verts.dtype == torch.float32 and verts.shape == (4, 6890, 3)
    assert joints.shape == (4, 49, 3)
    assert_parity(verts.numpy(), e["smpl_vertices"], "smpl_vertices")
    assert_parity(joints.numpy(), e["smpl_joints3d"], "smpl_joints3d")
    assert_parity(cam_t.numpy(), e["pred_cam_t"], "pred_cam_t")
    assert_parity(joints2d.numpy(), e["smpl_joints2d"], "smpl_joints2d")
    # tighter than the bar: float32 PyTorch CPU should match to 2e-5
    for ours, key in (
        (verts, "smpl_vertices"),
        (joints, "smpl_joints3d"),
        (joints2d, "smpl_joints2d"),
    ):
        assert_parity(ours.numpy(), e[key], key, rel=2e-5)


def test_joint_map_and_vertex_joints(
    body: SmplBody, parity_expected: dict[str, np.ndarray]
) -> None:
    e = parity_expected
    with torch.inference_mode():
        verts, joints54 = body.forward_full(
            torch.from_numpy(e["pred_pose"]), torch.from_numpy(e["pred_shape"])
        )
    assert joints54.shape == (4, 54, 3)
    # joints 24..44 are the 21 vertex joints, 45..53 the J_regressor_extra joints
    np.testing.assert_array_equal(
        joints54[:, 24:45].numpy(), verts[:, list(SMPL_VERTEX_JOINT_IDS)].numpy()
    )
    # "OP Nose" (0) is vertex 332 and "Right Hip" (27) is extra joint 0
    np.testing.assert_array_equal(e["smpl_joints3d"][:, 0], verts[:, 332].numpy())
    np.testing.assert_allclose(e["smpl_joints3d"][:, 27], joints54[:, 45].numpy(), atol=1e-6)


def test_axis_angle_input_matches_rotmat(
    body: SmplBody, parity_expected: dict[str, np.ndarray]
) -> None:
    rot = torch.from_numpy(parity_expected["pred_pose"]).double()
    aa = rotmat_to_axis_angle(rot).reshape(4, 72).float()
    betas = torch.from_numpy(parity_expected["pred_shape"])
    with torch.inference_mode():
        v_aa, j_aa = body.forward_axis_angle(aa, betas)
    np.testing.assert_allclose(v_aa.numpy(), parity_expected["smpl_vertices"], atol=2e-5)
    np.testing.assert_allclose(j_aa.numpy(), parity_expected["smpl_joints3d"], atol=2e-5)


def test_faces_h36m_and_shape_errors(body: SmplBody, smpl_dir: Path) -> None:
    assert body.faces.shape == (13776, 3) and body.faces.dtype == np.int64
    verts = torch.zeros(2, 6890, 3)
    verts[:, :, 0] = 1.5
    h36m = body.h36m_joints(verts)
    assert h36m.shape == (2, 17, 3)
    np.testing.assert_allclose(
        h36m[..., 0].numpy(), 1.5, rtol=1e-5
    )  # rows of the regressor sum to 1
    with pytest.raises(ValueError, match=r"\(N, 24, 3, 3\)"):
        body(torch.zeros(2, 23, 3, 3), torch.zeros(2, 10))
    with pytest.raises(ValueError, match="betas"):
        body(torch.zeros(2, 24, 3, 3), torch.zeros(2, 11))
    plain = SmplBody.from_files(SmplFiles.from_dir(smpl_dir))
    with pytest.raises(SmplModelError, match="J_regressor_h36m"):
        plain.h36m_joints(verts)


def test_zero_pose_is_rest_mesh(body: SmplBody) -> None:
    eye = torch.eye(3).expand(1, 24, 3, 3)
    with torch.inference_mode():
        verts, _ = body(eye, torch.zeros(1, 10))
    np.testing.assert_allclose(verts[0].numpy(), body.layer.v_template.numpy(), atol=1e-6)
