"""QtOcclusionPanel: drag an occluder over the selected person's crop and watch PARE react.

* The selected track's 224×224 crop at the current frame (pyqtgraph ``ImageItem``) with a
  draggable, resizable occluder (``pg.RectROI``, scale handle at its bottom-right corner); each
  move goes to :class:`OcclusionController` (throttled probes, latest wins).
* Fill: the ImageNet mean colour (the reference's), black or noise.
* A bar chart of the 14 evaluation joints' displacement from the unoccluded prediction, mm.
* Overlays over the crop: PARE's 24 part-attention maps of the occluded crop (one part, or the
  maximum over all), or the full sweep's heatmap (mean over the joints or one joint), ``jet``.
* "Full sweep" runs the reference's grid (size / stride) in the engine thread with progress and
  Cancel; the heatmap is shown when it completes.

The 3D viewport shows the occluded mesh over a ghost of the unoccluded one while the panel is
active (:meth:`OcclusionController.scene_filter`).
"""

from __future__ import annotations

import functools

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSize
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pare_studio.analysis.occlusion import DEFAULT_SIZE, DEFAULT_STRIDE, FILLS
from pare_studio.core.constants import IMG_RES, J14_NAMES, SMPL_JOINT_NAMES
from pare_studio.gui.occlusion_controller import DEFAULT_RECT, OcclusionController
from pare_studio.gui.occlusion_probe import OcclusionCrop, ProbeReply, SweepReply
from pare_studio.render.occlusion_figures import upsample_heatmaps

#: Overlay choices (combo order).
OVERLAYS = ("none", "attention", "heatmap")
_OVERLAY_TEXT = {"none": "No overlay", "attention": "Part attention", "heatmap": "Sweep heatmap"}
_FILL_TEXT = {"mean": "Mean colour (reference)", "black": "Black", "noise": "Noise"}
#: Opacity of the sweep heatmap over the crop (the reference figures' alpha).
HEATMAP_ALPHA = 0.5
#: Largest opacity of the attention overlay (it fades out where the attention is low).
ATTENTION_ALPHA = 0.8


#: matplotlib's ``jet`` (the reference figures' colour map) as its segment data: (x, value) knots
#: per channel, linearly interpolated (importing matplotlib would stall the GUI thread).
_JET = (
    ((0.0, 0.0), (0.35, 0.0), (0.66, 1.0), (0.89, 1.0), (1.0, 0.5)),
    ((0.0, 0.0), (0.125, 0.0), (0.375, 1.0), (0.64, 1.0), (0.91, 0.0), (1.0, 0.0)),
    ((0.0, 0.5), (0.11, 1.0), (0.34, 1.0), (0.65, 0.0), (1.0, 0.0)),
)


@functools.lru_cache(maxsize=1)
def jet_lut() -> np.ndarray:
    """(256, 3) uint8, matplotlib's ``jet`` with 256 entries."""
    x = np.linspace(0.0, 1.0, 256)
    rgb = np.stack([np.interp(x, [k for k, _ in ch], [v for _, v in ch]) for ch in _JET], axis=1)
    return np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)


def colorize(values: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """Values in [0, 1] -> (H, W, 4) uint8 RGBA, ``jet``; ``alpha``: scalar or (H, W) in [0, 1]."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float64)), 0.0, 1.0)
    rgba = np.empty((*v.shape, 4), np.uint8)
    rgba[..., :3] = jet_lut()[np.rint(v * 255).astype(np.int64)]
    rgba[..., 3] = np.clip(np.rint(np.broadcast_to(alpha, v.shape) * 255), 0, 255).astype(np.uint8)
    return rgba


def attention_overlay(attention: np.ndarray, part: int | None) -> np.ndarray:
    """Part attention over the crop, (224, 224, 4) uint8 RGBA.

    attention : (24, 56, 56) float, each map a spatial softmax. part : 0..23, or None = the
    maximum over the parts. The map is bilinearly upsampled and scaled by its maximum; opacity
    follows the value.
    """
    import cv2

    a = np.asarray(attention, np.float32)
    m = a.max(axis=0) if part is None else a[int(part)]
    up = cv2.resize(m, (IMG_RES, IMG_RES), interpolation=cv2.INTER_LINEAR)
    top = float(up.max())
    v = up / top if top > 0 else np.zeros_like(up)
    return colorize(v, ATTENTION_ALPHA * v)


def heatmap_overlay(heatmap: np.ndarray) -> np.ndarray:
    """A sweep heatmap over the crop, (224, 224, 4) uint8 RGBA (as the reference's figures).

    heatmap : (rows, cols) mm; upsampled with ``cv2.INTER_CUBIC``, min-max normalised, ``jet`` at
    :data:`HEATMAP_ALPHA`.
    """
    v = upsample_heatmaps(np.asarray(heatmap, np.float64)[..., None], IMG_RES, IMG_RES)[..., 0]
    return colorize(v, HEATMAP_ALPHA)


class QtOcclusionPanel(QWidget):
    """The occlusion panel (a dock's widget). All logic lives in ``controller``."""

    def __init__(self, controller: OcclusionController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("occlusionPanel")
        self.controller = controller
        self._reply: ProbeReply | None = None
        self._sweep: SweepReply | None = None
        self._overlay_rgba: np.ndarray | None = None

        # -- crop view with the occluder
        self.crop_view = pg.GraphicsView(background="k")
        self.crop_view.setObjectName("occlusionCropView")
        self.crop_view.setMinimumSize(224, 224)
        self._vb = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self._vb.setMouseEnabled(False, False)
        self.crop_view.setCentralItem(self._vb)
        self.crop_item = pg.ImageItem(axisOrder="row-major")
        self.crop_item.setImage(np.zeros((IMG_RES, IMG_RES, 3), np.uint8), levels=(0, 255))
        self.overlay_item = pg.ImageItem(axisOrder="row-major")
        self.overlay_item.setZValue(2)
        self.overlay_item.setVisible(False)
        self._vb.addItem(self.crop_item)
        self._vb.addItem(self.overlay_item)
        x, y, w, h = DEFAULT_RECT
        self.roi = pg.RectROI(
            [x, y],
            [w, h],
            pen=pg.mkPen((255, 80, 80), width=2),
            maxBounds=QRectF(0, 0, IMG_RES, IMG_RES),
            invertible=False,
        )
        self.roi.setZValue(10)
        self._vb.addItem(self.roi)
        self._vb.setRange(QRectF(0, 0, IMG_RES, IMG_RES), padding=0.0)

        # -- displacement bars
        self.bar_plot = pg.PlotWidget(background="k")
        self.bar_plot.setObjectName("occlusionBars")
        self.bar_plot.setMinimumHeight(180)
        pi = self.bar_plot.getPlotItem()
        pi.setMenuEnabled(False)
        pi.setMouseEnabled(False, False)
        pi.hideButtons()
        pi.invertY(True)
        pi.setLabel("bottom", "displacement", units="mm")
        pi.getAxis("left").setTicks([[(i, n) for i, n in enumerate(J14_NAMES)]])
        self.bars = pg.BarGraphItem(
            x0=np.zeros(len(J14_NAMES)),
            y=np.arange(len(J14_NAMES)),
            height=0.7,
            width=np.zeros(len(J14_NAMES)),
            brush=pg.mkBrush(255, 140, 60),
        )
        pi.addItem(self.bars)
        pi.setYRange(-0.6, len(J14_NAMES) - 0.4, padding=0)
        pi.setXRange(0, 1, padding=0)

        # -- controls
        self.fill_combo = QComboBox()
        for f in FILLS:
            self.fill_combo.addItem(_FILL_TEXT.get(f, f), f)
        self.overlay_combo = QComboBox()
        for o in OVERLAYS:
            self.overlay_combo.addItem(_OVERLAY_TEXT[o], o)
        self.part_combo = QComboBox()
        self.part_combo.addItem("All parts (max)", None)
        for i, n in enumerate(SMPL_JOINT_NAMES):
            self.part_combo.addItem(n, i)
        self.joint_combo = QComboBox()
        self.joint_combo.addItem("Mean of 14 joints", None)
        for i, n in enumerate(J14_NAMES):
            self.joint_combo.addItem(n, i)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(8, IMG_RES)
        self.size_spin.setValue(DEFAULT_SIZE)
        self.size_spin.setSuffix(" px")
        self.stride_spin = QSpinBox()
        self.stride_spin.setRange(8, IMG_RES)
        self.stride_spin.setValue(DEFAULT_STRIDE)
        self.stride_spin.setSuffix(" px")
        self.sweep_button = QPushButton("Full sweep")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.range_label = QLabel("")

        grid = QGridLayout()
        grid.addWidget(QLabel("Fill"), 0, 0)
        grid.addWidget(self.fill_combo, 0, 1, 1, 3)
        grid.addWidget(QLabel("Show"), 1, 0)
        grid.addWidget(self.overlay_combo, 1, 1)
        grid.addWidget(self.part_combo, 1, 2, 1, 2)
        grid.addWidget(self.joint_combo, 1, 2, 1, 2)
        sweep_row = QHBoxLayout()
        sweep_row.addWidget(QLabel("Size"))
        sweep_row.addWidget(self.size_spin)
        sweep_row.addWidget(QLabel("Stride"))
        sweep_row.addWidget(self.stride_spin)
        sweep_row.addWidget(self.sweep_button)
        prog_row = QHBoxLayout()
        prog_row.addWidget(self.progress, 1)
        prog_row.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(grid)
        lay.addWidget(self.crop_view, 3)
        lay.addWidget(self.range_label)
        lay.addWidget(self.bar_plot, 2)
        lay.addLayout(sweep_row)
        lay.addLayout(prog_row)
        lay.addWidget(self.status)

        # -- wiring
        self.roi.sigRegionChanged.connect(lambda _r: self.controller.set_rect(*self.roi_rect()))
        self.roi.sigRegionChangeFinished.connect(
            lambda _r: self.controller.finish_rect(*self.roi_rect())
        )
        self.fill_combo.currentIndexChanged.connect(
            lambda _i: self.controller.set_fill(self.fill_combo.currentData())
        )
        self.overlay_combo.currentIndexChanged.connect(lambda _i: self._update_overlay())
        self.part_combo.currentIndexChanged.connect(lambda _i: self._update_overlay())
        self.joint_combo.currentIndexChanged.connect(lambda _i: self._update_overlay())
        self.sweep_button.clicked.connect(self.start_sweep)
        self.cancel_button.clicked.connect(self.controller.cancel_sweep)
        c = controller
        c.crop_changed.connect(self._on_crop)
        c.probe_shown.connect(self._on_probe)
        c.sweep_running.connect(self._on_sweep_running)
        c.sweep_progress.connect(self._on_sweep_progress)
        c.sweep_finished.connect(self._on_sweep_finished)
        c.message.connect(self.status.setText)
        self._on_crop(c.crop)
        self._update_overlay()

    # -- public -------------------------------------------------------------------------------

    def roi_rect(self) -> tuple[float, float, float, float]:
        """The occluder ``(x, y, w, h)`` in crop pixels (floats, as the ROI holds it)."""
        p, s = self.roi.pos(), self.roi.size()
        return (float(p.x()), float(p.y()), float(s.x()), float(s.y()))

    def displayed_displacement(self) -> np.ndarray | None:
        """(14,) float mm the bars show, or None when no probe is shown."""
        if self._reply is None:
            return None
        return np.asarray(self.bars.opts["width"], np.float64).copy()

    def overlay_kind(self) -> str:
        """ "none", "attention" or "heatmap"."""
        return str(self.overlay_combo.currentData())

    def overlay_image(self) -> np.ndarray | None:
        """The (224, 224, 4) uint8 RGBA overlay drawn over the crop, or None."""
        return None if not self.overlay_item.isVisible() else self._overlay_rgba

    def crop_image(self) -> np.ndarray | None:
        """The (224, 224, 3) uint8 crop shown, or None."""
        crop = self.controller.crop
        return None if crop is None else crop.rgb

    def set_overlay(self, kind: str, index: int | None = None) -> None:
        """Show an overlay: "none", "attention" (``index`` = part 0..23, None = all) or "heatmap"
        (``index`` = joint 0..13, None = mean)."""
        self.overlay_combo.setCurrentIndex(OVERLAYS.index(kind))
        combo = self.part_combo if kind == "attention" else self.joint_combo
        if kind != "none":
            combo.setCurrentIndex(0 if index is None else int(index) + 1)
        self._update_overlay()

    def start_sweep(self) -> bool:
        return self.controller.start_sweep(self.size_spin.value(), self.stride_spin.value())

    # -- controller -> view -------------------------------------------------------------------

    def _on_crop(self, crop: OcclusionCrop | None) -> None:
        if crop is None:
            self.crop_item.setImage(np.zeros((IMG_RES, IMG_RES, 3), np.uint8), levels=(0, 255))
        else:
            self.crop_item.setImage(crop.rgb, levels=(0, 255))
        if self.controller.shown is None:  # a new crop: its probes and sweep are to come
            self._set_reply(None)
        if self.controller.sweep_result is None:
            self._sweep = None
        self.roi.setVisible(crop is not None)
        self.sweep_button.setEnabled(crop is not None and not self.controller.sweep_is_running)
        self._update_overlay()

    def _on_probe(self, reply: ProbeReply) -> None:
        self._set_reply(reply)
        if self.overlay_kind() == "attention":
            self._update_overlay()

    def _set_reply(self, reply: ProbeReply | None) -> None:
        self._reply = reply
        n = len(J14_NAMES)
        disp = (
            np.zeros(n)
            if reply is None or reply.result is None
            else np.asarray(reply.result.displacement)
        )
        self.bars.setOpts(width=disp)
        top = float(disp.max()) if len(disp) else 0.0
        self.bar_plot.getPlotItem().setXRange(0, max(top * 1.1, 1.0), padding=0)

    def _on_sweep_running(self, running: bool) -> None:
        self.sweep_button.setEnabled(not running and self.controller.crop is not None)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def _on_sweep_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(int(total), 1))
        self.progress.setValue(int(done))

    def _on_sweep_finished(self, reply: SweepReply) -> None:
        self._sweep = reply
        self.set_overlay("heatmap", self.joint_combo.currentData())

    def _update_overlay(self) -> None:
        kind = self.overlay_kind()
        self.part_combo.setVisible(kind == "attention")
        self.joint_combo.setVisible(kind != "attention")
        self.joint_combo.setEnabled(kind == "heatmap")
        rgba = None
        text = ""
        if kind == "attention" and self._reply is not None and self._reply.attention is not None:
            rgba = attention_overlay(self._reply.attention, self.part_combo.currentData())
        elif kind == "heatmap" and self._sweep is not None and self._sweep.result is not None:
            hm = self._sweep.result.heatmap("displacement", self.joint_combo.currentData())
            rgba = heatmap_overlay(hm)
            text = f"heatmap {float(hm.min()):.1f} – {float(hm.max()):.1f} mm (blue – red)"
        self._overlay_rgba = rgba
        if rgba is None:
            self.overlay_item.setVisible(False)
        else:
            self.overlay_item.setImage(rgba, levels=(0, 255))
            self.overlay_item.setRect(QRectF(0, 0, IMG_RES, IMG_RES))
            self.overlay_item.setVisible(True)
        self.range_label.setText(text)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt name)
        hint = super().sizeHint()
        hint.setWidth(max(hint.width(), 340))
        return hint


__all__ = [
    "OVERLAYS",
    "QtOcclusionPanel",
    "attention_overlay",
    "colorize",
    "heatmap_overlay",
    "jet_lut",
]
