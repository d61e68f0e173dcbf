"""QtExportDialog: File ▸ Export… — format, output, tracks and options of one export.

The dialog only collects choices; :meth:`QtExportDialog.job` turns them into a
:class:`~pare_studio.gui.smoothing_jobs.ExportJob` that the window runs in its background
thread (:func:`~pare_studio.gui.smoothing_jobs.run_export_job`, the functions
``pare-studio export`` uses). The track list starts from the session's export choice; the
options mirror the command line's (docs/export.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pare_studio.edits import EditState
from pare_studio.export.common import ExportOptions
from pare_studio.export.dispatch import NEEDS_RIG, SUFFIXES, FormatOptions
from pare_studio.export.translation import DEFAULT_FOV_DEG
from pare_studio.gui.smoothing_jobs import ExportJob
from pare_studio.project import SmoothingSettings
from pare_studio.results import TrackResult

#: (format, label) in menu order.
FORMAT_LABELS = (
    ("glb", "glTF binary (.glb): skinned body, skeleton, animation"),
    ("bvh", "BVH: skeleton animation (one file per person)"),
    ("npz", "npz: SMPL parameters (one file per person)"),
    ("obj", "OBJ sequence: one mesh per frame (folder)"),
    ("pkl", "pare_output.pkl: the edited tracks"),
)


class QtExportDialog(QDialog):
    """Choose what to export and where.

    Parameters
    ----------
    state : the edited tracks (names, export choice).
    smoothing : the session's smoothing (offered, ticked when enabled).
    smpl_available : whether the SMPL model is set (bvh / glb / obj and smoothing need it).
    default_out : the initial output path (its suffix follows the format).
    fmt : the initial format.
    """

    def __init__(
        self,
        state: EditState,
        smoothing: SmoothingSettings,
        smpl_available: bool,
        default_out: Path,
        fmt: str = "glb",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export")
        self.setObjectName("exportDialog")
        self._state = state
        self._smoothing = smoothing
        self._smpl = bool(smpl_available)

        self.format = QComboBox()
        for key, label in FORMAT_LABELS:
            self.format.addItem(label, key)
        self.out = QLineEdit(str(default_out))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out, 1)
        out_row.addWidget(browse)

        self.tracks = QListWidget()
        self.tracks.setObjectName("exportTracks")
        for tid, track in state.tracks.items():
            item = QListWidgetItem(_track_label(state, tid, track))
            item.setData(Qt.ItemDataRole.UserRole, int(tid))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if tid in state.export else Qt.CheckState.Unchecked
            )
            self.tracks.addItem(item)

        self.smooth = QCheckBox(_smooth_label(smoothing))
        self.smooth.setChecked(smoothing.enabled and self._smpl)
        self.smooth.setEnabled(self._smpl)
        self.upright = QCheckBox("y-up world, camera looking down −z (glTF / Blender)")
        self.upright.setChecked(True)
        self.translation = QCheckBox("Place each body where the camera saw it (root translation)")
        self.translation.setChecked(True)
        self.fov = QDoubleSpinBox()
        self.fov.setRange(1.0, 179.0)
        self.fov.setValue(DEFAULT_FOV_DEG)
        self.fov.setSuffix("°")
        self.fps = QDoubleSpinBox()
        self.fps.setRange(0.0, 1000.0)
        self.fps.setSpecialValueText("video's")
        self.betas = QComboBox()
        self.betas.addItem("mean over the track", "mean")
        self.betas.addItem("first frame", "first")
        self.units = QComboBox()
        self.units.addItem("metres", 1.0)
        self.units.addItem("centimetres", 100.0)
        self.max_influences = QSpinBox()
        self.max_influences.setRange(0, 24)
        self.max_influences.setSpecialValueText("all (exact)")
        self.pose_blendshapes = QCheckBox("Pose blend shapes as morph targets (exact mesh, larger)")
        self.hide_absent = QCheckBox("Hide a body on frames its track is absent")
        self.hide_absent.setChecked(True)

        opts = QGroupBox("Options")
        form = QFormLayout(opts)
        form.addRow(self.smooth)
        form.addRow(self.upright)
        form.addRow(self.translation)
        form.addRow("Field of view", self.fov)
        form.addRow("Frame rate", self.fps)
        form.addRow("Body shape", self.betas)
        form.addRow("BVH units", self.units)
        form.addRow("Weights per vertex", self.max_influences)
        form.addRow(self.pose_blendshapes)
        form.addRow(self.hide_absent)

        self.message = QLabel("")
        self.message.setObjectName("exportMessage")
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #e06c75")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        top = QFormLayout()
        top.addRow("Format", self.format)
        top.addRow("Output", out_row)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(QLabel("People to export"))
        lay.addWidget(self.tracks, 1)
        lay.addWidget(opts)
        lay.addWidget(self.message)
        lay.addWidget(self.buttons)

        self._fmt = ""
        self.format.currentIndexChanged.connect(self._on_format)
        self.set_format(fmt)
        self._on_format()

    # -- public -------------------------------------------------------------------------------

    @property
    def fmt(self) -> str:
        return str(self.format.currentData())

    def set_format(self, fmt: str) -> None:
        i = self.format.findData(fmt)
        if i < 0:
            raise ValueError(f"unknown export format {fmt!r}")
        self.format.setCurrentIndex(i)

    def checked_tracks(self) -> list[int]:
        """Ids of the ticked tracks, ascending."""
        out = []
        for i in range(self.tracks.count()):
            item = self.tracks.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(int(item.data(Qt.ItemDataRole.UserRole)))
        return sorted(out)

    def set_checked_tracks(self, ids: list[int]) -> None:
        want = {int(t) for t in ids}
        for i in range(self.tracks.count()):
            item = self.tracks.item(i)
            on = int(item.data(Qt.ItemDataRole.UserRole)) in want
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def problem(self) -> str | None:
        """Why the choices cannot be exported, or None."""
        if not self.out.text().strip():
            return "Choose where to write the export."
        if not self.checked_tracks():
            return "Tick at least one person to export."
        if self.fmt in NEEDS_RIG and not self._smpl:
            return (
                f"The {self.fmt} export needs the SMPL model: set the SMPL folder in Settings ▸ "
                "Model assets…"
            )
        return None

    def job(
        self, smpl_dir: Path | None, presmoothed: Mapping[int, TrackResult] | None = None
    ) -> ExportJob:
        """The export the choices describe (``presmoothed``: tracks already smoothed)."""
        fps = self.fps.value()
        smoothing = self._smoothing if self.smooth.isChecked() else None
        if smoothing is not None and not smoothing.enabled:
            smoothing = SmoothingSettings(
                enabled=True,
                method=smoothing.method,
                min_cutoff=smoothing.min_cutoff,
                beta=smoothing.beta,
            )
        return ExportJob(
            fmt=self.fmt,
            out=Path(self.out.text().strip()).expanduser(),
            state=self._state,
            track_ids=tuple(self.checked_tracks()),
            options=ExportOptions(
                fps=fps if fps > 0 else None,
                upright=self.upright.isChecked(),
                translation=self.translation.isChecked(),
                fov_deg=float(self.fov.value()),
                betas=str(self.betas.currentData()),
            ),
            format_options=FormatOptions(
                bvh_scale=float(self.units.currentData()),
                max_influences=self.max_influences.value() or None,
                pose_blendshapes=self.pose_blendshapes.isChecked(),
                hide_absent=self.hide_absent.isChecked(),
            ),
            smoothing=smoothing,
            smpl_dir=smpl_dir,
            presmoothed=dict(presmoothed or {}) if smoothing is not None else {},
        )

    def accept(self) -> None:
        problem = self.problem()
        if problem:
            self.message.setText(problem)
            return
        super().accept()

    # -- internals ----------------------------------------------------------------------------

    def _on_format(self, _index: int = 0) -> None:
        fmt = self.fmt
        old = self._fmt
        self._fmt = fmt
        text = self.out.text().strip()
        if text and old and old != fmt:
            p = Path(text)
            old_suffix, new_suffix = SUFFIXES.get(old, ""), SUFFIXES[fmt]
            if old_suffix and p.suffix.lower() == old_suffix:
                p = p.with_suffix(new_suffix)
            elif not old_suffix and new_suffix:
                p = p.with_name(p.name + new_suffix)
            elif old_suffix and not new_suffix:
                p = p.with_suffix("")
            self.out.setText(str(p))
        placed = fmt in ("bvh", "glb", "npz", "obj")
        self.upright.setEnabled(fmt in ("bvh", "glb", "obj"))
        self.translation.setEnabled(placed)
        self.fov.setEnabled(placed)
        self.fps.setEnabled(fmt in ("bvh", "glb", "npz"))
        self.betas.setEnabled(fmt in ("bvh", "glb"))
        self.units.setEnabled(fmt == "bvh")
        for w in (self.max_influences, self.pose_blendshapes, self.hide_absent):
            w.setEnabled(fmt == "glb")
        rig_missing = fmt in NEEDS_RIG and not self._smpl
        self.message.setText((self.problem() or "") if rig_missing else "")

    def _browse(self) -> None:
        fmt = self.fmt
        start = self.out.text().strip() or os.getcwd()
        if fmt == "obj":
            path = QFileDialog.getExistingDirectory(self, "Folder for the OBJ sequence", start)
        else:
            suffix = SUFFIXES[fmt]
            path, _ = QFileDialog.getSaveFileName(
                self, "Export to", start, f"{fmt} (*{suffix});;All files (*)"
            )
        if path:
            self.out.setText(path)


def _track_label(state: EditState, tid: int, track: TrackResult) -> str:
    n = len(track)
    span = f"frames {int(track.frame_ids[0])}–{int(track.frame_ids[-1])}" if n else "no frames"
    return f"{state.name(tid)}  (#{tid}, {n} frames, {span})"


def _smooth_label(s: SmoothingSettings) -> str:
    return f"Apply the smoothing ({s.method}, min_cutoff {s.min_cutoff:g}, beta {s.beta:g})"
