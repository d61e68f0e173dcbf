"""QtTimeline: scrubber, one presence bar per track, play/pause at the video's fps, step, jump."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pare_studio.gui.state import ViewerState
from pare_studio.gui.track_utils import contiguous_segments, track_color_255

#: Height of a presence bar, in rows.
_BAR_HEIGHT = 0.7


class QtTimeline(QWidget):
    """Frame cursor over per-track presence bars, with transport buttons.

    Dragging the cursor or clicking the plot sets ``state.frame``; clicking a bar also selects
    its track. Playback advances one frame per tick of a timer at the video's fps and stops at the
    last frame.
    """

    playing_changed = Signal(bool)

    def __init__(self, state: ViewerState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._rows: dict[int, int] = {}
        self._bars: dict[int, pg.BarGraphItem] = {}
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self._on_tick)

        self._plot = pg.PlotWidget(background=None)
        self._plot.setObjectName("timelinePlot")
        self._plot.setMenuEnabled(False)
        self._plot.hideButtons()
        self._plot.setMouseEnabled(x=True, y=False)
        self._plot.showGrid(x=True, y=False, alpha=0.25)
        self._plot.getAxis("left").setWidth(44)
        self._plot.setMinimumHeight(70)
        self._cursor = pg.InfiniteLine(
            pos=0, angle=90, movable=True, pen=pg.mkPen("#ffcc00", width=2)
        )
        self._cursor.setZValue(10)
        self._plot.addItem(self._cursor)
        self._cursor.sigPositionChanged.connect(self._on_cursor_dragged)
        self._plot.scene().sigMouseClicked.connect(self._on_plot_clicked)

        self._btn_first = self._tool(
            QStyle.StandardPixmap.SP_MediaSkipBackward, "First frame (Home)"
        )
        self._btn_prev = self._tool(
            QStyle.StandardPixmap.SP_MediaSeekBackward, "Previous frame (←)"
        )
        self._btn_play = self._tool(QStyle.StandardPixmap.SP_MediaPlay, "Play / pause (Space)")
        self._btn_next = self._tool(QStyle.StandardPixmap.SP_MediaSeekForward, "Next frame (→)")
        self._btn_last = self._tool(QStyle.StandardPixmap.SP_MediaSkipForward, "Last frame (End)")
        self._btn_first.clicked.connect(self.go_first)
        self._btn_prev.clicked.connect(lambda: self._state.step(-1))
        self._btn_play.clicked.connect(self.toggle_play)
        self._btn_next.clicked.connect(lambda: self._state.step(1))
        self._btn_last.clicked.connect(self.go_last)
        self._spin = QSpinBox()
        self._spin.setObjectName("frameSpin")
        self._spin.setKeyboardTracking(False)
        self._spin.setToolTip("Jump to frame")
        self._spin.valueChanged.connect(self._state.set_frame)
        self._label = QLabel()
        self._label.setObjectName("timeLabel")

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for w in (self._btn_first, self._btn_prev, self._btn_play, self._btn_next, self._btn_last):
            bar.addWidget(w)
        bar.addWidget(QLabel("Frame"))
        bar.addWidget(self._spin)
        bar.addWidget(self._label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.addLayout(bar)
        layout.addWidget(self._plot, 1)

        state.source_changed.connect(self._rebuild)
        state.result_changed.connect(self._rebuild)
        state.track_added.connect(self._on_track_added)
        state.frame_changed.connect(self._on_frame_changed)
        state.visibility_changed.connect(lambda tid, _v: self._style_bar(tid))
        state.selection_changed.connect(lambda _tid: [self._style_bar(t) for t in self._bars])
        self._rebuild()

    # -- public -------------------------------------------------------------------------------

    @property
    def plot(self) -> pg.PlotWidget:
        return self._plot

    @property
    def is_playing(self) -> bool:
        return self._timer.isActive()

    def play(self) -> None:
        """Start playback at the video's fps (from the start when at the last frame)."""
        if self._state.n_frames < 2:
            return
        if self._state.frame >= self._state.n_frames - 1:
            self._state.set_frame(0)
        self._timer.start(max(1, round(1000.0 / self._state.fps)))
        self._btn_play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
        self.playing_changed.emit(True)

    def pause(self) -> None:
        if self._timer.isActive():
            self._timer.stop()
            self.playing_changed.emit(False)
        self._btn_play.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))

    def toggle_play(self) -> None:
        if self.is_playing:
            self.pause()
        else:
            self.play()

    def go_first(self) -> None:
        self._state.set_frame(0)

    def go_last(self) -> None:
        self._state.set_frame(self._state.n_frames - 1)

    def presence(self, track_id: int) -> list[tuple[int, int]]:
        """A track's drawn presence bar, ``[(start, stop_exclusive), ...]``, read from the item."""
        bar = self._bars.get(int(track_id))
        if bar is None:
            return []
        x0 = np.asarray(bar.opts["x0"], dtype=float)
        width = np.asarray(bar.opts["width"], dtype=float)
        return [(int(round(a)), int(round(a + w))) for a, w in zip(x0, width, strict=True)]

    def track_rows(self) -> dict[int, int]:
        """Track id -> row of its bar (0 = top)."""
        return dict(self._rows)

    def cursor_frame(self) -> int:
        return int(round(self._cursor.value()))

    # -- internals ----------------------------------------------------------------------------

    def _tool(self, icon: QStyle.StandardPixmap, tip: str) -> QToolButton:
        b = QToolButton()
        b.setIcon(self.style().standardIcon(icon))
        b.setToolTip(tip)
        b.setAutoRaise(True)
        b.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return b

    def _rebuild(self) -> None:
        for bar in self._bars.values():
            self._plot.removeItem(bar)
        self._bars.clear()
        self._rows.clear()
        for tid in self._state.track_ids:
            self._add_bar(tid)
        self._update_ranges()
        self._on_frame_changed(self._state.frame)

    def _on_track_added(self, track_id: int) -> None:
        if track_id in self._bars:
            self._plot.removeItem(self._bars.pop(track_id))
        self._add_bar(track_id)
        self._update_ranges()

    def _add_bar(self, track_id: int) -> None:
        track = self._state.track(track_id)
        if track is None:
            return
        if track_id not in self._rows:
            self._rows = {t: i for i, t in enumerate(sorted([*self._rows, track_id]))}
            for tid, b in self._bars.items():
                b.setOpts(y=self._rows[tid])
        segs = contiguous_segments(track.frame_ids)
        bar = pg.BarGraphItem(
            x0=[a for a, _ in segs] or [0],
            width=[b - a for a, b in segs] or [0],
            y=self._rows[track_id],
            height=_BAR_HEIGHT,
        )
        bar.setZValue(1)
        self._bars[track_id] = bar
        self._plot.addItem(bar)
        self._style_bar(track_id)

    def _style_bar(self, track_id: int) -> None:
        bar = self._bars.get(track_id)
        if bar is None:
            return
        r, g, b = track_color_255(track_id)
        alpha = 230 if self._state.is_visible(track_id) else 60
        selected = track_id == self._state.selected_track
        pen = pg.mkPen("#ffffff", width=2) if selected else pg.mkPen(None)
        bar.setOpts(brush=pg.mkBrush(r, g, b, alpha), pen=pen)

    def _update_ranges(self) -> None:
        n = max(self._state.n_frames, 1)
        rows = max(len(self._rows), 1)
        self._spin.blockSignals(True)
        self._spin.setRange(0, n - 1)
        self._spin.blockSignals(False)
        self._cursor.setBounds((0, n - 1))
        vb = self._plot.getViewBox()
        vb.setLimits(xMin=-0.5, xMax=n - 0.5, yMin=-0.5, yMax=rows - 0.5)
        self._plot.setXRange(-0.5, n - 0.5, padding=0)
        self._plot.setYRange(-0.5, rows - 0.5, padding=0)
        vb.invertY(True)
        left = self._plot.getAxis("left")
        left.setTicks([[(row, f"#{tid}") for tid, row in self._rows.items()], []])

    def _on_frame_changed(self, frame: int) -> None:
        self._cursor.blockSignals(True)
        self._cursor.setValue(frame)
        self._cursor.blockSignals(False)
        self._spin.blockSignals(True)
        self._spin.setValue(frame)
        self._spin.blockSignals(False)
        n = self._state.n_frames
        fps = self._state.fps
        self._label.setText(
            f"/ {max(n - 1, 0)}   {frame / fps:7.2f} s @ {fps:g} fps" if n else "no video"
        )

    def _on_cursor_dragged(self) -> None:
        self._state.set_frame(int(round(self._cursor.value())))

    def _on_plot_clicked(self, event: object) -> None:
        pos = event.scenePos()  # type: ignore[attr-defined]
        vb = self._plot.getViewBox()
        if not vb.sceneBoundingRect().contains(pos):
            return
        p = vb.mapSceneToView(pos)
        self._state.set_frame(int(round(p.x())))
        row = int(round(p.y()))
        for tid, r in self._rows.items():
            if r == row and abs(p.y() - row) <= _BAR_HEIGHT / 2:
                self._state.select_track(tid)

    def _on_tick(self) -> None:
        if self._state.frame >= self._state.n_frames - 1:
            self.pause()
            return
        self._state.step(1)
