"""iter_evaluate and EvalReport, with a stand-in predictor whose meshes are known offsets of
the ground truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from pare_studio.analysis.datasets import load_dataset
from pare_studio.analysis.eval_report import EvalReport, SampleErrors
from pare_studio.analysis.evaluate import evaluate, ground_truth_vertices, iter_evaluate
from pare_studio.cancel import CancelToken
from pare_studio.errors import Cancelled, DatasetError
from pare_studio.results import PareOutput
from tests.analysis.synthetic_eval_data import OH3D_SAMPLES, PW3D_SAMPLES, write_dataset


@pytest.fixture(scope="module")
def smpl_body(smpl_dir: Path):
    from pare_studio.core.smpl import SmplBody
    from pare_studio.core.smpl_io import SmplFiles

    return SmplBody.from_files(SmplFiles.from_dir(smpl_dir))


@pytest.fixture(scope="module")
def j_reg(smpl_dir: Path) -> np.ndarray:
    return np.load(smpl_dir / "J_regressor_h36m.npy")


class ShiftedGtPredictor:
    """Returns, for the k-th crop it is asked about, ``vertices[k]`` (given up front)."""

    def __init__(self, vertices: np.ndarray) -> None:
        self.vertices = vertices.astype(np.float32)
        self.seen = 0
        self.crops: list[np.ndarray] = []

    def predict(self, images: np.ndarray, batch_size: int = 16) -> PareOutput:
        b = images.shape[0]
        self.crops.append(images)
        v = self.vertices[self.seen : self.seen + b]
        self.seen += b
        z = np.zeros
        return PareOutput(
            pred_pose=np.broadcast_to(np.eye(3, dtype=np.float32), (b, 24, 3, 3)).copy(),
            pred_shape=np.full((b, 10), 0.5, np.float32),
            pred_cam=np.tile(np.array([0.9, 0.1, 0.2], np.float32), (b, 1)),
            pred_cam_t=z((b, 3), np.float32),
            smpl_vertices=v,
            smpl_joints3d=z((b, 49, 3), np.float32),
            smpl_joints2d=z((b, 49, 2), np.float32),
            pred_segm_mask=z((b, 25, 56, 56), np.float32),
        )


@pytest.fixture
def pw3d(tmp_path: Path):
    write_dataset(tmp_path, "3dpw-all", PW3D_SAMPLES, image_size=(120, 160))
    write_dataset(tmp_path, "3doh", OH3D_SAMPLES, image_size=(120, 160), seed=1)
    return load_dataset("3dpw-all", tmp_path), load_dataset("3doh", tmp_path)


def test_translated_meshes_give_v2v_only(pw3d, smpl_body, j_reg) -> None:
    ds, oh = pw3d
    gt = ground_truth_vertices(ds, np.arange(len(ds)), smpl_body, None)
    gt_oh = ground_truth_vertices(oh, np.arange(1), smpl_body, None)
    shifts = np.array([[0.003, 0.004, 0.012], [0.0, 0.05, 0.0], [0.0, 0.0, 0.1], [0.02, 0.0, 0.0]])
    pred = np.concatenate([gt + shifts[:, None], gt_oh])  # 3dpw shifted, 3doh exact
    predictor = ShiftedGtPredictor(pred)
    gen = iter_evaluate(predictor, [ds, oh], smpl_body, None, j_reg, batch_size=3, workers=1)
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            report = stop.value
            break
    assert [(p.stage, p.done, p.total) for p in progress] == [
        ("eval:3dpw-all", 0, 4),
        ("eval:3dpw-all", 3, 4),
        ("eval:3dpw-all", 4, 4),
        ("eval:3doh", 0, 1),
        ("eval:3doh", 1, 1),
    ]
    assert predictor.seen == 5 and predictor.crops[0].shape == (3, 3, 224, 224)
    res = report.results["3dpw-all"]
    # A translation moves every vertex by |t| and is removed by the pelvis alignment.
    np.testing.assert_allclose(res.v2v, [13.0, 50.0, 100.0, 20.0], atol=1e-3)
    np.testing.assert_allclose(res.mpjpe, 0.0, atol=1e-3)
    np.testing.assert_allclose(res.pampjpe, 0.0, atol=1e-3)
    assert res.mpjpe.shape == (4, 14) and res.gt_model == "neutral"
    np.testing.assert_allclose(report.results["3doh"].v2v, [0.0], atol=1e-4)
    # Aggregates: 3DPW-Test = samples 0..2 (downtown_bar_00, flat_guitar_01); occluded = sample 2.
    assert report.row("3dpw-all").v2v == pytest.approx((13 + 50 + 100 + 20) / 4, abs=1e-3)
    assert report.row("3dpw-all", "3DPW-Test").n == 3
    assert report.row("3dpw-all", "3DPW-Test").v2v == pytest.approx((13 + 50 + 100) / 3, abs=1e-3)
    assert report.row("3dpw-all", "occluded").v2v == pytest.approx(100.0, abs=1e-3)
    assert report.row("3dpw-all", "downtown_bar_00").n == 2
    assert report.row("3dpw-all", "courtyard_walkDogs_00").v2v == pytest.approx(20.0, abs=1e-3)
    names = [r.name for r in report.summaries()]
    assert names == [
        "all",
        "3DPW-Test",
        "occluded",
        "downtown_bar_00",
        "flat_guitar_01",
        "courtyard_walkDogs_00",
        "all",
        "images",
    ]


def test_gendered_ground_truth_only_for_3dpw(pw3d, smpl_body, j_reg) -> None:
    ds, oh = pw3d

    class Body:
        def __init__(self, value: float) -> None:
            self.value = value
            self.device = smpl_body.device

        def forward_axis_angle(self, pose, betas):
            import torch

            return torch.full((pose.shape[0], 6890, 3), self.value), None

    male, female, neutral = Body(1.0), Body(2.0), Body(3.0)
    v = ground_truth_vertices(ds, np.arange(4), neutral, (male, female))
    np.testing.assert_array_equal(v[:, 0, 0], [1.0, 2.0, 2.0, 1.0])  # genders m, f, f, m
    v_oh = ground_truth_vertices(oh, np.arange(1), neutral, (male, female))
    np.testing.assert_array_equal(v_oh[:, 0, 0], [3.0])  # 3DOH is always neutral
    np.testing.assert_array_equal(
        ground_truth_vertices(ds, np.arange(4), neutral, None)[:, 0, 0], 3.0
    )


def test_real_gt_matches_smpl_forward(pw3d, smpl_body) -> None:
    import torch

    ds, _ = pw3d
    v = ground_truth_vertices(ds, np.array([1, 3]), smpl_body, None)
    with torch.inference_mode():
        ref, _ = smpl_body.forward_axis_angle(
            torch.tensor(ds.pose[[1, 3]], dtype=torch.float32),
            torch.tensor(ds.betas[[1, 3]], dtype=torch.float32),
        )
    np.testing.assert_array_equal(v, ref.numpy())
    assert np.ptp(v[0] - v[1]) > 0.01  # different poses give different meshes


def test_cancel_stops_between_batches(pw3d, smpl_body, j_reg) -> None:
    ds, _ = pw3d
    predictor = ShiftedGtPredictor(np.zeros((4, 6890, 3)))
    cancel = CancelToken()
    gen = iter_evaluate(
        predictor, ds, smpl_body, None, j_reg, batch_size=1, cancel=cancel, workers=1
    )
    assert next(gen).done == 0
    assert next(gen).done == 1
    cancel.cancel()
    with pytest.raises(Cancelled):
        next(gen)
    assert predictor.seen == 1


def test_missing_image_fails_before_any_work(pw3d, smpl_body, j_reg) -> None:
    ds, oh = pw3d
    (oh.image_dir / OH3D_SAMPLES[0].imgname).unlink()
    predictor = ShiftedGtPredictor(np.zeros((5, 6890, 3)))
    with pytest.raises(DatasetError, match="0013.png"):
        evaluate(predictor, [ds, oh], smpl_body, None, j_reg)
    assert predictor.seen == 0


def _report() -> EvalReport:
    def errors(name: str, seqs: list[str], base: float) -> SampleErrors:
        n = len(seqs)
        per = base + np.arange(n, dtype=float)[:, None] + np.zeros((n, 14))
        return SampleErrors(
            dataset=name,
            imgname=np.array([f"imageFiles/{s}/image_{i:05d}.jpg" for i, s in enumerate(seqs)]),
            sequence=np.array(seqs),
            mpjpe=per,
            pampjpe=per / 2,
            v2v=per[:, 0] * 1.5,
            pose=np.zeros((n, 24, 3, 3), np.float32),
            shape=np.zeros((n, 10), np.float32),
            cam=np.zeros((n, 3), np.float32),
            vertices=np.ones((n, 6890, 3), np.float32),
        )

    return EvalReport(
        results={
            "3dpw-all": errors(
                "3dpw-all", ["downtown_bar_00", "outdoors_golf_00", "downtown_bar_00"], 10.0
            ),
            "3doh": errors("3doh", ["x", "y"], 100.0),
        },
        meta={"ckpt": "a.ckpt"},
    )


def test_report_files(tmp_path: Path) -> None:
    report = _report()
    out = tmp_path / "res" / "sub"
    written = report.write(out)
    assert sorted(p.name for p in written) == [
        "errors_3doh.npz",
        "errors_3dpw-all.npz",
        "eval_results.csv",
        "eval_results.json",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in written)  # no temp files
    doc = json.loads((out / "eval_results.json").read_text())
    assert doc["units"] == "mm" and doc["meta"] == {"ckpt": "a.ckpt"}
    pw = doc["datasets"]["3dpw-all"]
    assert pw["overall"] == {"n": 3, "mpjpe": 11.0, "pampjpe": 5.5, "v2v": 16.5}
    assert pw["subsets"]["3DPW-Test"] == {"n": 2, "mpjpe": 11.0, "pampjpe": 5.5, "v2v": 16.5}
    assert pw["subsets"]["occluded"] == {"n": 1, "mpjpe": 11.0, "pampjpe": 5.5, "v2v": 16.5}
    assert pw["sequences"]["outdoors_golf_00"]["mpjpe"] == 11.0
    assert pw["sequences"]["downtown_bar_00"]["mpjpe"] == 11.0  # samples 0 and 2: (10 + 12) / 2
    assert doc["datasets"]["3doh"]["overall"]["mpjpe"] == 100.5
    assert doc["datasets"]["3doh"]["subsets"] == {}  # 3DPW subsets only for 3DPW
    rows = list(csv.DictReader((out / "eval_results.csv").open()))
    assert [(r["dataset"], r["group"], r["name"]) for r in rows] == [
        ("3dpw-all", "all", "all"),
        ("3dpw-all", "subset", "3DPW-Test"),
        ("3dpw-all", "subset", "occluded"),
        ("3dpw-all", "sequence", "downtown_bar_00"),
        ("3dpw-all", "sequence", "outdoors_golf_00"),
        ("3doh", "all", "all"),
        ("3doh", "sequence", "x"),
        ("3doh", "sequence", "y"),
    ]
    assert float(rows[5]["v2v_mm"]) == pytest.approx(150.75)
    with np.load(out / "errors_3dpw-all.npz") as z:
        assert "vertices" not in z.files
        np.testing.assert_array_equal(z["mpjpe"], report.results["3dpw-all"].mpjpe)
        assert z["imgname"][1] == "imageFiles/outdoors_golf_00/image_00001.jpg"
        assert str(z["units"]) == "mm" and z["pose"].shape == (3, 24, 3, 3)
    report.write(out, save_vertices=True)
    with np.load(out / "errors_3doh.npz") as z:
        assert z["vertices"].shape == (2, 6890, 3)
    table = report.table()
    assert "3DPW-Test" in table and "11.0" in table and "downtown_bar_00" not in table
    assert "downtown_bar_00" in report.table(sequences=True)
