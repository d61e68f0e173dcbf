"""Live smoothing: the panel's sliders, background recomputation, the jitter plot, the 3D view."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pare_studio.edits import EditState
from pare_studio.export.jitter import joint_acceleration, mean_acceleration
from pare_studio.project import SmoothingSettings
from pare_studio.results import VideoResult
from tests.gui.editing_data import jittered_result


@pytest.fixture(scope="module")
def jittered(smpl_dir: Path) -> VideoResult:
    return jittered_result(smpl_dir)


@pytest.fixture
def session(qapp: object, smpl_dir: Path) -> Iterator[object]:
    from pare_studio.gui.edit_session import EditSession
    from pare_studio.gui.task_thread import TaskThread

    tasks = TaskThread()
    s = EditSession(tasks)
    s.set_smpl_dir(smpl_dir)
    yield s
    assert tasks.shutdown()


def _orthonormal_error(pose: np.ndarray) -> tuple[float, float]:
    p = np.asarray(pose, np.float64)
    eye = np.swapaxes(p, -1, -2) @ p - np.eye(3)
    return float(np.abs(eye).max()), float(np.abs(np.linalg.det(p) - 1).max())


def test_panel_sliders_smooth_in_the_background_and_lower_the_jitter(
    qtbot,
    session,
    jittered: VideoResult,
    smpl_dir: Path,  # noqa: ANN001
) -> None:
    from pare_studio.gui.qt_smoothing_panel import QtSmoothingPanel

    s = session
    panel = QtSmoothingPanel()
    qtbot.addWidget(panel)
    panel.settings_changed.connect(s.set_smoothing)
    s.reset(EditState.from_result(jittered))
    raw = s.state.tracks[1]
    panel.jitter.set_tracks(raw, None, jittered.fps)
    before = panel.jitter.mean_before
    expected = float(
        np.nanmean(mean_acceleration(joint_acceleration(raw.joints3d, raw.frame_ids, 25.0)))
    )
    assert before == pytest.approx(expected, rel=1e-6)  # mean over joints and frames (none missing)
    assert math.isnan(panel.jitter.mean_after)
    assert not panel.method.isEnabled()  # details greyed out until smoothing is on

    with qtbot.waitSignal(
        s.smoothing_busy_changed, timeout=120000, check_params_cb=lambda b: b is False
    ):
        panel.enabled.setChecked(True)
    assert s.smoothing.enabled and s.smoothing.method == "rotation" and panel.beta.isEnabled()
    first = s.smoothed_track(1)
    assert first is not None and s.is_smoothing_current()
    assert s.display_tracks()[1] is first and s.raw_tracks()[1] is raw
    ortho, det = _orthonormal_error(first.pose)
    assert ortho < 1e-5 and det < 1e-5

    # Drag the min_cutoff slider towards heavier smoothing: the newest value wins.
    with qtbot.waitSignal(
        s.smoothing_busy_changed, timeout=120000, check_params_cb=lambda b: b is False
    ):
        for pos in (150, 120, 90, 60):
            panel.min_cutoff.slider.setValue(pos)
    final = panel.settings()
    assert final.min_cutoff == round(10 ** (-4 + 5 * 60 / 400), 6)  # spin box: 6 decimals
    assert s.smoothing == final
    smoothed = s.smoothed_track(1)
    assert smoothed is not None and smoothed is not first
    assert np.abs(smoothed.verts - first.verts).max() > 1e-4  # the mesh changed with the slider
    ortho, det = _orthonormal_error(smoothed.pose)
    assert ortho < 1e-5 and det < 1e-5
    # the recomputed mesh is SMPL of the smoothed pose (spot check one frame)
    from pare_studio.gui.smoothing_jobs import load_body
    from pare_studio.pipeline.smoothing import recompute_mesh

    v, _j = recompute_mesh(load_body(smpl_dir), smoothed.pose[7:8], smoothed.betas[7:8])
    np.testing.assert_allclose(smoothed.verts[7], v[0], atol=1e-5)

    panel.jitter.set_tracks(raw, smoothed, jittered.fps)
    assert panel.jitter.mean_after < 0.6 * panel.jitter.mean_before
    (rx, ry), (sx, sy) = panel.jitter.curves()
    np.testing.assert_array_equal(rx, raw.frame_ids)
    assert np.nanmean(sy) < np.nanmean(ry)
    assert "smoothed" in panel.jitter.summary.text()
    panel.jitter.set_measure("rotation", joint=18)  # left elbow rotation
    assert panel.jitter.unit == "rad/s²"
    assert panel.jitter.mean_after < panel.jitter.mean_before

    # Switching off shows the raw track again; back on reuses the cache at once.
    panel.enabled.setChecked(False)
    assert s.display_tracks()[1] is raw and s.export_result().tracks[1] is raw
    panel.enabled.setChecked(True)
    assert s.display_tracks()[1] is smoothed and not s.smoothing_busy


def test_panel_shows_settings_without_emitting(qtbot) -> None:  # noqa: ANN001
    from pare_studio.gui.qt_smoothing_panel import QtSmoothingPanel

    panel = QtSmoothingPanel()
    qtbot.addWidget(panel)
    emitted: list[object] = []
    panel.settings_changed.connect(emitted.append)
    want = SmoothingSettings(enabled=True, method="reference", min_cutoff=0.02, beta=0.0)
    panel.set_settings(want)
    assert panel.settings() == want and not emitted
    assert panel.beta.slider.value() == 0  # beta 0 sits at the slider's start
    panel.beta.spin.setValue(2.5)
    assert emitted[-1] == SmoothingSettings(
        enabled=True, method="reference", min_cutoff=0.02, beta=2.5
    )
    panel.set_available(False, "needs the SMPL model")
    assert not panel.enabled.isEnabled() and panel.status.text() == "needs the SMPL model"


def test_smoothing_in_the_window_updates_the_viewport_with_a_raw_ghost(
    make_main_window,
    jittered: VideoResult,
    smpl_dir: Path,
    qtbot,  # noqa: ANN001
) -> None:
    from pare_studio.gui.placement import display_points
    from tests.gui.synthetic import ArrayFrameSource, gradient_frames

    w = make_main_window()  # synthetic assets: the SMPL folder is known
    qtbot.waitUntil(lambda: w.state.faces is not None, timeout=120000)
    w.state.set_source(
        ArrayFrameSource(gradient_frames(jittered.n_frames, jittered.width, jittered.height))
    )
    w.state.set_result(jittered)
    ed, panel = w.editing, w.editing.panel
    assert panel.enabled.isEnabled() and not ed.dock.isVisible()  # hidden until asked for
    ed.dock_action.trigger()  # View ▸ Smoothing panel
    assert ed.dock.isVisible()
    raw = jittered.tracks[1]
    w.state.set_frame(12)
    cam = raw.orig_cam[12]

    def shown() -> np.ndarray:
        w.mesh_view.draw_now()
        return w.mesh_view.displayed_vertices(1)

    np.testing.assert_allclose(shown(), display_points(raw.verts[12], cam), atol=1e-5)
    before = panel.jitter.mean_before
    assert before > 0 and math.isnan(panel.jitter.mean_after)

    with qtbot.waitSignal(
        ed.session.smoothing_busy_changed, timeout=120000, check_params_cb=lambda b: not b
    ):
        panel.enabled.setChecked(True)
    smoothed = ed.session.smoothed_track(1)
    assert w.state.track(1) is smoothed
    first = shown()
    np.testing.assert_allclose(first, display_points(smoothed.verts[12], cam), atol=1e-5)
    assert np.abs(first - display_points(raw.verts[12], cam)).max() > 1e-3
    snap = w.mesh_view.last_snapshot
    assert [g.track_id for g in snap.raw_ghosts] == [1] and snap.raw_ghosts[0].color[3] < 1
    np.testing.assert_array_equal(snap.raw_ghosts[0].verts, raw.verts[12])  # the raw body
    assert panel.jitter.mean_after < 0.6 * before

    with qtbot.waitSignal(
        ed.session.smoothing_busy_changed, timeout=120000, check_params_cb=lambda b: not b
    ):
        panel.min_cutoff.slider.setValue(panel.min_cutoff.slider.value() - 80)  # smoother
    heavier = ed.session.smoothed_track(1)
    assert heavier is not smoothed and w.state.track(1) is heavier
    assert np.abs(shown() - first).max() > 1e-4
    assert panel.jitter.mean_after < 0.6 * before
    p = heavier.pose.astype(np.float64)
    assert np.abs(np.swapaxes(p, -1, -2) @ p - np.eye(3)).max() < 1e-5

    panel.show_raw.setChecked(False)
    assert w.mesh_view.last_snapshot.raw_ghosts == ()
    panel.enabled.setChecked(False)
    assert w.state.track(1) is raw
    np.testing.assert_allclose(shown(), display_points(raw.verts[12], cam), atol=1e-5)
    assert math.isnan(panel.jitter.mean_after)


def test_smoothing_needs_the_smpl_model(make_main_window, jittered: VideoResult) -> None:  # noqa: ANN001
    w = make_main_window(assets=None)
    w.state.set_result(jittered)
    panel = w.editing.panel
    assert not panel.enabled.isEnabled() and "SMPL" in panel.status.text()
    assert w.state.track(1) is jittered.tracks[1]


def test_tracks_streamed_in_while_smoothing_are_taken_raw(
    make_main_window, jittered: VideoResult, qtbot
) -> None:  # noqa: ANN001
    """A run streams tracks into what the window shows (smoothed): the session keeps raw tracks."""
    from dataclasses import replace

    w = make_main_window()
    ed = w.editing
    t1 = jittered.tracks[1]
    t2 = replace(t1, track_id=2)
    final = VideoResult(
        tracks={1: t1, 2: t2},
        n_frames=jittered.n_frames,
        width=jittered.width,
        height=jittered.height,
        fps=jittered.fps,
        source="",
    )
    w.state.begin_streaming(final.n_frames, final.width, final.height, final.fps, "")
    w.state.add_track(t1)
    with qtbot.waitSignal(
        ed.session.smoothing_busy_changed, timeout=120000, check_params_cb=lambda b: not b
    ):
        ed.panel.enabled.setChecked(True)  # smoothing switched on during the "run"
    assert ed.session.state.tracks[1] is t1
    smoothed1 = ed.session.smoothed_track(1)
    assert w.state.track(1) is smoothed1
    w.state.add_track(t2)  # streamed into the shown (smoothed) result
    assert w.state.selected_track == 1 and ed.rename_selected("Runner")  # an edit catches up first
    assert ed.session.state.track_ids() == [1, 2] and ed.session.state.name(1) == "Runner"
    assert (
        ed.session.state.tracks[1] is t1 and ed.session.state.tracks[2] is t2
    )  # raw, not smoothed
    qtbot.waitUntil(lambda: ed.session.is_smoothing_current(), timeout=120000)
    w.state.adopt_result(final)  # the run's final result
    ed._sync()  # noqa: SLF001  (what the engine's busy_changed(False) does)
    assert all(ed.session.state.tracks[t] is final.tracks[t] for t in (1, 2))
    assert ed.session.smoothed_track(1) is smoothed1  # the cache survived: same raw track
    assert w.state.track(1) is smoothed1 and w.state.track(2) is ed.session.smoothed_track(2)
