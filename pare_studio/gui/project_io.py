"""What the window puts into a project file and takes back out (``.pareproj``, docs/export.md).

A project (:class:`pare_studio.project.Project`) holds the edit state (tracks, names, export
choice, video geometry; ``state.source`` = the video path), the smoothing settings, the pkl the
results came from, and a free ``settings`` object. The window keeps its view there:

``settings = {"view": {"frame": int, "selected": int, "hidden": [int, ...], "show_raw": bool,
"display": {DisplayOptions field: bool, ...}}}``

Unknown or ill-typed entries are ignored when reopening (a project stays readable when the
window changes).
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from pare_studio.edits import EditState
from pare_studio.gui.state import DisplayOptions, ViewerState
from pare_studio.project import Project, SmoothingSettings

VIEW_KEY = "view"


def view_settings(viewer: ViewerState, show_raw: bool) -> dict[str, Any]:
    """The window's view as the project's ``settings`` object (plain JSON values)."""
    display = viewer.display
    return {
        VIEW_KEY: {
            "frame": int(viewer.frame),
            "selected": int(viewer.selected_track),
            "hidden": sorted(t for t in viewer.track_ids if not viewer.is_visible(t)),
            "show_raw": bool(show_raw),
            "display": {f.name: bool(getattr(display, f.name)) for f in fields(DisplayOptions)},
        }
    }


def build_project(
    state: EditState,
    smoothing: SmoothingSettings,
    video_path: Path | None,
    results_path: Path | None,
    settings: dict[str, Any],
) -> Project:
    """The project of a session (``video_path`` becomes ``state.source``)."""
    source = str(video_path) if video_path is not None else state.source
    return Project(
        state=replace(state, source=source),
        smoothing=smoothing,
        results_path=str(results_path) if results_path is not None else "",
        settings=settings,
    )


def restore_view(viewer: ViewerState, settings: Any) -> bool | None:
    """Apply a project's saved view to ``viewer``; returns the saved "show raw" (None if absent).

    Entries that are missing or of the wrong type are skipped.
    """
    view = settings.get(VIEW_KEY) if isinstance(settings, dict) else None
    if not isinstance(view, dict):
        return None
    display = view.get("display")
    if isinstance(display, dict):
        names = {f.name for f in fields(DisplayOptions)}
        changes = {k: v for k, v in display.items() if k in names and isinstance(v, bool)}
        if changes:
            viewer.set_display(**changes)
    hidden = view.get("hidden")
    if isinstance(hidden, list):
        for t in viewer.track_ids:
            viewer.set_track_visible(t, t not in {h for h in hidden if isinstance(h, int)})
    selected = view.get("selected")
    if (
        isinstance(selected, int)
        and not isinstance(selected, bool)
        and selected in viewer.track_ids
    ):
        viewer.select_track(selected)
    frame = view.get("frame")
    if isinstance(frame, int) and not isinstance(frame, bool):
        viewer.set_frame(frame)
    show_raw = view.get("show_raw")
    return show_raw if isinstance(show_raw, bool) else None
