"""QtSmoothingPanel: live One-Euro smoothing controls and the before / after jitter plot.

Controls: enable, method ("on rotations", orthonormal, or the reference's element-wise
filter), ``min_cutoff`` and ``beta`` as logarithmic sliders with exact spin boxes, and "show
raw" (the unsmoothed body as a ghost in the 3D view). Every change emits
``settings_changed(SmoothingSettings)`` at once (while a slider is dragged too): the session
recomputes in the background, latest value wins.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from pare_studio.gui.qt_jitter_plot import QtJitterPlot
from pare_studio.project import SmoothingSettings

METHODS = (
    ("rotation", "On rotations (orthonormal)"),
    ("reference", "Reference (matrix elements)"),
)


class LogSlider(QWidget):
    """A horizontal slider over ``[lo, hi]`` on a log scale, with an exact spin box.

    Values below ``lo`` (e.g. 0) can be typed in the spin box; the slider then sits at its start.
    ``value_changed(float)`` fires on every change, from either control.
    """

    value_changed = Signal(float)

    def __init__(
        self, lo: float, hi: float, decimals: int, steps: int = 400, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._lo, self._hi, self._steps = math.log10(lo), math.log10(hi), steps
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, steps)
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(decimals)
        self.spin.setRange(0.0, hi)
        self.spin.setSingleStep(lo * 10)
        self.spin.setKeyboardTracking(False)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.slider, 1)
        lay.addWidget(self.spin)
        self._syncing = False
        self.slider.valueChanged.connect(self._on_slider)
        self.spin.valueChanged.connect(self._on_spin)

    def value(self) -> float:
        return float(self.spin.value())

    def set_value(self, v: float, emit: bool = False) -> None:
        """Show ``v`` (silently unless ``emit``)."""
        self._syncing = True
        try:
            self.spin.setValue(float(v))
            self.slider.setValue(self._to_pos(float(v)))
        finally:
            self._syncing = False
        if emit:
            self.value_changed.emit(self.value())

    def _to_pos(self, v: float) -> int:
        if v <= 0:
            return 0
        t = (math.log10(v) - self._lo) / (self._hi - self._lo)
        return int(round(min(max(t, 0.0), 1.0) * self._steps))

    def _to_value(self, pos: int) -> float:
        return 10 ** (self._lo + (self._hi - self._lo) * pos / self._steps)

    def _on_slider(self, pos: int) -> None:
        if self._syncing:
            return
        v = self._to_value(pos)
        self._syncing = True
        try:
            self.spin.setValue(v)
        finally:
            self._syncing = False
        self.value_changed.emit(self.value())

    def _on_spin(self, v: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.slider.setValue(self._to_pos(v))
        finally:
            self._syncing = False
        self.value_changed.emit(self.value())


class QtSmoothingPanel(QWidget):
    """The smoothing dock's content (module docstring).

    Signals
    -------
    settings_changed(object) : a :class:`SmoothingSettings` chosen by the user.
    show_raw_changed(bool) : show / hide the raw body as a ghost in the 3D view.
    """

    settings_changed = Signal(object)
    show_raw_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("smoothingPanel")
        self.enabled = QCheckBox("Smooth the motion (One-Euro filter)")
        self.method = QComboBox()
        for key, label in METHODS:
            self.method.addItem(label, key)
        self.min_cutoff = LogSlider(1e-4, 10.0, decimals=6)
        self.min_cutoff.setToolTip(
            "Minimum cutoff frequency: lower = smoother when the body moves slowly (more lag)"
        )
        self.beta = LogSlider(1e-3, 100.0, decimals=3)
        self.beta.setToolTip(
            "Speed coefficient: higher = less lag during fast motion (more jitter)"
        )
        self.show_raw = QCheckBox("Show the raw body in 3D (ghost)")
        self.show_raw.setChecked(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.jitter = QtJitterPlot()

        form = QFormLayout()
        form.addRow(self.enabled)
        form.addRow("Method", self.method)
        form.addRow("min_cutoff", self.min_cutoff)
        form.addRow("beta", self.beta)
        form.addRow(self.show_raw)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(form)
        lay.addWidget(self.status)
        lay.addWidget(self.jitter, 1)

        self._available = True
        self.set_settings(SmoothingSettings())
        self.enabled.toggled.connect(lambda _on: self._emit())
        self.method.currentIndexChanged.connect(lambda _i: self._emit())
        self.min_cutoff.value_changed.connect(lambda _v: self._emit())
        self.beta.value_changed.connect(lambda _v: self._emit())
        self.show_raw.toggled.connect(self.show_raw_changed)

    # -- public -------------------------------------------------------------------------------

    def settings(self) -> SmoothingSettings:
        """The settings the controls show."""
        return SmoothingSettings(
            enabled=self.enabled.isChecked(),
            method=str(self.method.currentData()),
            min_cutoff=self.min_cutoff.value(),
            beta=self.beta.value(),
        )

    def set_settings(self, s: SmoothingSettings) -> None:
        """Show ``s`` without emitting ``settings_changed`` (an opened project)."""
        for w in (self.enabled, self.method):
            w.blockSignals(True)
        try:
            self.enabled.setChecked(bool(s.enabled))
            self.method.setCurrentIndex(max(0, self.method.findData(s.method)))
        finally:
            for w in (self.enabled, self.method):
                w.blockSignals(False)
        self.min_cutoff.set_value(s.min_cutoff)
        self.beta.set_value(s.beta)
        self._update_enabled()

    def set_available(self, available: bool, reason: str = "") -> None:
        """Grey the controls out (no SMPL model to recompute meshes), saying why."""
        self._available = bool(available)
        self._update_enabled()
        if not available:
            self.status.setText(reason)
        elif self.status.text() == reason or not reason:
            self.status.setText("")

    def set_busy(self, busy: bool) -> None:
        if self._available:
            self.status.setText("Smoothing…" if busy else "")

    # -- internals ----------------------------------------------------------------------------

    def _update_enabled(self) -> None:
        on = self._available
        self.enabled.setEnabled(on)
        detail = on and self.enabled.isChecked()
        for w in (self.method, self.min_cutoff, self.beta, self.show_raw):
            w.setEnabled(detail)

    def _emit(self) -> None:
        self._update_enabled()
        self.settings_changed.emit(self.settings())
