"""The video pipeline generator end to end on a synthetic clip with a boxes file."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from pare_studio.cancel import CancelToken
from pare_studio.errors import Cancelled, DetectorError, NoPersonFound, VideoReadError
from pare_studio.pipeline.run import RunOptions, RunTimings, iter_video, make_detector, run_video
from pare_studio.pipeline.video import open_source
from pare_studio.results import VideoResult
from tests.pipeline.video_helpers import (
    REFERENCE_KEYS,
    REFERENCE_LAYOUT,
    boxes_from_file,
    cached_predictor,
    hand_crop,
    make_clip,
    spec_crop_joints2d,
    spec_orig_cam,
    spec_orig_joints2d,
)


@pytest.fixture(scope="module")
def predictor(cfg_path: Path, ckpt_path: Path, smpl_dir: Path):  # type: ignore[no-untyped-def]
    return cached_predictor(str(cfg_path), str(ckpt_path), str(smpl_dir))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, parity_dir: Path) -> Path:
    """3 frames, 320×180, two figures in every frame: 6 person-frames."""
    out = tmp_path_factory.mktemp("clip3")
    make_clip(parity_dir, out, frames=3)
    return out


def _boxes_options(clip: Path, **kw) -> RunOptions:  # type: ignore[no-untyped-def]
    return RunOptions(detector="boxes", boxes_file=clip / "boxes.txt", **kw)


def test_iter_video_end_to_end(clip: Path, predictor) -> None:  # type: ignore[no-untyped-def]
    timings = RunTimings()
    # batch 4: the first batch holds both people of frame 0 and of frame 1, across tracks.
    gen = iter_video(
        clip / "clip.mp4", predictor, _boxes_options(clip, batch_size=4), timings=timings
    )
    reports = []
    while True:
        try:
            reports.append(next(gen))
        except StopIteration as stop:
            result: VideoResult = stop.value
            break
    stages = [r.stage for r in reports]
    assert stages == sorted(stages, key=["detect", "infer"].index)  # detect first, then infer
    detect = [r for r in reports if r.stage == "detect"]
    assert detect[0].done == 0 and detect[-1].done == detect[-1].total == 3
    infer = [r for r in reports if r.stage == "infer" and r.track is None]
    assert [r.done for r in infer] == [0, 4, 6] and all(r.total == 6 for r in infer)
    announced = [r.track.track_id for r in reports if r.track is not None]
    assert sorted(announced) == [1, 2]
    # A track is announced once complete, with the same arrays as the final result.
    for r in reports:
        if r.track is not None:
            np.testing.assert_array_equal(r.track.verts, result.tracks[r.track.track_id].verts)

    assert (result.n_frames, result.width, result.height) == (3, 320, 180)
    assert result.fps == pytest.approx(25.0)
    assert result.source.endswith("clip.mp4")
    assert list(result.tracks) == [1, 2]
    for tid, track in result.tracks.items():
        ref = track.to_reference_dict()
        assert list(ref) == REFERENCE_KEYS and ref["joints2d"] is None
        for key, (tail, dtype) in REFERENCE_LAYOUT.items():
            assert ref[key].shape == (3, *tail) and ref[key].dtype == dtype, key
        frames, boxes = boxes_from_file(clip / "boxes.txt", tid)
        np.testing.assert_array_equal(track.frame_ids, frames)
        np.testing.assert_allclose(track.bboxes, boxes, rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            track.orig_cam, spec_orig_cam(track.pred_cam, track.bboxes, 320, 180), rtol=1e-9
        )
        want = spec_orig_joints2d(spec_crop_joints2d(track.joints3d, track.pred_cam), track.bboxes)
        np.testing.assert_allclose(track.smpl_joints2d, want, rtol=1e-4, atol=2e-3)
        with torch.inference_mode():
            v, j = predictor.smpl(torch.from_numpy(track.pose), torch.from_numpy(track.betas))
        np.testing.assert_allclose(track.verts, v.numpy(), atol=1e-5)
        np.testing.assert_allclose(track.joints3d, j.numpy(), atol=1e-5)
    assert timings.crops == 6 and timings.predictor_s > 0 and timings.infer_s >= timings.predictor_s

    # The crop of track 2 at frame 1, made by hand from the spec, gives the same network output.
    with open_source(clip / "clip.mp4") as src:
        frame = src.read(1)
    t2 = result.tracks[2]
    out = predictor.predict(hand_crop(frame, t2.bboxes[1]))
    np.testing.assert_allclose(out.pred_cam[0], t2.pred_cam[1], atol=2e-4)
    np.testing.assert_allclose(out.pred_pose[0], t2.pose[1], atol=2e-4)


def test_cancel_between_batches_stops_the_run_and_the_helper_thread(clip: Path, predictor) -> None:  # type: ignore[no-untyped-def]
    token = CancelToken()
    gen = iter_video(clip / "clip.mp4", predictor, _boxes_options(clip, batch_size=1), token)
    seen = []
    with pytest.raises(Cancelled):
        for report in gen:
            seen.append(report)
            if report.stage == "infer" and report.done == 1:
                token.cancel()
    assert max(r.done for r in seen if r.stage == "infer") == 1  # stopped within one batch
    assert not any(t.name == "pare-crops" and t.is_alive() for t in threading.enumerate())


def test_min_frames_filter_can_leave_nobody(clip: Path, predictor) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NoPersonFound, match=r"--min_frames.*2 track\(s\) of 3, 3 frames"):
        run_video(clip / "clip.mp4", predictor, _boxes_options(clip, min_frames=4))


def test_empty_boxes_file_is_no_person(tmp_path: Path) -> None:
    empty = tmp_path / "boxes.txt"
    empty.write_text("# frame,id,bb_left,bb_top,bb_width,bb_height,conf,x,y,z\n\n")
    with pytest.raises(NoPersonFound, match="lists no boxes"):
        make_detector(RunOptions(detector="boxes", boxes_file=empty))


def test_boxes_past_the_end_of_the_video(clip: Path, predictor, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("1,1,10,10,50,80,1,-1,-1,-1\n9,1,10,10,50,80,1,-1,-1,-1\n")
    with pytest.raises(DetectorError, match="past the end of the video"):
        run_video(clip / "clip.mp4", predictor, RunOptions(detector="boxes", boxes_file=boxes))


def test_unreadable_video(tmp_path: Path, predictor) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 500)
    with pytest.raises(VideoReadError):
        run_video(bad, predictor, RunOptions(detector="whole"))


def test_options_are_validated() -> None:
    for bad in (
        RunOptions(batch_size=0),
        RunOptions(detector="hog"),
        RunOptions(min_frames=-1),
        RunOptions(smoothing_method="kalman"),
    ):
        with pytest.raises(ValueError):
            bad.validate()
    with pytest.raises(DetectorError, match="--boxes FILE"):
        make_detector(RunOptions(detector="boxes"))
