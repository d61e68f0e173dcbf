"""OBJ sequence export: one Wavefront OBJ file per frame of each track.

Layout: ``OUT/track_<id>/frame_<video frame, 6 digits>.obj`` (one folder per track, so
sequence importers such as Blender's Stop-motion-OBJ or MeshSequenceCache read a folder as one
animation). Each file holds the 6890 vertices (``v x y z``, metres, 6 decimals) and the SMPL
triangles (``f a b c``, 1-based) — PARE's own mesh of that frame (the pkl's ``verts``, pose
blend shapes included; recomputed when the export smooths), in the export world of
:mod:`pare_studio.export.common`: ``U·(verts + T)``. Every file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pare_studio.atomic import prepare_folder, write_text_atomic
from pare_studio.export.common import ExportOptions, select_tracks
from pare_studio.export.translation import root_translation
from pare_studio.results import TrackResult, VideoResult


def faces_text(faces: np.ndarray) -> str:
    """``f a b c`` lines (1-based) of (F, 3) triangles."""
    f = np.asarray(faces, np.int64) + 1
    return ("f %d %d %d\n" * len(f)) % tuple(f.ravel())


def obj_text(verts: np.ndarray, faces_block: str, comment: str = "") -> str:
    """One OBJ file: optional ``#`` comment line, vertices, then the prepared faces block."""
    v = np.asarray(verts, np.float64)
    head = f"# {comment}\n" if comment else ""
    return head + ("v %.6f %.6f %.6f\n" * len(v)) % tuple(v.ravel()) + faces_block


def world_vertices(
    track: TrackResult, row: int, world: np.ndarray, trans: np.ndarray
) -> np.ndarray:
    """(6890, 3) float64 ``U·(verts[row] + T[row])`` (``trans`` (n, 3) camera frame)."""
    v = np.asarray(track.verts[row], np.float64) + trans[row]
    return v @ world.T


def export_obj(
    result: VideoResult,
    out: str | os.PathLike[str],
    faces: np.ndarray,
    options: ExportOptions | None = None,
    track_ids: Sequence[int] | None = None,
) -> list[Path]:
    """Write OBJ sequences of the selected tracks under the folder ``out`` (module docstring).

    Parameters
    ----------
    result : the (edited) tracks. out : output folder (created).
    faces : (13776, 3) SMPL triangles (``SmplRig.faces`` / ``SmplBody.faces``).
    options : :class:`ExportOptions` (``upright``, ``translation`` and camera settings).
    track_ids : tracks to write (None = all).

    Returns
    -------
    Every written file, track by track, in frame order.
    """
    options = options or ExportOptions()
    tracks = select_tracks(result, track_ids)
    camera = options.camera(result)
    root = prepare_folder(Path(out), "OBJ output")
    block = faces_text(faces)
    world = options.world_rotation()
    written = []
    for track in tracks:
        folder = prepare_folder(root / f"track_{track.track_id}", "OBJ output")
        trans = root_translation(track, camera).trans
        for row, frame in enumerate(np.asarray(track.frame_ids)):
            path = folder / f"frame_{int(frame):06d}.obj"
            verts = world_vertices(track, row, world, trans)
            text = obj_text(verts, block, f"PARE Studio, track {track.track_id}, frame {frame}")
            written.append(write_text_atomic(path, text))
    return written
