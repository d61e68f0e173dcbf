"""Occlusion sensitivity library: geometry, fills, probe / sweep, error modes, cancel.

Most checks use a stand-in predictor whose mesh depends on where the occluder is (so every
number is computable by hand); one test runs the synthetic checkpoint on a coarse grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.analysis.occlusion import (
    OccluderRect,
    compute_baseline,
    grid_shape,
    grid_windows,
    iter_sweep,
    occlude,
    occlude_grid,
    probe,
    sweep,
)
from pare_studio.analysis.occlusion_errors import JOINTS_H36M, JOINTS_SMPL49, GroundTruth
from pare_studio.cancel import CancelToken
from pare_studio.errors import Cancelled, InputArrayError
from pare_studio.results import PareOutput, Progress

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
H36M_TO_J14 = [6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10]  # spec §3.3


def _crop(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(3, 224, 224)).astype(np.float32)


# ------------------------------------------------------------------------------ geometry


def test_reference_grid_40_40() -> None:
    assert grid_shape(40, 40) == 6
    wins = grid_windows(40, 40)
    assert len(wins) == 36
    assert wins[0].as_tuple() == (0, 0, 40, 40)
    assert wins[5].as_tuple() == (200, 0, 24, 40)  # row-major: x varies fastest
    assert wins[6].as_tuple() == (0, 40, 40, 40)
    assert wins[35].as_tuple() == (200, 200, 24, 24)  # last row / column 24 px
    # windows tile the crop exactly once
    cover = np.zeros((224, 224), int)
    for w in wins:
        cover[w.y : w.y1, w.x : w.x1] += 1
    assert (cover == 1).all()


def test_other_grids_and_bad_sizes() -> None:
    assert grid_shape(112, 112) == 2
    assert [w.as_tuple() for w in grid_windows(112, 112)] == [
        (0, 0, 112, 112), (112, 0, 112, 112), (0, 112, 112, 112), (112, 112, 112, 112)
    ]  # fmt: skip
    assert grid_shape(30, 50) == 5  # ceil(194 / 50 + 1)
    assert grid_windows(30, 50)[4].as_tuple() == (200, 0, 24, 30)
    assert grid_shape(224, 10) == 1
    assert grid_shape(20, 10) == 22  # ceil(20.4 + 1): overlapping windows, the last 14 px
    assert grid_windows(20, 10)[21].as_tuple() == (210, 0, 14, 20)
    for size, stride in ((0, 40), (225, 40), (40, 0), (40.0, 40)):
        with pytest.raises(InputArrayError):
            grid_shape(size, stride)


def test_rect_clipping_and_rounding() -> None:
    assert OccluderRect(-10, 200, 50, 50).clipped().as_tuple() == (0, 200, 40, 24)
    assert OccluderRect(300, 0, 10, 10).clipped().is_empty
    assert OccluderRect(-50, -50, 40, 40).clipped().is_empty
    assert OccluderRect(5, 5, 0, 30).is_empty
    assert OccluderRect.from_float(10.4, 20.6, 30.2, 9.9).as_tuple() == (10, 21, 31, 9)
    assert OccluderRect(10, 20, 30, 40).scaled(2.0).as_tuple() == (20, 40, 60, 80)
    with pytest.raises(InputArrayError):
        OccluderRect(0, 0, -1, 5)
    with pytest.raises(InputArrayError):
        OccluderRect(0.5, 0, 1, 5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- fills


def test_mean_fill_is_zero_inside_and_untouched_outside() -> None:
    crop = _crop()
    before = crop.copy()
    rect = OccluderRect(30, 50, 40, 20)
    out = occlude(crop, rect, "mean")
    assert (crop == before).all()  # input not modified
    assert (out[:, 50:70, 30:70] == 0.0).all()
    mask = np.ones((224, 224), bool)
    mask[50:70, 30:70] = False
    assert np.array_equal(out[:, mask], crop[:, mask])
    # a zero-size and an off-crop rectangle change nothing
    assert np.array_equal(occlude(crop, OccluderRect(30, 50, 0, 0)), crop)
    assert np.array_equal(occlude(crop, OccluderRect(230, 0, 40, 40)), crop)
    # the reference's --pixel value
    assert (occlude(crop, rect, 0.5)[:, 50:70, 30:70] == 0.5).all()


def test_black_and_noise_fills() -> None:
    from pare_studio.pipeline.crops import normalize_crops

    crop = _crop(1)
    rect = OccluderRect(200, 200, 40, 40)  # clipped to 24 x 24
    black = occlude(crop, rect, "black")
    expected = normalize_crops(np.zeros((1, 224, 224, 3), np.uint8))[0, :, 0, 0]
    assert np.array_equal(
        black[:, 200:, 200:], np.broadcast_to(expected[:, None, None], (3, 24, 24))
    )
    np.testing.assert_allclose(expected, -MEAN / STD, rtol=1e-6)
    assert np.array_equal(black[:, :200], crop[:, :200])

    n1 = occlude(crop, rect, "noise", rng=np.random.default_rng(3))
    n2 = occlude(crop, rect, "noise", rng=np.random.default_rng(3))
    assert np.array_equal(n1, n2)
    rgb = n1[:, 200:, 200:] * STD[:, None, None] + MEAN[:, None, None]
    assert rgb.min() >= -1e-6 and rgb.max() <= 1 + 1e-6
    assert rgb.std() > 0.2  # uniform [0, 1]: std 0.29
    assert np.array_equal(n1[:, :200], crop[:, :200])
    with pytest.raises(InputArrayError):
        occlude(crop, rect, "grey")
    with pytest.raises(InputArrayError):
        occlude(crop[None], rect)


def test_occlude_grid_matches_single_occlusions() -> None:
    crop = _crop(2)
    images, wins = occlude_grid(crop, 40, 40, "black")
    assert images.shape == (36, 3, 224, 224) and images.dtype == np.float32
    for k in (0, 5, 17, 35):
        assert np.array_equal(images[k], occlude(crop, wins[k], "black"))


# ---------------------------------------------------------------------- stand-in predictor

#: Toy regressor: H36M joint j is vertex j.
TOY_REG = np.zeros((17, 6890))
TOY_REG[np.arange(17), np.arange(17)] = 1.0
GT17 = np.random.default_rng(7).uniform(-0.5, 0.5, size=(17, 3))
GT14 = GT17[H36M_TO_J14] - GT17[0]
#: Baseline: right wrist (H36M 16 = J14 index 6) off by 30 mm along x.
WRIST_SHIFT = np.array([0.03, 0.0, 0.0])
HEAD_SHIFT = np.array([0.0, 0.05, 0.0])  # perturbation of headtop (H36M 10) at position 3


def _rot_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _toy_joints17(k: int | None) -> np.ndarray:
    """H36M joints the stand-in predicts with the occluder at grid position k (None = none)."""
    if k is None:
        j = GT17.copy()
        j[16] += WRIST_SHIFT
        return j + 0.2  # a global shift: removed by the pelvis alignment
    scale = 1.0 + 0.1 * (k + 1)
    rel = (GT17 - GT17[0]) @ (scale * _rot_z(10.0 * k)).T
    j = rel + GT17[0] + np.array([0.1, -0.3, 2.0])
    if k == 3:
        j[10] += HEAD_SHIFT
    return j


class ToyPredictor:
    """Predicts :func:`_toy_joints17` of the occluded grid position of a crop of ones."""

    def __init__(self, size: int = 112, stride: int = 112) -> None:
        self.starts = {w.as_tuple()[:2]: k for k, w in enumerate(grid_windows(size, stride))}
        self.calls: list[int] = []

    def position(self, image: np.ndarray) -> int | None:
        ys, xs = np.nonzero((image != 1.0).any(axis=0))
        if ys.size == 0:
            return None
        return self.starts[(int(xs.min()), int(ys.min()))]

    def predict(self, images: np.ndarray, batch_size: int = 16) -> PareOutput:
        self.calls.append(len(images))
        b = len(images)
        verts = np.zeros((b, 6890, 3), np.float32)
        for i, img in enumerate(images):
            pos = self.position(img)
            verts[i, :17] = _toy_joints17(pos)
            # other "joints": position-dependent too (joint 39, the 49-joint root, among them)
            verts[i, 17:49] = np.linspace(0, 1, 32 * 3).reshape(32, 3) * (
                0.5 if pos is None else pos + 1
            )
        z = np.zeros
        return PareOutput(
            pred_pose=np.broadcast_to(np.eye(3, dtype=np.float32), (b, 24, 3, 3)).copy(),
            pred_shape=z((b, 10), np.float32),
            pred_cam=np.tile(np.float32([0.9, 0.0, 0.1]), (b, 1)),
            pred_cam_t=z((b, 3), np.float32),
            smpl_vertices=verts,
            smpl_joints3d=verts[:, :49].copy(),
            smpl_joints2d=z((b, 49, 2), np.float32),
            pred_segm_mask=z((b, 25, 56, 56), np.float32),
        )


ONES = np.ones((3, 224, 224), np.float32)


def _run(gen):  # noqa: ANN001, ANN202 - generator helper
    progress = []
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            return stop.value, progress


def _independent_pa(p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Per-joint error after the least-squares similarity transform of p (14,3) onto g, metres."""
    mp, mg = p.mean(0), g.mean(0)
    x, y = p - mp, g - mg
    u, _, vt = np.linalg.svd(x.T @ y)
    d = np.eye(3)
    d[2, 2] = np.sign(np.linalg.det(vt.T @ u.T))
    r = vt.T @ d @ u.T
    s = np.trace(r @ x.T @ y) / (x**2).sum()
    return np.linalg.norm(s * x @ r.T + mg - g, axis=1)


def test_gt_mode_reproduces_hand_computed_errors() -> None:
    pred = ToyPredictor()
    gt = GroundTruth.from_vertices(np.vstack([GT17, np.zeros((6890 - 17, 3))]), TOY_REG)
    np.testing.assert_allclose(gt.joints14, GT14)
    result, progress = _run(iter_sweep(pred, ONES, 112, 112, batch_size=2, gt=gt))
    assert pred.calls == [2, 2, 1]  # 5 crops (baseline first) in near-equal batches
    assert [p.done for p in progress] == [0, 2, 4, 5]
    assert all(isinstance(p, Progress) and p.total == 5 for p in progress)
    assert result.grid_shape == (2, 2) and result.kinds == ("mpjpe", "pampjpe", "displacement")

    # Unoccluded: only the right wrist is wrong, by 30 mm; PA-MPJPE is not zero there.
    # (The stand-in's meshes are float32 as PARE's: agreement to 1 um.)
    expected_base = np.zeros(14)
    expected_base[6] = 30.0
    np.testing.assert_allclose(result.baseline.mpjpe, expected_base, atol=1e-3)
    base14 = GT14.copy()
    base14[6] += WRIST_SHIFT
    np.testing.assert_allclose(
        result.baseline.pampjpe, _independent_pa(base14, GT14) * 1000, atol=1e-3
    )

    norms = np.linalg.norm(GT14, axis=1)
    for k in range(4):
        r, c = divmod(k, 2)
        scale, rot = 1.0 + 0.1 * (k + 1), _rot_z(10.0 * k)
        pred14 = GT14 @ (scale * rot).T
        if k == 3:
            pred14[13] += HEAD_SHIFT  # headtop
        mp = np.linalg.norm(pred14 - GT14, axis=1) * 1000
        if k == 0:  # pure scale: |s g - g| = 0.1 |g|
            np.testing.assert_allclose(mp, 100 * norms, rtol=1e-6, atol=1e-3)
        np.testing.assert_allclose(result.mpjpe[r, c], mp, rtol=1e-6, atol=1e-3)
        if k < 3:  # a similarity transform of the ground truth: PA-MPJPE vanishes
            np.testing.assert_allclose(result.pampjpe[r, c], 0.0, atol=1e-3)
        else:
            pa = _independent_pa(pred14, GT14) * 1000
            assert pa.max() > 5.0
            np.testing.assert_allclose(result.pampjpe[r, c], pa, atol=1e-3)
        # displacement from the unoccluded prediction, pelvis-aligned
        np.testing.assert_allclose(
            result.displacement[r, c],
            np.linalg.norm(pred14 - base14, axis=1) * 1000,
            rtol=1e-6,
            atol=1e-3,
        )
    assert result.heatmap("mpjpe", "headtop")[1, 1] == result.mpjpe[1, 1, 13]
    np.testing.assert_allclose(result.mean_heatmap("pampjpe"), result.pampjpe.mean(-1))
    assert result.baseline.joint_source == JOINTS_H36M


def test_grid_run_equals_single_runs_and_zero_patch() -> None:
    pred = ToyPredictor()
    result = sweep(pred, ONES, 112, 112, batch_size=3, j_regressor_h36m=TOY_REG, keep_outputs=True)
    assert result.mpjpe is None and result.kinds == ("displacement",)
    assert result.outputs is not None and len(result.outputs) == 4
    base = result.baseline
    for k, win in enumerate(grid_windows(112, 112)):
        one = probe(pred, ONES, win, "mean", baseline=base)
        r, c = divmod(k, 2)
        assert one.rect == win and one.output.smpl_vertices.shape == (1, 6890, 3)
        assert np.array_equal(one.displacement, result.displacement[r, c])
        assert np.array_equal(one.displacement49, result.displacement49[r, c])
        assert np.array_equal(one.output.smpl_vertices[0], result.outputs.smpl_vertices[k])
    # 49-joint displacement: joints relative to joint 39 (a vertex of value k-dependent here)
    j49 = result.outputs.smpl_joints3d.astype(np.float64)
    b49 = base.output.smpl_joints3d[0].astype(np.float64)
    expected = np.linalg.norm((j49 - j49[:, 39:40]) - (b49 - b49[39]), axis=-1) * 1000
    np.testing.assert_allclose(result.displacement49.reshape(4, 49), expected, rtol=1e-9)

    zero = probe(pred, ONES, OccluderRect(50, 60, 0, 0), baseline=base)
    assert zero.rect.is_empty
    assert (zero.displacement == 0).all() and (zero.displacement49 == 0).all()
    assert zero.mean_displacement == 0.0 and (zero.vertex_displacement() == 0).all()
    # a fresh probe computes its own baseline (two forward passes)
    pred.calls.clear()
    alone = probe(pred, ONES, grid_windows(112, 112)[2], j_regressor_h36m=TOY_REG)
    assert pred.calls == [1, 1]
    assert np.array_equal(alone.displacement, result.displacement[1, 0])
    # a baseline of another crop is refused
    with pytest.raises(InputArrayError):
        probe(pred, _crop(), OccluderRect(0, 0, 5, 5), baseline=base)


def test_displacement_without_regressor_uses_joints49() -> None:
    pred = ToyPredictor()
    base = compute_baseline(pred, ONES)
    assert base.joint_source == JOINTS_SMPL49
    res = probe(pred, ONES, grid_windows(112, 112)[1], baseline=base)
    j = res.output.smpl_joints3d[0].astype(np.float64)
    b = base.output.smpl_joints3d[0].astype(np.float64)
    idx = [25 + i for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 18)]
    expected = np.linalg.norm((j[idx] - j[39]) - (b[idx] - b[39]), axis=1) * 1000
    np.testing.assert_allclose(res.displacement, expected, rtol=1e-9)


def test_cancel_stops_between_batches() -> None:
    pred = ToyPredictor(40, 40)
    token = CancelToken()
    gen = iter_sweep(pred, ONES, 40, 40, batch_size=8, cancel=token)
    assert next(gen).done == 0
    assert next(gen).done == 8
    token.cancel()
    with pytest.raises(Cancelled):
        next(gen)
    assert pred.calls == [8]  # nothing ran after the cancel

    token2 = CancelToken()
    token2.cancel()
    gen2 = iter_sweep(pred, ONES, 40, 40, cancel=token2)
    next(gen2)
    with pytest.raises(Cancelled):
        next(gen2)
    assert pred.calls == [8]


def test_bad_arguments() -> None:
    pred = ToyPredictor()
    with pytest.raises(InputArrayError):
        next(iter_sweep(pred, ONES, 112, 112, batch_size=0))
    with pytest.raises(InputArrayError):
        next(iter_sweep(pred, ONES, 112, 112, fill="purple"))
    with pytest.raises(InputArrayError):
        next(iter_sweep(pred, ONES[:2], 112, 112))
    base = compute_baseline(pred, ONES)
    with pytest.raises(InputArrayError):  # the baseline carries the regressor
        probe(pred, ONES, OccluderRect(0, 0, 4, 4), baseline=base, j_regressor_h36m=TOY_REG)
    with pytest.raises(InputArrayError):
        sweep(pred, ONES, 112, 112).heatmap("mpjpe")


# ---------------------------------------------------------------------- real predictor


def test_synthetic_checkpoint_coarse_grid(
    cfg_path: Path, ckpt_path: Path, smpl_dir: Path, parity_inputs: np.ndarray
) -> None:
    from pare_studio.core.predictor import load_predictor

    reg = np.load(smpl_dir / "J_regressor_h36m.npy")
    crop = np.ascontiguousarray(parity_inputs[0])
    with load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="auto") as pred:
        # ground truth: the synthetic template mesh (any fixed mesh will do)
        gt_verts = pred.smpl.layer.v_template.detach().cpu().numpy()
        gt = GroundTruth.from_vertices(gt_verts, reg)
        result = sweep(pred, crop, 112, 112, batch_size=5, gt=gt, keep_outputs=True)
        win = grid_windows(112, 112)[3]
        single = probe(pred, crop, win, baseline=result.baseline)
        zero = probe(pred, crop, OccluderRect(0, 0, 0, 0), baseline=result.baseline)

    for key in ("displacement", "mpjpe", "pampjpe"):
        arr = getattr(result, key)
        assert arr.shape == (2, 2, 14) and np.isfinite(arr).all()
    assert result.displacement.max() > 0.0  # occluders change the synthetic network's output
    # batch of 5 vs batch of 1: equal up to float noise
    np.testing.assert_allclose(single.displacement, result.displacement[1, 1], atol=0.05)
    np.testing.assert_allclose(single.mpjpe, result.mpjpe[1, 1], atol=0.05)
    assert zero.displacement.max() < 0.05

    # GT errors recomputed independently from the kept meshes
    def j14(v: np.ndarray) -> np.ndarray:
        j = reg @ v.astype(np.float64)
        return j[H36M_TO_J14] - j[0]

    gt14 = j14(gt_verts)
    for k in range(4):
        p14 = j14(result.outputs.smpl_vertices[k])
        r, c = divmod(k, 2)
        np.testing.assert_allclose(
            result.mpjpe[r, c], np.linalg.norm(p14 - gt14, axis=1) * 1000, rtol=1e-6
        )
        np.testing.assert_allclose(
            result.pampjpe[r, c], _independent_pa(p14, gt14) * 1000, rtol=1e-6, atol=1e-6
        )
    b14 = j14(result.baseline.output.smpl_vertices[0])
    np.testing.assert_allclose(
        result.baseline.mpjpe, np.linalg.norm(b14 - gt14, axis=1) * 1000, rtol=1e-6
    )
