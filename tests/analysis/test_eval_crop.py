"""The evaluation crop (spec §6.3) against hand-computed cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.analysis.eval_crop import (
    crop_canvas,
    crop_corners,
    eval_crop,
    normalize_crop,
    read_image_rgb,
    spin_crop,
)
from pare_studio.errors import DatasetError

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, size=(h, w, 3)).astype(np.float32)


def test_box_of_exactly_224_pixels_is_copied_unchanged() -> None:
    img = _image(300, 400)
    # h = 200 * 1.12 = 224; centre x 149.4 -> columns 37.4 .. 261.4 -> int -> 37 .. 261.
    center, scale = np.array([149.4, 130.3]), 1.12
    ul, br = crop_corners(center, scale)
    np.testing.assert_array_equal(ul, [37, 18])
    np.testing.assert_array_equal(br, [261, 242])
    out = spin_crop(img, center, scale)
    assert out.shape == (224, 224, 3)
    np.testing.assert_allclose(out, img[18:242, 37:261], atol=1e-4)


def test_corners_truncate_toward_zero() -> None:
    # Left edge at x = 50.4 - 112 = -61.6 -> int() gives -61 (not floor -62); right edge
    # 162.4 -> 162: the canvas is 223 wide, as in the reference.
    ul, br = crop_corners(np.array([50.4, 150.3]), 1.12)
    np.testing.assert_array_equal(ul, [-61, 38])
    np.testing.assert_array_equal(br, [162, 262])
    canvas = crop_canvas(_image(300, 400), np.array([50.4, 150.3]), 1.12)
    assert canvas.shape == (224, 223, 3)


def test_out_of_image_region_is_zero_then_imagenet_mean_after_normalising() -> None:
    img = _image(100, 100, seed=1) * 0 + 200.0
    center, scale = np.array([10.3, 50.2]), 0.5  # h = 100: columns -39.7 .. 60.3 -> -39 .. 60
    canvas = crop_canvas(img, center, scale)
    assert canvas.shape == (100, 99, 3)
    assert np.all(canvas[:, :39] == 0.0)  # image column 0 lands at canvas column 39
    assert np.all(canvas[:, 39:] == 200.0)
    x = normalize_crop(spin_crop(img, center, scale))
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    np.testing.assert_allclose(
        x[:, :, :80], np.broadcast_to((-MEAN / STD)[:, None, None], (3, 224, 80)), atol=1e-6
    )
    np.testing.assert_allclose(
        x[:, :, 100:],
        np.broadcast_to(((200 / 255 - MEAN) / STD)[:, None, None], (3, 224, 124)),
        atol=1e-5,
    )


def test_upsampling_is_plain_bilinear() -> None:
    # A 112-px box upsampled x2: output pixel u samples input (u + 0.5) / 2 - 0.5; a linear ramp
    # stays exactly linear away from the borders (no smoothing when upsampling).
    x = np.arange(200, dtype=np.float32)
    img = np.repeat(np.repeat(x[None, :, None], 200, axis=0), 3, axis=2)
    center, scale = np.array([100.2, 100.3]), 0.56  # h = 112: columns 44.2 -> 44 .. 156
    ul, br = crop_corners(center, scale)
    assert br[0] - ul[0] == 112
    out = spin_crop(img, center, scale)
    u = np.arange(4, 220)
    np.testing.assert_allclose(out[50, u, 0], ul[0] + (u + 0.5) / 2 - 0.5, atol=1e-6)


def test_downsampling_is_anti_aliased() -> None:
    # Columns alternating 0 / 255, box of 672 px -> 224 (factor 3). Without anti-aliasing each
    # output column would hit one input column (0 or 255); the Gaussian (sigma 1) averages them.
    img = np.zeros((700, 700, 3), dtype=np.float32)
    img[:, 1::2] = 255.0
    center, scale = np.array([350.1, 350.1]), 3.36  # h = 672
    ul, br = crop_corners(center, scale)
    assert br[0] - ul[0] == 672
    out = spin_crop(img, center, scale)[20:200, 20:200, 0]
    assert abs(out.mean() - 127.5) < 2.0
    assert out.std() < 5.0
    from skimage.transform import resize

    plain = resize(crop_canvas(img, center, scale), (224, 224), anti_aliasing=False)[
        20:200, 20:200, 0
    ]
    assert plain.std() > 100.0  # the check above would fail without anti-aliasing


def test_read_and_eval_crop(tmp_path: Path) -> None:
    import cv2

    rgb = (np.random.default_rng(2).uniform(0, 255, size=(80, 90, 3))).astype(np.uint8)
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), rgb[:, :, ::-1])
    read = read_image_rgb(path)
    assert read.dtype == np.float32
    np.testing.assert_array_equal(read, rgb.astype(np.float32))
    x = eval_crop(path, np.array([45.3, 40.2]), 0.3)
    ref = (
        spin_crop(rgb.astype(np.float32), np.array([45.3, 40.2]), 0.3).transpose(2, 0, 1) / 255.0
        - MEAN[:, None, None]
    ) / STD[:, None, None]
    np.testing.assert_allclose(x, ref, atol=1e-5)


def test_bad_images(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_image_rgb(tmp_path / "nope.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DatasetError, match="could not be decoded"):
        read_image_rgb(bad)


def test_box_outside_the_image_gives_a_black_canvas() -> None:
    # Columns 250.3 .. 350.3 -> 250 .. 350; rows -29.8 .. 70.2 -> -29 .. 70 (99 rows).
    canvas = crop_canvas(_image(50, 50), np.array([300.3, 20.2]), 0.5)
    assert canvas.shape == (99, 100, 3) and not canvas.any()
