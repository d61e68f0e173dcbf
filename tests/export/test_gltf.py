"""glTF export: the file validates and its skinning reproduces SMPL (LBS and, with morph
targets, the full SMPL mesh) at the exported frames."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pare_studio.core.constants import SMPL_JOINT_NAMES, SMPL_PARENTS
from pare_studio.export.common import ExportOptions
from pare_studio.export.gltf import export_glb, skin_influences
from pare_studio.export.rig import skin
from tests.export import gltf_eval
from tests.export.expect import U, camera_translation, exact, rest_joints, smpl_vertices


def _body_nodes(g) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """{track id: mesh node index} from the scene extras and node names."""
    ids = [t["track_id"] for t in g.scenes[0].extras["tracks"]]
    names = {n.name: i for i, n in enumerate(g.nodes)}
    return {t: names[f"track_{t}_body"] for t in ids}


@pytest.fixture(scope="module")
def glb(tmp_path_factory: pytest.TempPathFactory, result, rig) -> Path:  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("glb") / "scene.glb"
    assert export_glb(result, out, rig) == [out]
    return out


def test_glb_structure_is_consistent(glb: Path, result, smpl_arrays) -> None:  # type: ignore[no-untyped-def]
    g = gltf_eval.load(glb)
    assert g.asset.version == "2.0"
    assert len(g.skins) == len(g.meshes) == 2
    bodies = _body_nodes(g)
    assert sorted(bodies) == [1, 2]
    roots = set(g.scenes[g.scene].nodes)
    assert set(bodies.values()) <= roots  # skinned meshes at the scene root
    for tid, mesh_node in bodies.items():
        node = g.nodes[mesh_node]
        skin_ = g.skins[node.skin]
        # 24 distinct joint nodes named and parented as SMPL's tree
        assert len(skin_.joints) == len(set(skin_.joints)) == 24
        assert [g.nodes[j].name for j in skin_.joints] == list(SMPL_JOINT_NAMES)
        parent_of = {c: i for i, n in enumerate(g.nodes) for c in (n.children or [])}
        for k in range(1, 24):
            assert parent_of[skin_.joints[k]] == skin_.joints[SMPL_PARENTS[k]]
        assert skin_.skeleton == skin_.joints[0]
        # inverse bind matrices: 24 MAT4, each the inverse of the joint's rest world matrix,
        # which sits at the rest joint of the track's mean betas
        acc = g.accessors[skin_.inverseBindMatrices]
        assert (acc.type, acc.count, acc.componentType) == ("MAT4", 24, 5126)
        ibm = gltf_eval.accessor(g, skin_.inverseBindMatrices).reshape(24, 4, 4).transpose(0, 2, 1)
        rest = gltf_eval.global_matrices(g, {})
        betas = result.tracks[tid].betas.astype(np.float64).mean(axis=0)
        want_joints = rest_joints(smpl_arrays, betas)
        for k, j in enumerate(skin_.joints):
            np.testing.assert_allclose(rest[j] @ ibm[k], np.eye(4), atol=1e-5)
            np.testing.assert_allclose(rest[j][:3, 3], want_joints[k], atol=1e-5)
            np.testing.assert_allclose(rest[j][:3, :3], np.eye(3), atol=1e-7)
        # mesh: the SMPL faces, weights summing to 1, rest vertices = shaped template
        prim = g.meshes[node.mesh].primitives[0]
        faces = gltf_eval.accessor(g, prim.indices).reshape(-1, 3)
        np.testing.assert_array_equal(faces, smpl_arrays["f"])
        total = sum(
            gltf_eval.accessor(g, getattr(prim.attributes, f"WEIGHTS_{s}")).sum(axis=1)
            for s in range(gltf_eval.influence_sets(g, mesh_node))
        )
        np.testing.assert_allclose(total, 1.0, atol=1e-6)
        pos = gltf_eval.accessor(g, prim.attributes.POSITION)
        want_v = smpl_arrays["v_template"] + np.einsum("vck,k->vc", smpl_arrays["shapedirs"], betas)
        np.testing.assert_allclose(pos, want_v, atol=1e-5)
        pacc = g.accessors[prim.attributes.POSITION]
        np.testing.assert_allclose(pacc.min, pos.min(axis=0), atol=1e-6)
        np.testing.assert_allclose(pacc.max, pos.max(axis=0), atol=1e-6)
        normals = gltf_eval.accessor(g, prim.attributes.NORMAL)
        np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-5)

    # animation: one rotation sampler per joint, a translation on each root, inputs = video times
    anim = g.animations[0]
    by_target = {}
    for ch in anim.channels:
        key = (ch.target.node, ch.target.path)
        assert key not in by_target, f"two channels animate {key}"
        by_target[key] = anim.samplers[ch.sampler]
    for tid, mesh_node in bodies.items():
        joints = g.skins[g.nodes[mesh_node].skin].joints
        frames = result.tracks[tid].frame_ids
        for k, j in enumerate(joints):
            s = by_target[(j, "rotation")]
            times = gltf_eval.accessor(g, s.input)[:, 0]
            np.testing.assert_allclose(times, frames / result.fps, rtol=1e-6)
            assert g.accessors[s.input].min == pytest.approx([times.min()])
            assert g.accessors[s.input].max == pytest.approx([times.max()])
            q = gltf_eval.accessor(g, s.output)
            assert q.shape == (len(frames), 4) and s.interpolation == "LINEAR"
            np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
            assert np.all(np.sum(q[1:] * q[:-1], axis=1) >= 0), "quaternion signs jump"
            if k == 0:
                t = by_target[(j, "translation")]
                assert t.input == s.input and gltf_eval.accessor(g, t.output).shape == (
                    len(frames),
                    3,
                )
            else:
                assert (j, "translation") not in by_target
    # the assumed camera: 60° horizontal field of view of a 640x360 video
    assert len(g.cameras) == 1
    cam = g.cameras[0].perspective
    f = 320 / np.tan(np.radians(30))
    assert cam.yfov == pytest.approx(2 * np.arctan(180 / f))
    assert cam.aspectRatio == pytest.approx(640 / 360)


def test_glb_skinning_matches_smpl_lbs(glb: Path, result, smpl_body_lbs) -> None:  # type: ignore[no-untyped-def]
    """Vertices skinned from the file = SMPL without pose blend shapes, placed in the world."""
    g = gltf_eval.load(glb)
    for tid, mesh_node in _body_nodes(g).items():
        tr = result.tracks[tid]
        betas = tr.betas.astype(np.float64).mean(axis=0)
        rows = [0, len(tr) // 2, len(tr) - 1]
        smpl = smpl_vertices(smpl_body_lbs, tr.pose[rows], betas)
        trans = camera_translation(tr.orig_cam[rows], result.width)
        for i, row in enumerate(rows):
            got = gltf_eval.skinned_positions(g, mesh_node, float(tr.frame_ids[row] / result.fps))
            want = (smpl[i] + trans[i]) @ U.T
            err = np.abs(got - want).max()
            assert err < 1e-4, f"track {tid} frame {tr.frame_ids[row]}: {err:.2e} m"


def test_glb_morph_targets_reproduce_the_full_smpl_mesh(
    tmp_path: Path, result, rig, smpl_body
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "exact.glb"
    opts = ExportOptions(upright=False, translation=False)
    export_glb(result, out, rig, opts, track_ids=[2], pose_blendshapes=True)
    g = gltf_eval.load(out)
    (mesh_node,) = _body_nodes(g).values()
    assert len(g.meshes[0].primitives[0].targets) == 207
    assert not g.cameras  # no translation, no camera
    tr = result.tracks[2]
    betas = tr.betas.astype(np.float64).mean(axis=0)
    row = 5
    want = smpl_vertices(smpl_body, tr.pose[[row]], betas)[0]  # camera frame, no translation
    got = gltf_eval.skinned_positions(g, mesh_node, float(tr.frame_ids[row] / result.fps))
    assert np.abs(got - want).max() < 1e-4
    # the track's own vertices use per-frame betas: equal when the betas are the frame's
    out2 = tmp_path / "first.glb"
    one = dataclasses.replace(result, tracks={2: tr})
    export_glb(one, out2, rig, dataclasses.replace(opts, betas="first"), pose_blendshapes=True)
    g2 = gltf_eval.load(out2)
    got2 = gltf_eval.skinned_positions(g2, _body_nodes(g2)[2], float(tr.frame_ids[0] / result.fps))
    assert np.abs(got2 - tr.verts[0]).max() < 1e-4


def test_glb_hides_bodies_where_their_track_is_absent(glb: Path, result) -> None:  # type: ignore[no-untyped-def]
    g = gltf_eval.load(glb)
    for tid, mesh_node in _body_nodes(g).items():
        root = g.skins[g.nodes[mesh_node].skin].joints[0]
        present = set(result.tracks[tid].frame_ids.tolist())
        for f in range(result.n_frames):
            for t in (f / result.fps, (f + 0.3) / result.fps, (f - 0.3) / result.fps):
                scale = gltf_eval.sample(g, t)[(root, "scale")]
                assert np.all(scale == (1.0 if f in present else 0.0)), (tid, f, t)


def test_skin_influences_keep_every_weight_or_truncate(rig) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    w = rig.weights + (rng.uniform(size=rig.weights.shape) < 0.2) * 0.05  # up to ~8 influences
    w /= w.sum(axis=1, keepdims=True)
    dense = dataclasses.replace(rig, weights=w)
    sets = skin_influences(w)
    k = int((w > 0).sum(axis=1).max())
    assert len(sets) == -(-k // 4) >= 2
    rebuilt = np.zeros_like(w)
    for joints, weights in sets:
        for c in range(4):
            np.add.at(rebuilt, (np.arange(len(w)), joints[:, c].astype(int)), weights[:, c])
    np.testing.assert_allclose(rebuilt, w, atol=1e-7)
    (one,) = skin_influences(w, max_influences=4)
    np.testing.assert_allclose(one[1].sum(axis=1), 1.0, atol=1e-6)
    top4 = np.sort(w, axis=1)[:, ::-1][:, :4]
    np.testing.assert_allclose(one[1], top4 / top4.sum(axis=1, keepdims=True), atol=1e-6)
    # a multi-set file skins exactly like the rig's own LBS
    from pare_studio.export.common import prepare_track
    from pare_studio.export.gltf import build_glb

    pose = exact(_random_rotations(rng, 2))
    prepared = prepare_track(
        _pose_only_track(pose), dense, ExportOptions(upright=False, translation=False), 30.0, None
    )
    data = build_glb([prepared], dense, None, hide_absent=False)
    g = pygltflib_from_bytes(data)
    mesh_node = _body_nodes(g)[7]
    assert gltf_eval.influence_sets(g, mesh_node) == len(sets)
    got = gltf_eval.skinned_positions(g, mesh_node, 1 / 30.0)
    want = skin(dense, pose[[1]], np.zeros(10), pose_blendshapes=False)[0]
    assert np.abs(got - want).max() < 1e-5


def _random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return (
        Rotation.from_rotvec(rng.normal(scale=0.6, size=(n * 24, 3)))
        .as_matrix()
        .reshape(n, 24, 3, 3)
    )


def _pose_only_track(pose: np.ndarray):  # type: ignore[no-untyped-def]
    from pare_studio.results import TrackResult

    n = len(pose)
    return TrackResult(
        track_id=7,
        pred_cam=np.ones((n, 3), np.float32),
        orig_cam=np.ones((n, 4)),
        verts=np.zeros((n, 6890, 3), np.float32),
        pose=pose.astype(np.float32),
        betas=np.zeros((n, 10), np.float32),
        joints3d=np.zeros((n, 49, 3), np.float32),
        joints2d=None,
        smpl_joints2d=np.zeros((n, 49, 2), np.float32),
        bboxes=np.ones((n, 4)),
        frame_ids=np.arange(n, dtype=np.int64),
    )


def pygltflib_from_bytes(data: bytes):  # type: ignore[no-untyped-def]
    import pygltflib

    return pygltflib.GLTF2.load_from_bytes(data)
