"""The evaluation crop of the reference (spec §6.3), not the demo's cv2 affine crop.

``crop()`` of SPIN: the box of side ``h = 200 * scale`` around ``center`` is mapped to the
``res x res`` output with ``x' = res * (x / h - cx / h + 0.5)``; its corners are found by mapping
the 1-based output pixels (1, 1) and (res + 1, res + 1) back through the inverse transform, with
the reference's conventions (subtract 1 before, **truncate to int** (toward zero), add 1 after,
then subtract 1 again). The overlap with the image is copied into a zero (black) canvas of size
``br - ul``, which is then resized to ``res x res`` with ``skimage.transform.resize`` (bilinear,
mode 'reflect', anti-aliased when downsampling). The crop is divided by 255 and normalised with
the ImageNet mean / std.

Image decoding: the reference decodes ``.jpg`` with jpeg4py (libjpeg-turbo); we decode every
format with OpenCV (also libjpeg-turbo in the usual wheels). The two normally agree exactly;
a different libjpeg build can change a few pixel values by one grey level.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pare_studio.core.constants import IMAGENET_MEAN, IMAGENET_STD, IMG_RES
from pare_studio.errors import DatasetError


def _transform_matrix(center: np.ndarray, scale: float, res: int) -> np.ndarray:
    """3x3 matrix of SPIN's ``get_transform`` (no rotation): image pixels -> crop pixels."""
    h = 200.0 * scale
    t = np.zeros((3, 3))
    t[0, 0] = float(res) / h
    t[1, 1] = float(res) / h
    t[0, 2] = res * (-float(center[0]) / h + 0.5)
    t[1, 2] = res * (-float(center[1]) / h + 0.5)
    t[2, 2] = 1.0
    return t


def _transform_inverse(
    pt: tuple[float, float], center: np.ndarray, scale: float, res: int
) -> np.ndarray:
    """SPIN's ``transform(pt, ..., invert=1)``: 1-based crop pixel -> 1-based image pixel (int)."""
    t = np.linalg.inv(_transform_matrix(center, scale, res))
    new_pt = t @ np.array([pt[0] - 1.0, pt[1] - 1.0, 1.0])
    return new_pt[:2].astype(int) + 1


def crop_corners(
    center: np.ndarray, scale: float, res: int = IMG_RES
) -> tuple[np.ndarray, np.ndarray]:
    """Upper-left and bottom-right corners of the evaluation crop, 0-based image pixels (x, y).

    ``ul = T^-1(1, 1) - 1``, ``br = T^-1(res + 1, res + 1) - 1`` with int truncation; the crop
    covers image columns ``ul[0] .. br[0] - 1`` and rows ``ul[1] .. br[1] - 1``.

    Returns
    -------
    ul, br : (2,) int64 each.
    """
    c = np.asarray(center, dtype=np.float64)
    ul = _transform_inverse((1, 1), c, float(scale), res) - 1
    br = _transform_inverse((res + 1, res + 1), c, float(scale), res) - 1
    return ul.astype(np.int64), br.astype(np.int64)


def crop_canvas(
    img: np.ndarray, center: np.ndarray, scale: float, res: int = IMG_RES
) -> np.ndarray:
    """The box of the evaluation crop copied into a zero canvas, before resizing.

    Parameters
    ----------
    img : (H, W, 3) float, RGB 0..255.
    center : (2,) bbox centre (x, y), pixels.
    scale : bbox size / 200.

    Returns
    -------
    (br[1] - ul[1], br[0] - ul[0], 3) float64; pixels outside the image are 0.
    """
    ul, br = crop_corners(center, scale, res)
    width, height = int(br[0] - ul[0]), int(br[1] - ul[1])
    if width < 1 or height < 1:
        raise ValueError(f"empty crop box: centre {tuple(center)}, scale {scale}")
    canvas = np.zeros((height, width, img.shape[2]))
    img_h, img_w = img.shape[:2]
    # Overlap of the box [ul, br) with the image [0, W) x [0, H).
    x0, x1 = max(0, int(ul[0])), min(img_w, int(br[0]))
    y0, y1 = max(0, int(ul[1])), min(img_h, int(br[1]))
    if x1 > x0 and y1 > y0:
        canvas[y0 - ul[1] : y1 - ul[1], x0 - ul[0] : x1 - ul[0]] = img[y0:y1, x0:x1]
    return canvas


def spin_crop(img: np.ndarray, center: np.ndarray, scale: float, res: int = IMG_RES) -> np.ndarray:
    """The evaluation crop, resized: ``skimage.transform.resize(canvas, (res, res))``.

    Parameters
    ----------
    img : (H, W, 3) float32 or float64, RGB 0..255.
    center : (2,) pixels; scale : bbox size / 200.

    Returns
    -------
    (res, res, 3) float64, RGB 0..255 (anti-aliased when the box is larger than ``res``).
    """
    from skimage.transform import resize

    canvas = crop_canvas(img, center, scale, res)
    return resize(canvas, (res, res))


def read_image_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as (H, W, 3) float32 RGB 0..255 (OpenCV; grey images become RGB).

    Raises :class:`DatasetError` naming the file when it is missing or cannot be decoded.
    """
    import cv2

    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"image {p} not found")
    data = np.fromfile(str(p), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise DatasetError(f"image {p} could not be decoded (damaged or not an image)")
    return bgr[:, :, ::-1].astype(np.float32)


def normalize_crop(crop: np.ndarray) -> np.ndarray:
    """(res, res, 3) RGB 0..255 -> (3, res, res) float32, ``(x / 255 - mean) / std`` (ImageNet).

    Values are first clipped to [0, 255] as the reference's pixel-noise step does (a no-op for
    resized 0..255 crops) and cast to float32 before the division, as the reference.
    """
    rgb = np.clip(crop, 0.0, 255.0)
    chw = np.transpose(rgb.astype(np.float32), (2, 0, 1)) / np.float32(255.0)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    return ((chw - mean) / std).astype(np.float32)


def eval_crop(
    path: str | os.PathLike[str], center: np.ndarray, scale: float, res: int = IMG_RES
) -> np.ndarray:
    """Read ``path`` and make the network input of the reference's evaluation.

    Returns
    -------
    (3, res, res) float32, ImageNet-normalised RGB.
    """
    img = read_image_rgb(path)
    try:
        crop = spin_crop(img, center, scale, res)
    except ValueError as exc:
        raise DatasetError(f"image {path}: {exc}") from None
    return normalize_crop(crop)
