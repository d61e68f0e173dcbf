"""Well-formed synthetic results for widget tests: a real (synthetic-SMPL) mesh, moving people.

No network involved: each track is the template mesh turned upright (SMPL output frame, y down),
rotating about its vertical axis and walking across the frame, with a consistent ``orig_cam``,
box and projected joints, laid out exactly as ``pare_output.pkl`` (spec §5.6).
"""

from __future__ import annotations

import functools
import pickle
from pathlib import Path

import numpy as np

from pare_studio.results import TrackResult, VideoResult


def load_template(smpl_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(v_template (6890, 3) float64, faces (13776, 3) int64)`` of the synthetic SMPL pkl."""
    v, f = _load_template(str(smpl_dir))
    return v.copy(), f.copy()


@functools.lru_cache(maxsize=2)
def _load_template(smpl_dir: str) -> tuple[np.ndarray, np.ndarray]:
    with open(Path(smpl_dir) / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl", "rb") as fh:
        d = pickle.load(fh, encoding="latin1")
    return np.asarray(d["v_template"], np.float64), np.asarray(d["f"], np.int64)


def make_track(
    track_id: int,
    template: np.ndarray,
    frame_ids: np.ndarray,
    width: int,
    height: int,
    x_start: float,
    x_end: float,
    box: float,
) -> TrackResult:
    """One person walking from ``x_start`` to ``x_end`` (pixels), box side ``box`` px."""
    frame_ids = np.asarray(frame_ids, np.int64)
    n = len(frame_ids)
    upright = template * np.array([1.0, -1.0, -1.0])  # y down, z away from the camera
    t = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    verts = np.empty((n, template.shape[0], 3), np.float32)
    for i, a in enumerate(0.35 * frame_ids):
        c, s = np.cos(a), np.sin(a)
        rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
        verts[i] = upright @ rot.T + np.array([0.0, 0.03 * np.sin(a), 0.0])
    cx = x_start + (x_end - x_start) * t
    cy = np.full(n, height * 0.55)
    # ~1.75 m of body over 80 % of the box: pixels per metre = W/2 * sx.
    sx = (0.8 * box / 1.75) / (width / 2.0) * np.ones(n)
    sy = sx * width / height
    tx = (cx - width / 2) / (width / 2) / sx
    ty = (cy - height / 2) / (height / 2) / sy
    orig_cam = np.stack([sx, sy, tx, ty], axis=1).astype(np.float64)
    idx = np.linspace(0, template.shape[0] - 1, 49).astype(np.int64)
    joints3d = verts[:, idx].astype(np.float32)
    j2d = np.empty((n, 49, 2), np.float32)
    j2d[..., 0] = (1 + sx[:, None] * (joints3d[..., 0] + tx[:, None])) * width / 2
    j2d[..., 1] = (1 + sy[:, None] * (joints3d[..., 1] + ty[:, None])) * height / 2
    s_crop = sx * width / box
    return TrackResult(
        track_id=track_id,
        pred_cam=np.stack([s_crop, np.zeros(n), np.zeros(n)], axis=1).astype(np.float32),
        orig_cam=orig_cam,
        verts=verts,
        pose=np.tile(np.eye(3, dtype=np.float32), (n, 24, 1, 1)),
        betas=np.zeros((n, 10), np.float32),
        joints3d=joints3d,
        joints2d=None,
        smpl_joints2d=j2d,
        bboxes=np.stack([cx, cy, np.full(n, box), np.full(n, box)], axis=1).astype(np.float64),
        frame_ids=frame_ids,
    )


def make_video_result(
    smpl_dir: Path, n_frames: int = 20, width: int = 640, height: int = 360
) -> VideoResult:
    """Two tracks: #1 in every frame, #2 in frames 3..16 with a gap at 8-9."""
    template, _faces = load_template(smpl_dir)
    t1 = make_track(
        1, template, np.arange(n_frames), width, height, 0.25 * width, 0.6 * width, 0.75 * height
    )
    ids2 = np.array([f for f in range(3, min(17, n_frames)) if f not in (8, 9)], np.int64)
    t2 = make_track(2, template, ids2, width, height, 0.8 * width, 0.55 * width, 0.6 * height)
    return VideoResult(
        tracks={1: t1, 2: t2}, n_frames=n_frames, width=width, height=height, fps=25.0, source=""
    )


def make_result_for_truth(smpl_dir: Path, truth_path: Path) -> VideoResult:
    """A result whose people stand in the boxes of ``make_demo_fixture.py``'s ``truth.json``.

    Each track follows its true boxes (made square, as the pipeline's are) with the synthetic
    template mesh filling the box, so overlays line up with the stick figures of the clip.
    """
    import json

    truth = json.loads(Path(truth_path).read_text())
    width, height = truth["size"]
    template, _faces = load_template(smpl_dir)
    tracks = {}
    for key, t in truth["tracks"].items():
        frames = np.asarray(t["frames"], np.int64)
        boxes = np.asarray(t["boxes"], np.float64)  # left, top, w, h
        centres = boxes[:, :2] + boxes[:, 2:] / 2
        side = boxes[:, 2:].max(axis=1)
        track = make_track(int(key), template, frames, width, height, 0.0, 0.0, float(side.mean()))
        # move every row to its true box centre (same scale): u = (1 + sx (X + tx)) W / 2
        sx, sy = track.orig_cam[:, 0], track.orig_cam[:, 1]
        track.orig_cam[:, 2] = (centres[:, 0] - width / 2) / (width / 2) / sx
        track.orig_cam[:, 3] = (centres[:, 1] - height / 2) / (height / 2) / sy
        track.bboxes[:, :2] = centres
        track.bboxes[:, 2:] = side[:, None]
        j = track.joints3d
        track.smpl_joints2d[..., 0] = (
            (1 + sx[:, None] * (j[..., 0] + track.orig_cam[:, 2:3])) * width / 2
        )
        track.smpl_joints2d[..., 1] = (
            (1 + sy[:, None] * (j[..., 1] + track.orig_cam[:, 3:4])) * height / 2
        )
        tracks[int(key)] = track
    return VideoResult(
        tracks=dict(sorted(tracks.items())),
        n_frames=int(truth["frames"]),
        width=width,
        height=height,
        fps=25.0,
        source="",
    )


class ArrayFrameSource:
    """A FrameSource stand-in over an in-memory array (widget tests that need no decoder)."""

    def __init__(self, frames: np.ndarray, fps: float = 25.0) -> None:
        self.frames = frames
        self.fps = fps
        self.size = (int(frames.shape[2]), int(frames.shape[1]))
        self.path = Path("memory")
        self.closed = False

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def read(self, i: int) -> np.ndarray:
        return self.frames[int(i)].copy()

    def close(self) -> None:
        self.closed = True


def gradient_frames(n: int = 20, width: int = 640, height: int = 360) -> np.ndarray:
    """(n, H, W, 3) uint8 frames whose red channel encodes the frame index."""
    f = np.zeros((n, height, width, 3), np.uint8)
    f[..., 1] = np.linspace(40, 200, width, dtype=np.uint8)[None, None, :]
    f[..., 0] = (np.arange(n, dtype=np.uint8) * 10)[:, None, None]
    return f
