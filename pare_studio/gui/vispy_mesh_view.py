"""VispyMeshView: the 3D viewport — the current frame's meshes, shaded, turntable camera, grid.

It turns state changes into :class:`SceneSnapshot` s and hands them to a host:

* ``"offscreen"`` (default when EGL works): a :class:`QtOffscreenViewport`, whose render thread
  draws the VisPy scene in a headless EGL context, so the GUI thread never waits for OpenGL;
* ``"native"``: VisPy's Qt canvas (``QOpenGLWidget``), drawn on the GUI thread — the fallback
  where EGL is missing (macOS, Windows).

``PARE_STUDIO_VIEWPORT=offscreen|native`` forces one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import numpy as np
from PySide6.QtWidgets import QWidget

from pare_studio.gui.mesh_snapshot import SceneSnapshot, build_snapshot, prepare_geometry
from pare_studio.gui.qt_offscreen_viewport import QtOffscreenViewport
from pare_studio.gui.state import ViewerState
from pare_studio.gui.vispy_scene import BACKGROUND, VispyScene

VIEWPORT_ENV = "PARE_STUDIO_VIEWPORT"
log = logging.getLogger(__name__)


class VispyMeshView:
    """The 3D viewport; ``native`` is the Qt widget to put in a layout."""

    def __init__(
        self, state: ViewerState, parent: QWidget | None = None, mode: str | None = None
    ) -> None:
        self._state = state
        mode = mode or os.environ.get(VIEWPORT_ENV, "auto")
        if mode not in ("auto", "offscreen", "native"):
            raise ValueError(f"viewport mode must be auto, offscreen or native, not {mode!r}")
        self._offscreen: QtOffscreenViewport | None = None
        self._scene: VispyScene | None = None
        self.canvas = None
        if mode in ("auto", "offscreen"):
            try:
                self._offscreen = QtOffscreenViewport(BACKGROUND, parent)
            except RuntimeError as exc:
                if mode == "offscreen":
                    raise
                log.info("offscreen 3D viewport unavailable (%s); using the Qt OpenGL canvas", exc)
        if self._offscreen is not None:
            self.mode = "offscreen"
            self._widget: QWidget = self._offscreen
        else:
            from vispy import scene

            self.mode = "native"
            from pare_studio.gui.vispy_mesh_visual import NormalCalculator, hidden_side

            self.canvas = scene.SceneCanvas(
                keys=None, show=False, bgcolor=BACKGROUND, parent=parent
            )
            self._scene = VispyScene(self.canvas)
            self._normals = NormalCalculator()
            self._hidden_side = hidden_side
            self._widget = self.canvas.native
        self._widget.setObjectName("meshView")
        self._widget.setMinimumSize(240, 240)
        self._needs_reset = True
        self._closed = False
        self._last: SceneSnapshot | None = None
        self._filter: Callable[[SceneSnapshot], SceneSnapshot] | None = None

        state.source_changed.connect(self._on_new_result)
        state.result_changed.connect(self._on_new_result)
        state.track_added.connect(self._on_track_added)
        state.frame_changed.connect(lambda _f: self.update_frame())
        state.visibility_changed.connect(lambda _t, _v: self.update_frame())
        state.selection_changed.connect(lambda _t: self.update_frame())
        state.display_changed.connect(self.update_frame)
        state.faces_changed.connect(self.update_frame)

    # -- public -------------------------------------------------------------------------------

    @property
    def native(self) -> QWidget:
        """The Qt widget showing the viewport."""
        return self._widget

    @property
    def last_snapshot(self) -> SceneSnapshot | None:
        return self._last

    @property
    def overlay_signal(self) -> object | None:
        """``overlay_ready(seq, frame, rgba)`` of the offscreen renderer (None in native mode)."""
        return None if self._offscreen is None else self._offscreen.overlay_ready

    def update_frame(self) -> None:
        """Show the current frame's meshes (offscreen: sent to the render thread, drawn there)."""
        if self._closed:
            return
        snap = build_snapshot(self._state, reset_view=self._needs_reset)
        if self._filter is not None:
            snap = self._filter(snap)
        if snap.tracks:
            self._needs_reset = False
        self._last = snap
        if self._offscreen is not None:
            self._offscreen.submit(snap)
        else:
            assert self._scene is not None and self.canvas is not None
            self._scene.apply(snap, prepare_geometry(snap, self._normals, self._hidden_side))
            self.canvas.update()

    def set_snapshot_filter(self, fn: Callable[[SceneSnapshot], SceneSnapshot] | None) -> None:
        """``fn(snapshot) -> snapshot`` rewrites every scene before it is drawn (the occlusion
        panel's occluded mesh and ghost); None removes it."""
        self._filter = fn
        self.update_frame()

    def displayed_vertices(self, track_id: int) -> np.ndarray | None:
        """The vertex data of ``track_id``'s visual, (6890, 3) float32, or None if not drawn.

        Offscreen, call :meth:`draw_now` first: the render thread applies snapshots asynchronously.
        """
        return self._shown().get(int(track_id))

    def shown_track_ids(self) -> list[int]:
        return sorted(self._shown())

    def wireframe_enabled(self) -> dict[int, bool]:
        if self._offscreen is not None:
            return self._offscreen.renderer.wireframe_enabled()
        assert self._scene is not None
        return self._scene.wireframe_enabled()

    def draw_now(self) -> None:
        """Draw the newest snapshot synchronously (tests, benchmarks, screenshots)."""
        if self._closed:
            return
        if self._offscreen is not None:
            self._offscreen.flush()
        else:
            self._widget.repaint()

    def image(self) -> np.ndarray:
        """What the viewport shows, (H, W, 3) uint8 RGB (after :meth:`draw_now`)."""
        if self._offscreen is not None:
            img = self._offscreen.last_image()
            return np.zeros((1, 1, 3), np.uint8) if img is None else img
        assert self.canvas is not None
        return np.asarray(self.canvas.render(alpha=False))

    def reset_view(self) -> None:
        """Aim the camera at the drawn meshes, from the video camera's side."""
        if self._closed:
            return
        if self._offscreen is not None:
            self._offscreen.renderer.reset_view()
        else:
            assert self._scene is not None and self.canvas is not None
            self._scene.reset_view()
            self.canvas.update()

    def close(self) -> None:
        """Stop rendering and release the GL context; later state changes are ignored."""
        if self._closed:
            return
        self._closed = True
        if self._offscreen is not None:
            self._offscreen.stop()
        elif self.canvas is not None:
            self.canvas.close()

    # -- internals ----------------------------------------------------------------------------

    def _shown(self) -> dict[int, np.ndarray]:
        if self._offscreen is not None:
            return self._offscreen.renderer.shown_vertices()
        assert self._scene is not None
        return self._scene.shown_vertices()

    def _on_new_result(self) -> None:
        if not self._state.keeping_view:  # an edit or a smoothing update keeps the camera
            self._needs_reset = True
        self.update_frame()

    def _on_track_added(self, track_id: int) -> None:
        track = self._state.track(track_id)
        if track is not None and track.index_of(self._state.frame) is not None:
            self.update_frame()
