"""SORT tracker parity with the reference (``shared/parity/yolov3``) and its documented rules.

README tolerances: SORT output and tracks: ids and frames exactly, boxes abs 1e-2 px.
"""

from __future__ import annotations

import numpy as np
import pytest

from pare_studio.pipeline.sort import Sort
from pare_studio.pipeline.tracking import FrameTracker, prepare_output_tracks, track_frames


def _run_tracker(per_frame: list[np.ndarray]) -> tuple[FrameTracker, np.ndarray, np.ndarray]:
    tracker = FrameTracker()
    rows, frames = [], []
    for i, dets in enumerate(per_frame):
        out = tracker.update(i, dets)
        rows.append(out)
        frames += [i] * len(out)
    return tracker, np.concatenate(rows), np.asarray(frames)


def _expected_sort_input(e: dict) -> list[np.ndarray]:
    dets = np.hstack([e["det_boxes"], e["det_scores"][:, None]]).astype(np.float32)
    return [dets[(e["det_frame"] == i) & e["det_kept"]] for i in range(12)]


def _check_sort_rows(rows: np.ndarray, frames: np.ndarray, e: dict, tol: float) -> None:
    assert rows.dtype == np.float64 and rows.shape == e["sort_out"].shape == (7, 5)
    assert np.array_equal(frames, e["sort_out_frame"])
    assert np.array_equal(rows[:, 4], e["sort_out"][:, 4])  # ids, in the order returned
    err = np.abs(rows[:, :4] - e["sort_out"][:, :4]).max()
    assert err <= tol, f"SORT boxes max error {err:.3g} px"


def test_sort_on_reference_detections(yolo_expected) -> None:
    """The tracker alone, fed the reference's own detections: essentially exact."""
    tracker, rows, frames = _run_tracker(_expected_sort_input(yolo_expected))
    _check_sort_rows(rows, frames, yolo_expected, tol=1e-6)
    # update was called only for frames with a kept detection: 2, 3, 4, 5, 6, 8, 9
    assert tracker.sort.frame_count == 7


def test_sort_on_our_detections(yolo_results, yolo_expected) -> None:
    """Detector + tracker end to end at the README's tolerance."""
    _, rows, frames = _run_tracker([r.detections for r in yolo_results])
    _check_sort_rows(rows, frames, yolo_expected, tol=1e-2)


def test_prepare_output_tracks(yolo_results, yolo_expected) -> None:
    e = yolo_expected
    tracks = track_frames((i, r.detections) for i, r in enumerate(yolo_results))
    out = prepare_output_tracks(tracks)
    assert list(out) == [int(i) for i in e["track_ids"]] == [1, 3, 2]  # order of first appearance
    for tid, t in out.items():
        assert t["frames"].dtype == np.int64 and t["bbox"].dtype == np.float64
        assert np.array_equal(t["frames"], e[f"track_{tid}_frames"])
        assert t["bbox"].shape == e[f"track_{tid}_bbox"].shape
        assert np.abs(t["bbox"] - e[f"track_{tid}_bbox"]).max() <= 1e-2
        assert np.array_equal(t["bbox"][:, 2], t["bbox"][:, 3])


def test_min_frames_filter(yolo_expected) -> None:
    tracks = track_frames(enumerate(_expected_sort_input(yolo_expected)))
    assert {k: len(v["frames"]) for k, v in prepare_output_tracks(tracks).items()} == {
        1: 4,
        3: 2,
        2: 1,
    }
    assert list(prepare_output_tracks(tracks, min_frames=2)) == [1, 3]
    assert list(prepare_output_tracks(tracks, min_frames=4)) == [1]
    assert prepare_output_tracks(tracks, min_frames=5) == {}


def test_ids_restart_per_tracker(yolo_expected) -> None:
    """Ours start at 1 in every run (the reference's class-level counter would give 4, 5, ...)."""
    dets = _expected_sort_input(yolo_expected)
    first = prepare_output_tracks(track_frames(enumerate(dets)))
    second = prepare_output_tracks(track_frames(enumerate(dets)))
    assert list(first) == list(second) == [1, 3, 2]


def _box(cx: float, cy: float = 100.0, w: float = 40.0, h: float = 80.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, 0.9]


def test_min_hits_max_age_and_row_order() -> None:
    sort = Sort()
    a = lambda k: _box(100 + 2 * k)  # noqa: E731  slow walker
    b = lambda k: _box(400 + 3 * k)  # noqa: E731  appears at call 4
    # calls 1-3: frame_count <= min_hits, so a new track is output at once
    for k in range(3):
        out = sort.update(np.array([a(k)], dtype=np.float32))
        assert out[:, 4].tolist() == [1.0]
    np.testing.assert_allclose(out[0, :4], a(2)[:4], atol=2.0)  # Kalman state, close to the box
    # call 4: B is new and frame_count = 4 > 3: not output until 3 consecutive hits
    shown = []
    for k in range(3, 7):
        out = sort.update(np.array([a(k), b(k)], dtype=np.float32))
        shown.append(out[:, 4].tolist())
    # A (hit streak >= 3) every time; B from its 3rd update on, first in the rows (created later)
    assert shown == [[1.0], [1.0], [1.0], [2.0, 1.0]]
    # A missing for two calls (> max_age 1) is dropped; when it comes back it is a new track
    sort.update(np.array([b(7)], dtype=np.float32))
    sort.update(np.array([b(8)], dtype=np.float32))
    out = sort.update(np.array([a(9), b(9)], dtype=np.float32))
    assert out[:, 4].tolist() == [2.0]  # the new track 3 is not output yet
    assert sorted(t.id for t in sort.trackers) == [2, 3]


def test_first_frame_box_is_the_detection_and_iou_threshold() -> None:
    sort = Sort()
    d = np.array([_box(100)], dtype=np.float32)
    out = sort.update(d)
    np.testing.assert_allclose(out[0, :4], d[0, :4], atol=1e-4)
    # a box that overlaps the prediction with IoU < 0.3 starts a new track
    far = np.array([_box(135)], dtype=np.float32)  # IoU 5/75 with the 40-wide box at 100
    out = sort.update(far)
    assert out[:, 4].tolist() == [2.0]


def test_frame_tracker_skips_empty_frames() -> None:
    tracker = FrameTracker()
    empty = np.zeros((0, 5), dtype=np.float32)
    seq = [
        empty,
        empty,
        np.array([_box(100)], np.float32),
        empty,
        np.array([_box(104)], np.float32),
    ]
    for i, d in enumerate(seq):
        tracker.update(i, d)
    assert tracker.sort.frame_count == 2
    assert tracker.tracks[1].frames == [2, 4]  # the gap did not age the track out
    with pytest.raises(ValueError):
        tracker.update(4, empty)
