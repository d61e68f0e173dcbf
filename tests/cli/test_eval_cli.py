"""``pare-studio eval`` end to end on a tiny synthetic dataset in the reference's layout, checked
against an independent computation (own crop code, smplx directly, plain numpy metrics)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from pare_studio.cli import main
from tests.analysis.synthetic_eval_data import OH3D_SAMPLES, PW3D_SAMPLES, write_dataset

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]
TEST_SEQS = {"downtown_bar_00", "flat_guitar_01"}  # of the 24 official ones, in our data
OCCLUDED = {"flat_guitar_01"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_data")
    write_dataset(root, "3dpw-all", PW3D_SAMPLES, seed=11)
    write_dataset(root, "3doh", OH3D_SAMPLES, seed=12)
    return root


def _independent_crop(path: Path, center: np.ndarray, scale: float) -> np.ndarray:
    """SPIN crop written out plainly: corners int(c -/+ h/2) (toward zero), zero canvas,
    skimage resize, /255, ImageNet normalisation."""
    import cv2
    from skimage.transform import resize

    img = cv2.imread(str(path))[:, :, ::-1].astype(np.float32)
    h = 200.0 * scale
    x0, y0 = int(center[0] - h / 2), int(center[1] - h / 2)
    x1, y1 = int(center[0] + h / 2), int(center[1] + h / 2)
    canvas = np.zeros((y1 - y0, x1 - x0, 3))
    for yy in range(y0, y1):
        if 0 <= yy < img.shape[0]:
            for xx in range(max(x0, 0), min(x1, img.shape[1])):
                canvas[yy - y0, xx - x0] = img[yy, xx]
    crop = resize(canvas, (224, 224)).astype(np.float32) / 255.0
    return ((crop - MEAN) / STD).transpose(2, 0, 1).astype(np.float32)


def _procrustes_error(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-joint error (14,) after the similarity transform of p (14,3) onto g."""
    mp, mg = p.mean(0), g.mean(0)
    x, y = p - mp, g - mg
    u, _, vt = np.linalg.svd(x.T @ y)
    z = np.eye(3)
    z[2, 2] = np.sign(np.linalg.det(u @ vt))
    r = vt.T @ z @ u.T
    s = np.trace(r @ x.T @ y) / (x**2).sum()
    aligned = s * (r @ p.T).T + (mg - s * r @ mp)
    return np.linalg.norm(aligned - g, axis=1)


def _independent_results(data_dir: Path, cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> dict:
    import smplx
    import torch

    from pare_studio.core.predictor import load_predictor

    reg = np.load(smpl_dir / "J_regressor_h36m.npy")
    body = smplx.SMPL(model_path=str(smpl_dir / "body_models/smpl/SMPL_NEUTRAL.pkl"))
    predictor = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")
    out: dict = {}
    try:
        for name, folder, npz in (
            ("3dpw-all", "3dpw", "3dpw_all_test_with_mmpose.npz"),
            ("3doh", "3doh", "3doh_test.npz"),
        ):
            z = np.load(data_dir / "dataset_extras" / npz)
            crops = np.stack(
                [
                    _independent_crop(data_dir / "dataset_folders" / folder / n, c, s)
                    for n, c, s in zip(z["imgname"], z["center"], z["scale"], strict=True)
                ]
            )
            pred = predictor.predict(crops, batch_size=len(crops))
            pose = torch.tensor(z["pose"], dtype=torch.float32)
            with torch.no_grad():
                gt = (
                    body(
                        global_orient=pose[:, :3],
                        body_pose=pose[:, 3:],
                        betas=torch.tensor(z["shape"], dtype=torch.float32),
                    )
                    .vertices.numpy()
                    .astype(np.float64)
                )
            mp, pa, vv = [], [], []
            for k in range(len(crops)):
                pv = pred.smpl_vertices[k].astype(np.float64)
                jp, jg = reg @ pv, reg @ gt[k]
                jp = jp[H36M_TO_J14] - jp[0]
                jg = jg[H36M_TO_J14] - jg[0]
                mp.append(np.linalg.norm(jp - jg, axis=1) * 1000)
                pa.append(_procrustes_error(jp, jg) * 1000)
                vv.append(np.linalg.norm(pv - gt[k], axis=1).mean() * 1000)
            seqs = [n.split("/")[-2] for n in z["imgname"]]
            out[name] = dict(
                mpjpe=np.array(mp),
                pampjpe=np.array(pa),
                v2v=np.array(vv),
                seqs=seqs,
                cam=pred.pred_cam,
                shape=pred.pred_shape,
            )
    finally:
        predictor.close()
    return out


@pytest.mark.slow
def test_eval_reference_command_matches_independent_computation(
    data_dir: Path,
    tmp_path: Path,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_dir = tmp_path / "logs"
    rc = main(
        [
            "eval",
            "--cfg",
            str(cfg_path),
            "--smpl-dir",
            str(smpl_dir),
            "--data-dir",
            str(data_dir),
            "--batch-size",
            "3",
            "--device",
            "cpu",
            "--opts",
            "DATASET.VAL_DS",
            "3doh_3dpw-all",
            "TRAINING.PRETRAINED_LIT",
            str(ckpt_path),
            "LOG_DIR",
            str(log_dir),
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = log_dir / "evaluation_mesh_3doh_3dpw-all"  # the reference's folder name
    assert "3DPW-Test" in captured.out and str(out) in captured.out
    doc = json.loads((out / "eval_results.json").read_text())
    assert doc["meta"]["ckpt"] == str(ckpt_path) and doc["meta"]["datasets"] == ["3doh", "3dpw-all"]

    ref = _independent_results(data_dir, cfg_path, ckpt_path, smpl_dir)
    tol = 0.02  # mm; errors here are hundreds of mm
    for name, r in ref.items():
        with np.load(out / f"errors_{name}.npz") as z:
            np.testing.assert_allclose(
                z["cam"], r["cam"], atol=1e-4
            )  # same crops -> same net output
            np.testing.assert_allclose(z["shape"], r["shape"], atol=1e-4)
            np.testing.assert_allclose(z["mpjpe"], r["mpjpe"], atol=tol)
            np.testing.assert_allclose(z["pampjpe"], r["pampjpe"], atol=tol)
            np.testing.assert_allclose(z["v2v"], r["v2v"], atol=tol)
            assert list(z["sequence"]) == r["seqs"]
        overall = doc["datasets"][name]["overall"]
        assert overall["n"] == len(r["v2v"])
        assert overall["mpjpe"] == pytest.approx(r["mpjpe"].mean(), abs=tol)
        assert overall["pampjpe"] == pytest.approx(r["pampjpe"].mean(), abs=tol)
        assert overall["v2v"] == pytest.approx(r["v2v"].mean(), abs=tol)
        assert overall["pampjpe"] < overall["mpjpe"]
        for seq in set(r["seqs"]):
            m = np.array([s == seq for s in r["seqs"]])
            assert doc["datasets"][name]["sequences"][seq]["v2v"] == pytest.approx(
                r["v2v"][m].mean(), abs=tol
            )

    pw = ref["3dpw-all"]
    test = np.array([s in TEST_SEQS for s in pw["seqs"]])
    occ = np.array([s in OCCLUDED for s in pw["seqs"]])
    subsets = doc["datasets"]["3dpw-all"]["subsets"]
    assert subsets["3DPW-Test"]["n"] == 3 and subsets["occluded"]["n"] == 1
    assert subsets["3DPW-Test"]["mpjpe"] == pytest.approx(pw["mpjpe"][test].mean(), abs=tol)
    assert subsets["3DPW-Test"]["v2v"] == pytest.approx(pw["v2v"][test].mean(), abs=tol)
    assert subsets["occluded"]["pampjpe"] == pytest.approx(pw["pampjpe"][occ].mean(), abs=tol)
    assert f"{subsets['3DPW-Test']['mpjpe']:.1f}" in captured.out
    csv_rows = (out / "eval_results.csv").read_text().splitlines()
    assert csv_rows[0] == "dataset,group,name,n,mpjpe_mm,pampjpe_mm,v2v_mm" and len(
        csv_rows
    ) == 1 + (1 + 2 + 3) + (1 + 1)


def _args(data_dir: Path, cfg_path: Path, smpl_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "eval",
        "--cfg",
        str(cfg_path),
        "--smpl-dir",
        str(smpl_dir),
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        *extra,
    ]


@pytest.mark.parametrize(
    ("setup", "extra", "code", "message"),
    [
        ("none", ["--datasets", "3doh", "--ckpt", "x.ckpt"], 10, "3doh_test.npz not found"),
        ("nokey", ["--datasets", "3doh", "--ckpt", "x.ckpt"], 10, "no key(s) 'center'"),
        ("noimage", ["--datasets", "3dpw-all", "--ckpt", "x.ckpt"], 10, "image_00003.jpg"),
        ("full", ["--datasets", "3dpw"], 10, "use '3dpw-all'"),
        ("full", ["--opts", "DATASET.VAL_DS", "3dpw_3doh"], 10, "use '3dpw-all'"),
        ("full", ["--datasets", "3doh", "--ckpt", "nope.ckpt"], 3, "nope.ckpt"),
        ("full", ["--datasets", "3doh"], 3, "TRAINING.PRETRAINED_LIT"),
        ("full", ["--datasets", "3doh", "--limit", "0"], 2, "--limit"),
        ("full", ["--opts", "DATASET.VAL_DS"], 2, "KEY VALUE"),
    ],
)
def test_eval_errors(
    tmp_path: Path,
    cfg_path: Path,
    smpl_dir: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    extra: list[str],
    code: int,
    message: str,
) -> None:
    data = tmp_path / "data"
    if setup == "nokey":
        write_dataset(data, "3doh", OH3D_SAMPLES, drop_keys=("center",), write_images=False)
    elif setup == "noimage":
        write_dataset(data, "3dpw-all", PW3D_SAMPLES, image_size=(30, 40))
        (data / "dataset_folders/3dpw/imageFiles/flat_guitar_01/image_00003.jpg").unlink()
    elif setup == "full":
        write_dataset(data, "3doh", OH3D_SAMPLES, image_size=(30, 40))
    out = tmp_path / "out"
    rc = main(_args(data, cfg_path, smpl_dir, out, *extra))
    err = capsys.readouterr().err
    assert rc == code, err
    assert message in err
    assert not out.exists()


class FakePredictor:
    """Stand-in for ParePredictor (meshes of ones); can press Ctrl+C during its first batch."""

    def __init__(self, smpl_dir: Path, interrupt: bool = False) -> None:
        import torch

        from pare_studio.core.smpl import SmplBody
        from pare_studio.core.smpl_io import SmplFiles

        self.smpl = SmplBody.from_files(SmplFiles.from_dir(smpl_dir))
        self.device = torch.device("cpu")
        self.backend = "fake"
        self.interrupt = interrupt
        self.calls: list = []

    def predict(self, images: np.ndarray, batch_size: int = 16):
        from pare_studio.results import PareOutput

        self.calls.append(len(images))
        if self.interrupt and len(self.calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl+C during batch 1
        b = len(images)
        z = np.zeros
        return PareOutput(
            np.broadcast_to(np.eye(3, dtype=np.float32), (b, 24, 3, 3)).copy(),
            z((b, 10), np.float32),
            z((b, 3), np.float32),
            z((b, 3), np.float32),
            np.ones((b, 6890, 3), np.float32),
            z((b, 49, 3), np.float32),
            z((b, 49, 2), np.float32),
            z((b, 25, 56, 56), np.float32),
        )

    def close(self) -> None:
        self.calls.append("closed")


def test_ctrl_c_cancels_and_writes_nothing(
    data_dir: Path,
    tmp_path: Path,
    cfg_path: Path,
    smpl_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import pare_studio.core.predictor as predictor_mod

    fake = FakePredictor(smpl_dir, interrupt=True)
    monkeypatch.setattr(predictor_mod, "load_predictor", lambda *a, **k: fake)
    out = tmp_path / "out"
    before = signal.getsignal(signal.SIGINT)
    rc = main(
        _args(
            data_dir,
            cfg_path,
            smpl_dir,
            out,
            "--ckpt",
            "unused.ckpt",
            "--batch-size",
            "1",
            "--datasets",
            "3dpw-all,3doh",
        )
    )
    err = capsys.readouterr().err
    assert rc == 130, err
    assert "cancel" in err.lower()
    assert fake.calls == [1, "closed"]  # stopped before the second batch, predictor released
    assert not out.exists()
    assert signal.getsignal(signal.SIGINT) is before  # handler restored


@pytest.mark.parametrize("with_models", [True, False])
def test_use_gender(
    data_dir: Path,
    tmp_path: Path,
    cfg_path: Path,
    smpl_dir: Path,
    with_models: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """DATASET.USE_GENDER: gendered GT for 3DPW when the male / female models exist (here the
    neutral file under their names), else a warning and neutral GT; 3DOH is always neutral."""
    import pare_studio.core.predictor as predictor_mod

    smpl = tmp_path / "smpl"
    (smpl / "body_models/smpl").mkdir(parents=True)
    for name in ("J_regressor_extra.npy", "J_regressor_h36m.npy", "smpl_mean_params.npz"):
        (smpl / name).symlink_to(smpl_dir / name)
    genders = ("NEUTRAL", "MALE", "FEMALE") if with_models else ("NEUTRAL",)
    for g in genders:
        (smpl / f"body_models/smpl/SMPL_{g}.pkl").symlink_to(
            smpl_dir / "body_models/smpl/SMPL_NEUTRAL.pkl"
        )
    monkeypatch.setattr(predictor_mod, "load_predictor", lambda *a, **k: FakePredictor(smpl))
    rc = main(
        [
            "eval",
            "--cfg",
            str(cfg_path),
            "--smpl-dir",
            str(smpl),
            "--data-dir",
            str(data_dir),
            "--ckpt",
            "unused.ckpt",
            "--opts",
            "DATASET.USE_GENDER",
            "True",
            "LOG_DIR",
            str(tmp_path),
            "DATASET.VAL_DS",
            "3dpw-all_3doh",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    out = tmp_path / "evaluation_mesh_gender_3dpw-all_3doh"
    doc = json.loads((out / "eval_results.json").read_text())
    assert doc["datasets"]["3dpw-all"]["gt_model"] == ("gendered" if with_models else "neutral")
    assert doc["datasets"]["3doh"]["gt_model"] == "neutral"
    assert doc["meta"]["use_gender"] is True
    assert ("warning" in err and "SMPL_MALE.pkl" in err) is (not with_models)


def test_smpl_dir_defaults_to_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pare_studio.cli.evaluate import resolve_smpl_dir

    monkeypatch.setenv("PARE_STUDIO_DATA", str(tmp_path / "empty_store"))
    data = tmp_path / "data"
    assert resolve_smpl_dir(None, data) == data  # nothing anywhere: the loader names data/...
    (data / "body_models/smpl").mkdir(parents=True)
    (data / "body_models/smpl/SMPL_NEUTRAL.pkl").write_bytes(b"x")
    (data / "J_regressor_extra.npy").write_bytes(b"x")
    assert resolve_smpl_dir(None, data) == data.absolute()
    assert resolve_smpl_dir(tmp_path / "mine", data) == tmp_path / "mine"
