"""QtMainWindow: the PARE Studio window — layout, engine wiring, open / run / export commands.

Widgets only talk to :class:`ViewerState`; the window connects the engine's signals to the state
and the run panel, and turns user commands into engine requests. File decisions live in
:mod:`documents`, menus in :mod:`window_actions`.

Whatever replaces the current result (closing, opening a video / pkl / project, a run) first
asks to save unsaved track edits: :meth:`WindowEditing.maybe_save_changes` (the rule is in
:mod:`window_editing`'s docstring).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from pare_studio import __version__
from pare_studio.errors import PareStudioError
from pare_studio.gui import documents
from pare_studio.gui import settings as st
from pare_studio.gui.engine import InferenceEngine, PredictorLoader
from pare_studio.gui.engine_jobs import ModelAssets, OverlayVideoRequest, RunRequest, SavePklRequest
from pare_studio.gui.occlusion_controller import OcclusionController
from pare_studio.gui.qt_frame_view import QtFrameView
from pare_studio.gui.qt_occlusion_panel import QtOcclusionPanel
from pare_studio.gui.qt_run_panel import QtRunPanel
from pare_studio.gui.qt_timeline import QtTimeline
from pare_studio.gui.qt_track_list import QtTrackList
from pare_studio.gui.state import ViewerState
from pare_studio.gui.vispy_mesh_view import VispyMeshView
from pare_studio.gui.window_actions import build_menus
from pare_studio.gui.window_editing import WindowEditing
from pare_studio.pipeline.video import IMAGE_EXTENSIONS
from pare_studio.project import PROJECT_SUFFIX
from pare_studio.results import TrackResult, VideoResult

log = logging.getLogger(__name__)


def _patterns(suffixes: tuple[str, ...]) -> str:
    return " ".join(f"*{s}" for s in suffixes)


#: File ▸ Open…: everything the window opens in one filter, then one filter per kind.
OPEN_FILTER = ";;".join(
    [
        "Videos, frames, results and projects ("
        + _patterns(
            documents.VIDEO_SUFFIXES
            + IMAGE_EXTENSIONS
            + documents.RESULT_SUFFIXES
            + (PROJECT_SUFFIX,)
        )
        + ")",
        f"Videos ({_patterns(documents.VIDEO_SUFFIXES)})",
        f"Image folders: any frame of the folder ({_patterns(IMAGE_EXTENSIONS)})",
        f"PARE results: pare_output.pkl ({_patterns(documents.RESULT_SUFFIXES)})",
        f"PARE Studio projects ({_patterns((PROJECT_SUFFIX,))})",
        "All files (*)",
    ]
)
_VIEWER_MODE = "Viewer mode: set the model files in Settings ▸ Model assets… to run PARE"


class QtMainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    assets : model files to run PARE with; None = the ones saved in the settings (or found in the
        asset store); when none are usable the window opens in viewer mode.
    viewport : 3D viewport host, "auto" | "offscreen" | "native" (see :mod:`vispy_mesh_view`).
    torch_threads : ``torch.set_num_threads`` for the engine (None = one less than the cores).
    predictor_loader : how the engine builds the predictor (default ``load_predictor``).
    preload : load the predictor in the background as soon as the assets are known.
    """

    #: An error dialog was shown (message).
    error_shown = Signal(str)

    def __init__(
        self,
        assets: ModelAssets | None = None,
        viewport: str | None = None,
        torch_threads: int | None = None,
        predictor_loader: PredictorLoader | None = None,
        preload: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("PARE Studio[*]")  # [*]: "*" while there are unsaved edits
        self.setAcceptDrops(True)
        self._pkl_save: tuple[Path, int] | None = None  # pkl being written + its edit generation
        self.state = ViewerState(self)
        self.engine = InferenceEngine(
            self, torch_threads=torch_threads, predictor_loader=predictor_loader
        )
        self.assets: ModelAssets | None = None
        self.last_error: str | None = None
        self.error_box: QMessageBox | None = None
        self._closing = False
        self._preload = preload

        # The 3D view connects to the state first: on a frame change it hands the renderer its
        # snapshot before the frame view decodes and draws the image, so both proceed in parallel.
        self.mesh_view = VispyMeshView(self.state, mode=viewport)
        self.frame_view = QtFrameView(self.state)
        if self.mesh_view.overlay_signal is not None:
            self.frame_view.use_rendered_overlay(self.mesh_view.overlay_signal)
        self.timeline = QtTimeline(self.state)
        self.track_list = QtTrackList(self.state)
        self.run_panel = QtRunPanel()
        self._build_layout()
        self.actions_ = build_menus(self)
        self._mode_label = QLabel()
        self.statusBar().addPermanentWidget(self._mode_label)
        self._connect()
        self._add_occlusion_panel()
        self.editing = WindowEditing(self)  # Edit menu, smoothing dock, projects, exports
        self._restore_geometry()
        import pare_studio.pipeline.run  # noqa: F401  (now, not when the user presses Run)

        self.set_assets(assets if assets is not None else self._assets_from_settings())
        self._update_enabled()

    # -- layout and wiring --------------------------------------------------------------------

    def _build_layout(self) -> None:
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setObjectName("viewSplitter")
        split.addWidget(self.frame_view)
        split.addWidget(self.mesh_view.native)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.setCentralWidget(split)

        side = QWidget()
        lay = QVBoxLayout(side)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(QLabel("People"))
        lay.addWidget(self.track_list, 1)
        lay.addWidget(self.run_panel)
        dock = QDockWidget("Tracks and run", self)
        dock.setObjectName("sideDock")
        dock.setWidget(side)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        tdock = QDockWidget("Timeline", self)
        tdock.setObjectName("timelineDock")
        tdock.setWidget(self.timeline)
        tdock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, tdock)
        self.resizeDocks([tdock], [180], Qt.Orientation.Vertical)
        self.resizeDocks([dock], [320], Qt.Orientation.Horizontal)

    def _connect(self) -> None:
        e, s = self.engine, self.state
        e.progress.connect(self._on_progress)
        e.track_ready.connect(self._on_track_ready)
        e.run_finished.connect(self._on_run_finished)
        e.export_finished.connect(self._on_export_finished)
        e.faces_ready.connect(s.set_faces)
        e.predictor_ready.connect(lambda text: self.statusBar().showMessage(text, 5000))
        e.failed.connect(self._on_failed)
        e.cancelled.connect(self._on_cancelled)
        e.busy_changed.connect(self._on_busy)
        self.run_panel.run_requested.connect(self.start_run)
        self.run_panel.cancel_requested.connect(self.cancel_run)
        self.frame_view.message.connect(lambda m: self.statusBar().showMessage(m, 5000))
        s.source_changed.connect(self._update_enabled)
        s.result_changed.connect(self._update_enabled)
        s.track_added.connect(lambda _t: self._update_enabled())

    def _add_occlusion_panel(self) -> None:
        """The occlusion panel: a hidden dock, its View menu toggle (O), viewport wiring."""
        self.occlusion = OcclusionController(self.state, self.engine, parent=self)
        self.occlusion_panel = QtOcclusionPanel(self.occlusion)
        dock = QDockWidget("Occlusion", self)
        dock.setObjectName("occlusionDock")
        dock.setWidget(self.occlusion_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        dock.hide()
        self.occlusion_dock = dock
        toggle = dock.toggleViewAction()
        toggle.setText("Occlusion panel")
        toggle.setShortcut(QKeySequence("O"))
        toggle.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.addAction(toggle)
        for a in self.menuBar().actions():
            if a.menu() is not None and a.text().replace("&", "") == "View":
                a.menu().addSeparator()
                a.menu().addAction(toggle)
        dock.visibilityChanged.connect(self.occlusion.set_active)
        self.occlusion.scene_changed.connect(self.mesh_view.update_frame)
        self.mesh_view.set_snapshot_filter(self.occlusion.scene_filter)

    # -- assets -------------------------------------------------------------------------------

    @staticmethod
    def _assets_from_settings() -> ModelAssets | None:
        from pare_studio.gui.asset_check import find_assets

        try:
            return find_assets(st.load_asset_paths())
        except PareStudioError:
            return None

    def set_assets(self, assets: ModelAssets | None) -> None:
        """Use these model files for runs (None = viewer mode); loads the mesh faces for display."""
        self.assets = assets
        self.occlusion.set_assets(assets)
        self.editing.update_smpl()
        if assets is not None:
            self._mode_label.setText(f"Model: {assets.ckpt.name}")
            if self._preload:
                self.engine.preload(assets)  # also delivers the faces
            elif self.state.faces is None:
                self.engine.load_faces(assets.smpl_dir)
        else:
            self._mode_label.setText(_VIEWER_MODE)
            smpl_dir = st.load_asset_paths().smpl_dir
            if smpl_dir is not None and self.state.faces is None:
                # an SMPL folder alone is enough to draw meshes of results made elsewhere
                self.engine.load_faces(smpl_dir)
        self._update_enabled()

    def open_assets_dialog(self) -> None:
        from pare_studio.gui.qt_assets_dialog import QtAssetsDialog

        dlg = QtAssetsDialog(st.load_asset_paths(), self)
        dlg.run_check(deep=False)
        if dlg.exec() == QtAssetsDialog.DialogCode.Accepted:
            st.save_asset_paths(dlg.paths())
            self.set_assets(dlg.assets or self._assets_from_settings())

    # -- open ---------------------------------------------------------------------------------

    def open_path(self, path: str | os.PathLike[str]) -> bool:
        """Open a video, an image folder (or one of its frames), a pare_output.pkl or a
        ``.pareproj`` project — File ▸ Open, drops, recent files and ``pare-studio gui PATH``.

        Unsaved edits are offered for saving first; False when the user cancels that or the
        file cannot be opened (an error dialog says why).
        """
        if not self.editing.maybe_save_changes():
            return False
        with self.editing.changes_settled():
            return self._open_path(Path(path).expanduser())

    def _open_path(self, p: Path) -> bool:
        from pare_studio.project import is_project_file

        if p.is_file() and (p.suffix.lower() == PROJECT_SUFFIX or is_project_file(p)):
            return self.editing.open_project(p)
        if documents.is_results_file(p):
            return self.open_results(p)
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            return self.open_video(p.parent)  # a frame picked in File ▸ Open: its folder
        return self.open_video(p)

    def open_video(self, path: str | os.PathLike[str], keep_result: bool = False) -> bool:
        """Show a video or image folder; the current result is dropped unless ``keep_result``
        (after offering to save unsaved edits: False when the user cancels)."""
        if not keep_result and not self.editing.maybe_save_changes():
            return False
        with self.editing.changes_settled():
            return self._open_video(Path(path).expanduser(), keep_result)

    def _open_video(self, p: Path, keep_result: bool) -> bool:
        from pare_studio.pipeline.video import open_source

        try:
            source = open_source(p)
        except PareStudioError as exc:
            self.show_error(str(exc))
            return False
        self.timeline.pause()
        if not keep_result:
            self.state.set_result(None)
        self.state.set_source(source, p)
        st.add_recent_file(p)
        self.update_title()
        w, h = source.size
        self.statusBar().showMessage(
            f"{p.name}: {len(source)} frames, {w}x{h}, {source.fps:g} fps", 5000
        )
        return True

    def open_results(self, path: str | os.PathLike[str]) -> bool:
        """Show a pare_output.pkl (ours or the reference's) over its video when it can be found
        (after offering to save unsaved edits: False when the user cancels)."""
        if not self.editing.maybe_save_changes():
            return False
        with self.editing.changes_settled():
            return self._open_results(Path(path).expanduser())

    def _open_results(self, p: Path) -> bool:
        from pare_studio.pipeline.pkl_io import load_pare_output

        try:
            result = load_pare_output(p)
        except PareStudioError as exc:
            self.show_error(str(exc))
            return False
        video = documents.find_video_for_results(p, result)
        current = self.state.video_path
        if video is not None and video != current:
            self.open_video(video)
        elif video is None and current is None:
            w, h = documents.frame_size_from_boxes(result)
            result.width, result.height = w, h
            self.statusBar().showMessage(
                f"No video found beside {p.name}: showing the results alone", 8000
            )
        self.state.set_result(result, path=p)
        st.add_recent_file(p)
        self.update_title()
        return True

    def open_dialog(self) -> None:
        """File ▸ Open…: a video, a frame of an image folder, a pare_output.pkl or a project."""
        path, _ = QFileDialog.getOpenFileName(self, "Open", self._last_dir(), OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_results_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open results", self._last_dir(), "PARE results (*.pkl);;All files (*)"
        )
        if path:
            self.open_results(path)

    # -- run ----------------------------------------------------------------------------------

    def start_run(self) -> bool:
        """Run PARE on the open video with the run panel's settings."""
        if self.engine.is_busy:
            self.statusBar().showMessage(
                "A run or an export is in progress; wait or cancel it.", 5000
            )
            return False
        video = self.state.video_path
        if video is None:
            self.show_error(
                "Open a video or an image folder first (File ▸ Open, or drop it on the window)."
            )
            return False
        if self.assets is None:
            self.show_error(
                "PARE's model files are not set up. Choose them in Settings ▸ Model assets… "
                "(or run `pare-studio setup`)."
            )
            return False
        s = self.run_panel.settings()
        try:
            options = documents.run_options(s.detector, s.boxes_file, s.batch_size, s.smooth)
        except PareStudioError as exc:
            self.show_error(str(exc))
            return False
        if not self.editing.maybe_save_changes():  # the run replaces the current result
            return False
        QTimer.singleShot(
            0, self.run_panel.remember
        )  # the settings file is written after this event
        out_pkl = documents.default_output_pkl(video) if s.save_pkl else None
        w, h = self.state.frame_size
        self.state.begin_streaming(self.state.n_frames, w, h, self.state.fps, str(video))
        self._run_out_pkl = out_pkl
        self.engine.run(
            RunRequest(source_path=video, assets=self.assets, options=options, out_pkl=out_pkl)
        )
        return True

    def cancel_run(self) -> None:
        if self.engine.is_busy:
            self.run_panel.stage.setText("Cancelling…")
            self.engine.cancel()

    _run_out_pkl: Path | None = None

    def _on_progress(self, stage: str, done: int, total: int) -> None:
        self.run_panel.show_progress(stage, done, total)

    def _on_track_ready(self, track: TrackResult) -> None:
        self.state.add_track(track)

    def _on_run_finished(self, result: VideoResult) -> None:
        self.state.adopt_result(result, path=self._run_out_pkl)
        self.update_title()
        n = len(result.tracks)
        where = f"; saved {self._run_out_pkl}" if self._run_out_pkl else ""
        self.run_panel.show_idle(f"Done: {n} {'person' if n == 1 else 'people'}{where}")

    def _on_cancelled(self) -> None:
        n = len(self.state.track_ids)
        self.run_panel.show_idle(
            f"Cancelled; nothing was written ({n} finished track(s) kept on screen)"
        )

    def _on_failed(self, message: str, details: str) -> None:
        self.run_panel.show_idle("Failed: see the message")
        self.show_error(message, details)

    def _on_busy(self, busy: bool) -> None:
        self.run_panel.set_running(busy)
        self._update_enabled()

    # -- export -------------------------------------------------------------------------------

    def export_pkl(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Save the people chosen for export (edited; smoothed when smoothing is on) as
        pare_output.pkl, atomically, in the engine thread (or the editing thread while smoothing
        is still being computed)."""
        result = self.editing.export_result()
        if self.state.result is None or not self.state.result.tracks:
            self.show_error(
                "There are no results to export yet: run PARE or open a pare_output.pkl."
            )
            return False
        if result is not None and not result.tracks:
            self.show_error(
                "No person is chosen for export: tick some in the track list's Export column."
            )
            return False
        if path is None:
            start = str(
                self.state.result_path
                or documents.default_output_pkl(self.state.video_path or Path.cwd())
            )
            path, _ = QFileDialog.getSaveFileName(
                self, "Export pare_output.pkl", start, "PARE results (*.pkl)"
            )
            if not path:
                return False
        if result is None:  # smoothing still being computed: the export job smooths the rest
            return self.editing.export(self.editing.export_job("pkl", path))
        # the pkl holds the edit state of now: once written, the edits count as saved
        self._pkl_save = (Path(path), self.editing.generation)
        self.engine.save_pkl(SavePklRequest(result=result, path=Path(path)))
        return True

    def export_overlay_video(
        self,
        path: str | os.PathLike[str] | None = None,
        wireframe: bool = False,
        sideview: bool = False,
        draw_keypoints: bool = False,
    ) -> bool:
        """Render the overlay video (meshes over the frames) in the engine thread."""
        result, video, faces = self.state.result, self.state.video_path, self.state.faces
        if result is None or not result.tracks or video is None:
            self.show_error("The overlay video needs a video with results: run PARE or open both.")
            return False
        if faces is None:
            self.show_error(
                "The overlay video needs the SMPL mesh: set the SMPL folder in "
                "Settings ▸ Model assets…."
            )
            return False
        if path is None:
            start = str(video.with_name(f"{video.stem}_result.mp4"))
            path, _ = QFileDialog.getSaveFileName(
                self, "Export overlay video", start, "MP4 video (*.mp4)"
            )
            if not path:
                return False
        self.engine.export_overlay(
            OverlayVideoRequest(
                source_path=video,
                result=result,
                faces=faces,
                out_path=Path(path),
                wireframe=wireframe,
                sideview=sideview,
                draw_keypoints=draw_keypoints,
            )
        )
        return True

    def export_obj(self, path: str | os.PathLike[str] | None = None) -> list[Path]:
        """Write the visible people of the current frame as OBJ (one file per person)."""
        from pare_studio.render.overlay import save_obj

        present = self.state.visible_tracks_at()
        faces = self.state.faces
        if not present or faces is None:
            self.show_error(
                "No mesh to export at this frame (no visible person, or no SMPL folder set)."
            )
            return []
        if path is None:
            start = str(
                (self.state.video_path or Path.cwd()).with_name(f"frame{self.state.frame:06d}.obj")
            )
            path, _ = QFileDialog.getSaveFileName(
                self, "Export OBJ", start, "Wavefront OBJ (*.obj)"
            )
            if not path:
                return []
        targets = documents.obj_paths(Path(path), [t.track_id for t, _ in present])
        written = []
        try:
            for track, row in present:
                written.append(
                    save_obj(targets[track.track_id], np.asarray(track.verts[row]), faces)
                )
        except PareStudioError as exc:
            self.show_error(str(exc))
        if written:
            self.statusBar().showMessage(f"Wrote {', '.join(p.name for p in written)}", 5000)
        return written

    def _on_export_finished(self, path: str) -> None:
        if path.endswith(".pkl"):
            if self._pkl_save is not None and self._pkl_save[0] == Path(path):
                self.editing.mark_saved(self._pkl_save[1])
                self._pkl_save = None
            self.state.set_result_path(Path(path))
        self.run_panel.show_idle(f"Saved {path}")
        self.statusBar().showMessage(f"Saved {path}", 8000)

    # -- messages -----------------------------------------------------------------------------

    def show_error(self, message: str, details: str = "") -> None:
        """A non-blocking error dialog (the message, never only a traceback)."""
        self.last_error = message
        log.info("error shown: %s", message)
        if self._closing:
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning, "PARE Studio", message, QMessageBox.StandardButton.Ok, self
        )
        box.setObjectName("errorBox")
        if details:
            box.setDetailedText(details)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        box.open()
        self.error_box = box
        self.error_shown.emit(message)

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About PARE Studio",
            f"PARE Studio {__version__}\n\nPart Attention Regressor (PARE, ICCV 2021) "
            "3D human mesh "
            "recovery on video: run, scrub, inspect and export.",
        )

    # -- window -------------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        busy = self.engine.is_busy
        has_video = self.state.video_path is not None
        has_result = self.state.result is not None and bool(self.state.result.tracks)
        a = self.actions_
        reason = ""
        if not has_video:
            reason = "Open a video first"
        elif self.assets is None:
            reason = "Set up the model files first (Settings ▸ Model assets…)"
        self.run_panel.set_can_run(not reason, reason)
        a.run.setEnabled(not reason and not busy)
        a.cancel.setEnabled(busy)
        for act in (a.export_pkl, a.export_video, a.export_obj):
            act.setEnabled(has_result and not busy)

    def update_title(self) -> None:
        """Title: "PARE Studio — <project>" (or <video> — <pkl>) and Qt's ``[*]`` modified mark."""
        project = self.editing.project_path
        name = self.state.video_path.name if self.state.video_path else ""
        if project is not None:
            name = project.name
        elif self.state.result_path is not None:
            name = (
                f"{name} — {self.state.result_path.name}" if name else self.state.result_path.name
            )
        self.setWindowTitle(f"PARE Studio — {name}[*]" if name else "PARE Studio[*]")

    def _last_dir(self) -> str:
        files = st.recent_files()
        return str(Path(files[0]).parent) if files else str(Path.cwd())

    def _restore_geometry(self) -> None:
        geo = st.get_value("window/geometry")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        else:
            self.resize(1400, 860)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls() and any(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            if not self.editing.maybe_save_changes():  # asked once for all the dropped files
                return
            with self.editing.changes_settled():
                # A pkl dropped together with its video: open the video, then the results over it.
                for p in sorted(paths, key=documents.is_results_file):
                    self.open_path(p)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        """Offer to save unsaved edits (Cancel keeps the window open), then stop the engine
        (cancel, quit, join), release the video and the GL canvas."""
        if not self._closing and not self.editing.maybe_save_changes():
            event.ignore()
            return
        self._closing = True
        self.timeline.pause()
        st.set_value("window/geometry", self.saveGeometry())
        self.occlusion.set_active(False)  # cancels a running sweep (it runs in the engine thread)
        self.editing.shutdown()
        self.engine.shutdown()
        self.mesh_view.close()
        self.state.set_source(None)
        super().closeEvent(event)
