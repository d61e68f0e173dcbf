"""Rotations, PARE's camera and the crop <-> image conversions, on hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pare_studio.core.geometry import (
    axis_angle_to_rotmat,
    crop_cam_to_orig_cam,
    crop_to_orig_coords,
    orig_to_crop_coords,
    perspective_projection,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    weak_cam_to_translation,
)


def _assert_rotations(r: np.ndarray, atol: float) -> None:
    eye = np.broadcast_to(np.eye(3), r.shape)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), eye, atol=atol)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=atol)


def test_rot6d_is_read_row_major() -> None:
    # a1 = (x0, x2, x4) = (0, 0, 1), a2 = (x1, x3, x5) = (1, 0, 0) -> b3 = a1 x a2 = (0, 1, 0)
    r = rot6d_to_rotmat(np.array([0.0, 1.0, 0.0, 0.0, 1.0, 0.0]))
    np.testing.assert_allclose(r, [[0, 1, 0], [0, 0, 1], [1, 0, 0]], atol=1e-12)
    ident = rot6d_to_rotmat(torch.tensor([[2.0, 0.0, 0.0, 3.0, 0.0, 0.0]]))
    assert isinstance(ident, torch.Tensor) and ident.shape == (1, 3, 3)
    np.testing.assert_allclose(ident.numpy()[0], np.eye(3), atol=1e-7)


def test_rot6d_gram_schmidt_orthonormal_det_plus_one() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 144)).astype(np.float32)
    r = rot6d_to_rotmat(x)
    assert isinstance(r, np.ndarray) and r.shape == (5, 24, 3, 3) and r.dtype == np.float32
    _assert_rotations(r.astype(np.float64), atol=2e-6)
    # column 0 is the normalised first column (x0, x2, x4)
    a1 = x.reshape(5, 24, 3, 2)[..., 0]
    np.testing.assert_allclose(
        r[..., :, 0], a1 / np.linalg.norm(a1, axis=-1, keepdims=True), atol=1e-6
    )
    with pytest.raises(ValueError, match="multiple of 6"):
        rot6d_to_rotmat(np.zeros((2, 7)))


def test_axis_angle_known_rotation() -> None:
    r = axis_angle_to_rotmat(np.array([0.0, 0.0, math.pi / 2]))
    np.testing.assert_allclose(r, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-7)
    r72 = axis_angle_to_rotmat(torch.zeros(2, 72))
    assert r72.shape == (2, 24, 3, 3)
    np.testing.assert_allclose(r72.numpy(), np.broadcast_to(np.eye(3), (2, 24, 3, 3)), atol=1e-7)


@pytest.mark.parametrize("dtype,atol", [(np.float64, 1e-9), (np.float32, 2e-5)])
def test_axis_angle_round_trip_including_near_pi(dtype: type, atol: float) -> None:
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(12, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.array(
        [
            0.0,
            1e-7,
            1e-3,
            0.5,
            1.5,
            2.5,
            3.0,
            math.pi - 1e-3,
            math.pi - 1e-5,
            math.pi - 1e-7,
            math.pi,
            math.pi,
        ]
    )
    aa = (axes * angles[:, None]).astype(dtype)
    r = axis_angle_to_rotmat(aa)
    back = rotmat_to_axis_angle(r)
    assert back.dtype == dtype and back.shape == (12, 3)
    # same rotation (at exactly pi the sign of the axis is arbitrary)
    np.testing.assert_allclose(axis_angle_to_rotmat(back), r, atol=atol * 10)
    ang_back = np.linalg.norm(back.astype(np.float64), axis=1)
    assert (ang_back <= math.pi + 1e-6).all()
    np.testing.assert_allclose(ang_back, angles, atol=max(atol * 100, 1e-6))
    # away from pi the vector itself comes back
    away = angles < math.pi - 1e-2
    np.testing.assert_allclose(back[away], aa[away], atol=atol * 10)


def test_rotmat_to_axis_angle_exact_pi_about_x() -> None:
    r = np.diag([1.0, -1.0, -1.0])
    aa = rotmat_to_axis_angle(r)
    np.testing.assert_allclose(np.abs(aa), [math.pi, 0, 0], atol=1e-12)


def test_weak_cam_to_translation_and_projection_hand_numbers() -> None:
    cam = np.array([[0.5, 0.1, -0.2]], dtype=np.float32)
    t = weak_cam_to_translation(cam)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, [[0.1, -0.2, 10000.0 / (112.0 + 1e-9)]], rtol=1e-6)
    tt = weak_cam_to_translation(
        torch.tensor(cam, dtype=torch.float64), focal_length=1000.0, img_res=100
    )
    np.testing.assert_allclose(tt.numpy(), [[0.1, -0.2, 2000.0 / 50.0]], rtol=1e-6)

    pts = torch.tensor([[[0.1, 0.2, 0.0], [0.0, -0.5, 10.0]]], dtype=torch.float64)
    trans = torch.tensor([[0.0, 0.0, 10.0]], dtype=torch.float64)
    uv = perspective_projection(pts, trans)
    expected = [[[5000 * 0.1 / 10 / 112, 5000 * 0.2 / 10 / 112], [0.0, 5000 * -0.5 / 20 / 112]]]
    np.testing.assert_allclose(uv.numpy(), expected, rtol=1e-12)
    px = perspective_projection(pts, trans, img_res=None)
    np.testing.assert_allclose(px.numpy(), np.array(expected) * 112, rtol=1e-12)
    rot = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    uvr = perspective_projection(pts[:, :1], trans, rotation=rot)  # (0.1, 0.2) -> (-0.2, 0.1)
    np.testing.assert_allclose(
        uvr.numpy(), [[[-5000 * 0.2 / 10 / 112, 5000 * 0.1 / 10 / 112]]], rtol=1e-12
    )


def test_crop_cam_to_orig_cam_hand_numbers() -> None:
    cam = np.array([[0.8, 0.1, -0.05]], dtype=np.float32)
    boxes = np.array([[400.0, 200.0, 100.0, 100.0]])
    orig = crop_cam_to_orig_cam(cam, boxes, 640, 480)
    assert orig.dtype == np.float64 and orig.shape == (1, 4)
    s = np.float64(np.float32(0.8))
    sx, sy = s * 100 / 640, s * 100 / 480
    tx = 80 / 320 / sx + np.float64(np.float32(0.1))
    ty = -40 / 240 / sy + np.float64(np.float32(-0.05))
    np.testing.assert_allclose(orig, [[sx, sy, tx, ty]], rtol=1e-12)
    np.testing.assert_allclose(orig, [[0.125, 1 / 6, 2.1, -1.05]], atol=1e-6)
    with pytest.raises(ValueError, match="bboxes"):
        crop_cam_to_orig_cam(cam, boxes[:, :3], 640, 480)


def test_crop_to_orig_coords_hand_numbers_and_inverse() -> None:
    boxes = np.array([[400.0, 200.0, 100.0, 100.0], [50.0, 60.0, 224.0, 224.0]])
    uv = np.array([[[-1, -1], [1, 1], [0, 0.5]], [[0, 0], [-1, 1], [0.5, -0.5]]], dtype=np.float32)
    px = crop_to_orig_coords(uv, boxes)
    assert px.dtype == np.float32 and px.shape == (2, 3, 2)
    np.testing.assert_allclose(
        px,
        [[[350, 150], [450, 250], [400, 225]], [[50, 60], [-62, 172], [106, 4]]],
        atol=1e-4,
    )
    np.testing.assert_allclose(orig_to_crop_coords(px, boxes), uv, atol=1e-6)


def test_orig_cam_agrees_with_joint_conversion() -> None:
    """Weak-perspective projection with orig_cam in the image == crop projection mapped back."""
    rng = np.random.default_rng(2)
    n, w, h = 6, 1280.0, 720.0
    pts = rng.uniform(-0.8, 0.8, size=(n, 49, 3))
    cam = np.stack(
        [rng.uniform(0.5, 1.2, n), rng.uniform(-0.2, 0.2, n), rng.uniform(-0.2, 0.2, n)], 1
    )
    size = rng.uniform(80, 400, n)
    boxes = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n), size, size], 1)
    crop_uv = cam[:, None, :1] * (pts[..., :2] + cam[:, None, 1:])  # normalised crop coords
    px = crop_to_orig_coords(crop_uv, boxes)
    oc = crop_cam_to_orig_cam(cam, boxes, w, h)
    img_norm = oc[:, None, :2] * (pts[..., :2] + oc[:, None, 2:])
    px_from_orig = (img_norm + 1.0) * np.array([w, h]) / 2.0
    np.testing.assert_allclose(px, px_from_orig, atol=2e-3)
