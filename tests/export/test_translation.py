"""Root translation from the weak-perspective camera."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from pare_studio.export.translation import (
    CameraIntrinsics,
    camera_intrinsics,
    estimate_image_size,
    focal_from_fov,
    root_translation,
)


def test_image_size_is_recovered_from_a_bare_pkl(result) -> None:  # type: ignore[no-untyped-def]
    for tr in result.tracks.values():
        w, h = estimate_image_size(tr)
        assert w == pytest.approx(640, rel=1e-6) and h == pytest.approx(360, rel=1e-6)
    bare = dataclasses.replace(result, width=0, height=0)
    cam = camera_intrinsics(bare)
    assert (cam.width, cam.height) == pytest.approx((640, 360), rel=1e-6)
    assert cam.focal_px == pytest.approx(320 / math.tan(math.radians(30)))
    assert camera_intrinsics(bare, image_size=(100, 50), focal_length=77).focal_px == 77


def test_perspective_camera_reproduces_the_weak_perspective_projection(result) -> None:  # type: ignore[no-untyped-def]
    """Points at the body's depth project to the same pixels under both cameras."""
    tr = result.tracks[1]
    cam = CameraIntrinsics(640, 360, focal_from_fov(640, 45.0))
    trans = root_translation(tr, cam).trans
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-0.8, 0.8, size=(50, 2)), np.zeros((50, 1))], axis=1)
    for row in range(len(tr)):
        sx, sy, tx, ty = tr.orig_cam[row]
        weak_u = (1 + sx * (pts[:, 0] + tx)) * 320
        weak_v = (1 + sy * (pts[:, 1] + ty)) * 180
        p = pts + trans[row]
        np.testing.assert_allclose(cam.focal_px * p[:, 0] / p[:, 2] + 320, weak_u, atol=1e-6)
        np.testing.assert_allclose(cam.focal_px * p[:, 1] / p[:, 2] + 180, weak_v, atol=1e-6)
    # and the whole mesh lands close by: the error is first order in depth / distance
    p = tr.verts[0].astype(np.float64) + trans[0]
    u = cam.focal_px * p[:, 0] / p[:, 2] + 320
    sx, _, tx, _ = tr.orig_cam[0]
    err = np.abs(u - (1 + sx * (tr.verts[0, :, 0] + tx)) * 320)
    depth = np.abs(tr.verts[0, :, 2]) / trans[0, 2]
    assert err.max() < 0.05 * tr.bboxes[0, 2]
    assert np.all(err <= 1.5 * depth * np.abs(u - 320) + 1e-6)


def test_frames_without_a_usable_camera_are_interpolated(result) -> None:  # type: ignore[no-untyped-def]
    tr = result.tracks[2]  # frames 3..6, 9..12
    cam = CameraIntrinsics(640, 360, 500.0)
    good = root_translation(tr, cam)
    assert good.estimated and good.valid.all()
    bad = tr.orig_cam.copy()
    bad[[1, 4], 0] = [-0.2, np.nan]  # frames 4 and 9
    got = root_translation(dataclasses.replace(tr, orig_cam=bad), cam)
    assert got.estimated and got.valid.tolist() == [
        True,
        False,
        True,
        True,
        False,
        True,
        True,
        True,
    ]
    f = tr.frame_ids
    for row in (1, 4):
        for c in range(3):
            ok = got.valid
            assert got.trans[row, c] == pytest.approx(np.interp(f[row], f[ok], good.trans[ok, c]))
    none = tr.orig_cam.copy()
    none[:, 0] = 0.0
    empty = root_translation(dataclasses.replace(tr, orig_cam=none), cam)
    assert not empty.estimated and np.all(empty.trans == 0)
    assert not root_translation(tr, None).estimated
