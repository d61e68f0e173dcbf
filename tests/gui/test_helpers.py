"""The GUI's plain helpers: colours, segments, projection, silhouettes, files, mailbox."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from pare_studio.errors import PareStudioError
from pare_studio.gui import documents
from pare_studio.gui.mailbox import LatestMailbox
from pare_studio.gui.placement import camera_translation, display_points, project_weak_perspective
from pare_studio.gui.silhouette import mesh_silhouette
from pare_studio.gui.track_utils import contiguous_segments, track_color
from pare_studio.results import VideoResult
from tests.gui.synthetic import load_template, make_video_result


def test_contiguous_segments() -> None:
    assert contiguous_segments(np.array([3, 4, 5, 6, 7, 10, 11, 15])) == [
        (3, 8),
        (10, 12),
        (15, 16),
    ]
    assert contiguous_segments(np.array([0])) == [(0, 1)]
    assert contiguous_segments(np.array([], np.int64)) == []


def test_track_colors_are_stable_and_distinct() -> None:
    colors = [track_color(i) for i in range(1, 9)]
    assert colors == [track_color(i) for i in range(1, 9)]
    for i, a in enumerate(colors):
        assert all(0.0 <= c <= 1.0 for c in a)
        for b in colors[i + 1 :]:
            assert max(abs(x - y) for x, y in zip(a, b, strict=True)) > 0.08


def test_weak_perspective_projection_matches_the_reference_formula(smpl_dir: Path) -> None:
    result = make_video_result(smpl_dir)
    t = result.tracks[1]
    for row in (0, 7):
        uv = project_weak_perspective(t.joints3d[row], t.orig_cam[row], result.width, result.height)
        np.testing.assert_allclose(uv, t.smpl_joints2d[row], atol=1e-3)
    # the box centre is where the SMPL origin lands: u = (1 + sx*tx) W/2
    sx, sy, tx, ty = t.orig_cam[0]
    uv0 = project_weak_perspective(np.zeros((1, 3)), t.orig_cam[0], result.width, result.height)
    np.testing.assert_allclose(uv0[0], t.bboxes[0, :2], atol=1e-6)


def test_display_points_flip_and_depth() -> None:
    cam = np.array([0.5, 0.9, 0.2, -0.1])
    pts = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.3]])
    out = display_points(pts, cam, fov_deg=90.0)
    z = 1.0 / (0.5 * np.tan(np.radians(45.0)))
    np.testing.assert_allclose(camera_translation(cam, 90.0), [0.2, -0.1, z])
    np.testing.assert_allclose(out[0], [0.2, 0.1, -z], rtol=1e-6)
    np.testing.assert_allclose(out[1] - out[0], [0.1, -0.2, -0.3], rtol=1e-5)
    # a person drawn twice as large is twice as close to the camera (display z is -depth)
    near = display_points(pts, cam * [2, 2, 1, 1], fov_deg=90.0)
    np.testing.assert_allclose(near[0, 2], out[0, 2] / 2, rtol=1e-6)


def _exact_mask(points: np.ndarray, faces: np.ndarray, w: int, h: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for tri in np.round(points[faces] * 16).astype(np.int32):
        cv2.fillConvexPoly(m, tri, 255, lineType=cv2.LINE_8, shift=4)
    return m


def test_silhouette_covers_the_projected_mesh(smpl_dir: Path) -> None:
    result = make_video_result(smpl_dir)
    _, faces = load_template(smpl_dir)
    t = result.tracks[1]
    w, h = result.width, result.height
    pts = project_weak_perspective(t.verts[3], t.orig_cam[3], w, h)
    sil = mesh_silhouette(pts, faces, w, h)
    assert sil is not None
    full = np.zeros((h, w), np.uint8)
    x0, y0, sw, sh = sil.rect
    full[y0 : y0 + sh, x0 : x0 + sw] = sil.mask
    exact = _exact_mask(pts, faces, w, h)
    ours, ref = full > 127, exact > 0
    iou = (ours & ref).sum() / (ours | ref).sum()
    assert iou > 0.8, iou
    # the synthetic body fits its box: nothing is drawn outside it
    cx, cy, bw, bh = t.bboxes[3]
    ys, xs = np.nonzero(ours)
    assert xs.min() >= cx - bw / 2 - 2 and xs.max() <= cx + bw / 2 + 2
    assert ys.min() >= cy - bh / 2 - 2 and ys.max() <= cy + bh / 2 + 2


def test_silhouette_outside_the_image_is_none(smpl_dir: Path) -> None:
    _, faces = load_template(smpl_dir)
    pts = np.random.default_rng(0).uniform(0, 50, (6890, 2)) + [1000, 1000]
    assert mesh_silhouette(pts, faces, 640, 360) is None


def test_mailbox_latest_wins() -> None:
    box: LatestMailbox[int] = LatestMailbox()
    assert box.take() is None
    assert box.put(1) is False
    assert box.put(2) is True
    assert box.take() == 2
    assert box.take() is None
    assert box.dropped == 1

    def producer(start: int) -> None:
        for i in range(start, start + 500):
            box.put(i)

    threads = [threading.Thread(target=producer, args=(k * 1000,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    last = box.take()
    assert last is not None and last % 1000 == 499
    assert box.take() is None


def test_find_video_for_results(tmp_path: Path) -> None:
    out = tmp_path / "sample_video_"
    out.mkdir()
    pkl = out / "pare_output.pkl"
    pkl.write_bytes(b"")
    empty = VideoResult()
    assert documents.find_video_for_results(pkl, empty) is None
    (out / "sample_video__result.mp4").write_bytes(b"x")
    assert documents.find_video_for_results(pkl, empty) is None  # the overlay is not the input
    (out / "sample_video.mp4").write_bytes(b"x")
    assert documents.find_video_for_results(pkl, empty) == out / "sample_video.mp4"
    elsewhere = tmp_path / "clip.avi"
    elsewhere.write_bytes(b"x")
    assert documents.find_video_for_results(pkl, VideoResult(source=str(elsewhere))) == elsewhere


def test_frame_size_from_boxes(smpl_dir: Path) -> None:
    r = make_video_result(smpl_dir)
    assert documents.frame_size_from_boxes(r) == (r.width, r.height)
    r.width = r.height = 0
    w, h = documents.frame_size_from_boxes(r)
    right = max(float((t.bboxes[:, 0] + t.bboxes[:, 2] / 2).max()) for t in r.tracks.values())
    assert w == int(np.ceil(right)) and h > 0


def test_obj_paths_and_output_pkl(tmp_path: Path) -> None:
    assert documents.obj_paths(tmp_path / "f.obj", [3]) == {3: tmp_path / "f.obj"}
    assert documents.obj_paths(tmp_path / "f", [1, 2]) == {
        1: tmp_path / "f_track1.obj",
        2: tmp_path / "f_track2.obj",
    }
    assert (
        documents.default_output_pkl(tmp_path / "v.mp4") == tmp_path / "v_pare" / "pare_output.pkl"
    )


def test_run_options_checks_the_boxes_file(tmp_path: Path) -> None:
    with pytest.raises(PareStudioError, match="boxes file"):
        documents.run_options("boxes", None, 16, False)
    with pytest.raises(PareStudioError, match="does not exist"):
        documents.run_options("boxes", tmp_path / "nope.txt", 16, False)
    boxes = tmp_path / "b.txt"
    boxes.write_text("1,1,0,0,10,10,1,-1,-1,-1\n")
    opts = documents.run_options("boxes", boxes, 4, True)
    assert (opts.detector, opts.boxes_file, opts.batch_size, opts.smooth) == (
        "boxes",
        str(boxes),
        4,
        True,
    )
    assert documents.run_options("whole", boxes, 16, False).boxes_file is None
