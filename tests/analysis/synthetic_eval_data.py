"""Tiny evaluation datasets in the reference's exact layout, made by the tests.

``DATA/dataset_extras/<file>.npz`` with imgname / center / scale / pose / shape (/ gender) and the
images under ``DATA/dataset_folders/<3dpw|3doh>/<imgname>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

NPZ_NAMES = {"3dpw-all": "3dpw_all_test_with_mmpose.npz", "3doh": "3doh_test.npz"}
FOLDERS = {"3dpw-all": "3dpw", "3doh": "3doh"}


@dataclass
class Sample:
    imgname: str
    center: tuple[float, float]
    scale: float
    gender: str = "m"


def smooth_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8 BGR with smooth gradients plus a few blobs (jpeg-friendly, non-trivial)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w, 3))
    for c in range(3):
        a, b, ph = rng.uniform(0.005, 0.03, size=3) * (1, 1, 300)
        img[..., c] = 120 + 80 * np.sin(a * xx + ph) * np.cos(b * yy)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(10, 40)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        img[mask] = rng.uniform(0, 255, size=3)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_dataset(
    data_dir: Path,
    name: str,
    samples: list[Sample],
    seed: int = 0,
    image_size: tuple[int, int] = (240, 320),
    drop_keys: tuple[str, ...] = (),
    write_images: bool = True,
    pose_scale: float = 0.3,
) -> dict[str, np.ndarray]:
    """Write the npz + images of dataset ``name``; returns the arrays written to the npz."""
    import cv2

    rng = np.random.default_rng(seed)
    n = len(samples)
    arrays: dict[str, np.ndarray] = {
        "imgname": np.array([s.imgname for s in samples]),
        "center": np.array([s.center for s in samples], dtype=np.float64),
        "scale": np.array([s.scale for s in samples], dtype=np.float64),
        "pose": (rng.normal(size=(n, 72)) * pose_scale).astype(np.float64),
        "shape": (rng.normal(size=(n, 10)) * 0.5).astype(np.float64),
        "gender": np.array([s.gender for s in samples]),
        "has_smpl": np.ones(n),
    }
    for k in drop_keys:
        arrays.pop(k, None)
    extras = data_dir / "dataset_extras"
    extras.mkdir(parents=True, exist_ok=True)
    np.savez(extras / NPZ_NAMES[name], **arrays)
    if write_images:
        root = data_dir / "dataset_folders" / FOLDERS[name]
        for s in samples:
            path = root / s.imgname
            if path.exists():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), smooth_image(rng, *image_size))
    return arrays


#: 3DPW-like samples: a test sequence (downtown_bar_00), a test + occluded one (flat_guitar_01)
#: and one that is neither (courtyard_walkDogs_00); boxes partly outside the image, smaller and
#: larger than 224 px; two people in the same frame.
PW3D_SAMPLES = [
    Sample("imageFiles/downtown_bar_00/image_00000.jpg", (160.3, 118.6), 1.07, "m"),
    Sample("imageFiles/downtown_bar_00/image_00000.jpg", (250.7, 131.2), 0.83, "f"),
    Sample("imageFiles/flat_guitar_01/image_00003.jpg", (101.4, 92.3), 1.61, "f"),
    Sample("imageFiles/courtyard_walkDogs_00/image_00007.jpg", (203.2, 145.7), 0.52, "m"),
]

#: 3DOH-like sample (png image).
OH3D_SAMPLES = [Sample("images/0013.png", (150.6, 110.3), 1.23, "m")]
