"""Root translation of a track from PARE's weak-perspective camera, where it can be estimated.

PARE predicts the body in the SMPL model frame (no translation) and a weak-perspective camera.
In the original image (spec §5.5, ``orig_cam = (sx, sy, tx, ty)``) a point ``X`` of the mesh
lands at normalised device coordinates ``x_ndc = sx·(X + tx)``, ``y_ndc = sy·(Y + ty)``, i.e.
pixels ``u − W/2 = sx·(W/2)·(X + tx)`` and ``v − H/2 = sy·(H/2)·(Y + ty)`` (``sx·W = sy·H``).

A pinhole camera with focal length ``f`` pixels, centred on the image, sees the body at
translation ``T`` as ``u − W/2 = f·(X + Tx)/(Z + Tz)``. Matching the two at the body's depth
(``Z ≪ Tz``) gives the translation of the body in the camera frame (OpenCV axes: x right,
y down, z forward, metres)::

    Tx = tx,   Ty = ty,   Tz = 2·f / (W·sx)

the full-image version of PARE's own crop formula ``tz = 2·5000 / (224·s)`` (spec §3.4). The
camera ``vertices + T`` then reproduces the overlay's 2-D projection to first order.

Focal length
    The image's true focal length is unknown. The default assumes a horizontal field of view of
    :data:`DEFAULT_FOV_DEG` (60°, an ordinary phone / webcam lens): ``f = (W/2) / tan(fov/2)``.
    A person 1.7 m tall filling half the image height of a 16:9 video is then about 5.2 m away.
    ``focal_length`` (pixels) overrides it. The depth scales linearly with ``f``: a wrong guess
    moves the body along the viewing ray but keeps its image position and its relative motion.

Image size
    A project (and a fresh run) knows the video's size. A bare ``pare_output.pkl`` does not, but
    the size can be recovered from its own arrays: ``sx = s·h/W`` and ``sy = s·h/H`` with
    ``s = pred_cam[:, 0]`` and ``h = bboxes[:, 2]`` (spec §5.5), so ``W = s·h/sx`` and
    ``H = s·h/sy`` (:func:`estimate_image_size`, median over the track's frames).

Not estimable
    A frame with a non-positive or non-finite ``sx`` has no depth; its translation is
    interpolated linearly (over frame ids) from the frames that have one. When no frame of a
    track has one, its translation is zero and :attr:`RootTranslation.estimated` is False.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pare_studio.results import TrackResult, VideoResult

#: Horizontal field of view assumed when no focal length is given, degrees.
DEFAULT_FOV_DEG = 60.0


@dataclass(frozen=True)
class CameraIntrinsics:
    """The assumed pinhole camera of the original video.

    width, height : image size, pixels. focal_px : focal length, pixels (square pixels, centred
    principal point).
    """

    width: float
    height: float
    focal_px: float

    @property
    def yfov(self) -> float:
        """Vertical field of view, radians (glTF's ``camera.perspective.yfov``)."""
        return 2.0 * math.atan(self.height / (2.0 * self.focal_px))

    @property
    def aspect_ratio(self) -> float:
        return self.width / self.height


@dataclass(frozen=True)
class RootTranslation:
    """Per-frame translation of one track in the camera frame.

    trans : (n, 3) float64, metres, OpenCV camera axes (x right, y down, z forward); add it to
        the track's vertices (SMPL model frame) to place the body in front of the camera.
    valid : (n,) bool, frames whose translation came from their own camera (others were
        interpolated).
    estimated : False when no frame had a usable camera (then ``trans`` is all zeros).
    """

    trans: np.ndarray
    valid: np.ndarray
    estimated: bool


def focal_from_fov(width: float, fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Focal length in pixels of a camera with horizontal field of view ``fov_deg``."""
    if not 0.0 < fov_deg < 180.0:
        raise ValueError(f"field of view must be between 0 and 180 degrees, got {fov_deg}")
    return (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)


def estimate_image_size(track: TrackResult) -> tuple[float, float] | None:
    """(W, H) in pixels recovered from a track's cameras, or None when none is usable.

    Uses ``W = s·h/sx`` and ``H = s·h/sy`` (spec §5.5: ``sx = s·h/W``, ``sy = s·h/H``), the
    median over frames with positive, finite values.
    """
    s = np.asarray(track.pred_cam, np.float64)[:, 0]
    h = np.asarray(track.bboxes, np.float64)[:, 2]
    sx = np.asarray(track.orig_cam, np.float64)[:, 0]
    sy = np.asarray(track.orig_cam, np.float64)[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = s * h / sx
        hh = s * h / sy
    ok = np.isfinite(w) & np.isfinite(hh) & (w > 0) & (hh > 0) & (sx > 0) & (sy > 0)
    if not ok.any():
        return None
    return float(np.median(w[ok])), float(np.median(hh[ok]))


def camera_intrinsics(
    result: VideoResult,
    image_size: tuple[float, float] | None = None,
    focal_length: float | None = None,
    fov_deg: float = DEFAULT_FOV_DEG,
) -> CameraIntrinsics | None:
    """The camera used for root translations of ``result``'s tracks.

    Parameters
    ----------
    result : the video's tracks; its ``width`` / ``height`` are used when set (> 0).
    image_size : (W, H) override, pixels.
    focal_length : focal length in pixels; None derives it from ``fov_deg``.
    fov_deg : assumed horizontal field of view, degrees.

    Returns
    -------
    The intrinsics, or None when the image size is unknown and no track's cameras give it.
    """
    if image_size is not None:
        width, height = (float(v) for v in image_size)
    elif result.width > 0 and result.height > 0:
        width, height = float(result.width), float(result.height)
    else:
        sizes = [estimate_image_size(t) for t in result.tracks.values() if len(t)]
        sizes = [s for s in sizes if s is not None]
        if not sizes:
            return None
        width = float(np.median([s[0] for s in sizes]))
        height = float(np.median([s[1] for s in sizes]))
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"image size must be positive, got {width} x {height}")
    focal = float(focal_length) if focal_length is not None else focal_from_fov(width, fov_deg)
    if not (focal > 0 and math.isfinite(focal)):
        raise ValueError(f"focal length must be a positive number of pixels, got {focal_length}")
    return CameraIntrinsics(width, height, focal)


def translation_from_orig_cam(
    orig_cam: np.ndarray, width: float, focal_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``T = (tx, ty, 2·f/(W·sx))`` (module docstring), no gap filling.

    Parameters
    ----------
    orig_cam : (n, 4) ``(sx, sy, tx, ty)`` original-image weak-perspective cameras.
    width : image width, pixels. focal_px : focal length, pixels.

    Returns
    -------
    trans : (n, 3) float64, metres (rows of unusable frames are NaN). valid : (n,) bool.
    """
    cam = np.asarray(orig_cam, np.float64)
    if cam.ndim != 2 or cam.shape[1] != 4:
        raise ValueError(f"orig_cam must be (n, 4), got {cam.shape}")
    sx, tx, ty = cam[:, 0], cam[:, 2], cam[:, 3]
    valid = np.isfinite(cam).all(axis=1) & (sx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tz = 2.0 * focal_px / (width * sx)
    trans = np.stack((tx, ty, tz), axis=1)
    trans[~valid] = np.nan
    return trans, valid


def root_translation(track: TrackResult, camera: CameraIntrinsics | None) -> RootTranslation:
    """The track's camera-frame translation, gaps interpolated (module docstring).

    ``camera`` None (image size unknown) gives zeros with ``estimated=False``.
    """
    n = len(track)
    if camera is None or n == 0:
        return RootTranslation(np.zeros((n, 3)), np.zeros(n, bool), False)
    trans, valid = translation_from_orig_cam(track.orig_cam, camera.width, camera.focal_px)
    if not valid.any():
        return RootTranslation(np.zeros((n, 3)), valid, False)
    if not valid.all():
        t = np.asarray(track.frame_ids, np.float64)
        for c in range(3):
            trans[~valid, c] = np.interp(t[~valid], t[valid], trans[valid, c])
    return RootTranslation(trans, valid, True)
