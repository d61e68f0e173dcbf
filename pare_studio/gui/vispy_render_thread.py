"""VispyRenderThread: renders the 3D viewport off the GUI thread, in a headless EGL context.

Why a thread: with a software OpenGL driver (Mesa llvmpipe: CI, Xvfb, VMs, remote desktops) one
render of two SMPL meshes takes tens of milliseconds, more on a busy machine. Rendering on the
GUI thread would stall scrubbing and the run's progress; here the GUI thread only posts
snapshots and mouse events, and receives finished images.

Protocol: :meth:`submit` keeps only the newest :class:`SceneSnapshot` (latest wins); mouse events
queue in order; the thread applies everything pending and renders once. For a new snapshot it
first renders the 2D mesh overlay (``on_overlay``: the frame view shows the new frame at once,
so its overlay is the most visible lag), then the 3D view (``on_image``). 3D renders are
progressive: right after a change at :data:`INTERACTIVE_SCALE` of the viewport's resolution
(the overlay at :data:`OVERLAY_INTERACTIVE_SCALE`); :data:`REFINE_DELAY_S` after the last change,
at full resolution. Every VisPy object is created
and used in this thread only.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from pare_studio.gui.mesh_snapshot import SceneSnapshot

log = logging.getLogger(__name__)

#: Linear resolution factor of 3D renders made while the scene keeps changing.
INTERACTIVE_SCALE = 0.35
#: The same for the 2D overlay (its cost is mostly per triangle, so a smaller image saves little).
OVERLAY_INTERACTIVE_SCALE = 0.5
#: Idle time after which a full-resolution render replaces the interactive one, seconds.
REFINE_DELAY_S = 0.2

#: on_image(seq of the snapshot shown, (H, W, 3) uint8 RGB, full resolution?)
ImageCallback = Callable[[int, np.ndarray, bool], None]
#: on_overlay(seq, frame index, (h, w, 4) uint8 RGBA over the whole frame, or None = no overlay)
OverlayCallback = Callable[[int, int, "np.ndarray | None"], None]

_EGL_APP: Any = None
_EGL_LOCK = threading.Lock()


def egl_app() -> Any:
    """VisPy's headless EGL application (created once; VisPy's default app stays Qt)."""
    global _EGL_APP
    with _EGL_LOCK:
        if _EGL_APP is None:
            import vispy.app

            # Mesa needs a platform that does not want an X display (VisPy's EGL backend hides
            # DISPLAY while it opens EGL): "surfaceless", unless the user chose a platform.
            had = "EGL_PLATFORM" in os.environ
            os.environ.setdefault("EGL_PLATFORM", "surfaceless")
            try:
                _EGL_APP = vispy.app.Application("egl")
            finally:
                if not had:
                    os.environ.pop("EGL_PLATFORM", None)
        return _EGL_APP


class VispyRenderThread:
    """A thread owning an EGL SceneCanvas and a :class:`VispyScene`.

    Raises ``RuntimeError`` from the constructor when no EGL context can be made.
    """

    def __init__(
        self,
        on_image: ImageCallback,
        on_overlay: OverlayCallback | None = None,
        size: tuple[int, int] = (640, 480),
        background: str = "",
    ) -> None:
        self._on_image = on_image
        self._on_overlay = on_overlay
        self._cond = threading.Condition()
        self._snapshot: SceneSnapshot | None = None
        self._mouse: list[tuple[str, dict[str, Any]]] = []
        self._size = size
        self._new_size: tuple[int, int] | None = size
        self._reset = False
        self._stop = False
        self._kick = False
        self._rendered_seq = 0
        self._submitted_seq = 0
        self._shown: dict[int, np.ndarray] = {}
        self._wire: dict[int, bool] = {}
        self._latest: tuple[int, np.ndarray, bool] | None = None
        #: (seconds in overlay, 3D scene update, 3D render) of recent renders (benchmarks).
        self.timings: deque[tuple[float, float, float]] = deque(maxlen=256)
        self._background = background
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="pare-viewport", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise RuntimeError(f"offscreen OpenGL unavailable: {self._error}") from self._error

    # -- GUI-thread API -----------------------------------------------------------------------

    def submit(self, snapshot: SceneSnapshot) -> None:
        """Show ``snapshot`` (replaces one not yet drawn)."""
        with self._cond:
            self._snapshot = snapshot
            self._submitted_seq = snapshot.seq
            self._cond.notify_all()

    def post_mouse(self, kind: str, **kwargs: Any) -> None:
        """``kind`` in press/move/release/wheel; kwargs as VisPy's mouse events take them."""
        with self._cond:
            self._mouse.append((kind, kwargs))
            self._cond.notify_all()

    def resize(self, width: int, height: int) -> None:
        with self._cond:
            self._new_size = (max(2, int(width)), max(2, int(height)))
            self._cond.notify_all()

    def reset_view(self) -> None:
        with self._cond:
            self._reset = True
            self._cond.notify_all()

    def redraw(self) -> None:
        with self._cond:
            self._kick = True
            self._cond.notify_all()

    def wait_rendered(self, seq: int | None = None, timeout: float = 10.0) -> bool:
        """Block until the snapshot ``seq`` (default: the newest submitted) has been drawn."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted_seq if seq is None else seq
            while self._rendered_seq < target and not self._stop and self._error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return self._rendered_seq >= target

    def latest_image(self) -> tuple[int, np.ndarray, bool] | None:
        """(seq, RGB image, full resolution?) of the last render."""
        with self._cond:
            return self._latest

    def shown_vertices(self) -> dict[int, np.ndarray]:
        """Track id -> vertex data of its visual after the last applied snapshot."""
        with self._cond:
            return dict(self._shown)

    def wireframe_enabled(self) -> dict[int, bool]:
        with self._cond:
            return dict(self._wire)

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- render thread ------------------------------------------------------------------------

    def _main(self) -> None:
        from vispy import scene

        from pare_studio.gui.vispy_overlay_scene import VispyOverlayScene
        from pare_studio.gui.vispy_scene import BACKGROUND, VispyScene

        try:
            app = egl_app()
            canvas = scene.SceneCanvas(
                app=app,
                keys=None,
                show=False,
                size=self._size,
                bgcolor=self._background or BACKGROUND,
            )
            view = VispyScene(canvas)
            ocanvas = scene.SceneCanvas(
                app=app, keys=None, show=False, size=(64, 64), bgcolor=(0, 0, 0, 0)
            )
            overlay = VispyOverlayScene(ocanvas)
        except BaseException as exc:  # noqa: BLE001 (reported to the constructor)
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            self._loop(canvas, view, overlay)
        except Exception:
            log.exception("viewport render thread failed")
        finally:
            canvas.close()
            ocanvas.close()
            with self._cond:
                self._stop = True
                self._cond.notify_all()

    def _loop(self, canvas: Any, view: Any, overlay: Any) -> None:
        from pare_studio.gui.mesh_snapshot import prepare_geometry
        from pare_studio.gui.vispy_mesh_visual import NormalCalculator, hidden_side

        normals = NormalCalculator()
        sides: dict[int, str] = {}  # per topology (id of the faces array)

        def cull(verts: np.ndarray, faces: np.ndarray) -> str:
            if id(faces) not in sides:
                sides.clear()
                sides[id(faces)] = hidden_side(verts, faces)
            return sides[id(faces)]

        last: tuple[SceneSnapshot, dict[int, Any]] | None = None  # for the full-resolution refine
        refine_at: float | None = None
        while True:
            with self._cond:
                while not (
                    self._stop
                    or self._snapshot
                    or self._mouse
                    or self._new_size
                    or self._reset
                    or self._kick
                ):
                    wait = None if refine_at is None else max(0.0, refine_at - time.monotonic())
                    if wait == 0.0:
                        break
                    self._cond.wait(wait)
                if self._stop:
                    return
                snap, self._snapshot = self._snapshot, None
                mouse, self._mouse = self._mouse, []
                size, self._new_size = self._new_size, None
                reset, self._reset = self._reset, False
                kick, self._kick = self._kick, False
            changed = bool(snap or mouse or size or reset or kick)
            scale = INTERACTIVE_SCALE if changed else 1.0
            refine_at = time.monotonic() + REFINE_DELAY_S if changed else None
            if size is not None:
                canvas.size = size  # the EGL backend does not emit resize: tell the scene ourselves
                canvas.events.resize(size=size, physical_size=size)
            t0 = time.perf_counter()
            t1 = t0
            if snap is not None:
                last = (snap, prepare_geometry(snap, normals, cull))
                if self._on_overlay is not None:
                    oscale = OVERLAY_INTERACTIVE_SCALE if changed else 1.0
                    self._on_overlay(snap.seq, snap.frame, overlay.render(snap, last[1], oscale))
                t1 = time.perf_counter()
                view.apply(*last)
                shown, wire = view.shown_vertices(), view.wireframe_enabled()
                with self._cond:
                    self._shown, self._wire = shown, wire
            elif (
                not changed
                and last is not None
                and self._on_overlay is not None
                and last[0].overlay
            ):
                self._on_overlay(last[0].seq, last[0].frame, overlay.render(last[0], last[1], 1.0))
            for kind, kwargs in mouse:
                self._feed_mouse(canvas, kind, kwargs)
            if reset:
                view.reset_view()
            w, h = canvas.size
            t2 = time.perf_counter()
            rgb = np.ascontiguousarray(
                canvas.render(
                    size=(max(2, round(w * scale)), max(2, round(h * scale))), alpha=False
                )
            )
            self.timings.append((t1 - t0, t2 - t1, time.perf_counter() - t2))
            seq = view.last_seq
            with self._cond:
                self._latest = (seq, rgb, scale >= 1.0)
                self._rendered_seq = max(self._rendered_seq, seq)
                self._cond.notify_all()
            self._on_image(seq, rgb, scale >= 1.0)

    @staticmethod
    def _feed_mouse(canvas: Any, kind: str, kwargs: dict[str, Any]) -> None:
        backend = canvas._backend  # noqa: SLF001 (VisPy's backend hooks deliver mouse events)
        if kind == "press":
            backend._vispy_mouse_press(**kwargs)  # noqa: SLF001
        elif kind == "move":
            backend._vispy_mouse_move(**kwargs)  # noqa: SLF001
        elif kind == "release":
            backend._vispy_mouse_release(**kwargs)  # noqa: SLF001
        elif kind == "wheel":
            canvas.events.mouse_wheel(**kwargs)
