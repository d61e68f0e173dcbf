"""QtAssetsDialog: choose and validate the SMPL folder, the PARE checkpoint and its config.

The check runs in a helper thread (loading a 190 MB checkpoint takes seconds) and reports, per
file, what was found or exactly what is missing and where to get it. OK stores the paths in
QSettings; without valid assets the window stays usable in viewer mode.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pare_studio.gui.asset_check import AssetLine, check_assets, doctor_lines
from pare_studio.gui.engine_jobs import ModelAssets
from pare_studio.gui.settings import AssetPaths

_INTRO = (
    "PARE needs the SMPL body model (free registration at https://smplify.is.tue.mpg.de) and "
    "PARE's data (checkpoint + config: `pare-studio setup`). Leave a field empty to search the "
    "asset store and ./data."
)


class _CheckThread(QThread):
    """Runs :func:`check_assets` (+ the doctor's file checks) off the GUI thread."""

    checked = Signal(object, object)  # ModelAssets | None, list[AssetLine]

    def __init__(self, paths: AssetPaths, deep: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._paths = paths
        self._deep = deep

    def run(self) -> None:
        assets, lines = check_assets(self._paths, deep=self._deep)
        if assets is None:
            lines = lines + doctor_lines()
        self.checked.emit(assets, lines)


def format_report(lines: list[AssetLine]) -> str:
    return "\n".join(f"{'✔' if ln.ok else '✘'} {ln.name}: {ln.message}" for ln in lines)


class QtAssetsDialog(QDialog):
    """Three path fields, a Check button and the report."""

    def __init__(self, paths: AssetPaths, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Model assets")
        self.setMinimumWidth(640)
        self._assets: ModelAssets | None = None
        self._thread: _CheckThread | None = None
        intro = QLabel(_INTRO)
        intro.setWordWrap(True)
        form = QFormLayout()
        self.smpl_dir = self._path_row(form, "SMPL folder", paths.smpl_dir, folder=True)
        self.ckpt = self._path_row(
            form, "Checkpoint", paths.ckpt, filt="Checkpoints (*.ckpt *.pt *.pth);;All files (*)"
        )
        self.cfg = self._path_row(
            form, "Config (yaml)", paths.cfg, filt="Config (*.yaml *.yml);;All files (*)"
        )
        self.check_button = QPushButton("Check")
        self.check_button.clicked.connect(self.run_check)
        self.report = QPlainTextEdit()
        self.report.setObjectName("assetsReport")
        self.report.setReadOnly(True)
        self.report.setPlaceholderText("Press Check to validate the files.")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.check_button)
        layout.addWidget(self.report, 1)
        layout.addWidget(self.buttons)

    # -- public -------------------------------------------------------------------------------

    def paths(self) -> AssetPaths:
        def get(edit: QLineEdit) -> Path | None:
            t = edit.text().strip()
            return Path(t).expanduser() if t else None

        return AssetPaths(smpl_dir=get(self.smpl_dir), ckpt=get(self.ckpt), cfg=get(self.cfg))

    @property
    def assets(self) -> ModelAssets | None:
        """The validated assets after a successful check, else None."""
        return self._assets

    def run_check(self, deep: bool = True) -> None:
        """Start validating the fields (the result lands in the report)."""
        if self._thread is not None and self._thread.isRunning():
            return
        self.check_button.setEnabled(False)
        self.report.setPlainText("Checking…")
        self._thread = _CheckThread(self.paths(), deep, self)
        self._thread.checked.connect(self._on_checked)
        self._thread.start()

    def wait_for_check(self, timeout_ms: int = 60000) -> bool:
        return self._thread is None or self._thread.wait(timeout_ms)

    def done(self, result: int) -> None:  # noqa: D401 (Qt override)
        self.wait_for_check()
        super().done(result)

    # -- internals ----------------------------------------------------------------------------

    def _path_row(
        self,
        form: QFormLayout,
        label: str,
        value: Path | None,
        folder: bool = False,
        filt: str = "",
    ) -> QLineEdit:
        holder = QWidget(self)
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        edit = QLineEdit("" if value is None else str(value))
        edit.setPlaceholderText("search automatically")
        browse = QToolButton()
        browse.setText("…")

        def pick() -> None:
            if folder:
                p = QFileDialog.getExistingDirectory(self, "SMPL folder", edit.text())
            else:
                p, _ = QFileDialog.getOpenFileName(self, "Choose a file", edit.text(), filt)
            if p:
                edit.setText(p)

        browse.clicked.connect(pick)
        row.addWidget(edit, 1)
        row.addWidget(browse)
        form.addRow(label, holder)
        return edit

    def _on_checked(self, assets: ModelAssets | None, lines: list[AssetLine]) -> None:
        self._assets = assets
        head = (
            "All model files are usable."
            if assets is not None
            else "Some model files are missing or broken:"
        )
        self.report.setPlainText(head + "\n" + format_report(lines))
        self.check_button.setEnabled(True)
