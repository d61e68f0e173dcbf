"""Detector backends, the MOT boxes file, weights loading errors, the streaming detection loop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pare_studio.cancel import CancelToken
from pare_studio.errors import AssetError, Cancelled, DetectorError
from pare_studio.pipeline.detection import (
    BoxesFileDetector,
    Detector,
    TrackedDetector,
    WholeFrameDetector,
    YoloDetector,
    read_mot_boxes,
)
from pare_studio.pipeline.tracking import (
    prepare_output_tracks,
    run_detection,
    track_frames,
    track_mot_boxes,
)
from pare_studio.pipeline.yolo import (
    DarknetYoloV3,
    load_darknet_weights,
    read_darknet_header,
    yolov3_blocks,
)

# --------------------------------------------------------------------------------------------
# MOTChallenge boxes file


def _write(tmp_path: Path, text: str, name: str = "boxes.txt") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_mot_boxes_layout(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "# comment\n"
        "1,-1,10,20,30,40,0.9,-1,-1,-1\n"
        "\n"
        "1,7,100.5,50,20,60,1,-1,-1,-1\n"
        "3, 7, 104, 52, 20, 60, 0.5, -1, -1, -1\n"
        "2,-1,12,21,30,40\n",  # 6 fields: conf defaults to 1
    )
    mot = read_mot_boxes(p)
    assert len(mot) == 4 and mot.num_frames == 3
    np.testing.assert_array_equal(mot.frames, [0, 0, 2, 1])  # 0-based
    np.testing.assert_array_equal(mot.ids, [-1, 7, 7, -1])
    np.testing.assert_allclose(mot.boxes[0], [10, 20, 40, 60])
    np.testing.assert_allclose(mot.boxes[1], [100.5, 50, 120.5, 110])
    np.testing.assert_allclose(mot.scores, [0.9, 1, 0.5, 1])
    np.testing.assert_array_equal(mot.lines, [2, 4, 5, 6])
    assert mot.boxes.dtype == np.float32 and mot.frames.dtype == np.int64
    assert mot.has_tracked and mot.has_untracked
    by_frame = mot.rows_by_frame()
    assert list(by_frame) == [0, 1, 2] and by_frame[0].tolist() == [0, 1]

    det = BoxesFileDetector(mot)
    assert isinstance(det, Detector) and isinstance(det, TrackedDetector) and not det.needs_pixels
    (d0, i0), (d1, i1), (d5, i5) = det.detect_tracked(None, [0, 1, 5])
    assert d0.shape == (2, 5) and d0.dtype == np.float32 and i0.tolist() == [-1, 7]
    np.testing.assert_allclose(d0[0], [10, 20, 40, 60, 0.9], rtol=1e-6)
    assert i1.tolist() == [-1] and d5.shape == (0, 5) and i5.shape == (0,)
    assert [d.shape[0] for d in det.detect([None, None], [0, 2])] == [2, 1]
    with pytest.raises(ValueError, match="frame_indices"):
        det.detect([None])
    assert BoxesFileDetector(mot, min_score=0.95).detect(None, [0])[0].shape == (1, 5)


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("1,-1,10,20,abc,40,1,-1,-1,-1", "bb_width 'abc' is not a number"),
        ("1,-1,10,20", "4 fields"),
        ("1,-1,10,20,0,40,1,-1,-1,-1", "width and height must be > 0"),
        ("0,-1,10,20,30,40,1,-1,-1,-1", "1-based"),
        ("1,-2,10,20,30,40,1,-1,-1,-1", "id -2"),
        ("1.5,-1,10,20,30,40,1,-1,-1,-1", "not a whole number"),
        ("1,-1,10,nan,30,40,1,-1,-1,-1", "finite"),
        ("1,3,10,20,30,40,1,-1,-1,-1", "appears twice in frame 1"),
    ],
)
def test_malformed_mot_line_names_file_and_line(tmp_path: Path, line: str, what: str) -> None:
    p = _write(tmp_path, "1,3,1,2,3,4,1,-1,-1,-1\n2,-1,1,2,3,4,1,-1,-1,-1\n" + line + "\n")
    with pytest.raises(DetectorError) as err:
        read_mot_boxes(p)
    msg = str(err.value)
    assert str(p) in msg and "line 3" in msg and what in msg


def test_mot_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="not found"):
        read_mot_boxes(tmp_path / "missing.txt")
    with pytest.raises(DetectorError, match="no boxes"):
        read_mot_boxes(_write(tmp_path, "# only a comment\n\n"))
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(DetectorError, match="not a text file"):
        read_mot_boxes(tmp_path / "bin.txt")
    mot = read_mot_boxes(_write(tmp_path, "1,-1,1,2,3,4\n5,-1,1,2,3,4\n"))
    with pytest.raises(DetectorError, match="line 2: frame 5 is past the end"):
        track_mot_boxes(mot, num_frames=4)
    assert len(track_mot_boxes(mot, num_frames=5)) == 1


@pytest.fixture(scope="module")
def demo_clip(yolo_seq_dir: Path) -> Path:
    """The two-figure demo clip's boxes file and truth (12 frames, 640×357, ids 1 and 2)."""
    return yolo_seq_dir


def test_pretracked_boxes_are_kept(demo_clip: Path) -> None:
    truth = json.loads((demo_clip / "truth.json").read_text())
    mot = read_mot_boxes(demo_clip / "boxes.txt")
    assert not mot.has_untracked
    out = prepare_output_tracks(track_mot_boxes(mot, num_frames=12))
    assert list(out) == [1, 2]
    for tid, t in out.items():
        tr = truth["tracks"][str(tid)]
        np.testing.assert_array_equal(t["frames"], tr["frames"])
        b = np.asarray(tr["boxes"], dtype=np.float64)  # [left, top, w, h]
        s = np.maximum(b[:, 2], b[:, 3])
        np.testing.assert_allclose(
            t["bbox"], np.stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2, s, s], 1), atol=0.01
        )


def test_untracked_boxes_go_through_sort(demo_clip: Path, tmp_path: Path) -> None:
    lines = (demo_clip / "boxes.txt").read_text().splitlines()
    untracked = [",".join([ln.split(",")[0], "-1", *ln.split(",")[2:]]) for ln in lines]
    mot = read_mot_boxes(_write(tmp_path, "\n".join(untracked) + "\n"))
    out = prepare_output_tracks(track_mot_boxes(mot, num_frames=12))
    # figure 1 (frames 0-11) is created first; figure 2 appears in frame 2 (call 3 <= min_hits:
    # shown at once), then needs 3 consecutive hits again: hidden in frames 3 and 4
    assert list(out) == [1, 2]
    np.testing.assert_array_equal(out[1]["frames"], np.arange(12))
    np.testing.assert_array_equal(out[2]["frames"], [2, 5, 6, 7, 8, 9])
    truth = json.loads((demo_clip / "truth.json").read_text())
    b = np.asarray(truth["tracks"]["1"]["boxes"])
    assert np.abs(out[1]["bbox"][:, 0] - (b[:, 0] + b[:, 2] / 2)).max() < 5.0  # Kalman-smoothed


def test_mixed_ids_do_not_collide(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "1,5,0,0,10,20,1\n2,5,1,0,10,20,1\n1,-1,100,0,10,20,0.9\n2,-1,101,0,10,20,0.9\n",
    )
    tracks = track_mot_boxes(read_mot_boxes(p))
    assert set(tracks) == {5, 6}  # SORT's ids start above the largest given id
    assert tracks[5].frames == [0, 1] and tracks[6].frames == [0, 1]
    np.testing.assert_allclose(tracks[5].xyxy()[1], [1, 0, 11, 20])


# --------------------------------------------------------------------------------------------
# Whole frame and the streaming loop


def test_whole_frame_detector_makes_one_track() -> None:
    frames = [np.zeros((120, 80, 3), np.uint8) for _ in range(7)]
    det = WholeFrameDetector()
    assert isinstance(det, Detector) and not isinstance(det, TrackedDetector)
    d = det.detect(frames[:1])[0]
    np.testing.assert_array_equal(d, [[0, 0, 80, 120, 1]])
    out = prepare_output_tracks(track_frames(run_detection(iter(frames), det, batch_size=3)))
    assert list(out) == [1]
    np.testing.assert_array_equal(out[1]["frames"], np.arange(7))
    np.testing.assert_allclose(
        out[1]["bbox"], np.tile([40.0, 60.0, 120.0, 120.0], (7, 1)), atol=1e-6
    )
    with pytest.raises(DetectorError, match="frame 0"):
        det.detect([None])


class _CountingDetector:
    """A stand-in detector recording the batches it is given."""

    needs_pixels = True

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def detect(self, frames, frame_indices=None):
        self.batches.append(list(frame_indices))
        return [np.array([[0, 0, 10, 10, 1]], np.float32) for _ in frames]


def test_run_detection_streams_in_batches() -> None:
    pulled = []

    def frames():
        for i in range(25):
            pulled.append(i)
            yield np.zeros((4, 4, 3), np.uint8)

    det = _CountingDetector()
    reports = []
    it = run_detection(frames(), det, batch_size=12, total=25, progress=reports.append)
    first = next(it)
    assert first[0] == 0 and len(pulled) == 12  # only one batch read ahead
    rest = list(it)
    assert [i for i, _, _ in [first, *rest]] == list(range(25))
    assert det.batches == [list(range(12)), list(range(12, 24)), [24]]
    assert [(r.stage, r.done, r.total) for r in reports] == [
        ("detect", 12, 25),
        ("detect", 24, 25),
        ("detect", 25, 25),
    ]


def test_run_detection_cancel() -> None:
    token = CancelToken()
    det = _CountingDetector()
    it = run_detection(
        (np.zeros((4, 4, 3), np.uint8) for _ in range(30)), det, batch_size=10, cancel=token
    )
    next(it)
    token.cancel()
    with pytest.raises(Cancelled):
        list(it)
    assert len(det.batches) == 1


def test_yolo_rejects_bad_frames(yolo_detector) -> None:
    with pytest.raises(DetectorError, match="frame 1: expected an RGB uint8 image"):
        yolo_detector.detect([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8)])


# --------------------------------------------------------------------------------------------
# Weights: search, errors, header versions


def test_network_layout() -> None:
    blocks = yolov3_blocks()
    assert len(blocks) == 107 and sum(b.kind == "conv" for b in blocks) == 75
    assert sum(b.kind == "conv" and not b.bn for b in blocks) == 3
    assert [i for i, b in enumerate(blocks) if b.kind == "yolo"] == [82, 94, 106]
    assert blocks[86].sources == (85, 61) and blocks[98].sources == (97, 36)
    assert blocks[83].sources == (79,) and blocks[95].sources == (91,)


def test_missing_weights_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PARE_STUDIO_DATA", str(tmp_path / "store"))
    with pytest.raises(AssetError) as err:  # the search of pare_studio.assets, no file anywhere
        YoloDetector(device="cpu")
    msg = str(err.value)
    for part in (str(tmp_path / "store"), ".torch/models/yolov3.weights", "pare-studio setup"):
        assert part in msg
    with pytest.raises(DetectorError, match="not found"):
        YoloDetector(tmp_path / "nope.weights", device="cpu")


@pytest.fixture(scope="module")
def bare_model() -> DarknetYoloV3:
    return DarknetYoloV3()


def test_truncated_and_wrong_weights(
    tmp_path: Path, yolo_weights: Path, bare_model: DarknetYoloV3
) -> None:
    with open(yolo_weights, "rb") as f:
        head = f.read(1 << 20)
    short = tmp_path / "short.weights"
    short.write_bytes(head)
    with pytest.raises(DetectorError, match=r"1,048,576 bytes.*248,007,048 bytes.*truncated"):
        load_darknet_weights(bare_model, short)
    big = tmp_path / "big.weights"
    with open(big, "wb") as f:
        f.write(head[:20])
        f.seek(248_007_048 + 400 - 1)
        f.write(b"\0")
    with pytest.raises(DetectorError, match="too large"):
        load_darknet_weights(bare_model, big)
    tiny = tmp_path / "tiny.weights"
    tiny.write_bytes(b"\0" * 10)
    with pytest.raises(DetectorError, match="only 10 bytes"):
        load_darknet_weights(bare_model, tiny)
    junk = tmp_path / "junk.weights"
    junk.write_bytes(b"PK\x03\x04" + b"\x01" * 100)  # e.g. a zip / torch checkpoint
    with pytest.raises(DetectorError, match="not a Darknet weights header"):
        load_darknet_weights(bare_model, junk)
    with pytest.raises(DetectorError, match="not found"):
        load_darknet_weights(bare_model, tmp_path / "missing.weights")


def test_16_byte_header(tmp_path: Path, yolo_weights: Path, yolo_detector) -> None:
    """Version 0.1 files store ``seen`` as int32 (16-byte header); the values load the same."""
    hdr = read_darknet_header(yolo_weights)
    assert (hdr.major, hdr.minor, hdr.seen, hdr.header_bytes) == (0, 2, 32013312, 20)
    old = tmp_path / "v01.weights"
    with open(yolo_weights, "rb") as src, open(old, "wb") as dst:
        src.seek(20)
        dst.write(np.array([0, 1, 0, 12345], "<i4").tobytes())
        while chunk := src.read(1 << 24):
            dst.write(chunk)
    assert old.stat().st_size == 248_007_044
    model = DarknetYoloV3()
    hdr = load_darknet_weights(model, old)
    assert (hdr.minor, hdr.seen, hdr.header_bytes) == (1, 12345, 16)
    old.unlink()
    ref = yolo_detector.model.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(value, ref[name].cpu()), name
