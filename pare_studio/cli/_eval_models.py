"""What the dataset commands (``eval``, ``occlusion`` on a dataset) share: where the checkpoint
and the SMPL files come from when not given, as the reference's scripts find them, and the
gendered SMPL bodies for 3DPW's ground truth."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from pare_studio.errors import CheckpointError

log = logging.getLogger(__name__)


def resolve_checkpoint(ckpt: Path | None, cfg: Any) -> Path:
    """``--ckpt``, else the config's ``TRAINING.PRETRAINED_LIT`` (relative to the working
    directory, as the reference); :class:`CheckpointError` when neither is given."""
    if ckpt is not None:
        return ckpt
    if cfg.pretrained_lit:
        return Path(cfg.pretrained_lit)
    where = f" {cfg.source}" if cfg.source is not None else ""
    raise CheckpointError(
        f"no checkpoint: pass --ckpt, or set TRAINING.PRETRAINED_LIT in the config{where} "
        "(the reference's eval reads the weights from there)"
    )


def resolve_smpl_dir(smpl_dir: Path | None, data_dir: Path) -> Path:
    """``--smpl-dir``; else ``--data-dir`` when it holds the SMPL files (the reference keeps them
    in the same ``data/``); else the asset store when it does; else ``--data-dir`` (whose
    loader then names the missing file)."""
    if smpl_dir is not None:
        return smpl_dir
    from pare_studio.assets import AssetStore

    for store in (AssetStore(data_dir), AssetStore.default()):
        if not store.missing_smpl_dir_files():
            return store.root
    return data_dir


def gendered_bodies(smpl_dir: Path, device: Any, command: str) -> tuple[Any, Any] | None:
    """(male, female) SMPL bodies from ``smpl_dir``, or None when missing (with a warning on
    stderr from ``pare-studio <command>``)."""
    from pare_studio.core.smpl import SmplBody
    from pare_studio.core.smpl_io import SmplFiles
    from pare_studio.errors import SmplModelError

    try:
        bodies = tuple(
            SmplBody.from_files(SmplFiles.from_dir(smpl_dir, gender=g)).to(device)
            for g in ("male", "female")
        )
    except SmplModelError as exc:
        msg = (
            "DATASET.USE_GENDER is on but the gendered SMPL models are not usable "
            f"({exc}); the ground truth uses the neutral model"
        )
        log.warning(msg)
        print(f"pare-studio {command}: warning: {msg}", file=sys.stderr)
        return None
    return bodies  # type: ignore[return-value]
