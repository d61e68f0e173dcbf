"""Temporal smoothing: the reference's element-wise One-Euro and the rotation-aware variant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from pare_studio.pipeline.smoothing import (
    one_euro_reference,
    one_euro_rotation,
    smooth_pose,
    smooth_track,
)
from pare_studio.results import TrackResult


def geodesic(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle (radians) between rotation matrices, (...)."""
    rel = np.einsum("...ji,...jk->...ik", a.astype(np.float64), b.astype(np.float64))
    return np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1))


def noisy_sequence(
    n: int = 120, noise_deg: float = 4.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A slowly turning pose (truth) and a jittered copy: (n, 24, 3, 3) each."""
    rng = np.random.default_rng(seed)
    axes = rng.standard_normal((24, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    t = np.arange(n)[:, None, None]
    base = rng.standard_normal((24, 3)) * 0.5
    rv = base[None] + axes[None] * (0.6 * np.sin(2 * np.pi * t / n))
    truth = Rotation.from_rotvec(rv.reshape(-1, 3)).as_matrix().reshape(n, 24, 3, 3)
    jitter = Rotation.from_rotvec(
        rng.standard_normal((n * 24, 3)) * np.deg2rad(noise_deg)
    ).as_matrix()
    noisy = (truth.reshape(-1, 3, 3) @ jitter).reshape(n, 24, 3, 3)
    return truth.astype(np.float32), noisy.astype(np.float32)


# ----------------------------------------------------------------------------- reference


def test_reference_one_euro_on_a_hand_computed_sequence() -> None:
    # Every element follows 0, 1, 1 with min_cutoff 0.004, beta 1, Δt 1, d_cutoff 1:
    #   α_d = 2π / (2π + 1)                          = 0.862697
    #   t=1: dx̂ = α_d·1            = 0.862697;  c = 0.866697;  α = 2πc/(2πc+1) = 0.844856 = x̂1
    #   t=2: dx̂ = α_d·(1 − x̂1) + (1 − α_d)·0.862697 = 0.252293
    #        c = 0.256293; α = 0.616953; x̂2 = α·1 + (1 − α)·x̂1 = 0.940565
    pose = np.zeros((3, 24, 3, 3), dtype=np.float32)
    pose[1:] = 1.0
    out = one_euro_reference(pose, min_cutoff=0.004, beta=1.0)
    assert out.dtype == np.float32 and out.shape == pose.shape
    np.testing.assert_allclose(out[0], 0.0)
    np.testing.assert_allclose(out[1], 0.8448559, atol=2e-6)
    np.testing.assert_allclose(out[2], 0.9405655, atol=2e-6)


def test_reference_one_euro_is_element_wise_and_keeps_constants() -> None:
    truth, noisy = noisy_sequence(20)
    out = one_euro_reference(noisy)
    np.testing.assert_array_equal(out[0], noisy[0])
    # Element-wise: filtering one element alone gives the same values.
    single = np.zeros_like(noisy)
    single[:, 5, 1, 2] = noisy[:, 5, 1, 2]
    np.testing.assert_allclose(one_euro_reference(single)[:, 5, 1, 2], out[:, 5, 1, 2], atol=1e-7)
    const = np.repeat(truth[:1], 10, axis=0)
    np.testing.assert_allclose(one_euro_reference(const), const, atol=1e-6)  # float32 rounding


def test_reference_output_is_not_orthonormal_during_motion() -> None:
    # The reference does not re-orthonormalise: documented, and the reason for the other method.
    _, noisy = noisy_sequence(60, noise_deg=10)
    out = one_euro_reference(noisy).astype(np.float64)
    err = np.abs(out @ np.swapaxes(out, -1, -2) - np.eye(3)).max()
    assert err > 1e-2


# ----------------------------------------------------------------------------- rotation-aware


def test_rotation_smoothing_keeps_exact_rotations() -> None:
    _, noisy = noisy_sequence(60, noise_deg=10)
    out = one_euro_rotation(noisy, frame_ids=np.arange(60)).astype(np.float64)
    assert out.shape == noisy.shape
    np.testing.assert_allclose(
        out @ np.swapaxes(out, -1, -2), np.broadcast_to(np.eye(3), out.shape), atol=2e-6
    )
    np.testing.assert_allclose(np.linalg.det(out), 1.0, atol=2e-6)
    np.testing.assert_allclose(out[0], noisy[0], atol=1e-6)


@pytest.mark.parametrize("method", ["rotation", "reference"])
def test_smoothing_reduces_jitter(method: str) -> None:
    truth, noisy = noisy_sequence(150, noise_deg=4.0)
    out = smooth_pose(noisy, method, min_cutoff=0.05, beta=0.5)
    err_noisy = geodesic(noisy[10:], truth[10:]).mean()
    # Frame-to-frame change of the estimate (what a viewer sees as jitter).
    jit_noisy = geodesic(noisy[1:], noisy[:-1]).mean()
    if method == "rotation":
        err_out = geodesic(out[10:], truth[10:]).mean()
        jit_out = geodesic(out[1:], out[:-1]).mean()
        assert err_out < 0.6 * err_noisy
        assert jit_out < 0.5 * jit_noisy
    else:
        delta = np.abs(np.diff(out, axis=0)).mean()
        assert delta < 0.3 * np.abs(np.diff(noisy, axis=0)).mean()


def test_rotation_smoothing_is_frame_independent() -> None:
    # Left-multiplying every pose by one rotation commutes with the filter (geodesic filter);
    # element-wise filtering has no such property.
    _, noisy = noisy_sequence(40, noise_deg=8)
    g = Rotation.from_rotvec([0.3, -1.2, 0.7]).as_matrix().astype(np.float32)
    a = g @ one_euro_rotation(noisy, 0.02, 0.7)
    b = one_euro_rotation(g @ noisy, 0.02, 0.7)
    np.testing.assert_allclose(a, b, atol=3e-5)


def test_rotation_smoothing_counts_frame_gaps() -> None:
    # A step change after a 10-frame gap is followed further than after a 1-frame gap.
    r0 = np.repeat(np.eye(3, dtype=np.float32)[None, None], 24, axis=1)
    r1 = np.repeat(
        Rotation.from_rotvec([0, 0, 0.5]).as_matrix().astype(np.float32)[None, None], 24, axis=1
    )
    pose = np.concatenate([r0, r0, r1])
    near = one_euro_rotation(pose, 0.05, 0.0, frame_ids=np.array([0, 1, 2]))
    far = one_euro_rotation(pose, 0.05, 0.0, frame_ids=np.array([0, 1, 11]))
    assert geodesic(far[2, 0], r1[0, 0]) < geodesic(near[2, 0], r1[0, 0])


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown smoothing method"):
        smooth_pose(np.zeros((2, 24, 3, 3), np.float32), "gaussian")


# ----------------------------------------------------------------------------- mesh


@pytest.fixture(scope="module")
def smpl(smpl_dir: Path):  # type: ignore[no-untyped-def]
    from pare_studio.core.smpl import SmplBody
    from pare_studio.core.smpl_io import SmplFiles

    return SmplBody.from_files(SmplFiles.from_dir(smpl_dir))


@pytest.mark.parametrize("method", ["reference", "rotation"])
def test_smooth_track_recomputes_mesh_and_keeps_camera(smpl, method: str) -> None:  # type: ignore[no-untyped-def]
    _, pose = noisy_sequence(6, noise_deg=8)
    pose[:, 1:] = np.eye(3, dtype=np.float32)  # keep the body plausible; jitter the root only
    n = len(pose)
    rng = np.random.default_rng(3)
    betas = (rng.standard_normal((n, 10)) * 0.5).astype(np.float32)
    with torch.inference_mode():
        verts, joints = smpl(torch.from_numpy(pose), torch.from_numpy(betas))
    track = TrackResult(
        track_id=1,
        pred_cam=rng.random((n, 3), dtype=np.float32),
        orig_cam=rng.random((n, 4)),
        verts=verts.numpy(),
        pose=pose,
        betas=betas,
        joints3d=joints.numpy(),
        joints2d=None,
        smpl_joints2d=rng.random((n, 49, 2), dtype=np.float32),
        bboxes=rng.random((n, 4)) * 100,
        frame_ids=np.arange(n, dtype=np.int64) + 5,
    )
    out = smooth_track(track, smpl, method, min_cutoff=0.004, beta=1.0)
    np.testing.assert_allclose(
        out.pose, smooth_pose(pose, method, 0.004, 1.0, track.frame_ids), atol=1e-6
    )
    with torch.inference_mode():
        want_v, want_j = smpl(torch.from_numpy(out.pose), torch.from_numpy(betas))
    np.testing.assert_allclose(out.verts, want_v.numpy(), atol=1e-6)
    np.testing.assert_allclose(out.joints3d, want_j.numpy(), atol=1e-6)
    assert out.verts.dtype == np.float32 and out.joints3d.dtype == np.float32
    assert not np.allclose(out.verts[1:], track.verts[1:], atol=1e-4)  # the mesh did change
    for key in ("betas", "pred_cam", "orig_cam", "smpl_joints2d", "bboxes", "frame_ids"):
        np.testing.assert_array_equal(getattr(out, key), getattr(track, key))
    np.testing.assert_array_equal(track.pose, pose)  # the input track is not modified
