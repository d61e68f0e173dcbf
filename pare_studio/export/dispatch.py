"""One entry point for every export format (used by ``pare-studio export`` and the window).

Formats (``FORMATS``):

====== ============================================ ===================================
format writes                                       needs the SMPL model for
====== ============================================ ===================================
bvh    one ``.bvh`` per track                       rest joints of the body shape
glb    one ``.glb`` with every track                mesh, weights, blend shapes
npz    one ``.npz`` per track (SMPL parameters)     nothing
obj    ``OUT/track_<id>/frame_<frame>.obj``         faces
pkl    ``pare_output.pkl`` (reference layout)       nothing
====== ============================================ ===================================

Smoothing (:func:`smooth_result`) needs the SMPL body (``core.smpl.SmplBody``): it recomputes
the mesh and joints of the smoothed pose, as the pipeline does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pare_studio.export.common import ExportOptions, select_tracks
from pare_studio.export.rig import SmplRig
from pare_studio.results import VideoResult

if TYPE_CHECKING:
    import torch

FORMATS = ("bvh", "glb", "npz", "obj", "pkl")
#: Formats that need the SMPL model (:class:`SmplRig`).
NEEDS_RIG = ("bvh", "glb", "obj")
#: Usual file suffix of each format ('' = a folder).
SUFFIXES = {"bvh": ".bvh", "glb": ".glb", "npz": ".npz", "obj": "", "pkl": ".pkl"}


@dataclass(frozen=True)
class FormatOptions:
    """Format-specific settings.

    bvh_scale : BVH units per metre (1 = metres, 100 = centimetres).
    max_influences : glTF skinning weights per vertex (None = all, exact).
    pose_blendshapes : glTF morph targets for SMPL's pose correctives (exact mesh, ~17 MB).
    hide_absent : glTF: scale a body to 0 where its track is absent.
    """

    bvh_scale: float = 1.0
    max_influences: int | None = None
    pose_blendshapes: bool = False
    hide_absent: bool = True


def smooth_result(
    result: VideoResult,
    smpl: torch.nn.Module,
    method: str = "rotation",
    min_cutoff: float = 0.004,
    beta: float = 1.0,
    track_ids: Sequence[int] | None = None,
) -> VideoResult:
    """A copy of ``result`` whose (selected) tracks are smoothed and their meshes recomputed.

    Uses :func:`pare_studio.pipeline.smoothing.smooth_track` (``smpl`` = ``core.smpl.SmplBody``);
    tracks not selected are left out of the copy.
    """
    from pare_studio.pipeline.smoothing import smooth_track

    tracks = select_tracks(result, track_ids)
    return VideoResult(
        tracks={t.track_id: smooth_track(t, smpl, method, min_cutoff, beta) for t in tracks},
        n_frames=result.n_frames,
        width=result.width,
        height=result.height,
        fps=result.fps,
        source=result.source,
    )


def export_result(
    result: VideoResult,
    fmt: str,
    out: str | os.PathLike[str],
    *,
    track_ids: Sequence[int] | None = None,
    options: ExportOptions | None = None,
    format_options: FormatOptions | None = None,
    rig: SmplRig | None = None,
) -> list[Path]:
    """Export the selected tracks of ``result`` as ``fmt`` to ``out``.

    Parameters
    ----------
    result : the (edited, possibly smoothed) tracks — e.g. ``EditState.to_result()``.
    fmt : one of :data:`FORMATS`.
    out : output file (folder for "obj").
    track_ids : tracks to export (None = all of ``result``).
    options : :class:`ExportOptions` (world frame, translation, fps, body shape).
    format_options : :class:`FormatOptions`.
    rig : the SMPL rig, required for :data:`NEEDS_RIG`.

    Returns
    -------
    The written files.

    Raises
    ------
    TrackEditError
        An unknown track id / nothing to export.
    OutputError
        The output cannot be written.
    ValueError
        Unknown format, or a rig-needing format without a rig.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt in NEEDS_RIG and rig is None:
        raise ValueError(f"the {fmt} export needs the SMPL model (rig)")
    options = options or ExportOptions()
    fo = format_options or FormatOptions()
    if fmt == "bvh":
        from pare_studio.export.bvh import export_bvh

        return export_bvh(result, out, rig, options, track_ids, scale=fo.bvh_scale)  # type: ignore[arg-type]
    if fmt == "glb":
        from pare_studio.export.gltf import export_glb

        return export_glb(
            result,
            out,
            rig,  # type: ignore[arg-type]
            options,
            track_ids,
            max_influences=fo.max_influences,
            pose_blendshapes=fo.pose_blendshapes,
            hide_absent=fo.hide_absent,
        )
    if fmt == "npz":
        from pare_studio.export.npz import export_npz

        return export_npz(result, out, options, track_ids)
    if fmt == "obj":
        from pare_studio.export.obj import export_obj

        return export_obj(result, out, rig.faces, options, track_ids)  # type: ignore[union-attr]
    from pare_studio.pipeline.pkl_io import save_pare_output

    tracks = select_tracks(result, track_ids)
    subset = VideoResult(
        tracks={t.track_id: t for t in tracks},
        n_frames=result.n_frames,
        width=result.width,
        height=result.height,
        fps=result.fps,
        source=result.source,
    )
    return [save_pare_output(out, subset)]
