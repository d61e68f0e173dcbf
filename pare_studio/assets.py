"""The asset store: where PARE Studio keeps PARE's data, the SMPL files and the YOLOv3 weights.

The store is one folder laid out exactly like the reference's ``data/`` folder, so the store itself
is a valid ``--smpl-dir``::

    <root>/pare/checkpoints/pare_checkpoint.ckpt, pare_config.yaml,
                            pare_w_3dpw_checkpoint.ckpt, pare_w_3dpw_config.yaml
    <root>/body_models/smpl/SMPL_NEUTRAL.npz (or .pkl), SMPL_MALE.*, SMPL_FEMALE.*
    <root>/J_regressor_extra.npy, J_regressor_h36m.npy, smpl_mean_params.npz
    <root>/yolov3.weights
    <root>/manifest.json          sha256 + size of every installed file (``pare-studio setup``)

The root is, in order: an explicit ``data_root`` (the ``--data-root`` flag), the environment
variable ``PARE_STUDIO_DATA``, then ``platformdirs.user_data_dir("pare-studio")``.

Every command and the window find their files through :func:`resolve_model_paths` and
:func:`resolve_yolo_weights`: an explicit path wins, then the store, then the reference's ``./data``
layout in the current folder. This module imports only the standard library and platformdirs, so any
layer (core, pipeline, analysis, cli, gui) can use it without cost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from pare_studio.errors import AssetError

#: Environment variable that overrides the store's root folder.
DATA_ROOT_ENV = "PARE_STUDIO_DATA"
#: Application name used for the platform's user data folder.
APP_NAME = "pare-studio"

#: The released PARE models; ``pare_w_3dpw`` (fine-tuned on 3DPW) is the demo's default.
MODELS = ("pare_w_3dpw", "pare")
DEFAULT_MODEL = "pare_w_3dpw"

#: SMPL gender -> file stem under ``body_models/smpl``.
SMPL_STEMS = {"neutral": "SMPL_NEUTRAL", "male": "SMPL_MALE", "female": "SMPL_FEMALE"}

CHECKPOINTS_DIR = "pare/checkpoints"
J_REGRESSOR_EXTRA = "J_regressor_extra.npy"
J_REGRESSOR_H36M = "J_regressor_h36m.npy"
SMPL_MEAN_PARAMS = "smpl_mean_params.npz"
YOLO_WEIGHTS = "yolov3.weights"
MANIFEST = "manifest.json"
#: The files next to the SMPL model that ship in PARE's data zip.
SMPL_SUPPORT_FILES = (J_REGRESSOR_EXTRA, J_REGRESSOR_H36M, SMPL_MEAN_PARAMS)
#: Of those, what prediction needs (as ``core.smpl_io.SmplFiles.from_dir`` requires by default; the
#: H36M regressor is for evaluation, the mean parameters are also in the checkpoint).
SMPL_DIR_REQUIRED = (J_REGRESSOR_EXTRA,)

#: What to run, or where to go, when something is missing.
SETUP_CMD = "pare-studio setup"
SETUP_FROM_ZIP_CMD = "pare-studio setup --from-zip pare-github-data.zip"
SMPL_CMD = "pare-studio setup --smpl /path/to/SMPL_NEUTRAL.pkl"
SMPL_NEUTRAL_URL = "https://smplify.is.tue.mpg.de"
SMPL_URL = "https://smpl.is.tue.mpg.de"
PARE_DATA_DRIVE_URL = "https://drive.google.com/file/d/1qIq0CBBj-O6wVc9nJXG-JDEtWPzRQ4KC/view"
#: Where the reference's YOLOv3 wrapper looks for its weights (spec §5.3).
TORCH_HOME_YOLO = Path("~/.torch/models/yolov3.weights")


def config_rel(model: str) -> str:
    """Store-relative path of a released model's yaml (``pare/checkpoints/pare_config.yaml``)."""
    _check_model(model)
    return f"{CHECKPOINTS_DIR}/{model}_config.yaml"


def checkpoint_rel(model: str) -> str:
    """Store-relative path of a released model's checkpoint."""
    _check_model(model)
    return f"{CHECKPOINTS_DIR}/{model}_checkpoint.ckpt"


def smpl_rel(gender: str = "neutral", ext: str = ".npz") -> str:
    """Store-relative path of a SMPL model file, e.g. ``body_models/smpl/SMPL_NEUTRAL.npz``."""
    if gender not in SMPL_STEMS:
        raise ValueError(f"unknown SMPL gender {gender!r}; expected one of {sorted(SMPL_STEMS)}")
    return f"body_models/smpl/{SMPL_STEMS[gender]}{ext}"


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise AssetError(
            f"unknown PARE model {model!r}; the released models are {', '.join(MODELS)}"
        )


def default_data_root() -> Path:
    """``$PARE_STUDIO_DATA`` when set, else the platform's user data folder for pare-studio."""
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True)
class AssetStore:
    """A folder laid out as the reference's ``data/`` (see the module docstring).

    Creating an ``AssetStore`` touches nothing on disk; ``pare-studio setup`` creates the folder.
    """

    root: Path

    @classmethod
    def default(cls, data_root: str | os.PathLike[str] | None = None) -> AssetStore:
        """The store at ``data_root``, else ``$PARE_STUDIO_DATA``, else the user data folder."""
        root = Path(data_root).expanduser() if data_root else default_data_root()
        return cls(root.absolute())

    # -- paths --------------------------------------------------------------------------------
    def path(self, rel: str) -> Path:
        """Absolute path of a store-relative path (``/``-separated)."""
        return self.root.joinpath(*rel.split("/"))

    def config_path(self, model: str = DEFAULT_MODEL) -> Path:
        return self.path(config_rel(model))

    def checkpoint_path(self, model: str = DEFAULT_MODEL) -> Path:
        return self.path(checkpoint_rel(model))

    def smpl_model_path(self, gender: str = "neutral") -> Path | None:
        """The SMPL model file of ``gender`` that is present, or None (the search of
        :func:`pare_studio.core.smpl_io.find_smpl_model`, which ``SmplFiles`` uses too)."""
        from pare_studio.core.smpl_io import find_smpl_model

        return find_smpl_model(self.smpl_models_dir, gender)

    @property
    def smpl_models_dir(self) -> Path:
        return self.path("body_models/smpl")

    @property
    def yolo_weights_path(self) -> Path:
        return self.path(YOLO_WEIGHTS)

    @property
    def manifest_path(self) -> Path:
        return self.path(MANIFEST)

    @property
    def downloads_dir(self) -> Path:
        """Where ``pare-studio setup`` keeps a download (and its resumable ``.part``)."""
        return self.path("downloads")

    # -- what is present ----------------------------------------------------------------------
    def missing_smpl_dir_files(self, gender: str = "neutral") -> list[str]:
        """What this folder lacks to serve as ``--smpl-dir`` for prediction (SMPL model of
        ``gender`` and the extra-joint regressor)."""
        missing = [] if self.smpl_model_path(gender) else [smpl_rel(gender, ".npz")]
        return missing + [r for r in SMPL_DIR_REQUIRED if not self.path(r).is_file()]

    def has_model(self, model: str = DEFAULT_MODEL) -> bool:
        return self.checkpoint_path(model).is_file() and self.config_path(model).is_file()


def reference_data_dir() -> Path:
    """The reference implementation's ``./data`` folder, relative to the current directory."""
    return Path.cwd() / "data"


@dataclass(frozen=True)
class ModelPaths:
    """The files a predictor needs, as resolved by :func:`resolve_model_paths`.

    cfg : the PARE yaml, or None for the released configuration (an explicit checkpoint with no yaml
        next to it).
    ckpt : the PARE checkpoint.
    smpl_dir : a folder laid out as PARE's ``data/`` (SMPL model, regressors, mean parameters).
    sources : where each came from, ``{"ckpt": "flag" | "store" | "./data", ...}``.
    """

    cfg: Path | None
    ckpt: Path
    smpl_dir: Path
    sources: dict[str, str]


def candidate_stores(store: AssetStore | None = None) -> list[tuple[str, AssetStore]]:
    """Where files are looked for, labelled: ``("store", the asset store)``, then
    ``("./data", the reference's folder)`` when it exists and is another folder."""
    first = store if store is not None else AssetStore.default()
    out = [("store", first)]
    ref = AssetStore(reference_data_dir().absolute())
    if ref.root != first.root and ref.root.is_dir():
        out.append(("./data", ref))
    return out


def _config_next_to(ckpt: Path) -> Path | None:
    """``X_checkpoint.ckpt`` -> ``X_config.yaml`` (released naming) or ``X.yaml``, if present."""
    stem = ckpt.stem
    names = []
    if stem.endswith("_checkpoint"):
        names.append(stem[: -len("_checkpoint")] + "_config.yaml")
    names.append(stem + ".yaml")
    for name in names:
        p = ckpt.with_name(name)
        if p.is_file():
            return p
    return None


def _pare_data_hint() -> str:
    return (
        f"run `{SETUP_CMD}` to download PARE's data (or `{SETUP_FROM_ZIP_CMD}` with a zip you "
        f"already have, from {PARE_DATA_DRIVE_URL})"
    )


def _smpl_hint(gender: str = "neutral") -> str:
    if gender == "neutral":
        return (
            f"download the neutral SMPL model from {SMPL_NEUTRAL_URL} (free registration; the file "
            f"is basicModel_neutral_lbs_10_207_0_v1.0.0.pkl), then run `{SMPL_CMD}`"
        )
    return (
        f"download SMPL from {SMPL_URL} (free registration), then run "
        f"`pare-studio setup --smpl-{gender} /path/to/SMPL_{gender.upper()}.pkl`"
    )


def resolve_model_paths(
    cfg: str | os.PathLike[str] | None = None,
    ckpt: str | os.PathLike[str] | None = None,
    smpl_dir: str | os.PathLike[str] | None = None,
    model: str = DEFAULT_MODEL,
    store: AssetStore | None = None,
) -> ModelPaths:
    """Find the PARE yaml, checkpoint and SMPL folder for a command or the window.

    Order for each: the explicit path (a flag), then the asset store, then the reference's
    ``./data`` layout in the current folder. Explicit paths are returned as given; the loader that
    opens them reports a bad one. An explicit checkpoint with no explicit yaml uses the yaml next
    to it (``X_checkpoint.ckpt`` -> ``X_config.yaml``), else the released configuration (None).

    Parameters
    ----------
    cfg, ckpt, smpl_dir : explicit paths (``--cfg``, ``--ckpt``, ``--smpl-dir``) or None.
    model : which released model to take from the store: ``"pare_w_3dpw"`` (default) or ``"pare"``.
    store : the asset store; default :meth:`AssetStore.default`.

    Raises
    ------
    AssetError
        Listing every missing file and the command that installs it.
    """
    _check_model(model)
    candidates = candidate_stores(store)
    default_store = candidates[0][1]
    where = " and ".join(str(s.root) for _, s in candidates)
    sources: dict[str, str] = {}
    problems: list[str] = []

    ckpt_path: Path | None = None
    cfg_path: Path | None = Path(cfg) if cfg is not None else None
    if cfg_path is not None:
        sources["cfg"] = "flag"
    if ckpt is not None:
        ckpt_path = Path(ckpt)
        sources["ckpt"] = "flag"
        if cfg_path is None:
            cfg_path = _config_next_to(ckpt_path)
            sources["cfg"] = "next to --ckpt" if cfg_path else "released defaults"
    else:
        for label, s in candidates:
            if s.checkpoint_path(model).is_file() and (cfg_path or s.config_path(model).is_file()):
                ckpt_path = s.checkpoint_path(model)
                sources["ckpt"] = label
                if cfg_path is None:
                    cfg_path = s.config_path(model)
                    sources["cfg"] = label
                break
        else:
            rels = [checkpoint_rel(model)] + ([] if cfg_path else [config_rel(model)])
            missing = [r for r in rels if not default_store.path(r).is_file()] or rels
            problems.append(
                f"PARE model {model!r} ({', '.join(missing)}) not found in {where}: "
                + _pare_data_hint()
            )

    smpl_path: Path | None = None
    if smpl_dir is not None:
        smpl_path = Path(smpl_dir)
        sources["smpl_dir"] = "flag"
    else:
        for label, s in candidates:
            if not s.missing_smpl_dir_files():
                smpl_path = s.root
                sources["smpl_dir"] = label
                break
        else:
            missing = default_store.missing_smpl_dir_files()
            model_missing = [m for m in missing if m.startswith("body_models/")]
            side_missing = [m for m in missing if not m.startswith("body_models/")]
            if model_missing:
                problems.append(
                    f"SMPL neutral model (body_models/smpl/SMPL_NEUTRAL.npz or .pkl) not found in "
                    f"{where}: {_smpl_hint()}"
                )
            if side_missing:
                problems.append(
                    f"SMPL side files ({', '.join(side_missing)}) not found in {where}: "
                    f"they are part of PARE's data; {_pare_data_hint()}"
                )

    if problems:
        raise AssetError(
            "missing assets:\n  - "
            + "\n  - ".join(problems)
            + "\nOr pass --cfg/--ckpt/--smpl-dir. `pare-studio doctor` shows what is installed."
        )
    assert ckpt_path is not None and smpl_path is not None  # problems would be non-empty otherwise
    return ModelPaths(cfg=cfg_path, ckpt=ckpt_path, smpl_dir=smpl_path, sources=sources)


def yolo_weights_candidates(store: AssetStore | None = None) -> list[Path]:
    """Where the YOLOv3 weights are looked for: the store, ``./data``, then ``~/.torch/models``."""
    out = [s.yolo_weights_path for _, s in candidate_stores(store)]
    out.append(TORCH_HOME_YOLO.expanduser())
    return out


def resolve_yolo_weights(
    weights: str | os.PathLike[str] | None = None, store: AssetStore | None = None
) -> Path:
    """The YOLOv3 (Darknet, COCO) weights file: explicit path, else the first that exists of
    :func:`yolo_weights_candidates`.

    Raises
    ------
    AssetError
        When no candidate exists, naming where it looked and ``pare-studio setup``.
    """
    if weights is not None:
        return Path(weights)
    candidates = yolo_weights_candidates(store)
    for p in candidates:
        if p.is_file():
            return p
    raise AssetError(
        "YOLOv3 weights (yolov3.weights) not found; looked at "
        + ", ".join(str(p) for p in candidates)
        + f". They are part of PARE's data: {_pare_data_hint()}."
    )
