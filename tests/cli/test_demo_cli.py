"""``pare-studio demo`` end to end: reference-layout pkl, overlay video, failures and cancel."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import av
import joblib
import numpy as np
import pytest

from pare_studio.cli import demo as demo_cli
from pare_studio.cli import main
from pare_studio.errors import RenderError
from pare_studio.pipeline.pkl_io import load_pare_output, save_pare_output
from pare_studio.results import VideoResult
from tests.pipeline.video_helpers import (
    REFERENCE_KEYS,
    REFERENCE_LAYOUT,
    boxes_from_file,
    cached_predictor,
    make_clip,
    make_parity_folder,
    make_track,
    project_vertices,
    spec_crop_joints2d,
    spec_orig_cam,
    spec_orig_joints2d,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory, parity_dir: Path) -> Path:
    """4 frames, 320×180, two moving figures in every frame (8 person-frames)."""
    out = tmp_path_factory.mktemp("clip4")
    make_clip(parity_dir, out, frames=4)
    return out


@pytest.fixture()
def model_args(cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> list[str]:
    return [
        "--cfg",
        str(cfg_path),
        "--ckpt",
        str(ckpt_path),
        "--smpl-dir",
        str(smpl_dir),
        "--device",
        "cpu",
    ]


@pytest.fixture()
def shared_predictor(monkeypatch, cfg_path: Path, ckpt_path: Path, smpl_dir: Path):  # type: ignore[no-untyped-def]
    """Reuse one loaded predictor instead of loading the checkpoint for every command."""
    pred = cached_predictor(str(cfg_path), str(ckpt_path), str(smpl_dir))
    monkeypatch.setattr(demo_cli, "load_model", lambda args, assets: pred)
    return pred


def test_demo_no_render_writes_the_reference_pkl(
    clip: Path, model_args: list[str], tmp_path: Path, capsys
) -> None:
    # The real command path, model loading included.
    out = tmp_path / "results"
    rc = main(
        [
            "demo",
            "--vid_file",
            str(clip / "clip.mp4"),
            "--boxes",
            str(clip / "boxes.txt"),
            "--output_folder",
            str(out),
            "--no_render",
            "--batch_size",
            "3",
            *model_args,
        ]
    )
    assert rc == 0
    folder = out / "clip_"
    assert sorted(p.name for p in folder.iterdir()) == ["pare_output.pkl"]
    stdout = capsys.readouterr().out
    assert (
        "tracks   2 (ids 1, 2; 8 person-frames)" in stdout
        and str(folder / "pare_output.pkl") in stdout
    )

    raw = joblib.load(folder / "pare_output.pkl")  # what the reference's users load
    assert list(raw) == [1, 2]
    for tid, track in raw.items():
        assert list(track) == REFERENCE_KEYS and track["joints2d"] is None
        for key, (tail, dtype) in REFERENCE_LAYOUT.items():
            assert track[key].shape == (4, *tail) and track[key].dtype == dtype, key
        frames, boxes = boxes_from_file(clip / "boxes.txt", tid)
        np.testing.assert_array_equal(track["frame_ids"], frames)
        np.testing.assert_allclose(track["bboxes"], boxes, rtol=0, atol=1e-9)
        np.testing.assert_allclose(
            track["orig_cam"],
            spec_orig_cam(track["pred_cam"], track["bboxes"], 320, 180),
            rtol=1e-9,
        )
        crop_uv = spec_crop_joints2d(track["joints3d"], track["pred_cam"])
        np.testing.assert_allclose(
            track["smpl_joints2d"],
            spec_orig_joints2d(crop_uv, track["bboxes"]),
            rtol=1e-4,
            atol=2e-3,
        )
        # pose is rotation matrices
        p = track["pose"].astype(np.float64)
        np.testing.assert_allclose(
            p @ np.swapaxes(p, -1, -2), np.broadcast_to(np.eye(3), p.shape), atol=1e-4
        )


def test_demo_renders_meshes_where_the_meshes_are(
    parity_dir: Path, model_args: list[str], tmp_path: Path, shared_predictor
) -> None:  # type: ignore[no-untyped-def]
    frames_dir = make_parity_folder(parity_dir, tmp_path / "crops", order=(0, 2, 0))
    out = tmp_path / "results"
    rc = main(
        [
            "demo",
            "--image_folder",
            str(frames_dir),
            "--detector",
            "whole",
            "--output_folder",
            str(out),
            "--exp",
            "t",
            *model_args,
        ]
    )
    assert rc == 0
    folder = out / "crops_t"
    video = folder / "crops_t_result.mp4"
    assert (folder / "pare_output.pkl").is_file() and video.is_file()
    result = load_pare_output(folder / "pare_output.pkl")
    track = result.tracks[1]
    assert list(track.frame_ids) == [0, 1, 2]
    assert track.pred_cam[:, 0].min() > 0.2  # the parity crops give large, visible meshes

    with av.open(str(video)) as container:
        rendered = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(rendered) == 3 and rendered[0].shape == (224, 224, 3)
    import cv2

    for k, frame in enumerate(rendered):
        src = cv2.cvtColor(cv2.imread(str(frames_dir / f"{k + 1:06d}.png")), cv2.COLOR_BGR2RGB)
        changed = np.abs(frame.astype(int) - src.astype(int)).sum(-1) > 60
        uv = project_vertices(track.verts[k], track.orig_cam[k], 224, 224)
        inside = (uv[:, 0] >= 1) & (uv[:, 0] < 223) & (uv[:, 1] >= 1) & (uv[:, 1] < 223)
        assert inside.mean() > 0.3
        cols, rows = uv[inside, 0].astype(int), uv[inside, 1].astype(int)
        on_mesh = np.zeros((224, 224), bool)
        on_mesh[rows, cols] = True
        near = cv2.dilate(on_mesh.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert changed[on_mesh].mean() > 0.8, f"frame {k}: mesh not drawn where it projects"
        assert changed[~near].mean() < 0.02, f"frame {k}: pixels changed away from the mesh"


def test_no_person_is_a_clear_error_and_writes_nothing(
    clip: Path, model_args: list[str], tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "boxes.txt"
    empty.write_text("")
    out = tmp_path / "results"
    rc = main(
        [
            "demo",
            "--vid_file",
            str(clip / "clip.mp4"),
            "--boxes",
            str(empty),
            "--output_folder",
            str(out),
            *model_args,
        ]
    )
    assert rc == 6
    assert "lists no boxes" in capsys.readouterr().err
    assert not list(out.rglob("*.pkl"))


def test_unwritable_output_folder_fails_before_loading_the_model(
    clip: Path, model_args: list[str], tmp_path: Path, monkeypatch, capsys
) -> None:
    def no_model(args, assets):  # type: ignore[no-untyped-def]
        raise AssertionError("the model must not load when the output cannot be written")

    monkeypatch.setattr(demo_cli, "load_model", no_model)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc = main(
        [
            "demo",
            "--vid_file",
            str(clip / "clip.mp4"),
            "--boxes",
            str(clip / "boxes.txt"),
            "--output_folder",
            str(blocker / "sub"),
            *model_args,
        ]
    )
    assert rc == 8
    assert "cannot write to the output folder" in capsys.readouterr().err


def test_ctrl_c_cancels_without_touching_an_existing_pkl(
    clip: Path, model_args: list[str], tmp_path: Path, shared_predictor, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "results"
    existing = save_pare_output(
        out / "clip_" / "pare_output.pkl", VideoResult(tracks={5: make_track(5, [0, 1], 3)})
    )
    before = existing.read_bytes()
    handler_before = signal.getsignal(signal.SIGINT)
    calls = []

    class CtrlCAfterFirstBatch:
        faces = shared_predictor.faces
        smpl = shared_predictor.smpl

        def predict(self, images, batch_size=16):  # type: ignore[no-untyped-def]
            calls.append(len(images))
            out = shared_predictor.predict(images, batch_size=batch_size)
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl+C during inference
            return out

    monkeypatch.setattr(demo_cli, "load_model", lambda args, assets: CtrlCAfterFirstBatch())
    rc = main(
        [
            "demo",
            "--vid_file",
            str(clip / "clip.mp4"),
            "--boxes",
            str(clip / "boxes.txt"),
            "--output_folder",
            str(out),
            "--batch_size",
            "1",
            *model_args,
        ]
    )
    assert rc == 130
    assert calls == [1]  # stopped after the batch that was running
    assert "Cancelled" in capsys.readouterr().err
    assert existing.read_bytes() == before
    assert sorted(p.name for p in existing.parent.iterdir()) == ["pare_output.pkl"]
    assert signal.getsignal(signal.SIGINT) is handler_before  # Ctrl+C handling restored


def test_render_failure_keeps_the_pkl(
    parity_dir: Path, model_args: list[str], tmp_path: Path, shared_predictor, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    frames_dir = make_parity_folder(parity_dir, tmp_path / "one", order=(1,))

    def broken_render(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RenderError("no OpenGL (test)")

    monkeypatch.setattr(demo_cli, "render", broken_render)
    out = tmp_path / "results"
    rc = main(
        [
            "demo",
            "--image_folder",
            str(frames_dir),
            "--detector",
            "whole",
            "--output_folder",
            str(out),
            *model_args,
        ]
    )
    assert rc == RenderError.exit_code
    err = capsys.readouterr().err
    assert "rendering failed: no OpenGL (test)" in err and "results are safe" in err
    assert len(load_pare_output(out / "one_" / "pare_output.pkl").tracks) == 1


def test_missing_checkpoint_names_the_flag(clip: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PARE_STUDIO_DATA", str(tmp_path / "empty_store"))
    monkeypatch.chdir(tmp_path)
    rc = main(
        [
            "demo",
            "--vid_file",
            str(clip / "clip.mp4"),
            "--boxes",
            str(clip / "boxes.txt"),
            "--output_folder",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 4
    err = capsys.readouterr().err
    assert "--ckpt" in err and "pare-studio setup" in err


def test_bad_flag_combinations(clip: Path, model_args: list[str], tmp_path: Path, capsys) -> None:
    rc = main(
        [
            "demo",
            "--vid_file",
            str(clip / "clip.mp4"),
            "--detector",
            "boxes",
            "--output_folder",
            str(tmp_path),
            *model_args,
        ]
    )
    assert rc == 7 and "--boxes FILE" in capsys.readouterr().err
    assert main(["demo", "--vid_file", str(clip / "clip.mp4"), "--batch_size", "0"]) == 2
    assert "--batch-size: must be >= 1, got 0" in capsys.readouterr().err


def test_folder_mode_one_pkl_per_image(
    parity_dir: Path, model_args: list[str], tmp_path: Path, shared_predictor
) -> None:  # type: ignore[no-untyped-def]
    import cv2

    folder = make_parity_folder(parity_dir, tmp_path / "imgs", order=(0, 1))
    # Image 3 has another size: parity crop 2 pasted at (30, 20) on a 300x260 black canvas.
    crop2 = cv2.imread(
        str(make_parity_folder(parity_dir, tmp_path / "tmp", order=(2,)) / "000001.png")
    )
    canvas = np.zeros((260, 300, 3), np.uint8)
    canvas[20:244, 30:254] = crop2
    cv2.imwrite(str(folder / "000003.png"), canvas)
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("1,-1,0,0,224,224,1,-1,-1,-1\n3,-1,30,20,224,224,1,-1,-1,-1\n")
    out = tmp_path / "results"
    rc = main(["demo", "--mode", "folder", "--image_folder", str(folder), "--boxes", str(boxes),
               "--output_folder", str(out), *model_args])  # fmt: skip
    assert rc == 0
    results = out / "imgs_" / "pare_results"
    assert sorted(p.name for p in results.iterdir()) == [
        "000001.pkl",
        "000001.png",
        "000003.pkl",
        "000003.png",
    ]
    assert cv2.imread(str(results / "000003.png")).shape == (260, 300, 3)
    keys = ["pred_pose", "pred_shape", "pred_cam", "pred_cam_t", "smpl_vertices", "smpl_joints3d",
            "smpl_joints2d", "pred_segm_mask", "bboxes", "orig_cam"]  # fmt: skip
    for name, (w, h), box in (
        ("000001", (224, 224), (112, 112, 224, 224)),
        ("000003", (300, 260), (142, 132, 224, 224)),
    ):
        d = joblib.load(results / f"{name}.pkl")
        assert sorted(d) == sorted(keys)
        assert d["pred_segm_mask"].shape == (1, 25, 56, 56) and d["smpl_vertices"].shape == (
            1,
            6890,
            3,
        )
        np.testing.assert_allclose(d["bboxes"], [box])
        np.testing.assert_allclose(
            d["orig_cam"], spec_orig_cam(d["pred_cam"], d["bboxes"], w, h), rtol=1e-9
        )
        uv = spec_crop_joints2d(d["smpl_joints3d"], d["pred_cam"])
        np.testing.assert_allclose(
            d["smpl_joints2d"], spec_orig_joints2d(uv, d["bboxes"]), rtol=1e-4, atol=2e-3
        )
    # The same crop pixels give the same network output wherever the image puts them.
    a, b = joblib.load(results / "000001.pkl"), joblib.load(results / "000003.pkl")
    parity = np.load(parity_dir / "expected.npz")["pred_cam"]
    np.testing.assert_allclose(a["pred_cam"][0], parity[0], atol=0.02)
    np.testing.assert_allclose(b["pred_cam"][0], parity[2], atol=0.02)
