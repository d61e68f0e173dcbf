"""Metrics with hand-computed answers (spec §6.4): millimetres out, metres in."""

from __future__ import annotations

import numpy as np
import pytest

from pare_studio.analysis.metrics import (
    compute_similarity_transform,
    joints14_from_vertices,
    mpjpe,
    mpjpe_per_joint,
    pa_mpjpe,
    pa_mpjpe_per_joint,
    v2v,
)
from pare_studio.core.constants import H36M_TO_J14


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)], [0.0, np.sin(a), np.cos(a)]])


@pytest.fixture
def gt14() -> np.ndarray:
    """(1, 14, 3) joints in metres: 14 points at xy-radius r_j = 0.1 * (j + 1), heights j * 0.05."""
    j = np.arange(14)
    ang = np.deg2rad(37.0 * j)
    r = 0.1 * (j + 1)
    return np.stack([r * np.cos(ang), r * np.sin(ang), 0.05 * j], axis=-1)[None]


def test_translation_gives_known_mpjpe_and_zero_pa(gt14: np.ndarray) -> None:
    pred = gt14 + np.array([0.03, 0.04, 0.0])  # |t| = 5 cm = 50 mm
    np.testing.assert_allclose(mpjpe_per_joint(pred, gt14), np.full((1, 14), 50.0), atol=1e-9)
    np.testing.assert_allclose(mpjpe(pred, gt14), [50.0], atol=1e-9)
    np.testing.assert_allclose(pa_mpjpe(pred, gt14), [0.0], atol=1e-9)


def test_similarity_transform_of_gt_gives_zero_pa_and_known_mpjpe(gt14: np.ndarray) -> None:
    # A 90 degree turn about z moves a point at xy-radius r by sqrt(2) * r (z unchanged).
    pred = gt14 @ _rot_z(90.0).T
    r_mm = 100.0 * (np.arange(14) + 1)
    np.testing.assert_allclose(mpjpe_per_joint(pred, gt14)[0], np.sqrt(2.0) * r_mm, rtol=1e-12)
    np.testing.assert_allclose(mpjpe(pred, gt14), [np.sqrt(2.0) * r_mm.mean()], rtol=1e-12)
    np.testing.assert_allclose(pa_mpjpe_per_joint(pred, gt14), np.zeros((1, 14)), atol=1e-9)
    # Scale 2 about the origin: every joint moves by its distance to the origin.
    pred2 = 2.0 * gt14
    np.testing.assert_allclose(
        mpjpe_per_joint(pred2, gt14)[0], 1000.0 * np.linalg.norm(gt14[0], axis=1), rtol=1e-12
    )
    # Full similarity: scale, rotation and shift -> PA-MPJPE 0.
    pred3 = 0.7 * gt14 @ (_rot_x(25.0) @ _rot_z(-70.0)).T + np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(pa_mpjpe(pred3, gt14), [0.0], atol=1e-8)
    assert mpjpe(pred3, gt14)[0] > 1000.0


def test_similarity_transform_recovers_the_target_and_is_batched() -> None:
    rng = np.random.default_rng(3)
    s1 = rng.normal(size=(4, 14, 3))
    rots = np.stack([_rot_z(10.0 * k) @ _rot_x(33.0 * k) for k in range(4)])
    scales = np.array([0.5, 1.0, 1.5, 3.0])
    shifts = rng.normal(size=(4, 1, 3))
    s2 = scales[:, None, None] * np.einsum("nij,nkj->nki", rots, s1) + shifts
    out = compute_similarity_transform(s1, s2)
    np.testing.assert_allclose(out, s2, atol=1e-10)
    # Single sample (J, 3) gives the same as its batch row.
    np.testing.assert_allclose(compute_similarity_transform(s1[2], s2[2]), out[2], atol=1e-12)


def test_similarity_transform_never_reflects() -> None:
    """A mirrored target cannot be reached: Z[-1,-1] = sign(det) keeps a proper rotation."""
    rng = np.random.default_rng(5)
    s1 = rng.normal(size=(14, 3))
    mirrored = s1 * np.array([-1.0, 1.0, 1.0])
    out = compute_similarity_transform(s1, mirrored)
    # out - mean = scale * R (s1 - mean): recover the linear map and check det > 0.
    a = s1 - s1.mean(axis=0)
    b = out - out.mean(axis=0)
    m, *_ = np.linalg.lstsq(a, b, rcond=None)
    assert np.linalg.det(m) > 0
    assert pa_mpjpe(s1[None], mirrored[None])[0] > 1.0  # mm; a reflection would give 0


def test_translated_mesh_gives_expected_v2v() -> None:
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(2, 6890, 3)) * 0.3
    shift = np.array([[0.003, 0.004, 0.012], [0.0, 0.0, -0.02]])  # 13 mm and 20 mm
    np.testing.assert_allclose(v2v(verts + shift[:, None], verts), [13.0, 20.0], rtol=1e-9)
    # No alignment: the same translation leaves MPJPE of pelvis-aligned joints at 0.
    reg = np.zeros((17, 6890))
    reg[np.arange(17), np.arange(17) * 100] = 1.0
    j_pred = joints14_from_vertices(verts + shift[:, None], reg)
    j_gt = joints14_from_vertices(verts, reg)
    np.testing.assert_allclose(mpjpe(j_pred, j_gt), [0.0, 0.0], atol=1e-9)


def test_joints14_are_regressed_reordered_and_pelvis_aligned() -> None:
    verts = np.zeros((1, 6890, 3))
    verts[0, :17] = np.arange(17 * 3, dtype=float).reshape(17, 3)  # vertex k = (3k, 3k+1, 3k+2)
    reg = np.zeros((17, 6890))
    reg[np.arange(17), np.arange(17)] = 1.0  # H36M joint k = vertex k
    reg[0] = 0.0
    reg[0, [0, 2]] = 0.5  # pelvis = mean of vertices 0 and 2 = (3, 4, 5)
    out = joints14_from_vertices(verts, reg)
    assert out.shape == (1, 14, 3)
    expected = np.array(
        [[3 * k - 3, 3 * k + 1 - 4, 3 * k + 2 - 5] for k in H36M_TO_J14], dtype=float
    )
    np.testing.assert_allclose(out[0], expected)
    # H36M_TO_J14 starts with the right ankle (H36M joint 6) and ends with the head top (10).
    np.testing.assert_allclose(out[0, 0], [15.0, 15.0, 15.0])
    np.testing.assert_allclose(out[0, 13], [27.0, 27.0, 27.0])
    np.testing.assert_allclose(joints14_from_vertices(verts[0], reg), out[0])


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mpjpe(np.zeros((2, 14, 3)), np.zeros((2, 13, 3)))
    with pytest.raises(ValueError, match="J_regressor_h36m"):
        joints14_from_vertices(np.zeros((1, 100, 3)), np.zeros((17, 6890)))


def test_degenerate_prediction_collapses_to_gt_centroid(gt14: np.ndarray) -> None:
    pred = np.zeros_like(gt14)
    centred = gt14 - gt14.mean(axis=1, keepdims=True)
    expected = 1000.0 * np.linalg.norm(centred, axis=-1)
    np.testing.assert_allclose(pa_mpjpe_per_joint(pred, gt14), expected, rtol=1e-12)
