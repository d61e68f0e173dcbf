"""Flags, argument types and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pare_studio.cancel import CancelToken
from pare_studio.errors import OutputError


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
    p.add_argument(
        "--device", default=None, help="torch device (default: cuda when available, else cpu)"
    )
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="inference backend: auto (fast path where it helps), plain torch, or ONNX Runtime",
    )


def flag(name: str) -> list[str]:
    """``--vid_file`` -> ``["--vid_file", "--vid-file"]``: the reference's spelling first, and
    the dashed one every other subcommand uses."""
    dashed = name.replace("_", "-")
    return [name] if dashed == name else [name, dashed]


# ---------------------------------------------------------------- argparse types (exit code 2)


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = _finite(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


# ---------------------------------------------------------------- running


@contextlib.contextmanager
def ctrl_c_cancels(token: CancelToken) -> Iterator[None]:
    """First Ctrl+C sets ``token`` (the run stops after its current batch); the second aborts.

    Outside the main thread (no signal handling there) the block runs unchanged.
    """

    def handler(signum: int, frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()
        print(
            "\ncancelling after the current batch (Ctrl+C again to abort now)...", file=sys.stderr
        )

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def check_out_dir(out: Path) -> None:
    """Fail before a long run when the folder ``out`` cannot be created or written.

    Raises
    ------
    OutputError : the nearest existing ancestor of ``out`` is a file or not writable.
    """
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and (not probe.is_dir() or not os.access(probe, os.W_OK)):
        what = "is not a folder" if not probe.is_dir() else "is not writable"
        raise OutputError(f"cannot write the results to {out}: {probe} {what}")
