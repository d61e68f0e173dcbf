"""The live occlusion panel: throttled latest-wins probes, stale replies, sweep, viewport ghost.

Fast tests drive the controller and the panel with a recording stand-in engine and a tiny
deterministic predictor (requests are served by the controller's own handler, synchronously);
the window tests use the real engine thread and the synthetic PARE checkpoint.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, QPointF, QTimer, Signal

from pare_studio.analysis.occlusion import OccluderRect, probe
from pare_studio.gui.mesh_snapshot import build_snapshot
from pare_studio.gui.occlusion_controller import OcclusionController
from pare_studio.gui.occlusion_probe import CropKey, ProbeReply, ProbeRequest, SweepRequest
from pare_studio.gui.occlusion_scene import GHOST_COLOR, OcclusionSnapshot, with_occlusion
from pare_studio.gui.placement import display_points
from pare_studio.gui.qt_occlusion_panel import QtOcclusionPanel, attention_overlay, jet_lut
from pare_studio.gui.state import ViewerState
from pare_studio.results import PareOutput
from tests.gui.synthetic import ArrayFrameSource, gradient_frames, load_template, make_video_result

# ------------------------------------------------------------------------------- stand-ins


class TinyPredictor:
    """``predict`` whose mesh depends on the image: each crop's vertices scaled by its mean."""

    def __init__(self, n_verts: int = 6890) -> None:
        rng = np.random.default_rng(7)
        self.verts = rng.normal(0, 0.3, (n_verts, 3)).astype(np.float32)
        self.calls = 0

    def predict(self, images: np.ndarray, batch_size: int = 16) -> PareOutput:
        self.calls += 1
        n = len(images)
        m = images.reshape(n, 3, -1).mean(axis=2)  # (n, 3)
        verts = self.verts[None] * (1.0 + 0.2 * m[:, None, :]).astype(np.float32)
        joints = verts[:, ::140][:, :49].copy()
        segm = np.zeros((n, 25, 56, 56), np.float32)
        segm[:, 1:, 10, 20] = 5.0  # every part attends to (row 10, col 20)
        return PareOutput(
            pred_pose=np.tile(np.eye(3, dtype=np.float32), (n, 24, 1, 1)),
            pred_shape=np.zeros((n, 10), np.float32),
            pred_cam=np.tile(np.array([0.9, 0.01, 0.02], np.float32), (n, 1)),
            pred_cam_t=np.zeros((n, 3), np.float32),
            smpl_vertices=verts,
            smpl_joints3d=joints,
            smpl_joints2d=np.zeros((n, 49, 2), np.float32),
            pred_segm_mask=segm,
        )


class RecordingEngine(QObject):
    """The engine's probe interface; requests are kept until the test serves them."""

    probe_finished = Signal(object)
    failed = Signal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[object] = []
        self.handler = None
        self.preloads = 0

    def set_probe_handler(self, handler: object) -> None:
        self.handler = handler

    def request_probe(self, request: object) -> None:
        self.requests.append(request)

    def preload(self, _assets: object) -> None:
        self.preloads += 1

    def serve(self, predictor: object, request: object) -> object:
        """Run ``request`` with the installed handler and deliver the reply (as the engine)."""
        reply = self.handler(predictor, request)  # type: ignore[misc]
        self.probe_finished.emit(reply)
        return reply


@pytest.fixture
def viewer_state(qapp: object, smpl_dir: Path) -> ViewerState:
    """Frames + a two-person synthetic result, track 1 selected, frame 5."""
    state = ViewerState()
    state.set_source(ArrayFrameSource(gradient_frames(20)))
    state.set_result(make_video_result(smpl_dir))
    state.set_frame(5)
    return state


@pytest.fixture
def fake(
    viewer_state: ViewerState, qtbot: object
) -> tuple[OcclusionController, RecordingEngine, QtOcclusionPanel]:
    engine = RecordingEngine()
    ctl = OcclusionController(viewer_state, engine, assets="assets")
    panel = QtOcclusionPanel(ctl)
    qtbot.addWidget(panel)  # type: ignore[attr-defined]
    ctl.set_active(True)
    return ctl, engine, panel


# ------------------------------------------------------------------------------ fast tests


def test_activation_builds_the_crop_and_posts_one_probe(fake, viewer_state) -> None:  # noqa: ANN001
    ctl, engine, panel = fake
    track = viewer_state.track(1)
    row = track.index_of(5)
    assert ctl.crop is not None
    assert ctl.crop.key == CropKey(1, 5, tuple(float(v) for v in track.bboxes[row]))
    assert ctl.crop.crop.shape == (3, 224, 224) and ctl.crop.rgb.shape == (224, 224, 3)
    np.testing.assert_array_equal(panel.crop_image(), ctl.crop.rgb)
    assert engine.preloads == 1
    assert len(engine.requests) == 1 and isinstance(engine.requests[0], ProbeRequest)
    req = engine.requests[0]
    assert req.rect == OccluderRect.from_float(*panel.roi_rect())
    assert req.baseline is None and req.assets == "assets"
    # moving to a frame without the selected person clears the crop and says why
    viewer_state.select_track(2)
    viewer_state.set_frame(8)
    assert ctl.crop is None and not panel.roi.isVisible()


def test_drag_is_throttled_and_finish_posts_the_final_rect(fake, qtbot) -> None:  # noqa: ANN001
    ctl, engine, panel = fake
    engine.requests.clear()
    t0 = time.perf_counter()
    for i in range(12):
        panel.roi.setPos(QPointF(10 + 5 * i, 30), finish=False)  # a drag: sigRegionChanged only
        qtbot.wait(8)
    elapsed_ms = (time.perf_counter() - t0) * 1000
    qtbot.wait(60)  # the trailing throttle tick
    during = len(engine.requests)
    assert 1 <= during <= elapsed_ms / 33 + 2, (during, elapsed_ms)
    assert during < 12
    ids = [r.id for r in engine.requests]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert engine.requests[-1].rect == OccluderRect.from_float(*panel.roi_rect())
    # the drag ends elsewhere: exactly one final probe, at once
    panel.roi.setPos(QPointF(100, 90), finish=False)
    panel.roi.sigRegionChangeFinished.emit(panel.roi)
    assert len(engine.requests) == during + 1
    assert engine.requests[-1].rect == OccluderRect(100, 90, 40, 40)
    qtbot.wait(60)
    assert len(engine.requests) == during + 1  # nothing new to post
    assert ctl.last_request_id == engine.requests[-1].id


def test_latest_reply_wins_and_stale_replies_are_dropped(fake) -> None:  # noqa: ANN001
    ctl, engine, panel = fake
    pred = TinyPredictor()
    shown: list[ProbeReply] = []
    ctl.probe_shown.connect(shown.append)
    first = engine.requests[-1]
    panel.roi.setPos(QPointF(20, 20))  # finish=True: posts at once
    panel.roi.setPos(QPointF(150, 120))
    newest = engine.requests[-1]
    assert newest.id > first.id and newest.rect == OccluderRect(150, 120, 40, 40)
    # out of order: the newest reply arrives first, then an older one
    engine.serve(pred, newest)
    engine.serve(pred, first)
    assert [r.id for r in shown] == [newest.id]
    assert ctl.dropped_stale == 1
    assert ctl.shown is shown[0]
    direct = probe(pred, ctl.crop.crop, newest.rect, "mean", baseline=shown[0].baseline)
    np.testing.assert_allclose(
        panel.displayed_displacement(), direct.displacement, rtol=1e-6, atol=1e-9
    )
    assert panel.displayed_displacement().max() > 0
    # the baseline is kept per crop and sent with the next request
    assert ctl.baseline(ctl.crop.key) is shown[0].baseline
    panel.roi.setPos(QPointF(60, 60))
    assert engine.requests[-1].baseline is shown[0].baseline
    # a reply for another crop (the user changed frame meanwhile) is dropped too
    other = replace(shown[0], id=ctl.last_request_id, key=replace(shown[0].key, frame=6))
    engine.probe_finished.emit(other)
    assert ctl.shown is shown[0] and ctl.dropped_stale == 2
    engine.probe_finished.emit("not an occlusion reply")
    assert ctl.shown is shown[0]


def test_baselines_are_reused_per_crop_and_dropped_for_another_video(fake, viewer_state) -> None:  # noqa: ANN001
    ctl, engine, panel = fake
    pred = TinyPredictor()
    first = engine.serve(pred, engine.requests[-1])
    assert pred.calls == 2  # the baseline, then the probe
    panel.roi.setPos(QPointF(50, 50))
    engine.serve(pred, engine.requests[-1])
    assert pred.calls == 3  # one forward pass per probe from now on
    key = ctl.crop.key
    frames = gradient_frames(20)[..., ::-1].copy()  # other pixels, same tracks and boxes
    viewer_state.set_source(ArrayFrameSource(frames))
    assert ctl.crop.key == key and ctl.baseline(key) is None
    req = engine.requests[-1]
    assert req.baseline is None and not np.array_equal(req.crop.crop, first.baseline.crop)
    reply = engine.serve(pred, req)
    assert pred.calls == 5  # the handler's cached baseline of the old pixels is not reused
    np.testing.assert_array_equal(reply.baseline.crop, req.crop.crop)


def test_sweep_defers_probes_and_reports_progress(fake, qtbot) -> None:  # noqa: ANN001
    ctl, engine, panel = fake
    pred = TinyPredictor()
    engine.serve(pred, engine.requests[-1])
    progress: list[tuple[int, int]] = []
    ctl.sweep_progress.connect(lambda d, t: progress.append((d, t)))
    panel.size_spin.setValue(112)
    panel.stride_spin.setValue(112)
    assert panel.start_sweep()
    sweep_req = engine.requests[-1]
    assert isinstance(sweep_req, SweepRequest) and sweep_req.baseline is ctl.shown.baseline
    assert not panel.sweep_button.isEnabled() and panel.cancel_button.isEnabled()
    n = len(engine.requests)
    panel.roi.setPos(QPointF(30, 40))  # a probe asked for during the sweep waits
    assert len(engine.requests) == n
    engine.serve(pred, sweep_req)
    qtbot.waitUntil(
        lambda: bool(progress) and progress[-1] == (4, 4), timeout=2000
    )  # queued signal
    assert progress[0] == (0, 4)
    assert ctl.sweep_result is not None and ctl.sweep_result.result.grid_shape == (2, 2)
    assert panel.overlay_kind() == "heatmap" and panel.overlay_image() is not None
    assert panel.sweep_button.isEnabled() and not panel.cancel_button.isEnabled()
    # the deferred probe was posted when the sweep ended
    assert len(engine.requests) == n + 1
    assert engine.requests[-1].rect == OccluderRect(30, 40, 40, 40)
    # a cancelled sweep returns nothing and leaves the heatmap of the completed one alone
    assert panel.start_sweep()
    again = engine.requests[-1]
    panel.cancel_button.click()
    reply = engine.serve(pred, again)
    assert reply.cancelled and reply.result is None
    assert ctl.sweep_result.result.grid_shape == (2, 2) and not ctl.sweep_is_running
    assert "cancelled" in panel.status.text().lower()


def test_with_occlusion_replaces_the_person_and_adds_a_ghost(fake, viewer_state) -> None:  # noqa: ANN001
    ctl, engine, _panel = fake
    reply = engine.serve(TinyPredictor(), engine.requests[-1])
    snap = build_snapshot(viewer_state)
    out = ctl.scene_filter(snap)
    assert isinstance(out, OcclusionSnapshot) and out.seq == snap.seq
    occluded = {d.track_id: d for d in out.tracks}[1]
    np.testing.assert_array_equal(occluded.verts, reply.result.output.smpl_vertices[0])
    np.testing.assert_array_equal(occluded.orig_cam, reply.orig_cam)
    (ghost,) = out.ghosts
    np.testing.assert_array_equal(ghost.verts, reply.result.baseline.output.smpl_vertices[0])
    assert ghost.color == GHOST_COLOR
    other = {d.track_id: d for d in snap.tracks}[2]
    assert {d.track_id: d for d in out.tracks}[2] is other
    # another frame, or the panel inactive: the scene is left alone
    assert not isinstance(with_occlusion(replace(snap, frame=6), reply), OcclusionSnapshot)
    ctl.set_active(False)
    assert ctl.scene_filter(snap) is snap


def test_attention_overlay_follows_the_selected_part(fake) -> None:  # noqa: ANN001
    ctl, engine, panel = fake
    reply = engine.serve(TinyPredictor(), engine.requests[-1])
    panel.set_overlay("attention", 3)
    rgba = panel.overlay_image()
    assert rgba is not None and rgba.shape == (224, 224, 4)
    y, x = np.unravel_index(np.argmax(rgba[..., 3]), rgba.shape[:2])
    assert abs(y - (10 * 4 + 1.5)) <= 3 and abs(x - (20 * 4 + 1.5)) <= 3  # 56 -> 224 px
    np.testing.assert_array_equal(rgba, attention_overlay(reply.attention, 3))
    att = reply.attention.copy()
    att[5] = 0
    att[5, 50, 50] = 1.0  # part 5 alone attends elsewhere: "all" shows both places
    m = attention_overlay(att, None)[..., 3]
    y, x = np.unravel_index(np.argmax(m), m.shape)
    assert abs(y - 201.5) <= 3 and abs(x - 201.5) <= 3
    assert m[41, 81] > 0 and m[150, 150] == 0
    panel.set_overlay("none")
    assert panel.overlay_image() is None


def test_overlay_colours_are_matplotlibs_jet() -> None:
    from matplotlib import colormaps

    ref = np.rint(colormaps["jet"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    np.testing.assert_allclose(jet_lut().astype(int), ref.astype(int), atol=1)  # rounding only


def test_ghost_layer_draws_translucent_meshes(qapp, smpl_dir) -> None:  # noqa: ANN001
    from vispy import scene

    from pare_studio.gui.mesh_snapshot import TrackDraw
    from pare_studio.gui.vispy_ghost import GhostLayer
    from pare_studio.gui.vispy_mesh_visual import VispyIndexedMesh, vertex_normals
    from pare_studio.gui.vispy_render_thread import egl_app

    verts, faces = load_template(smpl_dir)
    verts = (verts * np.array([1.0, -1.0, -1.0])).astype(np.float32)
    cam = np.array([0.5, 0.5, 0.0, 0.0])
    canvas = scene.SceneCanvas(app=egl_app(), keys=None, show=False, size=(96, 96), bgcolor="black")
    try:
        view = canvas.central_widget.add_view()
        view.camera = scene.TurntableCamera(up="+y", fov=45.0, azimuth=180.0, elevation=0.0)
        layer = GhostLayer(view.scene)
        layer.apply([TrackDraw(1, verts, None, cam, (1.0, 1.0, 1.0, 0.4))], faces)
        (shown,) = layer.shown_vertices()
        np.testing.assert_allclose(shown, display_points(verts, cam))
        view.camera.set_range()
        img = np.asarray(canvas.render(alpha=False))[..., :3].astype(float)
        lit = img.max(axis=2) > 10
        assert lit.mean() > 0.02
        # the same mesh opaque (as the viewport draws people): the ghost is blended over black
        solid = VispyIndexedMesh(mode="triangles", color=(1.0, 1.0, 1.0, 1.0), parent=view.scene)
        v = display_points(verts, cam)
        solid.set_data(v, np.ascontiguousarray(faces, np.uint32), vertex_normals(v, faces))
        layer.apply([], faces)
        opaque = np.asarray(canvas.render(alpha=False))[..., :3].astype(float)
        assert (opaque.max(axis=2) > 10).sum() == pytest.approx(lit.sum(), rel=0.05)
        ratio = img[lit].mean() / opaque[lit].mean()
        assert 0.3 < ratio < 0.75, ratio
        solid.parent = None
        layer.apply([], faces)
        assert layer.shown_vertices() == []
        img = np.asarray(canvas.render(alpha=False))[..., :3]
        assert img.max() <= 10
    finally:
        canvas.close()


# ------------------------------------------------------------- the window, real engine thread


@pytest.fixture
def occ_window(make_main_window, smpl_dir, qtbot):  # noqa: ANN001, ANN201
    """The window on 20 synthetic frames with a two-person result, the occlusion panel open and
    its first probe (baseline + one forward pass, engine thread) on screen."""
    w = make_main_window()
    _, faces = load_template(smpl_dir)
    w.state.set_source(ArrayFrameSource(gradient_frames(20)))
    w.state.set_faces(faces)
    w.state.set_result(make_video_result(smpl_dir))
    w.state.set_frame(5)
    w.mesh_view.draw_now()
    before = w.mesh_view.displayed_vertices(1)
    assert not w.occlusion.active
    w.occlusion_dock.toggleViewAction().trigger()  # View ▸ Occlusion panel
    assert w.occlusion.active
    qtbot.waitUntil(lambda: w.occlusion.shown is not None, timeout=120000)
    return w, before


def _wait_newest(w, qtbot) -> ProbeReply:  # noqa: ANN001
    ctl = w.occlusion
    qtbot.waitUntil(
        lambda: ctl.shown is not None and ctl.shown.id == ctl.last_request_id, timeout=120000
    )
    return ctl.shown


def test_drag_shows_the_last_position_only_and_moves_the_mesh(
    occ_window, qtbot, shared_predictor_loader, model_assets
) -> None:  # noqa: ANN001
    w, plain = occ_window
    ctl, panel, view = w.occlusion, w.occlusion_panel, w.mesh_view
    tid = ctl.crop.key.track_id
    view.draw_now()
    start = view.displayed_vertices(tid)
    first = ctl.shown
    np.testing.assert_allclose(
        start, display_points(first.result.output.smpl_vertices[0], first.orig_cam), atol=1e-6
    )
    assert not np.allclose(start, plain, atol=1e-4)  # the occluded prediction, not the track's
    accepted: list[ProbeReply] = []
    ctl.probe_shown.connect(accepted.append)
    dropped = ctl.dropped_stale
    id0 = ctl.last_request_id
    panel.roi.setPos(QPointF(20, 20))  # the end of a drag: posted at once
    qtbot.wait(100)  # the (idle) engine thread takes it at once: busy for a forward pass
    for x, y in ((40, 30), (70, 60), (100, 90), (150, 130)):
        panel.roi.setPos(QPointF(x, y))
        qtbot.wait(20)
    last = _wait_newest(w, qtbot)
    qtbot.wait(200)  # nothing else arrives
    assert ctl.last_request_id == id0 + 5
    assert [r.id for r in accepted] == [id0 + 5]  # only the newest position was shown
    assert ctl.dropped_stale > dropped  # the probe the engine was running came back stale
    assert last.result.rect == OccluderRect(150, 130, 40, 40)
    # the bars show what probe() gives for that rectangle
    predictor = shared_predictor_loader(model_assets)
    direct = probe(predictor, ctl.crop.crop, OccluderRect(150, 130, 40, 40), baseline=last.baseline)
    np.testing.assert_allclose(
        panel.displayed_displacement(), direct.displacement, rtol=1e-4, atol=1e-3
    )
    # the viewport shows the new occluded mesh over a ghost of the unoccluded one
    view.draw_now()
    moved = view.displayed_vertices(tid)
    expected = display_points(last.result.output.smpl_vertices[0], last.orig_cam)
    np.testing.assert_allclose(moved, expected, atol=1e-6)
    assert np.abs(moved - start).max() > 1e-4
    snap = view.last_snapshot
    assert isinstance(snap, OcclusionSnapshot)
    (ghost,) = snap.ghosts
    np.testing.assert_array_equal(ghost.verts, last.baseline.output.smpl_vertices[0])
    # part attention of the shown probe over the crop
    panel.set_overlay("attention", None)
    np.testing.assert_array_equal(panel.overlay_image(), attention_overlay(last.attention, None))
    # closing the panel gives the viewport the track's own mesh back
    w.occlusion_dock.toggleViewAction().trigger()
    assert not ctl.active
    view.draw_now()
    np.testing.assert_allclose(view.displayed_vertices(tid), plain, atol=1e-6)


def test_full_sweep_runs_in_the_background(occ_window, qtbot) -> None:  # noqa: ANN001
    w, _ = occ_window
    ctl, panel = w.occlusion, w.occlusion_panel
    progress: list[tuple[int, int]] = []
    ctl.sweep_progress.connect(lambda d, t: progress.append((d, t)))
    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(time.perf_counter()))
    panel.size_spin.setValue(112)
    panel.stride_spin.setValue(112)
    heartbeat.start()
    t0 = time.perf_counter()
    panel.sweep_button.click()
    assert time.perf_counter() - t0 < 0.1  # the click returns at once
    assert ctl.sweep_is_running and panel.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: ctl.sweep_result is not None, timeout=120000)
    heartbeat.stop()
    gaps = np.diff(np.asarray(ticks))
    # 100 ms, scaled like the run tests' heartbeat when the shared CPUs are oversubscribed
    limit = 0.1 * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    assert len(ticks) > 20 and gaps.max() < limit, f"GUI thread blocked {gaps.max() * 1000:.0f} ms"
    assert progress[0] == (0, 4) and progress[-1] == (4, 4) and panel.progress.value() == 4
    res = ctl.sweep_result.result
    assert res.grid_shape == (2, 2)
    assert res.baseline is ctl.shown.baseline  # no second baseline forward pass
    # the heatmap is drawn over the crop: hottest cell red, coolest blue (jet)
    assert panel.overlay_kind() == "heatmap"
    rgba = panel.overlay_image()
    assert rgba.shape == (224, 224, 4) and (rgba[..., 3] > 0).all()
    hm = res.heatmap("displacement", None)
    hot = np.unravel_index(np.argmax(hm), hm.shape)
    cold = np.unravel_index(np.argmin(hm), hm.shape)
    r_hot, g_hot, b_hot = rgba[56 + 112 * hot[0], 56 + 112 * hot[1], :3].astype(int)
    r_cold, g_cold, b_cold = rgba[56 + 112 * cold[0], 56 + 112 * cold[1], :3].astype(int)
    assert r_hot > 100 and b_hot < 30 and b_cold > 100 and r_cold < 30  # jet: dark red / blue
    panel.set_overlay("heatmap", 9)  # one joint (lshoulder)
    one = res.heatmap("displacement", 9)
    hot = np.unravel_index(np.argmax(one), one.shape)
    r_hot, _, b_hot = panel.overlay_image()[56 + 112 * hot[0], 56 + 112 * hot[1], :3].astype(int)
    assert r_hot > 100 and b_hot < 30
    assert "mm" in panel.range_label.text() and f"{one.max():.1f}" in panel.range_label.text()


def test_full_sweep_can_be_cancelled(occ_window, qtbot) -> None:  # noqa: ANN001
    w, _ = occ_window
    ctl, panel = w.occlusion, w.occlusion_panel
    progress: list[tuple[int, int]] = []
    ctl.sweep_progress.connect(lambda d, t: progress.append((d, t)))
    assert ctl.start_sweep(56, 56, batch_size=2)  # 4 x 4 positions, 8 batches
    qtbot.waitUntil(lambda: bool(progress) and progress[-1][0] >= 2, timeout=120000)
    panel.roi.setPos(QPointF(120, 40))  # asked for during the sweep: waits for it
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not ctl.sweep_is_running, timeout=120000)
    assert progress[-1][0] < 16
    assert ctl.sweep_result is None and panel.overlay_kind() == "none"
    assert "cancelled" in panel.status.text().lower()
    assert panel.sweep_button.isEnabled() and not panel.cancel_button.isEnabled()
    last = _wait_newest(w, qtbot)  # the engine is free again: the waiting probe ran
    assert last.result.rect == OccluderRect(120, 40, 40, 40)
