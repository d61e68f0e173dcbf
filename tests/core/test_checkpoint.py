"""Checkpoint reading without code execution, strict loading, and every way a file can be wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pare_studio.core.checkpoint import (
    InertStub,
    describe_architecture,
    load_checkpoint_object,
    load_network_weights,
    read_state_dict,
)
from pare_studio.core.network import PareNetwork, build_network
from pare_studio.errors import CheckpointError


@pytest.fixture(scope="module")
def state_dict(ckpt_path: Path) -> dict[str, torch.Tensor]:
    return read_state_dict(ckpt_path)


@pytest.fixture(scope="module")
def network() -> PareNetwork:
    return build_network()


def _network_part(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if k.startswith(("model.backbone.", "model.head."))}


# ---------------------------------------------------------------------------------- reading


def test_reads_training_checkpoint_without_lightning_or_yacs(
    ckpt_path: Path, parity_dir: Path
) -> None:
    before = set(sys.modules)
    obj = load_checkpoint_object(ckpt_path)
    layout = json.loads((parity_dir / "pare_hrnet_w32_state_dict.json").read_text())
    sd = obj["state_dict"]
    assert list(sd) == [k for k, _, _ in layout]
    assert all(list(sd[k].shape) == shape for k, shape, _ in layout)
    assert sd["model.backbone.bn1.num_batches_tracked"].dtype == torch.int64
    # training-time entries come back as inert dict stubs, keeping their data
    hparams = obj["hyper_parameters"]
    assert isinstance(hparams, InertStub) and type(hparams).__module__.startswith(
        "pytorch_lightning"
    )
    assert hparams["hparams"]["PARE"]["BACKBONE"] == "hrnet_w32-conv"
    (callback_cls,) = obj["callbacks"]
    assert callback_cls.__qualname__ == "ModelCheckpoint"
    assert obj["callbacks"][callback_cls]["monitor"] == "val_loss"
    # and neither package was imported (they are not even installed)
    new = [m for m in set(sys.modules) - before if m.split(".")[0] in ("pytorch_lightning", "yacs")]
    assert not new


def test_read_state_dict_returns_all_tensors(state_dict: dict[str, torch.Tensor]) -> None:
    assert len(state_dict) == 1946
    assert len(_network_part(state_dict)) == 1905
    assert all(isinstance(v, torch.Tensor) for v in state_dict.values())


def test_bare_and_plain_state_dict_files(
    tmp_path: Path, state_dict: dict[str, torch.Tensor], network: PareNetwork
) -> None:
    part = _network_part(state_dict)
    # the --bare layout of make_synthetic_checkpoint.py: only the first four entries
    bare = tmp_path / "bare.ckpt"
    torch.save(
        {
            "epoch": 0,
            "global_step": 0,
            "pytorch-lightning_version": "1.1.8",
            "state_dict": {**part, "smpl.betas": torch.zeros(64, 10)},
        },
        bare,
    )
    assert set(read_state_dict(bare)) == set(part) | {"smpl.betas"}
    load_network_weights(network, bare)
    ours = network.state_dict()
    for key in ("backbone.conv1.weight", "head.cam_mlp.bias", "head.pose_mlp.weight"):
        torch.testing.assert_close(ours[key], part["model." + key], rtol=0, atol=0)

    # a plain torch.save(state_dict) file, and a network state dict with keys without "model."
    plain = tmp_path / "plain.pt"
    torch.save({"head.cam_mlp.bias": torch.ones(3)}, plain)
    assert list(read_state_dict(plain)) == ["head.cam_mlp.bias"]
    unprefixed = {k.removeprefix("model."): v for k, v in part.items()}
    unprefixed["head.cam_mlp.bias"] = torch.ones(3)
    load_network_weights(network, unprefixed)
    assert torch.equal(network.state_dict()["head.cam_mlp.bias"], torch.ones(3))
    load_network_weights(network, state_dict)  # back to the checkpoint's weights


def test_loads_legacy_format(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save(
        {"state_dict": {"model.head.x": torch.arange(3.0)}},
        path,
        _use_new_zipfile_serialization=False,
    )
    assert torch.equal(read_state_dict(path)["model.head.x"], torch.arange(3.0))


# --------------------------------------------------------------------------- unsafe pickles


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _PopenPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (subprocess.Popen, (["touch", str(self.marker)],))


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        (_SystemPayload, "system"),
        (_EvalPayload, "builtins.eval"),
        (_PopenPayload, "subprocess.Popen"),
    ],
)
@pytest.mark.parametrize("zip_format", [True, False])
def test_refuses_code_in_pickle(tmp_path: Path, payload: type, name: str, zip_format: bool) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save(
        {"payload": payload(marker), "state_dict": {"model.head.w": torch.ones(2)}},
        path,
        _use_new_zipfile_serialization=zip_format,
    )
    with pytest.raises(CheckpointError) as info:
        read_state_dict(path)
    msg = str(info.value)
    assert msg.startswith(f"refusing to load {path}: it references ")
    assert name in msg and "which could run code" in msg
    assert not marker.exists()


# ------------------------------------------------------------------------------ bad files


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "nope.ckpt")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a file"):
        read_state_dict(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.ckpt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\)"):
        read_state_dict(path)


def test_truncated_checkpoint(tmp_path: Path, ckpt_path: Path) -> None:
    path = tmp_path / "half.ckpt"
    size = ckpt_path.stat().st_size
    with open(ckpt_path, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(size // 2))
    with pytest.raises(CheckpointError, match="is truncated or damaged"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (np.random.default_rng(0).bytes(4096), "is not a PyTorch checkpoint"),
        (b"PARE config\nPARE:\n  BACKBONE: hrnet_w32-conv\n", "is not a PyTorch checkpoint"),
        (b"PK\x03\x04" + b"\x00" * 100, "is truncated or damaged"),
    ],
    ids=["random-bytes", "text", "zip-header-only"],
)
def test_not_a_checkpoint(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=needle):
        read_state_dict(path)


def test_checkpoint_without_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "nosd.ckpt"
    torch.save({"epoch": 3, "global_step": 10, "optimizer_states": []}, path)
    with pytest.raises(
        CheckpointError, match=r"holds no 'state_dict' \(top-level entries: epoch, global_step"
    ):
        read_state_dict(path)


def test_state_dict_without_network_entries(network: PareNetwork) -> None:
    with pytest.raises(CheckpointError, match="holds no PARE network weights.*smpl.betas"):
        load_network_weights(network, {"state_dict": {"smpl.betas": torch.zeros(64, 10)}})


# ----------------------------------------------------------------------- strict key checks


def test_dropped_key(state_dict: dict[str, torch.Tensor], network: PareNetwork) -> None:
    sd = _network_part(state_dict)
    del sd["model.backbone.stage3.2.fuse_layers.2.0.1.0.weight"]
    with pytest.raises(CheckpointError) as info:
        load_network_weights(network, sd)
    msg = str(info.value)
    assert "1 missing, 0 unexpected, 0 mis-shaped" in msg
    assert "missing (1): backbone.stage3.2.fuse_layers.2.0.1.0.weight" in msg
    assert "damaged or was edited" in msg


def test_renamed_key(state_dict: dict[str, torch.Tensor], network: PareNetwork) -> None:
    sd = _network_part(state_dict)
    sd["model.head.shape_regressor.weight"] = sd.pop("model.head.shape_mlp.weight")
    with pytest.raises(CheckpointError) as info:
        load_network_weights(network, sd)
    msg = str(info.value)
    assert "missing (1): head.shape_mlp.weight" in msg
    assert "unexpected (1): head.shape_regressor.weight" in msg


def test_misshaped_key(state_dict: dict[str, torch.Tensor], network: PareNetwork) -> None:
    sd = _network_part(state_dict)
    sd["model.head.cam_mlp.bias"] = torch.zeros(4)
    with pytest.raises(
        CheckpointError,
        match=r"mis-shaped \(1\): head.cam_mlp.bias \(checkpoint \[4\], network \[3\]\)",
    ):
        load_network_weights(network, sd)


def test_other_architecture_3x256_head(
    state_dict: dict[str, torch.Tensor], network: PareNetwork, parity_dir: Path
) -> None:
    shapes = json.loads((parity_dir / "pare_hrnet_w32_state_dict_shapes.json").read_text())
    sd = {k: v for k, v in _network_part(state_dict).items() if not k.startswith("model.head.")}
    for key, shape in shapes["head_keys_if_NUM_DECONV_LAYERS_3_and_FILTERS_256"].items():
        sd[key] = torch.zeros(
            shape, dtype=torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        )
    before = network.state_dict()["head.cam_mlp.weight"].clone()
    with pytest.raises(CheckpointError) as info:
        load_network_weights(network, {"state_dict": sd})
    msg = str(info.value)
    assert "12 unexpected" in msg and "mis-shaped (" in msg
    assert (
        "another architecture: backbone hrnet_w32-conv, head with NUM_DECONV_LAYERS 3 / 256 filters"
        in msg
    )
    assert "NUM_DECONV_LAYERS 2 / 128 filters" in msg
    # nothing was loaded
    assert torch.equal(network.state_dict()["head.cam_mlp.weight"], before)


def test_describe_architecture_of_checkpoint(state_dict: dict[str, torch.Tensor]) -> None:
    stripped = {k.removeprefix("model."): v for k, v in _network_part(state_dict).items()}
    assert describe_architecture(stripped) == {
        "backbone": "hrnet_w32-conv",
        "num_deconv_layers": 2,
        "num_deconv_filters": 128,
        "num_features_smpl": 64,
        "num_joints": 24,
    }
