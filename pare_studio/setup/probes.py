"""Probes that ``pare-studio doctor`` runs in a child process (a broken OpenGL or Qt stack can hang
or abort the process that tries it, so the doctor never tries it in its own).

Run as ``python -c "...; from pare_studio.setup.probes import main; main()" KIND`` with KIND one of:

``gl-egl``   the renderer's headless EGL context (``render.gl_context``, surfaceless platform)
``gl-app``   the renderer's fallback: a hidden VisPy canvas on VisPy's default app backend
``qt``       PySide6: version, platform plugins, and whether a ``QGuiApplication`` starts

Each prints lines ``PROBE {json}``; the parent merges them, so what was learnt before a crash
(e.g. the plugin list before Qt aborts for want of a display) still reaches the report.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pare_studio.setup.doctor import PROBE_PREFIX


def _say(**info: Any) -> None:
    print(PROBE_PREFIX + json.dumps(info), flush=True)


def _gl(backend: str) -> None:
    from pare_studio.render.gl_context import create_gl_context

    ctx = create_gl_context(backend)
    try:
        from vispy.gloo import gl

        _say(
            ok=True,
            backend=ctx.backend,
            renderer=str(getattr(ctx, "renderer_name", "")),
            version=str(gl.glGetParameter(gl.GL_VERSION)),
        )
    finally:
        ctx.destroy()


def _qt() -> None:
    import PySide6
    from PySide6.QtCore import QLibraryInfo

    plugins_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    from pathlib import Path

    platforms = sorted(
        p.name.removeprefix("libq").split(".")[0]
        for p in (Path(plugins_dir) / "platforms").glob("*")
        if p.is_file()
    )
    _say(version=PySide6.__version__, plugins_dir=plugins_dir, platforms=platforms)
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication([sys.argv[0]])
    _say(ok=True, platform=app.platformName())


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    kind = args[0] if args else ""
    try:
        if kind == "gl-egl":
            _gl("egl")
        elif kind == "gl-app":
            _gl("app")
        elif kind == "qt":
            _qt()
        else:
            _say(ok=False, error=f"unknown probe {kind!r}")
    except Exception as exc:  # noqa: BLE001 - the point is to report any failure
        _say(ok=False, error=f"{type(exc).__name__}: {exc}")
