"""VispyIndexedMesh: a lean shaded mesh visual for per-frame SMPL updates.

VisPy's ``MeshVisual`` draws unindexed (every face's three corners: 41,328 vertices for SMPL),
recomputes normals with ``np.add.at`` and relinks its program on every ``set_data``. With a
software OpenGL driver that costs tens of milliseconds per mesh and frame. This visual keeps the
6,890 vertices in a vertex buffer, draws them through a fixed index buffer (faces, or edges for
the wireframe), and takes normals computed with ``np.bincount``. Lighting is two-sided Lambert
from two fixed lights plus ambient, so both sides of a thin mesh stay readable.
"""

from __future__ import annotations

import numpy as np
from vispy import gloo
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

_VERT = """
varying vec3 v_normal;
void main() {
    v_normal = $normal;
    gl_Position = $transform(vec4($position, 1.0));
}
"""

_FRAG = """
varying vec3 v_normal;
void main() {
    vec3 n = normalize(v_normal);
    float key = abs(dot(n, normalize(vec3(0.35, 0.8, 0.6))));
    float fill = abs(dot(n, normalize(vec3(-0.6, 0.2, -0.5))));
    float shade = $lit > 0.5 ? 0.35 + 0.55 * key + 0.2 * fill : 1.0;
    gl_FragColor = vec4($color.rgb * min(shade, 1.0), $color.a);
}
"""


class NormalCalculator:
    """Area-weighted unit vertex normals for one topology, via a sparse vertex-face matrix.

    The (V, F) incidence matrix is built once per ``faces`` array; each call is then two small
    numpy operations and one sparse product (~1 ms for SMPL).
    """

    def __init__(self) -> None:
        self._faces: np.ndarray | None = None
        self._incidence = None
        self._f: np.ndarray | None = None

    def __call__(self, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """(V, 3) float32 unit normals of ``verts`` (V, 3) with ``faces`` (F, 3); 0 if unused."""
        if faces is not self._faces:
            from scipy.sparse import csr_matrix

            f = np.asarray(faces, dtype=np.int64)
            n_faces = len(f)
            self._incidence = csr_matrix(
                (np.ones(3 * n_faces, np.float32), (f.ravel(), np.repeat(np.arange(n_faces), 3))),
                shape=(len(verts), n_faces),
            )
            self._faces, self._f = faces, f
        v = np.asarray(verts, dtype=np.float32)
        f = self._f
        assert f is not None
        fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
        out = np.asarray(self._incidence @ fn, dtype=np.float32)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norm, out=out, where=norm > 0)
        return out


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, (V, 3) float32 (once; see :class:`NormalCalculator`)."""
    return NormalCalculator()(verts, faces)


def hidden_side(verts: np.ndarray, faces: np.ndarray) -> str:
    """Which faces to cull for a closed mesh: "back" if its faces wind counter-clockwise seen from
    outside (positive signed volume, as SMPL's), else "front".

    Both views map the camera frame to the screen with a proper rotation, so the faces of a closed
    mesh that point away from the viewer are these; culling them halves the rasterisation work of
    a software renderer without changing the picture.
    """
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    volume = float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum())
    return "back" if volume >= 0 else "front"


def unique_edges(faces: np.ndarray) -> np.ndarray:
    """(E, 2) uint32 undirected edges of a triangle mesh."""
    f = np.asarray(faces, dtype=np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e.sort(axis=1)
    return np.unique(e, axis=0).astype(np.uint32)


class IndexedMeshVisual(Visual):
    """Triangles (``mode="triangles"``, shaded) or their edges (``mode="lines"``, flat colour)."""

    def __init__(
        self, mode: str = "triangles", color: tuple[float, ...] = (0.8, 0.8, 0.8, 1.0)
    ) -> None:
        super().__init__(vcode=_VERT, fcode=_FRAG)
        if mode not in ("triangles", "lines"):
            raise ValueError(f"mode must be triangles or lines, not {mode!r}")
        self._draw_mode = mode
        self._positions = gloo.VertexBuffer(np.zeros((3, 3), np.float32))
        self._normals = gloo.VertexBuffer(np.zeros((3, 3), np.float32))
        self._index_buffer = gloo.IndexBuffer(np.array([0, 1, 2], np.uint32))
        self._indices: np.ndarray | None = None
        self._vertices: np.ndarray | None = None
        self._bounds: np.ndarray | None = None
        self.shared_program.vert["position"] = self._positions
        self.shared_program.vert["normal"] = self._normals
        self.shared_program.frag["color"] = tuple(float(c) for c in color)
        self.shared_program.frag["lit"] = 1.0 if mode == "triangles" else 0.0
        if mode == "triangles":
            # push the faces back a little so a wireframe drawn over them wins the depth test
            self.set_gl_state(
                "opaque",
                depth_test=True,
                cull_face=False,
                polygon_offset_fill=True,
                polygon_offset=(1.0, 1.0),
            )
        else:
            self.set_gl_state("opaque", depth_test=True, cull_face=False)
        self.freeze()

    @property
    def vertices(self) -> np.ndarray | None:
        """The (V, 3) float32 positions last uploaded."""
        return self._vertices

    def set_cull(self, side: str | None) -> None:
        """Cull "back" or "front" faces (see :func:`hidden_side`), or None for none."""
        self.update_gl_state(cull_face=side or False)  # keep the depth test and polygon offset
        self.update()

    def set_color(self, color: tuple[float, ...]) -> None:
        self.shared_program.frag["color"] = tuple(float(c) for c in color)
        self.update()

    def set_data(
        self, vertices: np.ndarray, indices: np.ndarray, normals: np.ndarray | None = None
    ) -> None:
        """Upload positions and normals; ``indices`` (faces or edges) only when it changes.

        vertices : (V, 3) float32; indices : (F, 3) or (E, 2) uint32; normals : (V, 3) or None.
        """
        v = np.ascontiguousarray(vertices, dtype=np.float32)
        if self._indices is None or indices is not self._indices:
            self._indices = indices
            self._index_buffer.set_data(np.ascontiguousarray(indices, dtype=np.uint32))
        self._positions.set_data(v)
        self._normals.set_data(
            np.ascontiguousarray(normals if normals is not None else np.zeros_like(v), np.float32)
        )
        self._vertices = v
        self._bounds = np.stack([v.min(axis=0), v.max(axis=0)], axis=1) if len(v) else None
        self.update()

    def _prepare_transforms(self, view: object) -> None:
        view.view_program.vert["transform"] = view.get_transform()  # type: ignore[attr-defined]

    def _prepare_draw(self, view: object) -> bool:
        return self._vertices is not None

    def _compute_bounds(self, axis: int, view: object) -> tuple[float, float] | None:
        if self._bounds is None:
            return None
        return (float(self._bounds[axis, 0]), float(self._bounds[axis, 1]))


#: Scene-graph node of :class:`IndexedMeshVisual`.
VispyIndexedMesh = create_visual_node(IndexedMeshVisual)
