"""QtRunPanel: run settings (detector, boxes, batch size, smoothing), Run / Cancel, progress."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pare_studio.gui import settings as st

#: (label, RunOptions.detector)
DETECTORS = (
    ("YOLOv3 + SORT (reference)", "yolo"),
    ("Boxes file (MOTChallenge)", "boxes"),
    ("Whole frame = one person", "whole"),
)
_STAGE_NAMES = {
    "load model": "Loading the model",
    "detect": "Detecting and tracking",
    "infer": "Running PARE",
    "render": "Rendering the overlay video",
    "save": "Saving",
}


@dataclass(frozen=True)
class RunSettings:
    """What the panel asks for; the window turns it into ``RunOptions``."""

    detector: str = "yolo"
    boxes_file: Path | None = None
    batch_size: int = 16
    smooth: bool = False
    save_pkl: bool = False


class QtRunPanel(QWidget):
    """Run settings, the Run and Cancel buttons and a progress bar with the current stage."""

    run_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.detector = QComboBox()
        for label, key in DETECTORS:
            self.detector.addItem(label, key)
        self.boxes_file = QLineEdit()
        self.boxes_file.setPlaceholderText("boxes.txt (frame,id,left,top,w,h,…)")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose a MOTChallenge boxes file")
        browse.clicked.connect(self._browse_boxes)
        boxes_row = QHBoxLayout()
        boxes_row.setContentsMargins(0, 0, 0, 0)
        boxes_row.addWidget(self.boxes_file, 1)
        boxes_row.addWidget(browse)
        self.batch_size = QSpinBox()
        self.batch_size.setRange(1, 256)
        self.batch_size.setValue(16)
        self.batch_size.setToolTip("Crops per PARE call (reference: 16)")
        self.smooth = QCheckBox("Smooth poses (One-Euro)")
        self.save_pkl = QCheckBox("Save pare_output.pkl beside the video")
        self.save_pkl.setToolTip("Writes <video>_pare/pare_output.pkl when the run completes")

        self.run_button = QPushButton("Run PARE")
        self.run_button.setObjectName("runButton")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancelButton")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar()
        self.progress.setObjectName("runProgress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.stage = QLabel("Idle")
        self.stage.setObjectName("runStage")
        self.stage.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Detector", self.detector)
        form.addRow("Boxes", boxes_row)
        form.addRow("Batch size", self.batch_size)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.smooth)
        layout.addWidget(self.save_pkl)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage)
        layout.addStretch(1)
        self.detector.currentIndexChanged.connect(self._update_enabled)
        self._load()
        self._update_enabled()

    # -- public -------------------------------------------------------------------------------

    def settings(self) -> RunSettings:
        text = self.boxes_file.text().strip()
        return RunSettings(
            detector=str(self.detector.currentData()),
            boxes_file=Path(text) if text else None,
            batch_size=int(self.batch_size.value()),
            smooth=self.smooth.isChecked(),
            save_pkl=self.save_pkl.isChecked(),
        )

    def set_settings(self, s: RunSettings) -> None:
        i = self.detector.findData(s.detector)
        self.detector.setCurrentIndex(max(i, 0))
        self.boxes_file.setText("" if s.boxes_file is None else str(s.boxes_file))
        self.batch_size.setValue(s.batch_size)
        self.smooth.setChecked(s.smooth)
        self.save_pkl.setChecked(s.save_pkl)

    def remember(self) -> None:
        """Store the settings (QSettings) for the next session."""
        s = self.settings()
        qs = st.open_settings()  # one object: each QSettings writes the file when it goes away
        qs.setValue("run/detector", s.detector)
        qs.setValue("run/boxes_file", "" if s.boxes_file is None else str(s.boxes_file))
        qs.setValue("run/batch_size", s.batch_size)
        qs.setValue("run/smooth", s.smooth)
        qs.setValue("run/save_pkl", s.save_pkl)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running and self._can_run)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, 0)  # busy until the first report
            self.stage.setText("Starting…")

    def set_can_run(self, can_run: bool, reason: str = "") -> None:
        """Enable Run (a video is open and the model assets are set), with a tooltip why not."""
        self._can_run = can_run
        self.run_button.setEnabled(can_run and not self.cancel_button.isEnabled())
        self.run_button.setToolTip(reason if not can_run else "Run PARE on the open video")

    def show_progress(self, stage: str, done: int, total: int) -> None:
        name = _STAGE_NAMES.get(stage, stage.capitalize())
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(done, total))
            self.stage.setText(f"{name}: {done} / {total}")
        else:
            self.progress.setRange(0, 0)
            self.stage.setText(name)

    def show_idle(self, text: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.stage.setText(text)

    # -- internals ----------------------------------------------------------------------------

    _can_run = False

    def _load(self) -> None:
        def as_bool(v: object) -> bool:
            return v in (True, "true", "1", 1)

        qs = st.open_settings()
        boxes = str(qs.value("run/boxes_file", "") or "")
        self.set_settings(
            RunSettings(
                detector=str(qs.value("run/detector", "yolo")),
                boxes_file=Path(boxes) if boxes else None,
                batch_size=int(qs.value("run/batch_size", 16) or 16),
                smooth=as_bool(qs.value("run/smooth", False)),
                save_pkl=as_bool(qs.value("run/save_pkl", False)),
            )
        )

    def _update_enabled(self) -> None:
        self.boxes_file.setEnabled(self.detector.currentData() == "boxes")

    def _browse_boxes(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Boxes file", "", "Boxes (*.txt *.csv);;All files (*)"
        )
        if path:
            self.boxes_file.setText(path)
