"""Binary glTF 2.0 (``.glb``) export: skinned SMPL meshes, their skeletons and one animation.

One file holds every exported track (one person each), so the people stay in sync:

* per track, two scene root nodes: the skinned mesh node ``track_<id>_body`` (at the root, as
  glTF recommends for skinned meshes) and the skeleton's root joint ``pelvis``; the 24 joint
  nodes carry the SMPL joint names (``pelvis``, ``left_hip``, ...) and form SMPL's kinematic
  tree;
* the mesh is SMPL's, with the track's body shape applied (rest vertices
  ``v_template + shapedirs·β`` for the track's mean betas, or its first frame's — see
  :mod:`pare_studio.export.common`), smooth vertex normals, SMPL's skinning weights
  (``JOINTS_0/WEIGHTS_0``, plus ``JOINTS_1/WEIGHTS_1``... when a vertex has more than four
  influences; ``max_influences`` truncates and renormalises for viewers that read one set);
* the skin's inverse bind matrices are ``T(−J_k)`` (bind pose = SMPL's rest pose, every joint
  frame aligned with the world, the joint at its rest position ``J_k``);
* one animation ``motion`` with, per track, a LINEAR rotation sampler per joint (unit
  quaternions, SMPL's local rotations; the root's is its world orientation) and a LINEAR
  translation sampler on the root joint (its world position); key times are the video times
  ``frame_id / fps``, so every file lines up with the video;
* with ``hide_absent`` (default), a STEP scale sampler on the root joint shrinks the body to a
  point on the video frames where its track is absent (before, after and in gaps);
* when the root translation was estimated, a perspective camera at the origin with the assumed
  field of view (:mod:`pare_studio.export.translation`) shows the scene as the video did.

Skinning versus SMPL
    A glTF viewer computes ``v = Σ_k w_k · G_k · IBM_k · v_rest`` — SMPL's linear blend
    skinning. SMPL also adds pose-dependent corrective offsets (``posedirs``) *before*
    skinning. By default they are left out: the file then reproduces SMPL **without pose blend
    shapes** exactly (float32 precision); the difference to PARE's mesh is a few millimetres,
    largest at bent elbows and knees. ``pose_blendshapes=True`` adds them as 207 morph targets
    (``posedirs[:, :, i]``, applied before skinning as glTF prescribes) animated with the
    weights ``vec(R_k − I)``: the file then reproduces SMPL's mesh exactly, at the cost of
    ~17 MB and of viewers that support that many morph targets (Blender does; many web viewers
    apply only the first 4 or 8).

World: y up, camera at the origin looking down −z, metres (``upright=True``; see
:mod:`pare_studio.export.common`).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pare_studio import __version__
from pare_studio.atomic import write_bytes_atomic
from pare_studio.core.constants import SMPL_JOINT_NAMES
from pare_studio.export.common import (
    ExportOptions,
    PreparedTrack,
    prepare_track,
    select_tracks,
)
from pare_studio.export.rig import SmplRig, pose_feature
from pare_studio.export.translation import CameraIntrinsics
from pare_studio.results import VideoResult

# glTF component types and buffer-view targets.
FLOAT = 5126
UNSIGNED_BYTE = 5121
UNSIGNED_SHORT = 5123
UNSIGNED_INT = 5125
ARRAY_BUFFER = 34962
ELEMENT_ARRAY_BUFFER = 34963

_GLB_MAGIC = b"glTF"
_CHUNK_JSON = 0x4E4F534A
_CHUNK_BIN = 0x004E4942

_TYPES = {1: "SCALAR", 2: "VEC2", 3: "VEC3", 4: "VEC4", 16: "MAT4"}


class _Buffer:
    """The binary chunk and the accessors / buffer views describing it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[dict[str, Any]] = []
        self.accessors: list[dict[str, Any]] = []

    def add(
        self,
        array: np.ndarray,
        component: int,
        target: int | None = None,
        minmax: bool = False,
        name: str | None = None,
    ) -> int:
        """Append ``array`` (count, width) or (count,) as one accessor; returns its index."""
        dtype = {FLOAT: "<f4", UNSIGNED_BYTE: "u1", UNSIGNED_SHORT: "<u2", UNSIGNED_INT: "<u4"}
        arr = np.ascontiguousarray(array, dtype=dtype[component])
        width = 1 if arr.ndim == 1 else int(np.prod(arr.shape[1:]))
        flat = arr.reshape(arr.shape[0], width)
        while len(self.data) % 4:
            self.data.append(0)
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.data), "byteLength": arr.nbytes}
        if target is not None:
            view["target"] = target
        self.data.extend(arr.tobytes())
        self.views.append(view)
        acc: dict[str, Any] = {
            "bufferView": len(self.views) - 1,
            "componentType": component,
            "count": int(arr.shape[0]),
            "type": _TYPES[width],
        }
        if minmax:
            acc["min"] = [float(v) for v in flat.min(axis=0)]
            acc["max"] = [float(v) for v in flat.max(axis=0)]
        if name:
            acc["name"] = name
        self.accessors.append(acc)
        return len(self.accessors) - 1

    def padded(self) -> bytes:
        while len(self.data) % 4:
            self.data.append(0)
        return bytes(self.data)


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V, 3) float64 unit area-weighted vertex normals (``+y`` for an unused vertex)."""
    v = np.asarray(verts, np.float64)
    f = np.asarray(faces, np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for c in range(3):
        np.add.at(n, f[:, c], fn)
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    out = np.where(norm > 0, n / np.where(norm > 0, norm, 1.0), np.array([0.0, 1.0, 0.0]))
    return out


def skin_influences(
    weights: np.ndarray, max_influences: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """SMPL weights as glTF ``(JOINTS_i, WEIGHTS_i)`` sets of four.

    Parameters
    ----------
    weights : (V, 24) skinning weights, rows sum to 1.
    max_influences : keep at most this many largest weights per vertex and renormalise;
        None keeps every non-zero weight (exact skinning).

    Returns
    -------
    ``[(joints (V, 4) uint8, weights (V, 4) float32), ...]``, as many sets as needed; unused
    slots have joint 0 and weight 0.
    """
    w = np.asarray(weights, np.float64)
    order = np.argsort(-w, axis=1, kind="stable")
    sorted_w = np.take_along_axis(w, order, axis=1)
    k = int((sorted_w > 0).sum(axis=1).max())
    if max_influences is not None:
        if max_influences < 1:
            raise ValueError(f"max_influences must be >= 1, got {max_influences}")
        k = min(k, int(max_influences))
    k = max(k, 1)
    sorted_w = sorted_w[:, :k].copy()
    order = order[:, :k].copy()
    sorted_w /= sorted_w.sum(axis=1, keepdims=True)
    order[sorted_w <= 0] = 0
    sets = math.ceil(k / 4)
    pad = sets * 4 - k
    sorted_w = np.pad(sorted_w, ((0, 0), (0, pad)))
    order = np.pad(order, ((0, 0), (0, pad)))
    return [
        (
            order[:, 4 * s : 4 * s + 4].astype(np.uint8),
            sorted_w[:, 4 * s : 4 * s + 4].astype(np.float32),
        )
        for s in range(sets)
    ]


def _quaternions(rotations: np.ndarray) -> np.ndarray:
    """(n, 4) xyzw unit quaternions of (n, 3, 3) rotations, signs continuous along n."""
    from scipy.spatial.transform import Rotation

    q = Rotation.from_matrix(rotations).as_quat()
    for i in range(1, len(q)):
        if np.dot(q[i], q[i - 1]) < 0:
            q[i] = -q[i]
    return q


def _presence_keys(
    frame_ids: np.ndarray, n_video_frames: int, fps: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """STEP keys (times, scale 0/1) for the frames where a track is present, or None when it is
    present on every video frame. A body appears half a frame before its first frame of a run
    and vanishes half a frame after its last."""
    f = np.asarray(frame_ids, np.int64)
    if n_video_frames <= 0:
        n_video_frames = int(f[-1]) + 1
    if len(f) == n_video_frames and f[0] == 0 and f[-1] == n_video_frames - 1:
        return None
    times, values = [], []
    if f[0] > 0:
        times.append(0.0)
        values.append(0.0)
    breaks = np.flatnonzero(np.diff(f) > 1)
    starts = np.concatenate(([f[0]], f[breaks + 1]))
    ends = np.concatenate((f[breaks], [f[-1]]))
    for a, b in zip(starts, ends, strict=True):
        # keys half a frame before / after, so the frame times themselves are never on a step
        times.append(max(a - 0.5, 0.0) / fps)
        values.append(1.0)
        times.append((b + 0.5) / fps)
        values.append(0.0)
    return np.asarray(times), np.asarray(values)


def build_glb(
    tracks: Sequence[PreparedTrack],
    rig: SmplRig,
    camera: CameraIntrinsics | None = None,
    *,
    n_video_frames: int = 0,
    max_influences: int | None = None,
    pose_blendshapes: bool = False,
    hide_absent: bool = True,
) -> bytes:
    """The ``.glb`` bytes of prepared tracks (module docstring).

    Parameters
    ----------
    tracks : from :func:`~pare_studio.export.common.prepare_track` (gaps allowed).
    rig : the SMPL rig (faces, weights, shape and pose blend shapes).
    camera : the assumed camera, added as a glTF camera at the origin; None = no camera.
    n_video_frames : the video's frame count (for ``hide_absent``; 0 = last frame of a track).
    max_influences : None = every non-zero skinning weight (exact); e.g. 4 = one set.
    pose_blendshapes : add SMPL's pose correctives as morph targets (module docstring).
    hide_absent : scale a body to 0 on the frames where its track is absent.
    """
    if not tracks:
        raise ValueError("build_glb needs at least one track")
    buf = _Buffer()
    nodes: list[dict[str, Any]] = []
    meshes: list[dict[str, Any]] = []
    skins: list[dict[str, Any]] = []
    channels: list[dict[str, Any]] = []
    samplers: list[dict[str, Any]] = []
    scene_nodes: list[int] = []
    faces = np.asarray(rig.faces)
    index_type = UNSIGNED_SHORT if len(rig.v_template) < 65535 else UNSIGNED_INT
    indices = buf.add(faces.reshape(-1), index_type, ELEMENT_ARRAY_BUFFER, name="faces")
    influence_acc = [
        (
            buf.add(j, UNSIGNED_BYTE, ARRAY_BUFFER, name=f"joints_{s}"),
            buf.add(w, FLOAT, ARRAY_BUFFER, name=f"weights_{s}"),
        )
        for s, (j, w) in enumerate(skin_influences(rig.weights, max_influences))
    ]
    targets: list[dict[str, int]] = []
    if pose_blendshapes:
        for i in range(rig.posedirs.shape[2]):
            acc = buf.add(rig.posedirs[:, :, i], FLOAT, ARRAY_BUFFER, minmax=True)
            targets.append({"POSITION": acc})
    parents = [int(p) for p in rig.parents]
    info = []
    for tr in tracks:
        v_rest = rig.shaped_vertices(tr.betas)
        joints = tr.rest_joints
        attributes: dict[str, int] = {
            "POSITION": buf.add(
                v_rest, FLOAT, ARRAY_BUFFER, minmax=True, name=f"track_{tr.track_id}_rest"
            ),
            "NORMAL": buf.add(vertex_normals(v_rest, faces), FLOAT, ARRAY_BUFFER),
        }
        for s, (ja, wa) in enumerate(influence_acc):
            attributes[f"JOINTS_{s}"] = ja
            attributes[f"WEIGHTS_{s}"] = wa
        primitive: dict[str, Any] = {"attributes": attributes, "indices": indices, "mode": 4}
        mesh: dict[str, Any] = {"name": f"track_{tr.track_id}_smpl", "primitives": [primitive]}
        if targets:
            primitive["targets"] = targets
            mesh["weights"] = [0.0] * len(targets)
        meshes.append(mesh)

        body = len(nodes)
        first_joint = body + 1
        joint_nodes = [first_joint + k for k in range(len(parents))]
        ibm = np.tile(np.eye(4), (len(parents), 1, 1))
        ibm[:, :3, 3] = -joints
        ibm_acc = buf.add(ibm.transpose(0, 2, 1).reshape(-1, 16), FLOAT)  # column-major
        skins.append(
            {
                "name": f"track_{tr.track_id}_skeleton",
                "inverseBindMatrices": ibm_acc,
                "joints": joint_nodes,
                "skeleton": joint_nodes[0],
            }
        )
        nodes.append(
            {"name": f"track_{tr.track_id}_body", "mesh": len(meshes) - 1, "skin": len(skins) - 1}
        )
        offsets = joints.copy()
        offsets[1:] -= joints[parents[1:]]
        for k in range(len(parents)):
            children = [joint_nodes[c] for c in range(len(parents)) if parents[c] == k]
            node: dict[str, Any] = {
                "name": SMPL_JOINT_NAMES[k],
                "translation": [float(x) for x in offsets[k]],
            }
            if children:
                node["children"] = children
            nodes.append(node)
        scene_nodes += [body, joint_nodes[0]]  # a skinned mesh node belongs at the scene root

        times = buf.add(tr.times, FLOAT, minmax=True, name=f"track_{tr.track_id}_times")

        def channel(
            node: int, path: str, output: int, input_acc: int = times, interp: str = "LINEAR"
        ) -> None:
            samplers.append({"input": input_acc, "output": output, "interpolation": interp})
            channels.append({"sampler": len(samplers) - 1, "target": {"node": node, "path": path}})

        for k in range(len(parents)):
            channel(joint_nodes[k], "rotation", buf.add(_quaternions(tr.rotations[:, k]), FLOAT))
        channel(joint_nodes[0], "translation", buf.add(tr.root_positions, FLOAT))
        if targets:
            feats = pose_feature(tr.rotations)  # root excluded: the feature uses joints 1..23
            channel(body, "weights", buf.add(feats.reshape(-1), FLOAT))
        if hide_absent:
            keys = _presence_keys(tr.frame_ids, n_video_frames, tr.fps)
            if keys is not None:
                t_acc = buf.add(keys[0], FLOAT, minmax=True)
                s_acc = buf.add(np.repeat(keys[1][:, None], 3, axis=1), FLOAT)
                channel(joint_nodes[0], "scale", s_acc, t_acc, "STEP")
        info.append(
            {
                "track_id": tr.track_id,
                "first_frame": int(tr.frame_ids[0]),
                "last_frame": int(tr.frame_ids[-1]),
                "frames": len(tr),
                "betas": [float(b) for b in tr.betas],
                "translation_estimated": bool(tr.translation_estimated),
            }
        )

    cameras = []
    if camera is not None:
        cameras.append(
            {
                "name": "video_camera",
                "type": "perspective",
                "perspective": {
                    "yfov": float(camera.yfov),
                    "aspectRatio": float(camera.aspect_ratio),
                    "znear": 0.01,
                },
            }
        )
        cam_node: dict[str, Any] = {"name": "video_camera", "camera": 0}
        if not np.allclose(tracks[0].world, np.diag([1.0, -1.0, -1.0])):
            cam_node["rotation"] = [1.0, 0.0, 0.0, 0.0]  # camera frame: turn the -z camera round
        nodes.append(cam_node)
        scene_nodes.append(len(nodes) - 1)

    data = buf.padded()
    doc: dict[str, Any] = {
        "asset": {"version": "2.0", "generator": f"PARE Studio {__version__}"},
        "scene": 0,
        "scenes": [
            {
                "name": "pare_studio",
                "nodes": scene_nodes,
                "extras": {
                    "fps": float(tracks[0].fps),
                    "units": "metres",
                    "world": "y up, camera at the origin looking down -z"
                    if np.allclose(tracks[0].world, np.diag([1.0, -1.0, -1.0]))
                    else "PARE camera frame: x right, y down, z forward",
                    "pose_blendshapes": bool(pose_blendshapes),
                    "tracks": info,
                },
            }
        ],
        "nodes": nodes,
        "meshes": meshes,
        "skins": skins,
        "animations": [{"name": "motion", "channels": channels, "samplers": samplers}],
        "accessors": buf.accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": len(data)}],
    }
    if cameras:
        doc["cameras"] = cameras
    return pack_glb(doc, data)


def pack_glb(doc: dict[str, Any], binary: bytes) -> bytes:
    """A GLB container: 12-byte header, JSON chunk (space-padded), BIN chunk (zero-padded)."""
    js = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    js += b" " * (-len(js) % 4)
    binary = binary + b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(js) + 8 + len(binary)
    return b"".join(
        (
            _GLB_MAGIC,
            struct.pack("<II", 2, total),
            struct.pack("<II", len(js), _CHUNK_JSON),
            js,
            struct.pack("<II", len(binary), _CHUNK_BIN),
            binary,
        )
    )


def export_glb(
    result: VideoResult,
    out: str | os.PathLike[str],
    rig: SmplRig,
    options: ExportOptions | None = None,
    track_ids: Sequence[int] | None = None,
    *,
    max_influences: int | None = None,
    pose_blendshapes: bool = False,
    hide_absent: bool = True,
) -> list[Path]:
    """Write the selected tracks into one ``.glb`` atomically (module docstring).

    Parameters
    ----------
    result : the (edited) tracks; ``fps`` / ``width`` / ``height`` / ``n_frames`` are used.
    out : output file. rig : the SMPL rig. options : :class:`ExportOptions`.
    track_ids : tracks to write (None = all).
    max_influences, pose_blendshapes, hide_absent : see :func:`build_glb`.

    Returns
    -------
    ``[out]``.
    """
    options = options or ExportOptions()
    tracks = select_tracks(result, track_ids)
    fps = options.resolve_fps(result)
    camera = options.camera(result)
    prepared = [prepare_track(t, rig, options, fps, camera) for t in tracks]
    if not any(p.translation_estimated for p in prepared):
        camera = None
    data = build_glb(
        prepared,
        rig,
        camera,
        n_video_frames=int(result.n_frames),
        max_influences=max_influences,
        pose_blendshapes=pose_blendshapes,
        hide_absent=hide_absent,
    )
    return [write_bytes_atomic(out, data)]
