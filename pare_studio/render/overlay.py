"""The overlay video: PARE meshes drawn over the source frames (spec §5.8), plus keypoints and OBJs.

:func:`render_overlay_video` is a generator: it yields one ``Progress(stage="render")`` per frame
and returns the mp4's path. It runs after ``pare_output.pkl`` is safely written; a failure or a
cancel removes the partial video (an existing video of the same name is kept) and raises, and
loses nothing else.

Differences from the reference, on purpose:

- Track colours are fixed per track id (:func:`~pare_studio.render.mesh_renderer.track_color`)
  and shown as RGB; the reference picks random hues every run and shows them R/B-swapped.
- Keypoints (``draw_keypoints``) are drawn after all meshes of the frame, so a nearer person's
  mesh never hides another person's keypoints.
- The video is written directly as H.264 (no PNG round trip); frames come straight from the
  source (no ``tmp_images`` folder).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path

import numpy as np

from pare_studio.atomic import write_text_atomic
from pare_studio.cancel import CancelToken
from pare_studio.errors import RenderError
from pare_studio.pipeline.video import DEFAULT_FOLDER_FPS, FrameSource
from pare_studio.render.mesh_renderer import ROT_FRONT, MeshRenderer, track_color
from pare_studio.render.video_writer import VideoWriter
from pare_studio.results import Progress, VideoResult

#: Keypoint marker: filled circle, radius 4 px, green (spec §5.8).
KEYPOINT_RADIUS = 4
KEYPOINT_COLOR = (0, 255, 0)


def draw_keypoints(image: np.ndarray, joints2d: np.ndarray) -> np.ndarray:
    """Draw filled green radius-4 circles at the joints, in place; returns ``image``.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB (contiguous, writable).
    joints2d : (J, 2) pixel coordinates (x, y); truncated to int like the reference. Non-finite
        points are skipped.
    """
    import cv2

    for x, y in np.asarray(joints2d, np.float64).reshape(-1, 2):
        if np.isfinite(x) and np.isfinite(y) and abs(x) < 1e6 and abs(y) < 1e6:
            cv2.circle(image, (int(x), int(y)), KEYPOINT_RADIUS, KEYPOINT_COLOR, -1)
    return image


#: The same function under a name that the ``draw_keypoints`` flag of
#: :func:`render_overlay_video` does not shadow.
draw_keypoints_into = draw_keypoints


def obj_text(verts: np.ndarray, faces: np.ndarray) -> str:
    """Wavefront OBJ text of a mesh: ``v x y z`` lines then 1-based ``f a b c`` lines."""
    v = "\n".join(f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in np.asarray(verts, np.float64))
    f = "\n".join(f"f {a} {b} {c}" for a, b, c in (np.asarray(faces, np.int64) + 1))
    return f"{v}\n{f}\n"


def save_obj(path: str | Path, verts: np.ndarray, faces: np.ndarray) -> Path:
    """Write one person's mesh as OBJ after the reference's 180° rotation about X.

    Parameters
    ----------
    path : the .obj file (written to a temp file in its folder, then renamed).
    verts : (V, 3) float, metres, PARE camera frame.
    faces : (F, 3) integer vertex indices (0-based).
    """
    path = Path(path)
    rotated = np.asarray(verts, np.float64) @ ROT_FRONT.T
    write_text_atomic(path, obj_text(rotated, faces))
    return path


def obj_path(save_obj_dir: str | Path, track_id: int, frame: int) -> Path:
    """``<dir>/<track_id:04d>/<frame:06d>.obj`` (the reference's ``meshes/`` layout)."""
    return Path(save_obj_dir) / f"{int(track_id):04d}" / f"{int(frame):06d}.obj"


def render_overlay_video(
    source: FrameSource,
    result: VideoResult,
    faces: np.ndarray,
    out_path: str | Path,
    *,
    wireframe: bool = False,
    sideview: bool = False,
    draw_keypoints: bool = False,
    save_obj_dir: str | Path | None = None,
    progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
    renderer: MeshRenderer | None = None,
    fps: float | None = None,
) -> Generator[Progress, None, Path]:
    """Render the overlay video frame by frame.

    Parameters
    ----------
    source : the frames the result was computed on (its own FrameSource; read sequentially).
    result : tracks with ``verts`` (n, V, 3), ``orig_cam`` (n, 4), ``smpl_joints2d`` (n, J, 2).
    faces : (F, 3) mesh faces (SMPL's (13776, 3)).
    out_path : the mp4 to write (H.264); replaced only when the whole video is done.
    wireframe, sideview, draw_keypoints : the reference's ``--wireframe``, ``--sideview``
        (width doubles), ``--draw_keypoints``.
    save_obj_dir : if given, every person of every frame is saved as
        ``<dir>/<track_id:04d>/<frame:06d>.obj`` (the reference's ``--save_obj``).
    progress : called with each Progress as well as yielding it.
    cancel : checked before every frame; a cancel raises ``Cancelled``, removing the partial video.
    renderer : a MeshRenderer to reuse (same frame size); by default one is created and closed here.
    fps : output frame rate; default the source's, or 25 when the source has none (image folder).

    Yields
    ------
    Progress(stage="render", done=frames written, total=frames).

    Returns
    -------
    Path of the finished video.

    Raises
    ------
    RenderError
        No OpenGL, or the result does not fit the source (frame size or count).
    OutputError
        The video (or an OBJ) cannot be written.
    Cancelled
        ``cancel`` was set.
    """
    width, height = source.size
    n = len(source)
    if result.width and result.height and (result.width, result.height) != (width, height):
        raise RenderError(
            f"The results are for {result.width}x{result.height} frames but {source.path} is "
            f"{width}x{height}; render with the video the results were computed on."
        )
    last = max((int(t.frame_ids[-1]) for t in result.tracks.values() if len(t)), default=-1)
    if last >= n:
        raise RenderError(
            f"The results reach frame {last} but {source.path} has only {n} frames; render with "
            "the video the results were computed on."
        )
    out_fps = fps or source.fps or DEFAULT_FOLDER_FPS
    own_renderer = renderer is None
    writer = VideoWriter(out_path, out_fps)
    finished = False
    try:
        if renderer is None:
            renderer = MeshRenderer(width, height, faces)
        for i, frame in source.iter_frames():
            if cancel is not None:
                cancel.check()
            people = result.tracks_at(i)
            verts = [t.verts[row] for t, row in people]
            cams = [t.orig_cam[row] for t, row in people]
            colors = [track_color(t.track_id) for t, _ in people]
            out = renderer.overlay(
                frame, verts, cams, colors, wireframe=wireframe, sideview=sideview
            )
            if draw_keypoints and people:
                left = np.ascontiguousarray(out[:, :width]) if sideview else out
                for k in np.argsort([float(c[1]) for c in cams], kind="stable"):
                    t, row = people[k]
                    draw_keypoints_into(left, t.smpl_joints2d[row])
                if sideview:
                    out[:, :width] = left
            if save_obj_dir is not None:
                for t, row in people:
                    save_obj(obj_path(save_obj_dir, t.track_id, i), t.verts[row], faces)
            writer.write(out)
            report = Progress(stage="render", done=i + 1, total=n)
            if progress is not None:
                progress(report)
            yield report
        if cancel is not None:
            cancel.check()
        path = writer.close()
        finished = True
        return path
    finally:
        if not finished:
            writer.abort()
        if own_renderer and renderer is not None:
            renderer.close()
