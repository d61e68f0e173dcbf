"""The window's views with a synthetic result (no inference): timeline, list, frame, 3D."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt

from pare_studio.gui.placement import display_points
from pare_studio.gui.qt_frame_view import QtFrameView
from pare_studio.gui.state import ViewerState
from pare_studio.gui.track_utils import contiguous_segments
from pare_studio.gui.vispy_mesh_view import VispyMeshView
from tests.gui.synthetic import ArrayFrameSource, gradient_frames, load_template, make_video_result


@pytest.fixture
def loaded(make_main_window, smpl_dir: Path):  # noqa: ANN001, ANN201
    """A viewer-mode window showing 20 synthetic frames and a two-person synthetic result."""
    w = make_main_window(assets=None)
    frames = gradient_frames(20)
    result = make_video_result(smpl_dir)
    _, faces = load_template(smpl_dir)
    w.state.set_source(ArrayFrameSource(frames))
    w.state.set_faces(faces)
    w.state.set_result(result)
    return w, frames, result


def _box_xy(item) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    x, y = item.getData()
    return np.asarray(x), np.asarray(y)


def test_tracks_in_list_and_on_timeline(loaded) -> None:  # noqa: ANN001
    w, _, result = loaded
    assert w.track_list.track_ids() == [1, 2]
    assert w.track_list.item(1, 1).data(Qt.ItemDataRole.DisplayRole) == len(result.tracks[2])
    for tid, track in result.tracks.items():
        assert w.timeline.presence(tid) == contiguous_segments(track.frame_ids)
    assert w.timeline.presence(2) == [(3, 8), (10, 17)]
    assert w.timeline.track_rows() == {1: 0, 2: 1}


def test_scrub_updates_image_overlays_and_3d(loaded, qtbot) -> None:  # noqa: ANN001
    w, frames, result = loaded
    for f in (0, 5, 12, 8):
        w.state.set_frame(f)
        w.mesh_view.draw_now()
        assert w.frame_view.displayed_frame() == f
        np.testing.assert_array_equal(w.frame_view.image_item.image, frames[f])
        assert w.timeline.cursor_frame() == f
        for tid, track in result.tracks.items():
            row = track.index_of(f)
            shown = w.mesh_view.displayed_vertices(tid)
            ov = w.frame_view.overlay(tid)
            if row is None:
                assert shown is None
                assert ov is None or not ov.box.isVisible()
                continue
            expected = display_points(track.verts[row], track.orig_cam[row])
            np.testing.assert_allclose(shown, expected, rtol=1e-6, atol=1e-6)
            cx, cy, bw, bh = track.bboxes[row]
            x, y = _box_xy(ov.box)
            assert ov.box.isVisible()
            np.testing.assert_allclose(
                [x.min(), x.max(), y.min(), y.max()],
                [cx - bw / 2, cx + bw / 2, cy - bh / 2, cy + bh / 2],
            )
            jx, jy = ov.joints.getData()
            np.testing.assert_allclose(np.stack([jx, jy], 1), track.smpl_joints2d[row], atol=1e-4)
        # the rendered mesh overlay belongs to this frame, spans the frame, covers each person
        assert w.frame_view.rendered_overlay_frame() == f
        item = w.frame_view.rendered_overlay
        rect = item.mapRectToParent(item.boundingRect())
        assert (rect.width(), rect.height()) == (640, 360)
        rgba = item.image  # at interactive resolution right after the scrub, then refined
        k = rgba.shape[1] / 640
        assert rgba.shape[0] == round(360 * k) and rgba.shape[2] == 4
        for track, row in w.state.visible_tracks_at(f):
            cx, cy, bw, bh = track.bboxes[row] * k
            patch = rgba[
                int(cy - bh / 2) : int(cy + bh / 2), int(cx - bw / 2) : int(cx + bw / 2), 3
            ]
            assert (patch > 0).mean() > 0.05
        assert (rgba[:, : int(30 * k), 3] == 0).all()  # nobody at the left border


def test_hiding_a_track_hides_it_everywhere(loaded) -> None:  # noqa: ANN001
    w, _, result = loaded
    w.state.set_frame(5)
    w.track_list.set_checked(2, False)
    w.mesh_view.draw_now()
    assert not w.state.is_visible(2)
    assert w.mesh_view.shown_track_ids() == [1]
    assert not w.frame_view.overlay(2).box.isVisible()
    rgba = w.frame_view.rendered_overlay.image
    cx, cy, bw, bh = result.tracks[2].bboxes[result.tracks[2].index_of(5)] * (rgba.shape[1] / 640)
    inner = rgba[int(cy - bh / 4) : int(cy + bh / 4), int(cx - bw / 8) : int(cx + bw / 8), 3]
    assert (inner == 0).all()
    w.track_list.set_checked(2, True)
    w.mesh_view.draw_now()
    assert w.mesh_view.shown_track_ids() == [1, 2]


def test_selection_and_3d_subset(loaded) -> None:  # noqa: ANN001
    w, _, _ = loaded
    w.state.set_frame(5)
    w.track_list.selectRow(w.track_list.row_of(2))
    assert w.state.selected_track == 2
    w.actions_.all_tracks_3d.trigger()  # off: only the selected person in 3D
    w.mesh_view.draw_now()
    assert not w.state.display.all_tracks_3d
    assert w.mesh_view.shown_track_ids() == [2]
    assert w.frame_view.overlay(1).box.isVisible()  # the 2D view still shows everybody


def test_display_toggles(loaded) -> None:  # noqa: ANN001
    w, _, _ = loaded
    w.state.set_frame(5)
    w.actions_.wireframe.trigger()
    w.mesh_view.draw_now()
    assert w.mesh_view.wireframe_enabled() == {1: True, 2: True}
    w.actions_.show_boxes.trigger()
    w.actions_.show_joints2d.trigger()
    assert not w.frame_view.overlay(1).box.isVisible()
    assert not w.frame_view.overlay(1).joints.isVisible()
    w.actions_.show_mesh_overlay.trigger()
    w.mesh_view.draw_now()
    assert w.frame_view.rendered_overlay_frame() == -1


def test_playback_runs_at_the_video_fps(loaded, qtbot) -> None:  # noqa: ANN001
    w, _, _ = loaded
    w.state.set_frame(10)
    t0 = time.perf_counter()
    w.timeline.play()
    assert w.timeline.is_playing
    qtbot.waitUntil(lambda: w.state.frame == 19, timeout=10000)
    elapsed = time.perf_counter() - t0
    assert elapsed >= 0.8 * 9 / 25.0  # not faster than 25 fps
    qtbot.waitUntil(lambda: not w.timeline.is_playing, timeout=2000)  # stops at the end


def test_keyboard_shortcuts(loaded, qtbot) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QApplication

    w, _, _ = loaded
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)
    w.frame_view.setFocus()
    w.state.set_frame(4)
    qtbot.keyClick(w, Qt.Key.Key_Right)
    assert w.state.frame == 5
    qtbot.keyClick(w, Qt.Key.Key_Left)
    qtbot.keyClick(w, Qt.Key.Key_Left)
    assert w.state.frame == 3
    qtbot.keyClick(w, Qt.Key.Key_End)
    assert w.state.frame == 19
    qtbot.keyClick(w, Qt.Key.Key_Home)
    assert w.state.frame == 0
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert w.timeline.is_playing
    qtbot.keyClick(w, Qt.Key.Key_Space)
    assert not w.timeline.is_playing


def test_dragging_in_the_3d_view_orbits_the_camera(loaded, qtbot) -> None:  # noqa: ANN001
    w, _, _ = loaded
    w.state.set_frame(5)
    w.mesh_view.draw_now()
    view = w.mesh_view.native
    qtbot.waitUntil(
        lambda: w.mesh_view.image().shape[:2] == (view.height(), view.width()), timeout=5000
    )
    before = w.mesh_view.image().copy()
    c = view.rect().center()
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=c)
    for dx in range(10, 130, 10):
        qtbot.mouseMove(view, c + QPoint(dx, 0))
        qtbot.wait(15)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=c + QPoint(120, 0))

    def changed() -> bool:
        img = w.mesh_view.image()
        return img.shape == before.shape and np.abs(img.astype(int) - before).mean() > 1.0

    qtbot.waitUntil(changed, timeout=5000)


def test_without_faces_the_3d_view_draws_points(loaded) -> None:  # noqa: ANN001
    w, _, result = loaded
    w.state.set_faces(None)
    w.state.set_frame(5)
    w.mesh_view.draw_now()
    t = result.tracks[1]
    row = t.index_of(5)
    np.testing.assert_allclose(
        w.mesh_view.displayed_vertices(1), display_points(t.verts[row], t.orig_cam[row]), atol=1e-6
    )
    assert w.frame_view.rendered_overlay_frame() == -1  # no mesh overlay without faces


def test_native_canvas_fallback_and_cpu_silhouette(qtbot, smpl_dir: Path) -> None:  # noqa: ANN001
    """Where EGL is missing: VisPy's Qt canvas for 3D, a rasterised silhouette in the frame view."""
    from PySide6.QtWidgets import QSplitter

    state = ViewerState()
    frame_view = QtFrameView(state)
    mesh_view = VispyMeshView(state, mode="native")
    split = QSplitter()
    split.addWidget(frame_view)
    split.addWidget(mesh_view.native)
    qtbot.addWidget(split)
    split.resize(900, 400)
    split.show()
    qtbot.waitExposed(split)
    try:
        result = make_video_result(smpl_dir)
        _, faces = load_template(smpl_dir)
        state.set_source(ArrayFrameSource(gradient_frames(20)))
        state.set_faces(faces)
        state.set_result(result)
        state.set_frame(6)
        mesh_view.draw_now()
        assert mesh_view.mode == "native"
        t = result.tracks[2]
        row = t.index_of(6)
        np.testing.assert_allclose(
            mesh_view.displayed_vertices(2),
            display_points(t.verts[row], t.orig_cam[row]),
            atol=1e-6,
        )
        sil = frame_view.overlay(2).mesh
        assert sil.isVisible()
        rect = sil.mapRectToParent(sil.boundingRect())
        cx, cy, bw, bh = t.bboxes[row]
        assert cx - bw / 2 - 2 <= rect.left() and rect.right() <= cx + bw / 2 + 2
        img = mesh_view.image()
        assert img[..., :3].std() > 5  # something was drawn
    finally:
        mesh_view.close()


def test_overlay_draws_the_nearer_person_on_top(loaded, smpl_dir: Path) -> None:  # noqa: ANN001
    """Where two people overlap, the overlay shows the nearer one (#1, drawn larger)."""
    from pare_studio.gui.placement import project_weak_perspective
    from pare_studio.gui.silhouette import mesh_silhouette

    w, _, result = loaded
    _, faces = load_template(smpl_dir)
    best = None
    for f in range(3, 17):
        masks = []
        for tid in (1, 2):
            t = result.tracks[tid]
            row = t.index_of(f)
            if row is None:
                break
            uv = project_weak_perspective(t.verts[row], t.orig_cam[row], 640, 360)
            sil = mesh_silhouette(uv, faces, 640, 360)
            m = np.zeros((360, 640), bool)
            x0, y0, sw, sh = sil.rect
            m[y0 : y0 + sh, x0 : x0 + sw] = sil.mask > 200
            masks.append(m)
        if len(masks) == 2 and (best is None or (masks[0] & masks[1]).sum() > best[1].sum()):
            best = (f, masks[0] & masks[1])
    assert best is not None and best[1].sum() > 200, "the synthetic people never overlap"
    frame, both = best
    w.state.set_frame(frame)
    w.mesh_view.draw_now()
    w.mesh_view.draw_now()
    rgba = w.frame_view.rendered_overlay.image.astype(float)
    k = rgba.shape[1] / 640
    ys, xs = np.nonzero(both)
    px = rgba[(ys * k).astype(int), (xs * k).astype(int)]
    px = px[px[:, 3] > 0]
    assert len(px) > 50
    # track 1 is orange (R > B), track 2 violet (B > R)
    assert np.mean(px[:, 0] > px[:, 2]) > 0.9
