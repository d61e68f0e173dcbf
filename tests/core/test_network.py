"""The PARE network: checkpoint key layout, parity with the reference, variants, 6-D rotations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pare_studio.core.config import load_config
from pare_studio.core.network import PareNetwork, build_network
from pare_studio.core.pare_head import _rot6d_to_rotmat
from tests.conftest import assert_parity


@pytest.fixture(scope="module")
def shapes_json(parity_dir: Path) -> dict:
    return json.loads((parity_dir / "pare_hrnet_w32_state_dict_shapes.json").read_text())


@pytest.fixture(scope="module")
def loaded_network(ckpt_path: Path) -> PareNetwork:
    from pare_studio.core.checkpoint import load_network_weights

    net = build_network(load_config(None))
    load_network_weights(net, ckpt_path)
    return net


def _strip(section: dict[str, list[int]]) -> dict[str, list[int]]:
    return {k.removeprefix("model."): list(v) for k, v in section.items()}


def test_state_dict_matches_official_layout(shapes_json: dict) -> None:
    net = build_network(load_config(None))
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    expected = _strip(shapes_json["network"])
    assert len(expected) == 1905
    assert set(ours) == set(expected)
    assert ours == expected
    assert list(ours) == list(expected)  # same order as the reference's state_dict
    assert (
        sum(p.numel() for p in net.parameters())
        == shapes_json["counts"]["network_parameters_total_numel"]
    )
    assert not net.training
    # the unused pose final layer of HRNet is there, as in the checkpoint
    assert ours["backbone.final_layer.weight"] == [24, 32, 1, 1]


def test_parity_with_reference(
    loaded_network: PareNetwork,
    parity_inputs: np.ndarray,
    parity_expected: dict[str, np.ndarray],
) -> None:
    torch.set_num_threads(2)
    with torch.inference_mode():
        out = loaded_network(torch.from_numpy(parity_inputs))
    assert set(out) == {"pred_segm_mask", "pred_pose", "pred_cam", "pred_shape"}
    assert out["pred_segm_mask"].shape == (4, 25, 56, 56)
    for key in ("pred_segm_mask", "pred_pose", "pred_shape", "pred_cam"):
        assert out[key].dtype == torch.float32
        assert_parity(out[key].numpy(), parity_expected[key], key, rel=2e-5)


def test_w32_3x256_head_matches_reference_layout(shapes_json: dict) -> None:
    cfg = load_config(None, ["PARE.NUM_DECONV_LAYERS", "3", "PARE.NUM_DECONV_FILTERS", "256"])
    net = PareNetwork(cfg)
    head = {k: list(v.shape) for k, v in net.state_dict().items() if k.startswith("head.")}
    assert head == _strip(shapes_json["head_keys_if_NUM_DECONV_LAYERS_3_and_FILTERS_256"])


@pytest.mark.parametrize("backbone", ["hrnet_w48-conv", "hrnet_w32-interp"])
def test_backbone_variants(backbone: str) -> None:
    cfg = load_config(None, ["PARE.BACKBONE", backbone, "PARE.NUM_JOINTS", "5"])
    net = build_network(cfg)
    width = cfg.hrnet_width
    keys = net.state_dict()
    assert list(keys["backbone.transition1.0.0.weight"].shape) == [width, 256, 3, 3]
    assert list(keys["backbone.stage4.2.fuse_layers.3.0.2.0.weight"].shape) == [
        8 * width,
        width,
        3,
        3,
    ]
    assert any(k.startswith("backbone.upsample_stage_4.9.") for k in keys) == backbone.endswith(
        "-conv"
    )
    assert list(keys["head.keypoint_deconv_layers.0.weight"].shape) == [128, 15 * width, 3, 3]
    assert list(keys["head.pose_mlp.weight"].shape) == [1, 6, 128, 5, 1, 1]
    with torch.inference_mode():
        feats = net.backbone(torch.zeros(1, 3, 64, 64))
        out = net(torch.zeros(1, 3, 64, 64))
    assert feats.shape == (1, 15 * width, 16, 16)
    assert out["pred_segm_mask"].shape == (1, 6, 16, 16)
    assert out["pred_pose"].shape == (1, 5, 3, 3)
    assert out["pred_shape"].shape == (1, 10) and out["pred_cam"].shape == (1, 3)


def test_rot6d_row_major_reading() -> None:
    # a1 = (x0, x2, x4) = e_y, a2 = (x1, x3, x5) = e_x  ->  R = [e_y, e_x, e_y × e_x = -e_z]
    x = torch.tensor([[0.0, 2.0, 3.0, 0.0, 0.0, 0.0]])
    expected = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    torch.testing.assert_close(_rot6d_to_rotmat(x)[0], expected)
    # Gram-Schmidt keeps b1 along a1 and makes b2 orthogonal
    r = _rot6d_to_rotmat(torch.randn(64, 6, generator=torch.Generator().manual_seed(0)))
    eye = torch.eye(3).expand(64, 3, 3)
    torch.testing.assert_close(r.transpose(1, 2) @ r, eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(r), torch.ones(64), atol=1e-5, rtol=0)
