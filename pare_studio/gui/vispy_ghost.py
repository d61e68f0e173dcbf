"""GhostLayer: semi-transparent "ghost" meshes in the 3D viewport (the occlusion panel's reference).

While the occlusion panel is active, the viewport shows the occluded prediction as the person's
normal (opaque) mesh and the unoccluded prediction as a ghost. The ghost is an
:class:`~pare_studio.gui.vispy_mesh_visual.IndexedMeshVisual` with alpha blending, drawn after the
opaque meshes and pushed slightly further back in depth than them, so where both meshes coincide
the opaque one wins and the ghost shows only where the occluder moved the body. Faces turned
away from the camera are culled, so mostly one layer of the ghost is blended. It never appears in
the 2D overlay.

All calls must come from the thread that renders the canvas (as :class:`VispyScene`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pare_studio.gui.mesh_snapshot import TrackDraw
from pare_studio.gui.placement import display_points
from pare_studio.gui.vispy_mesh_visual import NormalCalculator, VispyIndexedMesh, hidden_side

#: Draw order of ghosts (after the opaque meshes, order 0).
GHOST_ORDER = 5
#: Depth offset of the ghost (the opaque mesh uses (1, 1)): coincident surfaces show the mesh.
GHOST_POLYGON_OFFSET = (4.0, 4.0)


def make_ghost_visual(color: tuple[float, ...], parent: object) -> VispyIndexedMesh:
    """A translucent shaded mesh visual (alpha = ``color[3]``), child of ``parent``."""
    mesh = VispyIndexedMesh(mode="triangles", color=color, parent=parent)
    mesh.set_gl_state(
        "translucent",
        depth_test=True,
        cull_face=False,
        blend=True,
        blend_func=("src_alpha", "one_minus_src_alpha"),
        polygon_offset_fill=True,
        polygon_offset=GHOST_POLYGON_OFFSET,
    )
    mesh.order = GHOST_ORDER
    mesh.visible = False
    return mesh


class GhostLayer:
    """Ghost meshes under one scene node, reused from snapshot to snapshot."""

    def __init__(self, parent: object) -> None:
        self._parent = parent
        self._meshes: list[VispyIndexedMesh] = []
        self._shown: list[np.ndarray] = []
        self._faces_src: np.ndarray | None = None
        self._faces: np.ndarray | None = None
        self._cull: str | None = None
        self._normals = NormalCalculator()

    def apply(self, ghosts: Sequence[TrackDraw], faces: np.ndarray | None) -> None:
        """Show ``ghosts`` (placed like the tracks, :func:`display_points`); hide the rest.

        Nothing is drawn without ``faces`` ((F, 3) int) — a point-cloud ghost is unreadable.
        """
        self._shown = []
        if faces is None:
            ghosts = ()
        elif faces is not self._faces_src:
            self._faces_src = faces
            self._faces = np.ascontiguousarray(faces, dtype=np.uint32)
            self._cull = None
        for i, g in enumerate(ghosts):
            if i == len(self._meshes):
                self._meshes.append(make_ghost_visual(g.color, self._parent))
            mesh = self._meshes[i]
            verts = display_points(g.verts, g.orig_cam)
            assert self._faces is not None
            if self._cull is None:  # only the near side: fewer blended layers
                self._cull = hidden_side(verts, self._faces)
            mesh.set_cull(self._cull)
            mesh.set_color(g.color)
            mesh.set_data(verts, self._faces, self._normals(verts, self._faces))
            mesh.visible = True
            self._shown.append(verts)
        for mesh in self._meshes[len(ghosts) :]:
            mesh.visible = False

    def shown_vertices(self) -> list[np.ndarray]:
        """The (6890, 3) float32 display vertices of each visible ghost."""
        return [v.copy() for v in self._shown]
