"""What the 3D viewport draws while the occlusion panel is active (no Qt, no GL).

The panel's newest probe replaces the probed person's mesh in the scene snapshot by the
*occluded* prediction (placed with its own camera), and adds a *ghost*: the unoccluded prediction
of the same crop, drawn semi-transparent behind it (:mod:`pare_studio.gui.vispy_ghost`). Both are
the network's outputs for the same crop, so what differs between them is the occluder's effect.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from pare_studio.gui.mesh_snapshot import SceneSnapshot, TrackDraw
from pare_studio.gui.occlusion_probe import ProbeReply

#: Colour of the unoccluded ghost, RGBA (its alpha is the ghost's opacity).
GHOST_COLOR = (0.85, 0.85, 0.9, 0.35)


@dataclass(frozen=True)
class OcclusionSnapshot(SceneSnapshot):
    """A :class:`SceneSnapshot` with ghost meshes (drawn translucent, never in the 2D overlay).

    ghosts : the unoccluded meshes, one :class:`TrackDraw` each (``color`` alpha = opacity).
    """

    ghosts: tuple[TrackDraw, ...] = ()


def with_occlusion(snap: SceneSnapshot, reply: ProbeReply | None) -> SceneSnapshot:
    """``snap`` with the probed person's mesh replaced by the occluded one, plus its ghost.

    Unchanged when there is no successful reply, or it belongs to another frame, or the person
    is not drawn (hidden). Vertices are the PARE outputs (6890, 3) float32 metres, SMPL frame;
    cameras are the reply's frame cameras (:func:`occlusion_probe.frame_camera`).
    """
    if (
        reply is None
        or reply.result is None
        or reply.orig_cam is None
        or reply.baseline_orig_cam is None
    ):
        return snap
    if snap.frame != reply.key.frame:
        return snap
    tid = reply.key.track_id
    out = reply.result.output
    base = reply.result.baseline.output
    tracks: list[TrackDraw] = []
    ghosts: list[TrackDraw] = []
    for d in snap.tracks:
        if d.track_id == tid:
            ghosts.append(
                replace(
                    d,
                    verts=base.smpl_vertices[0],
                    joints=None,
                    orig_cam=reply.baseline_orig_cam,
                    color=GHOST_COLOR,
                    in_3d=True,
                )
            )
            d = replace(
                d,
                verts=out.smpl_vertices[0],
                orig_cam=reply.orig_cam,
                in_3d=True,
                joints=None if d.joints is None else out.smpl_joints3d[0],
            )
        tracks.append(d)
    if not ghosts:
        return snap
    values = {f.name: getattr(snap, f.name) for f in fields(SceneSnapshot)}
    values["tracks"] = tuple(tracks)
    if "raw_ghosts" in values:  # smoothing's raw body of the probed person would be a 2nd ghost
        values["raw_ghosts"] = tuple(g for g in values["raw_ghosts"] if g.track_id != tid)
    return OcclusionSnapshot(**values, ghosts=tuple(ghosts))
