"""The video pipeline as one generator: frames → detections → tracks → PARE → :class:`VideoResult`.

:func:`iter_video` is what ``pare-studio demo`` and the window both run. It yields
:class:`~pare_studio.results.Progress` reports and returns the result (``result = yield from
iter_video(...)``, or catch ``StopIteration.value``). It writes nothing: saving
``pare_output.pkl`` (:func:`pare_studio.pipeline.pkl_io.save_pare_output`) and rendering are
separate steps, so a cancel or a crash here can never leave a partial file.

Stages
    ``"detect"`` — frames are streamed in batches of ``tracker_batch_size`` through the detector
    and the SORT tracker (a boxes file needs no decoding at all). ``done``/``total`` count frames.

    ``"infer"`` — the video is streamed once more, in order. Each frame is decoded once and the
    boxes of every track present in it are cropped from it (spec §5.4); crops fill batches of
    ``batch_size`` across tracks and frames, so every predictor call but the last is full. A helper
    thread decodes and crops the next batch while the predictor runs (the reference crops per track
    in its DataLoader). ``done``/``total`` count crops; one report per batch, plus one with
    ``track=`` set as soon as a track's last crop is through — the window shows tracks as they
    finish. Results per crop do not depend on the batch they ran in (eval-mode network).

Per track (spec §5.5): ``orig_cam = crop_cam_to_orig_cam(pred_cam, bboxes, W, H)`` and
``smpl_joints2d = crop_to_orig_coords(joints2d_crop, bboxes)``; optional smoothing
(:mod:`pare_studio.pipeline.smoothing`) recomputes ``verts``/``joints3d`` from the smoothed pose.

Memory: no frame is kept beyond the batch being cropped; per person-frame the result holds
~112 KB (verts 83 KB, joints, pose), allocated once per track; the segmentation logits are
dropped after each batch.

``cancel.check()`` runs before every detector and predictor batch and raises ``Cancelled``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pare_studio.cancel import CancelToken
from pare_studio.errors import DetectorError, NoPersonFound
from pare_studio.pipeline.smoothing import SMOOTHING_METHODS, smooth_track
from pare_studio.results import Progress, TrackResult, VideoResult

if TYPE_CHECKING:
    from pare_studio.core.predictor import ParePredictor
    from pare_studio.pipeline.detection import Detector
    from pare_studio.pipeline.video import FrameSource

log = logging.getLogger(__name__)

DETECTORS = ("yolo", "boxes", "whole")


@dataclass
class RunOptions:
    """Settings of one video run (the ``pare-studio demo`` flags of the same names).

    Attributes
    ----------
    detector : "yolo" (YOLOv3 + SORT, the reference), "boxes" (a MOTChallenge file) or "whole"
        (every frame is one person's crop).
    boxes_file : the MOTChallenge file for "boxes".
    yolo_weights : ``yolov3.weights``; None searches the asset store, ``./data`` and
        ``~/.torch/models`` (:func:`pare_studio.assets.resolve_yolo_weights`).
    tracker_batch_size : frames per detector batch (reference 12).
    batch_size : crops per predictor call (reference 16).
    min_frames : drop tracks with fewer frames (reference 0 = keep all).
    smooth, min_cutoff, beta : One-Euro smoothing of the pose (reference off, 0.004, 1.0).
    smoothing_method : "reference" (element-wise, as the reference) or "rotation".
    device : torch device for the YOLO detector (None = CUDA when available).
    prefetch : decode and crop the next batch in a helper thread while PARE runs.
    """

    detector: str = "yolo"
    boxes_file: str | os.PathLike[str] | None = None
    yolo_weights: str | os.PathLike[str] | None = None
    tracker_batch_size: int = 12
    batch_size: int = 16
    min_frames: int = 0
    smooth: bool = False
    min_cutoff: float = 0.004
    beta: float = 1.0
    smoothing_method: str = "reference"
    device: str | None = None
    prefetch: bool = True

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        if self.detector not in DETECTORS:
            raise ValueError(
                f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}"
            )
        for name in ("tracker_batch_size", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if (
            isinstance(self.min_frames, bool)
            or not isinstance(self.min_frames, int)
            or self.min_frames < 0
        ):
            raise ValueError(f"min_frames must be an integer >= 0, got {self.min_frames!r}")
        if self.smoothing_method not in SMOOTHING_METHODS:
            raise ValueError(
                f"smoothing_method must be one of {', '.join(SMOOTHING_METHODS)}, "
                f"got {self.smoothing_method!r}"
            )
        if not (self.min_cutoff >= 0 and self.beta >= 0):
            raise ValueError(
                f"min_cutoff and beta must be >= 0, got {self.min_cutoff}, {self.beta}"
            )


@dataclass
class RunTimings:
    """Wall-clock seconds per stage of the last :func:`iter_video` run (filled as it goes)."""

    detect_s: float = 0.0
    infer_s: float = 0.0
    predictor_s: float = 0.0
    frames: int = 0
    crops: int = 0
    extra: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Detector


def _boxes_file_is_empty(path: Path) -> bool:
    """True when a readable text file has no data line (only blank and ``#`` lines)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            return not any(s.strip() and not s.strip().startswith("#") for s in fh)
    except OSError:
        return False  # the parser reports it


def make_detector(options: RunOptions) -> Detector:
    """The detector ``options`` asks for.

    Raises
    ------
    DetectorError
        "boxes" without a file, a malformed boxes file, YOLO weights that cannot be read.
    NoPersonFound
        A boxes file that lists no box at all.
    AssetError
        YOLO weights not found anywhere (the message says where to put them).
    """
    from pare_studio.pipeline.detection import BoxesFileDetector, WholeFrameDetector, YoloDetector

    options.validate()
    if options.detector == "boxes":
        if options.boxes_file is None:
            raise DetectorError("--detector boxes needs a MOTChallenge boxes file: --boxes FILE")
        path = Path(options.boxes_file)
        if path.is_file() and _boxes_file_is_empty(path):
            raise NoPersonFound(
                f"the boxes file {path} lists no boxes, so there is nobody to run PARE on; "
                "give boxes (frame,id,bb_left,bb_top,bb_width,bb_height,conf,...) or use "
                "--detector yolo"
            )
        return BoxesFileDetector(path)
    if options.detector == "whole":
        return WholeFrameDetector()
    from pare_studio.assets import resolve_yolo_weights

    weights = resolve_yolo_weights(options.yolo_weights)
    return YoloDetector(weights, device=options.device, batch_size=options.tracker_batch_size)


def _no_person_message(path: Path, n_frames: int, options: RunOptions, lengths: list[int]) -> str:
    if lengths:
        longest = ", ".join(map(str, sorted(lengths, reverse=True)[:10]))
        return (
            f"no track of {path} has at least {options.min_frames} frames (--min_frames); the "
            f"tracker found {len(lengths)} track(s) of {longest} frames. Lower --min_frames."
        )
    if options.detector == "boxes":
        return (
            f"no person in the boxes file {options.boxes_file} for the {n_frames} frames of "
            f"{path}; check its frame numbers (1-based) or use --detector yolo"
        )
    if options.detector == "whole":
        return f"no frame to run PARE on in {path}"
    return (
        f"no person detected in {n_frames} frames of {path}; try --detector whole (each frame "
        "already shows one person), or give your own boxes with --boxes FILE"
    )


# --------------------------------------------------------------------------------------------
# Stage 1: detection + tracking


def _detect_and_track(
    source: FrameSource,
    detector: Detector,
    options: RunOptions,
    cancel: CancelToken | None,
) -> Generator[Progress, None, tuple[dict[int, dict[str, np.ndarray]], list[int]]]:
    """Yield detect progress; return the reference's ``prepare_output_tracks`` dict (after the
    ``min_frames`` filter) and the lengths of all tracks found (before it)."""
    from pare_studio.pipeline.detection import BoxesFileDetector
    from pare_studio.pipeline.tracking import (
        FrameTracker,
        prepare_output_tracks,
        run_detection,
        track_mot_boxes,
    )

    n = len(source)
    yield Progress("detect", 0, n)
    if isinstance(detector, BoxesFileDetector):
        if cancel is not None:
            cancel.check()
        raw = track_mot_boxes(detector.boxes, num_frames=n, min_score=detector.min_score)
        yield Progress("detect", n, n)
    else:
        frames: Iterator[np.ndarray | None]
        if getattr(detector, "needs_pixels", True):
            frames = (frame for _, frame in source.iter_frames())
        else:
            frames = iter([None] * n)
        tracker = FrameTracker()
        step = options.tracker_batch_size
        done = 0
        for i, dets, ids in run_detection(
            frames, detector, batch_size=step, total=n, cancel=cancel
        ):
            tracker.update(i, dets, ids)
            done += 1
            if done % step == 0 or done == n:
                yield Progress("detect", done, n)
        raw = tracker.tracks
    lengths = [len(t) for t in raw.values() if len(t)]
    return prepare_output_tracks(raw, min_frames=options.min_frames), lengths


# --------------------------------------------------------------------------------------------
# Stage 2: crops + PARE


@dataclass
class _TrackBuffer:
    """Per-track output arrays, filled row by row as batches come back."""

    track_id: int
    bboxes: np.ndarray  # (n, 4) float64
    frame_ids: np.ndarray  # (n,) int64
    pred_cam: np.ndarray = field(init=False)
    verts: np.ndarray = field(init=False)
    pose: np.ndarray = field(init=False)
    betas: np.ndarray = field(init=False)
    joints3d: np.ndarray = field(init=False)
    joints2d_crop: np.ndarray = field(init=False)
    remaining: int = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.frame_ids)
        self.pred_cam = np.empty((n, 3), np.float32)
        self.verts = np.empty((n, 6890, 3), np.float32)
        self.pose = np.empty((n, 24, 3, 3), np.float32)
        self.betas = np.empty((n, 10), np.float32)
        self.joints3d = np.empty((n, 49, 3), np.float32)
        self.joints2d_crop = np.empty((n, 49, 2), np.float32)
        self.remaining = n


@dataclass
class _Batch:
    crops: np.ndarray  # (B, 3, 224, 224) float32
    owners: list[tuple[int, int]]  # (track id, row) per crop


def _crop_batches(
    source: FrameSource,
    tracks: dict[int, dict[str, np.ndarray]],
    batch_size: int,
    stop: threading.Event | None = None,
) -> Iterator[_Batch]:
    """Stream the needed frames once, in order; crop every track's box; yield full batches."""
    from pare_studio.pipeline.crops import CROP_SIZE, crop_rgb, normalize_crops

    per_frame: dict[int, list[tuple[int, int]]] = {}
    for tid, t in tracks.items():
        for row, f in enumerate(t["frames"].tolist()):
            per_frame.setdefault(int(f), []).append((tid, row))
    if not per_frame:
        return
    first, last = min(per_frame), max(per_frame)
    rgb = np.empty((batch_size, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    owners: list[tuple[int, int]] = []
    for i, frame in source.iter_frames(first, last + 1):
        if stop is not None and stop.is_set():
            return
        for tid, row in per_frame.get(i, ()):
            rgb[len(owners)] = crop_rgb(frame, tracks[tid]["bbox"][row])
            owners.append((tid, row))
            if len(owners) == batch_size:
                yield _Batch(normalize_crops(rgb), owners)
                owners = []
    if owners:
        yield _Batch(normalize_crops(rgb[: len(owners)]), owners)


_DONE = object()


@contextlib.contextmanager
def _prefetched(
    batches: Iterator[_Batch], enabled: bool, stop: threading.Event
) -> Iterator[Iterator[_Batch]]:
    """Run ``batches`` in a helper thread, two batches ahead; errors re-raise in the caller."""
    if not enabled:
        yield batches
        return
    q: queue.Queue[Any] = queue.Queue(maxsize=2)

    def produce() -> None:
        try:
            for b in batches:
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="pare-crops", daemon=True)
    thread.start()

    def consume() -> Iterator[_Batch]:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    try:
        yield consume()
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        thread.join()


def _finish_track(
    buf: _TrackBuffer, width: int, height: int, options: RunOptions, predictor: ParePredictor
) -> TrackResult:
    from pare_studio.core.geometry import crop_cam_to_orig_cam, crop_to_orig_coords

    track = TrackResult(
        track_id=int(buf.track_id),
        pred_cam=buf.pred_cam,
        orig_cam=crop_cam_to_orig_cam(buf.pred_cam, buf.bboxes, width, height).astype(np.float64),
        verts=buf.verts,
        pose=buf.pose,
        betas=buf.betas,
        joints3d=buf.joints3d,
        joints2d=None,
        smpl_joints2d=crop_to_orig_coords(buf.joints2d_crop, buf.bboxes).astype(np.float32),
        bboxes=buf.bboxes,
        frame_ids=buf.frame_ids,
    )
    if options.smooth:
        track = smooth_track(
            track,
            predictor.smpl,
            options.smoothing_method,
            options.min_cutoff,
            options.beta,
            inplace=True,
        )
    return track


def _infer(
    source: FrameSource,
    tracks: dict[int, dict[str, np.ndarray]],
    predictor: ParePredictor,
    options: RunOptions,
    cancel: CancelToken | None,
    timings: RunTimings,
) -> Generator[Progress, None, dict[int, TrackResult]]:
    width, height = source.size
    bufs = {
        tid: _TrackBuffer(tid, np.asarray(t["bbox"], np.float64), np.asarray(t["frames"], np.int64))
        for tid, t in tracks.items()
    }
    total = sum(len(b.frame_ids) for b in bufs.values())
    done = 0
    finished: dict[int, TrackResult] = {}
    yield Progress("infer", 0, total)
    stop = threading.Event()
    batches = _crop_batches(source, tracks, options.batch_size, stop)
    with _prefetched(batches, options.prefetch, stop) as stream:
        for batch in stream:
            if cancel is not None:
                cancel.check()
            t0 = time.perf_counter()
            out = predictor.predict(batch.crops, batch_size=options.batch_size)
            timings.predictor_s += time.perf_counter() - t0
            completed: list[int] = []
            for k, (tid, row) in enumerate(batch.owners):
                b = bufs[tid]
                b.pred_cam[row] = out.pred_cam[k]
                b.verts[row] = out.smpl_vertices[k]
                b.pose[row] = out.pred_pose[k]
                b.betas[row] = out.pred_shape[k]
                b.joints3d[row] = out.smpl_joints3d[k]
                b.joints2d_crop[row] = out.smpl_joints2d[k]
                b.remaining -= 1
                if b.remaining == 0:
                    completed.append(tid)
            del out
            done += len(batch.owners)
            timings.crops = done
            yield Progress("infer", done, total)
            for tid in completed:
                track = _finish_track(bufs.pop(tid), width, height, options, predictor)
                finished[tid] = track
                yield Progress("infer", done, total, track=track)
    if bufs:  # the source ended early (cannot happen with an exact frame count)
        missing = ", ".join(str(t) for t in sorted(bufs))
        raise DetectorError(f"frames of track(s) {missing} are past the end of {source.path}")
    return finished


def release_free_heap() -> None:
    """Give freed heap memory back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Loading a checkpoint leaves ~200 MB of freed but unreturned heap behind; trimming it before
    the per-track arrays are allocated lowers the run's peak resident memory by as much.
    """
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------------------------
# Public entry point


def iter_video(
    source_path: str | os.PathLike[str],
    predictor: ParePredictor,
    options: RunOptions | None = None,
    cancel: CancelToken | None = None,
    *,
    detector: Detector | None = None,
    timings: RunTimings | None = None,
) -> Generator[Progress, None, VideoResult]:
    """Run the whole video pipeline on a video file or image folder.

    Parameters
    ----------
    source_path : video file or folder of images (:func:`pare_studio.pipeline.video.open_source`).
    predictor : a loaded :class:`~pare_studio.core.predictor.ParePredictor`.
    options : :class:`RunOptions` (default: the reference's settings with YOLO).
    cancel : checked between batches; a cancel raises ``Cancelled`` (nothing is written here).
    detector : use this detector instead of building the one ``options`` names.
    timings : filled with per-stage seconds while the run goes.

    Yields
    ------
    Progress("detect", frames done, frames), then Progress("infer", crops done, crops), and
    Progress("infer", ..., track=TrackResult) when a track is complete.

    Returns
    -------
    VideoResult with tracks in ascending id order, the source's frame count, size and fps.

    Raises
    ------
    VideoReadError, DetectorError, AssetError, NoPersonFound, Cancelled
    """
    from pare_studio.pipeline.video import open_source

    options = options or RunOptions()
    options.validate()
    timings = timings if timings is not None else RunTimings()
    path = Path(source_path)
    det = detector if detector is not None else make_detector(options)
    release_free_heap()
    with open_source(path) as source:
        n = len(source)
        timings.frames = n
        t0 = time.perf_counter()
        tracks, lengths = yield from _detect_and_track(source, det, options, cancel)
        timings.detect_s = time.perf_counter() - t0
        if not tracks:
            raise NoPersonFound(_no_person_message(path, n, options, lengths))
        log.info("%d track(s) over %d frames", len(tracks), n)
        t1 = time.perf_counter()
        finished = yield from _infer(source, tracks, predictor, options, cancel, timings)
        timings.infer_s = time.perf_counter() - t1
        width, height = source.size
        fps = float(source.fps or 0.0)
    return VideoResult(
        tracks={tid: finished[tid] for tid in sorted(finished)},
        n_frames=n,
        width=int(width),
        height=int(height),
        fps=fps,
        source=str(path),
    )


def run_video(
    source_path: str | os.PathLike[str],
    predictor: ParePredictor,
    options: RunOptions | None = None,
    cancel: CancelToken | None = None,
    **kwargs: Any,
) -> VideoResult:
    """:func:`iter_video` run to the end, progress ignored."""
    gen = iter_video(source_path, predictor, options, cancel, **kwargs)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value


# --------------------------------------------------------------------------------------------
# Folder mode (spec §5.9)


@dataclass
class FolderImageResult:
    """One image of folder mode.

    Attributes
    ----------
    index, total : position of the image in the folder (natural sort) and the image count.
    path : the image file.
    image : (H, W, 3) uint8 RGB.
    outputs : None when nobody was detected (the reference skips the image); else every model
        output for the k people, float32 (``pred_pose`` (k,24,3,3), ``pred_shape``, ``pred_cam``,
        ``pred_cam_t``, ``smpl_vertices``, ``smpl_joints3d``, ``smpl_joints2d`` (k,49,2) in
        original-image pixels, ``pred_segm_mask`` (k,25,56,56)), plus ``bboxes`` (k,4) float64
        ``[cx, cy, s, s]`` and ``orig_cam`` (k,4) float64 — the reference's per-image pkl.
    """

    index: int
    total: int
    path: Path
    image: np.ndarray
    outputs: dict[str, np.ndarray] | None


def _read_rgb(path: Path) -> np.ndarray:
    import cv2

    from pare_studio.errors import VideoReadError

    data = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise VideoReadError(f"cannot decode image {path}; replace or remove it")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def iter_folder(
    folder: str | os.PathLike[str],
    predictor: ParePredictor,
    options: RunOptions | None = None,
    cancel: CancelToken | None = None,
    *,
    detector: Detector | None = None,
) -> Iterator[FolderImageResult]:
    """Folder mode: every image on its own, detection only (no tracking), as the reference.

    Images may differ in size. With a boxes file, its frame numbers are the images' 1-based
    positions in natural order. ``cancel`` is checked before each image.

    Yields
    ------
    FolderImageResult per image, in order (``outputs`` None where nobody was found).

    Raises
    ------
    VideoReadError
        A missing or empty folder, an image that does not decode.
    """
    from pare_studio.core.geometry import crop_cam_to_orig_cam, crop_to_orig_coords
    from pare_studio.errors import VideoReadError
    from pare_studio.pipeline.crops import crop_boxes
    from pare_studio.pipeline.tracking import square_boxes
    from pare_studio.pipeline.video import IMAGE_EXTENSIONS, list_images

    options = options or RunOptions()
    options.validate()
    path = Path(folder)
    if not path.is_dir():
        raise VideoReadError(f"{path} is not a folder of images")
    files = list_images(path)
    if not files:
        raise VideoReadError(f"{path} contains no images ({', '.join(IMAGE_EXTENSIONS)})")
    det = detector if detector is not None else make_detector(options)
    release_free_heap()
    for i, file in enumerate(files):
        if cancel is not None:
            cancel.check()
        image = _read_rgb(file)
        (dets,) = det.detect([image], [i])
        dets = np.asarray(dets, dtype=np.float32).reshape(-1, 5)
        if len(dets) == 0:
            yield FolderImageResult(i, len(files), file, image, None)
            continue
        boxes = square_boxes(dets).astype(np.float64)
        out = predictor.predict(crop_boxes(image, boxes), batch_size=options.batch_size)
        outputs = out.to_reference_dict()
        outputs["smpl_joints2d"] = crop_to_orig_coords(out.smpl_joints2d, boxes).astype(np.float32)
        outputs["bboxes"] = boxes
        h, w = image.shape[:2]
        outputs["orig_cam"] = crop_cam_to_orig_cam(out.pred_cam, boxes, w, h).astype(np.float64)
        yield FolderImageResult(i, len(files), file, image, outputs)
