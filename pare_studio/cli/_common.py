"""Flags and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_args(p: argparse.ArgumentParser) -> None:
    """``--cfg``, ``--ckpt``, ``--smpl-dir``, ``--device``, ``--backend`` (predictor assets)."""
    p.add_argument("--cfg", type=Path, default=None, help="PARE yaml config (pare_config.yaml)")
    p.add_argument("--ckpt", type=Path, default=None, help="PARE checkpoint (pare_checkpoint.ckpt)")
    p.add_argument(
        "--smpl-dir",
        type=Path,
        default=None,
        help="folder laid out as PARE's data/: body_models/smpl/SMPL_NEUTRAL.pkl, "
        "J_regressor_extra.npy, J_regressor_h36m.npy, smpl_mean_params.npz",
    )
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="inference backend: auto (fast path where it helps), plain torch, or ONNX Runtime",
    )
