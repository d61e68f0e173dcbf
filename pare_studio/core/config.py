"""PARE configuration: the reference's yacs-format yaml, read with PyYAML over its default tree.

The reference (``pare/core/config.py``) merges a yaml file into a yacs ``CfgNode`` of defaults
(spec §1.5). We do the same with plain dicts: :data:`DEFAULTS` is that tree, the yaml is merged
on top (unknown keys are kept and logged at debug level instead of failing as yacs would), and
the fields that change the network are read into a frozen :class:`PareConfig`. A configuration
that asks for a network we do not implement raises :class:`~pare_studio.errors.ConfigError`
naming the field and its value.

``load_config(None)`` gives the released configuration (``pare_config.yaml`` /
``pare_w_3dpw_config.yaml``: HRNet-W32 "-conv", 2×128 head, part-segmentation attention).
"""

from __future__ import annotations

import ast
import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pare_studio.errors import ConfigError

log = logging.getLogger(__name__)

#: Backbone strings we can build (spec §1.1): HRNet width × how branches reach 1/4 resolution.
SUPPORTED_BACKBONES: tuple[str, ...] = (
    "hrnet_w32-conv",
    "hrnet_w32-interp",
    "hrnet_w48-conv",
    "hrnet_w48-interp",
)

#: The reference's default tree (spec §1.5), nested dicts of plain values.
DEFAULTS: dict[str, Any] = {
    "LOG_DIR": "logs/experiments",
    "METHOD": "pare",
    "EXP_NAME": "default",
    "RUN_TEST": False,
    "PROJECT_NAME": "pare",
    "SEED_VALUE": -1,
    "SYSTEM": {"GPU": "", "CLUSTER_NODE": 0.0},
    "DATASET": {
        "LOAD_TYPE": "Base",
        "NOISE_FACTOR": 0.4,
        "ROT_FACTOR": 30,
        "SCALE_FACTOR": 0.25,
        "FLIP_PROB": 0.5,
        "CROP_PROB": 0.0,
        "CROP_FACTOR": 0.0,
        "BATCH_SIZE": 64,
        "NUM_WORKERS": 8,
        "PIN_MEMORY": True,
        "SHUFFLE_TRAIN": True,
        "TRAIN_DS": "all",
        "VAL_DS": "3dpw_3doh",
        "NUM_IMAGES": -1,
        "TRAIN_NUM_IMAGES": -1,
        "TEST_NUM_IMAGES": -1,
        "IMG_RES": 224,
        "USE_HEATMAPS": "",
        "RENDER_RES": 480,
        "MESH_COLOR": "pinkish",
        "FOCAL_LENGTH": 5000.0,
        "IGNORE_3D": False,
        "USE_SYNTHETIC_OCCLUSION": False,
        "OCC_AUG_DATASET": "pascal",
        "USE_3D_CONF": False,
        "USE_GENDER": False,
        "DATASETS_AND_RATIOS": "h36m_mpii_lspet_coco_mpi-inf-3dhp_0.3_0.6_0.6_0.6_0.1",
        "STAGE_DATASETS": "0+h36m_coco_0.2_0.8 2+h36m_coco_0.4_0.6",
        "NONPARAMETRIC": False,
    },
    "OPTIMIZER": {"TYPE": "adam", "LR": 1e-4, "WD": 0.0},
    "TRAINING": {
        "RESUME": None,
        "PRETRAINED": None,
        "PRETRAINED_LIT": None,
        "MAX_EPOCHS": 100,
        "LOG_SAVE_INTERVAL": 50,
        "LOG_FREQ_TB_IMAGES": 500,
        "CHECK_VAL_EVERY_N_EPOCH": 1,
        "RELOAD_DATALOADERS_EVERY_EPOCH": True,
        "NUM_SMPLIFY_ITERS": 100,
        "RUN_SMPLIFY": False,
        "SMPLIFY_THRESHOLD": 100,
        "DROPOUT_P": 0.2,
        "TEST_BEFORE_TRAINING": False,
        "SAVE_IMAGES": False,
        "USE_PART_SEGM_LOSS": False,
        "USE_AMP": False,
    },
    "TESTING": {
        "SAVE_IMAGES": False,
        "SAVE_FREQ": 1,
        "SAVE_RESULTS": True,
        "SAVE_MESHES": False,
        "SIDEVIEW": True,
        "TEST_ON_TRAIN_END": True,
        "MULTI_SIDEVIEW": False,
        "USE_GT_CAM": False,
    },
    "PARE": {
        "BACKBONE": "resnet50",
        "NUM_JOINTS": 24,
        "SOFTMAX_TEMP": 1.0,
        "NUM_FEATURES_SMPL": 64,
        "USE_ATTENTION": False,
        "USE_SELF_ATTENTION": False,
        "USE_KEYPOINT_ATTENTION": False,
        "USE_KEYPOINT_FEATURES_FOR_SMPL_REGRESSION": False,
        "USE_POSTCONV_KEYPOINT_ATTENTION": False,
        "KEYPOINT_ATTENTION_ACT": "softmax",
        "USE_SCALE_KEYPOINT_ATTENTION": False,
        "USE_FINAL_NONLOCAL": None,
        "USE_BRANCH_NONLOCAL": None,
        "USE_HMR_REGRESSION": False,
        "USE_COATTENTION": False,
        "NUM_COATTENTION_ITER": 1,
        "COATTENTION_CONV": "simple",
        "USE_UPSAMPLING": False,
        "DECONV_CONV_KERNEL_SIZE": 4,
        "USE_SOFT_ATTENTION": False,
        "NUM_BRANCH_ITERATION": 0,
        "BRANCH_DEEPER": False,
        "NUM_DECONV_LAYERS": 3,
        "NUM_DECONV_FILTERS": 256,
        "USE_RESNET_CONV_HRNET": False,
        "USE_POS_ENC": False,
        "ITERATIVE_REGRESSION": False,
        "ITER_RESIDUAL": False,
        "NUM_ITERATIONS": 3,
        "SHAPE_INPUT_TYPE": "feats.all_pose.shape.cam",
        "POSE_INPUT_TYPE": "feats.neighbor_pose_feats.all_pose.self_pose.neighbor_pose.shape.cam",
        "POSE_MLP_NUM_LAYERS": 1,
        "SHAPE_MLP_NUM_LAYERS": 1,
        "POSE_MLP_HIDDEN_SIZE": 256,
        "SHAPE_MLP_HIDDEN_SIZE": 256,
        "SHAPE_LOSS_WEIGHT": 0.0,
        "KEYPOINT_LOSS_WEIGHT": 5.0,
        "KEYPOINT_NATIVE_LOSS_WEIGHT": 5.0,
        "HEATMAPS_LOSS_WEIGHT": 5.0,
        "SMPL_PART_LOSS_WEIGHT": 1.0,
        "PART_SEGM_LOSS_WEIGHT": 1.0,
        "POSE_LOSS_WEIGHT": 1.0,
        "BETA_LOSS_WEIGHT": 0.001,
        "OPENPOSE_TRAIN_WEIGHT": 0.0,
        "GT_TRAIN_WEIGHT": 1.0,
        "LOSS_WEIGHT": 60.0,
        "USE_SHAPE_REG": False,
        "USE_MEAN_CAMSHAPE": False,
        "USE_MEAN_POSE": False,
        "INIT_XAVIER": False,
    },
}

#: The released configuration's values (``pare_hrnet_w32_config.yaml``) merged over DEFAULTS.
RELEASED: dict[str, Any] = {
    "METHOD": "pare",
    "DATASET": {
        "IMG_RES": 224,
        "FOCAL_LENGTH": 5000.0,
        "USE_HEATMAPS": "part_segm",
        "BATCH_SIZE": 64,
    },
    "PARE": {
        "BACKBONE": "hrnet_w32-conv",
        "NUM_JOINTS": 24,
        "SOFTMAX_TEMP": 1.0,
        "NUM_FEATURES_SMPL": 64,
        "USE_KEYPOINT_ATTENTION": True,
        "USE_POSTCONV_KEYPOINT_ATTENTION": False,
        "USE_SCALE_KEYPOINT_ATTENTION": False,
        "KEYPOINT_ATTENTION_ACT": "softmax",
        "NUM_DECONV_LAYERS": 2,
        "NUM_DECONV_FILTERS": 128,
        "DECONV_CONV_KERNEL_SIZE": 4,
        "USE_UPSAMPLING": False,
        "USE_RESNET_CONV_HRNET": False,
        "USE_POS_ENC": False,
        "USE_HMR_REGRESSION": False,
        "USE_COATTENTION": False,
        "USE_SOFT_ATTENTION": False,
        "NUM_BRANCH_ITERATION": 0,
        "USE_FINAL_NONLOCAL": None,
        "USE_BRANCH_NONLOCAL": None,
        "ITERATIVE_REGRESSION": False,
        "SHAPE_INPUT_TYPE": "feats.shape.cam",
        "POSE_INPUT_TYPE": "feats.self_pose.shape.cam",
        "POSE_MLP_NUM_LAYERS": 1,
        "SHAPE_MLP_NUM_LAYERS": 1,
        "USE_MEAN_CAMSHAPE": False,
        "USE_MEAN_POSE": False,
        "INIT_XAVIER": False,
    },
    "TRAINING": {"PRETRAINED": None},
}

_MISSING = object()


@dataclass(frozen=True)
class PareConfig:
    """The fields of a PARE configuration that change the network or its outputs.

    Attributes
    ----------
    backbone : str
        One of :data:`SUPPORTED_BACKBONES` (``PARE.BACKBONE``).
    num_joints : int
        Number of SMPL joints regressed / part maps (``PARE.NUM_JOINTS``; SMPL needs 24).
    num_features_smpl : int
        Channels of the 1×1 conv feeding the shape / camera layers (``PARE.NUM_FEATURES_SMPL``).
    num_deconv_layers : int
        conv3×3 + BN + ReLU layers in each head branch (``PARE.NUM_DECONV_LAYERS``).
    num_deconv_filters : int
        Width of those layers (``PARE.NUM_DECONV_FILTERS``).
    use_heatmaps : str
        2D branch type (``DATASET.USE_HEATMAPS``); only ``"part_segm"`` is supported.
    img_res : int
        Input crop side, pixels (``DATASET.IMG_RES``; 224).
    focal_length : float
        Focal length in pixels for the weak-perspective → translation conversion
        (``DATASET.FOCAL_LENGTH``).
    softmax_temp : float
        Value of the ``head.temperature`` buffer (``PARE.SOFTMAX_TEMP``; unused with part_segm).
    use_gender : bool
        Evaluation ground truth from gendered SMPL models (``DATASET.USE_GENDER``).
    pretrained_lit : str or None
        Checkpoint named by the config for evaluation (``TRAINING.PRETRAINED_LIT``).
    batch_size : int
        ``DATASET.BATCH_SIZE`` (evaluation batch size in the reference).
    source : Path or None
        The yaml file this came from, None for the built-in released configuration.
    raw : dict
        The whole merged tree (defaults + file + overrides), nested dicts of plain values.
    """

    backbone: str = "hrnet_w32-conv"
    num_joints: int = 24
    num_features_smpl: int = 64
    num_deconv_layers: int = 2
    num_deconv_filters: int = 128
    use_heatmaps: str = "part_segm"
    img_res: int = 224
    focal_length: float = 5000.0
    softmax_temp: float = 1.0
    use_gender: bool = False
    pretrained_lit: str | None = None
    batch_size: int = 64
    source: Path | None = field(default=None, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def hrnet_width(self) -> int:
        """HRNet width: 32 or 48."""
        return int(self.backbone.split("-")[0].removeprefix("hrnet_w"))

    @property
    def backbone_use_conv(self) -> bool:
        """True for "-conv" (learned upsampling stacks), False for "-interp" (bilinear only)."""
        return self.backbone.endswith("-conv")

    @property
    def backbone_channels(self) -> int:
        """Channels of the backbone output: 15·width (480 for W32, 720 for W48)."""
        return 15 * self.hrnet_width

    @property
    def num_parts(self) -> int:
        """Channels of the part-segmentation logits: background + one per joint."""
        return self.num_joints + 1

    def get(self, dotted: str, default: Any = None) -> Any:
        """Value of ``"SECTION.KEY"`` in the merged tree, ``default`` if absent."""
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


# --------------------------------------------------------------------------------------------
# merging


def _merge(base: dict[str, Any], update: Mapping[str, Any], prefix: str = "") -> None:
    """Merge ``update`` into ``base`` in place (nested dicts merge, other values replace)."""
    for key, value in update.items():
        if not isinstance(key, str):
            raise ConfigError(f"config key {prefix}{key!r} is not a string")
        name = f"{prefix}{key}"
        if key not in base:
            log.debug("config key %s is not in the reference's default tree; kept as is", name)
        current = base.get(key, _MISSING)
        if isinstance(value, Mapping):
            if isinstance(current, dict):
                _merge(current, value, prefix=f"{name}.")
            else:
                base[key] = _to_plain(value)
        else:
            base[key] = _to_plain(value)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    return value


def _decode_value(text: Any) -> Any:
    """An ``--opts`` value: a Python literal, else a YAML scalar, else the string itself."""
    if not isinstance(text, str):
        return text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        import yaml

        value = yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - any yaml failure means "keep the string"
        return text
    return value if isinstance(value, (bool, int, float, type(None), list, dict)) else text


def apply_overrides(cfg_dict: Mapping[str, Any], opts: Sequence[str]) -> dict[str, Any]:
    """Apply a yacs ``--opts`` list (``["DATASET.VAL_DS", "3doh_3dpw-all", ...]``).

    Parameters
    ----------
    cfg_dict : mapping
        A merged tree (e.g. ``PareConfig.raw``); it is not modified.
    opts : sequence of str
        Alternating dotted keys and values. Values are parsed like yacs does (Python literal,
        then YAML scalar such as ``true`` / ``null``, else kept as a string).

    Returns
    -------
    dict
        A new tree with the overrides applied.

    Raises
    ------
    ConfigError
        Odd number of items, an empty key, or a key whose parent is not a section.
    """
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(
            f"config overrides must be KEY VALUE pairs, got an odd number of items: {opts}"
        )
    out = copy.deepcopy(dict(cfg_dict))
    for key, text in zip(opts[0::2], opts[1::2], strict=True):
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ConfigError(
                f"config override key {key!r} is not a dotted name like DATASET.VAL_DS"
            )
        parts = key.split(".")
        node: dict[str, Any] = out
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part, _MISSING)
            if nxt is _MISSING:
                log.debug("config override creates new section %s", ".".join(parts[: i + 1]))
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(
                    f"config override {key}: {'.'.join(parts[: i + 1])} is a value, not a section"
                )
            node = nxt
        if parts[-1] not in node:
            log.debug("config override %s is not in the reference's default tree; kept as is", key)
        node[parts[-1]] = _decode_value(text)
    return out


# --------------------------------------------------------------------------------------------
# reading and validating


def _lookup(raw: Mapping[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _single(raw: Mapping[str, Any], dotted: str) -> Any:
    """The value of a field; a grid-search list with one distinct value counts as that value."""
    value = _lookup(raw, dotted)
    if value is _MISSING:
        return _lookup(DEFAULTS, dotted)
    if isinstance(value, list):
        distinct = []
        for v in value:
            if v not in distinct:
                distinct.append(v)
        if len(distinct) == 1:
            return distinct[0]
        raise ConfigError(
            f"{dotted}: {value!r} is a list of values (a grid search in the reference); "
            "give a single value"
        )
    return value


def _int(raw: Mapping[str, Any], dotted: str, minimum: int = 1) -> int:
    value = _single(raw, dotted)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ConfigError(f"{dotted}: {value!r} is not an integer")
    if value < minimum:
        raise ConfigError(f"{dotted}: {value!r} must be at least {minimum}")
    return int(value)


def _float(raw: Mapping[str, Any], dotted: str, positive: bool = True) -> float:
    value = _single(raw, dotted)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{dotted}: {value!r} is not a number")
    if positive and not value > 0:
        raise ConfigError(f"{dotted}: {value!r} must be positive")
    return float(value)


def _bool(raw: Mapping[str, Any], dotted: str) -> bool:
    value = _single(raw, dotted)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{dotted}: {value!r} is not true or false")


def _str(raw: Mapping[str, Any], dotted: str) -> str | None:
    value = _single(raw, dotted)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{dotted}: {value!r} is not a string")
    return value


def _unsupported(dotted: str, value: Any, why: str) -> ConfigError:
    return ConfigError(f"{dotted}: {value!r} is not supported ({why})")


def _must_be_off(raw: Mapping[str, Any], dotted: str, why: str) -> None:
    if _bool(raw, dotted):
        raise _unsupported(dotted, _single(raw, dotted), why)


def _must_be_null(raw: Mapping[str, Any], dotted: str, why: str) -> None:
    value = _single(raw, dotted)
    if value not in (None, "", False):
        raise _unsupported(dotted, value, why)


def config_from_dict(raw: Mapping[str, Any], source: Path | None = None) -> PareConfig:
    """Validate a merged tree and read the network fields.

    Parameters
    ----------
    raw : mapping
        The full tree (defaults + file + overrides), e.g. from :func:`apply_overrides`.
    source : Path, optional
        File it came from, for messages and :attr:`PareConfig.source`.

    Raises
    ------
    ConfigError
        A field with a wrong type or a value that asks for a network we do not implement.
    """
    method = _str(raw, "METHOD")
    if method != "pare":
        raise _unsupported("METHOD", method, "only 'pare' is supported")

    backbone = _str(raw, "PARE.BACKBONE")
    if backbone not in SUPPORTED_BACKBONES:
        raise ConfigError(
            f"PARE.BACKBONE: {backbone} is not supported "
            f"(supported: {', '.join(SUPPORTED_BACKBONES)})"
        )
    heatmaps = _str(raw, "DATASET.USE_HEATMAPS")
    if heatmaps != "part_segm":
        raise ConfigError(
            f"DATASET.USE_HEATMAPS: {heatmaps!r} is not supported (supported: part_segm, the "
            "part-segmentation attention of the released models)"
        )
    act = _str(raw, "PARE.KEYPOINT_ATTENTION_ACT")
    if act != "softmax":
        raise _unsupported("PARE.KEYPOINT_ATTENTION_ACT", act, "supported: softmax")

    not_released = "the released models do not use it"
    for flag in (
        "PARE.ITERATIVE_REGRESSION",
        "PARE.USE_HMR_REGRESSION",
        "PARE.USE_COATTENTION",
        "PARE.USE_SOFT_ATTENTION",
        "PARE.USE_POSTCONV_KEYPOINT_ATTENTION",
        "PARE.USE_SCALE_KEYPOINT_ATTENTION",
        "PARE.USE_KEYPOINT_FEATURES_FOR_SMPL_REGRESSION",
        "PARE.USE_RESNET_CONV_HRNET",
        "PARE.USE_POS_ENC",
        "PARE.USE_MEAN_CAMSHAPE",
        "PARE.USE_MEAN_POSE",
    ):
        _must_be_off(raw, flag, not_released)
    for flag in ("PARE.USE_FINAL_NONLOCAL", "PARE.USE_BRANCH_NONLOCAL"):
        _must_be_null(raw, flag, "non-local blocks are not implemented; use null")
    n_branch_iter = _int(raw, "PARE.NUM_BRANCH_ITERATION", minimum=0)
    if n_branch_iter != 0:
        raise _unsupported("PARE.NUM_BRANCH_ITERATION", n_branch_iter, "supported: 0")
    for layers in ("PARE.POSE_MLP_NUM_LAYERS", "PARE.SHAPE_MLP_NUM_LAYERS"):
        n = _int(raw, layers)
        if n != 1:
            raise _unsupported(layers, n, "supported: 1")

    pretrained = _single(raw, "TRAINING.PRETRAINED")
    if pretrained not in (None, ""):
        raise _unsupported(
            "TRAINING.PRETRAINED",
            pretrained,
            "it loads a separate weight file while building the model; set it to null and "
            "pass the checkpoint instead",
        )

    img_res = _int(raw, "DATASET.IMG_RES")
    if img_res != 224:
        raise _unsupported("DATASET.IMG_RES", img_res, "PARE Studio crops 224×224 inputs")

    pretrained_lit = _single(raw, "TRAINING.PRETRAINED_LIT")
    if pretrained_lit is not None and not isinstance(pretrained_lit, str):
        raise ConfigError(f"TRAINING.PRETRAINED_LIT: {pretrained_lit!r} is not a path")

    return PareConfig(
        backbone=backbone,
        num_joints=_int(raw, "PARE.NUM_JOINTS"),
        num_features_smpl=_int(raw, "PARE.NUM_FEATURES_SMPL"),
        num_deconv_layers=_int(raw, "PARE.NUM_DECONV_LAYERS"),
        num_deconv_filters=_int(raw, "PARE.NUM_DECONV_FILTERS"),
        use_heatmaps=heatmaps,
        img_res=img_res,
        focal_length=_float(raw, "DATASET.FOCAL_LENGTH"),
        softmax_temp=_float(raw, "PARE.SOFTMAX_TEMP", positive=False),
        use_gender=_bool(raw, "DATASET.USE_GENDER"),
        pretrained_lit=pretrained_lit or None,
        batch_size=_int(raw, "DATASET.BATCH_SIZE"),
        source=source,
        raw=copy.deepcopy(dict(raw)),
    )


def released_tree() -> dict[str, Any]:
    """The released configuration as a full merged tree (defaults + released values)."""
    tree = copy.deepcopy(DEFAULTS)
    _merge(tree, RELEASED)
    return tree


def read_yaml_tree(path: Path) -> dict[str, Any]:
    """Defaults merged with the yaml file at ``path``.

    Raises
    ------
    ConfigError
        Missing / unreadable file, invalid YAML, or a top level that is not a mapping.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"PARE config {path} {what}: pass the yaml that came with the checkpoint")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read PARE config {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"PARE config {path} is not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"PARE config {path} does not hold a mapping of sections "
            f"(found {type(data).__name__}); is it the yaml from the PARE data?"
        )
    tree = copy.deepcopy(DEFAULTS)
    _merge(tree, data)
    return tree


def load_config(path: Path | str | None, overrides: Sequence[str] = ()) -> PareConfig:
    """Read a PARE yaml config over the reference defaults and validate it.

    Parameters
    ----------
    path : Path, str or None
        The yaml (e.g. ``pare_config.yaml``); None for the released configuration.
    overrides : sequence of str
        Optional yacs ``--opts`` pairs applied after the file (see :func:`apply_overrides`).

    Returns
    -------
    PareConfig
        Network fields plus the merged tree in ``.raw``.

    Raises
    ------
    ConfigError
        Missing or malformed file, or a configuration we do not support (the message names the
        field and value).
    """
    source = None if path is None else Path(path)
    tree = released_tree() if source is None else read_yaml_tree(source)
    if overrides:
        tree = apply_overrides(tree, overrides)
    try:
        return config_from_dict(tree, source=source)
    except ConfigError as exc:
        where = "" if source is None else f"{source}: "
        raise ConfigError(f"{where}{exc}") from None
