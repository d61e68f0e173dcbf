"""The window without inference: viewer mode, files, errors, drag-and-drop, settings, exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QMessageBox

from pare_studio.gui import settings as st
from pare_studio.gui.qt_assets_dialog import QtAssetsDialog
from pare_studio.gui.settings import AssetPaths
from pare_studio.pipeline.pkl_io import load_pare_output, save_pare_output
from pare_studio.pipeline.video import open_source
from tests.gui.synthetic import ArrayFrameSource, gradient_frames, load_template, make_video_result


def _clip_with_results(demo_clip: Path, smpl_dir: Path, folder: Path) -> tuple[Path, Path]:
    """A copy of the demo clip with a synthetic pare_output.pkl beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / "clip.mp4"
    shutil.copy(demo_clip / "clip.mp4", video)
    result = make_video_result(smpl_dir, n_frames=6)
    pkl = save_pare_output(folder / "pare_output.pkl", result)
    return video, pkl


def test_viewer_mode_opens_and_scrubs_a_video(make_main_window, demo_clip: Path) -> None:  # noqa: ANN001
    w = make_main_window(assets=None)
    assert w.assets is None
    assert "Viewer mode" in w._mode_label.text()  # noqa: SLF001
    assert w.open_path(demo_clip / "clip.mp4")
    assert not w.actions_.run.isEnabled() and not w.run_panel.run_button.isEnabled()
    assert "model files" in w.run_panel.run_button.toolTip()
    with open_source(demo_clip / "clip.mp4") as src:
        assert w.state.n_frames == len(src) == 6
        for f in (0, 3, 5, 2):
            w.state.set_frame(f)
            np.testing.assert_array_equal(w.frame_view.image_item.image, src.read(f))
    assert "clip.mp4" in w.windowTitle()
    assert st.recent_files()[0].endswith("clip.mp4")


def test_open_results_beside_their_video(
    make_main_window, demo_clip: Path, smpl_dir: Path, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    video, pkl = _clip_with_results(demo_clip, smpl_dir, tmp_path / "out")
    w = make_main_window()  # synthetic assets: the SMPL faces are loaded in the engine thread
    qtbot.waitUntil(lambda: w.state.faces is not None, timeout=120000)
    assert w.open_path(pkl)
    assert w.state.video_path == video
    assert w.track_list.track_ids() == [1, 2]
    assert w.state.result_path == pkl
    w.state.set_frame(4)
    w.mesh_view.draw_now()
    assert w.mesh_view.shown_track_ids() == [1, 2]
    assert w.frame_view.rendered_overlay_frame() == 4
    assert w.state.faces.shape == (13776, 3)


def test_results_without_a_video_are_shown_alone(
    make_main_window, smpl_dir: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    result = make_video_result(smpl_dir, n_frames=8)
    result.width = result.height = 0  # as in the reference's pkl: no frame size recorded
    pkl = save_pare_output(tmp_path / "alone" / "pare_output.pkl", result)
    w = make_main_window(assets=None)
    assert w.open_path(pkl)
    assert w.state.video_path is None
    assert w.state.n_frames == 8
    width, height = w.state.frame_size
    assert width >= 0.8 * 640 and height > 0  # from the boxes
    w.state.set_frame(5)
    assert w.frame_view.displayed_frame() == 5  # a blank frame under the overlays
    assert w.frame_view.overlay(1).box.isVisible()


def test_malformed_video_shows_a_message_and_the_app_stays_usable(
    make_main_window, demo_clip: Path, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    w = make_main_window(assets=None)
    with qtbot.waitSignal(w.error_shown, timeout=5000) as blocker:
        assert not w.open_path(bad)
    message = blocker.args[0]
    assert "broken.mp4" in message and "Traceback" not in message
    box = w.error_box
    assert isinstance(box, QMessageBox) and box.isVisible() and box.text() == message
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5000)
    assert w.state.video_path is None
    assert w.open_path(demo_clip / "clip.mp4")  # still usable
    w.state.set_frame(3)
    assert w.frame_view.displayed_frame() == 3


def test_bad_results_file_is_reported(make_main_window, tmp_path: Path, qtbot) -> None:  # noqa: ANN001
    bad = tmp_path / "pare_output.pkl"
    bad.write_bytes(b"not a pickle at all")
    w = make_main_window(assets=None)
    with qtbot.waitSignal(w.error_shown, timeout=5000):
        assert not w.open_path(bad)
    assert "pare_output.pkl" in w.last_error
    w.error_box.close()


def test_drag_and_drop_a_video_and_its_results(
    make_main_window, demo_clip: Path, smpl_dir: Path, tmp_path: Path
) -> None:  # noqa: ANN001
    video, pkl = _clip_with_results(demo_clip, smpl_dir, tmp_path / "dropped")
    w = make_main_window(assets=None)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(pkl)), QUrl.fromLocalFile(str(video))])
    event = QDropEvent(
        QPointF(20, 20),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    w.dropEvent(event)
    assert event.isAccepted()
    assert w.state.video_path == video
    assert w.track_list.track_ids() == [1, 2]


def test_settings_are_isolated_and_remembered(
    make_main_window, demo_clip: Path, isolated_settings: Path, smpl_dir: Path
) -> None:  # noqa: ANN001
    st.save_asset_paths(AssetPaths(smpl_dir=smpl_dir))
    w = make_main_window(assets=None)
    w.open_path(demo_clip / "clip.mp4")
    ini = list(isolated_settings.rglob("*.ini"))
    assert ini, "settings were not written into the test's folder"
    text = ini[0].read_text()
    assert "clip.mp4" in text and str(smpl_dir) in text
    assert st.load_asset_paths().smpl_dir == smpl_dir
    assert w.run_panel.batch_size.value() == 16


def test_export_obj_of_the_current_frame(make_main_window, smpl_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    w = make_main_window(assets=None)
    result = make_video_result(smpl_dir)
    _, faces = load_template(smpl_dir)
    w.state.set_source(ArrayFrameSource(gradient_frames(20)))
    w.state.set_faces(faces)
    w.state.set_result(result)
    w.state.set_frame(5)
    written = w.export_obj(tmp_path / "frame5.obj")
    assert written == [tmp_path / "frame5_track1.obj", tmp_path / "frame5_track2.obj"]
    lines = written[1].read_text().splitlines()
    verts = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    assert verts.shape == (6890, 3) and sum(ln.startswith("f ") for ln in lines) == 13776
    t2 = result.tracks[2]
    # the reference's OBJ: the mesh rotated 180 degrees about X
    np.testing.assert_allclose(verts, t2.verts[t2.index_of(5)] * [1, -1, -1], atol=1e-5)
    w.state.set_frame(9)  # only #1 there
    assert w.export_obj(tmp_path / "frame9.obj") == [tmp_path / "frame9.obj"]


def test_export_pkl_through_the_engine(
    make_main_window, smpl_dir: Path, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    w = make_main_window(assets=None)
    result = make_video_result(smpl_dir, n_frames=10)
    w.state.set_result(result)
    out = tmp_path / "export" / "pare_output.pkl"
    with qtbot.waitSignal(w.engine.export_finished, timeout=60000) as blocker:
        assert w.export_pkl(out)
    assert Path(blocker.args[0]) == out
    back = load_pare_output(out)
    assert list(back.tracks) == [1, 2]
    for tid, t in result.tracks.items():
        np.testing.assert_array_equal(back.tracks[tid].verts, t.verts)
        np.testing.assert_array_equal(back.tracks[tid].frame_ids, t.frame_ids)
    assert [p.name for p in out.parent.iterdir()] == ["pare_output.pkl"]  # no temp file left
    assert w.state.result_path == out


def test_run_without_video_or_assets_explains_why(make_main_window, qtbot) -> None:  # noqa: ANN001
    w = make_main_window(assets=None)
    with qtbot.waitSignal(w.error_shown, timeout=5000):
        assert not w.start_run()
    assert "Open a video" in w.last_error
    w.error_box.close()


def test_assets_dialog_names_what_is_missing(qtbot, tmp_path: Path) -> None:  # noqa: ANN001
    dlg = QtAssetsDialog(AssetPaths(smpl_dir=tmp_path / "no_smpl", ckpt=tmp_path / "none.ckpt"))
    qtbot.addWidget(dlg)
    dlg.run_check(deep=False)
    qtbot.waitUntil(lambda: dlg.check_button.isEnabled(), timeout=60000)
    report = dlg.report.toPlainText()
    assert dlg.assets is None
    assert "✘ SMPL folder" in report and "no_smpl" in report
    assert "✘ Checkpoint" in report and "none.ckpt" in report


def test_assets_dialog_accepts_the_synthetic_assets(
    qtbot, smpl_dir: Path, ckpt_path: Path, cfg_path: Path
) -> None:  # noqa: ANN001
    dlg = QtAssetsDialog(AssetPaths(smpl_dir=smpl_dir, ckpt=ckpt_path, cfg=cfg_path))
    qtbot.addWidget(dlg)
    dlg.run_check(deep=True)
    qtbot.waitUntil(lambda: dlg.check_button.isEnabled(), timeout=180000)
    report = dlg.report.toPlainText()
    assert dlg.assets is not None, report
    assert report.startswith("All model files are usable")
    assert "13776 faces" in report and "1946 tensors" in report


def test_export_overlay_video_and_cancel(
    make_main_window, demo_clip: Path, smpl_dir: Path, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    video, pkl = _clip_with_results(demo_clip, smpl_dir, tmp_path / "ov")
    w = make_main_window(assets=None)
    _, faces = load_template(smpl_dir)
    w.state.set_faces(faces)
    assert w.open_path(pkl)
    out = tmp_path / "ov" / "clip_result.mp4"
    stages: list[str] = []
    w.engine.progress.connect(lambda stage, done, total: stages.append(stage))
    with qtbot.waitSignal(w.engine.export_finished, timeout=300000) as blocker:
        assert w.export_overlay_video(out)
    assert Path(blocker.args[0]) == out and "render" in stages
    with open_source(out) as src:
        assert len(src) == 6 and src.size == (640, 360)
    # a cancelled export leaves nothing behind
    out2 = tmp_path / "ov" / "cancelled.mp4"
    with qtbot.waitSignal(w.engine.cancelled, timeout=300000):
        assert w.export_overlay_video(out2)
        w.cancel_run()
    assert not out2.exists()
    assert not [p for p in out2.parent.iterdir() if p.name.startswith(".cancelled")]


def test_probe_mailbox_serves_the_newest_request(make_main_window, qtbot) -> None:  # noqa: ANN001
    import threading

    w = make_main_window()
    qtbot.waitUntil(lambda: w.state.faces is not None, timeout=600000)  # the model is loaded
    seen: list[int] = []
    busy, gate = threading.Event(), threading.Event()

    def handler(predictor: object, request: int) -> int:
        assert predictor is not None
        if request == 1:
            busy.set()
            gate.wait(10)  # hold the engine while 2 and 3 arrive
        seen.append(request)
        return request * 10

    w.engine.set_probe_handler(handler)
    results: list[int] = []
    w.engine.probe_finished.connect(results.append)
    w.engine.request_probe(1)
    assert busy.wait(30)
    w.engine.request_probe(2)
    w.engine.request_probe(3)  # replaces 2, which nobody took
    gate.set()
    qtbot.waitUntil(lambda: 30 in results, timeout=10000)
    assert seen == [1, 3] and results == [10, 30]


def test_cli_gui_command_opens_the_window(qapp, demo_clip: Path) -> None:  # noqa: ANN001
    """``pare-studio gui VIDEO`` via the CLI: the window opens the video; closing it ends run()."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from pare_studio.cli import main as cli_main
    from pare_studio.gui.main_window import QtMainWindow

    seen: dict[str, object] = {}

    def close_it() -> None:
        wins = [
            w
            for w in QApplication.topLevelWidgets()
            if isinstance(w, QtMainWindow) and w.isVisible()
        ]
        seen["titles"] = [w.windowTitle().replace("[*]", "") for w in wins]
        seen["frames"] = [w.state.n_frames for w in wins]
        for w in wins:
            w.close()

    QTimer.singleShot(1500, close_it)
    assert cli_main(["gui", str(demo_clip / "clip.mp4")]) == 0
    assert seen["titles"] == ["PARE Studio — clip.mp4"] and seen["frames"] == [6]


def test_open_an_image_folder(make_main_window, demo_clip: Path) -> None:  # noqa: ANN001
    w = make_main_window(assets=None)
    assert w.open_path(demo_clip / "frames")
    assert w.state.n_frames == 6 and w.state.frame_size == (640, 360)
    w.state.set_frame(4)
    with open_source(demo_clip / "frames") as src:
        np.testing.assert_array_equal(w.frame_view.image_item.image, src.read(4))
