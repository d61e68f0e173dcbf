"""An OpenGL context for offscreen rendering: headless EGL (Mesa llvmpipe, a GPU), else VisPy's app.

``create_gl_context()`` tries, in order:

1. ``egl``: a private EGL context through VisPy's ctypes EGL binding (``vispy.ext.egl``), on the
   ``surfaceless`` EGL platform (``EGL_PLATFORM=surfaceless`` is set only while the display is
   opened, and only when the variable is not already set), with a 16x16 pbuffer; rendering goes
   to a framebuffer object. It needs no display, no X server and no Qt, does not select VisPy's
   process-wide app backend (so a GUI in the same process keeps its Qt canvases), and can be used
   from any thread (the renderer makes it current for each frame and releases it after).
2. ``app``: a hidden ``vispy.app.Canvas`` on whatever VisPy app backend is available (Qt under a
   display, glfw, ...). Such a context must be used from the thread that created it (for Qt, the
   GUI thread).

``PARE_STUDIO_GL_BACKEND=egl|app`` forces one. Failures raise :class:`RenderError` listing why
each backend could not start.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Protocol

from pare_studio.errors import RenderError

_EGL_DRAW = 0x3059
_EGL_READ = 0x305A
_EGL_LOCK = threading.Lock()
_EGL_DISPLAY: Any = None
_EGL_FAILURE: str | None = None


class GLContext(Protocol):
    """What the renderer needs from a context."""

    backend: str

    def make_current(self) -> None: ...

    def release(self) -> None: ...

    def destroy(self) -> None: ...


def _egl_display() -> tuple[Any, Any]:
    """(vispy.ext.egl module, initialised EGLDisplay), opened once per process."""
    global _EGL_DISPLAY, _EGL_FAILURE
    with _EGL_LOCK:
        if _EGL_FAILURE is not None:
            raise RuntimeError(_EGL_FAILURE)
        try:
            saved = {k: os.environ.get(k) for k in ("EGL_PLATFORM", "DISPLAY")}
            if saved["EGL_PLATFORM"] is None:
                os.environ["EGL_PLATFORM"] = "surfaceless"
            from vispy.ext import egl

            if _EGL_DISPLAY is None:
                try:
                    display = egl.eglGetDisplay()
                finally:
                    for k, v in saved.items():
                        if v is None:
                            os.environ.pop(k, None)
                        else:
                            os.environ[k] = v
                egl.eglInitialize(display)
                _EGL_DISPLAY = display
            return egl, _EGL_DISPLAY
        except Exception as exc:  # missing libEGL, no driver, ...
            _EGL_FAILURE = f"{type(exc).__name__}: {exc}"
            raise RuntimeError(_EGL_FAILURE) from exc


class EglContext:
    """A desktop-OpenGL EGL context with a tiny pbuffer (render into FBOs)."""

    backend = "egl"

    def __init__(self) -> None:
        self._previous: tuple[Any, Any, Any, Any] | None = None
        egl, display = _egl_display()
        self._egl = egl
        self._display = display
        attribs = [
            egl.EGL_RED_SIZE, 8, egl.EGL_GREEN_SIZE, 8, egl.EGL_BLUE_SIZE, 8,
            egl.EGL_ALPHA_SIZE, 8, egl.EGL_SURFACE_TYPE, egl.EGL_PBUFFER_BIT,
            egl.EGL_RENDERABLE_TYPE, egl.EGL_OPENGL_BIT,
        ]  # fmt: skip
        config = egl.eglChooseConfig(display, attribs)[0]
        egl.eglBindAPI(egl.EGL_OPENGL_API)
        self._context = egl.eglCreateContext(display, config, None)
        self._surface = egl.eglCreatePbufferSurface(
            display, config, [egl.EGL_WIDTH, 16, egl.EGL_HEIGHT, 16]
        )
        self.make_current()
        from vispy.gloo import gl

        self.renderer_name = str(gl.glGetParameter(gl.GL_RENDERER))

    def make_current(self) -> None:
        """Make this context current on the calling thread, remembering the EGL context that was
        current there (e.g. a VisPy EGL canvas of the window) so :meth:`release` restores it."""
        egl = self._egl
        lib = egl._lib
        lib.eglGetCurrentContext.restype = ctypes.c_void_p
        lib.eglGetCurrentDisplay.restype = ctypes.c_void_p
        lib.eglGetCurrentSurface.restype = ctypes.c_void_p
        lib.eglGetCurrentSurface.argtypes = (ctypes.c_int,)
        previous = lib.eglGetCurrentContext()
        if previous and previous != self._context.value:
            self._previous = (
                lib.eglGetCurrentDisplay(),
                lib.eglGetCurrentSurface(_EGL_DRAW),
                lib.eglGetCurrentSurface(_EGL_READ),
                previous,
            )
        else:
            self._previous = None
        egl.eglBindAPI(egl.EGL_OPENGL_API)
        egl.eglMakeCurrent(self._display, self._surface, self._surface, self._context)

    def release(self) -> None:
        """Detach from the calling thread (restoring the EGL context that was current before)."""
        egl = self._egl
        previous, self._previous = self._previous, None
        if previous is not None:
            display, draw, read, context = (ctypes.c_void_p(v) for v in previous)
            egl.eglMakeCurrent(display, draw, read, context)
        else:
            egl.eglMakeCurrent(
                self._display, egl.EGL_NO_SURFACE, egl.EGL_NO_SURFACE, egl.EGL_NO_CONTEXT
            )

    def destroy(self) -> None:
        if self._context is None:
            return
        egl = self._egl
        try:
            self.release()
            egl.eglDestroySurface(self._display, self._surface)
            lib = egl._lib
            lib.eglDestroyContext.argtypes = (ctypes.c_void_p, ctypes.c_void_p)
            lib.eglDestroyContext(self._display, self._context)
        finally:
            self._context = None


class AppCanvasContext:
    """A hidden ``vispy.app.Canvas`` on VisPy's current app backend (use it from its own thread)."""

    def __init__(self) -> None:
        import sys

        if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            # Qt aborts the whole process when it cannot reach a display: never try
            raise RuntimeError("no display (DISPLAY / WAYLAND_DISPLAY unset)")
        from vispy import app

        application = app.use_app()
        self.backend = f"app:{application.backend_name}"
        self._canvas = app.Canvas(size=(16, 16), show=False, app=application)
        self.make_current()
        from vispy.gloo import gl

        self.renderer_name = str(gl.glGetParameter(gl.GL_RENDERER))

    def make_current(self) -> None:
        self._canvas.set_current()

    def release(self) -> None:
        pass

    def destroy(self) -> None:
        if self._canvas is not None:
            self._canvas.close()
            self._canvas = None


def create_gl_context(backend: str | None = None) -> EglContext | AppCanvasContext:
    """An OpenGL context, current on the calling thread.

    Parameters
    ----------
    backend : "egl", "app" or None/"auto" (EGL first, then VisPy's app backend). Default: the
        ``PARE_STUDIO_GL_BACKEND`` environment variable, else "auto".

    Raises
    ------
    RenderError
        No backend could create a context; the message lists why for each.
    """
    choice = (backend or os.environ.get("PARE_STUDIO_GL_BACKEND") or "auto").lower()
    if choice not in ("auto", "egl", "app"):
        raise RenderError(f"Unknown OpenGL backend {choice!r}: use 'egl', 'app' or 'auto'.")
    order = ["egl", "app"] if choice == "auto" else [choice]
    reasons = []
    for name in order:
        try:
            return EglContext() if name == "egl" else AppCanvasContext()
        except Exception as exc:  # each backend fails in its own way (OSError, RuntimeError, ...)
            reasons.append(f"{name}: {type(exc).__name__}: {exc}")
    raise RenderError(
        "Cannot create an OpenGL context for rendering ("
        + "; ".join(reasons)
        + "). Install Mesa's EGL (Debian/Ubuntu: libegl1 libgl1-mesa-dri) for headless "
        "rendering, or run under a display / `xvfb-run -a`. Use --no_render to skip the video."
    )
