"""``pare-studio export`` end to end on a pkl and on a project file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from pare_studio.cli import main
from pare_studio.edits import EditState, delete_tracks, rename_track, select_for_export, split_track
from pare_studio.pipeline.pkl_io import load_pare_output, save_pare_output
from pare_studio.project import Project, SmoothingSettings, save_project
from tests.export import gltf_eval


@pytest.fixture(scope="module")
def pkl(tmp_path_factory: pytest.TempPathFactory, result) -> Path:  # type: ignore[no-untyped-def]
    return save_pare_output(tmp_path_factory.mktemp("pkl") / "pare_output.pkl", result)


def test_formats_match_the_dispatcher() -> None:
    from pare_studio.cli.export import FORMATS as CLI_FORMATS
    from pare_studio.export.dispatch import FORMATS

    assert CLI_FORMATS == FORMATS


def test_export_every_format_from_a_pkl(pkl: Path, tmp_path: Path, smpl_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    glb = tmp_path / "scene.glb"
    assert (
        main(
            ["export", str(pkl), "--format", "glb", "--out", str(glb), "--smpl-dir", str(smpl_dir)]
        )
        == 0
    )
    out, err = capsys.readouterr()
    assert out.strip() == str(glb)
    assert "no frame rate; writing 30 fps" in err
    g = gltf_eval.load(glb)
    assert len(g.skins) == 2
    # the bare pkl's image size (640x360) was recovered from its cameras for the camera
    f = 320 / math.tan(math.radians(30))
    assert g.cameras[0].perspective.yfov == pytest.approx(2 * math.atan(180 / f), rel=1e-6)

    bvh = tmp_path / "walk.bvh"
    argv = [
        "export",
        str(pkl),
        "--format",
        "bvh",
        "--out",
        str(bvh),
        "--tracks",
        "2",
        "--units",
        "cm",
        "--fps",
        "50",
        "--smpl-dir",
        str(smpl_dir),
    ]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == str(bvh)
    text = bvh.read_text()
    assert "Frames: 10" in text and "Frame Time: 0.02000000" in text

    assert (
        main(
            ["export", str(pkl), "--format", "npz", "--out", str(tmp_path / "p.npz"), "--fps", "25"]
        )
        == 0
    )
    assert capsys.readouterr().out.split() == [
        str(tmp_path / "p_track1.npz"),
        str(tmp_path / "p_track2.npz"),
    ]

    objs = tmp_path / "objs"
    argv = [
        "export",
        str(pkl),
        "--format",
        "obj",
        "--out",
        str(objs),
        "--tracks",
        "1",
        "--smpl-dir",
        str(smpl_dir),
        "--camera-frame",
        "--no-translation",
    ]
    assert main(argv) == 0
    assert "10 OBJ files" in capsys.readouterr().out
    assert len(list((objs / "track_1").glob("frame_*.obj"))) == 10


def test_export_from_a_project_reflects_edits_and_smoothing(
    result, tmp_path: Path, smpl_dir: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    state = split_track(EditState.from_result(result), 1, 5)  # 1: 0..4, 3: 5..9
    state = delete_tracks(state, [2])
    state = select_for_export(rename_track(state, 3, "Second half"), [3])
    proj = save_project(tmp_path / "s.pareproj", Project(state=state))

    plain = tmp_path / "plain.pkl"
    assert main(["export", str(proj), "--format", "pkl", "--out", str(plain)]) == 0
    got = load_pare_output(plain)
    assert list(got.tracks) == [3]
    np.testing.assert_array_equal(got.tracks[3].frame_ids, np.arange(5, 10))
    np.testing.assert_array_equal(got.tracks[3].pose, result.tracks[1].pose[5:])
    np.testing.assert_array_equal(got.tracks[3].verts, result.tracks[1].verts[5:])

    assert (
        main(
            [
                "export",
                str(proj),
                "--format",
                "pkl",
                "--out",
                str(tmp_path / "all.pkl"),
                "--tracks",
                "1,3",
            ]
        )
        == 0
    )
    assert list(load_pare_output(tmp_path / "all.pkl").tracks) == [1, 3]

    smooth = SmoothingSettings(enabled=True, method="rotation", min_cutoff=0.004, beta=0.3)
    proj2 = save_project(tmp_path / "smooth.pareproj", Project(state=state, smoothing=smooth))
    capsys.readouterr()
    sm = tmp_path / "smoothed.pkl"
    assert (
        main(
            ["export", str(proj2), "--format", "pkl", "--out", str(sm), "--smpl-dir", str(smpl_dir)]
        )
        == 0
    )
    assert "smoothed (rotation, min_cutoff 0.004, beta 0.3)" in capsys.readouterr().err
    s = load_pare_output(sm).tracks[3]
    raw = result.tracks[1]
    assert np.abs(s.pose[1:] - raw.pose[6:]).max() > 1e-3  # filtered
    np.testing.assert_allclose(s.pose[0], raw.pose[5], atol=1e-6)  # starts at the first frame
    gram = s.pose.astype(np.float64) @ np.swapaxes(s.pose, -1, -2)
    np.testing.assert_allclose(gram, np.tile(np.eye(3), (5, 24, 1, 1)), atol=1e-5)
    assert np.abs(s.verts[1:] - raw.verts[6:]).max() > 1e-4  # mesh recomputed
    no = tmp_path / "nosmooth.pkl"
    assert main(["export", str(proj2), "--format", "pkl", "--out", str(no), "--no-smooth"]) == 0
    np.testing.assert_array_equal(load_pare_output(no).tracks[3].pose, raw.pose[5:])


def test_export_errors_exit_non_zero_with_a_message(
    pkl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    assert (
        main(
            [
                "export",
                str(pkl),
                "--format",
                "npz",
                "--out",
                str(tmp_path / "x.npz"),
                "--tracks",
                "9",
            ]
        )
        == 13
    )
    assert "track(s) 9 not in the results (tracks: 1, 2)" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                str(tmp_path / "none.pkl"),
                "--format",
                "npz",
                "--out",
                str(tmp_path / "x.npz"),
            ]
        )
        == 9
    )
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "store"
    empty.mkdir()
    monkeypatch.setenv("PARE_STUDIO_DATA", str(empty))
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(pkl), "--format", "bvh", "--out", str(tmp_path / "x.bvh")]) == 4
    err = capsys.readouterr().err
    assert "--format bvh needs the SMPL model" in err and "--smpl-dir" in err
    assert not (tmp_path / "x.bvh").exists()
    assert main(["export", str(pkl), "--format", "fbx", "--out", "x"]) == 2
    assert "invalid choice: 'fbx'" in capsys.readouterr().err
