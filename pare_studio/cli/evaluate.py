"""``pare-studio eval``: the paper's evaluation on 3DPW and 3DOH (spec §6).

    pare-studio eval --cfg data/pare/checkpoints/pare_config.yaml \\
        --opts DATASET.VAL_DS 3doh_3dpw-all                 # as the reference's scripts/eval.py
    pare-studio eval --cfg pare_config.yaml --ckpt pare_checkpoint.ckpt \\
        --data-dir data --datasets 3doh,3dpw-all --out results/

The checkpoint defaults to ``TRAINING.PRETRAINED_LIT`` of the yaml (as the reference), the
datasets to ``DATASET.VAL_DS`` (split on ``_``), the SMPL folder to ``--data-dir`` (or the asset
store when ``--data-dir`` has no SMPL model). Results are
printed as a table and written to ``--out`` (default
``<LOG_DIR>/evaluation_mesh_[gender_]<datasets>``): ``eval_results.json``, ``eval_results.csv``
and ``errors_<dataset>.npz``. Ctrl+C cancels after the current batch (exit 130, nothing written).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from pare_studio.cli._common import add_model_args, check_out_dir, ctrl_c_cancels, positive_int
from pare_studio.cli._eval_models import gendered_bodies, resolve_checkpoint, resolve_smpl_dir
from pare_studio.errors import ConfigError

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a PARE checkpoint on 3DPW / 3DOH (MPJPE, PA-MPJPE, V2V) as the paper",
        description="Evaluate PARE on the reference's 3DPW ('3dpw-all', reported on the 24 test "
        "sequences as 3DPW-Test) and 3DOH ('3doh') test files with the paper's protocol. "
        "Accepts the reference's command: --cfg CFG --opts DATASET.VAL_DS 3doh_3dpw-all.",
    )
    add_model_args(p)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="the reference's data folder: dataset_extras/*.npz and dataset_folders/{3dpw,3doh}/ "
        "(default ./data); also the default --smpl-dir when it holds body_models/smpl/",
    )
    p.add_argument(
        "--datasets",
        default=None,
        help="comma-separated datasets: 3dpw-all, 3doh (default: DATASET.VAL_DS of the config)",
    )
    p.add_argument(
        "--batch-size", type=positive_int, default=16, help="crops per network call (default 16)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default <LOG_DIR>/evaluation_mesh_[gender_]<datasets>)",
    )
    p.add_argument(
        "--limit",
        type=positive_int,
        default=None,
        help="evaluate only the first N samples of each dataset",
    )
    p.add_argument(
        "--save-vertices",
        action="store_true",
        help="also store the predicted meshes in errors_<dataset>.npz (large: 83 kB per sample)",
    )
    p.add_argument(
        "--per-sequence",
        action="store_true",
        help="print per-sequence rows too (always in the files)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="threads reading and cropping images (default 2)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="CPU threads for torch (default: torch's choice)",
    )
    p.add_argument(
        "--opts",
        nargs="*",
        default=[],
        metavar="KEY VALUE",
        help="config overrides as the reference, e.g. --opts DATASET.VAL_DS 3doh_3dpw-all "
        "DATASET.USE_GENDER True",
    )
    p.set_defaults(func=run)


def _val_ds(cfg: Any) -> str:
    value = cfg.get("DATASET.VAL_DS", "3dpw_3doh")
    if isinstance(value, list):
        distinct = sorted({str(v) for v in value})
        if len(distinct) != 1:
            raise ConfigError(
                f"DATASET.VAL_DS is a grid-search list {value}; pick one with "
                "--datasets or --opts DATASET.VAL_DS ..."
            )
        value = distinct[0]
    return str(value)


def default_out_dir(cfg: Any, datasets: list[str], use_gender: bool) -> Path:
    """``<LOG_DIR>/evaluation_mesh_[gender_]<datasets joined by _>`` as the reference."""
    log_dir = cfg.get("LOG_DIR", "logs/experiments") or "logs/experiments"
    gender = "gender_" if use_gender else ""
    return Path(str(log_dir)) / f"evaluation_mesh_{gender}{'_'.join(datasets)}"


def run(args: argparse.Namespace) -> int:
    from pare_studio import __version__
    from pare_studio.analysis.datasets import GENDERED_DATASETS, load_dataset, parse_dataset_names
    from pare_studio.cancel import CancelToken
    from pare_studio.core.config import load_config

    cfg = load_config(args.cfg, overrides=list(args.opts or []))
    if args.datasets is not None:
        names = parse_dataset_names(args.datasets, sep=",")
    else:
        names = parse_dataset_names(_val_ds(cfg), sep="_")
    ckpt = resolve_checkpoint(args.ckpt, cfg)
    data_dir: Path = args.data_dir
    smpl_dir = resolve_smpl_dir(args.smpl_dir, data_dir)
    out_dir: Path = (
        args.out if args.out is not None else default_out_dir(cfg, names, cfg.use_gender)
    )
    check_out_dir(out_dir)

    datasets = []
    for name in names:
        ds = load_dataset(name, data_dir).head(args.limit)
        ds.check_images()
        datasets.append(ds)

    import torch
    from tqdm import tqdm

    from pare_studio.analysis.evaluate import STAGE_PREFIX, iter_evaluate
    from pare_studio.core.predictor import load_predictor
    from pare_studio.core.smpl_io import SmplFiles, load_j_regressor_h36m

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    files = SmplFiles.from_dir(smpl_dir, require=("model", "j_regressor_extra", "j_regressor_h36m"))
    j_reg = load_j_regressor_h36m(files.j_regressor_h36m)
    predictor = load_predictor(args.cfg, ckpt, smpl_dir, device=args.device, backend=args.backend)
    try:
        gendered = None
        if cfg.use_gender and any(ds.name in GENDERED_DATASETS for ds in datasets):
            gendered = gendered_bodies(smpl_dir, predictor.device, "eval")
        meta = {
            "pare_studio_version": __version__,
            "cfg": None if args.cfg is None else str(args.cfg),
            "ckpt": str(ckpt),
            "smpl_dir": str(smpl_dir),
            "data_dir": str(data_dir),
            "datasets": names,
            "use_gender": bool(cfg.use_gender),
            "gendered_models_used": gendered is not None,
            "limit": args.limit,
            "batch_size": args.batch_size,
            "device": str(predictor.device),
            "backend": predictor.backend,
            "image_decoder": "opencv",
        }
        cancel = CancelToken()
        bar = None
        with ctrl_c_cancels(cancel):
            gen = iter_evaluate(
                predictor,
                datasets,
                smpl_neutral=predictor.smpl,
                smpl_gendered=gendered,
                j_regressor_h36m=j_reg,
                batch_size=args.batch_size,
                cancel=cancel,
                keep_vertices=args.save_vertices,
                workers=args.workers,
                meta=meta,
            )
            try:
                while True:
                    try:
                        prog = next(gen)
                    except StopIteration as stop:
                        report = stop.value
                        break
                    if prog.done == 0:
                        if bar is not None:
                            bar.close()
                        bar = tqdm(
                            total=prog.total,
                            desc=prog.stage.removeprefix(STAGE_PREFIX),
                            unit="crop",
                            file=sys.stderr,
                            disable=None,
                            dynamic_ncols=True,
                        )
                    elif bar is not None:
                        bar.update(prog.done - bar.n)
            finally:
                if bar is not None:
                    bar.close()
                gen.close()
            cancel.check()
            written = report.write(out_dir, save_vertices=args.save_vertices)
    finally:
        predictor.close()

    print(report.table(sequences=args.per_sequence))
    print(f"results written to {out_dir}: {', '.join(p.name for p in written)}")
    return 0
