"""Offscreen SMPL mesh rendering with the reference's weak-perspective camera (spec §5.8).

Geometry
    ``verts`` are PARE's meshes in the camera frame of the crop (x right, y down, z away from the
    camera, metres, no translation). Like the reference, the mesh is rotated 180° about X,
    ``p = (x, -y, -z)``, and projected with ``P = I4, P00 = sx, P11 = sy, P03 = tx·sx,
    P13 = -ty·sy, P22 = -1`` for ``orig_cam = (sx, sy, tx, ty)``::

        ndc_x = sx·(x + tx)          pixel_x = (ndc_x + 1)·W/2
        ndc_y = -sy·(y + ty)         pixel_y = (1 - ndc_y)·H/2 = (sy·(y + ty) + 1)·H/2

    which is exactly where ``smpl_joints2d`` (spec §5.5) puts the joints in original-image pixels
    (checked by tests/render/test_renderer.py). Depth is ``z`` scaled by 0.1 (the reference uses
    ``z`` itself, which clips anything more than 1 m from the mesh origin; the order is the same).

People
    Drawn in ascending ``sy`` order (nearer = larger ``sy`` = drawn later, on top), each with its
    own depth test, i.e. the reference's one-person-at-a-time compositing. Colours are RGB floats
    (:func:`track_color` gives a fixed colour per track id; the reference picks random hues each run
    and shows them R/B-swapped because it composites onto BGR frames).

Shading
    Smooth vertex normals, ambient 0.3 plus three white point lights at (0,-1,1), (0,1,1), (1,1,2)
    (the reference's light positions) with Lambert diffuse and a faint Blinn specular. The look is
    close to, not pixel-equal with, pyrender's PBR.

Side view
    The same meshes additionally rotated 270° about Y, on black, concatenated to the right
    (output width 2·W).

A renderer is created once per video (it owns an OpenGL context and buffers) and reused for every
frame; it may be used from any thread when the EGL backend is in use (one thread at a time).
"""

from __future__ import annotations

import colorsys
import threading
from collections.abc import Sequence
from types import TracebackType

import numpy as np

from pare_studio.errors import RenderError
from pare_studio.render.gl_context import create_gl_context

#: Reference's point-light positions (after the 180° X rotation; camera looks down -z).
LIGHT_POSITIONS = np.array([[0.0, -1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 2.0]], np.float32)
AMBIENT = 0.3
DIFFUSE = 0.45
SPECULAR = 0.08
#: Depth scale of the projection (reference: 1.0, i.e. clipping at |z| > 1 m).
DEPTH_SCALE = 0.1

# desktop-GL enums not in VisPy's ES2 constant set
_GL_RGBA8 = 0x8058
_GL_DEPTH_COMPONENT24 = 0x81A6

_VERTEX_SHADER = """
#version 120
attribute vec3 a_position;
attribute vec3 a_normal;
uniform vec4 u_cam;          // sx, sy, tx, ty
uniform mat3 u_rot;          // 180 deg about X (then 270 deg about Y for the side view)
uniform float u_depth_scale;
varying vec3 v_pos;
varying vec3 v_normal;
void main() {
    vec3 p = u_rot * a_position;
    v_pos = p;
    v_normal = u_rot * a_normal;
    gl_Position = vec4(u_cam.x * (p.x + u_cam.z), u_cam.y * (p.y - u_cam.w),
                       -p.z * u_depth_scale, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 120
uniform vec3 u_color;
uniform vec3 u_lights[3];
uniform vec3 u_weights;      // ambient, diffuse, specular
varying vec3 v_pos;
varying vec3 v_normal;
void main() {
    vec3 n = normalize(v_normal);
    if (!gl_FrontFacing) n = -n;
    vec3 c = u_weights.x * u_color;
    for (int k = 0; k < 3; k++) {
        vec3 l = normalize(u_lights[k] - v_pos);
        float d = max(dot(n, l), 0.0);
        vec3 h = normalize(l + vec3(0.0, 0.0, 1.0));
        float s = pow(max(dot(n, h), 0.0), 32.0);
        c += u_weights.y * d * u_color + u_weights.z * s * vec3(1.0);
    }
    gl_FragColor = vec4(min(c, vec3(1.0)), 1.0);
}
"""


def rotation_x(degrees: float) -> np.ndarray:
    """(3, 3) float64 rotation about X (right-handed, as trimesh's ``rotation_matrix``)."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rotation_y(degrees: float) -> np.ndarray:
    """(3, 3) float64 rotation about Y."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


#: The reference's mesh rotation (180° about X) and the side view's (then 270° about Y).
ROT_FRONT = rotation_x(180.0)
ROT_SIDE = rotation_y(270.0) @ ROT_FRONT


def track_color(track_id: int) -> tuple[float, float, float]:
    """A fixed, well-spread RGB colour in [0, 1] for a track id (HSV hue by golden ratio,
    saturation 0.5, value 1.0 like the reference)."""
    hue = (0.13 + 0.618033988749895 * int(track_id)) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.5, 1.0)


def project_weak_perspective(
    points: np.ndarray, cam: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Pixel coordinates of model-frame points under ``orig_cam`` (the renderer's projection).

    Parameters
    ----------
    points : (N, 3) metres (PARE camera frame, y down).
    cam : (4,) ``(sx, sy, tx, ty)``.
    width, height : image size, pixels.

    Returns
    -------
    (N, 2) float64 pixel coordinates (x right, y down; pixel centres at +0.5).
    """
    sx, sy, tx, ty = (float(v) for v in cam)
    pts = np.asarray(points, np.float64)
    u = (sx * (pts[:, 0] + tx) + 1.0) * width / 2.0
    v = (sy * (pts[:, 1] + ty) + 1.0) * height / 2.0
    return np.stack([u, v], axis=1)


def _unique_edges(faces: np.ndarray) -> np.ndarray:
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e.sort(axis=1)
    return np.unique(e, axis=0)


class MeshRenderer:
    """Offscreen renderer of meshes sharing one face list (SMPL), for frames of one size.

    Parameters
    ----------
    width, height : frame size in pixels.
    faces : (F, 3) integer vertex indices (e.g. SMPL's (13776, 3)).
    backend : OpenGL backend, see :func:`pare_studio.render.gl_context.create_gl_context`.

    Raises
    ------
    RenderError
        No OpenGL context can be created, or the GL setup fails.
    """

    def __init__(self, width: int, height: int, faces: np.ndarray, *, backend: str | None = None):
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        faces = np.asarray(faces)
        if faces.ndim != 2 or faces.shape[1] != 3 or faces.size == 0:
            raise ValueError(f"faces must be (F, 3) vertex indices, got shape {faces.shape}")
        self.width = int(width)
        self.height = int(height)
        self.n_verts = int(faces.max()) + 1
        self._faces = faces.astype(np.int64)
        self._lock = threading.Lock()
        index_dtype = np.uint16 if self.n_verts <= 0xFFFF else np.uint32
        self._tri_index = faces.astype(index_dtype).ravel()
        self._edge_index = _unique_edges(self._faces).astype(index_dtype).ravel()
        self._index_type = None  # set once GL is loaded
        self._index_dtype = index_dtype
        self._normal_matrix = self._vertex_face_matrix()
        self._ctx = create_gl_context(backend)
        self.backend = self._ctx.backend
        self.gl_renderer = getattr(self._ctx, "renderer_name", "")
        self._fbo_width = 0
        self._gl_ids: dict[str, int] = {}
        try:
            self._setup_gl()
        except Exception as exc:
            self._ctx.destroy()
            raise RenderError(
                f"OpenGL setup failed on {self.backend} ({self.gl_renderer}): {exc}"
            ) from exc
        finally:
            self._release()

    # -- setup -----------------------------------------------------------------------------

    def _vertex_face_matrix(self):  # scipy.sparse.csr_matrix (V, F)
        from scipy import sparse

        f = self._faces
        rows = f.ravel()
        cols = np.repeat(np.arange(len(f)), 3)
        data = np.ones(rows.shape[0], np.float32)
        return sparse.csr_matrix((data, (rows, cols)), shape=(self.n_verts, len(f)))

    def _compile(self, kind: int, source: str) -> int:
        from vispy.gloo import gl

        shader = gl.glCreateShader(kind)
        gl.glShaderSource(shader, source)
        gl.glCompileShader(shader)
        if not gl.glGetShaderParameter(shader, gl.GL_COMPILE_STATUS):
            raise RuntimeError("shader compile error: " + str(gl.glGetShaderInfoLog(shader)))
        return shader

    def _setup_gl(self) -> None:
        from vispy.gloo import gl

        self._index_type = (
            gl.GL_UNSIGNED_SHORT if self._index_dtype == np.uint16 else gl.GL_UNSIGNED_INT
        )
        prog = gl.glCreateProgram()
        vs = self._compile(gl.GL_VERTEX_SHADER, _VERTEX_SHADER)
        fs = self._compile(gl.GL_FRAGMENT_SHADER, _FRAGMENT_SHADER)
        gl.glAttachShader(prog, vs)
        gl.glAttachShader(prog, fs)
        gl.glBindAttribLocation(prog, 0, "a_position")
        gl.glBindAttribLocation(prog, 1, "a_normal")
        gl.glLinkProgram(prog)
        if not gl.glGetProgramParameter(prog, gl.GL_LINK_STATUS):
            raise RuntimeError("shader link error: " + str(gl.glGetProgramInfoLog(prog)))
        gl.glDeleteShader(vs)
        gl.glDeleteShader(fs)
        self._gl_ids["program"] = prog
        self._uniforms = {
            name: gl.glGetUniformLocation(prog, name)
            for name in ("u_cam", "u_rot", "u_depth_scale", "u_color", "u_lights", "u_weights")
        }
        self._gl_ids["vbo"] = gl.glCreateBuffer()
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, self._gl_ids["vbo"])
        gl.glBufferData(gl.GL_ARRAY_BUFFER, self.n_verts * 6 * 4, gl.GL_DYNAMIC_DRAW)
        for name, data in (("tri", self._tri_index), ("edge", self._edge_index)):
            buf = gl.glCreateBuffer()
            gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, buf)
            gl.glBufferData(gl.GL_ELEMENT_ARRAY_BUFFER, data, gl.GL_STATIC_DRAW)
            self._gl_ids[name] = buf
        self._gl_ids["fbo"] = gl.glCreateFramebuffer()
        self._gl_ids["color_rb"] = gl.glCreateRenderbuffer()
        self._gl_ids["depth_rb"] = gl.glCreateRenderbuffer()
        self._ensure_fbo(self.width)

    def _ensure_fbo(self, width: int) -> None:
        """Allocate the framebuffer at least ``width`` wide (grows to 2·W for the side view)."""
        from vispy.gloo import gl

        if width <= self._fbo_width:
            return
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, self._gl_ids["fbo"])
        for key, fmt, attachment in (
            ("color_rb", _GL_RGBA8, gl.GL_COLOR_ATTACHMENT0),
            ("depth_rb", _GL_DEPTH_COMPONENT24, gl.GL_DEPTH_ATTACHMENT),
        ):
            gl.glBindRenderbuffer(gl.GL_RENDERBUFFER, self._gl_ids[key])
            gl.glRenderbufferStorage(gl.GL_RENDERBUFFER, fmt, width, self.height)
            gl.glFramebufferRenderbuffer(
                gl.GL_FRAMEBUFFER, attachment, gl.GL_RENDERBUFFER, self._gl_ids[key]
            )
        status = gl.glCheckFramebufferStatus(gl.GL_FRAMEBUFFER)
        if status != gl.GL_FRAMEBUFFER_COMPLETE:
            raise RenderError(f"framebuffer {width}x{self.height} incomplete (status 0x{status:x})")
        self._fbo_width = width

    def _release(self) -> None:
        try:
            if self._ctx is not None:
                self._ctx.release()
        except Exception:  # releasing never hides the real error
            pass

    # -- per frame ---------------------------------------------------------------------------

    def vertex_normals(self, verts: np.ndarray) -> np.ndarray:
        """(V, 3) float32 unit vertex normals (area-weighted face normals) of one mesh."""
        v = verts.astype(np.float32, copy=False)
        tri = v[self._faces]
        fn = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        vn = np.asarray(self._normal_matrix @ fn, dtype=np.float32)
        vn /= np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)
        return vn

    def render(
        self,
        verts: Sequence[np.ndarray] | np.ndarray,
        cams: Sequence[Sequence[float]] | np.ndarray,
        colors: Sequence[Sequence[float]] | None = None,
        *,
        wireframe: bool = False,
        sideview: bool = False,
    ) -> np.ndarray:
        """Render people on a transparent background.

        Parameters
        ----------
        verts : k meshes, each (V, 3) float, metres (PARE camera frame).
        cams : (k, 4) ``orig_cam`` rows ``(sx, sy, tx, ty)``.
        colors : k RGB triples in [0, 1]; default :func:`track_color` of 1..k.
        wireframe : draw the mesh edges only.
        sideview : also render the side view to the right (output width 2·W).

        Returns
        -------
        (H, W, 4) or (H, 2·W, 4) uint8 RGBA, alpha 255 where a mesh is, 0 elsewhere.
        """
        verts_list = [np.asarray(v, np.float32) for v in verts]
        cams_arr = np.asarray(cams, np.float64).reshape(-1, 4)
        if len(verts_list) != len(cams_arr):
            raise ValueError(f"{len(verts_list)} meshes but {len(cams_arr)} cameras")
        for v in verts_list:
            if v.shape != (self.n_verts, 3):
                raise ValueError(f"each mesh must be ({self.n_verts}, 3), got {v.shape}")
        if colors is None:
            colors = [track_color(i + 1) for i in range(len(verts_list))]
        if len(colors) != len(verts_list):
            raise ValueError(f"{len(verts_list)} meshes but {len(colors)} colours")
        # nearer people (larger sy) last = on top; stable for equal sy
        order = np.argsort(cams_arr[:, 1], kind="stable")
        out_w = self.width * (2 if sideview else 1)
        with self._lock:
            if self._ctx is None:
                raise RenderError("The renderer was closed; create a new MeshRenderer.")
            self._ctx.make_current()
            try:
                return self._draw(verts_list, cams_arr, colors, order, out_w, wireframe, sideview)
            except RenderError:
                raise
            except Exception as exc:
                raise RenderError(f"OpenGL rendering failed on {self.backend}: {exc}") from exc
            finally:
                self._release()

    def _draw(self, verts_list, cams_arr, colors, order, out_w, wireframe, sideview) -> np.ndarray:
        from vispy.gloo import gl

        self._ensure_fbo(out_w)
        ids = self._gl_ids
        gl.glBindFramebuffer(gl.GL_FRAMEBUFFER, ids["fbo"])
        gl.glViewport(0, 0, out_w, self.height)
        gl.glClearColor(0.0, 0.0, 0.0, 0.0)
        gl.glClear(gl.GL_COLOR_BUFFER_BIT | gl.GL_DEPTH_BUFFER_BIT)
        gl.glEnable(gl.GL_DEPTH_TEST)
        gl.glDepthFunc(gl.GL_LESS)
        gl.glDisable(gl.GL_BLEND)
        gl.glDisable(gl.GL_CULL_FACE)
        gl.glUseProgram(ids["program"])
        u = self._uniforms
        gl.glUniform1f(u["u_depth_scale"], DEPTH_SCALE)
        gl.glUniform3fv(u["u_lights"], 3, LIGHT_POSITIONS.ravel())
        gl.glUniform3f(u["u_weights"], AMBIENT, DIFFUSE, SPECULAR)
        gl.glBindBuffer(gl.GL_ARRAY_BUFFER, ids["vbo"])
        gl.glEnableVertexAttribArray(0)
        gl.glEnableVertexAttribArray(1)
        gl.glVertexAttribPointer(0, 3, gl.GL_FLOAT, False, 24, 0)
        gl.glVertexAttribPointer(1, 3, gl.GL_FLOAT, False, 24, 12)
        if wireframe:
            gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, ids["edge"])
            mode, count = gl.GL_LINES, len(self._edge_index)
        else:
            gl.glBindBuffer(gl.GL_ELEMENT_ARRAY_BUFFER, ids["tri"])
            mode, count = gl.GL_TRIANGLES, len(self._tri_index)
        views = [(0, ROT_FRONT)] + ([(self.width, ROT_SIDE)] if sideview else [])
        interleaved = np.empty((self.n_verts, 6), np.float32)
        for k in order:
            interleaved[:, :3] = verts_list[k]
            interleaved[:, 3:] = self.vertex_normals(verts_list[k])
            gl.glBufferSubData(gl.GL_ARRAY_BUFFER, 0, interleaved)
            gl.glUniform4f(u["u_cam"], *(float(c) for c in cams_arr[k]))
            gl.glUniform3f(u["u_color"], *(float(c) for c in colors[k][:3]))
            for x0, rot in views:
                gl.glViewport(x0, 0, self.width, self.height)
                # each person gets its own depth test: the later (nearer) one is fully on top
                gl.glClear(gl.GL_DEPTH_BUFFER_BIT)
                gl.glUniformMatrix3fv(u["u_rot"], 1, False, rot.T.astype(np.float32).ravel())
                gl.glDrawElements(mode, count, self._index_type, None)
        gl.glFinish()
        raw = gl.glReadPixels(0, 0, out_w, self.height, gl.GL_RGBA, gl.GL_UNSIGNED_BYTE)
        img = np.frombuffer(raw, np.uint8).reshape(self.height, out_w, 4)
        return np.ascontiguousarray(img[::-1])

    def overlay(
        self,
        image: np.ndarray,
        verts: Sequence[np.ndarray] | np.ndarray,
        cams: Sequence[Sequence[float]] | np.ndarray,
        colors: Sequence[Sequence[float]] | None = None,
        *,
        wireframe: bool = False,
        sideview: bool = False,
    ) -> np.ndarray:
        """Meshes composited over ``image`` (mask = alpha > 0, as the reference).

        Parameters
        ----------
        image : (H, W, 3) uint8 RGB frame.
        verts, cams, colors, wireframe, sideview : as :meth:`render`.

        Returns
        -------
        (H, W, 3) uint8, or (H, 2·W, 3) with the side view on black to the right.
        """
        if image.shape != (self.height, self.width, 3) or image.dtype != np.uint8:
            raise ValueError(
                f"image must be ({self.height}, {self.width}, 3) uint8, "
                f"got {image.shape} {image.dtype}"
            )
        out_w = self.width * (2 if sideview else 1)
        out = np.zeros((self.height, out_w, 3), np.uint8)
        out[:, : self.width] = image
        if len(verts) == 0:
            return out
        rgba = self.render(verts, cams, colors, wireframe=wireframe, sideview=sideview)
        mask = rgba[:, :, 3] > 0
        out[mask] = rgba[:, :, :3][mask]
        return out

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Free the GL objects and the context. Idempotent."""
        with self._lock:
            if self._ctx is None:
                return
            ctx, self._ctx = self._ctx, None
            try:
                ctx.destroy()  # destroying the context frees its buffers and framebuffer
            except Exception:
                pass

    def __enter__(self) -> MeshRenderer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
