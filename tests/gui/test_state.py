"""ViewerState: cursor, selection, visibility, display options and streaming (no widgets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.gui.mesh_snapshot import build_snapshot
from pare_studio.gui.state import ViewerState
from tests.gui.synthetic import ArrayFrameSource, gradient_frames, load_template, make_video_result


@pytest.fixture
def state(qapp: object, smpl_dir: Path) -> ViewerState:
    s = ViewerState()
    s.set_source(ArrayFrameSource(gradient_frames(20)))
    s.set_result(make_video_result(smpl_dir))
    return s


def test_frame_is_clamped_and_signalled(state: ViewerState, qtbot: object) -> None:
    seen: list[int] = []
    state.frame_changed.connect(seen.append)
    state.set_frame(7)
    state.set_frame(7)  # no change, no signal
    state.set_frame(500)
    state.step(-3)
    state.set_frame(-4)
    assert seen == [7, 19, 16, 0]
    assert state.n_frames == 20 and state.frame_size == (640, 360) and state.fps == 25.0


def test_selection_visibility_and_visible_tracks(state: ViewerState) -> None:
    assert state.selected_track == 1  # the first track is selected when a result arrives
    state.set_frame(5)
    assert [t.track_id for t, _ in state.visible_tracks_at()] == [1, 2]
    assert state.visible_tracks_at(8) and [t.track_id for t, _ in state.visible_tracks_at(8)] == [
        1
    ]  # gap of #2
    changes: list[tuple[int, bool]] = []
    state.visibility_changed.connect(lambda tid, vis: changes.append((tid, vis)))
    state.set_track_visible(2, False)
    state.set_track_visible(2, False)
    assert [t.track_id for t, _ in state.visible_tracks_at()] == [1]
    state.set_track_visible(2, True)
    assert changes == [(2, False), (2, True)]
    state.select_track(2)
    state.select_track(None)
    assert state.selected_track == -1


def test_set_result_keep_view_keeps_choices(state: ViewerState, smpl_dir: Path) -> None:
    state.select_track(2)
    state.set_track_visible(1, False)
    state.set_result(make_video_result(smpl_dir), keep_view=True)
    assert state.selected_track == 2 and not state.is_visible(1)
    state.set_result(make_video_result(smpl_dir))
    assert state.selected_track == 1 and state.is_visible(1)


def test_streamed_tracks_are_added_in_order(qapp: object, smpl_dir: Path) -> None:
    full = make_video_result(smpl_dir)
    s = ViewerState()
    s.set_source(ArrayFrameSource(gradient_frames(20)))
    s.begin_streaming(20, 640, 360, 25.0, "clip.mp4")
    added: list[int] = []
    s.track_added.connect(added.append)
    s.add_track(full.tracks[2])
    s.add_track(full.tracks[1])
    assert added == [2, 1]
    assert s.track_ids == [1, 2] and list(s.result.tracks) == [1, 2]
    assert s.selected_track == 2  # the first track to arrive


def test_display_options_reject_unknown_names(state: ViewerState) -> None:
    fired: list[int] = []
    state.display_changed.connect(lambda: fired.append(1))
    state.set_display(wireframe=True)
    state.set_display(wireframe=True)
    assert state.display.wireframe and fired == [1]
    with pytest.raises(KeyError):
        state.set_display(no_such_option=True)


def test_snapshot_holds_the_frames_arrays(state: ViewerState, smpl_dir: Path) -> None:
    _, faces = load_template(smpl_dir)
    state.set_faces(faces)
    state.set_frame(10)
    snap = build_snapshot(state)
    assert [d.track_id for d in snap.tracks] == [1, 2]
    t2 = state.track(2)
    row = t2.index_of(10)
    d2 = snap.tracks[1]
    assert d2.verts is t2.verts[row] or np.array_equal(d2.verts, t2.verts[row])
    np.testing.assert_array_equal(d2.orig_cam, t2.orig_cam[row])
    assert snap.overlay and snap.frame_size == (640, 360) and snap.faces is state.faces
    state.set_display(all_tracks_3d=False)
    assert [d.track_id for d in build_snapshot(state).tracks_3d] == [1]
    state.set_display(show_mesh_overlay=False)
    assert not build_snapshot(state).overlay


def test_adopting_the_streamed_result_keeps_the_views(qapp: object, smpl_dir: Path) -> None:
    full = make_video_result(smpl_dir)
    s = ViewerState()
    s.begin_streaming(20, 640, 360, 25.0, "clip.mp4")
    for t in full.tracks.values():
        s.add_track(t)
    resets: list[int] = []
    s.result_changed.connect(lambda: resets.append(1))
    s.adopt_result(full, path=Path("out.pkl"))  # the same track objects: no reset
    assert s.result is full and s.result_path == Path("out.pkl") and not resets
    other = make_video_result(smpl_dir)
    s.set_track_visible(2, False)
    s.adopt_result(other)  # different tracks: a reset that keeps the user's choices
    assert s.result is other and resets == [1] and not s.is_visible(2)
