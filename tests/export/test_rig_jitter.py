"""The numpy SMPL rig against smplx, and the jitter (acceleration) metrics with smoothing."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pare_studio.export.jitter import (
    joint_acceleration,
    mean_acceleration,
    rotation_acceleration,
    track_jitter,
)
from pare_studio.export.rig import nearest_rotations, posed_joints, skin
from pare_studio.pipeline.smoothing import one_euro_rotation
from tests.export.expect import smpl_vertices


def test_rig_skinning_matches_smpl_body(rig, result, smpl_body, smpl_body_lbs) -> None:  # type: ignore[no-untyped-def]
    tr = result.tracks[1]
    betas = tr.betas[0].astype(np.float64)
    pose = tr.pose[:3]
    np.testing.assert_allclose(
        skin(rig, pose, betas), smpl_vertices(smpl_body, pose, betas), atol=2e-5
    )
    np.testing.assert_allclose(
        skin(rig, pose, betas, pose_blendshapes=False),
        smpl_vertices(smpl_body_lbs, pose, betas),
        atol=2e-5,
    )
    import torch

    with torch.inference_mode():
        _, j54 = smpl_body.forward_full(
            torch.from_numpy(pose), torch.from_numpy(tr.betas[:3] * 0 + tr.betas[0])
        )
    np.testing.assert_allclose(posed_joints(rig, pose, betas), j54[:, :24].numpy(), atol=2e-5)


def test_nearest_rotations_projects_to_exact_rotations() -> None:
    rng = np.random.default_rng(1)
    r = Rotation.random(20, random_state=2).as_matrix()
    noisy = r + rng.normal(scale=1e-3, size=r.shape)
    out = nearest_rotations(noisy)
    np.testing.assert_allclose(
        out @ np.swapaxes(out, -1, -2), np.tile(np.eye(3), (20, 1, 1)), atol=1e-12
    )
    np.testing.assert_allclose(np.linalg.det(out), 1.0, atol=1e-12)
    assert np.abs(out - r).max() < 5e-3


def test_joint_acceleration_of_known_trajectories() -> None:
    t = np.arange(8, dtype=np.float64)
    x = np.zeros((8, 2, 3))
    x[:, 0, 0] = 0.5 * 3.0 * t**2  # constant acceleration 3 m/frame²
    x[:, 1, 2] = 2.0 * t  # constant velocity
    acc = joint_acceleration(x)
    assert np.isnan(acc[[0, -1]]).all()
    np.testing.assert_allclose(acc[1:-1, 0], 3.0)
    np.testing.assert_allclose(acc[1:-1, 1], 0.0, atol=1e-12)
    np.testing.assert_allclose(joint_acceleration(x, fps=10.0)[1:-1, 0], 300.0)
    # frames next to a gap have no acceleration
    frames = np.array([0, 1, 2, 3, 6, 7, 8, 9])
    gap = joint_acceleration(x, frames)
    assert np.isnan(gap[[0, 3, 4, 7]]).all() and np.isfinite(gap[[1, 2, 5, 6]]).all()
    np.testing.assert_allclose(mean_acceleration(acc), [3.0, 0.0], atol=1e-12)


def test_rotation_acceleration_is_zero_for_constant_spin_and_sees_a_kick() -> None:
    n = 6
    spin = Rotation.from_rotvec(np.outer(np.arange(n), [0.0, 0.0, 0.2])).as_matrix()
    pose = np.tile(np.eye(3), (n, 24, 1, 1))
    pose[:, 3] = Rotation.from_euler("x", 1.0).as_matrix() @ spin  # any constant frame
    acc = rotation_acceleration(pose)
    np.testing.assert_allclose(acc[1:-1], 0.0, atol=1e-9)
    pose[3, 3] = pose[3, 3] @ Rotation.from_rotvec([0.05, 0, 0]).as_matrix()
    kicked = rotation_acceleration(pose)
    assert kicked[3, 3] == pytest.approx(0.1, rel=1e-2)  # +0.05 then -0.05 rad/frame
    assert np.nanmax(np.delete(kicked, 3, axis=1)) < 1e-9


def test_smoothing_reduces_jitter_and_keeps_rotations_orthonormal(rig, result) -> None:  # type: ignore[no-untyped-def]
    """Done-when: smoothing reduces the mean joint acceleration of a jittered synthetic
    sequence and keeps rotations orthonormal."""
    tr = result.tracks[1]
    n = 40
    base = Rotation.from_matrix(
        np.repeat(tr.pose[:1].astype(np.float64), n, axis=0).reshape(-1, 3, 3)
    )
    drift = Rotation.from_rotvec(np.repeat(np.linspace(0, 0.4, n), 24)[:, None] * [0.0, 1.0, 0.0])
    rng = np.random.default_rng(5)
    noise = Rotation.from_rotvec(rng.normal(scale=0.04, size=(n * 24, 3)))
    jittered = (base * drift * noise).as_matrix().reshape(n, 24, 3, 3).astype(np.float32)
    smoothed = one_euro_rotation(jittered, min_cutoff=0.05, beta=0.5)

    gram = smoothed.astype(np.float64) @ np.swapaxes(smoothed, -1, -2).astype(np.float64)
    np.testing.assert_allclose(gram, np.tile(np.eye(3), (n, 24, 1, 1)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(smoothed.astype(np.float64)), 1.0, atol=1e-5)

    betas = tr.betas[0].astype(np.float64)
    before = mean_acceleration(joint_acceleration(posed_joints(rig, jittered, betas), fps=25.0))
    after = mean_acceleration(joint_acceleration(posed_joints(rig, smoothed, betas), fps=25.0))
    assert np.nanmean(after) < 0.5 * np.nanmean(before)
    assert np.all(after[1:] < before[1:])  # every joint but the fixed root
    rot_before = mean_acceleration(rotation_acceleration(jittered))
    rot_after = mean_acceleration(rotation_acceleration(smoothed))
    assert np.all(rot_after < 0.5 * rot_before)


def test_track_jitter_reports_per_joint_curves(result) -> None:  # type: ignore[no-untyped-def]
    tr = result.tracks[2]  # a gap at 7-8
    j = track_jitter(tr, fps=25.0)
    assert j["joints"].shape == (len(tr), 49) and j["rotations"].shape == (len(tr), 24)
    assert j["mean_joints"].shape == (49,) and j["mean_rotations"].shape == (24,)
    defined = np.isfinite(j["joints"][:, 0])
    assert defined.tolist() == [False, True, True, False, False, True, True, False]
