"""``pare-studio predict``: PARE on a file of crops, every output under the reference's key names.

    pare-studio predict --cfg pare_config.yaml --ckpt pare_checkpoint.ckpt --smpl-dir data \\
        --crops crops.npz --out out.npz [--batch-size 16] [--device cpu] [--backend torch]

``crops.npz`` holds ``images`` (N, 3, 224, 224) float32, RGB in [0, 1] normalised with the
ImageNet mean / std. ``out.npz`` gets ``pred_pose``, ``pred_shape``, ``pred_cam``,
``pred_cam_t``, ``smpl_vertices``, ``smpl_joints3d``, ``smpl_joints2d``, ``pred_segm_mask``
(float32; see :class:`pare_studio.results.PareOutput`).
"""

from __future__ import annotations

import argparse
import sys
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from pare_studio.atomic import write_npz_atomic
from pare_studio.cli._common import add_model_args
from pare_studio.errors import InputArrayError, OutputError

if TYPE_CHECKING:
    import numpy as np


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="run PARE on a .npz of normalised 224x224 crops and write all outputs to a .npz",
        description="Run PARE on crops (array 'images', (N, 3, 224, 224) float32, ImageNet-"
        "normalised) and write pred_pose, pred_shape, pred_cam, pred_cam_t, smpl_vertices, "
        "smpl_joints3d, smpl_joints2d and pred_segm_mask to OUT.npz.",
    )
    add_model_args(p)
    p.add_argument("--crops", type=Path, required=True, help="input .npz with array 'images'")
    p.add_argument("--out", type=Path, required=True, help="output .npz (written atomically)")
    p.add_argument("--batch-size", type=int, default=16, help="crops per network call (default 16)")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )
    p.set_defaults(func=run)


def read_crops(path: Path) -> np.ndarray:
    """``images`` of a crops ``.npz`` (or plain ``.npy``), checked to be (N, 3, 224, 224) floats."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise InputArrayError(f"crops file {path} not found")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):  # a plain .npy holding the crops
            images = data
        else:
            with data:
                if "images" not in data.files:
                    raise InputArrayError(
                        f"crops file {path} has no array 'images' "
                        f"(it has: {', '.join(data.files) or 'nothing'})"
                    )
                images = data["images"]
    except InputArrayError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputArrayError(f"crops file {path} is not a readable numpy .npz ({exc})") from None
    if images.ndim != 4 or images.shape[1:] != (3, 224, 224):
        raise InputArrayError(
            f"crops file {path}: 'images' has shape {images.shape}, expected (N, 3, 224, 224)"
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise InputArrayError(
            f"crops file {path}: 'images' has dtype {images.dtype}; expected float32 crops "
            "normalised with the ImageNet mean / std"
        )
    return images


def run(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise InputArrayError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.threads is not None and args.threads < 1:
        raise InputArrayError(f"--threads must be >= 1, got {args.threads}")
    out_dir = args.out.parent if str(args.out.parent) else Path(".")
    if not out_dir.is_dir():
        raise OutputError(f"output folder {out_dir} does not exist")
    images = read_crops(args.crops)

    import torch

    from pare_studio.core.predictor import load_predictor

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    predictor = load_predictor(
        args.cfg, args.ckpt, args.smpl_dir, device=args.device, backend=args.backend
    )
    t1 = time.perf_counter()
    try:
        out = predictor.predict(images, batch_size=args.batch_size)
        t2 = time.perf_counter()
        write_npz_atomic(args.out, out.to_reference_dict(), create_folder=False)
    finally:
        predictor.close()
    n = len(out)
    per_crop = (t2 - t1) * 1000.0 / max(n, 1)
    print(
        f"predict: {n} crop(s) -> {args.out} | {predictor.device.type}, "
        f"backend {predictor.backend}, "
        f"batch {args.batch_size}, threads {torch.get_num_threads()} | "
        f"load {t1 - t0:.2f} s, {per_crop:.1f} ms/crop",
        file=sys.stdout,
    )
    return 0
