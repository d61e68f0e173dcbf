"""Choosing the torch device for inference."""

from __future__ import annotations

import torch

from pare_studio.errors import ConfigError


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The torch device to run on.

    Parameters
    ----------
    device : None / "auto" (CUDA when available, else CPU), or any torch device string
        ("cpu", "cuda", "cuda:1", "mps").

    Raises
    ------
    ConfigError : an unknown device string, or a CUDA / MPS device that is not available.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "auto")):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(
            f"unknown device {device!r}: use cpu, cuda, cuda:N or leave it out"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {device!r} asked for, but CUDA is not available in this torch build / "
                "machine: use --device cpu or leave --device out"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r} asked for, but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"device {device!r} asked for, but MPS is not available")
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {device!r}: use cpu, cuda or cuda:N")
    return dev
