"""The window's background computations, as plain functions (no Qt): smoothing and exports.

They run in the window's :class:`~pare_studio.gui.task_thread.TaskThread`; each takes a
:class:`~pare_studio.cancel.CancelToken` and checks it between steps, so a newer slider value
or closing the window stops them quickly.

* :func:`smooth_track_cancellable` — :func:`pare_studio.pipeline.smoothing.smooth_track`,
  with the mesh recomputed in chunks and a cancel check between chunks.
* :class:`ExportJob` / :func:`run_export_job` — what the export dialog asks for: the edited
  tracks, optionally smoothed (reusing tracks the window already smoothed), written by
  :func:`pare_studio.export.dispatch.export_result`.
* :func:`load_body` / :func:`load_rig` — the SMPL body (for recomputing meshes) and rig (for
  BVH / glTF / OBJ), read once per SMPL folder.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from pare_studio.cancel import CancelToken
from pare_studio.edits import EditState
from pare_studio.export.common import ExportOptions
from pare_studio.export.dispatch import NEEDS_RIG, FormatOptions
from pare_studio.pipeline.smoothing import recompute_mesh, smooth_pose
from pare_studio.project import SmoothingSettings
from pare_studio.results import TrackResult, VideoResult

#: Frames per SMPL call between cancel checks when recomputing a smoothed mesh.
MESH_CHUNK = 64

_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=2)
def _body(smpl_dir: str) -> Any:
    from pare_studio.core.smpl import SmplBody
    from pare_studio.core.smpl_io import SmplFiles

    return SmplBody.from_files(SmplFiles.from_dir(smpl_dir))


@functools.lru_cache(maxsize=2)
def _rig(smpl_dir: str) -> Any:
    from pare_studio.export.rig import SmplRig

    return SmplRig.from_smpl_dir(smpl_dir)


def load_body(smpl_dir: str | Path) -> Any:
    """``core.smpl.SmplBody`` of ``smpl_dir`` (cached; ``SmplModelError`` names a bad file)."""
    with _LOAD_LOCK:
        return _body(str(Path(smpl_dir)))


def load_rig(smpl_dir: str | Path) -> Any:
    """``export.rig.SmplRig`` of ``smpl_dir`` (cached)."""
    with _LOAD_LOCK:
        return _rig(str(Path(smpl_dir)))


def settings_key(s: SmoothingSettings) -> tuple[str, float, float]:
    """What a smoothed track depends on besides the raw track: (method, min_cutoff, beta)."""
    return (s.method, float(s.min_cutoff), float(s.beta))


def smooth_track_cancellable(
    track: TrackResult,
    body: Any,
    settings: SmoothingSettings,
    token: CancelToken | None = None,
    chunk: int = MESH_CHUNK,
) -> TrackResult:
    """``track`` smoothed with ``settings`` (method, min_cutoff, beta), mesh and joints recomputed.

    Same result as ``pipeline.smoothing.smooth_track``: ``pose`` filtered, ``verts`` (n, 6890, 3)
    and ``joints3d`` (n, 49, 3) float32 recomputed with ``body`` from the filtered pose and the
    unchanged betas; every other array is shared with ``track``. Raises ``Cancelled`` when
    ``token`` is cancelled (checked between chunks of ``chunk`` frames).
    """
    token = token or CancelToken()
    token.check()
    pose = smooth_pose(
        track.pose, settings.method, settings.min_cutoff, settings.beta, track.frame_ids
    )
    n = len(pose)
    verts = np.empty((n, 6890, 3), np.float32)
    joints = np.empty((n, 49, 3), np.float32)
    for s in range(0, n, chunk):
        token.check()
        e = min(n, s + chunk)
        recompute_mesh(body, pose[s:e], track.betas[s:e], out=(verts[s:e], joints[s:e]))
    return replace(track, pose=pose, verts=verts, joints3d=joints)


# --------------------------------------------------------------------------------------------
# Exports


@dataclass(frozen=True)
class ExportJob:
    """One export the window runs in the background.

    fmt : "bvh" | "glb" | "npz" | "obj" | "pkl". out : file (folder for obj).
    state : the edited tracks. track_ids : tracks to write (ascending).
    options, format_options : as :func:`pare_studio.export.dispatch.export_result`.
    smoothing : smooth before writing (None = write the tracks as they are).
    smpl_dir : SMPL folder (needed for bvh / glb / obj and for smoothing).
    presmoothed : ``{track_id: smoothed track}`` the window already computed with
        ``smoothing`` for exactly ``state.tracks[track_id]`` (reused, not recomputed).
    """

    fmt: str
    out: Path
    state: EditState
    track_ids: tuple[int, ...]
    options: ExportOptions = ExportOptions()
    format_options: FormatOptions = FormatOptions()
    smoothing: SmoothingSettings | None = None
    smpl_dir: Path | None = None
    presmoothed: Mapping[int, TrackResult] = field(default_factory=dict)

    @property
    def needs_smpl(self) -> bool:
        return self.fmt in NEEDS_RIG or self.smoothing is not None


def export_job_result(
    job: ExportJob, token: CancelToken | None = None, report: Callable[[Any], None] | None = None
) -> VideoResult:
    """The tracks ``job`` writes: the chosen edited tracks, smoothed when asked."""
    from pare_studio.errors import SmplModelError

    token = token or CancelToken()
    result = job.state.to_result()
    ids = list(job.track_ids)
    if job.smoothing is None:
        return VideoResult(
            tracks={t: result.tracks[t] for t in ids},
            n_frames=result.n_frames,
            width=result.width,
            height=result.height,
            fps=result.fps,
            source=result.source,
        )
    if job.smpl_dir is None:
        raise SmplModelError(
            "smoothing recomputes the meshes with the SMPL model: set the SMPL folder in "
            "Settings ▸ Model assets…, or export without smoothing"
        )
    body = None
    tracks: dict[int, TrackResult] = {}
    for i, tid in enumerate(ids):
        token.check()
        if report is not None:
            report(("smooth", i, len(ids)))
        ready = job.presmoothed.get(tid)
        if ready is not None:
            tracks[tid] = ready
            continue
        if body is None:
            body = load_body(job.smpl_dir)
        tracks[tid] = smooth_track_cancellable(result.tracks[tid], body, job.smoothing, token)
    return VideoResult(
        tracks=tracks,
        n_frames=result.n_frames,
        width=result.width,
        height=result.height,
        fps=result.fps,
        source=result.source,
    )


def run_export_job(
    job: ExportJob, token: CancelToken | None = None, report: Callable[[Any], None] | None = None
) -> list[Path]:
    """Smooth (if asked) and write ``job``; returns the written files.

    Raises
    ------
    TrackEditError
        No track chosen, or an unknown track id.
    SmplModelError
        The format or the smoothing needs the SMPL model and there is none.
    OutputError
        The output cannot be written (nothing half-written is left).
    Cancelled
        ``token`` was cancelled.
    """
    from pare_studio.errors import SmplModelError, TrackEditError
    from pare_studio.export.dispatch import export_result

    token = token or CancelToken()
    if not job.track_ids:
        raise TrackEditError("no track is chosen for export; tick at least one")
    for t in job.track_ids:
        job.state.track(t)
    rig = None
    if job.fmt in NEEDS_RIG:
        if job.smpl_dir is None:
            raise SmplModelError(
                f"the {job.fmt} export needs the SMPL model: set the SMPL folder in Settings ▸ "
                "Model assets…"
            )
        rig = load_rig(job.smpl_dir)
    result = export_job_result(job, token, report)
    token.check()
    if report is not None:
        report(("write", 0, 1))
    return export_result(
        result,
        job.fmt,
        job.out,
        track_ids=list(job.track_ids),
        options=job.options,
        format_options=job.format_options,
        rig=rig,
    )
