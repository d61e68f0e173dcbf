"""QtOffscreenViewport: a raster widget showing the images of a :class:`VispyRenderThread`.

Why not VisPy's ``QOpenGLWidget``: it makes Qt compose the *whole* top-level window through
OpenGL, so with a software driver every repaint of any widget (a progress bar, the timeline)
costs tens of milliseconds. This widget is plain raster; the 3D scene is rendered in its own
thread and EGL context, and mouse events are forwarded there, so the turntable camera (orbit,
zoom, pan with Shift) behaves as in a native canvas.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QPointF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget
from vispy.util import keys

from pare_studio.gui.mesh_snapshot import SceneSnapshot
from pare_studio.gui.vispy_render_thread import VispyRenderThread

_BUTTONS = {
    Qt.MouseButton.LeftButton: 1,
    Qt.MouseButton.RightButton: 2,
    Qt.MouseButton.MiddleButton: 3,
}


def _modifiers(event: QMouseEvent | QWheelEvent) -> tuple[object, ...]:
    mods = event.modifiers()
    out = []
    if mods & Qt.KeyboardModifier.ShiftModifier:
        out.append(keys.SHIFT)
    if mods & Qt.KeyboardModifier.ControlModifier:
        out.append(keys.CONTROL)
    if mods & Qt.KeyboardModifier.AltModifier:
        out.append(keys.ALT)
    return tuple(out)


def _pos(p: QPointF) -> tuple[float, float]:
    return (float(p.x()), float(p.y()))


class QtOffscreenViewport(QWidget):
    """Shows rendered frames; forwards resize and mouse input to the render thread."""

    #: (seq, image, full resolution?) delivered from the render thread (queued to the GUI thread).
    image_ready = Signal(int, object, bool)
    #: (seq, frame, RGBA overlay over the whole frame or None) for the frame view.
    overlay_ready = Signal(int, int, object)

    def __init__(self, background: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._background = QColor(background)
        self._image: QImage | None = None
        self._rgb: np.ndarray | None = None
        self._seq = 0
        self._full = False
        self._pressed: set[int] = set()  # VisPy buttons held (the camera needs the full list)
        self.image_ready.connect(self._show_image)
        self.renderer = VispyRenderThread(
            self._deliver, self._deliver_overlay, background=background
        )
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)

    # -- images -------------------------------------------------------------------------------

    def submit(self, snapshot: SceneSnapshot) -> None:
        self.renderer.submit(snapshot)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the newest snapshot is drawn (overlay included) and show it: a forced draw."""
        ok = self.renderer.wait_rendered(timeout=timeout)
        # deliver the queued image / overlay signals of that render right away
        QCoreApplication.sendPostedEvents(None, QEvent.Type.MetaCall)
        latest = self.renderer.latest_image()
        if latest is not None:
            self._show_image(*latest)
        self.repaint()
        return ok

    def last_image(self) -> np.ndarray | None:
        """The image shown, (H, W, 3) uint8 RGB."""
        return self._rgb

    @property
    def shown_seq(self) -> int:
        return self._seq

    @property
    def is_full_resolution(self) -> bool:
        return self._full

    def stop(self) -> None:
        """Stop the render thread (before the widget goes away)."""
        self.renderer.stop()

    def _deliver(self, seq: int, rgb: np.ndarray, full: bool) -> None:
        """Called in the render thread."""
        self.image_ready.emit(seq, rgb, full)

    def _deliver_overlay(self, seq: int, frame: int, rgba: np.ndarray | None) -> None:
        """Called in the render thread."""
        self.overlay_ready.emit(seq, frame, rgba)

    def _show_image(self, seq: int, rgb: np.ndarray, full: bool) -> None:
        if seq < self._seq or (seq == self._seq and self._full and not full):
            return  # an older image arrived late
        h, w = rgb.shape[:2]
        self._rgb = rgb
        self._image = QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888)
        self._seq, self._full = seq, full
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt name)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        if self._image is None:
            p.fillRect(self.rect(), self._background)
        else:
            p.drawImage(self.rect(), self._image)
        p.end()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        size = event.size()
        if size.width() > 1 and size.height() > 1:
            self.renderer.resize(size.width(), size.height())

    # -- mouse -> VisPy -----------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        button = _BUTTONS.get(event.button())
        if button is not None:
            self._pressed.add(button)
            self.renderer.post_mouse(
                "press",
                pos=_pos(event.position()),
                button=button,
                buttons=sorted(self._pressed),
                modifiers=_modifiers(event),
            )

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.renderer.post_mouse(
            "move",
            pos=_pos(event.position()),
            buttons=sorted(self._pressed),
            modifiers=_modifiers(event),
        )

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        button = _BUTTONS.get(event.button())
        if button is not None:
            self._pressed.discard(button)
            self.renderer.post_mouse(
                "release",
                pos=_pos(event.position()),
                button=button,
                buttons=sorted(self._pressed),
                modifiers=_modifiers(event),
            )

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802
        d = event.angleDelta()
        self.renderer.post_mouse(
            "wheel",
            pos=_pos(event.position()),
            delta=(d.x() / 120.0, d.y() / 120.0),
            modifiers=_modifiers(event),
        )
