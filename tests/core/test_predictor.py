"""ParePredictor: parity through load_predictor, batching, input checks, the runner split."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

from pare_studio.cancel import CancelToken
from pare_studio.core.predictor import HEAD_KEYS, ParePredictor, TorchRunner, load_predictor
from pare_studio.core.smpl import SmplBody
from pare_studio.core.smpl_io import SmplFiles
from pare_studio.errors import (
    Cancelled,
    CheckpointError,
    ConfigError,
    InputArrayError,
    SmplModelError,
)
from pare_studio.results import PREDICT_KEYS, PareOutput
from tests.conftest import assert_parity


@pytest.fixture(scope="module")
def predictor(cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> Iterator[ParePredictor]:
    # the eager PyTorch network is the ground truth; the fast backends have their own tests
    pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="torch")
    yield pred
    pred.close()


@pytest.fixture(scope="module")
def body(smpl_dir: Path) -> SmplBody:
    return SmplBody.from_files(SmplFiles.from_dir(smpl_dir))


def test_end_to_end_parity_all_eight_arrays(
    predictor: ParePredictor, parity_inputs: np.ndarray, parity_expected: dict[str, np.ndarray]
) -> None:
    # batch 3 -> two network calls (3 + 1), so batching and concatenation are covered too
    out = predictor.predict(parity_inputs, batch_size=3)
    assert isinstance(out, PareOutput) and len(out) == 4
    ours = out.to_reference_dict()
    assert tuple(ours) == PREDICT_KEYS
    errors = {}
    for key in PREDICT_KEYS:
        assert ours[key].dtype == np.float32, key
        assert_parity(ours[key], parity_expected[key], key)
        errors[key] = float(np.abs(ours[key].astype(np.float64) - parity_expected[key]).max())
    print("max abs errors:", {k: f"{v:.2e}" for k, v in errors.items()})
    assert predictor.faces.shape == (13776, 3) and predictor.faces.dtype == np.int64
    assert predictor.device == torch.device("cpu") and predictor.backend == "torch"
    assert isinstance(predictor.smpl, SmplBody)


def test_input_validation(predictor: ParePredictor, parity_inputs: np.ndarray) -> None:
    with pytest.raises(InputArrayError, match=r"\(N, 3, 224, 224\)"):
        predictor.predict(parity_inputs[:, :, :112, :112])
    with pytest.raises(ValueError, match="float32"):  # InputArrayError is a ValueError
        predictor.predict(np.zeros((1, 3, 224, 224), np.uint8))
    bad = parity_inputs[:1].copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(InputArrayError, match="NaN"):
        predictor.predict(bad)
    with pytest.raises(InputArrayError, match="batch_size"):
        predictor.predict(parity_inputs[:1], batch_size=0)
    with pytest.raises(InputArrayError, match="numpy array"):
        predictor.predict(torch.zeros(1, 3, 224, 224))  # type: ignore[arg-type]
    empty = predictor.predict(parity_inputs[:0])
    assert len(empty) == 0 and empty.smpl_vertices.shape == (0, 6890, 3)
    assert empty.pred_segm_mask.shape == (0, 25, 56, 56)


class _LookupRunner:
    """Fake network: returns the reference head outputs of the crop it recognises."""

    name = "lookup"
    device = torch.device("cpu")

    def __init__(self, inputs: np.ndarray, expected: Mapping[str, np.ndarray]) -> None:
        self.keys = inputs.reshape(len(inputs), -1)[:, :8]
        self.expected = expected
        self.calls: list[int] = []
        self.closed = False

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        assert images.dtype == np.float32 and images.flags.c_contiguous
        self.calls.append(len(images))
        idx = [int(np.flatnonzero((self.keys == im.reshape(-1)[:8]).all(1))[0]) for im in images]
        return {k: self.expected[k][idx] for k in HEAD_KEYS}

    def close(self) -> None:
        self.closed = True


def test_runner_split_batches_progress_cancel(
    body: SmplBody, parity_inputs: np.ndarray, parity_expected: dict[str, np.ndarray]
) -> None:
    runner = _LookupRunner(parity_inputs, parity_expected)
    pred = ParePredictor(runner, body, device="cpu")
    order = [2, 0, 3, 1, 1]
    seen: list[tuple[int, int]] = []
    out = pred.predict(
        parity_inputs[order], batch_size=2, progress=lambda d, t: seen.append((d, t))
    )
    assert runner.calls == [2, 2, 1]
    assert seen == [(2, 5), (4, 5), (5, 5)]
    for key in PREDICT_KEYS:  # numpy heads (as an ONNX runner returns them) -> full outputs
        assert_parity(out.to_reference_dict()[key], parity_expected[key][order], key)

    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        pred.predict(parity_inputs, cancel=token)
    pred.close()
    assert runner.closed
    with pytest.raises(RuntimeError, match="closed"):
        pred.predict(parity_inputs)


def test_outputs_from_6d_heads(body: SmplBody, parity_expected: dict[str, np.ndarray]) -> None:
    """A runner may stop before 6-D -> rotation: (B, 144) poses are converted the same way."""
    rot = torch.from_numpy(parity_expected["pred_pose"])
    six = rot[..., :2].reshape(4, 24, 6)  # row-major 3x2 = first two columns
    heads = {k: parity_expected[k] for k in HEAD_KEYS}
    heads["pred_pose"] = six.reshape(4, 144).numpy()
    pred = ParePredictor(_LookupRunner(np.zeros((1, 3, 224, 224), np.float32), {}), body)
    out = pred.outputs_from_heads(heads)
    assert_parity(out.pred_pose, parity_expected["pred_pose"], "pred_pose")
    assert_parity(out.smpl_vertices, parity_expected["smpl_vertices"], "smpl_vertices")


def test_torch_runner_is_inference_mode() -> None:
    captured = {}

    class Net(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            captured["inference"] = torch.is_inference_mode_enabled()
            captured["training"] = self.training
            return {k: x.sum().reshape(1) for k in HEAD_KEYS}

    runner = TorchRunner(Net().train(), torch.device("cpu"))
    runner(np.zeros((1, 3, 4, 4), np.float32))
    assert captured == {"inference": True, "training": False}


def test_load_predictor_errors(
    cfg_path: Path, ckpt_path: Path, smpl_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        load_predictor(cfg_path, ckpt_path, smpl_dir, backend="tensorrt")
    bad_device = "cuda:99" if torch.cuda.is_available() else "cuda"
    with pytest.raises(ConfigError, match="CUDA"):
        load_predictor(cfg_path, ckpt_path, smpl_dir, device=bad_device)
    with pytest.raises(ConfigError, match="unknown device"):
        load_predictor(cfg_path, ckpt_path, smpl_dir, device="gpu0")
    with pytest.raises(CheckpointError, match="not found"):
        load_predictor(cfg_path, tmp_path / "missing.ckpt", smpl_dir, device="cpu")
    with pytest.raises(CheckpointError, match="--ckpt"):
        load_predictor(cfg_path, None, smpl_dir, device="cpu")
    with pytest.raises(SmplModelError, match="--smpl-dir"):
        load_predictor(cfg_path, ckpt_path, None, device="cpu")
    with pytest.raises(SmplModelError, match="SMPL_NEUTRAL"):
        load_predictor(cfg_path, ckpt_path, tmp_path, device="cpu")
    odd = tmp_path / "odd_joints.yaml"
    odd.write_text(cfg_path.read_text().replace("NUM_JOINTS: 24", "NUM_JOINTS: 17"))
    with pytest.raises(ConfigError, match="NUM_JOINTS is 17 in .*odd_joints.yaml.*24"):
        load_predictor(odd, ckpt_path, smpl_dir, device="cpu")
