"""Start the window: ``create_app`` (QApplication + library options) and ``run(path)``.

``pare-studio`` with no arguments (or ``pare-studio gui [PATH]``) calls :func:`run` through
importlib, so the command line never imports Qt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from pare_studio.gui.pyside_workarounds import apply_pyside_workarounds
from pare_studio.gui.settings import APPLICATION, ORGANIZATION


def configure_libraries() -> None:
    """Global options of VisPy and pyqtgraph, set once before any widget exists."""
    import pyqtgraph as pg
    import vispy

    vispy.use(app="pyside6")
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


def create_app(argv: Sequence[str] | None = None) -> QApplication:
    """The QApplication (created once; an existing one is reused, as under pytest-qt)."""
    apply_pyside_workarounds()
    app = QApplication.instance()
    if app is None:
        app = QApplication(
            list(argv) if argv is not None else [sys.argv[0] if sys.argv else "pare-studio"]
        )
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("PARE Studio")
    configure_libraries()
    return app  # type: ignore[return-value]


def run(path: str | os.PathLike[str] | None = None) -> int:
    """Open the window (optionally with a video, image folder, pare_output.pkl or .pareproj);
    run Qt.

    Returns the application's exit code.
    """
    app = create_app()
    from pare_studio.gui.main_window import QtMainWindow

    window = QtMainWindow()
    window.show()
    if path is not None:
        window.open_path(Path(path))
    return int(app.exec())
