"""Mesh renderer: the reference's weak-perspective camera lands meshes where smpl_joints2d says."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from pare_studio.errors import RenderError
from pare_studio.render.mesh_renderer import MeshRenderer, project_weak_perspective, track_color
from tests.render.conftest import BOX_FACES, box_verts

pytestmark = pytest.mark.gl

W, H = 320, 240


# -- the spec's formulas (§5.5), written out independently of the package ------------------------


def spec_orig_cam(pred_cam: np.ndarray, bbox: np.ndarray, width: int, height: int) -> np.ndarray:
    """convert_crop_cam_to_orig_img: (s, tx, ty) + bbox (cx, cy, h, h) -> (sx, sy, tx', ty')."""
    s, tx, ty = pred_cam
    cx, cy, h = bbox[0], bbox[1], bbox[2]
    sx, sy = s * h / width, s * h / height
    return np.array(
        [
            sx,
            sy,
            (cx - width / 2) / (width / 2) / sx + tx,
            (cy - height / 2) / (height / 2) / sy + ty,
        ]
    )


def spec_smpl_joints2d(joints: np.ndarray, pred_cam: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """PARE's perspective projection into the crop (f=5000, 224 px), then to original pixels."""
    s, tx, ty = pred_cam
    cam_t = np.array([tx, ty, 2 * 5000 / (224 * s + 1e-9)])
    p = joints + cam_t
    uv = 5000 * p[:, :2] / p[:, 2:3] / 112.0  # normalised crop coordinates
    h = bbox[2]
    u_px = 0.5 * 224 * (uv + 1) * h / 224
    return np.stack([bbox[0] - h / 2 + u_px[:, 0], bbox[1] - h / 2 + u_px[:, 1]], axis=1)


PRED_CAM = np.array([0.9, 0.05, 0.2])
BBOX = np.array([100.0, 90.0, 150.0, 150.0])  # cx, cy, w, h: left of centre, upper half


def test_projection_matches_smpl_joints2d_formula() -> None:
    rng = np.random.default_rng(0)
    joints = rng.uniform(-0.8, 0.8, size=(49, 3))
    cam = spec_orig_cam(PRED_CAM, BBOX, W, H)
    flat = joints * np.array([1.0, 1.0, 0.0])  # at depth 0 weak and full perspective agree exactly
    np.testing.assert_allclose(
        project_weak_perspective(flat, cam, W, H),
        spec_smpl_joints2d(flat, PRED_CAM, BBOX),
        atol=1e-6,
    )
    # with depth they differ only by the perspective term z / tz (tz ~ 50 m here): < 1.5 px
    err = np.abs(
        project_weak_perspective(joints, cam, W, H) - spec_smpl_joints2d(joints, PRED_CAM, BBOX)
    )
    assert err.max() < 1.5


def rect_mask(
    x0: float, x1: float, y0: float, y1: float, width: int = W, height: int = H
) -> np.ndarray:
    """Pixels whose centres fall inside [x0, x1) x [y0, y1)."""
    cx = np.arange(width) + 0.5
    cy = np.arange(height) + 0.5
    return ((cy >= y0) & (cy < y1))[:, None] & ((cx >= x0) & (cx < x1))[None, :]


@pytest.fixture(scope="module")
def box_renderer() -> MeshRenderer:
    r = MeshRenderer(W, H, BOX_FACES)
    yield r
    r.close()


@pytest.fixture(scope="module")
def smpl_renderer(smpl_mesh: tuple[np.ndarray, np.ndarray]) -> MeshRenderer:
    r = MeshRenderer(W, H, smpl_mesh[1])
    yield r
    r.close()


def test_box_lands_on_its_projected_footprint(box_renderer: MeshRenderer) -> None:
    cam = spec_orig_cam(PRED_CAM, BBOX, W, H)
    center, half = (0.13, -0.21, 0.0), (0.3, 0.2, 0.1)
    rgba = box_renderer.render([box_verts(center, half)], [cam], [(1.0, 0.2, 0.2)])
    assert rgba.shape == (H, W, 4) and rgba.dtype == np.uint8
    corners = np.array(
        [
            [center[0] - half[0], center[1] - half[1], 0],
            [center[0] + half[0], center[1] + half[1], 0],
        ]
    )
    (x0, y0), (x1, y1) = spec_smpl_joints2d(corners, PRED_CAM, BBOX)
    expected = rect_mask(x0, x1, y0, y1)
    got = rgba[:, :, 3] > 0
    assert expected.sum() > 500
    assert set(np.unique(rgba[:, :, 3])) <= {0, 255}
    # identical up to pixels on the rectangle's edges
    edge = cv2.dilate(expected.astype(np.uint8), np.ones((3, 3))) - cv2.erode(
        expected.astype(np.uint8), np.ones((3, 3))
    )
    assert not np.any((got != expected) & (edge == 0))
    assert (got != expected).sum() <= 0.1 * edge.sum()
    # colours are RGB: a red box is red
    r, g, b = rgba[got][:, :3].astype(int).mean(axis=0)
    assert r > g + 60 and r > b + 60 and abs(g - b) < 10


def test_smpl_mesh_covers_its_projected_triangles(
    smpl_renderer: MeshRenderer, smpl_mesh: tuple[np.ndarray, np.ndarray]
) -> None:
    verts, faces = smpl_mesh
    cam = spec_orig_cam(np.array([0.8, -0.1, 0.05]), np.array([200.0, 130.0, 180.0, 180.0]), W, H)
    got = smpl_renderer.render([verts], [cam])[:, :, 3] > 0
    px = project_weak_perspective(verts, cam, W, H) - 0.5  # to cv2's pixel-centre convention
    expected = np.zeros((H, W), np.uint8)
    for tri in np.round(px[faces] * 16).astype(np.int32):
        cv2.fillConvexPoly(expected, tri, 1, lineType=cv2.LINE_8, shift=4)
    expected = expected.astype(bool)
    assert expected.sum() > 2000
    grow = cv2.dilate(expected.astype(np.uint8), np.ones((3, 3))).astype(bool)
    shrink = cv2.erode(expected.astype(np.uint8), np.ones((3, 3))).astype(bool)
    assert not np.any(got & ~grow), "mesh pixels where no triangle projects"
    # cv2 fills every pixel a polygon touches, GL samples pixel centres: slivers may differ
    assert (shrink & ~got).sum() <= 0.005 * expected.sum(), "background where the mesh projects"
    assert (got & expected).sum() / (got | expected).sum() > 0.85
    # and the background is untouched far from the mesh
    assert not got[:, :60].any() and not got[:15].any()


def test_nearer_person_is_drawn_on_top(box_renderer: MeshRenderer) -> None:
    far = box_verts((0.0, 0.0, -0.4), (0.3, 0.3, 0.1))  # in front in depth, but smaller sy
    near = box_verts((0.1, 0.1, 0.4), (0.3, 0.3, 0.1))
    cam_small = np.array([0.5, 0.5 * W / H, 0.0, 0.0])
    cam_large = np.array([0.6, 0.6 * W / H, 0.0, 0.0])
    red, blue = (1.0, 0.1, 0.1), (0.1, 0.1, 1.0)
    a = box_renderer.render([near, far], [cam_large, cam_small], [blue, red])
    b = box_renderer.render([far, near], [cam_small, cam_large], [red, blue])
    np.testing.assert_array_equal(a, b)
    centre = a[H // 2 - 5 : H // 2 + 5, W // 2 - 5 : W // 2 + 5, :3].reshape(-1, 3).astype(int)
    assert (centre[:, 2] > centre[:, 0] + 60).all()  # the larger-sy (blue) box covers the overlap
    assert (a[:, :, 0].astype(int) > a[:, :, 2].astype(int) + 60).any()  # red shows beside it


def test_wireframe_draws_the_edges_only(
    box_renderer: MeshRenderer,
    smpl_renderer: MeshRenderer,
    smpl_mesh: tuple[np.ndarray, np.ndarray],
) -> None:
    verts = box_verts((0.0, 0.0, 0.0), (0.4, 0.4, 0.1))
    cam = np.array([0.6, 0.6 * W / H, 0.0, 0.0])
    solid = box_renderer.render([verts], [cam])[:, :, 3] > 0
    wire = box_renderer.render([verts], [cam], wireframe=True)[:, :, 3] > 0
    assert wire.sum() > 200
    assert wire.sum() < 0.2 * solid.sum()  # outline and diagonals, not the faces
    assert not wire[H // 2 - 10 : H // 2 - 3, W // 2 + 3 : W // 2 + 10].any()  # a face's inside
    assert not np.any(wire & ~cv2.dilate(solid.astype(np.uint8), np.ones((3, 3))).astype(bool))
    body = smpl_renderer.render([smpl_mesh[0]], [cam], wireframe=True)
    assert not np.array_equal(body, smpl_renderer.render([smpl_mesh[0]], [cam]))


def test_sideview_doubles_the_width_and_turns_the_mesh(box_renderer: MeshRenderer) -> None:
    half = (0.45, 0.3, 0.05)  # wide in x, thin in z: narrow when seen from the side
    verts = box_verts((0.0, 0.0, 0.0), half)
    cam = np.array([0.5, 0.5 * W / H, 0.2, -0.1])
    front = box_renderer.render([verts], [cam])
    both = box_renderer.render([verts], [cam], sideview=True)
    assert both.shape == (H, 2 * W, 4)
    np.testing.assert_array_equal(both[:, :W], front)
    side = both[:, W:, 3] > 0
    cols = np.flatnonzero(side.any(axis=0))
    rows = np.flatnonzero(side.any(axis=1))
    # after 270° about Y the box's z extent is across the image: width sx * 2 * 0.05 * W/2
    sx, sy = cam[0], cam[1]
    assert len(cols) == pytest.approx(sx * 2 * half[2] * W / 2, abs=1.5)
    assert len(rows) == pytest.approx(sy * 2 * half[1] * H / 2, abs=1.5)
    assert cols.mean() + 0.5 == pytest.approx((sx * (0 + cam[2]) + 1) * W / 2, abs=1.0)


def test_overlay_composites_over_the_frame(box_renderer: MeshRenderer) -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    verts = box_verts((0.0, 0.0, 0.0), (0.3, 0.3, 0.1))
    cam = np.array([0.5, 0.5 * W / H, 0.0, 0.0])
    mask = box_renderer.render([verts], [cam])[:, :, 3] > 0
    out = box_renderer.overlay(frame, [verts], [cam])
    assert out.shape == frame.shape
    np.testing.assert_array_equal(out[~mask], frame[~mask])
    assert (out[mask] != frame[mask]).any(axis=1).mean() > 0.95
    side = box_renderer.overlay(frame, [verts], [cam], sideview=True)
    assert side.shape == (H, 2 * W, 3)
    np.testing.assert_array_equal(side[:, :W], out)
    assert (
        side[:, W:][~(box_renderer.render([verts], [cam], sideview=True)[:, W:, 3] > 0)] == 0
    ).all()
    empty = box_renderer.overlay(frame, [], [])
    np.testing.assert_array_equal(empty, frame)


def test_renderer_can_be_used_from_another_thread(box_renderer: MeshRenderer) -> None:
    verts = box_verts((0.0, 0.0, 0.0), (0.3, 0.3, 0.1))
    cam = np.array([0.5, 0.5 * W / H, 0.0, 0.0])
    here = box_renderer.render([verts], [cam])
    there: list[np.ndarray] = []
    t = threading.Thread(target=lambda: there.append(box_renderer.render([verts], [cam])))
    t.start()
    t.join()
    np.testing.assert_array_equal(there[0], here)


def test_bad_arguments_and_closed_renderer() -> None:
    r = MeshRenderer(32, 24, BOX_FACES)
    verts = box_verts((0.0, 0.0, 0.0), (0.3, 0.3, 0.1))
    with pytest.raises(ValueError, match="cameras"):
        r.render([verts], np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(8, 3\)"):
        r.render([verts[:5]], np.zeros((1, 4)))
    with pytest.raises(ValueError, match="image"):
        r.overlay(np.zeros((10, 10, 3), np.uint8), [verts], [np.ones(4)])
    r.close()
    r.close()
    with pytest.raises(RenderError, match="closed"):
        r.render([verts], [np.ones(4)])


def test_track_colors_are_fixed_and_distinct() -> None:
    colors = [track_color(i) for i in range(1, 9)]
    assert colors == [track_color(i) for i in range(1, 9)]
    assert all(0.0 <= c <= 1.0 for rgb in colors for c in rgb)
    d = np.abs(np.array(colors)[:, None] - np.array(colors)[None]).sum(axis=2)
    assert d[~np.eye(8, dtype=bool)].min() > 0.05


def test_rendering_restores_the_callers_egl_context(box_renderer: MeshRenderer) -> None:
    if box_renderer.backend != "egl":
        pytest.fail(f"expected the headless EGL backend here, got {box_renderer.backend}")
    import ctypes

    from vispy.ext import egl

    egl._lib.eglGetCurrentContext.restype = ctypes.c_void_p
    other = MeshRenderer(16, 16, BOX_FACES)  # stands in for the window's own EGL canvas
    try:
        other._ctx.make_current()
        mine = egl._lib.eglGetCurrentContext()
        assert mine
        box_renderer.render([box_verts((0, 0, 0), (0.3, 0.3, 0.1))], [np.array([0.5, 0.6, 0, 0])])
        assert egl._lib.eglGetCurrentContext() == mine
        other._ctx.release()
        assert not egl._lib.eglGetCurrentContext()
    finally:
        other.close()


def test_no_opengl_gives_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from pare_studio.render import gl_context

    def no_egl() -> None:
        raise OSError("EGL library not found")

    monkeypatch.setattr(gl_context, "EglContext", no_egl)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("PARE_STUDIO_GL_BACKEND", raising=False)
    with pytest.raises(
        RenderError, match=r"egl: OSError: EGL library not found; app: .*no display"
    ):
        MeshRenderer(32, 24, BOX_FACES)
    with pytest.raises(RenderError, match="Unknown OpenGL backend"):
        gl_context.create_gl_context("vulkan")
