"""Occlusion sensitivity of PARE (spec §7): occluders on a crop, one probe, a grid sweep.

Geometry
    Everything is in pixels of the 224x224 network crop. :class:`OccluderRect` ``(x, y, w, h)``
    is clipped to the crop; a zero-size rectangle occludes nothing. The reference's grid
    (:func:`grid_windows`): ``grid = ceil((224 - size) / stride + 1)`` positions per axis (6 for
    size 40, stride 40), window ``[i * stride, min(224, i * stride + size))`` on each axis (the
    last row / column of the 40/40 grid is 24 px), row-major (row = y, column = x).

Fill (:func:`occlude`), applied to the *normalised* crop as the reference does
    ``"mean"``: value 0 in normalised space = the ImageNet mean colour (the reference's
    ``--pixel 0``); ``"black"``: the normalised value of RGB 0; ``"noise"``: uniform RGB noise in
    [0, 1], normalised; a number: that value in normalised space (the reference's ``--pixel``).

Probe and sweep
    :func:`compute_baseline` runs PARE on the unoccluded crop once. :func:`probe` occludes one
    rectangle, runs one forward pass at batch 1 and measures every joint's displacement from the
    baseline (and the errors against ground truth when given). :func:`iter_sweep` runs the whole
    grid in batches as a generator yielding :class:`~pare_studio.results.Progress`, checking a
    :class:`~pare_studio.cancel.CancelToken` between batches, and returns a :class:`SweepResult`
    with ``(rows, cols, 14)`` heatmaps in mm. Errors are described in
    :mod:`pare_studio.analysis.occlusion_errors`.

Threads
    Nothing here holds global state: probes and sweeps may run on a worker thread (one at a time
    per predictor; the predictor itself is not meant for concurrent calls). Results are plain
    numpy and immutable.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pare_studio.analysis.occlusion_errors import (
    GroundTruth,
    PredictionJoints,
    check_regressor,
    displacement_mm,
)
from pare_studio.cancel import CancelToken
from pare_studio.core.constants import IMAGENET_MEAN, IMAGENET_STD, IMG_RES, J14_NAMES
from pare_studio.errors import InputArrayError
from pare_studio.results import PareOutput, Progress

#: Named fills (a float is also accepted: a value in normalised space).
FILLS: tuple[str, ...] = ("mean", "black", "noise")
#: Progress stage name of a sweep.
STAGE = "occlusion"
#: The reference's defaults.
DEFAULT_SIZE = 40
DEFAULT_STRIDE = 40

Fill = str | float

_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
_STD = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)


class OcclusionPredictor(Protocol):
    """What the analysis needs of a predictor (:class:`~pare_studio.core.predictor.ParePredictor`
    or a stand-in): ``predict((N, 3, 224, 224) float32 normalised, batch_size) -> PareOutput``."""

    def predict(self, images: np.ndarray, batch_size: int = 16) -> PareOutput: ...


# ---------------------------------------------------------------------------------- geometry


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputArrayError(f"occluder {name} must be a whole number of pixels, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class OccluderRect:
    """An axis-aligned occluder in crop pixels: columns ``x .. x + w - 1``, rows ``y .. y + h - 1``.

    ``x`` / ``y`` may be negative or beyond the crop (the rectangle is clipped where used);
    ``w`` / ``h`` are >= 0 (0 = no occlusion).
    """

    x: int
    y: int
    w: int
    h: int

    def __post_init__(self) -> None:
        for name in ("x", "y", "w", "h"):
            object.__setattr__(self, name, _as_int(name, getattr(self, name)))
        if self.w < 0 or self.h < 0:
            raise InputArrayError(f"occluder size must be >= 0, got w={self.w}, h={self.h}")

    @classmethod
    def from_float(cls, x: float, y: float, w: float, h: float) -> OccluderRect:
        """From a floating rectangle (e.g. a GUI ROI): edges rounded to the nearest pixel edge."""
        vals = (float(x), float(y), float(w), float(h))
        if not all(math.isfinite(v) for v in vals):
            raise InputArrayError(f"occluder rectangle must be finite, got {vals}")
        x0, y0 = round(vals[0]), round(vals[1])
        x1, y1 = round(vals[0] + max(vals[2], 0.0)), round(vals[1] + max(vals[3], 0.0))
        return cls(x0, y0, x1 - x0, y1 - y0)

    @property
    def x1(self) -> int:
        """One past the last column."""
        return self.x + self.w

    @property
    def y1(self) -> int:
        """One past the last row."""
        return self.y + self.h

    @property
    def is_empty(self) -> bool:
        return self.w == 0 or self.h == 0

    @property
    def area(self) -> int:
        return self.w * self.h

    def clipped(self, res: int = IMG_RES) -> OccluderRect:
        """The part inside the ``res x res`` crop (an empty rectangle when none is)."""
        x0, x1 = min(max(self.x, 0), res), min(max(self.x1, 0), res)
        y0, y1 = min(max(self.y, 0), res), min(max(self.y1, 0), res)
        if x1 <= x0 or y1 <= y0:
            return OccluderRect(x0, y0, 0, 0)
        return OccluderRect(x0, y0, x1 - x0, y1 - y0)

    def scaled(self, factor: float) -> OccluderRect:
        """The rectangle on an image ``factor`` times the crop's size (edges rounded)."""
        f = float(factor)
        return OccluderRect.from_float(self.x * f, self.y * f, self.w * f, self.h * f)

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(x, y, w, h)``."""
        return (self.x, self.y, self.w, self.h)


def grid_shape(size: int = DEFAULT_SIZE, stride: int = DEFAULT_STRIDE, res: int = IMG_RES) -> int:
    """Positions per axis of the reference's grid: ``ceil((res - size) / stride + 1)``."""
    size, stride = _as_int("size", size), _as_int("stride", stride)
    if not 1 <= size <= res:
        raise InputArrayError(f"occluder size must be 1..{res} pixels, got {size}")
    if stride < 1:
        raise InputArrayError(f"occluder stride must be >= 1 pixel, got {stride}")
    return int(math.ceil((res - size) / stride + 1))


def grid_windows(
    size: int = DEFAULT_SIZE, stride: int = DEFAULT_STRIDE, res: int = IMG_RES
) -> list[OccluderRect]:
    """The reference's occluder windows, row-major: ``grid x grid`` rectangles.

    Window ``(r, c)`` covers rows ``[r * stride, min(res, r * stride + size))`` and columns
    ``[c * stride, min(res, c * stride + size))``.
    """
    g = grid_shape(size, stride, res)
    spans = [(i * stride, min(res, i * stride + size)) for i in range(g)]
    return [OccluderRect(x0, y0, x1 - x0, y1 - y0) for (y0, y1) in spans for (x0, x1) in spans]


def windows_array(windows: Sequence[OccluderRect], grid: int | None = None) -> np.ndarray:
    """Windows as an int64 array of ``(x, y, w, h)`` rows: (n, 4), or (grid, grid, 4)."""
    arr = np.array([w.as_tuple() for w in windows], dtype=np.int64).reshape(-1, 4)
    return arr if grid is None else arr.reshape(grid, grid, 4)


# -------------------------------------------------------------------------------------- fill


def check_crop(crop: np.ndarray, res: int = IMG_RES) -> np.ndarray:
    """A normalised crop (3, res, res) as float32 (not copied when it already is)."""
    if not isinstance(crop, np.ndarray) or crop.shape != (3, res, res):
        shape = getattr(crop, "shape", type(crop).__name__)
        raise InputArrayError(f"crop must be a (3, {res}, {res}) normalised array, got {shape}")
    if not np.issubdtype(crop.dtype, np.floating):
        raise InputArrayError(f"crop must be float (ImageNet-normalised), got {crop.dtype}")
    return np.asarray(crop, dtype=np.float32)


def check_fill(fill: Fill) -> Fill:
    """``fill`` validated: one of :data:`FILLS` or a finite number (normalised space)."""
    if isinstance(fill, str):
        if fill not in FILLS:
            raise InputArrayError(f"unknown occluder fill {fill!r}: use one of {', '.join(FILLS)}")
        return fill
    if isinstance(fill, bool) or not isinstance(fill, (int, float, np.floating, np.integer)):
        raise InputArrayError(f"occluder fill must be {', '.join(FILLS)} or a number, got {fill!r}")
    if not math.isfinite(float(fill)):
        raise InputArrayError(f"occluder fill value must be finite, got {fill}")
    return float(fill)


def black_value() -> np.ndarray:
    """(3, 1, 1) float32: RGB 0 normalised, ``(0 - mean) / std`` (float32 as the crops)."""
    return (np.float32(0.0) - _MEAN) / _STD


def fill_pixels(fill: Fill, h: int, w: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """The occluder's pixels, (3, h, w) float32 normalised (or a broadcastable (3, 1, 1) / scalar).

    ``rng`` is used by ``"noise"`` only (a fresh unseeded generator when None).
    """
    fill = check_fill(fill)
    if fill == "mean":
        return np.zeros((1, 1, 1), np.float32)
    if fill == "black":
        return black_value()
    if fill == "noise":
        gen = rng if rng is not None else np.random.default_rng()
        rgb = gen.random((3, h, w), dtype=np.float32)
        return (rgb - _MEAN) / _STD
    return np.full((1, 1, 1), fill, np.float32)


def occlude(
    crop: np.ndarray,
    rect: OccluderRect,
    fill: Fill = "mean",
    rng: np.random.Generator | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The crop with ``rect`` (clipped to the crop) filled.

    Parameters
    ----------
    crop : (3, 224, 224) float32, ImageNet-normalised.
    rect : the occluder; an empty one leaves the crop unchanged.
    fill : see the module docstring.
    rng : random generator for ``"noise"``.
    out : optional (3, 224, 224) float32 buffer (may be ``crop`` itself to fill in place).

    Returns
    -------
    (3, 224, 224) float32, a new array unless ``out`` is given; pixels outside ``rect`` are
    exactly those of ``crop``.
    """
    src = check_crop(crop)
    res = src.shape[1]
    if out is None:
        out = src.copy()
    elif out is not src:
        np.copyto(out, src)
    r = rect.clipped(res)
    if not r.is_empty:
        out[:, r.y : r.y1, r.x : r.x1] = fill_pixels(fill, r.h, r.w, rng)
    return out


def occlude_grid(
    crop: np.ndarray,
    size: int = DEFAULT_SIZE,
    stride: int = DEFAULT_STRIDE,
    fill: Fill = "mean",
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, list[OccluderRect]]:
    """Every grid position's occluded crop at once.

    Returns
    -------
    images : (G*G, 3, 224, 224) float32, row-major over the grid.
    windows : the G*G :class:`OccluderRect` (see :func:`grid_windows`).
    """
    src = check_crop(crop)
    windows = grid_windows(size, stride, src.shape[1])
    images = np.empty((len(windows), *src.shape), np.float32)
    for k, win in enumerate(windows):
        occlude(src, win, fill, rng, out=images[k])
    return images, windows


# ---------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Baseline:
    """PARE on the unoccluded crop: what probes and sweeps compare against.

    Attributes
    ----------
    crop : (3, 224, 224) float32, normalised.
    output : PareOutput of 1 crop.
    joints : PredictionJoints of that prediction (1 row).
    j_regressor_h36m : (17, 6890) float64 or None (see :mod:`occlusion_errors`).
    gt : ground truth of the crop, or None.
    mpjpe, pampjpe : (14,) float64 mm, the unoccluded errors vs ground truth (None without it).
    """

    crop: np.ndarray
    output: PareOutput
    joints: PredictionJoints
    j_regressor_h36m: np.ndarray | None = None
    gt: GroundTruth | None = None
    mpjpe: np.ndarray | None = None
    pampjpe: np.ndarray | None = None

    @property
    def joint_source(self) -> str:
        return self.joints.source


@dataclass(frozen=True)
class ProbeResult:
    """One occluder position.

    Attributes
    ----------
    rect : the occluder as applied (clipped to the crop).
    fill : the fill used.
    output : PareOutput of the occluded crop (1 row).
    joints14 : (14, 3) float64 metres, pelvis-aligned.
    displacement : (14,) float64 mm, each joint's distance from the unoccluded prediction.
    displacement49 : (49,) float64 mm, the same for PARE's 49 joints.
    mpjpe, pampjpe : (14,) float64 mm vs ground truth, or None without it.
    baseline : the unoccluded prediction compared against.
    seconds : wall time of occlude + forward + errors.
    """

    rect: OccluderRect
    fill: Fill
    output: PareOutput
    joints14: np.ndarray
    displacement: np.ndarray
    displacement49: np.ndarray
    mpjpe: np.ndarray | None
    pampjpe: np.ndarray | None
    baseline: Baseline
    seconds: float = 0.0

    @property
    def mean_displacement(self) -> float:
        """Mean of :attr:`displacement` over the 14 joints, mm."""
        return float(self.displacement.mean())

    def vertex_displacement(self) -> np.ndarray:
        """(6890,) float32 mm: each vertex's distance from the unoccluded mesh (model frame)."""
        d = self.output.smpl_vertices[0] - self.baseline.output.smpl_vertices[0]
        return (np.sqrt((d.astype(np.float64) ** 2).sum(axis=-1)) * 1000.0).astype(np.float32)


@dataclass(frozen=True)
class SweepResult:
    """A full grid sweep of one crop.

    Attributes
    ----------
    size, stride : the occluder's side and step, crop pixels.
    fill : the fill used.
    windows : (rows, cols, 4) int64 ``(x, y, w, h)`` crop pixels of each position.
    displacement : (rows, cols, 14) float64 mm vs the unoccluded prediction.
    displacement49 : (rows, cols, 49) float64 mm, PARE's 49 joints.
    mpjpe, pampjpe : (rows, cols, 14) float64 mm vs ground truth, or None without it.
    baseline : the unoccluded prediction (and its errors).
    outputs : PareOutput of every position, row-major (``keep_outputs=True``), else None.
    seconds : wall time of the sweep.
    """

    size: int
    stride: int
    fill: Fill
    windows: np.ndarray
    displacement: np.ndarray
    displacement49: np.ndarray
    mpjpe: np.ndarray | None
    pampjpe: np.ndarray | None
    baseline: Baseline
    outputs: PareOutput | None = None
    seconds: float = 0.0

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return int(self.windows.shape[0]), int(self.windows.shape[1])

    @property
    def kinds(self) -> tuple[str, ...]:
        """Error kinds present: mpjpe, pampjpe and displacement, or displacement only."""
        return ("mpjpe", "pampjpe", "displacement") if self.mpjpe is not None else ("displacement",)

    def heatmaps(self) -> dict[str, np.ndarray]:
        """``{kind: (rows, cols, 14) float64 mm}`` for each kind in :attr:`kinds`."""
        return {k: getattr(self, k) for k in self.kinds}

    def heatmap(self, kind: str = "displacement", joint: int | str | None = None) -> np.ndarray:
        """(rows, cols) float64 mm: one joint's map (index or :data:`J14_NAMES` name), or the
        mean over the 14 joints when ``joint`` is None."""
        if kind not in self.kinds:
            raise InputArrayError(
                f"no {kind!r} heatmap in this sweep (has: {', '.join(self.kinds)})"
            )
        maps = getattr(self, kind)
        if joint is None:
            return maps.mean(axis=-1)
        if isinstance(joint, str):
            if joint not in J14_NAMES:
                raise InputArrayError(f"unknown joint {joint!r}: use one of {', '.join(J14_NAMES)}")
            joint = J14_NAMES.index(joint)
        return maps[..., int(joint)]

    def mean_heatmap(self, kind: str = "displacement") -> np.ndarray:
        """(rows, cols) float64 mm, the mean over the 14 joints."""
        return self.heatmap(kind, None)


# ------------------------------------------------------------------------------ probe, sweep


def _regressor_for(
    j_regressor_h36m: np.ndarray | None, gt: GroundTruth | None
) -> np.ndarray | None:
    if gt is not None:
        if j_regressor_h36m is not None and not np.array_equal(
            check_regressor(j_regressor_h36m), gt.j_regressor_h36m
        ):
            raise InputArrayError("j_regressor_h36m differs from the ground truth's regressor")
        return gt.j_regressor_h36m
    return check_regressor(j_regressor_h36m)


def _predict(predictor: OcclusionPredictor, images: np.ndarray) -> PareOutput:
    out = predictor.predict(images, batch_size=max(1, len(images)))
    if len(out) != len(images):
        raise RuntimeError(f"predictor returned {len(out)} results for {len(images)} crops")
    return out


def _measure(
    out: PareOutput, baseline: Baseline
) -> tuple[PredictionJoints, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Joints and errors of N predictions vs the baseline (and its ground truth)."""
    joints = PredictionJoints.of(out, baseline.j_regressor_h36m)
    disp = displacement_mm(joints.joints14, baseline.joints.joints14[0])
    disp49 = displacement_mm(joints.joints49, baseline.joints.joints49[0])
    if baseline.gt is None:
        return joints, disp, disp49, None, None
    mp, pa = baseline.gt.errors(joints.joints14)
    return joints, disp, disp49, mp, pa


def _baseline_from_output(
    crop: np.ndarray,
    out: PareOutput,
    j_regressor_h36m: np.ndarray | None,
    gt: GroundTruth | None,
) -> Baseline:
    joints = PredictionJoints.of(out, j_regressor_h36m)
    mp = pa = None
    if gt is not None:
        mp_n, pa_n = gt.errors(joints.joints14)
        mp, pa = mp_n[0], pa_n[0]
    return Baseline(crop, out, joints, j_regressor_h36m, gt, mp, pa)


def compute_baseline(
    predictor: OcclusionPredictor,
    crop: np.ndarray,
    j_regressor_h36m: np.ndarray | None = None,
    gt: GroundTruth | None = None,
) -> Baseline:
    """Run PARE once on the unoccluded crop.

    Parameters
    ----------
    predictor : ``predict(images, batch_size) -> PareOutput``.
    crop : (3, 224, 224) float32 normalised.
    j_regressor_h36m : (17, 6890) regressor of the 14 evaluation joints, or None (the 14 come
        from PARE's 49 joints then). Taken from ``gt`` when that is given.
    gt : ground truth of the crop for the MPJPE / PA-MPJPE mode, or None.
    """
    src = check_crop(crop).copy()
    reg = _regressor_for(j_regressor_h36m, gt)
    return _baseline_from_output(src, _predict(predictor, src[None]), reg, gt)


def probe(
    predictor: OcclusionPredictor,
    crop: np.ndarray,
    rect: OccluderRect,
    fill: Fill = "mean",
    *,
    baseline: Baseline | None = None,
    j_regressor_h36m: np.ndarray | None = None,
    gt: GroundTruth | None = None,
    rng: np.random.Generator | None = None,
) -> ProbeResult:
    """One occluder on one crop: one forward pass at batch 1 (plus the baseline's if not given).

    Parameters
    ----------
    predictor : ``predict(images, batch_size) -> PareOutput``.
    crop : (3, 224, 224) float32 normalised (the baseline's crop when ``baseline`` is given).
    rect : the occluder in crop pixels (clipped); empty = no occlusion.
    fill : "mean", "black", "noise" or a normalised value.
    baseline : from :func:`compute_baseline` (compute it once per crop and reuse it: a live
        probe then costs one forward pass). Computed here when None.
    j_regressor_h36m, gt : used to compute the baseline; must be None when ``baseline`` is given
        (the baseline carries them).
    rng : random generator for the noise fill.
    """
    t0 = time.perf_counter()
    src = check_crop(crop)
    if baseline is None:
        baseline = compute_baseline(predictor, src, j_regressor_h36m, gt)
    else:
        if j_regressor_h36m is not None or gt is not None:
            raise InputArrayError(
                "pass j_regressor_h36m / gt to compute_baseline, not with a baseline"
            )
        if src is not baseline.crop and not np.array_equal(src, baseline.crop):
            raise InputArrayError("the crop differs from the baseline's crop")
    rect_c = rect.clipped(src.shape[1])
    image = occlude(src, rect_c, fill, rng)
    out = _predict(predictor, image[None])
    joints, disp, disp49, mp, pa = _measure(out, baseline)
    return ProbeResult(
        rect=rect_c,
        fill=check_fill(fill),
        output=out,
        joints14=joints.joints14[0],
        displacement=disp[0],
        displacement49=disp49[0],
        mpjpe=None if mp is None else mp[0],
        pampjpe=None if pa is None else pa[0],
        baseline=baseline,
        seconds=time.perf_counter() - t0,
    )


def _batches(n: int, batch_size: int) -> list[tuple[int, int]]:
    """``n`` items in ``ceil(n / batch_size)`` batches of near-equal size, as (start, stop)."""
    if n == 0:
        return []
    k = -(-n // batch_size)
    edges = [-(-i * n // k) for i in range(k + 1)]  # ceil: larger batches first
    return [(edges[i], edges[i + 1]) for i in range(k)]


def iter_sweep(
    predictor: OcclusionPredictor,
    crop: np.ndarray,
    size: int = DEFAULT_SIZE,
    stride: int = DEFAULT_STRIDE,
    fill: Fill = "mean",
    batch_size: int = 16,
    cancel: CancelToken | None = None,
    gt: GroundTruth | None = None,
    *,
    baseline: Baseline | None = None,
    j_regressor_h36m: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    keep_outputs: bool = False,
) -> Generator[Progress, None, SweepResult]:
    """Run every grid position in batches.

    When ``baseline`` is None the unoccluded crop rides in the first batch (G*G + 1 crops in
    ``ceil((G*G + 1) / batch_size)`` batches of near-equal size).

    Parameters
    ----------
    predictor : ``predict(images, batch_size) -> PareOutput``.
    crop : (3, 224, 224) float32 normalised.
    size, stride : occluder side and step, crop pixels (reference: 40, 40 -> 6 x 6 grid).
    fill : "mean" (reference), "black", "noise" or a normalised value.
    batch_size : crops per forward pass (>= 1).
    cancel : checked before every batch; raises :class:`~pare_studio.errors.Cancelled`.
    gt : ground truth for the MPJPE / PA-MPJPE heatmaps (None: displacement only).
    baseline : a precomputed :func:`compute_baseline` of this crop (then ``gt`` and
        ``j_regressor_h36m`` must be None; the baseline's are used).
    j_regressor_h36m : regressor of the 14 evaluation joints for the displacement (see
        :mod:`pare_studio.analysis.occlusion_errors`).
    rng : random generator for the noise fill (windows draw from it in row-major order).
    keep_outputs : keep every position's PareOutput in the result (for figures).

    Yields
    ------
    Progress : stage :data:`STAGE`; ``done`` / ``total`` crops run (total = G*G, + 1 when the
        baseline is computed here); first with ``done = 0``, then after every batch.

    Returns
    -------
    SweepResult
    """
    t0 = time.perf_counter()
    src = check_crop(crop)
    fill = check_fill(fill)
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise InputArrayError(f"batch_size must be a positive integer, got {batch_size!r}")
    windows = grid_windows(size, stride, src.shape[1])
    g = grid_shape(size, stride, src.shape[1])
    if baseline is not None:
        if j_regressor_h36m is not None or gt is not None:
            raise InputArrayError(
                "pass j_regressor_h36m / gt to compute_baseline, not with a baseline"
            )
        if src is not baseline.crop and not np.array_equal(src, baseline.crop):
            raise InputArrayError("the crop differs from the baseline's crop")
        reg = baseline.j_regressor_h36m
    else:
        reg = _regressor_for(j_regressor_h36m, gt)
    cancel = cancel or CancelToken()
    # Job k: None = the unoccluded crop, else a window.
    jobs: list[OccluderRect | None] = ([] if baseline is not None else [None]) + list(windows)
    total = len(jobs)
    yield Progress(STAGE, 0, total)

    outs: list[PareOutput] = []
    disp: list[np.ndarray] = []
    disp49: list[np.ndarray] = []
    mps: list[np.ndarray] = []
    pas: list[np.ndarray] = []
    for start, stop in _batches(total, int(batch_size)):
        cancel.check()
        batch = np.empty((stop - start, *src.shape), np.float32)
        for k, job in enumerate(jobs[start:stop]):
            if job is None:
                batch[k] = src
            else:
                occlude(src, job, fill, rng, out=batch[k])
        out = _predict(predictor, batch)
        first = 0
        if baseline is None:
            baseline = _baseline_from_output(src.copy(), out[0], reg, gt)
            first = 1
        if first < len(out):
            occluded = out[first:]
            _j, d, d49, mp, pa = _measure(occluded, baseline)
            disp.append(d)
            disp49.append(d49)
            if mp is not None and pa is not None:
                mps.append(mp)
                pas.append(pa)
            if keep_outputs:
                outs.append(occluded)
        yield Progress(STAGE, stop, total)
    assert baseline is not None  # at least one batch ran (total >= 1)

    def grid(parts: list[np.ndarray]) -> np.ndarray:
        arr = np.concatenate(parts)
        return arr.reshape(g, g, arr.shape[-1])

    return SweepResult(
        size=int(size),
        stride=int(stride),
        fill=fill,
        windows=windows_array(windows, g),
        displacement=grid(disp),
        displacement49=grid(disp49),
        mpjpe=grid(mps) if mps else None,
        pampjpe=grid(pas) if pas else None,
        baseline=baseline,
        outputs=PareOutput.concatenate(outs) if keep_outputs else None,
        seconds=time.perf_counter() - t0,
    )


def sweep(*args: object, **kwargs: object) -> SweepResult:
    """Run :func:`iter_sweep` to the end (same arguments) and return its result."""
    gen = iter_sweep(*args, **kwargs)  # type: ignore[arg-type]
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
