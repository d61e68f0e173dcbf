"""PARE on batches of crops: numpy in, :class:`~pare_studio.results.PareOutput` out.

The work is split in two stages so that another inference engine can replace the first:

1. **Network runner** (:class:`NetworkRunner`): normalised crops -> head outputs
   (``pred_pose`` (B,24,3,3), ``pred_shape`` (B,10), ``pred_cam`` (B,3),
   ``pred_segm_mask`` (B,25,56,56)). :class:`TorchRunner` runs the PyTorch network eagerly.
   Other backends register a factory in :data:`RUNNER_FACTORIES` (``backend=`` name).
2. **SMPL + projection** (:meth:`ParePredictor.outputs_from_heads`): the head outputs -> mesh,
   49 joints, perspective camera and 2-D joints (spec §3.4), always in torch.

Threads: nothing global is changed here (no ``torch.set_num_threads``); torch's default uses
all cores. Callers that share the machine (the CLI's ``--threads``, the GUI) set it themselves.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import torch

from pare_studio.core.constants import FOCAL_LENGTH, IMG_RES, SMPL_NUM_BETAS, SMPL_NUM_JOINTS
from pare_studio.core.device import choose_device
from pare_studio.core.geometry import (
    perspective_projection,
    rot6d_to_rotmat,
    weak_cam_to_translation,
)
from pare_studio.core.smpl import SmplBody
from pare_studio.core.smpl_io import SmplFiles
from pare_studio.errors import CheckpointError, ConfigError, InputArrayError, SmplModelError
from pare_studio.results import PareOutput

if TYPE_CHECKING:
    from pare_studio.cancel import CancelToken
    from pare_studio.core.config import PareConfig

log = logging.getLogger(__name__)

#: Keys every network runner returns.
HEAD_KEYS = ("pred_pose", "pred_shape", "pred_cam", "pred_segm_mask")

#: Accepted ``backend`` values.
BACKENDS = ("auto", "torch", "onnx")


@runtime_checkable
class NetworkRunner(Protocol):
    """Runs PARE's network on one batch of crops.

    Attributes
    ----------
    name : backend name ("torch", "onnx", ...).
    device : where the returned tensors live (numpy results are moved to the SMPL device).
    """

    name: str
    device: torch.device

    def __call__(self, images: np.ndarray) -> Mapping[str, torch.Tensor | np.ndarray]:
        """``images`` (B, 3, 224, 224) float32 C-contiguous -> dict with :data:`HEAD_KEYS`."""
        ...

    def close(self) -> None:
        """Free the engine's memory (idempotent)."""
        ...


class TorchRunner:
    """Eager PyTorch network in eval mode under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, network: torch.nn.Module, device: torch.device) -> None:
        self.device = torch.device(device)
        self.network: torch.nn.Module | None = network.to(self.device).eval()

    def __call__(self, images: np.ndarray) -> dict[str, torch.Tensor]:
        if self.network is None:
            raise RuntimeError("TorchRunner is closed")
        x = torch.from_numpy(images).to(self.device)
        with torch.inference_mode():
            out = self.network(x)
        return {k: out[k] for k in HEAD_KEYS}

    def close(self) -> None:
        self.network = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _head_tensor(
    heads: Mapping[str, torch.Tensor | np.ndarray], key: str, device: torch.device
) -> torch.Tensor:
    if key not in heads:
        raise RuntimeError(f"network runner returned no {key!r} (got {sorted(heads)})")
    value = heads[key]
    t = torch.as_tensor(value) if isinstance(value, np.ndarray) else value
    return t.to(device=device, dtype=torch.float32)


class ParePredictor:
    """PARE network + SMPL body on one device.

    Parameters
    ----------
    runner : the network stage (:class:`NetworkRunner`).
    smpl : the body model; moved to ``device``.
    device : where SMPL runs (normally the runner's device).
    focal_length, img_res : camera constants (from the config; 5000, 224 for PARE).
    """

    def __init__(
        self,
        runner: NetworkRunner,
        smpl: SmplBody,
        device: torch.device | str | None = None,
        focal_length: float = FOCAL_LENGTH,
        img_res: int = IMG_RES,
    ) -> None:
        self.runner = runner
        self.device = torch.device(device) if device is not None else runner.device
        self.smpl = smpl.to(self.device).eval()
        self.focal_length = float(focal_length)
        self.img_res = int(img_res)
        self._closed = False

    # ------------------------------------------------------------------ properties

    @property
    def faces(self) -> np.ndarray:
        """(13776, 3) int64 SMPL triangle vertex ids."""
        return self.smpl.faces

    @property
    def backend(self) -> str:
        """Name of the network runner ("torch", ...)."""
        return self.runner.name

    # ------------------------------------------------------------------ inference

    def check_images(self, images: np.ndarray) -> np.ndarray:
        """Validate a crop batch; returns it as C-contiguous float32.

        Raises :class:`~pare_studio.errors.InputArrayError` (a ``ValueError``) for anything but a
        finite floating (N, 3, img_res, img_res) array.
        """
        res = self.img_res
        if not isinstance(images, np.ndarray):
            raise InputArrayError(
                f"crops must be a numpy array (N, 3, {res}, {res}), got {type(images).__name__}"
            )
        if images.ndim != 4 or images.shape[1:] != (3, res, res):
            raise InputArrayError(
                f"crops must have shape (N, 3, {res}, {res}) (RGB, channels first), "
                f"got {images.shape}"
            )
        if not np.issubdtype(images.dtype, np.floating):
            raise InputArrayError(
                f"crops must be float32, ImageNet-normalised ((rgb/255 - mean) / std); got dtype "
                f"{images.dtype} (raw pixels?)"
            )
        images = np.ascontiguousarray(images, dtype=np.float32)
        if not np.isfinite(images).all():
            raise InputArrayError("crops contain NaN or infinite values")
        return images

    def predict(
        self,
        images: np.ndarray,
        batch_size: int = 16,
        cancel: CancelToken | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PareOutput:
        """Run PARE on N crops.

        Parameters
        ----------
        images : (N, 3, 224, 224) float32, RGB in [0, 1] normalised with ImageNet mean / std.
        batch_size : crops per network call (>= 1).
        cancel : checked between batches (raises ``Cancelled``).
        progress : called as ``progress(done, N)`` after each batch.

        Returns
        -------
        PareOutput with float32 numpy arrays (see :class:`~pare_studio.results.PareOutput`).
        """
        if self._closed:
            raise RuntimeError("ParePredictor is closed")
        images = self.check_images(images)
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise InputArrayError(f"batch_size must be a positive integer, got {batch_size!r}")
        n = images.shape[0]
        if n == 0:
            return _empty_output(self.img_res)
        parts = []
        for start in range(0, n, int(batch_size)):
            if cancel is not None:
                cancel.check()
            heads = self.runner(images[start : start + int(batch_size)])
            parts.append(self.outputs_from_heads(heads))
            if progress is not None:
                progress(min(start + int(batch_size), n), n)
        return parts[0] if len(parts) == 1 else PareOutput.concatenate(parts)

    def outputs_from_heads(self, heads: Mapping[str, torch.Tensor | np.ndarray]) -> PareOutput:
        """SMPL and projection stage: head outputs of one batch -> :class:`PareOutput`.

        Parameters
        ----------
        heads : ``pred_pose`` (B, 24, 3, 3) rotation matrices (or (B, 144) / (B, 24, 6) 6-D),
            ``pred_shape`` (B, 10), ``pred_cam`` (B, 3), ``pred_segm_mask`` (B, 25, 56, 56);
            torch tensors on any device or numpy arrays.
        """
        dev = self.device
        pose = _head_tensor(heads, "pred_pose", dev)
        shape = _head_tensor(heads, "pred_shape", dev)
        cam = _head_tensor(heads, "pred_cam", dev)
        segm = _head_tensor(heads, "pred_segm_mask", dev)
        b = cam.shape[0]
        if pose.shape[1:] != (SMPL_NUM_JOINTS, 3, 3):
            if pose.numel() == b * SMPL_NUM_JOINTS * 6:
                pose = rot6d_to_rotmat(pose.reshape(b, SMPL_NUM_JOINTS * 6))
            else:
                raise RuntimeError(
                    f"network runner returned pred_pose of shape {tuple(pose.shape)}"
                )
        if shape.shape != (b, SMPL_NUM_BETAS) or cam.shape != (b, 3):
            raise RuntimeError(
                f"network runner returned pred_shape {tuple(shape.shape)} / "
                f"pred_cam {tuple(cam.shape)}"
            )
        with torch.inference_mode():
            vertices, joints3d = self.smpl(pose, shape)
            cam_t = weak_cam_to_translation(cam, self.focal_length, self.img_res)
            joints2d = perspective_projection(joints3d, cam_t, self.focal_length, self.img_res)

        def np32(t: torch.Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float32).numpy()

        return PareOutput(
            pred_pose=np32(pose),
            pred_shape=np32(shape),
            pred_cam=np32(cam),
            pred_cam_t=np32(cam_t),
            smpl_vertices=np32(vertices),
            smpl_joints3d=np32(joints3d),
            smpl_joints2d=np32(joints2d),
            pred_segm_mask=np32(segm),
        )

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Release the network (and GPU memory); the predictor cannot be used afterwards."""
        if not self._closed:
            self._closed = True
            self.runner.close()

    def __enter__(self) -> ParePredictor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _empty_output(res: int) -> PareOutput:
    z = np.zeros
    return PareOutput(
        pred_pose=z((0, 24, 3, 3), np.float32),
        pred_shape=z((0, 10), np.float32),
        pred_cam=z((0, 3), np.float32),
        pred_cam_t=z((0, 3), np.float32),
        smpl_vertices=z((0, 6890, 3), np.float32),
        smpl_joints3d=z((0, 49, 3), np.float32),
        smpl_joints2d=z((0, 49, 2), np.float32),
        pred_segm_mask=z((0, 25, res // 4, res // 4), np.float32),
    )


# ---------------------------------------------------------------------------- loading


def build_torch_runner(cfg: PareConfig, ckpt_path: Path, device: torch.device) -> NetworkRunner:
    """The eager PyTorch network with the checkpoint's weights (strict)."""
    from pare_studio.core.checkpoint import load_network_weights
    from pare_studio.core.network import build_network

    network = build_network(cfg)
    load_network_weights(network, ckpt_path)
    return TorchRunner(network, device)


def build_onnx_runner(cfg: PareConfig, ckpt_path: Path, device: torch.device) -> NetworkRunner:
    """The network in ONNX Runtime on the CPU (:mod:`pare_studio.core.fast.onnx_runner`)."""
    from pare_studio.core.fast.onnx_runner import build_onnx_runner as build

    return build(cfg, ckpt_path, device)


def build_auto_runner(cfg: PareConfig, ckpt_path: Path, device: torch.device) -> NetworkRunner:
    """ONNX Runtime on the CPU (PyTorch with one warning when it cannot be used), PyTorch on
    CUDA / MPS (:func:`pare_studio.core.fast.onnx_runner.build_auto_runner`)."""
    from pare_studio.core.fast.onnx_runner import build_auto_runner as build

    return build(cfg, ckpt_path, device)


#: backend name -> factory(cfg, ckpt_path, device) -> NetworkRunner. "auto" picks the best
#: available engine for the device; "torch" is the plain eager network (the ground truth).
RUNNER_FACTORIES: dict[str, Callable[[PareConfig, Path, torch.device], NetworkRunner]] = {
    "auto": build_auto_runner,
    "torch": build_torch_runner,
    "onnx": build_onnx_runner,
}


def load_predictor(
    cfg_path: str | os.PathLike[str] | None,
    ckpt_path: str | os.PathLike[str] | None,
    smpl_dir: str | os.PathLike[str] | None,
    device: str | torch.device | None = None,
    backend: str = "auto",
) -> ParePredictor:
    """Build a ready :class:`ParePredictor` from the user's files.

    Parameters
    ----------
    cfg_path : PARE yaml config; None = the released configuration.
    ckpt_path : PARE checkpoint (``.ckpt``); weights loaded strictly, SMPL buffers in it ignored
        (SMPL comes from ``smpl_dir``).
    smpl_dir : folder laid out as PARE's ``data/`` (see :class:`SmplFiles`).
    device : None = CUDA when available, else CPU.
    backend : "auto", "torch" or "onnx" (see :data:`RUNNER_FACTORIES`).

    Raises
    ------
    ConfigError, CheckpointError, SmplModelError : with a message naming the file / field.
    """
    from pare_studio.core.config import load_config

    if backend not in RUNNER_FACTORIES:
        raise ConfigError(f"unknown backend {backend!r}: use one of {', '.join(RUNNER_FACTORIES)}")
    dev = choose_device(device)
    if ckpt_path is None:
        raise CheckpointError("no PARE checkpoint given: pass --ckpt pare_checkpoint.ckpt")
    ckpt = Path(ckpt_path).expanduser()
    if not ckpt.is_file():
        raise CheckpointError(
            f"checkpoint file {ckpt} not found; the PARE checkpoints (pare_checkpoint.ckpt, "
            "pare_w_3dpw_checkpoint.ckpt) come with PARE's data zip (`pare-studio setup`)"
        )
    if smpl_dir is None:
        raise SmplModelError(
            "no SMPL folder given: pass --smpl-dir, the folder laid out as PARE's data/ "
            "(body_models/smpl/SMPL_NEUTRAL.pkl, J_regressor_extra.npy, ...)"
        )
    cfg = load_config(None if cfg_path is None else Path(cfg_path).expanduser())
    if cfg.num_joints != SMPL_NUM_JOINTS:
        raise ConfigError(
            f"PARE.NUM_JOINTS is {cfg.num_joints} in {cfg.source or 'the config'}, but SMPL "
            f"has {SMPL_NUM_JOINTS} joints: the predictor can only turn a {SMPL_NUM_JOINTS}-joint "
            "head into a mesh (the released PARE models use 24)"
        )
    files = SmplFiles.from_dir(smpl_dir)
    t0 = time.perf_counter()
    smpl = SmplBody.from_files(files)
    t1 = time.perf_counter()
    runner = RUNNER_FACTORIES[backend](cfg, ckpt, dev)
    t2 = time.perf_counter()
    log.debug(
        "predictor: SMPL %.2fs, network %.2fs, device %s, backend %s",
        t1 - t0,
        t2 - t1,
        dev,
        runner.name,
    )
    return ParePredictor(
        runner,
        smpl,
        device=dev,
        focal_length=getattr(cfg, "focal_length", FOCAL_LENGTH),
        img_res=getattr(cfg, "img_res", IMG_RES),
    )
