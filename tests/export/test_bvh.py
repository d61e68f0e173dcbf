"""BVH export: parsed back, rotations, offsets and root positions are the ones exported."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from pare_studio.core.constants import SMPL_JOINT_NAMES, SMPL_PARENTS
from pare_studio.errors import ResultFileError
from pare_studio.export.bvh import export_bvh, parse_bvh, read_bvh
from pare_studio.export.common import ExportOptions
from tests.export.expect import U, angle_between, camera_translation, exact, rest_joints


def _smpl_order(data) -> list[int]:  # type: ignore[no-untyped-def]
    """File joint index of each SMPL joint."""
    return [data.names.index(n) for n in SMPL_JOINT_NAMES]


@pytest.mark.parametrize("upright", [True, False])
def test_bvh_round_trip_rotations_offsets_and_root(
    tmp_path: Path, result, rig, smpl_arrays, upright: bool
) -> None:  # type: ignore[no-untyped-def]
    tr = result.tracks[1]  # frames 0..9, no gap
    pose = tr.pose.copy()
    pose[2, 18] = Rotation.from_euler("x", 90, degrees=True).as_matrix()  # gimbal lock of ZXY
    pose[3, 5] = Rotation.from_rotvec([0, np.pi - 1e-7, 0]).as_matrix()  # angle ~ pi
    track = dataclasses.replace(tr, pose=pose)
    res = dataclasses.replace(result, tracks={1: track})
    (path,) = export_bvh(res, tmp_path / "t1.bvh", rig, ExportOptions(upright=upright))
    data = read_bvh(path)

    assert sorted(data.names) == sorted(SMPL_JOINT_NAMES)
    idx = _smpl_order(data)
    for k in range(1, 24):
        assert data.parents[idx[k]] == idx[SMPL_PARENTS[k]]
    assert data.motion.shape == (10, 6 + 23 * 3)
    assert data.frame_time == pytest.approx(1 / 25.0)

    rots = data.local_rotations()[:, idx]  # (n, 24, 3, 3) in SMPL order
    want = exact(pose)
    world = U if upright else np.eye(3)
    want[:, 0] = world @ want[:, 0]
    err = angle_between(rots, want)
    assert err.max() < 1e-4, f"max rotation error {err.max():.2e} rad"

    betas = tr.betas.astype(np.float64).mean(axis=0)
    joints = rest_joints(smpl_arrays, betas)
    np.testing.assert_allclose(data.offsets[idx[0]], 0.0)
    for k in range(1, 24):
        np.testing.assert_allclose(
            data.offsets[idx[k]], joints[k] - joints[SMPL_PARENTS[k]], atol=2e-6
        )
    trans = camera_translation(tr.orig_cam, result.width)
    np.testing.assert_allclose(data.root_positions(), (joints[0] + trans) @ world.T, atol=2e-6)
    assert set(data.end_sites) == {idx[k] for k in (10, 11, 15, 22, 23)}
    for k, off in data.end_sites.items():
        bone = data.offsets[k]
        assert np.linalg.norm(off) > 0 and np.dot(off, bone) > 0  # continues its bone


def test_bvh_units_tracks_and_gap_filling(tmp_path: Path, result, rig, smpl_arrays) -> None:  # type: ignore[no-untyped-def]
    paths = export_bvh(
        result, tmp_path / "walk.bvh", rig, ExportOptions(translation=False, fps=50.0), scale=100.0
    )
    assert paths == [tmp_path / "walk_track1.bvh", tmp_path / "walk_track2.bvh"]
    data = read_bvh(paths[1])
    tr = result.tracks[2]  # frames 3..12 without 7, 8
    assert data.motion.shape[0] == 10 and data.frame_time == pytest.approx(0.02)
    idx = _smpl_order(data)
    joints = rest_joints(smpl_arrays, tr.betas.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(data.offsets[idx[4]], 100 * (joints[4] - joints[1]), atol=2e-4)
    np.testing.assert_allclose(
        data.root_positions(), np.tile(100 * U @ joints[0], (10, 1)), atol=2e-4
    )
    rots = data.local_rotations()[:, idx]
    rows = tr.frame_ids - tr.frame_ids[0]  # BVH frame of each track row
    want = exact(tr.pose)
    want[:, 0] = U @ want[:, 0]
    assert angle_between(rots[rows], want).max() < 1e-4
    # the missing frames 7 and 8 are the slerp between frames 6 and 9, per joint
    for k in (0, 5, 18):
        key = Rotation.from_matrix(want[[3, 4], k])
        mid = Slerp([6.0, 9.0], key)([7.0, 8.0]).as_matrix()
        assert angle_between(rots[[4, 5], k], mid).max() < 1e-4


def test_bvh_parser_rejects_damaged_files(tmp_path: Path, result, rig) -> None:  # type: ignore[no-untyped-def]
    (path,) = export_bvh(result, tmp_path / "a.bvh", rig, track_ids=[1])
    text = path.read_text()
    parse_bvh(text)  # the intact file parses
    with pytest.raises(ResultFileError, match="MOTION says 10 frames"):
        parse_bvh(text[: len(text) // 2 + len(text) // 3])  # truncated motion
    with pytest.raises(ResultFileError, match="expected 'HIERARCHY'"):
        parse_bvh("garbage " + text)
    with pytest.raises(ResultFileError, match="unknown channel"):
        parse_bvh(text.replace("Zrotation", "Wrotation", 1))
    with pytest.raises(ResultFileError, match="unexpected end"):
        parse_bvh(text[: text.index("MOTION") - 20])
    missing = tmp_path / "missing.bvh"
    with pytest.raises(ResultFileError, match="cannot read"):
        read_bvh(missing)
