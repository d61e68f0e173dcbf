"""OcclusionController: the live occlusion panel's logic (GUI thread, no widgets).

* **Crop.** While active, the selected track's crop at the current frame (the demo's crop of its
  box, :func:`pare_studio.pipeline.crops.crop_rgb`), rebuilt when the frame, the selection, the
  result or the track's box changes (:class:`CropKey`).
* **Requests.** Every probe or sweep gets the next id of one counter and goes to the engine's
  "latest request wins" mailbox (``InferenceEngine.request_probe``). ROI drags are throttled:
  ``set_rect`` (``sigRegionChanged``) arms a :data:`THROTTLE_MS` single-shot timer that posts the
  newest rectangle (~30 probes/s at most); ``finish_rect`` (``sigRegionChangeFinished``) posts at
  once. A rectangle / fill / crop equal to the last one posted is not posted again.
* **Replies.** A reply whose id is lower than the newest request's is stale and dropped (the
  engine may still finish a probe that a newer request superseded), as is one for another crop.
* **Baselines.** The unoccluded prediction is kept per crop (LRU of :data:`BASELINES_KEPT`) and
  sent with later requests, so each probe costs one forward pass.
* **Sweep.** ``start_sweep`` posts a :class:`SweepRequest`; progress comes back from the engine
  thread through a queued signal; ``cancel_sweep`` sets its token. Probes asked for meanwhile
  wait and the newest one is posted when the sweep ends (posting would replace the sweep in the
  mailbox if the engine had not taken it yet).
* **Viewport.** :meth:`scene_filter` rewrites the 3D scene (occluded mesh over a ghost of the
  unoccluded one, :mod:`occlusion_scene`); ``scene_changed`` asks the window to redraw.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from pare_studio.analysis.occlusion import Baseline, Fill, OccluderRect, check_fill
from pare_studio.cancel import CancelToken
from pare_studio.gui.mesh_snapshot import SceneSnapshot
from pare_studio.gui.occlusion_probe import (
    CropKey,
    OcclusionCrop,
    OcclusionProbeHandler,
    ProbeReply,
    ProbeRequest,
    SweepReply,
    SweepRequest,
)
from pare_studio.gui.occlusion_scene import with_occlusion
from pare_studio.gui.state import ViewerState

log = logging.getLogger(__name__)

#: Minimum interval between two probes posted during a drag, milliseconds (~30 Hz).
THROTTLE_MS = 33
#: Baselines kept (one per crop).
BASELINES_KEPT = 16
#: Crops per forward pass of the window's sweep (progress and cancel act between batches; a
#: 6 x 6 grid runs as 3 batches of 12, as `pare-studio occlusion` with its default batch of 16).
SWEEP_BATCH = 12
#: The occluder the panel starts with, crop pixels ``(x, y, w, h)``.
DEFAULT_RECT = (92.0, 52.0, 40.0, 40.0)


def make_crop(frame_rgb: np.ndarray, key: CropKey) -> OcclusionCrop:
    """The demo crop of ``key.bbox`` in ``frame_rgb`` ((H, W, 3) uint8 RGB)."""
    from pare_studio.pipeline.crops import crop_rgb, normalize_crops

    rgb = crop_rgb(frame_rgb, key.bbox)
    crop = normalize_crops(rgb[None])[0]
    h, w = frame_rgb.shape[:2]
    return OcclusionCrop(key=key, crop=crop, rgb=rgb, frame_size=(int(w), int(h)))


class OcclusionController(QObject):
    """Probe / sweep requests for the panel, their replies, and the viewport's occluded scene.

    Parameters
    ----------
    state : the window's :class:`ViewerState`.
    engine : the window's ``InferenceEngine`` (``request_probe``, ``set_probe_handler``,
        ``probe_finished``, ``failed``); the controller installs its probe handler.
    assets : model files (``ModelAssets``) the engine loads the predictor from; None = none
        (viewer mode: the panel explains why nothing is probed).

    Signals
    -------
    crop_changed(object) : the new :class:`OcclusionCrop`, or None.
    message(str) : status text for the panel (why there is no crop, errors, timings).
    probe_shown(object) : an accepted :class:`ProbeReply` (the newest request's).
    sweep_running(bool) : a sweep started / ended.
    sweep_progress(int, int) : crops done, total.
    sweep_finished(object) : a completed :class:`SweepReply`.
    scene_changed() : the 3D scene must be rebuilt (:meth:`scene_filter` changed its output).
    """

    crop_changed = Signal(object)
    message = Signal(str)
    probe_shown = Signal(object)
    sweep_running = Signal(bool)
    sweep_progress = Signal(int, int)
    sweep_finished = Signal(object)
    scene_changed = Signal()
    #: (request id, done, total), emitted in the engine thread, delivered queued.
    _engine_progress = Signal(int, int, int)

    def __init__(
        self, state: ViewerState, engine: Any, assets: Any = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._state = state
        self._engine = engine
        self._assets = assets
        self._active = False
        self._ids = itertools.count(1)
        self._crop: OcclusionCrop | None = None
        self._rect = OccluderRect.from_float(*DEFAULT_RECT)
        self._fill: Fill = "mean"
        self._posted: tuple[CropKey, OccluderRect, Fill] | None = None
        self._baselines: OrderedDict[CropKey, Baseline] = OrderedDict()
        self._shown: ProbeReply | None = None
        self._sweep: SweepReply | None = None
        self._sweep_req: SweepRequest | None = None
        self._deferred = False
        self._outstanding: int | None = None  # newest posted probe not answered yet
        #: id of the newest request posted (probe or sweep); replies below it are stale.
        self.last_request_id = 0
        #: probes posted / replies dropped as stale, for tests and the status line.
        self.posted_count = 0
        self.dropped_stale = 0
        #: perf_counter() of the newest probe post (latency of the shown result).
        self._posted_at = 0.0
        self.last_latency_s = 0.0

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(THROTTLE_MS)
        self._timer.timeout.connect(self._post_if_changed)

        self._handler = OcclusionProbeHandler()
        engine.set_probe_handler(self._handler)
        engine.probe_finished.connect(self._on_reply)
        engine.failed.connect(self._on_engine_failed)
        self._engine_progress.connect(self._on_engine_progress)
        for sig in (state.frame_changed, state.selection_changed):
            sig.connect(lambda _v: self._refresh())
        state.result_changed.connect(lambda: self._refresh())  # same key: same crop
        state.source_changed.connect(self._on_source_changed)
        state.track_added.connect(lambda _t: self._refresh())

    # -- public: configuration ----------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._active

    def set_active(self, active: bool) -> None:
        """Start (crop, probe, viewport override) or stop (cancel the sweep, plain viewport)."""
        active = bool(active)
        if active == self._active:
            return
        self._active = active
        if active:
            self._preload()
            self._refresh()
        else:
            self._timer.stop()
            self.cancel_sweep()
            self._set_crop(None)
        self.scene_changed.emit()

    def set_assets(self, assets: Any) -> None:
        """Model files to probe with (None = viewer mode). Cached baselines are forgotten."""
        if assets == self._assets:
            return
        self._assets = assets
        self._baselines.clear()
        self._posted = None
        if self._active:
            self._preload()
            self._refresh(force=True)

    @property
    def crop(self) -> OcclusionCrop | None:
        return self._crop

    @property
    def rect(self) -> OccluderRect:
        return self._rect

    @property
    def fill(self) -> Fill:
        return self._fill

    @property
    def shown(self) -> ProbeReply | None:
        """The accepted reply currently displayed (None until one arrives for this crop)."""
        return self._shown

    @property
    def sweep_result(self) -> SweepReply | None:
        """The completed sweep of the current crop, if any."""
        return self._sweep

    @property
    def sweep_is_running(self) -> bool:
        return self._sweep_req is not None

    def baseline(self, key: CropKey) -> Baseline | None:
        return self._baselines.get(key)

    # -- public: user input -------------------------------------------------------------------

    def set_fill(self, fill: Fill) -> None:
        self._fill = check_fill(fill)
        self._post_if_changed()

    def set_rect(self, x: float, y: float, w: float, h: float) -> None:
        """The occluder moved (a drag in progress): posted at most every :data:`THROTTLE_MS`."""
        self._rect = OccluderRect.from_float(x, y, w, h)
        if not self._timer.isActive():
            self._timer.start()

    def finish_rect(self, x: float, y: float, w: float, h: float) -> None:
        """The drag ended: post the final rectangle now."""
        self._rect = OccluderRect.from_float(x, y, w, h)
        self._timer.stop()
        self._post_if_changed()

    def start_sweep(self, size: int, stride: int, batch_size: int = SWEEP_BATCH) -> bool:
        """Run the full grid sweep of the current crop in the engine thread."""
        if self._crop is None or self._sweep_req is not None:
            return False
        if not self._can_probe():
            return False
        self._timer.stop()
        req = SweepRequest(
            id=next(self._ids),
            crop=self._crop,
            size=int(size),
            stride=int(stride),
            fill=self._fill,
            batch_size=int(batch_size),
            baseline=self._baselines.get(self._crop.key),
            token=CancelToken(),
            on_progress=self._engine_progress.emit,
            assets=self._assets,
        )
        self._sweep_req = req  # the previous heatmap stays until this one completes
        self.last_request_id = req.id
        if self._outstanding is not None:
            # the sweep supersedes that probe (its reply, if any, is now stale): repost it after
            self._outstanding = None
            self._posted = None
            self._deferred = True
        self._engine.request_probe(req)
        self.sweep_running.emit(True)
        self.message.emit("Sweeping…")
        return True

    def cancel_sweep(self) -> None:
        """Stop the running sweep after its current batch."""
        if self._sweep_req is not None and self._sweep_req.token is not None:
            self._sweep_req.token.cancel()
            self.message.emit("Cancelling the sweep…")

    # -- public: viewport ---------------------------------------------------------------------

    def scene_filter(self, snap: SceneSnapshot) -> SceneSnapshot:
        """The viewport's scene: the occluded mesh over a ghost while the panel is active."""
        if not self._active:
            return snap
        return with_occlusion(snap, self._shown)

    # -- internals: crop ----------------------------------------------------------------------

    def _on_source_changed(self) -> None:
        # another video: the same (track, frame, box) may cut other pixels
        self._baselines.clear()
        self._refresh(force=True)

    def _current_key(self) -> tuple[CropKey | None, str]:
        st = self._state
        tid = st.selected_track
        if tid < 0:
            return None, "Select a person to probe occlusion."
        track = st.track(tid)
        row = None if track is None else track.index_of(st.frame)
        if track is None or row is None or track.bboxes is None:
            return None, f"Person #{tid} is not in frame {st.frame}."
        bbox = tuple(float(v) for v in np.asarray(track.bboxes[row], np.float64)[:4])
        return CropKey(int(tid), int(st.frame), bbox), ""  # type: ignore[arg-type]

    def _refresh(self, force: bool = False) -> None:
        if not self._active:
            return
        key, why = self._current_key()
        if key is not None and not force and self._crop is not None and self._crop.key == key:
            return
        crop = None
        if key is not None:
            frame = self._state.read_frame(key.frame)
            if frame is None:
                why = "Open the video of these results to probe occlusion."
            else:
                crop = make_crop(frame, key)
        self._set_crop(crop)
        if crop is None:
            self.message.emit(why)
            return
        self._post_if_changed()

    def _set_crop(self, crop: OcclusionCrop | None) -> None:
        old = self._crop
        same = (
            crop is not None
            and old is not None
            and crop.key == old.key
            and np.array_equal(crop.crop, old.crop)  # another video may cut other pixels
        )
        if self._sweep_req is not None and not same:
            self.cancel_sweep()
        self._crop = crop
        if not same:
            self._shown = None
            self._sweep = None
            self._posted = None
            self.scene_changed.emit()
        self.crop_changed.emit(crop)

    # -- internals: requests ------------------------------------------------------------------

    def _preload(self) -> None:
        """Have the engine load the predictor (a no-op when it holds it already)."""
        preload = getattr(self._engine, "preload", None)
        if self._assets is not None and preload is not None:
            preload(self._assets)

    def _can_probe(self) -> bool:
        if self._assets is None:
            self.message.emit(
                "Set up the model files (Settings ▸ Model assets…) to probe occlusion."
            )
            return False
        return True

    def _post_if_changed(self) -> None:
        if not self._active or self._crop is None:
            return
        what = (self._crop.key, self._rect, self._fill)
        if what == self._posted:
            return
        if self._sweep_req is not None:
            self._deferred = True
            return
        if not self._can_probe():
            return
        req = ProbeRequest(
            id=next(self._ids),
            crop=self._crop,
            rect=self._rect,
            fill=self._fill,
            baseline=self._baselines.get(self._crop.key),
            assets=self._assets,
        )
        self._posted = what
        self._outstanding = req.id
        self.last_request_id = req.id
        self.posted_count += 1
        self._posted_at = time.perf_counter()
        self._engine.request_probe(req)
        if getattr(self._engine, "is_busy", False):
            self.message.emit("Waiting for the engine: a run or an export is in progress…")

    def _on_reply(self, reply: object) -> None:
        if isinstance(reply, SweepReply):
            self._on_sweep_reply(reply)
            return
        if not isinstance(reply, ProbeReply):
            return  # somebody else's probe
        if reply.id == self._outstanding:
            self._outstanding = None
        if reply.id < self.last_request_id or self._crop is None or reply.key != self._crop.key:
            self.dropped_stale += 1
            return
        if reply.error or reply.result is None:
            self.message.emit(f"Probe failed: {reply.error}")
            return
        self._keep_baseline(reply.key, reply.result.baseline)
        self._shown = reply
        self.last_latency_s = time.perf_counter() - self._posted_at
        self.scene_changed.emit()  # first: the viewport renders while the panel redraws
        self.probe_shown.emit(reply)
        self.message.emit(
            f"Mean displacement {reply.result.mean_displacement:.1f} mm · "
            f"probe {reply.seconds * 1000:.0f} ms"
        )

    def _keep_baseline(self, key: CropKey, base: Baseline) -> None:
        self._baselines[key] = base
        self._baselines.move_to_end(key)
        while len(self._baselines) > BASELINES_KEPT:
            self._baselines.popitem(last=False)

    def _on_sweep_reply(self, reply: SweepReply) -> None:
        req = self._sweep_req
        if req is None or reply.id != req.id:
            self.dropped_stale += 1
            return
        self._sweep_req = None
        self.sweep_running.emit(False)
        current = self._crop is not None and reply.key == self._crop.key
        if reply.result is not None and current:
            self._keep_baseline(reply.key, reply.result.baseline)
            self._sweep = reply
            self.sweep_finished.emit(reply)
            grid = reply.result.grid_shape
            self.message.emit(f"Sweep {grid[0]}×{grid[1]} done in {reply.seconds:.1f} s")
        elif reply.cancelled:
            self.message.emit("Sweep cancelled.")
        elif reply.error:
            self.message.emit(f"Sweep failed: {reply.error}")
        if self._deferred:
            self._deferred = False
            self._post_if_changed()

    def _on_engine_progress(self, request_id: int, done: int, total: int) -> None:
        if self._sweep_req is not None and request_id == self._sweep_req.id:
            self.sweep_progress.emit(done, total)

    def _on_engine_failed(self, message: str, _details: str) -> None:
        """The engine could not serve a request (e.g. the model failed to load)."""
        if self._sweep_req is not None:
            self._sweep_req = None
            self.sweep_running.emit(False)
        if self._outstanding is not None:
            self._outstanding = None
            self._posted = None
        self._deferred = False
