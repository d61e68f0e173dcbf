"""A small glTF 2.0 evaluator for the tests, written from the glTF specification only.

It reads a ``.glb`` with pygltflib, decodes accessors, samples the animation (LINEAR with slerp
for rotations, STEP), composes node transforms and applies morph targets and skinning exactly as
the specification prescribes::

    jointMatrix_k = inverse(globalTransform(mesh node)) · globalTransform(joint_k) · IBM_k
    skinMatrix    = Σ_s Σ_c WEIGHTS_s[c] · jointMatrix[JOINTS_s[c]]
    position      = skinMatrix · (POSITION + Σ_i weight_i · target_i.POSITION)

Nothing here uses PARE Studio's exporter code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pygltflib

_DTYPES = {5126: "<f4", 5121: "u1", 5123: "<u2", 5125: "<u4", 5120: "i1", 5122: "<i2"}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


def load(path: Path) -> pygltflib.GLTF2:
    return pygltflib.GLTF2.load(str(path))


def accessor(g: pygltflib.GLTF2, index: int) -> np.ndarray:
    """(count, width) array of an accessor (tightly packed views only, as we write)."""
    acc = g.accessors[index]
    view = g.bufferViews[acc.bufferView]
    assert view.byteStride in (None, 0), "strided views are not used by the exporter"
    width = _WIDTH[acc.type]
    dtype = np.dtype(_DTYPES[acc.componentType])
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    assert start % dtype.itemsize == 0, "accessor not aligned to its component size"
    assert (acc.byteOffset or 0) + acc.count * width * dtype.itemsize <= view.byteLength
    blob = g.binary_blob()
    assert view.byteOffset + view.byteLength <= len(blob)
    return np.frombuffer(blob, dtype, count=acc.count * width, offset=start).reshape(
        acc.count, width
    )


def quat_matrix(q: np.ndarray) -> np.ndarray:
    """3×3 rotation of a unit quaternion (x, y, z, w)."""
    x, y, z, w = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    d = float(np.dot(a, b))
    if d < 0:
        b, d = -b, -d
    if d > 0.9995:
        q = a + t * (b - a)
        return q / np.linalg.norm(q)
    th = np.arccos(d)
    return (np.sin((1 - t) * th) * a + np.sin(t * th) * b) / np.sin(th)


def sample(
    g: pygltflib.GLTF2, time: float, animation: int = 0
) -> dict[tuple[int, str], np.ndarray]:
    """``{(node, path): value}`` of every channel at ``time`` seconds."""
    anim = g.animations[animation]
    out = {}
    for ch in anim.channels:
        s = anim.samplers[ch.sampler]
        times = accessor(g, s.input)[:, 0].astype(np.float64)
        values = accessor(g, s.output).astype(np.float64)
        per_key = values.reshape(len(times), -1)
        if time <= times[0]:
            v = per_key[0]
        elif time >= times[-1]:
            v = per_key[-1]
        else:
            i = int(np.searchsorted(times, time, side="right")) - 1
            if s.interpolation == "STEP":
                v = per_key[i]
            else:
                assert s.interpolation == "LINEAR"
                u = (time - times[i]) / (times[i + 1] - times[i])
                if ch.target.path == "rotation":
                    v = _slerp(per_key[i], per_key[i + 1], u)
                else:
                    v = (1 - u) * per_key[i] + u * per_key[i + 1]
        out[(ch.target.node, ch.target.path)] = v
    return out


def local_matrix(node: Any, anim: dict[tuple[int, str], np.ndarray], index: int) -> np.ndarray:
    if node.matrix is not None:
        return np.asarray(node.matrix, np.float64).reshape(4, 4).T  # column-major
    t = anim.get((index, "translation"), np.asarray(node.translation or [0, 0, 0], np.float64))
    r = anim.get((index, "rotation"), np.asarray(node.rotation or [0, 0, 0, 1], np.float64))
    s = anim.get((index, "scale"), np.asarray(node.scale or [1, 1, 1], np.float64))
    m = np.eye(4)
    m[:3, :3] = quat_matrix(r) @ np.diag(s)
    m[:3, 3] = t
    return m


def global_matrices(
    g: pygltflib.GLTF2, anim: dict[tuple[int, str], np.ndarray]
) -> list[np.ndarray]:
    """World matrix of every node (animated values where given)."""
    parent = {c: i for i, n in enumerate(g.nodes) for c in (n.children or [])}
    cache: dict[int, np.ndarray] = {}

    def world(i: int) -> np.ndarray:
        if i not in cache:
            local = local_matrix(g.nodes[i], anim, i)
            cache[i] = world(parent[i]) @ local if i in parent else local
        return cache[i]

    return [world(i) for i in range(len(g.nodes))]


def skinned_positions(g: pygltflib.GLTF2, mesh_node: int, time: float | None) -> np.ndarray:
    """(V, 3) float64 positions of a skinned mesh node at ``time`` (None = bind pose)."""
    anim = sample(g, time) if time is not None else {}
    node = g.nodes[mesh_node]
    prim = g.meshes[node.mesh].primitives[0]
    attrs = prim.attributes
    pos = accessor(g, attrs.POSITION).astype(np.float64)
    targets = prim.targets or []
    if targets:
        weights = anim.get(
            (mesh_node, "weights"), np.asarray(g.meshes[node.mesh].weights or [0.0] * len(targets))
        )
        for w, tgt in zip(weights, targets, strict=True):
            pos = pos + w * accessor(g, tgt["POSITION"]).astype(np.float64)
    mats = global_matrices(g, anim)
    skin = g.skins[node.skin]
    ibm = (
        accessor(g, skin.inverseBindMatrices)
        .astype(np.float64)
        .reshape(-1, 4, 4)
        .transpose(0, 2, 1)
    )
    inv_mesh = np.linalg.inv(mats[mesh_node])
    joint_mats = np.stack([inv_mesh @ mats[j] @ ibm[k] for k, j in enumerate(skin.joints)])
    skin_mat = np.zeros((len(pos), 4, 4))
    s = 0
    while getattr(attrs, f"JOINTS_{s}", None) is not None:
        joints = accessor(g, getattr(attrs, f"JOINTS_{s}")).astype(np.int64)
        weights = accessor(g, getattr(attrs, f"WEIGHTS_{s}")).astype(np.float64)
        for c in range(4):
            skin_mat += weights[:, c, None, None] * joint_mats[joints[:, c]]
        s += 1
    homo = np.concatenate([pos, np.ones((len(pos), 1))], axis=1)
    return np.einsum("vij,vj->vi", skin_mat, homo)[:, :3]


def influence_sets(g: pygltflib.GLTF2, mesh_node: int) -> int:
    attrs = g.meshes[g.nodes[mesh_node].mesh].primitives[0].attributes
    s = 0
    while getattr(attrs, f"JOINTS_{s}", None) is not None:
        s += 1
    return s
