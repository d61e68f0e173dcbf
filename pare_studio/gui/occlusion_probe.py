"""The occlusion panel's engine-side half: plain requests / replies and the probe handler (no Qt).

The panel's controller (GUI thread) builds a :class:`ProbeRequest` or :class:`SweepRequest` with an
id taken from one increasing counter and posts it with ``InferenceEngine.request_probe`` (a
one-slot "latest request wins" mailbox). The engine thread runs :class:`OcclusionProbeHandler`
on it with the engine's predictor and emits the returned :class:`ProbeReply` / :class:`SweepReply`
through ``probe_finished``; the controller drops replies older than its newest request.

The handler never raises: errors (and a cancelled sweep) come back inside the reply, so the
controller always learns that its request ended.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pare_studio.analysis.occlusion import (
    Baseline,
    Fill,
    OccluderRect,
    ProbeResult,
    SweepResult,
    compute_baseline,
    iter_sweep,
    probe,
)
from pare_studio.cancel import CancelToken
from pare_studio.errors import Cancelled, PareStudioError

log = logging.getLogger(__name__)

#: Baselines the handler keeps (engine thread), most recent first out.
HANDLER_BASELINES = 4

#: ``on_progress(request id, done, total)``, called in the engine thread.
ProgressCallback = Callable[[int, int, int], None]


@dataclass(frozen=True)
class CropKey:
    """Which crop: one track at one frame, with the box the crop was cut from.

    bbox : ``(cx, cy, w, h)`` pixels (an edited box is another crop).
    """

    track_id: int
    frame: int
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True, eq=False)
class OcclusionCrop:
    """The crop the panel works on.

    crop : (3, 224, 224) float32, ImageNet-normalised (the network input).
    rgb : (224, 224, 3) uint8 RGB, the same crop for display.
    frame_size : (width, height) of the video frame, pixels.
    """

    key: CropKey
    crop: np.ndarray = field(repr=False)
    rgb: np.ndarray = field(repr=False)
    frame_size: tuple[int, int]


@dataclass(frozen=True, eq=False)
class ProbeRequest:
    """One occluder position to run.

    rect : occluder in crop pixels; fill : "mean", "black", "noise" or a normalised value.
    baseline : the crop's unoccluded prediction when the controller already has it, else None
        (the handler computes it once per crop).
    assets : the model files (``engine_jobs.ModelAssets``) the engine's predictor was loaded from
        (the controller has the engine preload them); the handler reads ``J_regressor_h36m.npy``
        from their SMPL folder.
    seed : noise-fill seed (the same rectangle gives the same noise).
    """

    id: int
    crop: OcclusionCrop = field(repr=False)
    rect: OccluderRect
    fill: Fill = "mean"
    baseline: Baseline | None = field(default=None, repr=False)
    assets: Any = field(default=None, repr=False)
    seed: int = 0

    @property
    def key(self) -> CropKey:
        return self.crop.key


@dataclass(frozen=True, eq=False)
class SweepRequest:
    """A full grid sweep (:func:`~pare_studio.analysis.occlusion.iter_sweep`) of one crop.

    size, stride : occluder side and step, crop pixels; batch_size : crops per forward pass.
    token : cancels the sweep between batches (set from the GUI thread).
    on_progress : ``(id, done, total)`` after every batch, called in the engine thread.
    """

    id: int
    crop: OcclusionCrop = field(repr=False)
    size: int
    stride: int
    fill: Fill = "mean"
    batch_size: int = 12
    baseline: Baseline | None = None
    token: CancelToken | None = None
    on_progress: ProgressCallback | None = None
    assets: Any = None
    seed: int = 0

    @property
    def key(self) -> CropKey:
        return self.crop.key


@dataclass(frozen=True, eq=False)
class ProbeReply:
    """The answer to a :class:`ProbeRequest`.

    result : the probe (None on error).
    orig_cam : (4,) float64 ``(sx, sy, tx, ty)`` of the occluded prediction in the video frame.
    baseline_orig_cam : (4,) float64, the same for the unoccluded prediction.
    attention : (24, 56, 56) float32 part-attention maps of the occluded crop (each sums to 1).
    error : a message when the probe failed ("" otherwise).
    seconds : handler wall time, including a baseline computed on the way.
    """

    id: int
    key: CropKey
    result: ProbeResult | None = field(repr=False)
    orig_cam: np.ndarray | None = field(default=None, repr=False)
    baseline_orig_cam: np.ndarray | None = field(default=None, repr=False)
    attention: np.ndarray | None = field(default=None, repr=False)
    error: str = ""
    seconds: float = 0.0

    @property
    def baseline(self) -> Baseline | None:
        return None if self.result is None else self.result.baseline


@dataclass(frozen=True, eq=False)
class SweepReply:
    """The answer to a :class:`SweepRequest`: a result, or ``cancelled``, or an ``error``."""

    id: int
    key: CropKey
    result: SweepResult | None = field(repr=False)
    cancelled: bool = False
    error: str = ""
    seconds: float = 0.0


def frame_camera(
    pred_cam: np.ndarray, bbox: tuple[float, ...], frame_size: tuple[int, int]
) -> np.ndarray:
    """Crop camera ``(s, tx, ty)`` -> the frame's weak-perspective camera ``(sx, sy, tx, ty)``.

    pred_cam : (3,) float; bbox : ``(cx, cy, w, h)`` pixels; frame_size : (width, height).
    Returns (4,) float64 (the reference's ``convert_crop_cam_to_orig_img``).
    """
    from pare_studio.core.geometry import crop_cam_to_orig_cam

    w, h = frame_size
    cam = np.asarray(pred_cam, np.float64).reshape(1, 3)
    return crop_cam_to_orig_cam(
        cam, np.asarray(bbox, np.float64).reshape(1, 4), float(w), float(h)
    )[0]


class OcclusionProbeHandler:
    """``handler(predictor, request) -> reply``: installed with ``engine.set_probe_handler``.

    Runs in the engine thread only. Computes each crop's baseline once (kept for the last
    :data:`HANDLER_BASELINES` crops, per predictor) unless the request brings one, then runs
    :func:`probe` or the sweep. The 14 joints are those of ``J_regressor_h36m.npy`` when the
    assets' SMPL folder has it (as ``pare-studio occlusion``), else PARE's LSP joints.
    """

    def __init__(self) -> None:
        self._baselines: OrderedDict[tuple[int, CropKey], Baseline] = OrderedDict()
        self._regressors: dict[Path, np.ndarray | None] = {}

    def __call__(self, predictor: Any, request: Any) -> ProbeReply | SweepReply:
        if isinstance(request, ProbeRequest):
            return self._probe(predictor, request)
        if isinstance(request, SweepRequest):
            return self._sweep(predictor, request)
        raise TypeError(f"unknown occlusion request {type(request).__name__}")

    # -- internals (engine thread) ------------------------------------------------------------

    def _regressor(self, assets: Any) -> np.ndarray | None:
        smpl_dir = getattr(assets, "smpl_dir", None)
        if smpl_dir is None:
            return None
        path = Path(smpl_dir) / "J_regressor_h36m.npy"
        if path not in self._regressors:
            from pare_studio.core.smpl_io import load_j_regressor_h36m

            self._regressors[path] = load_j_regressor_h36m(path) if path.is_file() else None
        return self._regressors[path]

    def _baseline(self, predictor: Any, request: ProbeRequest | SweepRequest) -> Baseline:
        if request.baseline is not None:
            return request.baseline
        cache_key = (id(predictor), request.key)
        base = self._baselines.get(cache_key)
        if base is not None and not np.array_equal(base.crop, request.crop.crop):
            base = None  # same track, frame and box in another video
        if base is None:
            base = compute_baseline(
                predictor, request.crop.crop, j_regressor_h36m=self._regressor(request.assets)
            )
            self._baselines[cache_key] = base
            while len(self._baselines) > HANDLER_BASELINES:
                self._baselines.popitem(last=False)
        else:
            self._baselines.move_to_end(cache_key)
        return base

    def _probe(self, predictor: Any, req: ProbeRequest) -> ProbeReply:
        t0 = time.perf_counter()
        try:
            base = self._baseline(predictor, req)
            res = probe(
                predictor,
                base.crop,
                req.rect,
                req.fill,
                baseline=base,
                rng=np.random.default_rng(req.seed),
            )
            size = req.crop.frame_size
            return ProbeReply(
                id=req.id,
                key=req.key,
                result=res,
                orig_cam=frame_camera(res.output.pred_cam[0], req.key.bbox, size),
                baseline_orig_cam=frame_camera(base.output.pred_cam[0], req.key.bbox, size),
                attention=res.output.attention_maps()[0],
                seconds=time.perf_counter() - t0,
            )
        except PareStudioError as exc:
            return ProbeReply(
                req.id, req.key, None, error=str(exc), seconds=time.perf_counter() - t0
            )
        except Exception as exc:  # a bug: keep the window alive, say what happened
            log.error("occlusion probe failed\n%s", traceback.format_exc())
            return ProbeReply(
                req.id,
                req.key,
                None,
                error=f"Unexpected error: {type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - t0,
            )

    def _sweep(self, predictor: Any, req: SweepRequest) -> SweepReply:
        t0 = time.perf_counter()
        token = req.token or CancelToken()
        try:
            token.check()
            base = self._baseline(predictor, req)
            gen = iter_sweep(
                predictor,
                base.crop,
                size=req.size,
                stride=req.stride,
                fill=req.fill,
                batch_size=req.batch_size,
                cancel=token,
                baseline=base,
                rng=np.random.default_rng(req.seed),
            )
            try:
                while True:
                    try:
                        p = next(gen)
                    except StopIteration as stop:
                        result: SweepResult = stop.value
                        break
                    if req.on_progress is not None:
                        req.on_progress(req.id, int(p.done), int(p.total))
            finally:
                gen.close()
            return SweepReply(req.id, req.key, result, seconds=time.perf_counter() - t0)
        except Cancelled:
            return SweepReply(
                req.id, req.key, None, cancelled=True, seconds=time.perf_counter() - t0
            )
        except PareStudioError as exc:
            return SweepReply(
                req.id, req.key, None, error=str(exc), seconds=time.perf_counter() - t0
            )
        except Exception as exc:
            log.error("occlusion sweep failed\n%s", traceback.format_exc())
            return SweepReply(
                req.id,
                req.key,
                None,
                error=f"Unexpected error: {type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - t0,
            )
