"""Hand-built results with the synthetic SMPL: moving, posed people with consistent cameras.

The poses are smooth random motions around an upright body (global orientation 180° about x,
the camera frame PARE predicts in), per-frame betas around a per-track shape, and a crop camera
and box per frame from which ``orig_cam`` follows by the spec's formula (§5.5). Vertices and the
49 joints come from ``core.smpl.SmplBody`` (pose blend shapes included), as the pipeline's do.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pare_studio.results import TrackResult, VideoResult

WIDTH, HEIGHT, FPS, N_FRAMES = 640, 360, 25.0, 14


def smooth_pose(rng: np.random.Generator, n: int, amplitude: float = 0.4) -> np.ndarray:
    """(n, 24, 3, 3) float32: joint rotations oscillating smoothly, root upright."""
    phase = rng.uniform(0, 2 * np.pi, size=(24, 3))
    amp = rng.uniform(0.2, 1.0, size=(24, 3)) * amplitude
    t = np.arange(n)[:, None, None] * 0.3
    rotvec = amp * np.sin(t + phase)
    rot = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(n, 24, 3, 3)
    upright = Rotation.from_euler("x", np.pi).as_matrix()
    rot[:, 0] = upright @ rot[:, 0]
    return rot.astype(np.float32)


def make_track(
    smpl: torch.nn.Module,
    track_id: int,
    frame_ids: np.ndarray,
    rng: np.random.Generator,
    x_start: float,
    x_end: float,
    box: float,
) -> TrackResult:
    frame_ids = np.asarray(frame_ids, np.int64)
    n = len(frame_ids)
    pose = smooth_pose(rng, n)
    betas = (rng.normal(size=10) + 0.05 * rng.normal(size=(n, 10))).astype(np.float32)
    with torch.inference_mode():
        v, j = smpl(torch.from_numpy(pose), torch.from_numpy(betas))
    verts, joints3d = v.numpy(), j.numpy()
    s = np.linspace(0.9, 1.1, n).astype(np.float32)
    tx = (0.05 * np.sin(np.arange(n))).astype(np.float32)
    ty = np.full(n, 0.2, np.float32)
    pred_cam = np.stack([s, tx, ty], axis=1)
    cx = np.linspace(x_start, x_end, n)
    cy = np.full(n, HEIGHT * 0.5)
    bboxes = np.stack([cx, cy, np.full(n, box), np.full(n, box)], axis=1)
    sx = s * box / WIDTH
    sy = s * box / HEIGHT
    orig_cam = np.stack(
        [
            sx,
            sy,
            tx + (cx - WIDTH / 2) / (WIDTH / 2) / sx,
            ty + (cy - HEIGHT / 2) / (HEIGHT / 2) / sy,
        ],
        axis=1,
    ).astype(np.float64)
    j2d = np.stack(
        [
            (1 + sx[:, None] * (joints3d[..., 0] + orig_cam[:, None, 2])) * WIDTH / 2,
            (1 + sy[:, None] * (joints3d[..., 1] + orig_cam[:, None, 3])) * HEIGHT / 2,
        ],
        axis=-1,
    ).astype(np.float32)
    return TrackResult(
        track_id=track_id,
        pred_cam=pred_cam,
        orig_cam=orig_cam,
        verts=verts,
        pose=pose,
        betas=betas,
        joints3d=joints3d,
        joints2d=None,
        smpl_joints2d=j2d,
        bboxes=bboxes.astype(np.float64),
        frame_ids=frame_ids,
    )


def make_result(smpl: torch.nn.Module, seed: int = 0) -> VideoResult:
    """Track 1 on frames 0..9; track 2 on 3..12 without 7 and 8 (a gap); 14 video frames."""
    rng = np.random.default_rng(seed)
    t1 = make_track(smpl, 1, np.arange(10), rng, 200, 300, 300)
    ids2 = np.array([f for f in range(3, 13) if f not in (7, 8)])
    t2 = make_track(smpl, 2, ids2, rng, 500, 420, 200)
    return VideoResult(
        tracks={1: t1, 2: t2}, n_frames=N_FRAMES, width=WIDTH, height=HEIGHT, fps=FPS, source=""
    )
