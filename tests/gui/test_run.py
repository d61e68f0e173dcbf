"""Runs in the window with the synthetic PARE model: finish, responsiveness, export, cancel, close.

The heartbeat and scrub limits are the acceptance figures (100 ms, 50 ms) on an idle machine;
when other processes keep the CPUs busy (load average above the core count) they are scaled by
``load / cores``, since the operating system, not the window, then decides how often we run.

The window loads the model in the background when it opens (importing torch and unpickling SMPL
hold Python's GIL for a few hundred ms at a time); the runs here start once that is done, as a
user's would after opening a video, so the heartbeat measures the run itself.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from pare_studio.gui import documents
from pare_studio.gui.placement import display_points
from pare_studio.gui.qt_run_panel import RunSettings
from pare_studio.pipeline.pkl_io import load_pare_output

RUN_TIMEOUT_MS = 900_000  # the synthetic HRNet on two shared CPU cores: ~1-6 s per crop


def load_factor() -> float:
    """How oversubscribed the CPUs are (>= 1)."""
    return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


class Heartbeat:
    """A 10 ms QTimer on the GUI thread; the largest gap between ticks is the longest block."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    @property
    def max_ms(self) -> float:
        return 1000.0 * max(self.gaps, default=0.0)


def _prepare(window, clip: Path, qtbot, save_pkl: bool = False, batch_size: int = 2) -> None:  # noqa: ANN001
    """Open the clip, choose the boxes file, and wait for the background model load to finish."""
    qtbot.waitUntil(lambda: window.state.faces is not None, timeout=RUN_TIMEOUT_MS)
    assert window.open_path(clip / "clip.mp4")
    window.run_panel.set_settings(
        RunSettings(
            detector="boxes",
            boxes_file=clip / "boxes.txt",
            batch_size=batch_size,
            save_pkl=save_pkl,
        )
    )
    qtbot.wait(300)  # the video's first paint is done before the user presses Run


@pytest.fixture
def clip_copy(demo_clip: Path, tmp_path: Path) -> Path:
    """The demo clip in a folder of the test's own (runs may write beside the video)."""
    out = tmp_path / "clip"
    shutil.copytree(demo_clip, out, ignore=shutil.ignore_patterns("frames"))
    return out


def test_run_finish_scrub_hide_export(
    make_main_window, clip_copy: Path, tmp_path: Path, qtbot
) -> None:  # noqa: ANN001
    w = make_main_window()
    _prepare(w, clip_copy, qtbot)
    truth = json.loads((clip_copy / "truth.json").read_text())
    streamed: list[int] = []
    w.engine.track_ready.connect(lambda t: streamed.append(t.track_id))
    beat = Heartbeat()
    beat.start()
    with qtbot.waitSignal(w.engine.run_finished, timeout=RUN_TIMEOUT_MS) as finished:
        assert w.start_run()
        assert w.run_panel.cancel_button.isEnabled()
    beat.stop()
    result = finished.args[0]

    # tracks: streamed as they finished, then the final result in the list and on the timeline
    assert sorted(streamed) == [1, 2]
    assert w.track_list.track_ids() == [1, 2]
    for tid in (1, 2):
        frames = truth["tracks"][str(tid)]["frames"]
        np.testing.assert_array_equal(result.tracks[tid].frame_ids, frames)
        assert w.timeline.presence(tid) == [(frames[0], frames[-1] + 1)]
    assert w.state.result is result
    qtbot.waitUntil(lambda: w.run_panel.run_button.isEnabled(), timeout=5000)

    # responsiveness while the run was going
    n_beats = len(beat.gaps)
    limit = 100.0 * load_factor()
    print(
        f"\nheartbeat during the run: {n_beats} ticks, max gap {beat.max_ms:.1f} ms "
        f"(limit {limit:.0f} ms at load {os.getloadavg()[0]:.1f})"
    )
    assert n_beats > 50
    assert beat.max_ms <= limit

    # scrub: the 3D view holds each frame's vertices, the image and the overlay follow
    times = []
    for f in (1, 2, 3, 4, 5, 0):
        t0 = time.perf_counter()
        w.state.set_frame(f)
        qtbot.wait(0)
        w.mesh_view.draw_now()
        times.append(1000 * (time.perf_counter() - t0))
        assert w.frame_view.displayed_frame() == f
        assert w.frame_view.rendered_overlay_frame() == f
        for tid, track in result.tracks.items():
            row = track.index_of(f)
            shown = w.mesh_view.displayed_vertices(tid)
            if row is None:
                assert shown is None
            else:
                np.testing.assert_allclose(
                    shown,
                    display_points(track.verts[row], track.orig_cam[row]),
                    rtol=1e-5,
                    atol=1e-6,
                )
    limit = 50.0 * load_factor()
    print(
        f"one-frame scrub: median {np.median(times):.1f} ms, max {max(times):.1f} ms "
        f"(limit {limit:.0f} ms)"
    )
    assert np.median(times) <= limit

    # hide a track
    w.state.set_frame(3)
    w.track_list.set_checked(2, False)
    w.mesh_view.draw_now()
    assert w.mesh_view.shown_track_ids() == [1]
    assert not w.frame_view.overlay(2).box.isVisible()

    # export and reload
    out = tmp_path / "exported" / "pare_output.pkl"
    with qtbot.waitSignal(w.engine.export_finished, timeout=60000):
        assert w.export_pkl(out)
    back = load_pare_output(out)
    assert list(back.tracks) == [1, 2]
    for tid, t in result.tracks.items():
        for key in ("verts", "pose", "betas", "orig_cam", "bboxes", "frame_ids", "smpl_joints2d"):
            np.testing.assert_array_equal(getattr(back.tracks[tid], key), getattr(t, key))


def test_cancel_mid_run_writes_nothing(make_main_window, clip_copy: Path, qtbot) -> None:  # noqa: ANN001
    w = make_main_window()
    _prepare(w, clip_copy, qtbot, save_pkl=True, batch_size=1)
    out_pkl = documents.default_output_pkl(clip_copy / "clip.mp4")
    crops: list[int] = []
    w.engine.progress.connect(
        lambda stage, done, total: crops.append(done) if stage == "infer" else None
    )
    assert w.start_run()
    qtbot.waitUntil(lambda: bool(crops), timeout=RUN_TIMEOUT_MS)  # inference has started
    with qtbot.waitSignal(w.engine.cancelled, timeout=RUN_TIMEOUT_MS):
        w.actions_.cancel.trigger()
    assert max(crops) < 10  # stopped before the end
    assert not out_pkl.exists()
    assert not out_pkl.parent.exists() or not any(out_pkl.parent.iterdir())  # no partial/temp file
    qtbot.waitUntil(lambda: w.run_panel.run_button.isEnabled(), timeout=5000)
    assert "Cancelled" in w.run_panel.stage.text()
    assert not w.engine.is_busy


def test_run_error_is_a_dialog_not_a_traceback(make_main_window, clip_copy: Path, qtbot) -> None:  # noqa: ANN001
    w = make_main_window()
    _prepare(w, clip_copy, qtbot)
    (clip_copy / "boxes.txt").write_text("this is not a MOTChallenge file\n")
    with qtbot.waitSignal(w.error_shown, timeout=RUN_TIMEOUT_MS) as blocker:
        assert w.start_run()
    message = blocker.args[0]
    assert "boxes.txt" in message and not message.startswith("Unexpected")
    w.error_box.close()
    qtbot.waitUntil(lambda: w.run_panel.run_button.isEnabled(), timeout=5000)


def test_close_while_running_stops_the_engine(make_main_window, clip_copy: Path, qtbot) -> None:  # noqa: ANN001
    w = make_main_window()
    _prepare(w, clip_copy, qtbot, batch_size=1)
    thread = w.engine.thread
    started: list[str] = []
    w.engine.progress.connect(lambda stage, done, total: started.append(stage))
    assert w.start_run()
    qtbot.waitUntil(lambda: "infer" in started, timeout=RUN_TIMEOUT_MS)
    t0 = time.perf_counter()
    w.close()
    assert thread.isFinished()
    print(f"\nclosed during a run in {time.perf_counter() - t0:.2f} s")
    # make_main_window's teardown checks that no thread or window is left behind
