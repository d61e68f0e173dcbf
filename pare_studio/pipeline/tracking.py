"""Detection + tracking over a stream of frames, and the reference's ``prepare_output_tracks``.

The reference (``multi_person_tracker.MPT``, spec §5.3) runs the detector on batches of
``tracker_batch_size`` (12) frames, keeps detections with score > 0.7 and calls SORT once per
frame *that has a kept detection* (frames without one do not call the tracker, so tracks neither
age nor predict there). Then, per track id in order of first appearance:
``{'bbox': (n, 4) float64 [cx, cy, s, s], 'frames': (n,) int64}`` with ``s = max(w, h)`` of the
SORT output box (:func:`prepare_output_tracks`).

Typical use (streaming; only one batch of frames is in memory)::

    dets = run_detection(frames_iter, detector, batch_size=12, cancel=token)
    tracks = track_frames(dets)                       # {id: Track}
    out = prepare_output_tracks(tracks, min_frames=0) # {id: {'bbox', 'frames'}}

With a MOTChallenge boxes file no frame needs decoding: :func:`track_mot_boxes` keeps the ids ≥ 0
of the file as tracks and runs SORT over the rows with id −1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from pare_studio.cancel import CancelToken
from pare_studio.errors import DetectorError
from pare_studio.pipeline.detection import (
    TRACKER_BATCH_SIZE,
    Detector,
    MotBoxes,
    TrackedDetector,
)
from pare_studio.pipeline.sort import Sort
from pare_studio.results import Progress


@dataclass
class Track:
    """One track: its id and, per frame where it was output, the box.

    Attributes
    ----------
    track_id : int
    frames : list of 0-based frame indices, increasing
    boxes : list of (4,) float64 ``[x1, y1, x2, y2]``, pixels (SORT's Kalman state, or the
        box as given for a pre-tracked row)
    """

    track_id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frames)

    def xyxy(self) -> np.ndarray:
        """(n, 4) float64 corners."""
        return np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)

    def frame_array(self) -> np.ndarray:
        """(n,) int64 0-based frame indices."""
        return np.asarray(self.frames, dtype=np.int64)


def square_boxes(xyxy: np.ndarray) -> np.ndarray:
    """Corners → the reference's square boxes ``[cx, cy, s, s]`` with ``s = max(w, h)``.

    ``w = x2 − x1``, ``h = y2 − y1``, ``cx = x1 + w/2``, ``cy = y1 + h/2``; ``s`` is ``w`` when
    ``w > h`` else ``h`` (the reference's ``np.where(w / h > 1, w, h)``). Keeps the dtype.

    xyxy : (n, ≥4) → (n, 4)
    """
    b = np.asarray(xyxy)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    s = np.where(w > h, w, h)
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, s, s], axis=1)


class FrameTracker:
    """Incremental tracking: feed each frame's detections in frame order.

    Detections with id −1 (or all, when no ids are given) go through SORT, called only for frames
    with at least one such detection (the reference's behaviour). Rows with an id ≥ 0 are
    already tracked and kept under that id, box as given.

    Parameters
    ----------
    max_age, min_hits, iou_threshold : SORT's settings (1, 3, 0.3)
    first_id : id of SORT's first track (1). With pre-tracked ids in the same run, pass a value
        above the largest of them (``BoxesFileDetector(...).boxes.first_free_id``); a collision
        raises DetectorError. :func:`track_mot_boxes` does this itself.
    """

    def __init__(
        self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3, first_id: int = 1
    ) -> None:
        self.sort = Sort(
            max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold, first_id=first_id
        )
        self._first_sort_id = int(first_id)
        self.tracks: dict[int, Track] = {}
        self._last_frame = -1
        self._given_ids: set[int] = set()

    def _add(self, frame_index: int, rows: np.ndarray) -> None:
        for row in rows:
            tid = int(row[4])
            track = self.tracks.get(tid)
            if track is None:
                track = self.tracks[tid] = Track(tid)
            track.frames.append(frame_index)
            track.boxes.append(np.asarray(row[:4], dtype=np.float64))

    def update(
        self, frame_index: int, dets: np.ndarray, ids: np.ndarray | None = None
    ) -> np.ndarray:
        """Track one frame.

        Parameters
        ----------
        frame_index : 0-based, larger than the previous call's
        dets : (k, 5) float32 ``[x1, y1, x2, y2, score]``
        ids : (k,) int64, −1 = untracked, ≥ 0 = given track id; None = all untracked

        Returns
        -------
        (r, 5) float64 ``[x1, y1, x2, y2, id]`` output for this frame: SORT's rows (reverse
        creation order), then the pre-tracked rows in input order.
        """
        if frame_index <= self._last_frame:
            raise ValueError(
                f"frames must come in increasing order: {frame_index} after {self._last_frame}"
            )
        self._last_frame = frame_index
        dets = np.asarray(dets).reshape(-1, 5)
        if ids is None:
            untracked = dets
            given = np.empty((0, 5), dtype=np.float64)
        else:
            ids = np.asarray(ids, dtype=np.int64).reshape(-1)
            untracked = dets[ids < 0]
            sel = ids >= 0
            given = np.hstack([dets[sel, :4].astype(np.float64), ids[sel, None].astype(np.float64)])
            for tid in ids[sel].tolist():
                if self._first_sort_id <= tid < self.sort.next_id:
                    raise DetectorError(
                        f"given track id {tid} (frame {frame_index + 1}) collides with an id "
                        "of our tracker; start the tracker's ids above the given ones "
                        "(first_id, e.g. MotBoxes.first_free_id)"
                    )
                self._given_ids.add(tid)
        if untracked.shape[0]:
            out = self.sort.update(untracked)
            if self._given_ids.intersection(out[:, 4].astype(np.int64).tolist()):
                raise DetectorError(
                    "a tracker id collides with a given track id; start the tracker's ids "
                    "above the given ones (first_id, e.g. MotBoxes.first_free_id)"
                )
        else:
            out = np.empty((0, 5), dtype=np.float64)
        rows = np.vstack([out, given]) if given.shape[0] else out
        self._add(frame_index, rows)
        return rows


def track_frames(
    detections: Iterable[tuple[int, np.ndarray] | tuple[int, np.ndarray, np.ndarray | None]],
    *,
    max_age: int = 1,
    min_hits: int = 3,
    iou_threshold: float = 0.3,
    first_id: int = 1,
    cancel: CancelToken | None = None,
) -> dict[int, Track]:
    """Run :class:`FrameTracker` over ``(frame_index, dets[, ids])`` items in frame order.

    Returns
    -------
    {track id: Track}, in order of first output (frame, then row order), as the reference.
    """
    tracker = FrameTracker(
        max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold, first_id=first_id
    )
    for item in detections:
        if cancel is not None:
            cancel.check()
        tracker.update(*item)
    return tracker.tracks


def prepare_output_tracks(
    tracks: Mapping[int, Track], min_frames: int = 0
) -> dict[int, dict[str, np.ndarray]]:
    """The reference's ``prepare_output_tracks`` plus its ``MIN_NUM_FRAMES`` filter.

    Parameters
    ----------
    tracks : {id: Track} from :func:`track_frames` / :func:`track_mot_boxes`
    min_frames : drop tracks with fewer frames (the reference's 0 keeps all)

    Returns
    -------
    {id: {'bbox': (n, 4) float64 [cx, cy, s, s] (pixels), 'frames': (n,) int64 (0-based)}},
    in the order of ``tracks``.
    """
    out: dict[int, dict[str, np.ndarray]] = {}
    for tid, track in tracks.items():
        if len(track) == 0 or len(track) < min_frames:
            continue
        out[int(tid)] = {
            "bbox": square_boxes(track.xyxy()).astype(np.float64),
            "frames": track.frame_array(),
        }
    return out


def track_mot_boxes(
    boxes: MotBoxes,
    *,
    num_frames: int | None = None,
    max_age: int = 1,
    min_hits: int = 3,
    iou_threshold: float = 0.3,
    min_score: float | None = None,
) -> dict[int, Track]:
    """Tracks from a MOTChallenge boxes file, without decoding any frame.

    Rows with an id ≥ 0 are already tracked: kept under their id, box as given. Rows with id −1
    go through SORT frame by frame (frames without such a row do not call it); when the file also
    has given ids, SORT's ids start above the largest of them so they never collide.

    Parameters
    ----------
    boxes : parsed file (:func:`pare_studio.pipeline.detection.read_mot_boxes`)
    num_frames : frames in the video; rows past the end raise DetectorError
    min_score : SORT input only rows with conf > min_score (None = all)
    """
    if num_frames is not None:
        boxes.check_frame_count(num_frames)
    first_id = boxes.first_free_id

    def items() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for frame, rows in boxes.rows_by_frame().items():
            if min_score is not None:
                rows = rows[(boxes.ids[rows] >= 0) | (boxes.scores[rows] > np.float32(min_score))]
            dets = np.hstack([boxes.boxes[rows], boxes.scores[rows, None]]).astype(np.float32)
            yield frame, dets, boxes.ids[rows]

    return track_frames(
        items(), max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold, first_id=first_id
    )


def _batches(
    frames: Iterable[np.ndarray | None], batch_size: int, start: int
) -> Iterator[tuple[list[int], list[np.ndarray | None]]]:
    idx: list[int] = []
    buf: list[np.ndarray | None] = []
    for i, f in enumerate(frames, start=start):
        idx.append(i)
        buf.append(f)
        if len(buf) == batch_size:
            yield idx, buf
            idx, buf = [], []
    if buf:
        yield idx, buf


def run_detection(
    frames: Iterable[np.ndarray | None],
    detector: Detector,
    *,
    batch_size: int = TRACKER_BATCH_SIZE,
    start_index: int = 0,
    total: int | None = None,
    cancel: CancelToken | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """Detect people in a stream of frames, ``batch_size`` frames at a time.

    Parameters
    ----------
    frames : iterable of (H, W, 3) uint8 RGB frames, in order (any length; consumed lazily)
    detector : a :class:`~pare_studio.pipeline.detection.Detector`
    start_index : 0-based index of the first frame
    total : frame count for progress reports (None: unknown, reported as 0)
    cancel : checked before each batch
    progress : called after each batch with ``Progress("detect", done, total)``

    Yields
    ------
    (frame_index, dets (k, 5) float32, ids (k,) int64 or None) per frame, in order; feed these to
    :func:`track_frames`.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    done = 0
    for idx, buf in _batches(frames, batch_size, start_index):
        if cancel is not None:
            cancel.check()
        if isinstance(detector, TrackedDetector):
            results: Sequence[tuple[np.ndarray, np.ndarray | None]] = detector.detect_tracked(
                buf, idx
            )
        else:
            results = [(d, None) for d in detector.detect(buf, idx)]
        if len(results) != len(idx):
            raise DetectorError(f"detector returned {len(results)} results for {len(idx)} frames")
        for i, (dets, ids) in zip(idx, results, strict=True):
            yield i, dets, ids
        done += len(idx)
        if progress is not None:
            progress(Progress("detect", done, total or 0))


def detect_folder(
    images: Iterable[np.ndarray],
    detector: Detector,
    *,
    cancel: CancelToken | None = None,
) -> Iterator[np.ndarray]:
    """Folder mode (spec §5.9, the reference's ``MPT.detect``): detection only, one image at a time.

    Yields
    ------
    per image, (k, 4) float64 ``[cx, cy, s, s]`` square boxes of the kept detections (the square
    is computed in float32 from the detector's boxes, as the reference), detector order; (0, 4)
    for an image without a kept detection (the reference skips such images).
    """
    for i, img in enumerate(images):
        if cancel is not None:
            cancel.check()
        (dets,) = detector.detect([img], [i])
        yield square_boxes(np.asarray(dets, dtype=np.float32)).astype(np.float64)
