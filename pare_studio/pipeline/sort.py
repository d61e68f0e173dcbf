"""SORT (Simple Online and Realtime Tracking) as the reference's multi-person tracker uses it.

Bewley et al.'s SORT with the settings of ``multi_person_tracker.MPT`` (spec §5.3,
``shared/parity/yolov3/README.md`` §10):

* one constant-velocity Kalman filter per track on ``[cx, cy, area, ratio]`` (filterpy's
  ``KalmanFilter`` with SORT's standard F, H, R, P, Q);
* matching by IoU (plain, no "+1") with the Hungarian algorithm (scipy
  ``linear_sum_assignment``); a match needs IoU ≥ 0.3;
* ``max_age = 1``, ``min_hits = 3``; a track is output in a frame when it was updated in that
  frame and ``hit_streak ≥ min_hits or frame_count ≤ min_hits``;
* the output box is the Kalman *state*, not the detection, ``[x1, y1, x2, y2, id]`` float64,
  rows in reverse order of track creation.

Difference from the reference, on purpose: the reference numbers tracks with a class attribute,
so ids keep counting across runs in one process (a second video in the same Python session
starts at, say, 55). Here every :class:`Sort` has its own counter starting at ``first_id`` (1),
which equals the reference in a fresh process.

``frame_count`` counts calls of :meth:`Sort.update`; the reference's caller does not call it for
frames without a kept detection (see :class:`pare_studio.pipeline.tracking.FrameTracker`).
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter
from scipy.optimize import linear_sum_assignment


def bbox_to_z(bbox: np.ndarray) -> np.ndarray:
    """``[x1, y1, x2, y2, ...]`` → Kalman measurement ``(4, 1)`` ``[cx, cy, area, w/h]``.

    Computed in the box's own float dtype, as the reference (the detector's float32 rows give a
    float32 measurement, which the filter then uses in float64).
    """
    b = np.asarray(bbox)
    if b.dtype.kind != "f":
        b = b.astype(np.float64)
    x1, y1, x2, y2 = b[0], b[1], b[2], b[3]
    w = x2 - x1
    h = y2 - y1
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = w / h
    return np.array([x1 + w / 2.0, y1 + h / 2.0, w * h, ratio]).reshape(4, 1)


def x_to_bbox(x: np.ndarray) -> np.ndarray:
    """Kalman state ``(7, 1)`` → ``(1, 4)`` float64 ``[x1, y1, x2, y2]`` (w = √(area·ratio))."""
    with np.errstate(
        invalid="ignore", divide="ignore"
    ):  # a collapsed box gives NaN, dropped by Sort
        w = np.sqrt(x[2, 0] * x[3, 0])
        h = x[2, 0] / w
    return np.array(
        [x[0, 0] - w / 2.0, x[1, 0] - h / 2.0, x[0, 0] + w / 2.0, x[1, 0] + h / 2.0]
    ).reshape(1, 4)


def iou_matrix(dets: np.ndarray, trks: np.ndarray) -> np.ndarray:
    """Plain IoU of every detection with every predicted track box.

    dets : (D, ≥4), trks : (T, ≥4) corners → (D, T) float64
    """
    d = np.asarray(dets[:, :4], dtype=np.float64)[:, None, :]
    t = np.asarray(trks[:, :4], dtype=np.float64)[None, :, :]
    w = np.maximum(0.0, np.minimum(d[..., 2], t[..., 2]) - np.maximum(d[..., 0], t[..., 0]))
    h = np.maximum(0.0, np.minimum(d[..., 3], t[..., 3]) - np.maximum(d[..., 1], t[..., 1]))
    inter = w * h
    area_d = (d[..., 2] - d[..., 0]) * (d[..., 3] - d[..., 1])
    area_t = (t[..., 2] - t[..., 0]) * (t[..., 3] - t[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = inter / (area_d + area_t - inter)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class KalmanBoxTracker:
    """One tracked box: SORT's 7-state constant-velocity Kalman filter.

    State ``[cx, cy, area, ratio, vcx, vcy, varea]``; the ratio has no velocity.
    """

    def __init__(self, bbox: np.ndarray, track_id: int) -> None:
        kf = KalmanFilter(dim_x=7, dim_z=4)
        kf.F = np.array(
            [
                [1, 0, 0, 0, 1, 0, 0],
                [0, 1, 0, 0, 0, 1, 0],
                [0, 0, 1, 0, 0, 0, 1],
                [0, 0, 0, 1, 0, 0, 0],
                [0, 0, 0, 0, 1, 0, 0],
                [0, 0, 0, 0, 0, 1, 0],
                [0, 0, 0, 0, 0, 0, 1],
            ],
            dtype=np.float64,
        )
        kf.H = np.array(
            [
                [1, 0, 0, 0, 0, 0, 0],
                [0, 1, 0, 0, 0, 0, 0],
                [0, 0, 1, 0, 0, 0, 0],
                [0, 0, 0, 1, 0, 0, 0],
            ],
            dtype=np.float64,
        )
        kf.R[2:, 2:] *= 10.0
        kf.P[4:, 4:] *= 1000.0  # high uncertainty for the unobserved initial velocities
        kf.P *= 10.0
        kf.Q[-1, -1] *= 0.01
        kf.Q[4:, 4:] *= 0.01
        kf.x[:4] = bbox_to_z(bbox)
        self.kf = kf
        self.id = int(track_id)
        self.time_since_update = 0
        self.hits = 0
        self.hit_streak = 0
        self.age = 0

    def update(self, bbox: np.ndarray) -> None:
        """Correct the state with a matched detection ``[x1, y1, x2, y2, ...]``."""
        self.time_since_update = 0
        self.hits += 1
        self.hit_streak += 1
        self.kf.update(bbox_to_z(bbox))

    def predict(self) -> np.ndarray:
        """Advance one step; returns the predicted ``(1, 4)`` corners."""
        if self.kf.x[6, 0] + self.kf.x[2, 0] <= 0:
            self.kf.x[6] *= 0.0
        self.kf.predict()
        self.age += 1
        if self.time_since_update > 0:
            self.hit_streak = 0
        self.time_since_update += 1
        return x_to_bbox(self.kf.x)

    def get_state(self) -> np.ndarray:
        """Current ``(1, 4)`` float64 corners from the Kalman state."""
        return x_to_bbox(self.kf.x)


def associate(
    dets: np.ndarray, trks: np.ndarray, iou_threshold: float = 0.3
) -> tuple[np.ndarray, list[int], list[int]]:
    """Hungarian matching of detections to predicted tracks on IoU.

    Returns
    -------
    matches : (m, 2) int64 ``[det, trk]`` pairs with IoU ≥ ``iou_threshold``
    unmatched_dets : detections never assigned (ascending), then those whose assignment fell
        below the threshold (in assignment order) — SORT's order, which sets the new ids' order
    unmatched_trks : likewise for tracks
    """
    if len(trks) == 0:
        return np.empty((0, 2), dtype=np.int64), list(range(len(dets))), []
    iou = iou_matrix(dets, trks)
    rows, cols = linear_sum_assignment(-iou)
    assigned = np.stack([rows, cols], axis=1).astype(np.int64)
    assigned_dets, assigned_trks = set(rows.tolist()), set(cols.tolist())
    unmatched_dets = [d for d in range(len(dets)) if d not in assigned_dets]
    unmatched_trks = [t for t in range(len(trks)) if t not in assigned_trks]
    matches = []
    for d, t in assigned:
        if iou[d, t] < iou_threshold:
            unmatched_dets.append(int(d))
            unmatched_trks.append(int(t))
        else:
            matches.append((int(d), int(t)))
    return np.asarray(matches, dtype=np.int64).reshape(-1, 2), unmatched_dets, unmatched_trks


class Sort:
    """The SORT tracker (one per video).

    Parameters
    ----------
    max_age : frames (update calls) a track survives without a match (1)
    min_hits : consecutive matches before a track is output, except in the first
        ``min_hits`` calls (3)
    iou_threshold : minimum IoU of a match (0.3)
    first_id : id of the first track; ids then count up per created track (1, as a fresh
        reference process)
    """

    def __init__(
        self, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3, first_id: int = 1
    ) -> None:
        self.max_age = max_age
        self.min_hits = min_hits
        self.iou_threshold = iou_threshold
        self.trackers: list[KalmanBoxTracker] = []
        self.frame_count = 0
        self.next_id = int(first_id)

    def update(self, dets: np.ndarray) -> np.ndarray:
        """One SORT step.

        Parameters
        ----------
        dets : (k, ≥4) ``[x1, y1, x2, y2, score]`` (float32 from the detector), pixels

        Returns
        -------
        (r, 5) float64 ``[x1, y1, x2, y2, id]``: Kalman states of the tracks output this call,
        in reverse order of creation.
        """
        dets = np.asarray(dets)
        if dets.ndim != 2 or dets.shape[1] < 4:
            raise ValueError(
                f"SORT input must be (k, >=4) [x1, y1, x2, y2, score], got {dets.shape}"
            )
        self.frame_count += 1
        predicted = np.zeros((len(self.trackers), 4))
        valid = np.ones(len(self.trackers), dtype=bool)
        for t, trk in enumerate(self.trackers):
            predicted[t] = trk.predict()[0]
            valid[t] = not np.any(np.isnan(predicted[t]))
        if not valid.all():
            self.trackers = [trk for trk, ok in zip(self.trackers, valid, strict=True) if ok]
            predicted = predicted[valid]
        matches, unmatched_dets, _ = associate(dets, predicted, self.iou_threshold)
        for d, t in matches:
            self.trackers[t].update(dets[d])
        for d in unmatched_dets:
            self.trackers.append(KalmanBoxTracker(dets[d], self.next_id))
            self.next_id += 1
        out = []
        i = len(self.trackers)
        for trk in reversed(self.trackers):
            i -= 1
            if trk.time_since_update < 1 and (
                trk.hit_streak >= self.min_hits or self.frame_count <= self.min_hits
            ):
                out.append(np.concatenate([trk.get_state()[0], [float(trk.id)]]))
            if trk.time_since_update > self.max_age:
                self.trackers.pop(i)
        if out:
            return np.stack(out).astype(np.float64)
        return np.empty((0, 5), dtype=np.float64)
