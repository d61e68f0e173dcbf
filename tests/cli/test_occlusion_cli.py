"""``pare-studio occlusion``: image / video / dataset modes, files written, figures, Ctrl+C."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from pare_studio.cli import main
from tests.analysis.synthetic_eval_data import PW3D_SAMPLES, smooth_image, write_dataset

H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
WINDOWS_112 = np.array(
    [[[0, 0, 112, 112], [112, 0, 112, 112]], [[0, 112, 112, 112], [112, 112, 112, 112]]]
)


def _image(path: Path, seed: int = 0, size: tuple[int, int] = (240, 320)) -> Path:
    import cv2

    assert cv2.imwrite(str(path), smooth_image(np.random.default_rng(seed), *size))
    return path


def _model(cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> list[str]:
    return ["--cfg", str(cfg_path), "--ckpt", str(ckpt_path), "--smpl-dir", str(smpl_dir)]


class FakePredictor:
    """Stand-in for ParePredictor: the synthetic template mesh, moved by the crop's mean value
    (so occluders change it); records every crop; can press Ctrl+C during its first call."""

    def __init__(self, smpl_dir: Path, interrupt: bool = False) -> None:
        import torch

        from pare_studio.core.smpl import SmplBody
        from pare_studio.core.smpl_io import SmplFiles

        self.smpl = SmplBody.from_files(SmplFiles.from_dir(smpl_dir))
        self.device = torch.device("cpu")
        self.backend = "fake"
        self.faces = self.smpl.faces
        self.template = self.smpl.layer.v_template.detach().numpy().astype(np.float32)
        self.interrupt = interrupt
        self.images: list[np.ndarray] = []
        self.verts: list[np.ndarray] = []
        self.closed = False

    def predict(self, images: np.ndarray, batch_size: int = 16):  # noqa: ANN201
        from pare_studio.results import PareOutput

        if self.interrupt and not self.images:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl+C during batch 1
        b = len(images)
        means = images.reshape(b, 3, -1).mean(axis=2)  # (b, 3)
        verts = self.template[None] * (1.0 + 0.2 * means[:, None, :1]) + 0.1 * means[:, None, :]
        verts = verts.astype(np.float32)
        self.images.extend(images.copy())
        self.verts.extend(verts)
        z = np.zeros
        return PareOutput(
            np.broadcast_to(np.eye(3, dtype=np.float32), (b, 24, 3, 3)).copy(),
            z((b, 10), np.float32),
            np.tile(np.float32([0.8, 0.0, 0.2]), (b, 1)),
            z((b, 3), np.float32),
            verts,
            verts[:, :49].copy(),
            z((b, 49, 2), np.float32),
            z((b, 25, 56, 56), np.float32),
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake(smpl_dir: Path, monkeypatch: pytest.MonkeyPatch) -> FakePredictor:
    import pare_studio.core.predictor as predictor_mod

    f = FakePredictor(smpl_dir)
    monkeypatch.setattr(predictor_mod, "load_predictor", lambda *a, **k: f)
    return f


def test_image_and_box_on_the_synthetic_checkpoint(
    tmp_path: Path,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    img = _image(tmp_path / "person.png")
    out = tmp_path / "out"
    rc = main(
        ["occlusion", *_model(cfg_path, ckpt_path, smpl_dir), "--image", str(img),
         "--box", "170,120,150,150", "--occ_size", "112", "--stride", "112", "--batch-size", "5",
         "--no-figures", "--out", str(out)]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert sorted(p.name for p in out.iterdir()) == ["occlusion_heatmaps.npz"]  # no staging left
    with np.load(out / "occlusion_heatmaps.npz") as z:
        assert "mpjpe_heatmap" not in z.files and "pampjpe_heatmap" not in z.files
        disp = z["displacement_heatmap"]
        assert disp.shape == (1, 2, 2, 14) and np.isfinite(disp).all() and disp.max() > 0
        assert z["displacement49_heatmap"].shape == (1, 2, 2, 49)
        assert np.array_equal(z["windows"], WINDOWS_112)
        assert z["imgname"].tolist() == [str(img)]
        assert z["sample_names"].tolist() == ["person"]
        np.testing.assert_allclose(z["boxes"], [[170, 120, 150, 150]])
        assert z["baseline_joints14"].shape == (1, 14, 3)
        assert str(z["joint_source"]) == "h36m_regressor"
        assert str(z["fill"]) == "mean" and int(z["occ_size"]) == 112 and int(z["stride"]) == 112
        assert len(z["joint_names"]) == 14
    assert "person: mean displacement" in captured.out


def test_figures_gif_and_noise_fill(
    tmp_path: Path, cfg_path: Path, fake: FakePredictor, smpl_dir: Path
) -> None:
    from PIL import Image

    imgs = [_image(tmp_path / "a.png", 1), _image(tmp_path / "b.jpg", 2, (200, 200))]
    out = tmp_path / "figs"
    rc = main(
        ["occlusion", *_model(cfg_path, tmp_path / "unused.ckpt", smpl_dir),
         "--image", *map(str, imgs), "--occ-size", "112", "--stride", "112",
         "--fill", "noise", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "a_displacement_hm.png", "a_sweep.gif", "b_displacement_hm.png", "b_sweep.gif",
        "occlusion_heatmaps.npz",
    ]  # fmt: skip
    with Image.open(out / "a_displacement_hm.png") as im:
        assert im.size[0] > 1000  # 2 x 7 panels
    with Image.open(out / "a_sweep.gif") as gif:
        assert gif.n_frames == 5  # unoccluded + 4 positions
        assert gif.size == (960, 480)  # display image + side view
    # whole-image boxes (square, padded) for crops without --box
    with np.load(out / "occlusion_heatmaps.npz") as z:
        np.testing.assert_allclose(z["boxes"], [[160, 120, 320, 320], [100, 100, 200, 200]])
        assert str(z["fill"]) == "noise"
        assert z["displacement_heatmap"].shape == (2, 2, 2, 14)
    # the noise fill: occluded window values are uniform RGB, normalised
    occluded = fake.images[1]  # first sample, window (0, 0)
    rgb = (
        occluded[:, :112, :112] * np.array([0.229, 0.224, 0.225])[:, None, None]
        + np.array([0.485, 0.456, 0.406])[:, None, None]
    )
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5 and rgb.std() > 0.2
    assert fake.closed


def test_video_frame_and_box(
    tmp_path: Path, cfg_path: Path, fake: FakePredictor, smpl_dir: Path
) -> None:
    import av

    from pare_studio.pipeline.crops import crop_image
    from pare_studio.pipeline.video import open_source

    clip = tmp_path / "clip.mp4"
    rng = np.random.default_rng(5)
    with av.open(str(clip), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for _ in range(6):
            frame = av.VideoFrame.from_ndarray(
                smooth_image(rng, 120, 160)[:, :, ::-1].copy(), format="rgb24"
            )
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    out = tmp_path / "vid"
    rc = main(
        ["occlusion", *_model(cfg_path, tmp_path / "x.ckpt", smpl_dir), "--video", str(clip),
         "--frame", "4", "--box", "80,60,100,100", "--occ_size", "112", "--stride", "112",
         "--fill", "black", "--no-figures", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    with open_source(clip) as src:
        expected = crop_image(src.read(4), (80, 60, 100, 100))
    assert np.array_equal(fake.images[0], expected)  # the baseline crop
    with np.load(out / "occlusion_heatmaps.npz") as z:
        assert z["sample_names"].tolist() == ["clip_frame000004"]
        assert z["sample_index"].tolist() == [4]
    # past the end
    rc = main(
        ["occlusion", *_model(cfg_path, tmp_path / "x.ckpt", smpl_dir), "--video", str(clip),
         "--frame", "6", "--no-figures", "--out", str(tmp_path / "v2")]
    )  # fmt: skip
    assert rc != 0 and not (tmp_path / "v2").exists()


def test_dataset_mode_matches_independent_errors(
    tmp_path: Path, cfg_path: Path, fake: FakePredictor, smpl_dir: Path
) -> None:
    import smplx
    import torch

    data_dir = tmp_path / "data"
    arrays = write_dataset(data_dir, "3dpw-all", PW3D_SAMPLES, seed=3)
    out = tmp_path / "occ"
    rc = main(
        ["occlusion", *_model(cfg_path, tmp_path / "unused.ckpt", smpl_dir),
         "--data-dir", str(data_dir), "--occ_size", "112", "--stride", "112",
         "--save_freq", "2", "--batch_size", "16", "--no-figures", "--out", str(out)]
    )  # fmt: skip
    assert rc == 0
    reg = np.load(smpl_dir / "J_regressor_h36m.npy")
    body = smplx.SMPL(model_path=str(smpl_dir / "body_models/smpl/SMPL_NEUTRAL.pkl"))
    sel = [0, 2]  # every 2nd of 4 samples
    pose = torch.tensor(arrays["pose"][sel], dtype=torch.float32)
    with torch.no_grad():
        gt = (
            body(
                global_orient=pose[:, :3],
                body_pose=pose[:, 3:],
                betas=torch.tensor(arrays["shape"][sel], dtype=torch.float32),
            )
            .vertices.numpy()
            .astype(np.float64)
        )

    def j14(v: np.ndarray) -> np.ndarray:
        j = reg @ np.asarray(v, np.float64)
        return j[H36M_TO_J14] - j[0]

    with np.load(out / "occlusion_heatmaps.npz") as z:
        assert z["sample_index"].tolist() == sel
        assert z["imgname"].tolist() == [PW3D_SAMPLES[i].imgname for i in sel]
        assert str(z["dataset"]) == "3dpw-all"
        assert z["mpjpe_heatmap"].shape == z["pampjpe_heatmap"].shape == (2, 2, 2, 14)
        assert z["baseline_mpjpe"].shape == (2, 14)
        for n in range(2):
            g = j14(gt[n])
            base = j14(fake.verts[5 * n])  # per sample: unoccluded crop first, then 4 windows
            np.testing.assert_allclose(
                z["baseline_mpjpe"][n], np.linalg.norm(base - g, axis=1) * 1000, rtol=1e-5
            )
            for k in range(4):
                p = j14(fake.verts[5 * n + 1 + k])
                r, c = divmod(k, 2)
                np.testing.assert_allclose(
                    z["mpjpe_heatmap"][n, r, c], np.linalg.norm(p - g, axis=1) * 1000, rtol=1e-5
                )
                np.testing.assert_allclose(
                    z["displacement_heatmap"][n, r, c],
                    np.linalg.norm(p - base, axis=1) * 1000,
                    rtol=1e-5,
                    atol=1e-4,
                )
    assert len(fake.verts) == 10


def test_ctrl_c_writes_nothing(
    tmp_path: Path,
    cfg_path: Path,
    smpl_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pare_studio.core.predictor as predictor_mod

    f = FakePredictor(smpl_dir, interrupt=True)
    monkeypatch.setattr(predictor_mod, "load_predictor", lambda *a, **k: f)
    img = _image(tmp_path / "p.png")
    out = tmp_path / "deep" / "out"
    before = signal.getsignal(signal.SIGINT)
    rc = main(
        ["occlusion", *_model(cfg_path, tmp_path / "u.ckpt", smpl_dir), "--image", str(img),
         "--occ_size", "112", "--stride", "112", "--batch-size", "2", "--out", str(out)]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 130, err
    assert "cancel" in err.lower()
    assert len(f.images) == 2  # stopped after the first batch
    assert f.closed
    assert not (tmp_path / "deep").exists()  # nothing partial, not even the folders
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--box", "1,2,3"], "four numbers"),
        (["--box", "10,10,0,5"], "width and height"),
        (["--occ_size", "300"], "occluder size"),
        (["--stride", "0"], "--stride"),
        (["--fill", "mean", "--pixel", "nan"], "finite"),
    ],
)
def test_bad_arguments(
    tmp_path: Path,
    cfg_path: Path,
    smpl_dir: Path,
    fake: FakePredictor,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    needle: str,
) -> None:
    img = _image(tmp_path / "p.png")
    rc = main(
        ["occlusion", *_model(cfg_path, tmp_path / "u.ckpt", smpl_dir), "--image", str(img),
         "--out", str(tmp_path / "o"), *extra]
    )  # fmt: skip
    assert rc != 0
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert not fake.images


def test_missing_inputs(
    tmp_path: Path,
    cfg_path: Path,
    smpl_dir: Path,
    fake: FakePredictor,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = [
        "occlusion",
        *_model(cfg_path, tmp_path / "u.ckpt", smpl_dir),
        "--out",
        str(tmp_path / "o"),
    ]
    assert main([*base, "--image", str(tmp_path / "nope.png")]) == 5
    assert "nope.png" in capsys.readouterr().err
    (tmp_path / "bad.png").write_bytes(b"not an image")
    assert main([*base, "--image", str(tmp_path / "bad.png")]) == 5
    assert "decoded" in capsys.readouterr().err
    assert main([*base, "--box", "1,2,3,4"]) != 0  # a box without an image
    assert "--box goes with" in capsys.readouterr().err
    assert main([*base, "--data-dir", str(tmp_path / "nodata")]) == 10  # DatasetError
    assert "3dpw_all_test_with_mmpose.npz" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
