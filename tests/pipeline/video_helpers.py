"""Helpers shared by the video pipeline and ``pare-studio demo`` tests.

* synthetic inputs: the moving-figures clip with its MOTChallenge boxes (``make_clip``), and an
  image folder whose frames are the parity crops (``make_parity_folder``: the synthetic checkpoint
  gives clearly positive camera scales on them, so a rendered mesh is large and visible);
* one predictor per test session (``cached_predictor``; loading takes several seconds);
* the spec's formulas written out independently of ``core.geometry`` (§3.4, §5.5).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from pare_studio.results import TrackResult

SHARED_PARITY = Path(__file__).resolve().parents[2].parent / "shared" / "parity"

REFERENCE_LAYOUT = {
    "pred_cam": ((3,), np.float32),
    "orig_cam": ((4,), np.float64),
    "verts": ((6890, 3), np.float32),
    "pose": ((24, 3, 3), np.float32),
    "betas": ((10,), np.float32),
    "joints3d": ((49, 3), np.float32),
    "smpl_joints2d": ((49, 2), np.float32),
    "bboxes": ((4,), np.float64),
    "frame_ids": ((), np.int64),
}
REFERENCE_KEYS = [
    "pred_cam",
    "orig_cam",
    "verts",
    "pose",
    "betas",
    "joints3d",
    "joints2d",
    "smpl_joints2d",
    "bboxes",
    "frame_ids",
]


def make_clip(parity_dir: Path, out: Path, frames: int, size: str = "320x180") -> dict:
    """``out/clip.mp4`` + ``out/boxes.txt`` + ``out/truth.json`` (two moving stick figures)."""
    if not (out / "truth.json").is_file():
        subprocess.run(
            [
                sys.executable,
                str(parity_dir / "make_demo_fixture.py"),
                str(out),
                "--frames",
                str(frames),
                "--size",
                size,
            ],
            check=True,
            capture_output=True,
        )
    return json.loads((out / "truth.json").read_text())


def make_parity_folder(parity_dir: Path, out: Path, order: tuple[int, ...] = (0, 2, 0)) -> Path:
    """A folder of 224×224 PNG frames; frame k = parity crop ``order[k]`` ([0, 1] → uint8)."""
    out.mkdir(parents=True, exist_ok=True)
    crops = np.load(parity_dir / "inputs.npz")["images_01"]
    for k, idx in enumerate(order):
        rgb = np.clip(np.rint(crops[idx].transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out / f"{k + 1:06d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return out


@functools.lru_cache(maxsize=1)
def cached_predictor(cfg_path: str, ckpt_path: str, smpl_dir: str):  # type: ignore[no-untyped-def]
    """One CPU predictor per test session."""
    from pare_studio.core.predictor import load_predictor

    return load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="torch")


def boxes_from_file(path: Path, tid: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n,) 0-based, boxes (n, 4) [cx, cy, s, s]) of track ``tid`` of a MOT boxes file.

    The tracker's square box (spec §5.3): ``s = max(w, h)`` around the box centre; corners are
    float32 as the file is read.
    """
    frames, boxes = [], []
    for line in path.read_text().splitlines():
        f = line.split(",")
        if int(f[1]) != tid:
            continue
        left, top, w, h = (float(v) for v in f[2:6])
        frames.append(int(f[0]) - 1)
        boxes.append(np.float32([left, top, left + w, top + h]).astype(np.float64))
    b = np.asarray(boxes)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    s = np.maximum(w, h)
    return np.asarray(frames, np.int64), np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, s, s], axis=1)


def spec_orig_cam(pred_cam: np.ndarray, bboxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Spec §5.5: ``[s·h/W, s·h/H, tx + (cx − W/2)/(W/2)/sx, ty + (cy − H/2)/(H/2)/sy]``."""
    s, tx, ty = (pred_cam[:, k].astype(np.float64) for k in range(3))
    cx, cy, h = bboxes[:, 0], bboxes[:, 1], bboxes[:, 2]
    sx, sy = s * h / width, s * h / height
    return np.stack(
        [
            sx,
            sy,
            tx + (cx - width / 2) / (width / 2) / sx,
            ty + (cy - height / 2) / (height / 2) / sy,
        ],
        1,
    )


def spec_crop_joints2d(joints3d: np.ndarray, pred_cam: np.ndarray) -> np.ndarray:
    """Spec §3.4: ``5000·(X + t)/(Z + tz)/112`` with ``t = (tx, ty, 2·5000/(224·s + 1e-9))``."""
    j = joints3d.astype(np.float64)
    s, tx, ty = (pred_cam[:, k].astype(np.float64) for k in range(3))
    t = np.stack([tx, ty, 2 * 5000 / (224 * s + 1e-9)], 1)[:, None, :]
    p = j + t
    return 5000 * p[..., :2] / p[..., 2:3] / 112


def spec_orig_joints2d(crop_uv: np.ndarray, bboxes: np.ndarray) -> np.ndarray:
    """Spec §5.5: ``x = cx − h/2 + 0.5·224·(u + 1)·h/224`` (and y likewise)."""
    cx, cy, h = (bboxes[:, k][:, None] for k in (0, 1, 2))
    px = 0.5 * 224 * (crop_uv + 1) * (h[..., None] / 224)
    return np.stack([cx - h / 2 + px[..., 0], cy - h / 2 + px[..., 1]], -1)


def hand_crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Spec §5.4 written out: three point pairs, warpAffine bilinear, black border, ImageNet."""
    cx, cy, w, h = (float(v) for v in box)
    src = np.float32([[cx, cy], [cx, cy + h / 2], [cx + w / 2, cy]])
    dst = np.float32([[112, 112], [112, 224], [224, 112]])
    m = cv2.getAffineTransform(src, dst)
    crop = cv2.warpAffine(
        frame, m, (224, 224), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    x = crop.astype(np.float32) / 255.0
    x = (x - np.float32([0.485, 0.456, 0.406])) / np.float32([0.229, 0.224, 0.225])
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def project_vertices(
    verts: np.ndarray, orig_cam: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Pixel (u, v) of vertices under the reference renderer's camera (spec §5.8).

    The mesh is turned 180° about X ((X, Y, Z) → (X, −Y, −Z)); the weak-perspective projection
    has ``x_ndc = sx·(X + tx)``, ``y_ndc = sy·(Y' − ty)``.
    """
    sx, sy, tx, ty = orig_cam
    x_ndc = sx * (verts[:, 0] + tx)
    y_ndc = sy * (-verts[:, 1] - ty)
    return np.stack([(x_ndc + 1) / 2 * width, (1 - y_ndc) / 2 * height], 1)


def make_track(tid: int, frames: list[int], seed: int) -> TrackResult:
    """A track of random numbers in the reference layout (for file-format tests)."""
    rng = np.random.default_rng(seed)
    n = len(frames)

    def f32(*shape: int) -> np.ndarray:
        return rng.standard_normal((n, *shape)).astype(np.float32)

    return TrackResult(
        track_id=tid,
        pred_cam=f32(3),
        orig_cam=rng.standard_normal((n, 4)),
        verts=f32(6890, 3),
        pose=f32(24, 3, 3),
        betas=f32(10),
        joints3d=f32(49, 3),
        joints2d=None,
        smpl_joints2d=f32(49, 2),
        bboxes=rng.uniform(10, 300, (n, 4)),
        frame_ids=np.asarray(frames, dtype=np.int64),
    )
