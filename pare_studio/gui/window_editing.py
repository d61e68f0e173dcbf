"""WindowEditing: track edits, live smoothing, project files and exports, wired into the window.

Installed by the main window (``self.editing = WindowEditing(self)``); it adds

* an **Edit** menu: Undo / Redo (one ``QUndoStack``, Ctrl+Z / Ctrl+Shift+Z), Rename…, Delete,
  Merge with ▸, Split at the current frame, Export this person — acting on the selected track;
  the same actions form the track list's context menu, and its Export column ticks the export
  choice (undoable as well);
* a **Smoothing** dock (:class:`QtSmoothingPanel`: sliders, method, raw ghost, jitter plot);
* **File** entries: Open project…, Save project (Ctrl+S), Save project as…, Export…
  (:class:`QtExportDialog`).

Data flow: the :class:`EditSession` holds the edited tracks; whenever what it shows changes, the
window's :class:`ViewerState` gets the displayed tracks (smoothed when smoothing is on), the
names and export choice, and the raw tracks as the 3D view's ghost. When the state receives
results from elsewhere (a run, an opened pkl), the session starts over from them. Exports and
project saves run in a background :class:`TaskThread`; they use the session's edit state, so
they reflect every edit.

Unsaved changes: the rule
    The session's ``QUndoStack`` is the one record of unsaved work. It is clean right after new
    results are taken (a finished run, an opened pkl or video: the stack starts empty), after a
    project was opened, after a project was saved and after a ``pare_output.pkl`` of the edit
    state was exported (both only when nothing was edited while the file was being written).
    Undoing back to that point makes it clean again. The window title shows ``*`` while it is
    not clean (``[*]`` + ``setWindowModified``).

    Before the window closes, another video / pkl / project opens or a run starts — anything
    that replaces the current result — :meth:`WindowEditing.maybe_save_changes` asks "Save
    changes to the project?" (Save / Discard / Cancel) when the stack is not clean. Save runs
    the Save project flow (Save As dialog when there is no project file yet) and waits for the
    write; a cancelled dialog or a failed write cancels the close / open, as Cancel does.
    A run's results that were never saved are not a reason to ask (they can be made again), nor
    are view changes (frame, selection, visibility) or the smoothing settings, which are not on
    the undo stack (a project saves them, but changing them alone does not ask).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QEventLoop, QObject, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QMenu,
    QMenuBar,
    QMessageBox,
)

from pare_studio.edits import EditState, merge_problem, split_problem
from pare_studio.errors import PareStudioError
from pare_studio.export.dispatch import SUFFIXES
from pare_studio.gui.edit_session import EditSession
from pare_studio.gui.project_io import build_project, restore_view, view_settings
from pare_studio.gui.qt_smoothing_panel import QtSmoothingPanel
from pare_studio.gui.smoothing_jobs import ExportJob, run_export_job
from pare_studio.gui.task_thread import TaskThread
from pare_studio.project import PROJECT_SUFFIX, Project, SmoothingSettings, load_project
from pare_studio.project import save_project as write_project
from pare_studio.results import TrackResult, VideoResult

if TYPE_CHECKING:
    from pare_studio.gui.main_window import QtMainWindow
    from pare_studio.gui.qt_export_dialog import QtExportDialog

log = logging.getLogger(__name__)

EXPORT_CHANNEL = "export"
PROJECT_CHANNEL = "project"
_PROJECT_FILTER = f"PARE Studio project (*{PROJECT_SUFFIX});;All files (*)"
SAVE_CHANGES_TEXT = "Save changes to the project?"
_SAVE_CHANGES_INFO = (
    "The track edits made since the last save (renames, deletions, merges, splits, export "
    "choices) are lost if you discard them."
)
_NO_SMPL = (
    "Smoothing recomputes the body meshes with the SMPL model: set the SMPL folder in "
    "Settings ▸ Model assets…"
)


@dataclass
class EditActions:
    """The Edit menu's actions (tests trigger them like a user would)."""

    undo: QAction
    redo: QAction
    rename: QAction
    delete: QAction
    split: QAction
    export_track: QAction
    merge_menu: QMenu
    open_project: QAction
    save_project: QAction
    save_project_as: QAction
    export: QAction


class WindowEditing(QObject):
    """The editing features of one window (module docstring).

    Signals
    -------
    export_finished(object) : list of the files an export wrote.
    project_saved(str) : a project file was written.
    project_opened(str) : a project file was opened.
    """

    export_finished = Signal(object)
    project_saved = Signal(str)
    project_opened = Signal(str)

    #: objectName of the "Save changes to the project?" box (tests find it by this).
    SAVE_BOX_NAME = "saveChangesBox"

    def __init__(self, window: QtMainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.viewer = window.state
        self.tasks = TaskThread("pare-edit-tasks", self)
        self.session = EditSession(self.tasks, self)
        self.panel = QtSmoothingPanel()
        self.export_dialog: QtExportDialog | None = None
        self.project_path: Path | None = None
        self._pushed: VideoResult | None = None
        self._pushed_tracks: dict[int, TrackResult] = {}
        self._stale = False
        self._adopting = False
        self._closed = False
        self._generation = 0  # bumped by every change of the edit state (edit, undo, reset)
        self._settled = 0  # > 0 while a replacement the user already agreed to runs
        self._waiting_save = False
        self._project_save_gen: int | None = None  # generation a running project save writes
        self._export_save_gen: int | None = None  # same for a running pkl export (else None)
        self.save_box: QMessageBox | None = None  # the "Save changes?" box while it is open

        self._build_dock()
        self.actions = self._build_actions()
        self._connect()
        self.update_smpl()
        self._adopt()

    # -- building -----------------------------------------------------------------------------

    def _build_dock(self) -> None:
        w = self.window
        dock = QDockWidget("Smoothing", w)
        dock.setObjectName("smoothingDock")
        dock.setWidget(self.panel)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        # Hidden until asked for (View ▸ Smoothing panel, S): a visible plot beside the run
        # panel is repainted whenever the run's progress resizes the docks.
        dock.hide()
        toggle = dock.toggleViewAction()
        toggle.setText("Smoothing panel")
        toggle.setShortcut(QKeySequence("S"))
        toggle.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        w.addAction(toggle)
        self.dock = dock
        self.dock_action = toggle
        dock.visibilityChanged.connect(lambda shown: self._refresh_jitter() if shown else None)

    def _action(self, text: str, slot: object, shortcut: object = None) -> QAction:
        a = QAction(text, self.window)
        if shortcut is not None:
            seqs = shortcut if isinstance(shortcut, list) else [shortcut]
            a.setShortcuts([QKeySequence(s) for s in seqs])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
        self.window.addAction(a)
        return a

    def _build_actions(self) -> EditActions:
        w = self.window
        stack = self.session.undo_stack
        undo = stack.createUndoAction(w, "&Undo")
        undo.setShortcuts([QKeySequence(QKeySequence.StandardKey.Undo)])
        redo = stack.createRedoAction(w, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        for a in (undo, redo):
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            w.addAction(a)
        export_track = QAction("E&xport this person", w)
        export_track.setCheckable(True)
        export_track.triggered.connect(lambda on: self.set_export_selected(bool(on)))
        merge_menu = QMenu("&Merge with", w)
        merge_menu.aboutToShow.connect(
            lambda: self.fill_merge_menu(merge_menu, self.viewer.selected_track)
        )
        acts = EditActions(
            undo=undo,
            redo=redo,
            rename=self._action("&Rename person…", lambda: self.rename_selected(), "F2"),
            delete=self._action(
                "&Delete person", self.delete_selected, QKeySequence.StandardKey.Delete
            ),
            split=self._action("&Split at the current frame", self.split_selected, "Ctrl+K"),
            export_track=export_track,
            merge_menu=merge_menu,
            open_project=self._action("Open &project…", lambda: self.open_project(), "Ctrl+Alt+O"),
            save_project=self._action(
                "&Save project", lambda: self.save_project(), QKeySequence.StandardKey.Save
            ),
            save_project_as=self._action(
                "Save project &as…", lambda: self.save_project(ask=True), "Ctrl+Shift+S"
            ),
            export=self._action(
                "E&xport (BVH, glTF, npz, OBJ, pkl)…",
                lambda: self.open_export_dialog(),
                "Ctrl+Alt+E",
            ),
        )
        self._install_menus(w.menuBar(), acts)
        return acts

    def _install_menus(self, mb: QMenuBar, acts: EditActions) -> None:
        menus = {a.text().replace("&", ""): a for a in mb.actions() if a.menu() is not None}
        file_action = menus.get("File")
        if file_action is not None:
            fm = file_action.menu()
            items = fm.actions()
            # the project entries go right after "Open recent", "Export…" before the other exports
            recent = next((i for i, a in enumerate(items) if a.menu() is not None), None)
            before = items[recent + 1] if recent is not None and recent + 1 < len(items) else None
            project_items = [acts.open_project, acts.save_project, acts.save_project_as]
            if before is not None:
                fm.insertSeparator(before)
                fm.insertActions(before, project_items)
            else:
                fm.addSeparator()
                fm.addActions(project_items)
            exports = [a for a in fm.actions() if a.text().replace("&", "").startswith("Export")]
            if exports:
                fm.insertAction(exports[0], acts.export)
            else:
                fm.addAction(acts.export)
        em = QMenu("&Edit", self.window)
        em.addAction(acts.undo)
        em.addAction(acts.redo)
        em.addSeparator()
        em.addAction(acts.rename)
        em.addAction(acts.delete)
        em.addMenu(acts.merge_menu)
        em.addAction(acts.split)
        em.addAction(acts.export_track)
        all_menus = [a for a in mb.actions() if a.menu() is not None]
        if (
            file_action is not None
            and file_action in all_menus
            and all_menus.index(file_action) + 1 < len(all_menus)
        ):
            mb.insertMenu(all_menus[all_menus.index(file_action) + 1], em)
        else:
            mb.addMenu(em)
        self.edit_menu = em
        view = menus.get("View")
        if view is not None:
            view.menu().addSeparator()
            view.menu().addAction(self.dock_action)

    def _connect(self) -> None:
        v, s = self.viewer, self.session
        v.result_changed.connect(self._on_viewer_result)
        v.track_added.connect(self._on_track_added)
        v.selection_changed.connect(self._on_selection)
        v.frame_changed.connect(lambda _f: self._update_actions())
        s.display_changed.connect(self._push)
        s.state_changed.connect(self._bump_generation)
        s.state_changed.connect(self._update_actions)
        s.undo_stack.cleanChanged.connect(self._on_clean_changed)
        s.smoothing_busy_changed.connect(self.panel.set_busy)
        s.failed.connect(lambda m: self.window.show_error(m))
        self.panel.settings_changed.connect(self._on_settings)
        self.panel.show_raw_changed.connect(lambda on: v.set_display(show_raw_ghost=bool(on)))
        self.tasks.finished.connect(self._on_task_finished)
        self.tasks.failed.connect(self._on_task_failed)
        self.tasks.busy_changed.connect(lambda _c, _b: self._update_actions())
        self.window.engine.busy_changed.connect(self._on_engine_busy)
        tl = self.window.track_list
        tl.set_context_menu_provider(self.track_menu)
        tl.export_toggled.connect(self._on_export_toggled)

    # -- viewer <-> session -------------------------------------------------------------------

    def _adopt(self) -> None:
        """Start the session over from the viewer's result (a run, an opened pkl)."""
        res = self.viewer.result
        self._stale = False
        self.project_path = None  # other results: Save must not overwrite the old project
        self._adopting = True
        try:
            if res is None:
                state = None
            elif res is self._pushed and self.session.state is not None:
                # tracks streamed into what we showed: keep ours (raw), add the new ones
                base = self.session.state
                ours = {id(t) for t in self._pushed_tracks.values()}
                new = {t: tr for t, tr in res.tracks.items() if id(tr) not in ours}
                state = EditState(
                    tracks={**base.tracks, **new},
                    names=base.names,
                    export=base.export | set(new),
                    next_id=base.next_id,
                    n_frames=res.n_frames,
                    width=res.width,
                    height=res.height,
                    fps=res.fps,
                    source=res.source,
                )
            else:
                state = EditState.from_result(res)
            self.session.reset(state)
        finally:
            self._adopting = False
        self._show()

    def _foreign(self) -> bool:
        """The viewer holds results the session has not taken yet."""
        return self._stale or self.viewer.result is not self._pushed

    def _sync(self) -> None:
        """Catch up with results shown or tracks streamed in since the last adoption."""
        if not self._closed and self._foreign():
            self._adopt()

    def _on_viewer_result(self) -> None:
        if not self._closed and not self._adopting and self._foreign():
            self._adopt()

    def _on_track_added(self, _track_id: int) -> None:
        self._stale = True
        self._update_actions()

    def _on_engine_busy(self, busy: bool) -> None:
        if not busy:
            self._sync()  # a run's final result may have been taken silently (adopt_result)
        self._update_actions()

    def _push(self) -> None:
        """The session changed what it shows: show it (or first take newer viewer results)."""
        if self._closed or self._adopting:
            return
        if self._foreign():
            self._adopt()
            return
        self._show()

    def _show(self) -> None:
        """Show the session's tracks (smoothed when on), names, export choice and ghosts."""
        if self._closed:
            return
        s, v = self.session, self.viewer
        st = s.state
        if st is None:
            v.set_track_labels({}, None)
            v.set_ghost_tracks(None)
            self._pushed, self._pushed_tracks = None, {}
            if v.result is not None:
                self._adopting = True
                try:
                    v.set_result(None)
                finally:
                    self._adopting = False
            self._refresh_jitter()
            self._update_actions()
            return
        v.set_track_labels(dict(st.names), set(st.export))
        display = s.display_result()
        assert display is not None
        same = v.result is self._pushed and _same_tracks(self._pushed_tracks, display.tracks)
        cur = v.result
        if not same and cur is not None and _same_tracks(cur.tracks, display.tracks):
            # the viewer already shows exactly these tracks (unedited, unsmoothed): keep its object
            self._pushed, self._pushed_tracks = cur, dict(cur.tracks)
        elif not same:
            self._pushed, self._pushed_tracks = display, dict(display.tracks)
            self._adopting = True  # our own result_changed: not results to adopt
            try:
                v.set_result(display, path=v.result_path, keep_view=True)
            finally:
                self._adopting = False
        v.set_ghost_tracks(s.raw_tracks() if s.smoothing_active else None)
        self._refresh_jitter()
        self._update_actions()

    def _on_selection(self, track_id: int) -> None:
        self.session.set_priority_track(track_id)
        self._refresh_jitter()
        self._update_actions()

    def _refresh_jitter(self) -> None:
        if not self.dock.isVisible():
            return  # computed when the dock is shown (visibilityChanged)
        st, tid = self.session.state, self.viewer.selected_track
        raw = st.tracks.get(tid) if st is not None else None
        smoothed = (
            self.session.smoothed_track(tid)
            if raw is not None and self.session.smoothing_active
            else None
        )
        fps = st.fps if st is not None and st.fps > 0 else self.viewer.fps
        self.panel.jitter.set_tracks(raw, smoothed, fps)

    def _on_settings(self, settings: SmoothingSettings) -> None:
        self._sync()
        self.session.set_smoothing(settings)

    def update_smpl(self) -> None:
        """Follow the window's model assets (the SMPL folder smoothing and exports need)."""
        assets = self.window.assets
        smpl_dir = Path(assets.smpl_dir) if assets is not None else None
        self.session.set_smpl_dir(smpl_dir)
        self.panel.set_available(smpl_dir is not None, "" if smpl_dir is not None else _NO_SMPL)

    # -- edits (on the selected track) --------------------------------------------------------

    def _selected(self) -> int | None:
        st, tid = self.session.state, self.viewer.selected_track
        return tid if st is not None and tid in st.tracks else None

    def _edit(self, fn: object, *args: object) -> bool:
        """Run an edit; impossible edits become an error dialog."""
        self._sync()
        if self.window.engine.is_busy:
            self.window.statusBar().showMessage(
                "Wait for the run to finish before editing tracks.", 5000
            )
            return False
        try:
            return bool(fn(*args))  # type: ignore[operator]
        except PareStudioError as exc:
            self.window.show_error(str(exc))
            return False

    def rename_selected(self, name: str | None = None) -> bool:
        tid = self._selected()
        if tid is None:
            return False
        if name is None:
            current = self.session.state.name(tid)  # type: ignore[union-attr]
            name, ok = QInputDialog.getText(
                self.window, "Rename person", f"Name of track #{tid}:", text=current
            )
            if not ok:
                return False
        return self._edit(self.session.rename, tid, name)

    def delete_selected(self) -> bool:
        tid = self._selected()
        return False if tid is None else self._edit(self.session.delete, [tid])

    def split_selected(self) -> bool:
        tid = self._selected()
        return False if tid is None else self._edit(self.session.split, tid, self.viewer.frame)

    def merge_into_selected(self, other_id: int) -> bool:
        tid = self._selected()
        return False if tid is None else self._edit(self.session.merge, tid, int(other_id))

    def set_export_selected(self, on: bool) -> bool:
        tid = self._selected()
        return False if tid is None else self._edit(self.session.set_export, tid, bool(on))

    def _on_export_toggled(self, track_id: int, on: bool) -> None:
        if not self._edit(self.session.set_export, int(track_id), bool(on)):
            self.viewer.labels_changed.emit()  # refused: the boxes show the state again

    def fill_merge_menu(self, menu: QMenu, track_id: int) -> None:
        """One entry per other track: merge it into ``track_id`` (greyed out with the reason)."""
        menu.clear()
        st = self.session.state
        if st is None or track_id not in st.tracks or len(st.tracks) < 2:
            a = menu.addAction("(no other person)")
            a.setEnabled(False)
            return
        for other in st.tracks:
            if other == track_id:
                continue
            a = menu.addAction(f"{st.name(other)} (#{other}) into {st.name(track_id)}")
            a.setObjectName(f"merge_{other}")
            problem = merge_problem(st, track_id, other)
            a.setEnabled(problem is None)
            a.setToolTip(problem or "")
            a.triggered.connect(lambda _c=False, t=track_id, o=other: self._merge(t, o))
        menu.setToolTipsVisible(True)

    def _merge(self, target: int, other: int) -> bool:
        return self._edit(self.session.merge, target, other)

    def track_menu(self, track_id: int) -> QMenu | None:
        """The track list's context menu for ``track_id`` (selects it first)."""
        st = self.session.state
        if st is None or track_id not in st.tracks:
            return None
        self.viewer.select_track(track_id)
        self._update_actions()
        m = QMenu(self.window.track_list)
        m.addAction(self.actions.rename)
        m.addAction(self.actions.delete)
        merge = m.addMenu("&Merge with")
        merge.setObjectName("mergeMenu")
        self.fill_merge_menu(merge, track_id)
        m.addAction(self.actions.split)
        m.addAction(self.actions.export_track)
        m.addSeparator()
        m.addAction(self.actions.undo)
        m.addAction(self.actions.redo)
        return m

    def _update_actions(self) -> None:
        if self._closed:
            return
        a = self.actions
        st = self.session.state
        tid = self._selected()
        busy = self.window.engine.is_busy or self._stale
        has = tid is not None and not busy
        a.rename.setEnabled(has)
        a.delete.setEnabled(has)
        a.merge_menu.setEnabled(has and st is not None and len(st.tracks) > 1)
        problem = (
            split_problem(st, tid, self.viewer.frame)
            if has and st is not None
            else "select a person"
        )
        a.split.setEnabled(has and problem is None)
        a.split.setText(
            f"&Split at frame {self.viewer.frame}" if has else "&Split at the current frame"
        )
        a.split.setToolTip(problem or "")
        a.export_track.setEnabled(has)
        a.export_track.blockSignals(True)
        a.export_track.setChecked(bool(has and st is not None and tid in st.export))
        a.export_track.blockSignals(False)
        has_tracks = st is not None and bool(st.tracks) and not busy
        exporting = self.tasks.is_busy(EXPORT_CHANNEL)
        a.export.setEnabled(has_tracks and not exporting)
        a.save_project.setEnabled(has_tracks and not self.tasks.is_busy(PROJECT_CHANNEL))
        a.save_project_as.setEnabled(a.save_project.isEnabled())

    # -- exports ------------------------------------------------------------------------------

    def export_result(self) -> VideoResult | None:
        """What ``export_pkl`` writes: the chosen tracks, smoothed when on (None: smoothing)."""
        self._sync()
        return self.session.export_result()

    def _default_out(self, fmt: str) -> Path:
        base = self.project_path or self.viewer.result_path or self.viewer.video_path
        folder = base.parent if base is not None else Path.cwd()
        stem = base.stem if base is not None else "export"
        return folder / f"{stem}{SUFFIXES[fmt] or '_obj'}"

    def open_export_dialog(self, fmt: str = "glb") -> QtExportDialog | None:
        """File ▸ Export…: a (non-blocking) dialog; accepting it starts the export."""
        from pare_studio.gui.qt_export_dialog import QtExportDialog

        self._sync()
        st = self.session.state
        if st is None or not st.tracks:
            self.window.show_error("There are no results to export yet: run PARE or open results.")
            return None
        dlg = QtExportDialog(
            st,
            self.session.smoothing,
            self.session.can_smooth,
            self._default_out(fmt),
            fmt,
            self.window,
        )
        dlg.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        dlg.accepted.connect(lambda d=dlg: self._export_from_dialog(d))
        self.export_dialog = dlg
        dlg.open()
        return dlg

    def _export_from_dialog(self, dlg: QtExportDialog) -> None:
        st = self.session.state
        if st is not None and set(dlg.checked_tracks()) != set(st.export):
            self.session.select_for_export(dlg.checked_tracks())  # remembered (and undoable)
        job = dlg.job(self.session.smpl_dir, self.session.presmoothed())
        if self.session.state is not None:
            job = replace(job, state=self.session.state)
        self.export(job)

    def export(self, job: ExportJob) -> bool:
        """Run ``job`` in the background; ``export_finished`` or an error dialog follows."""
        if self.tasks.is_busy(EXPORT_CHANNEL):
            self.window.statusBar().showMessage("An export is already running.", 5000)
            return False
        self.window.statusBar().showMessage(f"Exporting {job.fmt} to {job.out}…")
        saves_edits = job.fmt == "pkl" and job.state is self.session.state
        self._export_save_gen = self._generation if saves_edits else None
        self.tasks.submit(EXPORT_CHANNEL, lambda token, report: run_export_job(job, token, report))
        self._update_actions()
        return True

    def export_job(self, fmt: str, out: str | os.PathLike[str], **kwargs: object) -> ExportJob:
        """A job exporting the session's chosen tracks (smoothed when on) as ``fmt`` to ``out``."""
        self._sync()
        st = self.session.state
        if st is None:
            raise PareStudioError("There are no results to export yet: run PARE or open results.")
        smoothing = self.session.smoothing if self.session.smoothing_active else None
        fields = {
            "fmt": fmt,
            "out": Path(out),
            "state": st,
            "track_ids": tuple(st.selected_ids()),
            "smoothing": smoothing,
            "smpl_dir": self.session.smpl_dir,
            "presmoothed": self.session.presmoothed() if smoothing is not None else {},
        }
        fields.update(kwargs)
        return ExportJob(**fields)  # type: ignore[arg-type]

    # -- projects -----------------------------------------------------------------------------

    def project(self) -> Project | None:
        """The session as a project (None without results)."""
        self._sync()
        st = self.session.state
        if st is None:
            return None
        return build_project(
            st,
            self.session.smoothing,
            self.viewer.video_path,
            self.viewer.result_path,
            view_settings(self.viewer, self.panel.show_raw.isChecked()),
        )

    def save_project(self, path: str | os.PathLike[str] | None = None, ask: bool = False) -> bool:
        """Write the session to a ``.pareproj`` (in the background); asks where when needed."""
        project = self.project()
        if project is None or not project.state.tracks:
            self.window.show_error("There is nothing to save yet: run PARE or open results first.")
            return False
        if path is None and (ask or self.project_path is None):
            start = self.project_path or self._default_out("pkl").with_suffix(PROJECT_SUFFIX)
            path, _ = QFileDialog.getSaveFileName(
                self.window, "Save project", str(start), _PROJECT_FILTER
            )
            if not path:
                return False
            if not str(path).endswith(PROJECT_SUFFIX):
                path = f"{path}{PROJECT_SUFFIX}"
        target = Path(path) if path is not None else self.project_path
        assert target is not None

        def work(_token: object, _report: object) -> Path:
            return write_project(target, project)

        self._project_save_gen = self._generation
        self.tasks.submit(PROJECT_CHANNEL, work)
        self.window.statusBar().showMessage(f"Saving {target.name}…")
        self._update_actions()
        return True

    def open_project(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Open a ``.pareproj``: its video (when found), edited tracks, smoothing and view.

        Unsaved edits are offered for saving first (:meth:`maybe_save_changes`); False when the
        user cancels, or the file cannot be opened (an error dialog says why).
        """
        if path is None:
            start = str(self.project_path.parent) if self.project_path else str(Path.cwd())
            path, _ = QFileDialog.getOpenFileName(
                self.window, "Open project", start, _PROJECT_FILTER
            )
            if not path:
                return False
        p = Path(path).expanduser()
        if self.window.engine.is_busy:
            self.window.show_error(
                "A run or an export is in progress; wait or cancel it before opening a project."
            )
            return False
        if not self.maybe_save_changes():
            return False
        with self.changes_settled():
            return self._open_project(p)

    def _open_project(self, p: Path) -> bool:
        try:
            project = load_project(p)
        except PareStudioError as exc:
            self.window.show_error(str(exc))
            return False
        w, st = self.window, project.state
        video = Path(st.source) if st.source else None
        if video is not None and video.exists():
            if not w.open_video(video):
                return False
        else:
            w.timeline.pause()
            self.viewer.set_result(None)
            self.viewer.set_source(None)
            if video is not None:
                w.statusBar().showMessage(
                    f"The video {video} was not found: showing the results alone", 8000
                )
        self.panel.set_settings(project.smoothing)
        if project.smoothing.enabled:
            self.dock.show()  # the project smooths: show how
        self.project_path = p
        self.session.reset(st, project.smoothing)
        self.session.undo_stack.setClean()  # reset cleared it already: the project is saved
        if project.results_path and Path(project.results_path).exists():
            self.viewer.set_result_path(Path(project.results_path))
        show_raw = restore_view(self.viewer, project.settings)
        if show_raw is not None:
            self.panel.show_raw.setChecked(show_raw)
        w.update_title()
        self._update_actions()
        self.project_opened.emit(str(p))
        return True

    # -- background results -------------------------------------------------------------------

    def _on_task_finished(self, _ticket: int, channel: str, value: object) -> None:
        if channel == EXPORT_CHANNEL:
            files = list(value)  # type: ignore[call-overload]
            if files:
                where = (
                    files[0]
                    if len(files) == 1
                    else f"{len(files)} files in {Path(files[0]).parent}"
                )
                self.window.statusBar().showMessage(f"Exported {where}", 8000)
            if self._export_save_gen is not None:
                self.mark_saved(self._export_save_gen)  # the pkl holds the edited tracks
                self._export_save_gen = None
            self.export_finished.emit(files)
        elif channel == PROJECT_CHANNEL:
            self.project_path = Path(value)  # type: ignore[arg-type]
            if self._project_save_gen is not None:
                self.mark_saved(self._project_save_gen)
                self._project_save_gen = None
            self.window.statusBar().showMessage(f"Saved {self.project_path}", 8000)
            self.window.update_title()
            self.project_saved.emit(str(value))
        self._update_actions()

    def _on_task_failed(self, _ticket: int, channel: str, message: str, details: str) -> None:
        if channel == EXPORT_CHANNEL:
            self._export_save_gen = None
        if channel in (EXPORT_CHANNEL, PROJECT_CHANNEL):
            what = "Export" if channel == EXPORT_CHANNEL else "Saving the project"
            self.window.statusBar().clearMessage()
            self.window.show_error(f"{what} failed: {message}", details)
        self._update_actions()

    # -- unsaved changes (module docstring: the rule) -----------------------------------------

    @property
    def generation(self) -> int:
        """Counter of edit-state changes: pass it to :meth:`mark_saved` once a write is done."""
        return self._generation

    def _bump_generation(self) -> None:
        self._generation += 1

    def _on_clean_changed(self, clean: bool) -> None:
        if not self._closed:  # not while the window is being torn down
            self.window.setWindowModified(not clean)

    def is_clean(self) -> bool:
        """No edit since the results were taken, the project opened or last saved."""
        return self.session.undo_stack.isClean()

    def mark_saved(self, generation: int) -> None:
        """A file holding the edit state of ``generation`` was written: clean, unless the state
        changed meanwhile (then the newer edits are still unsaved)."""
        if generation == self._generation and not self._closed:
            self.session.undo_stack.setClean()

    @contextmanager
    def changes_settled(self) -> Iterator[None]:
        """While inside, :meth:`maybe_save_changes` does not ask (the user already answered)."""
        self._settled += 1
        try:
            yield
        finally:
            self._settled -= 1

    def maybe_save_changes(self) -> bool:
        """Before the current result is replaced: True when the caller may go on.

        Clean (or already answered, see :meth:`changes_settled`): True without asking.
        Otherwise a modal "Save changes to the project?" box (:attr:`save_box`): Save → the
        Save project flow, True once the file is written (False when its dialog is cancelled
        or the write fails); Discard → True; Cancel (or Escape) → False.
        """
        if self._closed or self._settled or self.is_clean():
            return True
        if self._waiting_save:
            return False  # a save asked for from this box is still being written
        buttons = (
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel
        )
        box = QMessageBox(
            QMessageBox.Icon.Question, "PARE Studio", SAVE_CHANGES_TEXT, buttons, self.window
        )
        box.setObjectName(self.SAVE_BOX_NAME)
        box.setInformativeText(_SAVE_CHANGES_INFO)
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        self.save_box = box
        try:
            box.exec()
            clicked = box.clickedButton()
            choice = (
                box.standardButton(clicked)
                if clicked is not None
                else QMessageBox.StandardButton.Cancel
            )
        finally:
            self.save_box = None
            box.deleteLater()
        if choice == QMessageBox.StandardButton.Discard:
            return True
        if choice == QMessageBox.StandardButton.Save:
            return self.save_project_and_wait()
        return False

    def save_project_and_wait(self) -> bool:
        """Save the project (Save As dialog when it has no file yet) and wait until it is
        written (the window is disabled meanwhile); True when the file was written."""
        if not self.save_project():
            return False
        outcome: list[bool] = []
        loop = QEventLoop(self)

        def finished(_ticket: int, channel: str, _value: object) -> None:
            if channel == PROJECT_CHANNEL:
                outcome.append(True)
                loop.quit()

        def ended(_ticket: int, channel: str, *_rest: object) -> None:
            if channel == PROJECT_CHANNEL:
                outcome.append(False)
                loop.quit()

        # connected after _on_task_finished: the state is marked saved before the loop ends
        self.tasks.finished.connect(finished)
        self.tasks.failed.connect(ended)
        self.tasks.cancelled.connect(ended)
        self._waiting_save = True
        self.window.setEnabled(False)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            if self.tasks.is_busy(PROJECT_CHANNEL):
                loop.exec()
        finally:
            QApplication.restoreOverrideCursor()
            self.window.setEnabled(True)
            self._waiting_save = False
            self.tasks.finished.disconnect(finished)
            self.tasks.failed.disconnect(ended)
            self.tasks.cancelled.disconnect(ended)
        return bool(outcome) and outcome[0]

    def shutdown(self) -> None:
        """Stop the background thread (the window is closing)."""
        self._closed = True
        self.tasks.shutdown()


def _same_tracks(a: Mapping[int, TrackResult], b: Mapping[int, TrackResult]) -> bool:
    """The same ids holding the same track objects."""
    return a.keys() == b.keys() and all(a[t] is b[t] for t in a)
