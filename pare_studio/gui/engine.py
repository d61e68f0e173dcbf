"""InferenceEngine: one long-lived QThread that owns the predictor and runs the pipeline.

Design (ARCHITECTURE §5.3):

* The worker (:class:`_EngineWorker`) lives in its own ``QThread`` for the window's lifetime; the
  predictor is loaded once *inside* that thread and reused while the asset paths do not change.
* Commands go in as queued signals carrying a :class:`~pare_studio.gui.engine_jobs.Job`; results
  come out as signals with numpy / dataclass payloads (never tensors).
* The worker slot holds no pipeline logic: it iterates ``pipeline.run.iter_video`` — the same
  generator ``pare-studio demo`` runs — and forwards its ``Progress`` reports.
* Cancel sets the job's :class:`CancelToken` directly from the GUI thread; the pipeline checks it
  between batches and raises ``Cancelled``, which becomes the ``cancelled`` signal. Nothing partial
  is written: ``pare_output.pkl`` is saved (atomically) only after the generator completed.
* Errors become ``failed(message, details)``: the message of our exception types, details a
  traceback only for unexpected errors. The window shows them in a dialog.
* Live occlusion probes (later issue) use a "latest request wins" mailbox: :meth:`request_probe`
  replaces any pending probe and wakes the worker, which runs the newest one with the handler set
  by :meth:`set_probe_handler`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from pare_studio.errors import Cancelled, PareStudioError
from pare_studio.gui.engine_jobs import (
    Job,
    ModelAssets,
    OverlayVideoRequest,
    PreloadRequest,
    RunRequest,
    SavePklRequest,
)
from pare_studio.gui.mailbox import LatestMailbox
from pare_studio.results import Progress

log = logging.getLogger(__name__)

#: Progress reports without a finished track are forwarded at most this often, seconds.
PROGRESS_INTERVAL_S = 0.05

ProbeHandler = Callable[[Any, Any], Any]
#: ``loader(assets) -> ParePredictor``; a custom loader keeps ownership (never closed here).
PredictorLoader = Callable[[ModelAssets], Any]


def load_predictor_for(assets: ModelAssets) -> Any:
    """The default loader: :func:`pare_studio.core.predictor.load_predictor`."""
    from pare_studio.core.predictor import load_predictor

    return load_predictor(
        assets.cfg, assets.ckpt, assets.smpl_dir, device=assets.device, backend=assets.backend
    )


class _EngineWorker(QObject):
    """Runs jobs in the engine thread. Only the engine talks to it."""

    progress = Signal(str, int, int)
    track_ready = Signal(object)
    run_finished = Signal(object)
    export_finished = Signal(str)
    faces_ready = Signal(object)
    predictor_ready = Signal(str)
    failed = Signal(str, str)
    cancelled = Signal()
    job_done = Signal(int)
    probe_finished = Signal(object)

    def __init__(
        self, torch_threads: int | None, probes: LatestMailbox[Any], loader: PredictorLoader | None
    ) -> None:
        super().__init__()
        self._torch_threads = torch_threads
        self._loader = loader
        self._predictor: Any = None
        self._assets: ModelAssets | None = None
        self._probes = probes
        self._probe_handler: ProbeHandler | None = None

    # -- slots (engine thread) ----------------------------------------------------------------

    @Slot(object)
    def do_job(self, job: Job) -> None:
        req = job.request
        try:
            job.token.check()
            if isinstance(req, RunRequest):
                self._run(req, job)
            elif isinstance(req, PreloadRequest):
                self._predictor_for(req.assets, report=False)
            elif isinstance(req, SavePklRequest):
                self._save_pkl(req)
            elif isinstance(req, OverlayVideoRequest):
                self._overlay(req, job)
            elif isinstance(req, Path):
                self._load_faces(req)
            else:
                raise TypeError(f"unknown engine request {type(req).__name__}")
        except Cancelled:
            self.cancelled.emit()
        except PareStudioError as exc:
            self.failed.emit(str(exc), "")
        except (ValueError, OSError) as exc:
            self.failed.emit(str(exc), traceback.format_exc())
        except Exception as exc:  # a bug: say so, keep the details for the report
            log.exception("engine job failed")
            self.failed.emit(
                f"Unexpected error: {type(exc).__name__}: {exc}", traceback.format_exc()
            )
        finally:
            self.job_done.emit(job.id)

    @Slot()
    def serve_probe(self) -> None:
        request = self._probes.take()
        if request is None:
            return
        try:
            if self._probe_handler is None:
                raise PareStudioError("No occlusion probe handler is installed.")
            if self._predictor is None:
                raise PareStudioError("Load a model first: run PARE on a video, then probe.")
            self.probe_finished.emit(self._probe_handler(self._predictor, request))
        except PareStudioError as exc:
            self.failed.emit(str(exc), "")
        except Exception as exc:
            log.exception("probe failed")
            self.failed.emit(
                f"Unexpected error: {type(exc).__name__}: {exc}", traceback.format_exc()
            )

    @Slot()
    def release(self) -> None:
        """Close the predictor (called in the engine thread as it finishes)."""
        if self._predictor is not None:
            close = getattr(self._predictor, "close", None)
            if close is not None and self._loader is None:
                close()
            self._predictor = None
            self._assets = None

    def set_probe_handler(self, handler: ProbeHandler | None) -> None:
        self._probe_handler = handler

    # -- jobs ---------------------------------------------------------------------------------

    def _predictor_for(self, assets: ModelAssets, report: bool = True) -> Any:
        """The predictor for ``assets``, loaded on first use (``report``: emit progress)."""
        if self._predictor is not None and self._assets == assets:
            return self._predictor
        self.release()
        import torch

        # Leave a core to the GUI and render threads: on a small machine torch's default (all
        # cores) makes inference no faster and the window less smooth (benchmarks/bench_gui.py).
        cores = os.cpu_count() or 2
        threads = self._torch_threads or max(1, min(torch.get_num_threads(), cores - 1))
        torch.set_num_threads(int(threads))
        if report:
            self.progress.emit("load model", 0, 1)
        t0 = time.perf_counter()
        self._predictor = (self._loader or load_predictor_for)(assets)
        self._assets = assets
        # torch and the model leave hundreds of thousands of long-lived Python objects; a full
        # garbage collection then holds the GIL for ~0.3 s, freezing the GUI thread mid-run.
        # Moving them to the permanent generation keeps later collections short.
        gc.freeze()
        if report:
            self.progress.emit("load model", 1, 1)
        self.predictor_ready.emit(
            f"{Path(assets.ckpt).name} loaded in {time.perf_counter() - t0:.1f} s"
        )
        self.faces_ready.emit(np.asarray(self._predictor.faces))
        return self._predictor

    def _drain(self, gen: Generator[Progress, None, Any]) -> Any:
        """Iterate a pipeline generator, forwarding its reports; returns its value."""
        last = 0.0
        try:
            while True:
                try:
                    p = next(gen)
                except StopIteration as stop:
                    return stop.value
                if p.track is not None:
                    self.track_ready.emit(p.track)
                now = time.monotonic()
                if p.track is not None or p.done >= p.total or now - last >= PROGRESS_INTERVAL_S:
                    last = now
                    self.progress.emit(p.stage, int(p.done), int(p.total))
        finally:
            gen.close()

    def _run(self, req: RunRequest, job: Job) -> None:
        from pare_studio.pipeline.run import iter_video

        predictor = self._predictor_for(req.assets)
        job.token.check()
        result = self._drain(iter_video(req.source_path, predictor, req.options, job.token))
        if req.out_pkl is not None:
            from pare_studio.pipeline.pkl_io import save_pare_output

            job.token.check()
            save_pare_output(req.out_pkl, result)
        self.run_finished.emit(result)

    def _save_pkl(self, req: SavePklRequest) -> None:
        from pare_studio.pipeline.pkl_io import save_pare_output

        self.progress.emit("save", 0, 1)
        path = save_pare_output(req.path, req.result)
        self.progress.emit("save", 1, 1)
        self.export_finished.emit(str(path))

    def _overlay(self, req: OverlayVideoRequest, job: Job) -> None:
        from pare_studio.pipeline.video import open_source
        from pare_studio.render.overlay import render_overlay_video

        with open_source(req.source_path) as source:
            path = self._drain(
                render_overlay_video(
                    source,
                    req.result,
                    req.faces,
                    req.out_path,
                    wireframe=req.wireframe,
                    sideview=req.sideview,
                    draw_keypoints=req.draw_keypoints,
                    cancel=job.token,
                )
            )
        self.export_finished.emit(str(path))

    def _load_faces(self, smpl_dir: Path) -> None:
        from pare_studio.core.smpl_io import SmplFiles, load_smpl_model

        files = SmplFiles.from_dir(smpl_dir, require=("model",))
        self.faces_ready.emit(np.asarray(load_smpl_model(files.model)["f"], dtype=np.int64))


class InferenceEngine(QObject):
    """The window's handle on the engine thread (lives in the GUI thread).

    Signals
    -------
    progress(stage, done, total) : pipeline / export progress.
    track_ready(TrackResult) : a track finished during a run (shown at once).
    run_finished(VideoResult) : a run completed.
    export_finished(str) : a file was written (pkl or overlay video).
    faces_ready(ndarray) : (F, 3) mesh faces (from the predictor or the SMPL folder).
    predictor_ready(str) : the model was (re)loaded.
    failed(message, details) : a job failed; ``details`` is a traceback or "".
    cancelled() : a job stopped because it was cancelled; nothing was written.
    busy_changed(bool) : whether a job is queued or running.
    probe_finished(object) : result of the newest occlusion probe.
    """

    progress = Signal(str, int, int)
    track_ready = Signal(object)
    run_finished = Signal(object)
    export_finished = Signal(str)
    faces_ready = Signal(object)
    predictor_ready = Signal(str)
    failed = Signal(str, str)
    cancelled = Signal()
    busy_changed = Signal(bool)
    probe_finished = Signal(object)

    _submit = Signal(object)
    _wake_probe = Signal()

    def __init__(
        self,
        parent: QObject | None = None,
        torch_threads: int | None = None,
        predictor_loader: PredictorLoader | None = None,
    ) -> None:
        super().__init__(parent)
        self._probes: LatestMailbox[Any] = LatestMailbox()
        self._thread = QThread()
        self._thread.setObjectName("pare-engine")
        self._worker = _EngineWorker(torch_threads, self._probes, predictor_loader)
        self._worker.moveToThread(self._thread)
        self._pending: dict[int, Job] = {}
        self._lock = threading.Lock()

        self._submit.connect(self._worker.do_job)
        self._wake_probe.connect(self._worker.serve_probe)
        w = self._worker
        w.progress.connect(self.progress)
        w.track_ready.connect(self.track_ready)
        w.run_finished.connect(self.run_finished)
        w.export_finished.connect(self.export_finished)
        w.faces_ready.connect(self.faces_ready)
        w.predictor_ready.connect(self.predictor_ready)
        w.failed.connect(self.failed)
        w.cancelled.connect(self.cancelled)
        w.probe_finished.connect(self.probe_finished)
        w.job_done.connect(self._on_job_done)
        self._thread.finished.connect(self._worker.release)
        self._thread.start()

    # -- commands (GUI thread) ----------------------------------------------------------------

    @property
    def thread(self) -> QThread:
        return self._thread

    @property
    def is_busy(self) -> bool:
        """Whether a job the user asked for (run, export) is queued or running."""
        with self._lock:
            return any(not j.background for j in self._pending.values())

    def is_pending(self, job: Job) -> bool:
        with self._lock:
            return job.id in self._pending

    def run(self, request: RunRequest) -> Job:
        """Queue a video run."""
        return self._queue(Job(request))

    def save_pkl(self, request: SavePklRequest) -> Job:
        return self._queue(Job(request))

    def export_overlay(self, request: OverlayVideoRequest) -> Job:
        return self._queue(Job(request))

    def preload(self, assets: ModelAssets) -> Job:
        """Load the predictor in the background (the window does it at start-up).

        Loading holds Python's GIL in places (importing torch, unpickling SMPL), which stalls the
        GUI thread for a few hundred milliseconds at a time; doing it before the user runs keeps
        the run itself smooth and lets it start at once.
        """
        return self._queue(Job(PreloadRequest(assets), background=True))

    def load_faces(self, smpl_dir: Path) -> Job:
        """Read the SMPL faces (viewer mode: meshes of a pkl made elsewhere)."""
        return self._queue(Job(Path(smpl_dir), background=True))

    def cancel(self) -> None:
        """Cancel every queued and running job (takes effect at the next batch)."""
        with self._lock:
            for job in self._pending.values():
                if not job.background:
                    job.token.cancel()

    def request_probe(self, request: Any) -> None:
        """Post an occlusion probe; a probe still waiting is dropped (latest request wins)."""
        self._probes.put(request)
        self._wake_probe.emit()

    def set_probe_handler(self, handler: ProbeHandler | None) -> None:
        """``handler(predictor, request) -> result`` runs probes in the engine thread."""
        self._worker.set_probe_handler(handler)

    def shutdown(self, timeout_ms: int = 60000) -> bool:
        """Cancel every job, stop the thread and wait for it; True when it has finished."""
        with self._lock:
            for job in self._pending.values():
                job.token.cancel()
        self._thread.quit()
        done = self._thread.wait(timeout_ms)
        if not done:
            log.warning("engine thread did not stop within %d ms", timeout_ms)
        return bool(done)

    # -- internals ----------------------------------------------------------------------------

    def _queue(self, job: Job) -> Job:
        was_busy = self.is_busy
        with self._lock:
            self._pending[job.id] = job
        if not was_busy and self.is_busy:
            self.busy_changed.emit(True)
        self._submit.emit(job)
        return job

    def _on_job_done(self, job_id: int) -> None:
        was_busy = self.is_busy
        with self._lock:
            self._pending.pop(job_id, None)
        if was_busy and not self.is_busy:
            self.busy_changed.emit(False)
