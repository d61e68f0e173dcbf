"""Person crops exactly as the reference demo makes them (spec §5.4).

A tracker box ``(cx, cy, w, h)`` (pixels, ``w == h`` for tracker boxes) becomes a 224×224 crop by
an affine warp that maps the box centre to (112, 112), the point ``h·scale/2`` below it to
(112, 224) and the point ``w·scale/2`` right of it to (224, 112). Bilinear sampling, black outside
the image, RGB, ``/255``, ImageNet mean/std. The demo always uses ``scale = 1.0``.

The float32 rounding of the source points follows the reference's ``gen_trans_from_patch_cv`` so
the 2×3 matrix, and therefore every crop pixel, is bit-identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pare_studio.core.constants import IMAGENET_MEAN, IMAGENET_STD

#: Side of the network input crop, pixels.
CROP_SIZE = 224

_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)


def crop_transform(
    cx: float, cy: float, w: float, h: float, scale: float = 1.0, size: int = CROP_SIZE
) -> np.ndarray:
    """Affine matrix from image pixels to crop pixels.

    Parameters
    ----------
    cx, cy : box centre, pixels.
    w, h : box width and height, pixels.
    scale : box enlargement factor (the demo uses 1.0).
    size : crop side, pixels.

    Returns
    -------
    (2, 3) float64 matrix ``M`` with ``crop_xy = M @ [x, y, 1]``.
    """
    # Reference order of operations: half extents are stored as float32, the sums with the
    # (float64) centre are rounded to float32 again, then cv2 solves in double precision.
    half_h = np.float32(float(h) * float(scale) * 0.5)
    half_w = np.float32(float(w) * float(scale) * 0.5)
    cx64, cy64 = float(cx), float(cy)
    src = np.array(
        [
            [cx64, cy64],
            [cx64, cy64 + float(half_h)],
            [cx64 + float(half_w), cy64],
        ],
        dtype=np.float32,
    )
    half = size * 0.5
    dst = np.array([[half, half], [half, float(size)], [float(size), half]], dtype=np.float32)
    return cv2.getAffineTransform(src, dst)


def crop_rgb(image: np.ndarray, bbox: Sequence[float], scale: float = 1.0) -> np.ndarray:
    """The 224×224 RGB crop of one box, before normalisation.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB frame.
    bbox : ``(cx, cy, w, h)`` pixels.
    scale : box enlargement factor.

    Returns
    -------
    (224, 224, 3) uint8 RGB, black where the box leaves the image.
    """
    cx, cy, w, h = (float(v) for v in bbox[:4])
    trans = crop_transform(cx, cy, w, h, scale)
    return cv2.warpAffine(
        image,
        trans,
        (CROP_SIZE, CROP_SIZE),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def normalize_crops(crops: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """RGB uint8 crops → network input.

    Parameters
    ----------
    crops : (N, 224, 224, 3) uint8 RGB.
    out : optional (N, 3, 224, 224) float32 buffer to write into.

    Returns
    -------
    (N, 3, 224, 224) float32, ``((x / 255) - mean) / std`` per channel (ImageNet statistics), the
    same float32 operations as torchvision's ``ToTensor`` + ``Normalize``.
    """
    n = crops.shape[0]
    if out is None:
        out = np.empty((n, 3, CROP_SIZE, CROP_SIZE), dtype=np.float32)
    chw = crops.transpose(0, 3, 1, 2)
    np.divide(chw, np.float32(255.0), out=out, dtype=np.float32)
    out -= _MEAN
    out /= _STD
    return out


def crop_image(image: np.ndarray, bbox: Sequence[float], scale: float = 1.0) -> np.ndarray:
    """One normalised crop.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB frame.
    bbox : ``(cx, cy, w, h)`` pixels.
    scale : box enlargement factor.

    Returns
    -------
    (3, 224, 224) float32, ImageNet-normalised.
    """
    return normalize_crops(crop_rgb(image, bbox, scale)[None])[0]


def crop_boxes(image: np.ndarray, bboxes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Normalised crops of several boxes of one frame.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB frame.
    bboxes : (K, 4) ``[cx, cy, w, h]`` pixels.
    scale : box enlargement factor.

    Returns
    -------
    (K, 3, 224, 224) float32, ImageNet-normalised.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    rgb = np.empty((len(bboxes), CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    for k, box in enumerate(bboxes):
        rgb[k] = crop_rgb(image, box, scale)
    return normalize_crops(rgb)
