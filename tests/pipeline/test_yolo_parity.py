"""YOLOv3 detector parity with the reference (``shared/parity/yolov3/README.md``, public fixture).

Tolerances are the README's recommended checks: input sums relative 1e-6 and pooled input 1e-6;
raw output obj/cls 1e-4, x/y 1e-2 px, w/h relative 1e-4; raw column sums relative 1e-4; the
candidate set, classes and the number and order of NMS rows and detections exactly; boxes 1e-2 px,
scores 1e-4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pare_studio.pipeline.detection import (
    letterbox_nearest,
    merge_nms,
    preprocess_frames,
    rescale_boxes,
)
from pare_studio.pipeline.tracking import detect_folder, run_detection


def _check_raw_rows(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    """The README's raw-output tolerances on (n, 85) rows."""
    assert ours.shape == ref.shape, what
    xy = np.abs(ours[:, :2] - ref[:, :2]).max()
    wh = (np.abs(ours[:, 2:4] - ref[:, 2:4]) / np.abs(ref[:, 2:4])).max()
    probs = np.abs(ours[:, 4:] - ref[:, 4:]).max()
    assert xy <= 1e-2, f"{what}: x/y max error {xy:.3g} px"
    assert wh <= 1e-4, f"{what}: w/h max relative error {wh:.3g}"
    assert probs <= 1e-4, f"{what}: obj/cls max error {probs:.3g}"


def _reference_preprocess(frame: np.ndarray, size: int = 416) -> torch.Tensor:
    """The reference's steps written out: to_tensor, F.pad to square, F.interpolate nearest."""
    img = torch.from_numpy(frame).permute(2, 0, 1).contiguous().float().div(255)
    _, h, w = img.shape
    diff = abs(h - w)
    p1, p2 = diff // 2, diff - diff // 2
    pad = (0, 0, p1, p2) if h <= w else (p1, p2, 0, 0)
    img = F.pad(img, pad, "constant", value=0.0)
    return F.interpolate(img.unsqueeze(0), size=size, mode="nearest").squeeze(0)


@pytest.mark.parametrize(
    "hw", [(357, 640), (503, 360), (416, 416), (100, 100), (7, 13), (1000, 333)]
)
def test_letterbox_equals_pad_then_interpolate(hw: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(hw))
    frame = rng.integers(0, 256, (*hw, 3), dtype=np.uint8)
    ours = preprocess_frames([frame])[0]
    ref = _reference_preprocess(frame)
    assert torch.equal(ours, ref)
    assert letterbox_nearest(frame).dtype == np.uint8


def test_input_matches_reference(yolo_detector, yolo_seq_frames, yolo_expected) -> None:
    x = yolo_detector.preprocess(yolo_seq_frames).double()
    assert tuple(x.shape) == (12, 3, 416, 416)
    e = yolo_expected
    np.testing.assert_allclose(x.sum((1, 2, 3)).numpy(), e["input_sum"], rtol=1e-6)
    np.testing.assert_allclose(x.sum((2, 3)).numpy(), e["input_sum_per_channel"], rtol=1e-6)
    np.testing.assert_allclose(x.sum((1, 3)).numpy(), e["input_row_sum"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(x.sum((1, 2)).numpy(), e["input_col_sum"], rtol=1e-6, atol=1e-9)
    pooled = F.avg_pool2d(x.float(), 16).numpy()
    np.testing.assert_allclose(pooled, e["input_pool16"], rtol=0, atol=1e-6)
    # The pad (141 rows on top, 142 below for 640x357) is zero and the image rows are not.
    rows = e["input_row_sum"][0]
    first, last = np.flatnonzero(rows)[[0, -1]]
    assert x.sum((1, 3))[0, first] > 0 and first > 80 and last < 416 - 80


def test_raw_full_frame(yolo_results, yolo_expected) -> None:
    f = int(yolo_expected["raw_full_frame"])
    raw = yolo_results[f].raw
    assert raw is not None and raw.shape == (10647, 85) and raw.dtype == np.float32
    _check_raw_rows(raw, yolo_expected["raw_full"], f"raw output of frame {f}")


def test_raw_column_sums(yolo_results, yolo_expected) -> None:
    raw = np.stack([r.raw for r in yolo_results]).astype(np.float64)
    colsum = raw.sum(axis=1)
    ref = yolo_expected["raw_colsum"]
    rel = np.abs(colsum - ref) / np.maximum(np.abs(ref), 1.0)
    assert rel.max() <= 1e-4, f"raw_colsum max relative error {rel.max():.3g}"
    absmax = np.abs(raw).max(axis=1)
    ref_max = yolo_expected["raw_colabsmax"].astype(np.float64)
    assert (np.abs(absmax - ref_max) / np.maximum(ref_max, 1.0)).max() <= 1e-4


def test_candidates_exact(yolo_results, yolo_expected) -> None:
    e = yolo_expected
    raw = np.stack([r.raw for r in yolo_results])
    # every row the reference listed (obj >= 0.5) has the same values here
    _check_raw_rows(raw[e["cand_frame"], e["cand_row"]], e["cand_values"], "candidate rows")
    # the candidate set (obj >= 0.8) is exactly the reference's
    ours = set(zip(*np.nonzero(raw[:, :, 4] >= np.float32(0.8)), strict=True))
    strong = e["cand_values"][:, 4] >= np.float32(0.8)
    ref = set(zip(e["cand_frame"][strong], e["cand_row"][strong], strict=True))
    assert ours == ref
    assert len(ref) == 83
    # the classes of the candidates
    cls_ours = raw[e["cand_frame"][strong], e["cand_row"][strong], 5:].argmax(1)
    assert np.array_equal(cls_ours, e["cand_values"][strong, 5:].argmax(1))


def test_nms_all_classes(yolo_results, yolo_expected) -> None:
    e = yolo_expected
    nms = np.concatenate([r.nms_all for r in yolo_results])
    frames = np.concatenate([np.full(len(r.nms_all), i) for i, r in enumerate(yolo_results)])
    assert nms.shape == e["nms_all"].shape == (48, 7)
    assert np.array_equal(frames, e["nms_all_frame"])
    assert np.array_equal(nms[:, 6], e["nms_all"][:, 6])  # classes, in order
    assert (nms[:, 6] == 2).sum() == 4
    assert np.abs(nms[:, :4] - e["nms_all"][:, :4]).max() <= 1e-2
    assert np.abs(nms[:, 4:6] - e["nms_all"][:, 4:6]).max() <= 1e-4


def test_person_detections(yolo_results, yolo_expected) -> None:
    e = yolo_expected
    boxes = np.concatenate([r.boxes for r in yolo_results])
    scores = np.concatenate([r.scores for r in yolo_results])
    kept = np.concatenate([r.kept for r in yolo_results])
    frames = np.concatenate([np.full(len(r.boxes), i) for i, r in enumerate(yolo_results)])
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.shape == e["det_boxes"].shape == (44, 4)
    assert np.array_equal(frames, e["det_frame"])
    assert np.abs(boxes - e["det_boxes"]).max() <= 1e-2
    assert np.abs(scores - e["det_scores"]).max() <= 1e-4
    assert np.array_equal(kept, e["det_kept"]) and kept.sum() == 10
    # the SORT input: float32 [x1, y1, x2, y2, score] of the kept rows, in order
    sort_in = np.concatenate([r.detections for r in yolo_results])
    assert sort_in.dtype == np.float32 and sort_in.shape == (10, 5)
    ref_in = np.hstack([e["det_boxes"], e["det_scores"][:, None]])[e["det_kept"]]
    assert np.abs(sort_in - ref_in).max() <= 1e-2


def test_streamed_detection_in_small_batches(yolo_detector, yolo_seq_frames, yolo_expected) -> None:
    """run_detection + detect() over frames 3 and 4, one frame per forward: same kept detections."""
    e = yolo_expected
    yolo_detector.batch_size = 1
    try:
        items = list(
            run_detection(iter(yolo_seq_frames[3:5]), yolo_detector, batch_size=2, start_index=3)
        )
    finally:
        yolo_detector.batch_size = 12
    assert [i for i, _, _ in items] == [3, 4]
    assert [len(d) for _, d, _ in items] == [3, 2]
    for i, dets, ids in items:
        assert ids is None
        sel = (e["det_frame"] == i) & e["det_kept"]
        ref = np.hstack([e["det_boxes"][sel], e["det_scores"][sel, None]])
        assert dets.shape == ref.shape and dets.dtype == np.float32
        assert np.abs(dets - ref).max() <= 1e-2


def test_folder_mode_on_shipped_frames(yolo_detector, yolo_shipped_frames, yolo_expected) -> None:
    e = yolo_expected
    out = list(detect_folder(yolo_shipped_frames, yolo_detector))
    assert [len(o) for o in out] == [3, 1, 1]
    boxes = np.concatenate(out)
    assert boxes.dtype == np.float64
    assert np.array_equal(
        np.concatenate([np.full(len(o), i) for i, o in enumerate(out)]), e["folder_det_image"]
    )
    assert np.abs(boxes - e["folder_det"]).max() <= 1e-2
    assert np.array_equal(boxes[:, 2], boxes[:, 3])


def test_merge_nms_rules() -> None:
    """Hand-made candidates: threshold, score order, same-class merge (+1 IoU), weighted mean."""

    def row(cx, cy, w, h, obj, cls, conf):
        r = np.full(85, 0.01, dtype=np.float32)
        r[:5] = (cx, cy, w, h, obj)
        r[5 + cls] = conf
        return r

    rows = np.stack(
        [
            row(50, 50, 20, 20, 0.90, 0, 0.90),  # A: top person
            row(52, 50, 20, 20, 0.85, 0, 0.90),  # B: IoU(+1) with A 0.826 -> merged into A
            row(51, 50, 20, 20, 0.95, 2, 0.50),  # car on the same spot: its own group
            row(200, 50, 20, 20, 0.80, 0, 0.99),  # obj exactly 0.8: kept (inclusive)
            row(300, 50, 20, 20, 0.7999, 0, 0.99),  # below 0.8: dropped
            # +1 convention: corners [104,0,113,9] vs [100,0,109,9]: plain IoU 0.385, "+1" IoU 0.429
            row(108.5, 4.5, 9, 9, 0.81, 5, 0.90),
            row(104.5, 4.5, 9, 9, 0.82, 5, 0.95),
        ]
    )
    out = merge_nms(rows)
    assert out.shape == (4, 7) and out.dtype == np.float32
    # score order: A 0.81, (200) 0.792, (104.5) 0.779, car 0.475
    np.testing.assert_array_equal(out[:, 6], [0, 0, 5, 2])
    w = np.array([0.90, 0.85], dtype=np.float32)
    np.testing.assert_allclose(
        out[0, :4], (w[:, None] * [[40, 40, 60, 60], [42, 40, 62, 60]]).sum(0) / w.sum(), rtol=1e-6
    )
    np.testing.assert_allclose(out[0, 4:6], [0.90, 0.90])  # the top box keeps its own obj / conf
    np.testing.assert_allclose(out[1, :4], [190, 40, 210, 60])
    w = np.array([0.82, 0.81], dtype=np.float32)
    np.testing.assert_allclose(
        out[2, :4], (w[:, None] * [[100, 0, 109, 9], [104, 0, 113, 9]]).sum(0) / w.sum(), rtol=1e-6
    )
    np.testing.assert_allclose(out[3, :4], [41, 40, 61, 60])  # the car is not merged with persons
    assert merge_nms(rows[4:5]).shape == (0, 7)


def test_rescale_quirk_uses_floor_of_scaled_half_pad() -> None:
    """Portrait 360x503: pad_x = 143*416/503 = 118.27; floor(pad_x / 2) = 59 (the real pad: 71)."""
    pad_x = 143 * 416 / 503
    unpad = 416 - pad_x
    box = np.array([[59.0, 0.0, 59.0 + unpad / 2, 416.0]], dtype=np.float32)
    out = rescale_boxes(box, 416, (503, 360))
    np.testing.assert_allclose(out[0], [0.0, 0.0, 180.0, 503.0], atol=1e-4)
    # landscape 640x357 (the public frames): pad_y = 283*416/640 = 183.95, floor(91.975) = 91
    out = rescale_boxes(
        np.array([[0.0, 91.0, 416.0, 91.0 + (416 - 183.95) / 2]], dtype=np.float32), 416, (357, 640)
    )
    np.testing.assert_allclose(out[0], [0.0, 0.0, 640.0, 178.5], atol=1e-3)
    # not clipped
    assert (
        rescale_boxes(np.array([[-10.0, 0.0, 500.0, 10.0]], dtype=np.float32), 416, (357, 640))[
            0, 0
        ]
        < 0
    )
