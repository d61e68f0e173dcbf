"""QtJitterPlot: per-joint acceleration over time of one track, before and after smoothing.

Jitter is measured with :mod:`pare_studio.export.jitter`: the acceleration of a joint's
position (central second difference, m/s², the 49 PARE joints) or of its rotation (rad/s², the
24 SMPL joints), NaN next to gaps. The plot shows the chosen joint (or the mean over all joints)
of the raw track and of the smoothed track over the video's frames, and the mean of each curve.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pare_studio.core.constants import JOINT_NAMES, SMPL_JOINT_NAMES
from pare_studio.export.jitter import joint_acceleration, rotation_acceleration
from pare_studio.results import TrackResult

#: Measures offered: (label, unit, joint names).
MEASURES = {
    "position": ("Joint position", "m/s²", JOINT_NAMES),
    "rotation": ("Joint rotation", "rad/s²", SMPL_JOINT_NAMES),
}
ALL_JOINTS = -1
_RAW_PEN = pg.mkPen("#e06c75", width=1)
_SMOOTH_PEN = pg.mkPen("#98c379", width=2)


def acceleration(track: TrackResult, measure: str, fps: float | None) -> np.ndarray:
    """(n, J) acceleration magnitudes of ``track`` (NaN where undefined).

    measure : "position" (joints3d, (n, 49), m/s²) or "rotation" (pose, (n, 24), rad/s²);
    per frame² when ``fps`` is None.
    """
    if measure == "position":
        return joint_acceleration(track.joints3d, track.frame_ids, fps)
    if measure == "rotation":
        return rotation_acceleration(track.pose, track.frame_ids, fps)
    raise ValueError(f"measure must be position or rotation, not {measure!r}")


def curve(acc: np.ndarray, joint: int) -> np.ndarray:
    """(n,) the chosen joint's column of ``acc``, or the mean over joints (``ALL_JOINTS``)."""
    if joint == ALL_JOINTS:
        out = np.full(acc.shape[0], np.nan)
        ok = np.isfinite(acc).any(axis=1)
        out[ok] = np.nanmean(acc[ok], axis=1)
        return out
    return acc[:, joint]


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values (NaN when there are none)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


class QtJitterPlot(QWidget):
    """The before / after acceleration plot of one track (module docstring)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("jitterPlot")
        self._raw: TrackResult | None = None
        self._smoothed: TrackResult | None = None
        self._fps: float | None = None
        self._left_label = ""
        self._acc_cache: dict[tuple[int, str], tuple[TrackResult, np.ndarray]] = {}
        self.measure = QComboBox()
        for key, (label, unit, _names) in MEASURES.items():
            self.measure.addItem(f"{label} ({unit})", key)
        self.joint = QComboBox()
        self.joint.setMinimumContentsLength(12)
        self.plot = pg.PlotWidget(background=None)
        self.plot.setMinimumHeight(140)
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setLabel("bottom", "frame")
        self._legend = self.plot.addLegend(offset=(-5, 5))
        self._raw_curve = self.plot.plot([], [], pen=_RAW_PEN, name="raw", connect="finite")
        self._smooth_curve = self.plot.plot(
            [], [], pen=_SMOOTH_PEN, name="smoothed", connect="finite"
        )
        self.summary = QLabel("")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        top.addWidget(self.measure)
        top.addWidget(self.joint, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.summary)
        self._fill_joints()
        self.measure.currentIndexChanged.connect(self._on_measure)
        self.joint.currentIndexChanged.connect(lambda _i: self.refresh())
        self.mean_before = math.nan
        self.mean_after = math.nan
        self.refresh()

    # -- public -------------------------------------------------------------------------------

    def set_tracks(
        self, raw: TrackResult | None, smoothed: TrackResult | None, fps: float | None
    ) -> None:
        """Plot ``raw`` (and ``smoothed``, the same frames smoothed; None = no after-curve)."""
        new_fps = float(fps) if fps else None
        if raw is self._raw and smoothed is self._smoothed and new_fps == self._fps:
            return  # nothing new (e.g. a selection change during a run): no redraw
        self._raw, self._smoothed = raw, smoothed
        if new_fps != self._fps:
            self._acc_cache.clear()
        self._fps = new_fps
        self.refresh()

    def set_measure(self, measure: str, joint: int = ALL_JOINTS) -> None:
        """Choose the measure ("position" | "rotation") and joint index (``ALL_JOINTS`` = mean)."""
        self.measure.setCurrentIndex(self.measure.findData(measure))
        self.joint.setCurrentIndex(self.joint.findData(int(joint)))

    @property
    def unit(self) -> str:
        return MEASURES[self.measure.currentData()][1]

    def curves(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """((frames, raw curve), (frames, smoothed curve)) as plotted (empty when absent)."""
        rx, ry = self._raw_curve.getData()
        sx, sy = self._smooth_curve.getData()

        def arr(a: object) -> np.ndarray:
            return np.asarray(a if a is not None else [], np.float64)

        return (arr(rx), arr(ry)), (arr(sx), arr(sy))

    def refresh(self) -> None:
        """Recompute the curves for the current track, measure and joint."""
        measure = self.measure.currentData()
        joint = self.joint.currentData()
        joint = ALL_JOINTS if joint is None else int(joint)
        _label, unit, _names = MEASURES[measure]
        left = unit if self._fps else unit.replace("/s²", "/frame²")
        if left != self._left_label:
            self._left_label = left
            self.plot.setLabel("left", left)
        self.mean_before = self.mean_after = math.nan
        if self._raw is None or len(self._raw) == 0:
            self._raw_curve.setData([], [])
            self._smooth_curve.setData([], [])
            self.summary.setText("Select a person to see their jitter.")
            return
        x = np.asarray(self._raw.frame_ids, np.float64)
        before = curve(self._acc(self._raw, measure), joint)
        self._raw_curve.setData(x, before, connect="finite")
        self.mean_before = finite_mean(before)
        if self._smoothed is not None:
            after = curve(self._acc(self._smoothed, measure), joint)
            self._smooth_curve.setData(
                np.asarray(self._smoothed.frame_ids, np.float64), after, connect="finite"
            )
            self.mean_after = finite_mean(after)
        else:
            self._smooth_curve.setData([], [])
        self.summary.setText(self._summary_text(unit))

    # -- internals ----------------------------------------------------------------------------

    def _summary_text(self, unit: str) -> str:
        per = unit if self._fps else unit.replace("/s²", "/frame²")
        if math.isnan(self.mean_before):
            return "Too few consecutive frames to measure acceleration."
        text = f"mean raw {self.mean_before:.4g} {per}"
        if not math.isnan(self.mean_after):
            text += f"  →  smoothed {self.mean_after:.4g} {per}"
            if self.mean_before > 0:
                text += f" ({100.0 * (self.mean_after / self.mean_before - 1.0):+.0f}%)"
        return text

    def _acc(self, track: TrackResult, measure: str) -> np.ndarray:
        key = (id(track), measure)
        hit = self._acc_cache.get(key)
        if hit is not None and hit[0] is track:
            return hit[1]
        acc = acceleration(track, measure, self._fps)
        if len(self._acc_cache) > 8:
            self._acc_cache.clear()
        self._acc_cache[key] = (track, acc)
        return acc

    def _fill_joints(self) -> None:
        names = MEASURES[self.measure.currentData()][2]
        self.joint.blockSignals(True)
        self.joint.clear()
        self.joint.addItem("All joints (mean)", ALL_JOINTS)
        for i, n in enumerate(names):
            self.joint.addItem(n, i)
        self.joint.blockSignals(False)

    def _on_measure(self, _index: int) -> None:
        self._acc_cache.clear()
        self._fill_joints()
        self.refresh()
