"""VispyOverlayScene: the 2D mesh overlay — every visible person rendered over the frame.

The meshes are drawn with the reference's weak-perspective camera (spec §5.8): each vertex goes
to its ``orig_cam`` pixel position (:func:`placement.project_weak_perspective`); the depth test
uses the camera-frame depth (:func:`placement.camera_translation`), so a nearer person hides a
farther one, and shading uses the same normals as the 3D viewport. The image is RGBA with a
transparent background, at the video's resolution (capped at :data:`MAX_OVERLAY_PX`).
"""

from __future__ import annotations

import numpy as np
from vispy import scene

from pare_studio.gui.mesh_snapshot import SceneSnapshot, TrackGeometry
from pare_studio.gui.placement import camera_translation, project_weak_perspective
from pare_studio.gui.vispy_mesh_visual import VispyIndexedMesh

#: Longest side of the overlay image, pixels (larger videos get a scaled overlay).
MAX_OVERLAY_PX = 1280
#: Depth values are mapped into [-_DEPTH, _DEPTH] (inside the clip volume).
_DEPTH = 0.9


class VispyOverlayScene:
    """Meshes in image-pixel coordinates inside their own SceneCanvas."""

    def __init__(self, canvas: scene.SceneCanvas) -> None:
        self.canvas = canvas
        self.view = canvas.central_widget.add_view()
        self.view.camera = scene.PanZoomCamera(aspect=None)
        self.view.camera.flip = (False, True, False)
        self.view.camera.interactive = False
        self._meshes: dict[int, VispyIndexedMesh] = {}
        self._faces_src: np.ndarray | None = None
        self._faces: np.ndarray | None = None
        self._cull: dict[int, str | None] = {}

    def render(
        self, snap: SceneSnapshot, geometry: dict[int, TrackGeometry], scale: float = 1.0
    ) -> np.ndarray | None:
        """The overlay of ``snap``: (h, w, 4) uint8 RGBA covering the whole frame, or None.

        ``scale`` < 1 renders a smaller image (interactive updates); it still covers the frame.
        """
        w, h = snap.frame_size
        draws = snap.tracks
        if not (snap.overlay and snap.faces is not None and w and h and draws):
            return None
        if snap.faces is not self._faces_src:
            self._faces_src = snap.faces
            self._faces = np.ascontiguousarray(snap.faces, dtype=np.uint32)
        faces = self._faces
        assert faces is not None
        scale = min(1.0, MAX_OVERLAY_PX / max(w, h)) * scale
        size = (max(2, round(w * scale)), max(2, round(h * scale)))
        if tuple(self.canvas.size) != size:
            # the EGL backend does not emit resize events: tell the scene ourselves
            self.canvas.size = size
            self.canvas.events.resize(size=size, physical_size=size)
        self.view.camera.rect = (0, 0, w, h)  # frame pixels onto the whole canvas

        depths = [
            np.asarray(d.verts, np.float64)[:, 2] + camera_translation(d.orig_cam)[2] for d in draws
        ]
        lo = min(float(z.min()) for z in depths)
        hi = max(float(z.max()) for z in depths)
        span = max(hi - lo, 1e-6)
        wanted = {d.track_id for d in draws}
        for tid, mesh in self._meshes.items():
            mesh.visible = tid in wanted
        for d, z in zip(draws, depths, strict=True):
            mesh = self._meshes.get(d.track_id)
            if mesh is None:
                mesh = self._meshes[d.track_id] = VispyIndexedMesh(
                    mode="triangles", color=d.color, parent=self.view.scene
                )
            uv = project_weak_perspective(d.verts, d.orig_cam, w, h)
            pos = np.empty((len(uv), 3), np.float32)
            pos[:, :2] = uv
            pos[:, 2] = (z - lo) / span * (2 * _DEPTH) - _DEPTH
            geo = geometry[d.track_id]
            mesh.set_data(pos, faces, geo.normals)
            if self._cull.get(d.track_id, "none") != geo.cull:
                mesh.set_cull(geo.cull)
                self._cull[d.track_id] = geo.cull
            mesh.visible = True
        return np.asarray(self.canvas.render(bgcolor=(0, 0, 0, 0), alpha=True))
