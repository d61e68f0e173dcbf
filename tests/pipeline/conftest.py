"""Session fixtures for the detector / tracker tests.

* ``yolo_weights``: the synthetic Darknet YOLOv3 weights (public salt, 248 MB), generated once per
  session with ``shared/parity/yolov3/make_synthetic_darknet_weights.py`` into the assets folder
  (``PARE_STUDIO_TEST_ASSETS`` keeps it between sessions, as ``tests/conftest.py``).
* ``yolo_seq_frames``: the 12-frame public sequence (640×357), generated with
  ``shared/parity/make_demo_fixture.py`` and checked against ``expected.npz['frame_rgb_sha256']``.
* ``yolo_detector`` / ``yolo_results``: the detector, run once per session on the 12 frames as one
  detection batch of 12 like the reference (network forwards of 4 frames on the CPU; CPU YOLOv3
  at 416 takes about a second or two per frame).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import YOLO_PARITY

WEIGHTS_BYTES = 248_007_048
WEIGHTS_SHA256 = "36bfa64048ffa2531a1cd8d5e375e2cd5eaeda0acc3f5677bcd332820d191805"


def read_rgb(path: Path) -> np.ndarray:
    """A PNG as the reference reads it: cv2 BGR → RGB, (H, W, 3) uint8."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"cannot read {path}"
    return np.ascontiguousarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))


@pytest.fixture(scope="session")
def yolo_parity_dir() -> Path:
    if not (YOLO_PARITY / "expected.npz").is_file():
        pytest.fail(f"YOLOv3 parity fixture not found at {YOLO_PARITY}; set PARE_STUDIO_SHARED")
    return YOLO_PARITY


@pytest.fixture(scope="session")
def yolo_expected(yolo_parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(yolo_parity_dir / "expected.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def yolo_weights(assets_dir: Path, yolo_parity_dir: Path, yolo_expected: dict) -> Path:
    """The synthetic public weights (20-byte header, 62,001,757 float32 values)."""
    out = assets_dir / "yolov3_public.weights"
    if not out.is_file() or out.stat().st_size != WEIGHTS_BYTES:
        tmp = assets_dir / f"yolov3_public.weights.{os.getpid()}.tmp"
        proc = subprocess.run(
            [
                sys.executable,
                str(yolo_parity_dir / "make_synthetic_darknet_weights.py"),
                str(tmp),
                "--salt",
                "public",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert WEIGHTS_SHA256 in proc.stderr, proc.stderr
        os.replace(tmp, out)
    assert str(yolo_expected["weights_sha256"]) == WEIGHTS_SHA256
    return out


@pytest.fixture(scope="session")
def yolo_seq_dir(assets_dir: Path, yolo_parity_dir: Path) -> Path:
    """The public 12-frame sequence: ``<dir>/frames/000000.png .. 000011.png``."""
    out = assets_dir / "yolo_seq_640x357"
    if not (out / "frames" / "000011.png").is_file():
        subprocess.run(
            [
                sys.executable,
                str(yolo_parity_dir.parent / "make_demo_fixture.py"),
                str(out),
                "--frames",
                "12",
                "--size",
                "640x357",
            ],
            capture_output=True,
            check=True,
        )
    return out


@pytest.fixture(scope="session")
def yolo_seq_frames(yolo_seq_dir: Path, yolo_expected: dict) -> list[np.ndarray]:
    """The 12 frames as RGB uint8, verified byte for byte against the reference's frames."""
    names = [str(n) for n in yolo_expected["frame_names"]]
    frames = [read_rgb(yolo_seq_dir / "frames" / n) for n in names]
    for name, frame, sha in zip(names, frames, yolo_expected["frame_rgb_sha256"], strict=True):
        got = hashlib.sha256(np.ascontiguousarray(frame).tobytes()).hexdigest()
        assert got == str(sha), f"regenerated frame {name} differs from the reference's"
    assert tuple(frames[0].shape[:2]) == tuple(int(v) for v in yolo_expected["frame_hw"])
    return frames


@pytest.fixture(scope="session")
def yolo_shipped_frames(yolo_parity_dir: Path, yolo_expected: dict) -> list[np.ndarray]:
    """The 3 PNGs shipped in ``frames/`` (sequence indices ``expected['shipped_frames']``)."""
    return [
        read_rgb(yolo_parity_dir / "frames" / f"{int(i):06d}.png")
        for i in yolo_expected["shipped_frames"]
    ]


@pytest.fixture(scope="session")
def yolo_detector(yolo_weights: Path):
    from pare_studio.pipeline.detection import YoloDetector

    return YoloDetector(yolo_weights, device="cpu", batch_size=12)


@pytest.fixture(scope="session")
def yolo_results(yolo_detector, yolo_seq_frames: list[np.ndarray]):
    """All YOLO stages of the 12 frames (one detection batch of 12), decoded rows kept."""
    return yolo_detector.run(yolo_seq_frames, keep_raw=True)
