"""Reading PARE checkpoints without running code, and strict loading into the network.

The released ``pare_checkpoint.ckpt`` is a PyTorch-Lightning training checkpoint. Besides
``state_dict`` it holds callback state keyed by the class
``pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint`` and hyper-parameters made of
``yacs.config.CfgNode`` objects inside a ``pytorch_lightning.utilities.parsing.AttributeDict``.
``torch.load(weights_only=True)`` refuses it and a plain load needs both packages (and would run
whatever code a stranger's pickle names).

:func:`read_state_dict` unpickles with a restricted unpickler: it resolves only torch's own
weights-only allow-list (tensor rebuild functions, storages, dtypes, ``OrderedDict``), a few
plain builtins and numpy scalar / array reconstruction; every global under ``pytorch_lightning``,
``lightning``, ``lightning_fabric`` or ``yacs`` becomes an inert dict-like stub (no code of
those packages is imported or run); any other global is refused with
:class:`~pare_studio.errors.CheckpointError`.

:func:`load_network_weights` keeps ``model.backbone.*`` / ``model.head.*``, strips ``model.`` once,
and loads **strictly**: missing, unexpected or mis-shaped keys raise ``CheckpointError`` listing
them (the reference loads non-strictly and would silently run a wrong model).
"""

from __future__ import annotations

import _compat_pickle
import io
import logging
import pickle
import types
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pare_studio.errors import CheckpointError

log = logging.getLogger(__name__)

#: Top-level packages whose classes are training metadata: mapped to inert stubs, never imported.
FOREIGN_METADATA_PACKAGES: tuple[str, ...] = (
    "pytorch_lightning",
    "lightning",
    "lightning_fabric",
    "yacs",
)

#: Prefixes of the network entries in a Lightning checkpoint's state_dict.
NETWORK_PREFIXES: tuple[str, ...] = ("model.backbone.", "model.head.")

_SAFE_BUILTINS: tuple[str, ...] = ("set", "frozenset", "complex", "bytearray", "slice", "range")


def _numpy_globals() -> dict[str, Any]:
    """numpy scalar / array / dtype reconstruction, under both numpy 1 and numpy 2 names."""
    import numpy as np

    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    out: dict[str, Any] = {"numpy.ndarray": np.ndarray, "numpy.dtype": np.dtype}
    for package in ("numpy.core", "numpy._core"):
        out[f"{package}.multiarray.scalar"] = multiarray.scalar
        out[f"{package}.multiarray._reconstruct"] = multiarray._reconstruct
    return out


_SHOW = 5  # keys shown per category in messages


# --------------------------------------------------------------------------------------------
# restricted unpickling


class InertStub(dict):
    """Stand-in for a training-metadata class (yacs CfgNode, Lightning AttributeDict, ...).

    Behaves as a plain dict of whatever items the pickle stored; extra state goes to
    attributes; constructor arguments that are not dict-like are kept in ``stub_args``.
    Nothing of the original class runs.
    """

    stub_of: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            super().__init__(*args, **kwargs)
        except (TypeError, ValueError):
            super().__init__()
            self.__dict__["stub_args"] = args

    def __setstate__(self, state: Any) -> None:
        slots = None
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
            state, slots = state
        if isinstance(state, dict):
            self.__dict__.update({str(k): v for k, v in state.items()})
        elif state is not None:
            self.__dict__["stub_state"] = state
        if slots:
            self.__dict__.update({str(k): v for k, v in slots.items()})

    def __reduce__(self) -> tuple[Any, ...]:  # pickle as a plain dict, never as the stub
        return (dict, (dict(self),))

    def __hash__(self) -> int:  # stub instances may be dict keys in odd pickles
        return id(self)

    def __repr__(self) -> str:
        return f"<inert {self.stub_of} {dict.__repr__(self)}>"


_STUBS: dict[str, type[InertStub]] = {}


def _stub_class(module: str, name: str) -> type[InertStub]:
    full = f"{module}.{name}"
    cls = _STUBS.get(full)
    if cls is None:
        cls = type(
            name, (InertStub,), {"__module__": module, "__qualname__": name, "stub_of": full}
        )
        _STUBS[full] = cls
    return cls


def _torch_allowed_globals() -> dict[str, Any]:
    """torch's weights-only allow-list (rebuild functions, storages, dtypes, OrderedDict, ...)."""
    try:
        from torch import _weights_only_unpickler

        return dict(_weights_only_unpickler._get_allowed_globals())
    except (ImportError, AttributeError):  # private API moved: fall back to the essentials
        from torch import _utils

        allowed: dict[str, Any] = {
            "collections.OrderedDict": OrderedDict,
            "torch.Size": torch.Size,
            "torch.device": torch.device,
            "torch.nn.parameter.Parameter": torch.nn.Parameter,
            "torch._utils._rebuild_tensor_v2": _utils._rebuild_tensor_v2,
            "torch._utils._rebuild_parameter": _utils._rebuild_parameter,
        }
        for dtype in (
            torch.float16,
            torch.bfloat16,
            torch.float32,
            torch.float64,
            torch.int8,
            torch.uint8,
            torch.int16,
            torch.int32,
            torch.int64,
            torch.bool,
        ):
            allowed[str(dtype)] = dtype
        return allowed


class _RefusedGlobal(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` resolves only allow-listed globals (see module doc)."""

    _allowed: dict[str, Any] | None = None

    @classmethod
    def allowed(cls) -> dict[str, Any]:
        if cls._allowed is None:
            allowed = _torch_allowed_globals()
            import builtins

            for name in _SAFE_BUILTINS:
                allowed[f"builtins.{name}"] = getattr(builtins, name)
            allowed.update(_numpy_globals())
            cls._allowed = allowed
        return cls._allowed

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401 - pickle API
        # protocol-2 pickles written by Python 3 use Python 2 names (__builtin__, copy_reg)
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        allowed = self.allowed()
        if full in allowed:
            return allowed[full]
        if module.split(".", 1)[0] in FOREIGN_METADATA_PACKAGES and name.isidentifier():
            return _stub_class(module, name)
        raise _RefusedGlobal(full)


def _restricted_pickle_module() -> types.ModuleType:
    """A module object torch.load accepts as ``pickle_module`` (``Unpickler``, ``load``)."""
    mod = types.ModuleType("pare_studio_restricted_pickle")

    def load(file: Any, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(file, **kwargs).load()

    def loads(data: bytes, **kwargs: Any) -> Any:
        return _RestrictedUnpickler(io.BytesIO(data), **kwargs).load()

    mod.Unpickler = _RestrictedUnpickler  # type: ignore[attr-defined]
    mod.load = load  # type: ignore[attr-defined]
    mod.loads = loads  # type: ignore[attr-defined]
    mod.UnpicklingError = pickle.UnpicklingError  # type: ignore[attr-defined]
    return mod


_PICKLE_MODULE = _restricted_pickle_module()


def _looks_like_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def load_checkpoint_object(path: Path | str) -> Any:
    """Unpickle a ``torch.save`` file (zip or legacy format) without running foreign code.

    Parameters
    ----------
    path : Path or str
        The checkpoint.

    Returns
    -------
    The saved object, tensors on CPU; Lightning / yacs objects as :class:`InertStub` dicts.

    Raises
    ------
    CheckpointError
        Missing, empty, truncated or non-checkpoint file, or a pickle that references a global
        outside the allow-list ("refusing to load ...").
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(
            f"checkpoint {path} does not exist: download the PARE data or pass --ckpt"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes): download it again")
    try:
        is_zip = _looks_like_zip(path)
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from exc
    try:
        return torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_PICKLE_MODULE
        )
    except _RefusedGlobal as exc:
        raise CheckpointError(
            f"refusing to load {path}: it references {exc.name}, which could run code. A PARE "
            "checkpoint holds only tensors, plain containers and Lightning / yacs training "
            "metadata; do not use files from untrusted sources"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse a user's file means a bad file
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        text = text.split(". ")[0].rstrip(" .,;:")
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        if is_zip:
            what = "is truncated or damaged (its zip archive cannot be read completely)"
        else:
            what = "is not a PyTorch checkpoint (or is truncated)"
        raise CheckpointError(
            f"checkpoint {path} {what}: {detail}. Download it again "
            "(pare_checkpoint.ckpt from the PARE data)"
        ) from exc


def _first(items: list[str], n: int = _SHOW) -> str:
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items) - n} more)" if len(items) > n else "")


def _state_dict_of(obj: Any, origin: str) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a loaded checkpoint object (Lightning ckpt or plain state dict)."""
    if isinstance(obj, Mapping) and "state_dict" in obj:
        sd = obj["state_dict"]
        if not isinstance(sd, Mapping):
            raise CheckpointError(
                f"{origin}: its 'state_dict' entry is a {type(sd).__name__}, "
                "not a mapping of tensors"
            )
    elif (
        isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values())
    ):
        sd = obj
    elif isinstance(obj, Mapping):
        keys = [str(k) for k in obj.keys()]
        raise CheckpointError(
            f"{origin} holds no 'state_dict' (top-level entries: {_first(keys) or 'none'}); "
            "is it a PARE checkpoint?"
        )
    else:
        raise CheckpointError(
            f"{origin} holds a {type(obj).__name__}, "
            "not a checkpoint dictionary with a 'state_dict'"
        )
    bad = [
        str(k) for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if bad:
        raise CheckpointError(
            f"{origin}: state_dict entries that are not named tensors: {_first(bad)}"
        )
    if not sd:
        raise CheckpointError(f"{origin}: its state_dict is empty")
    return dict(sd)


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a checkpoint file, loaded without running code.

    Accepts the Lightning training checkpoint (with or without its training-time entries,
    e.g. the ``--bare`` synthetic variant) and a plain ``torch.save(state_dict)`` file.

    Parameters
    ----------
    path : Path or str

    Returns
    -------
    dict[str, Tensor]
        Keys as stored (``model.backbone.*``, ``model.head.*``, ``smpl.*``, ...), CPU tensors.

    Raises
    ------
    CheckpointError
        See :func:`load_checkpoint_object`; also a file without a state_dict.
    """
    return _state_dict_of(load_checkpoint_object(path), f"checkpoint {path}")


# --------------------------------------------------------------------------------------------
# strict loading into the network


def network_entries(
    state_dict: Mapping[str, torch.Tensor], origin: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Backbone and head entries with the ``model.`` prefix stripped once.

    A Lightning state dict (``model.backbone.*`` / ``model.head.*``) and a plain network state
    dict (``backbone.*`` / ``head.*``) are both accepted.

    Raises
    ------
    CheckpointError
        No network entries at all.
    """
    out = {k[len("model.") :]: v for k, v in state_dict.items() if k.startswith(NETWORK_PREFIXES)}
    if out:
        return out
    out = {k: v for k, v in state_dict.items() if k.startswith(("backbone.", "head."))}
    if out:
        return out
    keys = list(state_dict)
    raise CheckpointError(
        f"{origin} holds no PARE network weights: none of its {len(keys)} entries starts with "
        f"'model.backbone.' or 'model.head.' (first entries: {_first(keys) or 'none'})"
    )


def _shape(t: torch.Tensor) -> list[int]:
    return [int(s) for s in t.shape]


def describe_architecture(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Guess the configuration fields of a stripped network state dict.

    Returns
    -------
    dict with any of ``backbone`` (str), ``num_deconv_layers``, ``num_deconv_filters``,
    ``num_features_smpl``, ``num_joints`` (int), ``extra_head_modules`` (list of str).
    """
    arch: dict[str, Any] = {}
    t1 = sd.get("backbone.transition1.0.0.weight")
    if t1 is not None and t1.dim() == 4:
        conv = any(k.startswith("backbone.upsample_stage_2.") for k in sd)
        arch["backbone"] = f"hrnet_w{int(t1.shape[0])}-{'conv' if conv else 'interp'}"
    elif any(k.startswith("backbone.layer4.") for k in sd):
        arch["backbone"] = "a ResNet-style backbone"
    elif any(k.startswith("backbone.") for k in sd):
        arch["backbone"] = "an unknown backbone"
    convs = sorted(
        int(k.split(".")[2])
        for k, v in sd.items()
        if k.startswith("head.keypoint_deconv_layers.") and k.endswith(".weight") and v.dim() == 4
    )
    if convs:
        arch["num_deconv_layers"] = len(convs)
        arch["num_deconv_filters"] = int(
            sd[f"head.keypoint_deconv_layers.{convs[0]}.weight"].shape[0]
        )
    smpl_final = sd.get("head.smpl_final_layer.weight")
    if smpl_final is not None and smpl_final.dim() >= 1:
        arch["num_features_smpl"] = int(smpl_final.shape[0])
    pose = sd.get("head.pose_mlp.weight")
    if pose is not None and pose.dim() == 6:
        arch["num_joints"] = int(pose.shape[3])
    known = (
        "temperature",
        "init_pose",
        "init_shape",
        "init_cam",
        "keypoint_deconv_layers",
        "smpl_deconv_layers",
        "keypoint_final_layer",
        "smpl_final_layer",
        "shape_mlp",
        "cam_mlp",
        "pose_mlp",
    )
    extra = sorted(
        {k.split(".")[1] for k in sd if k.startswith("head.") and k.split(".")[1] not in known}
    )
    if extra:
        arch["extra_head_modules"] = extra
    return arch


def _arch_text(arch: Mapping[str, Any]) -> str:
    parts = []
    if "backbone" in arch:
        parts.append(f"backbone {arch['backbone']}")
    if "num_deconv_layers" in arch:
        parts.append(
            f"head with NUM_DECONV_LAYERS {arch['num_deconv_layers']} / "
            f"{arch['num_deconv_filters']} filters"
        )
    if "num_features_smpl" in arch:
        parts.append(f"NUM_FEATURES_SMPL {arch['num_features_smpl']}")
    if "num_joints" in arch:
        parts.append(f"NUM_JOINTS {arch['num_joints']}")
    if arch.get("extra_head_modules"):
        parts.append(
            f"extra head modules {', '.join(arch['extra_head_modules'])} "
            "(iterative / HMR regression or other unreleased options)"
        )
    return ", ".join(parts)


def check_network_state_dict(
    network: nn.Module, sd: Mapping[str, torch.Tensor], origin: str
) -> None:
    """Raise CheckpointError unless ``sd`` has exactly the network's keys, shapes, dtype kinds."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    misfit: list[str] = []
    for k, ours in expected.items():
        theirs = sd.get(k)
        if theirs is None:
            continue
        if theirs.shape != ours.shape:
            misfit.append(f"{k} (checkpoint {_shape(theirs)}, network {_shape(ours)})")
        elif theirs.is_floating_point() != ours.is_floating_point():
            misfit.append(f"{k} (checkpoint {theirs.dtype}, network {ours.dtype})")
    if not (missing or unexpected or misfit):
        return
    theirs_arch = describe_architecture(sd)
    ours_arch = describe_architecture(expected)
    if theirs_arch and theirs_arch != ours_arch:
        verdict = (
            f"it looks like a checkpoint of another architecture: {_arch_text(theirs_arch)}; "
            f"the configuration builds {_arch_text(ours_arch)}. Use the yaml config that came "
            "with this checkpoint."
        )
    else:
        verdict = "the checkpoint is damaged or was edited: use the original PARE checkpoint."
    # the verdict first (what to do), then the evidence, a few keys per kind
    lines = [
        f"{origin} does not fit the network: {verdict}",
        f"  {len(missing)} missing, {len(unexpected)} unexpected, {len(misfit)} mis-shaped keys",
    ]
    if missing:
        lines.append(f"  missing ({len(missing)}): {_first(missing, 3)}")
    if unexpected:
        lines.append(f"  unexpected ({len(unexpected)}): {_first(unexpected, 3)}")
    if misfit:
        lines.append(f"  mis-shaped ({len(misfit)}): {_first(misfit, 2)}")
    raise CheckpointError("\n".join(lines))


def load_network_weights(
    network: nn.Module,
    source: Path | str | Mapping[str, Any],
) -> None:
    """Load checkpoint weights into a :class:`~pare_studio.core.network.PareNetwork`, strictly.

    Parameters
    ----------
    network : nn.Module
        Module with ``backbone`` and ``head`` children (its ``state_dict`` defines what must be
        present).
    source : Path, str or mapping
        A checkpoint file, a loaded checkpoint dict (with ``state_dict``), or a state dict
        (Lightning keys ``model.backbone.*`` or plain ``backbone.*``). Other entries
        (``model.smpl.*``, ``smpl.*``, ``J_regressor``, ...) are ignored.

    Raises
    ------
    CheckpointError
        Unreadable / unsafe file, no network entries, or missing / unexpected / mis-shaped keys.
    """
    if isinstance(source, (str, Path)):
        origin = f"checkpoint {source}"
        sd: Mapping[str, Any] = read_state_dict(source)
    elif isinstance(source, Mapping):
        origin = "checkpoint"
        sd = _state_dict_of(source, origin)
    else:
        raise TypeError(f"expected a path or a mapping, got {type(source).__name__}")
    entries = network_entries(sd, origin)
    check_network_state_dict(network, entries, origin)
    try:
        network.load_state_dict(entries, strict=True)
    except RuntimeError as exc:  # pragma: no cover - check_network_state_dict covers the causes
        raise CheckpointError(f"{origin} could not be loaded into the network: {exc}") from None
