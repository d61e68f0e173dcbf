"""PARE yaml configuration: released values, unsupported fields, overrides, bad files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pare_studio.core.config import (
    PareConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    released_tree,
)
from pare_studio.errors import ConfigError


def _write_cfg(tmp_path: Path, cfg_path: Path, changes: dict[str, object]) -> Path:
    """The released yaml with ``{"SECTION.KEY": value}`` changes, written to a temp file."""
    data = yaml.safe_load(cfg_path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    out = tmp_path / "cfg.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def test_released_yaml_values(cfg_path: Path) -> None:
    cfg = load_config(cfg_path)
    assert cfg.backbone == "hrnet_w32-conv"
    assert (cfg.num_joints, cfg.num_features_smpl) == (24, 64)
    assert (cfg.num_deconv_layers, cfg.num_deconv_filters) == (2, 128)
    assert cfg.use_heatmaps == "part_segm"
    assert (cfg.img_res, cfg.focal_length, cfg.softmax_temp) == (224, 5000.0, 1.0)
    assert cfg.use_gender is False and cfg.pretrained_lit is None and cfg.batch_size == 64
    assert (cfg.hrnet_width, cfg.backbone_use_conv, cfg.backbone_channels) == (32, True, 480)
    assert cfg.source == cfg_path
    # the merged tree keeps file values and the reference defaults for everything else
    assert cfg.get("PARE.SHAPE_INPUT_TYPE") == "feats.shape.cam"
    assert cfg.get("DATASET.VAL_DS") == "3dpw_3doh"
    assert cfg.get("TRAINING.MAX_EPOCHS") == 100
    assert cfg.get("NO.SUCH", "x") == "x"


def test_none_is_the_released_configuration(cfg_path: Path) -> None:
    assert load_config(None) == load_config(cfg_path)
    assert load_config(None).source is None


def test_unknown_keys_are_kept(tmp_path: Path, cfg_path: Path) -> None:
    path = _write_cfg(tmp_path, cfg_path, {"PARE.SOMETHING_NEW": 3, "EXTRA.KEY": "v"})
    cfg = load_config(path)
    assert cfg.get("PARE.SOMETHING_NEW") == 3
    assert cfg.get("EXTRA.KEY") == "v"
    assert cfg == load_config(cfg_path)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        (
            "PARE.BACKBONE",
            "resnet50",
            "PARE.BACKBONE: resnet50 is not supported (supported: hrnet_w32-conv",
        ),
        ("PARE.BACKBONE", "hrnet_w32", "PARE.BACKBONE: hrnet_w32 is not supported"),
        ("PARE.ITERATIVE_REGRESSION", True, "PARE.ITERATIVE_REGRESSION: True is not supported"),
        ("PARE.USE_HMR_REGRESSION", True, "PARE.USE_HMR_REGRESSION"),
        ("PARE.USE_COATTENTION", True, "PARE.USE_COATTENTION"),
        ("PARE.USE_SOFT_ATTENTION", True, "PARE.USE_SOFT_ATTENTION"),
        ("PARE.USE_POSTCONV_KEYPOINT_ATTENTION", True, "PARE.USE_POSTCONV_KEYPOINT_ATTENTION"),
        ("PARE.USE_MEAN_POSE", True, "PARE.USE_MEAN_POSE"),
        ("PARE.USE_MEAN_CAMSHAPE", True, "PARE.USE_MEAN_CAMSHAPE"),
        ("PARE.USE_POS_ENC", True, "PARE.USE_POS_ENC"),
        ("PARE.USE_FINAL_NONLOCAL", "dot_product", "PARE.USE_FINAL_NONLOCAL"),
        ("PARE.NUM_BRANCH_ITERATION", 2, "PARE.NUM_BRANCH_ITERATION: 2"),
        ("PARE.POSE_MLP_NUM_LAYERS", 2, "PARE.POSE_MLP_NUM_LAYERS: 2"),
        ("PARE.SHAPE_MLP_NUM_LAYERS", 3, "PARE.SHAPE_MLP_NUM_LAYERS: 3"),
        ("PARE.KEYPOINT_ATTENTION_ACT", "sigmoid", "PARE.KEYPOINT_ATTENTION_ACT"),
        ("DATASET.USE_HEATMAPS", "", "DATASET.USE_HEATMAPS: '' is not supported"),
        ("DATASET.USE_HEATMAPS", "hm", "DATASET.USE_HEATMAPS: 'hm'"),
        ("DATASET.IMG_RES", 256, "DATASET.IMG_RES: 256"),
        ("TRAINING.PRETRAINED", "weights.pth", "TRAINING.PRETRAINED: 'weights.pth'"),
        ("PARE.NUM_DECONV_FILTERS", "many", "PARE.NUM_DECONV_FILTERS: 'many' is not an integer"),
        ("PARE.NUM_DECONV_LAYERS", 0, "PARE.NUM_DECONV_LAYERS: 0 must be at least 1"),
        ("PARE.NUM_DECONV_FILTERS", [128, 256], "PARE.NUM_DECONV_FILTERS: [128, 256] is a list"),
        ("DATASET.FOCAL_LENGTH", -1, "DATASET.FOCAL_LENGTH: -1 must be positive"),
    ],
)
def test_unsupported_fields_name_field_and_value(
    tmp_path: Path, cfg_path: Path, field: str, value: object, needle: str
) -> None:
    path = _write_cfg(tmp_path, cfg_path, {field: value})
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert needle in str(info.value)
    assert str(path) in str(info.value)


def test_defaults_alone_are_rejected_as_resnet(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="PARE.BACKBONE: resnet50 is not supported"):
        load_config(empty)


@pytest.mark.parametrize("backbone", ["hrnet_w32-interp", "hrnet_w48-conv", "hrnet_w48-interp"])
def test_supported_variants(tmp_path: Path, cfg_path: Path, backbone: str) -> None:
    path = _write_cfg(
        tmp_path,
        cfg_path,
        {
            "PARE.BACKBONE": backbone,
            "PARE.NUM_DECONV_LAYERS": 3,
            "PARE.NUM_DECONV_FILTERS": [256, 256, 256],
            "PARE.NUM_FEATURES_SMPL": 32,
        },
    )
    cfg = load_config(path)
    assert cfg.backbone == backbone
    assert (cfg.num_deconv_layers, cfg.num_deconv_filters, cfg.num_features_smpl) == (3, 256, 32)
    assert cfg.hrnet_width == int(backbone[7:9])
    assert cfg.backbone_use_conv == backbone.endswith("-conv")
    assert cfg.backbone_channels == 15 * cfg.hrnet_width


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (None, "does not exist"),
        ("PARE: [unclosed", "is not valid YAML"),
        ("- just\n- a list\n", "does not hold a mapping"),
    ],
)
def test_bad_files(tmp_path: Path, content: str | None, needle: str) -> None:
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=needle):
        load_config(path)


def test_folder_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_apply_overrides_types_and_copy(cfg_path: Path) -> None:
    cfg = load_config(cfg_path)
    tree = apply_overrides(
        cfg.raw,
        [
            "DATASET.VAL_DS",
            "3doh_3dpw-all",
            "DATASET.USE_GENDER",
            "True",
            "DATASET.BATCH_SIZE",
            "16",
            "TRAINING.PRETRAINED_LIT",
            "data/pare/checkpoints/x.ckpt",
            "TRAINING.DROPOUT_P",
            "null",
            "NEW.SECTION",
            "[1, 2]",
        ],
    )
    assert tree["DATASET"]["VAL_DS"] == "3doh_3dpw-all"
    assert tree["DATASET"]["USE_GENDER"] is True
    assert tree["DATASET"]["BATCH_SIZE"] == 16
    assert tree["TRAINING"]["DROPOUT_P"] is None
    assert tree["NEW"]["SECTION"] == [1, 2]
    assert cfg.raw["DATASET"]["VAL_DS"] == "3dpw_3doh"  # input untouched
    new = config_from_dict(tree)
    assert new.use_gender is True and new.batch_size == 16
    assert new.pretrained_lit == "data/pare/checkpoints/x.ckpt"
    assert new.get("DATASET.VAL_DS") == "3doh_3dpw-all"


def test_load_config_with_overrides(cfg_path: Path) -> None:
    cfg = load_config(cfg_path, ["DATASET.USE_GENDER", "true", "PARE.BACKBONE", "hrnet_w48-conv"])
    assert cfg.use_gender is True and cfg.backbone == "hrnet_w48-conv"
    with pytest.raises(ConfigError, match="PARE.USE_MEAN_POSE"):
        load_config(cfg_path, ["PARE.USE_MEAN_POSE", "True"])


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        (["DATASET.VAL_DS"], "odd number"),
        (["", "x"], "dotted name"),
        (["DATASET.VAL_DS.X", "1"], "is a value, not a section"),
    ],
)
def test_bad_overrides(opts: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        apply_overrides(released_tree(), opts)


def test_config_is_frozen() -> None:
    cfg = load_config(None)
    assert isinstance(cfg, PareConfig)
    with pytest.raises(AttributeError):
        cfg.backbone = "hrnet_w48-conv"  # type: ignore[misc]
