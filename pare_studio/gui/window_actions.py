"""The main window's menus, actions and keyboard shortcuts (wiring only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from pare_studio.gui import settings as st

if TYPE_CHECKING:
    from pare_studio.gui.main_window import QtMainWindow


@dataclass
class WindowActions:
    """Every QAction of the window (tests trigger them like a user would).

    ``open_file`` is File ▸ Open… (Ctrl+O): videos, a frame of an image folder, pare_output.pkl
    and ``.pareproj`` projects, through :meth:`QtMainWindow.open_path`.
    """

    open_file: QAction
    open_results: QAction
    recent_menu: QMenu
    export_pkl: QAction
    export_video: QAction
    export_obj: QAction
    quit: QAction
    run: QAction
    cancel: QAction
    play: QAction
    step_back: QAction
    step_forward: QAction
    first: QAction
    last: QAction
    show_boxes: QAction
    show_joints2d: QAction
    show_mesh_overlay: QAction
    wireframe: QAction
    show_joints3d: QAction
    all_tracks_3d: QAction
    show_grid: QAction
    reset_view: QAction
    assets: QAction
    about: QAction


def _action(
    window: QtMainWindow,
    text: str,
    slot: object,
    shortcut: object = None,
    checkable: bool = False,
    checked: bool = False,
) -> QAction:
    a = QAction(text, window)
    if shortcut is not None:
        a.setShortcut(QKeySequence(shortcut))
        a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if checkable:
        a.setCheckable(True)
        a.setChecked(checked)
        a.toggled.connect(slot)  # type: ignore[arg-type]
    else:
        a.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
    window.addAction(a)  # shortcuts work even when the menu bar is hidden
    return a


def build_menus(w: QtMainWindow) -> WindowActions:
    """Create the menu bar of ``w`` and return its actions."""
    state = w.state
    opts = state.display
    mb = w.menuBar()

    def display(name: str):  # noqa: ANN202
        return lambda on: state.set_display(**{name: bool(on)})

    acts = WindowActions(
        open_file=_action(w, "&Open…", w.open_dialog, QKeySequence.StandardKey.Open),
        open_results=_action(
            w, "Open &results (pare_output.pkl)…", w.open_results_dialog, "Ctrl+Shift+O"
        ),
        recent_menu=QMenu("Open &recent", w),
        export_pkl=_action(w, "&Export pare_output.pkl…", w.export_pkl, "Ctrl+E"),
        export_video=_action(w, "Export overlay &video…", w.export_overlay_video, "Ctrl+Shift+E"),
        export_obj=_action(w, "Export current frame as &OBJ…", w.export_obj),
        quit=_action(w, "&Quit", w.close, QKeySequence.StandardKey.Quit),
        run=_action(w, "&Run PARE", w.start_run, "Ctrl+R"),
        cancel=_action(w, "&Cancel run", w.cancel_run, "Ctrl+."),
        play=_action(w, "&Play / pause", w.timeline.toggle_play, Qt.Key.Key_Space),
        step_back=_action(w, "Previous frame", lambda: state.step(-1), Qt.Key.Key_Left),
        step_forward=_action(w, "Next frame", lambda: state.step(1), Qt.Key.Key_Right),
        first=_action(w, "First frame", w.timeline.go_first, Qt.Key.Key_Home),
        last=_action(w, "Last frame", w.timeline.go_last, Qt.Key.Key_End),
        show_boxes=_action(w, "Boxes", display("show_boxes"), "B", True, opts.show_boxes),
        show_joints2d=_action(
            w, "2D joints", display("show_joints2d"), "J", True, opts.show_joints2d
        ),
        show_mesh_overlay=_action(
            w, "Mesh overlay", display("show_mesh_overlay"), "M", True, opts.show_mesh_overlay
        ),
        wireframe=_action(w, "Wireframe (3D)", display("wireframe"), "W", True, opts.wireframe),
        show_joints3d=_action(
            w, "Joints (3D)", display("show_joints3d"), "K", True, opts.show_joints3d
        ),
        all_tracks_3d=_action(
            w,
            "All visible people in 3D (else the selected one)",
            display("all_tracks_3d"),
            "A",
            True,
            opts.all_tracks_3d,
        ),
        show_grid=_action(w, "Ground grid (3D)", display("show_grid"), "G", True, opts.show_grid),
        reset_view=_action(w, "Reset 3D view", w.mesh_view.reset_view, "R"),
        assets=_action(w, "Model &assets…", w.open_assets_dialog),
        about=_action(w, "&About PARE Studio", w.show_about),
    )
    m = mb.addMenu("&File")
    acts.open_file.setStatusTip(
        "Open a video, an image folder (pick any frame), a pare_output.pkl or a project"
    )
    for a in (acts.open_file, acts.open_results):
        m.addAction(a)
    m.addMenu(acts.recent_menu)
    m.addSeparator()
    for a in (acts.export_pkl, acts.export_video, acts.export_obj):
        m.addAction(a)
    m.addSeparator()
    m.addAction(acts.quit)
    m = mb.addMenu("&Run")
    m.addAction(acts.run)
    m.addAction(acts.cancel)
    m = mb.addMenu("&Playback")
    for a in (acts.play, acts.step_back, acts.step_forward, acts.first, acts.last):
        m.addAction(a)
    m = mb.addMenu("&View")
    for a in (acts.show_boxes, acts.show_joints2d, acts.show_mesh_overlay):
        m.addAction(a)
    m.addSeparator()
    for a in (
        acts.wireframe,
        acts.show_joints3d,
        acts.all_tracks_3d,
        acts.show_grid,
        acts.reset_view,
    ):
        m.addAction(a)
    m = mb.addMenu("&Settings")
    m.addAction(acts.assets)
    m = mb.addMenu("&Help")
    m.addAction(acts.about)
    acts.recent_menu.aboutToShow.connect(lambda: fill_recent_menu(w, acts.recent_menu))
    return acts


def fill_recent_menu(w: QtMainWindow, menu: QMenu) -> None:
    """Rebuild File ▸ Open recent from QSettings."""
    menu.clear()
    files = st.recent_files()
    if not files:
        a = menu.addAction("(none)")
        a.setEnabled(False)
        return
    for path in files:
        a = menu.addAction(path)
        a.triggered.connect(lambda _c=False, p=path: w.open_path(p))
    menu.addSeparator()
    menu.addAction("Clear list").triggered.connect(lambda _c=False: st.clear_recent_files())
