"""Results for the track-editing, smoothing and project tests of the window.

* :func:`pipeline_video_result` — real pipeline output (the synthetic checkpoint on the 3-frame
  two-person clip, computed once per session by ``tests/export/pipeline_run.py``);
* :func:`jittered_result` — one person whose joint rotations are a smooth motion plus per-frame
  noise, meshes and joints from the synthetic SMPL (what smoothing must calm down).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pare_studio.results import VideoResult


def pipeline_video_result(
    parity_dir: Path, cfg_path: Path, ckpt_path: Path, smpl_dir: Path
) -> VideoResult:
    """Real pipeline output: tracks 1 and 2 on frames 0..2 of a 320x180 clip."""
    from tests.export.pipeline_run import pipeline_result

    return pipeline_result(str(parity_dir), str(cfg_path), str(ckpt_path), str(smpl_dir))


def jittered_result(
    smpl_dir: Path, n: int = 40, noise_rad: float = 0.08, seed: int = 3
) -> VideoResult:
    """One track (#1) on frames 0..n-1: smooth motion + ``noise_rad`` rotation noise per joint.

    640x360 at 25 fps; ``verts`` / ``joints3d`` are the synthetic SMPL's for the noisy pose.
    """
    from dataclasses import replace

    from pare_studio.gui.smoothing_jobs import load_body
    from pare_studio.pipeline.smoothing import recompute_mesh
    from tests.export.synthetic import FPS, HEIGHT, WIDTH, make_track

    body = load_body(smpl_dir)
    rng = np.random.default_rng(seed)
    track = make_track(body, 1, np.arange(n), rng, 200, 400, 300)
    noise = Rotation.from_rotvec(
        rng.normal(scale=noise_rad / np.sqrt(3), size=(n * 24, 3))
    ).as_matrix()
    pose = (track.pose.astype(np.float64) @ noise.reshape(n, 24, 3, 3)).astype(np.float32)
    verts, joints = recompute_mesh(body, pose, track.betas)
    track = replace(track, pose=pose, verts=verts, joints3d=joints)
    return VideoResult(
        tracks={1: track}, n_frames=n, width=WIDTH, height=HEIGHT, fps=FPS, source=""
    )
