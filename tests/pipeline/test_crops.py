"""Demo crops (spec §5.4): affine warp of the square box, black border, ImageNet normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pare_studio.core.constants import IMAGENET_MEAN, IMAGENET_STD
from pare_studio.pipeline.crops import (
    crop_boxes,
    crop_image,
    crop_rgb,
    crop_transform,
    normalize_crops,
)

MEAN = np.array(IMAGENET_MEAN, dtype=np.float32)
STD = np.array(IMAGENET_STD, dtype=np.float32)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """(300, 500, 3) uint8 RGB with distinct, non-smooth content in every channel."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(300, 500, 3), dtype=np.uint8)


def _normalise_like_torchvision(rgb: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize as torchvision computes them (float32 torch ops)."""
    t = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return t.sub(mean).div(std).numpy()


def test_box_of_crop_size_is_the_image_region(image: np.ndarray) -> None:
    # A 224-px box centred on integer pixel (200, 150): the warp is a pure translation.
    crop = crop_rgb(image, (200.0, 150.0, 224.0, 224.0))
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, image[150 - 112 : 150 + 112, 200 - 112 : 200 + 112])


def test_box_twice_the_crop_size_is_the_region_subsampled(image: np.ndarray) -> None:
    # A 448-px box: crop pixel (u, v) samples image pixel (cx - 224 + 2u, cy - 224 + 2v) exactly.
    cx, cy = 150.0, 230.0
    crop = crop_rgb(image, (cx, cy, 448.0, 448.0))
    v, u = np.mgrid[0:224, 0:224]
    xs, ys = (cx - 224 + 2 * u).astype(int), (cy - 224 + 2 * v).astype(int)
    inside = (xs >= 0) & (xs < image.shape[1]) & (ys >= 0) & (ys < image.shape[0])
    assert inside.any() and (~inside).any()
    np.testing.assert_array_equal(crop[inside], image[ys[inside], xs[inside]])
    # Outside the image: black (BORDER_CONSTANT, 0).
    assert (xs < 0).any() and (ys >= image.shape[0]).any()
    assert not crop[~inside].any()


def test_black_border_normalises_to_minus_mean_over_std(image: np.ndarray) -> None:
    # Box centred on the top-left corner: the top-left quarter of the crop is outside the image.
    x = crop_image(image, (0.0, 0.0, 224.0, 224.0))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    expected = (-MEAN / STD).astype(np.float32)
    np.testing.assert_allclose(
        x[:, :100, :100], np.broadcast_to(expected[:, None, None], (3, 100, 100)), rtol=0, atol=1e-6
    )
    np.testing.assert_array_equal(
        crop_rgb(image, (0.0, 0.0, 224.0, 224.0))[112:, 112:], image[:112, :112]
    )


def test_transform_maps_the_three_reference_point_pairs() -> None:
    cx, cy, w, h = 123.4, 87.9, 61.3, 97.7
    m = crop_transform(cx, cy, w, h, scale=1.0)
    assert m.shape == (2, 3)
    for (x, y), want in [
        ((cx, cy), (112, 112)),
        ((cx, cy + h / 2), (112, 224)),
        ((cx + w / 2, cy), (224, 112)),
    ]:
        np.testing.assert_allclose(m @ [x, y, 1.0], want, atol=1e-3)
    # scale enlarges the box: the point h*scale/2 below the centre lands on the crop's edge.
    m2 = crop_transform(cx, cy, w, h, scale=1.2)
    np.testing.assert_allclose(m2 @ [cx, cy + 1.2 * h / 2, 1.0], (112, 224), atol=1e-3)


def test_normalisation_matches_torchvision_bit_for_bit(image: np.ndarray) -> None:
    rgb = crop_rgb(image, (260.5, 140.25, 180.0, 180.0))
    ours = normalize_crops(rgb[None])[0]
    np.testing.assert_array_equal(ours, _normalise_like_torchvision(rgb))


def test_batched_crops_equal_single_crops(image: np.ndarray) -> None:
    boxes = np.array(
        [[100.0, 100.0, 150.0, 150.0], [400.0, 200.0, 260.0, 260.0], [480.0, 20.0, 90.0, 90.0]]
    )
    batch = crop_boxes(image, boxes)
    assert batch.shape == (3, 3, 224, 224) and batch.dtype == np.float32
    for k, box in enumerate(boxes):
        np.testing.assert_array_equal(batch[k], crop_image(image, box))
    assert crop_boxes(image, np.zeros((0, 4))).shape == (0, 3, 224, 224)
