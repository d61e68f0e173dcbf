#!/usr/bin/env python3
"""Window responsiveness: one-frame scrub latency, and the GUI thread's longest stall during a run.

Run under a display with OpenGL (Xvfb + Mesa here)::

    xvfb-run -a -s "-screen 0 1600x1000x24" python3 benchmarks/bench_gui.py --smpl-dir DIR \
        [--frames 60] [--run --cfg CFG --ckpt CKPT [--torch-threads 0 1]] [--viewport auto]

(a) Scrub. A synthetic 640x360 clip (``shared/parity/make_demo_fixture.py``) with a two-person
    result that follows the clip's boxes (synthetic SMPL mesh) is opened in the real window. Each
    step is ``state.step(1)`` + ``processEvents()`` + a forced draw of the 3D view
    (``mesh_view.draw_now()``, which waits for the render thread: 2D mesh overlay and 3D view),
    timed with ``time.perf_counter``. "cold" is the first pass (frame decoded, overlay and 3D
    rendered for the first time), "warm" a second pass (decoded frames cached). "gui" is the part
    spent on the GUI thread (image, boxes, joints, snapshot), the rest waits for OpenGL.
    Target: ≤ 50 ms.

(b) Heartbeat (``--run``). A 10 ms QTimer runs on the GUI thread while the window runs PARE on a
    6-frame clip with its boxes file (the synthetic checkpoint); the largest gap between ticks is
    the longest time the GUI thread was blocked. Reported for the model load at start-up (done in
    the background) and for the run itself (the second run in the window: the first pays one-off
    imports). One window per ``--torch-threads`` value. Target for the run: ≤ 100 ms.

The load average is printed: on a shared machine other processes lengthen every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FIXTURE = REPO.parent / "shared" / "parity" / "make_demo_fixture.py"


def make_clip(out: Path, frames: int) -> Path:
    if not (out / "truth.json").is_file():
        subprocess.run(
            [sys.executable, str(FIXTURE), str(out), "--frames", str(frames)], check=True
        )
    return out


def pump(app: object, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.005)


def stats(ms: list[float]) -> str:
    a = np.asarray(ms)
    return f"median {np.median(a):6.1f}  p90 {np.percentile(a, 90):6.1f}  max {a.max():6.1f}"


def bench_scrub(app: object, smpl_dir: Path, clip: Path, viewport: str | None) -> None:
    from pare_studio.gui.main_window import QtMainWindow
    from tests.gui.synthetic import load_template, make_result_for_truth

    w = QtMainWindow(assets=None, viewport=viewport)
    w.resize(1400, 860)
    w.show()
    pump(app, 0.5)
    w.open_path(clip / "clip.mp4")
    w.state.set_faces(load_template(smpl_dir)[1])
    w.state.set_result(make_result_for_truth(smpl_dir, clip / "truth.json"))
    w.mesh_view.draw_now()
    pump(app, 0.5)
    n = w.state.n_frames
    print(
        f"\n(a) scrub: {n} frames 640x360, 2 people, 3D viewport: {w.mesh_view.mode}, "
        f"view {w.mesh_view.native.width()}x{w.mesh_view.native.height()}"
    )
    for label in ("cold", "warm"):
        w.state.set_frame(0)
        w.mesh_view.draw_now()
        pump(app, 0.3)
        total, gui = [], []
        renderer = getattr(w.mesh_view.native, "renderer", None)
        if renderer is not None:
            renderer.timings.clear()
        for _ in range(n - 1):
            t0 = time.perf_counter()
            w.state.step(1)
            app.processEvents()  # type: ignore[attr-defined]
            t1 = time.perf_counter()
            w.mesh_view.draw_now()
            t2 = time.perf_counter()
            total.append(1000 * (t2 - t0))
            gui.append(1000 * (t1 - t0))
        print(f"    {label}: total {stats(total)} ms | gui thread {stats(gui)} ms")
        if renderer is not None:
            t = 1000 * np.asarray([x for x in renderer.timings if x[0] > 0])
            print(
                f"          render thread medians: 2D overlay {np.median(t[:, 0]):.1f}, 3D update "
                f"{np.median(t[:, 1]):.1f}, 3D render {np.median(t[:, 2]):.1f} ms"
            )
    w.close()


def bench_run(app: object, args: argparse.Namespace, clip: Path, threads: int | None) -> None:
    from PySide6.QtCore import QTimer

    from pare_studio.gui.engine_jobs import ModelAssets
    from pare_studio.gui.main_window import QtMainWindow
    from pare_studio.gui.qt_run_panel import RunSettings

    gaps: list[tuple[float, float]] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now, now - last[0]))
        last[0] = now

    beat = QTimer()
    beat.setInterval(10)
    beat.timeout.connect(tick)
    assets = ModelAssets(cfg=args.cfg, ckpt=args.ckpt, smpl_dir=args.smpl_dir)
    t_start = time.perf_counter()
    last[0] = t_start
    beat.start()
    w = QtMainWindow(assets=assets, viewport=args.viewport, torch_threads=threads or None)
    w.show()
    while w.state.faces is None:  # the background model load
        app.processEvents()  # type: ignore[attr-defined]
        time.sleep(0.005)
    t_loaded = time.perf_counter()
    w.open_path(clip / "clip.mp4")
    w.run_panel.set_settings(
        RunSettings(detector="boxes", boxes_file=clip / "boxes.txt", batch_size=2)
    )
    pump(app, 0.5)  # opening the video is not part of the run (a user clicks Run later)
    done: dict[str, object] = {}
    events: list[tuple[float, str]] = []
    w.engine.progress.connect(
        lambda st, d, n: events.append((time.perf_counter(), f"{st} {d}/{n}"))
    )
    w.engine.track_ready.connect(
        lambda t: events.append((time.perf_counter(), f"track {t.track_id} ready"))
    )
    w.engine.run_finished.connect(lambda r: done.setdefault("result", r))
    w.engine.failed.connect(lambda m, d: done.setdefault("error", m))
    for _attempt in (
        "warm-up",
        "measured",
    ):  # the first run pays one-off imports and decoder set-up
        done.clear()
        events.clear()
        pump(app, 0.5)
        t_run = time.perf_counter()
        w.start_run()
        while not done:
            app.processEvents()  # type: ignore[attr-defined]
            time.sleep(0.002)
        t_end = time.perf_counter()
        if "error" in done:
            break
    beat.stop()
    w.close()
    if "error" in done:
        raise SystemExit(f"run failed: {done['error']}")
    load = [1000 * g for t, g in gaps if t <= t_loaded]
    run = [1000 * g for t, g in gaps if t_run < t <= t_end]
    label = f"torch threads {threads}" if threads else "torch threads: engine default (cores - 1)"
    print(
        f"    {label}: model load {t_loaded - t_start:5.1f} s, "
        f"longest GUI stall {max(load):6.1f} ms | "
        f"run {t_end - t_run:5.1f} s, {len(run)} ticks, longest stall {max(run):6.1f} ms, "
        f"p99 {np.percentile(run, 99):5.1f} ms"
    )
    if args.verbose:
        for t, e in events:
            print(f"        {t - t_run:7.2f} s  {e}")
        for t, g in gaps:
            if t > t_run and g > 0.05:
                print(f"        {t - g - t_run:7.2f} s  GUI stall {1000 * g:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smpl-dir", type=Path, required=True)
    ap.add_argument("--cfg", type=Path)
    ap.add_argument("--ckpt", type=Path)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--run", action="store_true", help="also measure the heartbeat during a run")
    ap.add_argument("--torch-threads", type=int, nargs="*", default=[0], help="0: engine default")
    ap.add_argument("--viewport", choices=["auto", "offscreen", "native"], default=None)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument(
        "--verbose", action="store_true", help="list the run's events and stalls over 50 ms"
    )
    args = ap.parse_args()
    if args.run and not (args.cfg and args.ckpt):
        ap.error("--run needs --cfg and --ckpt")

    from PySide6.QtCore import QSettings

    from pare_studio.gui.app import create_app

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_gui_"))
    app = create_app()
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    bench_scrub(
        app, args.smpl_dir, make_clip(work / f"clip{args.frames}", args.frames), args.viewport
    )
    if args.run:
        clip = make_clip(work / "clip6", 6)
        print("\n(b) heartbeat (10 ms QTimer) while PARE runs on 6 frames, 2 people (10 crops)")
        for threads in args.torch_threads:
            bench_run(app, args, clip, threads)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
