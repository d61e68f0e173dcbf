"""Track edits on real pipeline output: split, merge, delete, rename, export choice, undo/redo,
and the exported pare_output.pkl reflecting them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.edits import (
    EditHistory,
    EditState,
    delete_tracks,
    describe,
    merge_problem,
    merge_tracks,
    rename_track,
    select_for_export,
    set_export,
    split_track,
)
from pare_studio.errors import TrackEditError
from pare_studio.pipeline.pkl_io import load_pare_output
from pare_studio.results import TrackResult, VideoResult
from tests.export.pipeline_run import pipeline_result

ARRAY_KEYS = [k for k in TrackResult.REFERENCE_KEYS if k != "joints2d"]


@pytest.fixture(scope="module")
def run(parity_dir: Path, cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> VideoResult:
    return pipeline_result(str(parity_dir), str(cfg_path), str(ckpt_path), str(smpl_dir))


def _same_track(a: TrackResult, b: TrackResult) -> None:
    for k in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    assert (a.joints2d is None) == (b.joints2d is None)


def test_split_merge_delete_and_undo_on_pipeline_output(run: VideoResult, tmp_path: Path) -> None:
    assert sorted(run.tracks) == [1, 2] and all(len(t) == 3 for t in run.tracks.values())
    original = EditState.from_result(run)
    snapshot = {t: {k: getattr(tr, k).copy() for k in ARRAY_KEYS} for t, tr in run.tracks.items()}
    history = EditHistory(original)

    # split track 1 at frame 1: frames [0] stay track 1, frames [1, 2] become track 3
    s1 = history.apply(split_track(history.state, 1, 1), describe("split", 1, 1))
    assert s1.track_ids() == [1, 2, 3] and s1.next_id == 4
    np.testing.assert_array_equal(s1.tracks[1].frame_ids, [0])
    np.testing.assert_array_equal(s1.tracks[3].frame_ids, [1, 2])
    assert s1.tracks[3].track_id == 3
    np.testing.assert_array_equal(s1.tracks[3].verts, run.tracks[1].verts[1:])
    np.testing.assert_array_equal(s1.tracks[3].orig_cam, run.tracks[1].orig_cam[1:])
    assert s1.selected_ids() == [1, 2, 3]

    # overlapping tracks cannot be merged; the state is unchanged
    assert "both present in 1 frame(s) (0)" in merge_problem(s1, 1, 2)
    with pytest.raises(TrackEditError, match="cannot merge"):
        merge_tracks(s1, 2, 1)

    # delete the second person, rename, then merge the split parts back (order by frame)
    s2 = history.apply(delete_tracks(history.state, [2]), describe("delete", [2]))
    assert s2.track_ids() == [1, 3]
    s3 = history.apply(
        rename_track(history.state, 3, "  Runner  "), describe("rename", 3, "Runner")
    )
    assert s3.name(3) == "Runner" and s3.name(1) == "Person 1"
    s4 = history.apply(merge_tracks(history.state, 3, 1), describe("merge", 3, 1))
    assert s4.track_ids() == [3] and s4.name(3) == "Runner"
    merged = s4.tracks[3]
    np.testing.assert_array_equal(merged.frame_ids, [0, 1, 2])
    for k in ARRAY_KEYS:
        if k != "frame_ids":
            np.testing.assert_array_equal(getattr(merged, k), getattr(run.tracks[1], k), err_msg=k)

    # the exported pkl reflects the edits
    from pare_studio.export.dispatch import export_result

    (pkl,) = export_result(s4.to_result(selected_only=True), "pkl", tmp_path / "edited.pkl")
    back = load_pare_output(pkl)
    assert list(back.tracks) == [3]
    _same_track(back.tracks[3], merged)

    # undo all the way: every intermediate state comes back, the run's arrays were never touched
    assert history.undo_text == "Merge track 1 into 3"
    assert history.undo() is s3 and history.undo() is s2 and history.undo() is s1
    assert history.undo() is original and not history.can_undo
    with pytest.raises(TrackEditError, match="nothing to undo"):
        history.undo()
    assert original.track_ids() == [1, 2]
    for t, arrays in snapshot.items():
        for k, v in arrays.items():
            np.testing.assert_array_equal(getattr(run.tracks[t], k), v, err_msg=f"{t}.{k}")
    # redo replays the same states; a new edit after an undo drops the redo branch
    assert history.redo() is s1 and history.redo_text == "Delete track 2"
    history.apply(set_export(history.state, 2, False), describe("export"))
    assert not history.can_redo and history.state.selected_ids() == [1, 3]

    # an unedited export equals the run itself
    (pkl2,) = export_result(original.to_result(), "pkl", tmp_path / "plain.pkl")
    again = load_pare_output(pkl2)
    for t in (1, 2):
        _same_track(again.tracks[t], run.tracks[t])


def test_split_rules_ids_names_and_export_choice(run: VideoResult) -> None:
    state = rename_track(EditState.from_result(run), 2, "Bob")
    with pytest.raises(TrackEditError, match="spans frames 0..2"):
        split_track(state, 2, 0)  # the first frame would leave an empty first part
    with pytest.raises(TrackEditError, match="spans frames 0..2"):
        split_track(state, 2, 3)
    with pytest.raises(TrackEditError, match="there is no track 9"):
        split_track(state, 9, 1)
    a = split_track(state, 2, 2)
    assert a.name(3) == "Bob (2)" and a.tracks[2].frame_ids.tolist() == [0, 1]
    # ids are not reused after a delete
    b = split_track(delete_tracks(a, [3]), 2, 1)
    assert b.track_ids() == [1, 2, 4]
    c = select_for_export(b, [4])
    assert c.selected_ids() == [4]
    assert c.to_result(selected_only=True).tracks.keys() == {4}
    assert merge_tracks(set_export(c, 2, False), 2, 4).selected_ids() == [2]  # either chosen
    with pytest.raises(TrackEditError, match="no track 7"):
        select_for_export(c, [7])
    assert rename_track(c, 2, "   ").name(2) == "Person 2"  # blank = default name
    with pytest.raises(TrackEditError, match="two different tracks"):
        merge_tracks(c, 2, 2)


def test_merge_keeps_keypoints_only_when_both_tracks_have_them(run: VideoResult) -> None:
    import dataclasses

    t1 = run.tracks[1]
    kp = np.arange(3 * 21 * 3, dtype=np.float64).reshape(3, 21, 3)
    with_kp = dataclasses.replace(t1, joints2d=kp)
    state = split_track(EditState.from_result(dataclasses.replace(run, tracks={1: with_kp})), 1, 2)
    np.testing.assert_array_equal(state.tracks[2].joints2d, kp[2:])
    back = merge_tracks(state, 1, 2)
    np.testing.assert_array_equal(back.tracks[1].joints2d, kp)
    mixed = EditState(
        tracks={1: state.tracks[1], 2: dataclasses.replace(state.tracks[2], joints2d=None)}
    )
    assert merge_tracks(mixed, 1, 2).tracks[1].joints2d is None
