"""Person detectors: YOLOv3 as the reference runs it, boxes from a MOTChallenge file, whole frame.

Every detector implements :class:`Detector`: ``detect(frames, frame_indices)`` takes a *batch* of
frames (RGB uint8 ``(H, W, 3)``; the pipeline streams a video through in batches of
``tracker_batch_size``, 12 by default, so a video is never held in memory) and returns, per frame,
a ``(k, 5)`` float32 array ``[x1, y1, x2, y2, score]`` in original-image pixels, in the reference's
order. These are the rows the SORT tracker takes (``pare_studio.pipeline.tracking``).

Detectors that already know track ids (a MOTChallenge file with ids ≥ 0) also implement
:class:`TrackedDetector`: ``detect_tracked`` returns the rows with their ids (−1 = untracked).

The YOLOv3 path follows ``shared/parity/yolov3/README.md`` step by step:

1. RGB → float32 ``/255``, CHW; pad to square with 0 (``diff//2`` top/left, the rest
   bottom/right); nearest resize to 416 as ``F.interpolate(mode="nearest")``.
2. Network → 10647 decoded rows ``[x, y, w, h, obj, cls×80]`` (:mod:`pare_studio.pipeline.yolo`).
3. Candidates ``obj ≥ 0.8``; sorted by ``obj·max(cls)`` descending; merging NMS (same class,
   IoU > 0.4 with the "+1 pixel" convention, corners replaced by the objectness-weighted mean).
4. Rescale to the frame with the reference's quirk (floor of half the *scaled* pad), no clipping.
5. Person class only; score = ``obj·class_conf``; the MPT keeps score > 0.7.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from pare_studio.errors import DetectorError

PERSON_CLASS = 0
#: The reference's settings (``MPT(..., yolo_img_size=416)``, YOLOv3 conf 0.8 / NMS 0.4, MPT 0.7).
YOLO_IMG_SIZE = 416
YOLO_CONF_THRES = 0.8
YOLO_NMS_THRES = 0.4
DETECTION_THRESHOLD = 0.7
TRACKER_BATCH_SIZE = 12


@runtime_checkable
class Detector(Protocol):
    """A person detector working on batches of frames.

    Attributes
    ----------
    needs_pixels : bool
        False when ``detect`` ignores the pixel data (a boxes file): the caller may then pass
        ``None`` for the frames and skip decoding them for detection.
    """

    needs_pixels: bool

    def detect(
        self, frames: Sequence[np.ndarray | None], frame_indices: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """Detect people in a batch of frames.

        Parameters
        ----------
        frames : sequence of (H, W, 3) uint8 RGB images (or None where ``needs_pixels`` is False)
        frame_indices : 0-based indices of these frames in the video (needed by file-based
            detectors; image detectors ignore them)

        Returns
        -------
        list of (k, 5) float32 ``[x1, y1, x2, y2, score]`` in pixels of the original frame,
        one per frame.
        """
        ...


@runtime_checkable
class TrackedDetector(Detector, Protocol):
    """A detector whose rows may carry track ids already (ids ≥ 0 kept, −1 = to be tracked)."""

    def detect_tracked(
        self, frames: Sequence[np.ndarray | None], frame_indices: Sequence[int]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame: ``(dets (k, 5) float32, ids (k,) int64)`` with −1 for untracked rows."""
        ...


def _check_frame(frame: np.ndarray | None, i: int) -> np.ndarray:
    if (
        not isinstance(frame, np.ndarray)
        or frame.ndim != 3
        or frame.shape[2] != 3
        or frame.dtype != np.uint8
        or frame.shape[0] < 1
        or frame.shape[1] < 1
    ):
        what = (
            "None"
            if frame is None
            else f"{getattr(frame, 'shape', '?')} {getattr(frame, 'dtype', '?')}"
        )
        raise DetectorError(f"frame {i}: expected an RGB uint8 image (H, W, 3), got {what}")
    return frame


# --------------------------------------------------------------------------------------------
# YOLOv3 pre- and post-processing (pure functions; the parity tests call them one by one)


@functools.lru_cache(maxsize=64)
def nearest_source_index(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output pixel of a nearest resize ``in_size → out_size``.

    Computed by ``torch.nn.functional.interpolate(mode="nearest")`` itself on a float32 ramp, so
    it is that function's rule (``floor(dst · in/out)`` in float32), not OpenCV's rounding.

    Returns
    -------
    (out_size,) int64
    """
    import torch
    import torch.nn.functional as F

    ramp = torch.arange(in_size, dtype=torch.float32).view(1, 1, 1, in_size)
    idx = F.interpolate(ramp, size=(1, out_size), mode="nearest").view(-1)
    out = idx.to(torch.int64).numpy()
    out.setflags(write=False)
    return out


def letterbox_nearest(frame: np.ndarray, img_size: int = YOLO_IMG_SIZE) -> np.ndarray:
    """Pad to square with 0 and nearest-resize to ``img_size``, on the uint8 image.

    Equal, pixel for pixel, to the reference's ``F.pad`` (``diff//2`` on top/left, the rest on
    the bottom/right; top/bottom when H ≤ W) followed by ``F.interpolate(mode="nearest")`` on
    the float image, since a nearest resize only picks pixels. Working on uint8 with an index
    map avoids building the padded float square.

    Parameters
    ----------
    frame : (H, W, 3) uint8
    img_size : network input size

    Returns
    -------
    (img_size, img_size, 3) uint8
    """
    h, w = frame.shape[:2]
    d = max(h, w)
    idx = nearest_source_index(d, img_size)
    rows, cols = idx.copy(), idx.copy()
    if h <= w:
        rows -= (w - h) // 2
    else:
        cols -= (h - w) // 2
    vr = (rows >= 0) & (rows < h)
    vc = (cols >= 0) & (cols < w)
    out = np.zeros((img_size, img_size, 3), dtype=np.uint8)
    out[np.ix_(vr, vc)] = frame[np.ix_(rows[vr], cols[vc])]
    return out


def preprocess_frames(frames: Sequence[np.ndarray], img_size: int = YOLO_IMG_SIZE, device=None):
    """Network input for a batch of frames: ``(N, 3, S, S)`` float32 torch tensor in [0, 1].

    Each frame is letterboxed (:func:`letterbox_nearest`) then divided by 255 in float32 (as
    ``to_tensor``); the uint8 batch is moved to ``device`` before the conversion.
    """
    import torch

    batch = np.stack(
        [letterbox_nearest(_check_frame(f, i), img_size) for i, f in enumerate(frames)]
    )
    t = torch.from_numpy(batch)
    if device is not None:
        t = t.to(device)
    return t.permute(0, 3, 1, 2).float().div(255)


def _iou_plus1(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one corner box with many, "+1 pixel" convention, float32 (reference's bbox_iou)."""
    ix1 = np.maximum(box[0], boxes[:, 0])
    iy1 = np.maximum(box[1], boxes[:, 1])
    ix2 = np.minimum(box[2], boxes[:, 2])
    iy2 = np.minimum(box[3], boxes[:, 3])
    one = np.float32(1)
    inter = np.maximum(ix2 - ix1 + one, np.float32(0)) * np.maximum(iy2 - iy1 + one, np.float32(0))
    a1 = (box[2] - box[0] + one) * (box[3] - box[1] + one)
    a2 = (boxes[:, 2] - boxes[:, 0] + one) * (boxes[:, 3] - boxes[:, 1] + one)
    return inter / (a1 + a2 - inter + np.float32(1e-16))


def candidate_mask(raw: np.ndarray, conf_thres: float = YOLO_CONF_THRES) -> np.ndarray:
    """Rows of one frame's decoded output that enter the NMS: ``obj ≥ conf_thres`` (inclusive).

    raw : (R, 85) float32 → (R,) bool
    """
    return raw[:, 4] >= np.float32(conf_thres)


def merge_nms(
    raw: np.ndarray, conf_thres: float = YOLO_CONF_THRES, nms_thres: float = YOLO_NMS_THRES
) -> np.ndarray:
    """The reference's merging NMS on one frame's decoded rows.

    Parameters
    ----------
    raw : (R, 85) float32 ``[x, y, w, h, obj, cls×80]``, pixels of the network input

    Returns
    -------
    (M, 7) float32 ``[x1, y1, x2, y2, obj, class_conf, class]`` in output order, network-input
    pixels. Each output box is the objectness-weighted mean of the corners of its group (the
    top candidate and every remaining one of the same class with IoU > ``nms_thres``).
    """
    rows = np.asarray(raw, dtype=np.float32)
    rows = rows[candidate_mask(rows, conf_thres)]
    if rows.shape[0] == 0:
        return np.zeros((0, 7), dtype=np.float32)
    cls_scores = rows[:, 5:]
    class_conf = cls_scores.max(axis=1)
    class_pred = cls_scores.argmax(axis=1).astype(np.float32)
    score = rows[:, 4] * class_conf
    order = np.argsort(-score, kind="stable")
    half_w = rows[:, 2] / np.float32(2)
    half_h = rows[:, 3] / np.float32(2)
    dets = np.stack(
        [
            rows[:, 0] - half_w,
            rows[:, 1] - half_h,
            rows[:, 0] + half_w,
            rows[:, 1] + half_h,
            rows[:, 4],
            class_conf,
            class_pred,
        ],
        axis=1,
    )[order]
    out = []
    thres = np.float32(nms_thres)
    while dets.shape[0]:
        top = dets[0]
        group = (_iou_plus1(top, dets[:, :4]) > thres) & (dets[:, 6] == top[6])
        group[0] = True
        weights = dets[group, 4:5]
        merged = top.copy()
        merged[:4] = (weights * dets[group, :4]).sum(axis=0) / weights.sum()
        out.append(merged)
        dets = dets[~group]
    return np.stack(out).astype(np.float32)


def rescale_boxes(dets: np.ndarray, img_size: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """Corners from network-input pixels to the original frame, with the reference's quirk.

    ``pad_x = max(H−W, 0)·S/max(H, W)`` (the *scaled* pad, a float), ``pad_y`` likewise;
    ``x' = (x − floor(pad_x/2)) / (S − pad_x) · W``. Not clipped. float32 arithmetic.

    dets : (M, ≥4) float32 (columns 0..3 are corners) → a rescaled copy
    """
    h, w = frame_hw
    pad_x = max(h - w, 0) * (img_size / max(h, w))
    pad_y = max(w - h, 0) * (img_size / max(h, w))
    unpad_w = np.float32(img_size - pad_x)
    unpad_h = np.float32(img_size - pad_y)
    off_x = np.float32(pad_x // 2)
    off_y = np.float32(pad_y // 2)
    out = np.array(dets, dtype=np.float32, copy=True)
    for c in (0, 2):
        out[:, c] = (out[:, c] - off_x) / unpad_w * np.float32(w)
    for c in (1, 3):
        out[:, c] = (out[:, c] - off_y) / unpad_h * np.float32(h)
    return out


@dataclass(frozen=True)
class YoloFrameResult:
    """The YOLOv3 stages for one frame (all float32, original-frame pixels).

    Attributes
    ----------
    frame_hw : (H, W) of the frame
    nms_all : (M, 7) merging-NMS output, all classes, rescaled:
        ``[x1, y1, x2, y2, obj, class_conf, class]``
    boxes : (D, 4) person boxes ``[x1, y1, x2, y2]`` in NMS order
    scores : (D,) ``obj · class_conf``
    kept : (D,) bool, ``score > detection threshold`` (what the MPT passes to SORT)
    raw : (R, 85) decoded network output ``[x, y, w, h, obj, cls×80]`` in network-input pixels,
        only when asked for (``YoloDetector.run(..., keep_raw=True)``), else None
    """

    frame_hw: tuple[int, int]
    nms_all: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    kept: np.ndarray
    raw: np.ndarray | None = None

    @property
    def detections(self) -> np.ndarray:
        """(k, 5) float32 ``[x1, y1, x2, y2, score]`` of the kept person boxes (the SORT input)."""
        return np.hstack([self.boxes, self.scores[:, None]])[self.kept].astype(np.float32)


def postprocess_frame(
    raw: np.ndarray,
    frame_hw: tuple[int, int],
    *,
    img_size: int = YOLO_IMG_SIZE,
    conf_thres: float = YOLO_CONF_THRES,
    nms_thres: float = YOLO_NMS_THRES,
    score_thres: float = DETECTION_THRESHOLD,
) -> YoloFrameResult:
    """Steps 4–9 of the parity README on one frame's decoded rows ``(R, 85)``."""
    nms_all = rescale_boxes(merge_nms(raw, conf_thres, nms_thres), img_size, frame_hw)
    person = nms_all[nms_all[:, 6] == PERSON_CLASS]
    boxes = np.ascontiguousarray(person[:, :4])
    scores = (person[:, 4] * person[:, 5]).astype(np.float32)
    kept = scores > np.float32(score_thres)
    return YoloFrameResult((int(frame_hw[0]), int(frame_hw[1])), nms_all, boxes, scores, kept)


class YoloDetector:
    """YOLOv3 person detector with the reference's preprocessing, thresholds and merging NMS.

    Parameters
    ----------
    weights : path of ``yolov3.weights``; None searches the asset store, PARE's ``./data`` and
        ``~/.torch/models`` (:func:`pare_studio.assets.resolve_yolo_weights`)
    device : torch device; None = CUDA when available, else CPU
    model : an already loaded :class:`~pare_studio.pipeline.yolo.DarknetYoloV3` (weights ignored)
    img_size, conf_thres, nms_thres, score_thres : the reference's 416, 0.8, 0.4, 0.7
    batch_size : frames per detection batch (the reference's ``tracker_batch_size``, 12)
    forward_batch : at most this many frames per network forward (None: ``batch_size`` on a GPU,
        4 on the CPU, where activations take about 65 MB per frame at 416 and bigger forwards
        are not faster). Results do not depend on it beyond float noise (≤ 1e-7).
    """

    needs_pixels = True

    def __init__(
        self,
        weights: str | os.PathLike[str] | None = None,
        *,
        device=None,
        model=None,
        img_size: int = YOLO_IMG_SIZE,
        conf_thres: float = YOLO_CONF_THRES,
        nms_thres: float = YOLO_NMS_THRES,
        score_thres: float = DETECTION_THRESHOLD,
        batch_size: int = TRACKER_BATCH_SIZE,
        forward_batch: int | None = None,
    ) -> None:
        from pare_studio.pipeline.yolo import default_device, load_yolov3

        if img_size % 32 or img_size <= 0:
            raise DetectorError(
                f"YOLO image size must be a positive multiple of 32, got {img_size}"
            )
        if batch_size < 1:
            raise DetectorError(f"detector batch size must be >= 1, got {batch_size}")
        self.device = default_device(device)
        if model is None:
            model = load_yolov3(weights, device=self.device)
        self.model = model.to(self.device).eval()
        self.img_size = img_size
        self.conf_thres = conf_thres
        self.nms_thres = nms_thres
        self.score_thres = score_thres
        self.batch_size = batch_size
        if forward_batch is None:
            forward_batch = batch_size if self.device.type == "cuda" else min(batch_size, 4)
        if forward_batch < 1:
            raise DetectorError(f"forward batch must be >= 1, got {forward_batch}")
        self.forward_batch = forward_batch

    def preprocess(self, frames: Sequence[np.ndarray]):
        """(N, 3, S, S) float32 torch tensor on the detector's device."""
        return preprocess_frames(frames, self.img_size, self.device)

    def forward_raw(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """Decoded network output for the frames: (N, 10647, 85) float32.

        Run in forwards of at most ``forward_batch`` frames.
        """
        import torch

        from pare_studio.pipeline.yolo import full_fp32_convolutions

        if len(frames) == 0:
            s = self.img_size
            rows = 3 * ((s // 32) ** 2 + (s // 16) ** 2 + (s // 8) ** 2)
            return np.zeros((0, rows, 85), dtype=np.float32)
        parts = []
        for start in range(0, len(frames), self.forward_batch):
            x = self.preprocess(frames[start : start + self.forward_batch])
            with torch.inference_mode(), full_fp32_convolutions(self.device):
                parts.append(self.model(x).float().cpu().numpy())
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def postprocess(
        self, raw: np.ndarray, frame_hws: Sequence[tuple[int, int]], keep_raw: bool = False
    ) -> list[YoloFrameResult]:
        """Steps 4–9 for each frame: raw (N, R, 85) float32 and the frames' (H, W)."""
        out = []
        for r, hw in zip(raw, frame_hws, strict=True):
            res = postprocess_frame(
                r,
                hw,
                img_size=self.img_size,
                conf_thres=self.conf_thres,
                nms_thres=self.nms_thres,
                score_thres=self.score_thres,
            )
            out.append(replace(res, raw=r) if keep_raw else res)
        return out

    def run(self, frames: Sequence[np.ndarray], keep_raw: bool = False) -> list[YoloFrameResult]:
        """All stages for each frame, in forwards of ``batch_size`` frames.

        ``keep_raw`` keeps each frame's decoded network output (3.6 MB per frame) in the result.
        """
        out: list[YoloFrameResult] = []
        for start in range(0, len(frames), self.batch_size):
            chunk = [
                _check_frame(f, start + i)
                for i, f in enumerate(frames[start : start + self.batch_size])
            ]
            hws = [(int(f.shape[0]), int(f.shape[1])) for f in chunk]
            out += self.postprocess(self.forward_raw(chunk), hws, keep_raw)
        return out

    def detect(
        self, frames: Sequence[np.ndarray | None], frame_indices: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        """Per frame (k, 5) float32 ``[x1, y1, x2, y2, score]``: persons, score > 0.7, NMS order."""
        return [r.detections for r in self.run(frames)]  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Whole frame


class WholeFrameDetector:
    """Each image is already a person crop: one box covering the whole frame, score 1.

    ``detect`` returns ``[[0, 0, W, H, 1]]`` per frame; as a tracked box that is the square
    ``[W/2, H/2, max(W, H), max(W, H)]`` (black padding on the short side in the crop).
    """

    needs_pixels = True

    def detect(
        self, frames: Sequence[np.ndarray | None], frame_indices: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        out = []
        for i, f in enumerate(frames):
            if f is None or not hasattr(f, "shape") or len(f.shape) < 2:
                raise DetectorError(f"frame {i}: expected an image array, got {type(f).__name__}")
            h, w = int(f.shape[0]), int(f.shape[1])
            out.append(np.array([[0.0, 0.0, w, h, 1.0]], dtype=np.float32))
        return out


# --------------------------------------------------------------------------------------------
# MOTChallenge boxes file

MOT_LAYOUT = "frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z"


@dataclass(frozen=True)
class MotBoxes:
    """Boxes read from a MOTChallenge text file, in file order.

    Attributes
    ----------
    path : the file
    frames : (n,) int64, 0-based frame indices (the file's 1-based frame − 1)
    ids : (n,) int64, −1 = untracked detection (goes through SORT), ≥ 0 = track id (kept)
    boxes : (n, 4) float32 ``[x1, y1, x2, y2]`` = ``[left, top, left + width, top + height]``,
        pixels
    scores : (n,) float32, the conf column (1 when absent)
    lines : (n,) int64, 1-based line numbers in the file (for messages)
    """

    path: Path
    frames: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_frames(self) -> int:
        """1 + the largest 0-based frame index in the file."""
        return int(self.frames.max()) + 1 if len(self) else 0

    @property
    def has_tracked(self) -> bool:
        return bool((self.ids >= 0).any())

    @property
    def has_untracked(self) -> bool:
        return bool((self.ids < 0).any())

    @property
    def first_free_id(self) -> int:
        """The smallest id ≥ 1 above every given id: where our tracker's ids start."""
        return max(int(self.ids.max()) + 1, 1) if len(self) else 1

    def check_frame_count(self, num_frames: int) -> None:
        """Raise DetectorError when a row names a frame the video does not have."""
        bad = np.flatnonzero(self.frames >= num_frames)
        if bad.size:
            i = int(bad[0])
            raise DetectorError(
                f"{self.path}, line {int(self.lines[i])}: frame {int(self.frames[i]) + 1} is past "
                f"the end of the video ({num_frames} frames; frames in the file are 1-based)."
            )

    def rows_by_frame(self) -> dict[int, np.ndarray]:
        """0-based frame index → row indices into the arrays, in file order."""
        order = np.argsort(self.frames, kind="stable")
        frames_sorted = self.frames[order]
        starts = np.flatnonzero(np.r_[True, frames_sorted[1:] != frames_sorted[:-1]])
        ends = np.r_[starts[1:], len(order)]
        return {int(frames_sorted[s]): order[s:e] for s, e in zip(starts, ends, strict=True)}


def _mot_number(text: str, path: Path, line_no: int, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DetectorError(
            f"{path}, line {line_no}: {name} {text!r} is not a number "
            f"(expected the MOTChallenge layout {MOT_LAYOUT})"
        ) from None
    if not math.isfinite(value):
        raise DetectorError(
            f"{path}, line {line_no}: {name} is {text!r}; it must be a finite number"
        )
    return value


def _mot_int(text: str, path: Path, line_no: int, name: str) -> int:
    value = _mot_number(text, path, line_no, name)
    if value != int(value):
        raise DetectorError(f"{path}, line {line_no}: {name} {text!r} is not a whole number")
    return int(value)


def read_mot_boxes(path: str | os.PathLike[str]) -> MotBoxes:
    """Parse a MOTChallenge text file: ``frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z``.

    Frames are 1-based, boxes in pixels. The first 6 fields are required; ``conf`` defaults to 1
    and x, y, z are ignored (so MOT ground-truth files with 9 columns load too). Fields are
    separated by commas (or, in a file without commas, by white space). Blank lines and lines
    starting with ``#`` are skipped.

    Raises
    ------
    DetectorError
        Missing or unreadable file, a malformed line (named by file and line number), a width or
        height ≤ 0, an id < −1, the same id twice in one frame, or no boxes at all.
    """
    path = Path(path)
    if not path.is_file():
        raise DetectorError(f"boxes file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DetectorError(
            f"{path}: not a text file (expected the MOTChallenge layout {MOT_LAYOUT})"
        ) from None
    except OSError as e:
        raise DetectorError(f"{path}: cannot read the boxes file ({e.strerror or e})") from None
    frames: list[int] = []
    ids: list[int] = []
    boxes: list[tuple[float, float, float, float]] = []
    scores: list[float] = []
    lines: list[int] = []
    seen: dict[tuple[int, int], int] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        fields = [f.strip() for f in s.split(",")] if "," in s else s.split()
        if not 6 <= len(fields) <= 10:
            raise DetectorError(
                f"{path}, line {line_no}: {len(fields)} fields; expected 6 to 10 ({MOT_LAYOUT})"
            )
        frame = _mot_int(fields[0], path, line_no, "frame")
        track = _mot_int(fields[1], path, line_no, "id")
        left, top, width, height = (
            _mot_number(fields[k], path, line_no, name)
            for k, name in zip(
                range(2, 6), ("bb_left", "bb_top", "bb_width", "bb_height"), strict=True
            )
        )
        conf = _mot_number(fields[6], path, line_no, "conf") if len(fields) > 6 else 1.0
        if frame < 1:
            raise DetectorError(f"{path}, line {line_no}: frame {frame}; frames are 1-based (≥ 1)")
        if track < -1:
            raise DetectorError(
                f"{path}, line {line_no}: id {track}; use -1 for untracked detections or an id ≥ 0"
            )
        if width <= 0 or height <= 0:
            raise DetectorError(
                f"{path}, line {line_no}: box size {width} x {height}; width and height must be > 0"
            )
        if track >= 0:
            key = (frame, track)
            if key in seen:
                raise DetectorError(
                    f"{path}, line {line_no}: id {track} appears twice in frame {frame} "
                    f"(also on line {seen[key]})"
                )
            seen[key] = line_no
        frames.append(frame - 1)
        ids.append(track)
        boxes.append((left, top, left + width, top + height))
        scores.append(conf)
        lines.append(line_no)
    if not frames:
        raise DetectorError(f"{path}: no boxes in the file (expected lines like {MOT_LAYOUT})")
    return MotBoxes(
        path=path,
        frames=np.asarray(frames, dtype=np.int64),
        ids=np.asarray(ids, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).astype(np.float32),
        scores=np.asarray(scores, dtype=np.float32),
        lines=np.asarray(lines, dtype=np.int64),
    )


class BoxesFileDetector:
    """Boxes from a MOTChallenge file instead of a detector (``--boxes FILE``).

    ``detect`` returns every row of the asked frames, untracked and tracked, in file order;
    ``detect_tracked`` adds the ids. The tracking stage can also take the whole file at once
    (:func:`pare_studio.pipeline.tracking.track_mot_boxes`) without decoding any frame.

    Parameters
    ----------
    boxes : a path (parsed with :func:`read_mot_boxes`) or parsed :class:`MotBoxes`
    min_score : keep rows with ``conf > min_score`` (None = keep all; a user's own detector's
        confidences need not be on YOLO's scale)
    """

    needs_pixels = False

    def __init__(
        self, boxes: str | os.PathLike[str] | MotBoxes, min_score: float | None = None
    ) -> None:
        self.boxes = boxes if isinstance(boxes, MotBoxes) else read_mot_boxes(boxes)
        self.min_score = min_score
        self._by_frame = self.boxes.rows_by_frame()

    def detect_tracked(
        self, frames: Sequence[np.ndarray | None] | None, frame_indices: Sequence[int]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per frame: ``(dets (k, 5) float32, ids (k,) int64)``, file order, −1 = untracked."""
        b = self.boxes
        out = []
        empty = np.zeros(0, dtype=np.int64)
        for fi in frame_indices:
            rows = self._by_frame.get(int(fi), empty)
            if self.min_score is not None:
                rows = rows[b.scores[rows] > np.float32(self.min_score)]
            dets = np.hstack([b.boxes[rows], b.scores[rows, None]]).astype(np.float32)
            out.append((dets.reshape(-1, 5), b.ids[rows].copy()))
        return out

    def detect(
        self, frames: Sequence[np.ndarray | None] | None, frame_indices: Sequence[int] | None = None
    ) -> list[np.ndarray]:
        if frame_indices is None:
            raise ValueError("BoxesFileDetector.detect needs the frames' 0-based frame_indices")
        return [d for d, _ in self.detect_tracked(frames, frame_indices)]
