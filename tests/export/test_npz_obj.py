"""npz and OBJ exports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.core.geometry import axis_angle_to_rotmat
from pare_studio.export.common import ExportOptions
from pare_studio.export.npz import NPZ_KEYS, export_npz, load_npz_export
from pare_studio.export.obj import export_obj
from tests.export.expect import U, camera_translation


def test_npz_axis_angle_converts_back_to_the_rotation_matrices(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    paths = export_npz(result, tmp_path / "smpl.npz")
    assert paths == [tmp_path / "smpl_track1.npz", tmp_path / "smpl_track2.npz"]
    for tid, path in zip((1, 2), paths, strict=True):
        tr = result.tracks[tid]
        z = load_npz_export(path)  # allow_pickle=False
        assert set(z) == set(NPZ_KEYS)
        n = len(tr)
        assert z["poses"].shape == (n, 72) and z["poses"].dtype == np.float32
        assert z["betas"].shape == (n, 10) and z["trans"].shape == (n, 3)
        np.testing.assert_array_equal(z["frame_ids"], tr.frame_ids)
        np.testing.assert_array_equal(z["betas"], tr.betas)
        assert float(z["fps"]) == 25.0 and str(z["gender"]) == "neutral"
        assert int(z["track_id"]) == tid and bool(z["trans_estimated"])
        assert str(z["coordinate_frame"]) == "opencv_camera"
        np.testing.assert_allclose(z["image_size"], [640, 360])
        rot = axis_angle_to_rotmat(z["poses"].astype(np.float64))
        np.testing.assert_allclose(rot, tr.pose, atol=2e-6)
        np.testing.assert_allclose(
            z["trans"], camera_translation(tr.orig_cam, 640), rtol=1e-6, atol=1e-6
        )
    with np.load(paths[0], allow_pickle=False) as raw:  # readable by plain numpy
        assert raw["poses"].shape[1] == 72


def test_npz_without_camera_or_with_non_orthonormal_pose(tmp_path: Path, result) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    tr = result.tracks[1]
    bent = tr.pose * np.float32(1.01)  # not orthonormal (as the reference's smoothing makes)
    one = dataclasses.replace(result, tracks={1: dataclasses.replace(tr, pose=bent)})
    (path,) = export_npz(one, tmp_path / "x.npz", ExportOptions(translation=False, fps=12.0))
    z = load_npz_export(path)
    assert not bool(z["trans_estimated"]) and np.all(z["trans"] == 0) and float(z["fps"]) == 12.0
    rot = axis_angle_to_rotmat(z["poses"].astype(np.float64))
    np.testing.assert_allclose(rot, tr.pose, atol=2e-6)  # projected back to the rotation


def test_obj_sequence_is_the_tracks_mesh_in_the_world(tmp_path: Path, result, rig) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "objs"
    written = export_obj(result, out, rig.faces, track_ids=[2])
    tr = result.tracks[2]
    assert written == [out / "track_2" / f"frame_{f:06d}.obj" for f in tr.frame_ids]
    assert sorted(p.name for p in (out / "track_2").iterdir()) == [p.name for p in written]
    row = 4
    verts, faces = [], []
    for line in written[row].read_text().splitlines():
        if line.startswith("v "):
            verts.append([float(v) for v in line.split()[1:]])
        elif line.startswith("f "):
            faces.append([int(v) for v in line.split()[1:]])
    want = (tr.verts[row].astype(np.float64) + camera_translation(tr.orig_cam, 640)[row]) @ U.T
    np.testing.assert_allclose(np.array(verts), want, atol=1e-6)
    np.testing.assert_array_equal(np.array(faces) - 1, rig.faces)
    # camera frame, no translation: the pkl's vertices as they are
    export_obj(result, out, rig.faces, ExportOptions(upright=False, translation=False), [1])
    text = (out / "track_1" / "frame_000003.obj").read_text()
    first_v = next(line for line in text.splitlines() if line.startswith("v "))
    np.testing.assert_allclose(
        [float(v) for v in first_v.split()[1:]], result.tracks[1].verts[3, 0], atol=1e-6
    )


def test_obj_export_into_a_file_path_fails_cleanly(tmp_path: Path, result, rig) -> None:  # type: ignore[no-untyped-def]
    from pare_studio.errors import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="not a folder|cannot create"):
        export_obj(result, blocker, rig.faces)
