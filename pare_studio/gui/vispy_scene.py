"""VispyScene: the 3D viewport's scene graph (meshes, joints, ground grid, turntable camera).

One mesh visual per track (:class:`VispyIndexedMesh`, plus one for its wireframe) is created the
first time the track is drawn and then only updated with ``set_data`` (never re-created). All
calls must come from the thread that renders the canvas (the render thread in offscreen mode,
the GUI thread for the Qt canvas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from vispy import scene

from pare_studio.gui.mesh_snapshot import SceneSnapshot, TrackGeometry
from pare_studio.gui.placement import display_points
from pare_studio.gui.vispy_ghost import GhostLayer
from pare_studio.gui.vispy_mesh_visual import VispyIndexedMesh, unique_edges

BACKGROUND = "#1e2127"
#: Ground grid: half extent and spacing, metres.
_GRID_HALF = 4.0
_GRID_STEP = 0.5


@dataclass
class _TrackVisuals:
    mesh: VispyIndexedMesh
    wire: VispyIndexedMesh
    points: scene.visuals.Markers
    joints: scene.visuals.Markers
    vertices: np.ndarray | None = None  # what was last given to the visuals
    cull: str | None = None

    def hide(self) -> None:
        self.mesh.visible = self.wire.visible = self.points.visible = self.joints.visible = False
        self.vertices = None


class VispyScene:
    """The viewport's content inside a SceneCanvas."""

    def __init__(self, canvas: scene.SceneCanvas) -> None:
        self.canvas = canvas
        self.view = canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(
            up="+y", fov=45.0, elevation=15.0, azimuth=180.0, distance=4.0
        )
        self._visuals: dict[int, _TrackVisuals] = {}
        self._grid = scene.visuals.Line(
            pos=np.zeros((2, 3), np.float32),
            connect="segments",
            color=(0.8, 0.8, 0.8, 0.25),
            parent=self.view.scene,
        )
        self._grid.visible = False
        self._has_grid = False
        self.last_seq = 0
        self._faces_src: np.ndarray | None = None
        self._faces: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        self._ghosts = GhostLayer(self.view.scene)  # the occlusion panel's unoccluded meshes

    # -- snapshot -----------------------------------------------------------------------------

    def apply(self, snap: SceneSnapshot, geometry: dict[int, TrackGeometry]) -> None:
        """Show the snapshot's 3D people, hide the others (``geometry``: ``prepare_geometry``)."""
        draws = snap.tracks_3d
        wanted = {d.track_id for d in draws}
        for tid, vis in self._visuals.items():
            if tid not in wanted:
                vis.hide()
        for d in draws:
            vis = self._visuals.get(d.track_id) or self._make_visuals(d.track_id, d.color)
            geo = geometry[d.track_id]
            verts = geo.verts
            if snap.faces is not None:
                vis.mesh.set_data(verts, self._faces_for(snap.faces), geo.normals)
                if vis.cull != geo.cull:
                    vis.mesh.set_cull(geo.cull)
                    vis.cull = geo.cull
                vis.mesh.visible, vis.points.visible = True, False
                vis.wire.visible = snap.options.wireframe
                if snap.options.wireframe:
                    vis.wire.set_data(verts, self._edges_for(snap.faces))
            else:
                vis.wire.visible = False
                vis.points.set_data(verts, size=3, edge_width=0, face_color=d.color)
                vis.mesh.visible, vis.points.visible = False, True
            vis.vertices = verts
            if d.joints is not None:
                joints = display_points(d.joints, d.orig_cam)
                vis.joints.set_data(
                    joints, size=9, face_color=(1, 1, 1, 1), edge_color=(0, 0, 0, 1)
                )
                vis.joints.visible = True
            else:
                vis.joints.visible = False
        if snap.reset_view or (not self._has_grid and draws):
            self.reset_view()
        self._grid.visible = snap.options.show_grid and self._has_grid
        # the occlusion panel's ghosts, then the raw bodies behind smoothed ones
        self._ghosts.apply((*getattr(snap, "ghosts", ()), *snap.raw_ghosts), snap.faces)
        self.last_seq = snap.seq

    def shown_vertices(self) -> dict[int, np.ndarray]:
        """Track id -> the vertex data its visual holds now, (6890, 3) float32."""
        out = {}
        for tid, vis in self._visuals.items():
            if vis.mesh.visible and vis.mesh.vertices is not None:
                out[tid] = vis.mesh.vertices.copy()
            elif vis.points.visible and vis.vertices is not None:
                out[tid] = np.array(vis.points._data["a_position"], dtype=np.float32)  # noqa: SLF001
        return out

    def wireframe_enabled(self) -> dict[int, bool]:
        return {tid: bool(v.wire.visible) for tid, v in self._visuals.items() if v.mesh.visible}

    def reset_view(self) -> None:
        """Aim the camera at the meshes from the video camera's side; put the grid under them."""
        pts = [
            v.vertices for v in self._visuals.values() if v.vertices is not None and len(v.vertices)
        ]
        cam = self.view.camera
        if pts:
            allp = np.concatenate(pts)
            lo, hi = allp.min(axis=0), allp.max(axis=0)
            cam.center = tuple(float(c) for c in (lo + hi) / 2)
            cam.distance = float(max(np.linalg.norm(hi - lo), 1.0) * 1.6)
            self._set_grid(float(lo[1]), (lo + hi) / 2)
        else:
            cam.center = (0.0, 0.0, -3.0)
            cam.distance = 4.0
        cam.elevation = 15.0
        cam.azimuth = 180.0

    # -- internals ----------------------------------------------------------------------------

    def _make_visuals(
        self, track_id: int, color: tuple[float, float, float, float]
    ) -> _TrackVisuals:
        parent = self.view.scene
        mesh = VispyIndexedMesh(mode="triangles", color=color, parent=parent)
        wire = VispyIndexedMesh(mode="lines", color=(0.08, 0.08, 0.08, 1.0), parent=parent)
        points = scene.visuals.Markers(parent=parent)
        joints = scene.visuals.Markers(parent=parent)
        joints.set_gl_state("translucent", depth_test=False)
        joints.order = 10
        vis = _TrackVisuals(mesh=mesh, wire=wire, points=points, joints=joints)
        vis.hide()
        self._visuals[int(track_id)] = vis
        return vis

    def _faces_for(self, faces: np.ndarray) -> np.ndarray:
        """``faces`` as contiguous uint32, converted once per topology."""
        if faces is not self._faces_src:
            self._faces_src = faces
            self._faces = np.ascontiguousarray(faces, dtype=np.uint32)
            self._edges = None
        assert self._faces is not None
        return self._faces

    def _edges_for(self, faces: np.ndarray) -> np.ndarray:
        self._faces_for(faces)
        if self._edges is None:
            self._edges = unique_edges(faces)
        return self._edges

    def _set_grid(self, y: float, center: np.ndarray) -> None:
        cx = round(float(center[0]) / _GRID_STEP) * _GRID_STEP
        cz = round(float(center[2]) / _GRID_STEP) * _GRID_STEP
        ticks = np.arange(-_GRID_HALF, _GRID_HALF + 1e-9, _GRID_STEP)
        segs = []
        for t in ticks:
            segs += [(cx + t, y, cz - _GRID_HALF), (cx + t, y, cz + _GRID_HALF)]
            segs += [(cx - _GRID_HALF, y, cz + t), (cx + _GRID_HALF, y, cz + t)]
        self._grid.set_data(pos=np.asarray(segs, np.float32), connect="segments")
        self._has_grid = True
