"""Track edits in the window: rename / delete / merge / split / export choice, undo and redo.

On real pipeline output (the synthetic checkpoint on the two-person clip) and through the track
list's actions, the Edit menu and the undo stack; the timeline, the 3D view and exports follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pare_studio.edits import EditState
from pare_studio.errors import TrackEditError
from pare_studio.results import VideoResult
from tests.gui.editing_data import pipeline_video_result


@pytest.fixture(scope="module")
def pipeline_out(parity_dir: Path, cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> VideoResult:
    return pipeline_video_result(parity_dir, cfg_path, ckpt_path, smpl_dir)


@pytest.fixture
def session(qapp: object) -> Iterator[object]:
    from pare_studio.gui.edit_session import EditSession
    from pare_studio.gui.task_thread import TaskThread

    tasks = TaskThread()
    s = EditSession(tasks)
    yield s
    assert tasks.shutdown()


def test_session_edits_undo_and_redo_on_pipeline_output(session, pipeline_out: VideoResult) -> None:  # noqa: ANN001
    assert sorted(pipeline_out.tracks) == [1, 2]
    assert all(list(t.frame_ids) == [0, 1, 2] for t in pipeline_out.tracks.values())
    s = session
    s.reset(EditState.from_result(pipeline_out))
    original = dict(s.state.tracks)
    stack = s.undo_stack
    changes: list[int] = []
    s.state_changed.connect(lambda: changes.append(1))

    assert s.rename(1, "Alice")
    assert s.state.name(1) == "Alice" and stack.undoText() == "Rename track 1 to 'Alice'"
    assert not s.rename(1, "Alice")  # no change, nothing pushed
    assert s.split(1, 2)
    assert s.state.track_ids() == [1, 2, 3]
    assert list(s.state.tracks[1].frame_ids) == [0, 1] and list(s.state.tracks[3].frame_ids) == [2]
    assert s.state.name(3) == "Alice (2)"
    with pytest.raises(TrackEditError, match="both present"):
        s.merge(2, 3)  # track 2 is on frame 2 too
    assert stack.count() == 2
    assert s.merge(1, 3) and s.state.track_ids() == [1, 2]
    np.testing.assert_array_equal(s.state.tracks[1].verts, original[1].verts)
    assert s.delete([2]) and s.state.track_ids() == [1]
    assert s.set_export(1, False) and s.state.selected_ids() == []
    assert stack.count() == 5 and len(changes) == 5

    for expected in ([1], [1, 2], [1, 2, 3], [1, 2]):
        stack.undo()
        assert s.state.track_ids() == expected
    assert s.state.name(1) == "Alice"
    stack.undo()  # the rename
    assert s.state.name(1) == "Person 1" and not stack.canUndo()
    assert all(s.state.tracks[t] is original[t] for t in original)  # exactly the state before
    for _ in range(4):
        stack.redo()
    assert s.state.track_ids() == [1] and s.state.name(1) == "Alice"
    assert s.state.selected_ids() == [1]
    stack.redo()
    assert not stack.canRedo()
    assert s.state.selected_ids() == []


# --------------------------------------------------------------------------------------------
# In the window


def _window_with(make_main_window, result: VideoResult, smpl_dir: Path, **kwargs: object):  # noqa: ANN001, ANN202
    from tests.gui.synthetic import ArrayFrameSource, gradient_frames, load_template

    w = make_main_window(**kwargs)
    _, faces = load_template(smpl_dir)
    w.state.set_source(
        ArrayFrameSource(gradient_frames(result.n_frames, result.width, result.height))
    )
    w.state.set_faces(faces)
    w.state.set_result(result)
    return w


def _menu_action(menu, prefix: str):  # noqa: ANN001, ANN202
    for a in menu.actions():
        if a.text().replace("&", "").startswith(prefix):
            return a
    raise AssertionError(f"no action {prefix!r} in {[a.text() for a in menu.actions()]}")


def _shown(w) -> list[int]:  # noqa: ANN001
    w.mesh_view.draw_now()
    return w.mesh_view.shown_track_ids()


def test_track_list_actions_edit_the_tracks_and_undo_redo_restores_them(
    make_main_window,
    pipeline_out: VideoResult,
    smpl_dir: Path,
    tmp_path: Path,
    qtbot,
    monkeypatch,  # noqa: ANN001
) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QInputDialog

    from pare_studio.gui.placement import display_points
    from pare_studio.pipeline.pkl_io import load_pare_output

    w = _window_with(make_main_window, pipeline_out, smpl_dir, assets=None)
    ed, tl, tm = w.editing, w.track_list, w.timeline
    original = {t: pipeline_out.tracks[t] for t in pipeline_out.tracks}
    assert ed.session.state.track_ids() == [1, 2] and tl.track_ids() == [1, 2]
    assert tl.is_exported(1) and tl.is_exported(2)

    # Split #1 at frame 2 from its context menu.
    w.state.set_frame(2)
    menu = tl.context_menu_for(1)
    assert w.state.selected_track == 1
    _menu_action(menu, "Split at frame 2").trigger()
    assert tl.track_ids() == [1, 2, 3] and sorted(tm.track_rows()) == [1, 2, 3]
    assert tm.presence(1) == [(0, 2)] and tm.presence(3) == [(2, 3)]
    assert _shown(w) == [2, 3]
    t1 = original[1]
    np.testing.assert_allclose(
        w.mesh_view.displayed_vertices(3), display_points(t1.verts[2], t1.orig_cam[2]), atol=1e-5
    )

    # Rename #3 (the dialog answers "Carol"), merge #3 back into #1, delete #2.
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: ("Carol", True)))
    _menu_action(tl.context_menu_for(3), "Rename").trigger()
    assert ed.session.state.name(3) == "Carol" and "Carol" in tl.item(tl.row_of(3), 0).text()
    merge = tl.context_menu_for(1).findChild(type(menu), "mergeMenu")
    into = {a.objectName(): a for a in merge.actions()}
    assert not into["merge_2"].isEnabled() and "both present" in into["merge_2"].toolTip()
    into["merge_3"].trigger()
    assert tl.track_ids() == [1, 2] and tm.presence(1) == [(0, 3)]
    np.testing.assert_array_equal(w.state.track(1).verts, t1.verts)
    w.state.select_track(2)
    ed.actions.delete.trigger()
    assert tl.track_ids() == [1] and sorted(tm.track_rows()) == [1] and _shown(w) == [1]

    # Untick #1's export box: an undoable edit too.
    tl.set_exported(1, False)
    assert ed.session.state.selected_ids() == []
    assert ed.session.undo_stack.count() == 5

    # Undo everything with Ctrl+Z: the original tracks are back, in every view.
    w.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is w, timeout=5000)
    w.frame_view.setFocus()
    for _ in range(5):
        qtbot.keyClick(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not ed.session.undo_stack.canUndo()
    assert tl.track_ids() == [1, 2] and tl.is_exported(1)
    assert all(w.state.track(t) is original[t] for t in original)
    assert tm.presence(1) == [(0, 3)] and tm.presence(2) == [(0, 3)] and _shown(w) == [1, 2]
    assert 3 not in ed.session.state.tracks and ed.session.state.names == {}

    # Redo the split and the rename with Ctrl+Shift+Z, then export the pkl from the window.
    for _ in range(2):
        qtbot.keyClick(
            w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
        )
    assert tl.track_ids() == [1, 2, 3] and ed.session.state.name(3) == "Carol"
    out = tmp_path / "edited" / "pare_output.pkl"
    with qtbot.waitSignal(w.engine.export_finished, timeout=60000):
        assert w.export_pkl(out)
    back = load_pare_output(out)
    assert sorted(back.tracks) == [1, 2, 3]
    assert list(back.tracks[1].frame_ids) == [0, 1] and list(back.tracks[3].frame_ids) == [2]
    np.testing.assert_array_equal(back.tracks[3].verts[0], t1.verts[2])
    np.testing.assert_array_equal(back.tracks[2].pose, original[2].pose)


def test_edits_are_refused_with_a_reason_and_new_results_start_a_new_history(
    make_main_window,
    pipeline_out: VideoResult,
    smpl_dir: Path,
    qtbot,  # noqa: ANN001
) -> None:
    from tests.gui.synthetic import make_video_result

    w = _window_with(make_main_window, pipeline_out, smpl_dir, assets=None)
    ed = w.editing
    w.state.select_track(1)
    w.state.set_frame(0)
    assert not ed.actions.split.isEnabled() and "after its first" in ed.actions.split.toolTip()
    with qtbot.waitSignal(w.error_shown, timeout=5000):
        assert not ed.merge_into_selected(2)
    assert "both present" in w.last_error
    w.error_box.close()
    assert ed.session.undo_stack.count() == 0
    w.state.set_frame(1)
    assert ed.actions.split.isEnabled() and ed.split_selected()
    assert ed.session.undo_stack.count() == 1
    other = make_video_result(smpl_dir, n_frames=20)
    w.state.set_result(other)  # e.g. another pkl opened: the edits of the old results are gone
    assert ed.session.undo_stack.count() == 0
    assert ed.session.state.track_ids() == [1, 2]
    assert ed.session.state.tracks[2] is other.tracks[2]
