"""Overlay video end to end: meshes where orig_cam puts them, options, OBJs, cancel, mismatches."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pare_studio.cancel import CancelToken
from pare_studio.errors import Cancelled, RenderError
from pare_studio.pipeline.video import open_source
from pare_studio.render.mesh_renderer import MeshRenderer, project_weak_perspective
from pare_studio.render.overlay import render_overlay_video
from pare_studio.results import Progress, TrackResult, VideoResult

pytestmark = pytest.mark.gl

W, H, N = 160, 120, 8
JOINT_VERTS = np.arange(0, 6890, 141)[:49]  # 49 vertices stand in for the joints


def background(i: int) -> np.ndarray:
    """A smooth dark gradient (compresses well), a little different per frame."""
    x = np.linspace(0, 60, W)[None, :, None]
    y = np.linspace(0, 40, H)[:, None, None]
    return np.broadcast_to(x + y + 2 * i, (H, W, 3)).astype(np.uint8).copy()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("overlay") / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "10"}
        for i in range(N):
            for p in s.encode(av.VideoFrame.from_ndarray(background(i), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def make_track(track_id: int, frames: list[int], verts: np.ndarray, cam: np.ndarray) -> TrackResult:
    n = len(frames)
    joints = project_weak_perspective(verts[JOINT_VERTS], cam, W, H).astype(np.float32)
    return TrackResult(
        track_id=track_id,
        pred_cam=np.zeros((n, 3), np.float32),
        orig_cam=np.repeat(cam[None], n, axis=0).astype(np.float64),
        verts=np.repeat(verts[None], n, axis=0),
        pose=np.repeat(np.eye(3, dtype=np.float32)[None, None], n, axis=0).repeat(24, axis=1),
        betas=np.zeros((n, 10), np.float32),
        joints3d=np.repeat(verts[JOINT_VERTS][None], n, axis=0),
        joints2d=None,
        smpl_joints2d=np.repeat(joints[None], n, axis=0),
        bboxes=np.zeros((n, 4)),
        frame_ids=np.asarray(frames, np.int64),
    )


CAM_A = np.array([0.45, 0.45 * W / H, -0.9, 0.0])  # left
CAM_B = np.array([0.5, 0.5 * W / H, 0.9, 0.1])  # right, nearer


@pytest.fixture(scope="module")
def result(smpl_mesh: tuple[np.ndarray, np.ndarray]) -> VideoResult:
    verts = smpl_mesh[0]
    return VideoResult(
        tracks={
            1: make_track(1, [2, 3, 4, 5, 6], verts, CAM_A),
            2: make_track(2, [4, 5, 6, 7], verts, CAM_B),
        },
        n_frames=N,
        width=W,
        height=H,
        fps=10.0,
        source="clip.mp4",
    )


def run(gen):  # type: ignore[no-untyped-def]
    """Drive a generator to its end: (yielded items, return value)."""
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            return items, stop.value


def decode(path: Path) -> tuple[list[np.ndarray], str]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.to_ndarray(format="rgb24") for f in c.decode(s)], s.codec_context.name


def test_overlay_video_has_meshes_where_the_camera_puts_them(
    clip: Path, result: VideoResult, smpl_mesh: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    verts, faces = smpl_mesh
    out = tmp_path / "clip_result.mp4"
    seen: list[Progress] = []
    with open_source(clip) as src:
        items, path = run(render_overlay_video(src, result, faces, out, progress=seen.append))
    assert path == out and out.is_file()
    assert [p.done for p in items] == list(range(1, N + 1))
    assert all(p.stage == "render" and p.total == N for p in items)
    assert seen == items
    frames, codec = decode(out)
    assert codec == "h264" and len(frames) == N and frames[0].shape == (H, W, 3)
    with MeshRenderer(W, H, faces) as r:
        mask_a = r.render([verts], [CAM_A])[:, :, 3] > 0
        mask_b = r.render([verts], [CAM_B])[:, :, 3] > 0
    assert mask_a.sum() > 300 and mask_b.sum() > 300 and not (mask_a & mask_b).any()
    for i, frame in enumerate(frames):
        changed = np.abs(frame.astype(int) - background(i).astype(int)).max(axis=2) > 40
        expected = np.zeros((H, W), bool)
        if i in (2, 3, 4, 5, 6):
            expected |= mask_a
        if i in (4, 5, 6, 7):
            expected |= mask_b
        if not expected.any():
            assert changed.sum() == 0, f"frame {i} should be the untouched source"
        else:
            iou = (changed & expected).sum() / (changed | expected).sum()
            assert iou > 0.8, f"frame {i}: mesh pixels do not match the camera (IoU {iou:.2f})"


def test_options_sideview_keypoints_and_obj(
    clip: Path, result: VideoResult, smpl_mesh: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    verts, faces = smpl_mesh
    out = tmp_path / "side.mp4"
    objs = tmp_path / "meshes"
    with open_source(clip) as src:
        run(
            render_overlay_video(
                src,
                result,
                faces,
                out,
                sideview=True,
                draw_keypoints=True,
                wireframe=True,
                save_obj_dir=objs,
            )
        )
    frames, _ = decode(out)
    assert len(frames) == N and frames[0].shape == (H, 2 * W, 3)
    # side panel: black without people, mesh pixels with people
    assert frames[0][:, W:].max() < 20
    assert (frames[5][:, W:].max(axis=2) > 80).sum() > 50
    # green keypoint discs at smpl_joints2d of frame 3 (track 1 only)
    f3 = frames[3].astype(int)
    for x, y in result.tracks[1].smpl_joints2d[1]:
        if 3 <= x < W - 3 and 3 <= y < H - 3:
            g = f3[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2].reshape(-1, 3).mean(axis=0)
            assert g[1] > 180 and g[0] < 90 and g[2] < 90
    # one OBJ per person per frame, after the 180° rotation about X
    files = sorted(p.relative_to(objs).as_posix() for p in objs.rglob("*.obj"))
    assert files == [f"0001/{i:06d}.obj" for i in (2, 3, 4, 5, 6)] + [
        f"0002/{i:06d}.obj" for i in (4, 5, 6, 7)
    ]
    lines = (objs / "0002" / "000007.obj").read_text().splitlines()
    v = np.array([[float(t) for t in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    f = np.array([[int(t) for t in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    assert v.shape == (6890, 3) and f.shape == (13776, 3)
    np.testing.assert_allclose(v, verts * np.array([1, -1, -1]), atol=2e-6)
    np.testing.assert_array_equal(f, faces + 1)


def test_cancel_leaves_no_video_and_keeps_the_old_one(
    clip: Path, result: VideoResult, smpl_mesh: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    out = tmp_path / "clip_result.mp4"
    out.write_bytes(b"the previous render")
    token = CancelToken()
    with open_source(clip) as src:
        gen = render_overlay_video(src, result, smpl_mesh[1], out, cancel=token)
        next(gen)
        next(gen)
        token.cancel()
        with pytest.raises(Cancelled):
            next(gen)
    assert out.read_bytes() == b"the previous render"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_result.mp4"]


def test_stopping_the_generator_removes_the_partial_video(
    clip: Path, result: VideoResult, smpl_mesh: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    with open_source(clip) as src:
        gen = render_overlay_video(src, result, smpl_mesh[1], tmp_path / "v.mp4")
        next(gen)
        gen.close()
    assert list(tmp_path.iterdir()) == []


def test_result_that_does_not_fit_the_video(
    clip: Path, result: VideoResult, smpl_mesh: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    wrong_size = VideoResult(tracks=result.tracks, n_frames=N, width=W * 2, height=H)
    too_long = VideoResult(
        tracks={9: make_track(9, [3, N + 4], smpl_mesh[0], CAM_A)},
        n_frames=N + 5,
        width=W,
        height=H,
    )
    with open_source(clip) as src:
        with pytest.raises(RenderError, match=f"{2 * W}x{H}"):
            run(render_overlay_video(src, wrong_size, smpl_mesh[1], tmp_path / "a.mp4"))
        with pytest.raises(RenderError, match=f"only {N} frames"):
            run(render_overlay_video(src, too_long, smpl_mesh[1], tmp_path / "b.mp4"))
    assert list(tmp_path.iterdir()) == []
