"""Exports and project files from the window: the export dialog, background exports, save / open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pare_studio import edits
from pare_studio.edits import EditState
from pare_studio.pipeline.pkl_io import load_pare_output
from pare_studio.project import SmoothingSettings
from pare_studio.results import VideoResult
from tests.gui.editing_data import pipeline_video_result
from tests.gui.prompts import save_prompt


@pytest.fixture(scope="module")
def pipeline_out(parity_dir: Path, cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> VideoResult:
    return pipeline_video_result(parity_dir, cfg_path, ckpt_path, smpl_dir)


@pytest.fixture
def tasks(qapp: object) -> Iterator[object]:
    from pare_studio.gui.task_thread import TaskThread

    t = TaskThread()
    yield t
    assert t.shutdown()


def _edited(result: VideoResult) -> EditState:
    s = EditState.from_result(result)
    s = edits.rename_track(s, 2, "Bob")
    s = edits.split_track(s, 1, 2)  # 1: frames 0-1, 3: frame 2
    return edits.set_export(s, 1, False)  # export 2 and 3


def test_export_dialog_builds_the_job_and_the_task_thread_writes_it(
    qtbot,
    tasks,
    pipeline_out: VideoResult,
    smpl_dir: Path,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    from pare_studio.gui.qt_export_dialog import QtExportDialog
    from pare_studio.gui.smoothing_jobs import run_export_job

    state = _edited(pipeline_out)
    dlg = QtExportDialog(
        state, SmoothingSettings(), smpl_available=True, default_out=tmp_path / "scene.glb"
    )
    qtbot.addWidget(dlg)
    assert dlg.fmt == "glb" and dlg.checked_tracks() == [2, 3]
    assert "Bob" in dlg.tracks.item(1).text()
    assert not dlg.smooth.isChecked()
    dlg.set_format("pkl")
    assert dlg.out.text().endswith("scene.pkl") and not dlg.units.isEnabled()
    dlg.set_format("bvh")
    assert dlg.out.text().endswith("scene.bvh") and dlg.units.isEnabled()
    dlg.units.setCurrentIndex(1)  # centimetres
    job = dlg.job(smpl_dir)
    assert job.fmt == "bvh" and job.track_ids == (2, 3) and job.format_options.bvh_scale == 100.0
    assert job.smoothing is None

    with qtbot.waitSignal(tasks.finished, timeout=120000) as blocker:
        tasks.submit("export", lambda token, report: run_export_job(job, token, report))
    written = blocker.args[2]
    assert [p.name for p in written] == ["scene_track2.bvh", "scene_track3.bvh"]
    text = written[1].read_text()
    assert text.startswith("HIERARCHY") and "Frames: 1" in text  # track 3 is one frame long

    dlg.set_checked_tracks([])
    dlg.accept()
    assert dlg.result() == 0 and "at least one" in dlg.message.text()


def test_export_dialog_without_smpl_refuses_rig_formats(
    qtbot, pipeline_out: VideoResult, tmp_path: Path
) -> None:  # noqa: ANN001
    from pare_studio.gui.qt_export_dialog import QtExportDialog

    state = EditState.from_result(pipeline_out)
    dlg = QtExportDialog(
        state, SmoothingSettings(enabled=True), smpl_available=False, default_out=tmp_path / "x.glb"
    )
    qtbot.addWidget(dlg)
    assert "SMPL" in dlg.message.text() and not dlg.smooth.isEnabled()
    dlg.set_format("npz")
    assert dlg.problem() is None and dlg.message.text() == ""
    assert dlg.job(None).smoothing is None


def test_export_job_smooths_reusing_presmoothed_tracks(
    pipeline_out: VideoResult, smpl_dir: Path, tmp_path: Path
) -> None:
    from pare_studio.gui.smoothing_jobs import (
        ExportJob,
        export_job_result,
        load_body,
        run_export_job,
        smooth_track_cancellable,
    )
    from pare_studio.pipeline.smoothing import smooth_track

    state = _edited(pipeline_out)
    settings = SmoothingSettings(enabled=True, min_cutoff=0.01, beta=0.5)
    body = load_body(smpl_dir)
    pre = smooth_track_cancellable(state.tracks[2], body, settings)
    ref = smooth_track(state.tracks[2], body, "rotation", 0.01, 0.5)
    np.testing.assert_allclose(pre.verts, ref.verts, atol=1e-6)
    np.testing.assert_allclose(pre.pose, ref.pose, atol=1e-7)
    job = ExportJob(
        fmt="pkl",
        out=tmp_path / "smoothed.pkl",
        state=state,
        track_ids=(2, 3),
        smoothing=settings,
        smpl_dir=smpl_dir,
        presmoothed={2: pre},
    )
    res = export_job_result(job)
    assert res.tracks[2] is pre
    np.testing.assert_allclose(
        res.tracks[3].verts,
        smooth_track(state.tracks[3], body, "rotation", 0.01, 0.5).verts,
        atol=1e-6,
    )
    back = load_pare_output(run_export_job(job)[0])
    assert sorted(back.tracks) == [2, 3]
    np.testing.assert_allclose(back.tracks[2].pose, pre.pose, atol=1e-7)


# --------------------------------------------------------------------------------------------
# In the window


def _edited_window(make_main_window, pipeline_out: VideoResult, qtbot, **kwargs: object):  # noqa: ANN001, ANN202
    """The pipeline's clip and results, edited: #2 "Bob", #1 split at 2, #1 not exported."""
    w = make_main_window(**kwargs)
    assert w.open_video(pipeline_out.source)
    w.state.set_result(pipeline_out)
    ed = w.editing
    w.state.select_track(2)
    assert ed.rename_selected("Bob")
    w.state.select_track(1)
    w.state.set_frame(2)
    assert ed.split_selected()
    w.state.select_track(1)
    assert ed.set_export_selected(False)
    assert ed.session.state.selected_ids() == [2, 3]
    return w


def test_save_project_and_reopen_it(
    make_main_window, pipeline_out: VideoResult, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    from PySide6.QtWidgets import QFileDialog

    w = _edited_window(make_main_window, pipeline_out, qtbot)
    ed = w.editing
    with qtbot.waitSignal(
        ed.session.smoothing_busy_changed, timeout=120000, check_params_cb=lambda b: not b
    ):
        ed.panel.set_settings(
            SmoothingSettings(enabled=True, method="rotation", min_cutoff=0.02, beta=0.3)
        )
        ed.panel.enabled.toggled.emit(True)  # as if ticked: emits the panel's settings
    assert ed.session.smoothing == SmoothingSettings(
        enabled=True, method="rotation", min_cutoff=0.02, beta=0.3
    )
    w.state.set_frame(1)
    w.state.select_track(3)
    path = tmp_path / "session.pareproj"
    asked: list[str] = []

    def dialog(*_a: object, **_k: object) -> tuple[str, str]:
        asked.append("save")
        return str(tmp_path / "session"), ""  # the suffix is added

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(QFileDialog, "getSaveFileName", staticmethod(dialog))
        with qtbot.waitSignal(ed.project_saved, timeout=60000):
            ed.actions.save_project.trigger()  # no project yet: asks where
        assert ed.project_path == path and path.is_file() and asked == ["save"]
        first = path.stat().st_mtime_ns
        w.state.set_frame(1)
        with qtbot.waitSignal(ed.project_saved, timeout=60000):
            ed.actions.save_project.trigger()  # Ctrl+S again: same file, no question
        assert asked == ["save"] and path.stat().st_mtime_ns >= first
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == ["session.pareproj"]  # no temp
    saved = ed.session.state

    w2 = make_main_window()
    with qtbot.waitSignal(w2.editing.project_opened, timeout=60000):
        assert w2.open_path(path)  # File ▸ Open recognises projects
    ed2 = w2.editing
    st = ed2.session.state
    assert w2.state.video_path == Path(pipeline_out.source)
    assert st.track_ids() == [1, 2, 3] and st.selected_ids() == [2, 3] and st.name(2) == "Bob"
    assert st.next_id == saved.next_id
    for t in (1, 2, 3):
        for key in ("frame_ids", "verts", "pose", "orig_cam", "bboxes"):
            np.testing.assert_array_equal(getattr(st.tracks[t], key), getattr(saved.tracks[t], key))
    assert (
        ed2.session.smoothing == ed.session.smoothing
        and ed2.panel.settings() == ed.session.smoothing
    )
    assert w2.state.frame == 1 and w2.state.selected_track == 3
    assert w2.track_list.track_ids() == [1, 2, 3] and not w2.track_list.is_exported(1)
    assert "Bob" in w2.track_list.item(w2.track_list.row_of(2), 0).text()
    assert ed2.session.undo_stack.count() == 0 and "session.pareproj" in w2.windowTitle()
    qtbot.waitUntil(lambda: ed2.session.is_smoothing_current(), timeout=120000)
    assert w2.state.track(2) is ed2.session.smoothed_track(2)


def test_a_damaged_project_gives_an_error_and_the_window_stays_usable(
    make_main_window,
    pipeline_out: VideoResult,
    tmp_path: Path,
    qtbot,  # noqa: ANN001
) -> None:
    from PySide6.QtWidgets import QMessageBox

    w = _edited_window(make_main_window, pipeline_out, qtbot, assets=None)
    good = tmp_path / "good.pareproj"
    with qtbot.waitSignal(w.editing.project_saved, timeout=60000):
        assert w.editing.save_project(good)
    bad = tmp_path / "bad.pareproj"
    data = good.read_bytes()
    bad.write_bytes(data[: len(data) // 2])  # truncated
    with qtbot.waitSignal(w.error_shown, timeout=5000) as blocker:
        assert not w.editing.open_project(bad)
    message = blocker.args[0]
    assert "bad.pareproj" in message and "Traceback" not in message
    box = w.error_box
    assert isinstance(box, QMessageBox) and box.isVisible()
    box.button(QMessageBox.StandardButton.Ok).click()
    # nothing changed, and the window still works
    assert w.editing.session.state.track_ids() == [1, 2, 3] and w.track_list.track_ids() == [
        1,
        2,
        3,
    ]
    assert w.editing.session.undo_stack.count() == 3
    w.editing.session.undo_stack.undo()
    assert w.editing.session.state.selected_ids() == [1, 2, 3]
    # the undo left unsaved work: reopening the project asks first (once), Discard goes on
    with save_prompt("Discard") as asked, qtbot.waitSignal(w.editing.project_opened, timeout=60000):
        assert w.editing.open_project(good)
    assert len(asked) == 1
    assert w.editing.session.state.selected_ids() == [2, 3]


def test_exports_from_the_window_reflect_the_edits(
    make_main_window, pipeline_out: VideoResult, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    w = _edited_window(make_main_window, pipeline_out, qtbot)
    ed = w.editing
    # File ▸ Export… → pkl: the edited tracks chosen for export
    dlg = ed.open_export_dialog("pkl")
    assert dlg.isVisible() and dlg.checked_tracks() == [2, 3]
    dlg.set_checked_tracks([1, 3])
    dlg.out.setText(str(tmp_path / "edited.pkl"))
    with qtbot.waitSignal(ed.export_finished, timeout=120000) as blocker:
        dlg.buttons.button(dlg.buttons.StandardButton.Ok).click()
    assert blocker.args[0] == [tmp_path / "edited.pkl"]
    back = load_pare_output(tmp_path / "edited.pkl")
    assert sorted(back.tracks) == [1, 3]
    assert list(back.tracks[1].frame_ids) == [0, 1] and list(back.tracks[3].frame_ids) == [2]
    np.testing.assert_array_equal(back.tracks[3].verts[0], pipeline_out.tracks[1].verts[2])
    assert ed.session.state.selected_ids() == [1, 3]  # the dialog's choice is remembered...
    ed.session.undo_stack.undo()  # ...as an undoable edit
    assert ed.session.state.selected_ids() == [2, 3]

    for fmt, out in (
        ("glb", tmp_path / "scene.glb"),
        ("bvh", tmp_path / "bvh" / "anim.bvh"),
        ("npz", tmp_path / "npz" / "smpl.npz"),
    ):
        with qtbot.waitSignal(ed.export_finished, timeout=120000) as blocker:
            assert ed.export(ed.export_job(fmt, out))
        files = blocker.args[0]
        assert files and all(Path(f).is_file() and Path(f).stat().st_size > 0 for f in files)
        if fmt == "glb":
            assert files == [out] and out.read_bytes()[:4] == b"glTF"
        elif fmt == "bvh":
            assert [Path(f).name for f in files] == ["anim_track2.bvh", "anim_track3.bvh"]
        else:
            with np.load(files[1]) as z:
                assert z["poses"].shape == (1, 72) and list(z["frame_ids"]) == [2]
