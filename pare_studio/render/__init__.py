"""Offscreen mesh rendering (VisPy's OpenGL bindings on a headless EGL context) and H.264 video
writing (PyAV). No Qt here.

- :mod:`pare_studio.render.gl_context`: ``create_gl_context`` (EGL first, then VisPy's app backend).
- :mod:`pare_studio.render.mesh_renderer`: ``MeshRenderer`` with the reference's weak-perspective
  camera, ``track_color``, ``project_weak_perspective``.
- :mod:`pare_studio.render.video_writer`: ``VideoWriter`` (atomic H.264 mp4).
- :mod:`pare_studio.render.overlay`: ``render_overlay_video`` (generator), ``draw_keypoints``,
  ``save_obj``.

Importing this package is cheap: VisPy, SciPy, PyAV and OpenCV are imported when first used.
"""

from __future__ import annotations

from pare_studio.render.mesh_renderer import MeshRenderer, project_weak_perspective, track_color
from pare_studio.render.overlay import draw_keypoints, render_overlay_video, save_obj
from pare_studio.render.video_writer import VideoWriter

__all__ = [
    "MeshRenderer",
    "VideoWriter",
    "draw_keypoints",
    "project_weak_perspective",
    "render_overlay_video",
    "save_obj",
    "track_color",
]
