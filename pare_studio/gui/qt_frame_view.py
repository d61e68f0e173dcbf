"""QtFrameView: the video frame (pyqtgraph ImageItem, row-major) with per-track overlays.

Overlays per visible track at the current frame: the square box with the track id, the 49
projected joints (``smpl_joints2d``) and the mesh. The mesh overlay is rendered by the 3D
viewport's render thread (shaded, with depth; :meth:`QtFrameView.use_rendered_overlay`); without
one (the Qt-canvas fallback) a flat silhouette is rasterised here (:mod:`silhouette`).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Signal
from PySide6.QtWidgets import QWidget

from pare_studio.errors import PareStudioError
from pare_studio.gui.placement import project_weak_perspective
from pare_studio.gui.silhouette import Silhouette, mesh_silhouette
from pare_studio.gui.state import ViewerState
from pare_studio.gui.track_utils import track_color_255
from pare_studio.results import TrackResult

#: Opacity of the flat mesh silhouette, 0..1.
MESH_ALPHA = 0.5
#: Opacity of the rendered (shaded) mesh overlay, 0..1.
RENDERED_ALPHA = 0.85
#: Silhouettes kept for scrubbing back and forth.
_SILHOUETTE_CACHE = 256


class _TrackOverlay:
    """The graphics items of one track (reused from frame to frame)."""

    def __init__(self, vb: pg.ViewBox, track_id: int) -> None:
        r, g, b = track_color_255(track_id)
        self.color = (r, g, b)
        self.mesh = pg.ImageItem(axisOrder="row-major")
        self.mesh.setZValue(5)
        self.box = pg.PlotCurveItem(pen=pg.mkPen(r, g, b, width=2))
        self.box.setZValue(6)
        self.joints = pg.ScatterPlotItem(
            size=5, pen=pg.mkPen(0, 0, 0, 160), brush=pg.mkBrush(r, g, b)
        )
        self.joints.setZValue(7)
        self.label = pg.TextItem(f"#{track_id}", color=(r, g, b), anchor=(0, 1))
        self.label.setZValue(8)
        self.items = (self.mesh, self.box, self.joints, self.label)
        for it in self.items:
            vb.addItem(it)

    def hide(self) -> None:
        for it in self.items:
            it.setVisible(False)

    def remove(self, vb: pg.ViewBox) -> None:
        for it in self.items:
            vb.removeItem(it)


class QtFrameView(pg.GraphicsView):
    """The current frame with boxes, 2D joints and the mesh overlay of the visible tracks."""

    #: A frame that cannot be decoded (message for the status bar).
    message = Signal(str)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="k")
        self.setObjectName("frameView")
        self._state = state
        self._vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.setCentralItem(self._vb)
        self._image = pg.ImageItem(axisOrder="row-major")
        self._vb.addItem(self._image)
        self._hint = pg.TextItem(
            "Open a video (Ctrl+O) or drop it here", color=(200, 200, 200), anchor=(0.5, 0.5)
        )
        self._vb.addItem(self._hint)
        self._overlays: dict[int, _TrackOverlay] = {}
        self._silhouettes: OrderedDict[tuple[int, int], Silhouette | None] = OrderedDict()
        self._shown_frame = -1
        self._rendered = pg.ImageItem(axisOrder="row-major")
        self._rendered.setZValue(5)
        self._rendered.setOpacity(RENDERED_ALPHA)
        self._rendered.setVisible(False)
        self._vb.addItem(self._rendered)
        self._use_rendered = False
        self._rendered_frame = -1
        self._image.setLevels(None)

        state.source_changed.connect(self._on_source_changed)
        state.result_changed.connect(self._on_result_changed)
        state.track_added.connect(self._on_track_added)
        state.frame_changed.connect(lambda _f: self.refresh())
        state.visibility_changed.connect(lambda _t, _v: self.refresh_overlays())
        state.selection_changed.connect(lambda _t: self.refresh_overlays())
        state.display_changed.connect(self.refresh_overlays)
        state.faces_changed.connect(self._on_faces_changed)
        self._on_source_changed()

    # -- public -------------------------------------------------------------------------------

    @property
    def image_item(self) -> pg.ImageItem:
        return self._image

    @property
    def view_box(self) -> pg.ViewBox:
        return self._vb

    def overlay(self, track_id: int) -> _TrackOverlay | None:
        """The overlay items of a track (tests read their data back)."""
        return self._overlays.get(int(track_id))

    def displayed_frame(self) -> int:
        """Index of the frame the image item shows (-1 = none)."""
        return self._shown_frame

    def use_rendered_overlay(self, overlay_ready: object) -> None:
        """Take the mesh overlay from a renderer's ``overlay_ready(seq, frame, rgba)`` signal."""
        self._use_rendered = True
        overlay_ready.connect(self._on_rendered_overlay)  # type: ignore[attr-defined]
        for ov in self._overlays.values():
            ov.mesh.setVisible(False)

    @property
    def rendered_overlay(self) -> pg.ImageItem:
        """The item showing the rendered mesh overlay."""
        return self._rendered

    def rendered_overlay_frame(self) -> int:
        """The frame the shown rendered overlay belongs to (-1 = none shown)."""
        return self._rendered_frame if self._rendered.isVisible() else -1

    def refresh(self) -> None:
        """Redraw the image and the overlays for ``state.frame``."""
        self._update_image()
        self.refresh_overlays()

    def refresh_overlays(self) -> None:
        state = self._state
        present = {t.track_id: (t, r) for t, r in state.visible_tracks_at()}
        for tid, ov in self._overlays.items():
            if tid not in present:
                ov.hide()
        w, h = state.frame_size
        opts = state.display
        for tid, (track, row) in present.items():
            ov = self._overlays.get(tid)
            if ov is None:
                ov = self._overlays[tid] = _TrackOverlay(self._vb, tid)
            selected = tid == state.selected_track
            self._draw_box(ov, track, row, selected, opts.show_boxes)
            self._draw_joints(ov, track, row, opts.show_joints2d)
            self._draw_mesh(ov, track, row, w, h, opts.show_mesh_overlay and not self._use_rendered)
        if not (opts.show_mesh_overlay and present):
            self._rendered.setVisible(False)

    # -- image --------------------------------------------------------------------------------

    def _update_image(self) -> None:
        state = self._state
        frame = None
        if state.source is not None and state.n_frames:
            try:
                frame = state.read_frame(state.frame)
            except (PareStudioError, IndexError) as exc:
                self.message.emit(f"Frame {state.frame}: {exc}")
        if frame is None:
            w, h = state.frame_size
            if w and h:
                frame = np.full((h, w, 3), 40, np.uint8)
        if frame is None:
            self._image.clear()
            self._shown_frame = -1
            return
        self._image.setImage(frame, autoLevels=False)
        self._shown_frame = state.frame
        self._hint.setVisible(False)

    def _on_source_changed(self) -> None:
        self._silhouettes.clear()
        w, h = self._state.frame_size
        has_any = self._state.source is not None or self._state.result is not None
        self._hint.setVisible(not has_any)
        self.refresh()
        if w and h:
            self._vb.setRange(QRectF(0, 0, w, h), padding=0.02)
        else:
            self._hint.setPos(0, 0)
            self._vb.setRange(QRectF(-1, -1, 2, 2))

    def _on_result_changed(self) -> None:
        self._silhouettes.clear()
        for ov in self._overlays.values():
            ov.remove(self._vb)
        self._overlays.clear()
        self._rendered.setVisible(False)
        if self._state.source is None:
            self._on_source_changed()
        else:
            self.refresh_overlays()  # same video: the image stays

    def _on_track_added(self, track_id: int) -> None:
        self._silhouettes = OrderedDict(
            (k, v) for k, v in self._silhouettes.items() if k[0] != track_id
        )
        track = self._state.track(track_id)
        if track is not None and track.index_of(self._state.frame) is not None:
            self.refresh_overlays()

    def _on_faces_changed(self) -> None:
        self._silhouettes.clear()
        self.refresh_overlays()

    # -- overlays -----------------------------------------------------------------------------

    def _on_rendered_overlay(self, seq: int, frame: int, rgba: np.ndarray | None) -> None:
        state = self._state
        if frame != state.frame:
            return  # an overlay for a frame we already left
        w, h = state.frame_size
        if rgba is None or not state.display.show_mesh_overlay or not (w and h):
            self._rendered.setVisible(False)
            return
        self._rendered.setImage(rgba, autoLevels=False)
        self._rendered.setRect(QRectF(0, 0, w, h))
        self._rendered.setVisible(True)
        self._rendered_frame = frame

    @staticmethod
    def _draw_box(
        ov: _TrackOverlay, track: TrackResult, row: int, selected: bool, show: bool
    ) -> None:
        if not show or track.bboxes is None:
            ov.box.setVisible(False)
            ov.label.setVisible(False)
            return
        cx, cy, bw, bh = (float(v) for v in track.bboxes[row][:4])
        x0, x1, y0, y1 = cx - bw / 2, cx + bw / 2, cy - bh / 2, cy + bh / 2
        ov.box.setData(x=[x0, x1, x1, x0, x0], y=[y0, y0, y1, y1, y0])
        ov.box.setPen(pg.mkPen(*ov.color, width=3.5 if selected else 1.5))
        ov.box.setVisible(True)
        ov.label.setPos(x0, y0)
        ov.label.setVisible(True)

    @staticmethod
    def _draw_joints(ov: _TrackOverlay, track: TrackResult, row: int, show: bool) -> None:
        if not show or track.smpl_joints2d is None:
            ov.joints.setVisible(False)
            return
        j = np.asarray(track.smpl_joints2d[row], dtype=np.float64)
        ov.joints.setData(x=j[:, 0], y=j[:, 1])
        ov.joints.setVisible(True)

    def _draw_mesh(
        self, ov: _TrackOverlay, track: TrackResult, row: int, w: int, h: int, show: bool
    ) -> None:
        faces = self._state.faces
        if (
            not show
            or faces is None
            or not (w and h)
            or track.verts is None
            or track.orig_cam is None
        ):
            ov.mesh.setVisible(False)
            return
        key = (int(track.track_id), int(track.frame_ids[row]))
        if key in self._silhouettes:
            sil = self._silhouettes[key]
            self._silhouettes.move_to_end(key)
        else:
            pts = project_weak_perspective(track.verts[row], track.orig_cam[row], w, h)
            sil = mesh_silhouette(pts, faces, w, h)
            self._silhouettes[key] = sil
            while len(self._silhouettes) > _SILHOUETTE_CACHE:
                self._silhouettes.popitem(last=False)
        if sil is None:
            ov.mesh.setVisible(False)
            return
        mh, mw = sil.mask.shape
        rgba = np.empty((mh, mw, 4), np.uint8)
        rgba[..., :3] = ov.color
        rgba[..., 3] = (sil.mask.astype(np.uint16) * int(255 * MESH_ALPHA) // 255).astype(np.uint8)
        ov.mesh.setImage(rgba, autoLevels=False, levels=(0, 255))
        ov.mesh.setRect(QRectF(*sil.rect))
        ov.mesh.setVisible(True)
