"""``pare-studio occlusion``: PARE's occlusion sensitivity analysis (spec §7).

    pare-studio occlusion --cfg pare_config.yaml --ckpt pare_checkpoint.ckpt \\
        --data-dir data [--dataset 3dpw-all] [--occ_size 40 --stride 40 --pixel 0 --save_freq 100]
    pare-studio occlusion --ckpt CKPT --smpl-dir data --image person.jpg [--box cx,cy,w,h]
    pare-studio occlusion --ckpt CKPT --smpl-dir data --video clip.mp4 --frame 120 --box cx,cy,w,h

Dataset mode (the reference's ``scripts/occlusion_analysis.py``): every ``--save_freq``-th sample
of the **first** dataset of ``--dataset`` (default ``3dpw-all_3doh`` as the reference, i.e.
3dpw-all), evaluation crop (§6.3), ground truth as the evaluation (§6.4); per occluder position
the MPJPE and PA-MPJPE of the 14 joints vs ground truth, and the displacement from the
unoccluded prediction. User mode (``--image`` / ``--video``): the demo crop of the box (the whole
image when no box is given), displacement only.

Output folder ``--out`` (default ``<LOG_DIR>/occlusion_test`` as the reference):
``occlusion_heatmaps.npz`` (see docs/occlusion.md), and unless ``--no-figures`` per sample
``<name>_<kind>_hm.png`` (2 x 7 per-joint heatmaps) and ``<name>_sweep.gif`` (the patch sweeping
over the crop with the predicted mesh; ``--no-gif`` skips it). Everything is made in a hidden
staging folder inside ``--out`` and moved into place at the end: Ctrl+C (exit 130) or an error
leaves nothing behind.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pare_studio.cli._common import (
    add_model_args,
    check_out_dir,
    ctrl_c_cancels,
    flag,
    non_negative_int,
    positive_int,
)
from pare_studio.cli._eval_models import gendered_bodies, resolve_checkpoint, resolve_smpl_dir
from pare_studio.errors import InputArrayError, PareStudioError, RenderError, VideoReadError

if TYPE_CHECKING:
    import numpy as np

    from pare_studio.analysis.occlusion import SweepResult
    from pare_studio.analysis.occlusion_errors import GroundTruth

log = logging.getLogger(__name__)

#: Name of the heatmap file in the output folder.
NPZ_NAME = "occlusion_heatmaps.npz"
#: The reference's default --dataset (only the first dataset is analysed).
DEFAULT_DATASET = "3dpw-all_3doh"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "occlusion",
        help="occlusion sensitivity: heatmaps of PARE's error / displacement per occluder position",
        description="Slide a square occluder over the 224x224 crop and record, per position and "
        "joint, PARE's MPJPE / PA-MPJPE vs ground truth (dataset mode, as the reference's "
        "occlusion_analysis.py) and the displacement from the unoccluded prediction (all modes). "
        "Without --image / --video the dataset mode runs.",
    )
    add_model_args(p)
    src = p.add_argument_group("input (one of: dataset, --image, --video)")
    src.add_argument(
        "--dataset",
        default=DEFAULT_DATASET,
        help="evaluation dataset(s) joined by _ or , ; only the first is analysed, as the "
        f"reference (default {DEFAULT_DATASET} -> 3dpw-all)",
    )
    src.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="the reference's data folder (dataset_extras/, dataset_folders/); also the default "
        "--smpl-dir when it holds body_models/smpl/ (default ./data)",
    )
    src.add_argument(
        "--image",
        type=Path,
        nargs="+",
        default=None,
        metavar="FILE",
        help="image file(s): a person crop, or an image cropped to --box with the demo crop",
    )
    src.add_argument("--video", type=Path, default=None, help="video file (with --frame, --box)")
    src.add_argument(
        "--frame", type=non_negative_int, default=0, help="0-based frame of --video (default 0)"
    )
    src.add_argument(
        "--box",
        action="append",
        default=None,
        metavar="CX,CY,W,H",
        help="person box in pixels (centre, width, height), cropped as the demo; once for all "
        "images or once per image (default: the whole image, padded to a square)",
    )
    occ = p.add_argument_group("occluder")
    occ.add_argument(
        *flag("--occ_size"),
        dest="occ_size",
        type=positive_int,
        default=40,
        help="occluder side in crop pixels (default 40)",
    )
    occ.add_argument(
        "--stride", type=positive_int, default=40, help="occluder step in crop pixels (default 40)"
    )
    occ.add_argument(
        "--pixel",
        type=float,
        default=None,
        help="occluder value in normalised space, as the reference (0 = the ImageNet mean colour); "
        "overrides --fill",
    )
    occ.add_argument(
        "--fill",
        choices=["mean", "black", "noise"],
        default="mean",
        help="occluder fill: mean colour (the reference's --pixel 0; default), black, or "
        "uniform noise",
    )
    occ.add_argument(
        "--seed", type=int, default=0, help="random seed of the noise fill (default 0)"
    )
    run_g = p.add_argument_group("run")
    run_g.add_argument(
        *flag("--save_freq"),
        dest="save_freq",
        type=positive_int,
        default=100,
        help="dataset mode: analyse every N-th sample (default 100, as the reference)",
    )
    run_g.add_argument("--limit", type=positive_int, default=None, help="analyse at most N samples")
    run_g.add_argument(
        *flag("--batch_size"),
        dest="batch_size",
        type=positive_int,
        default=16,
        help="crops per network call (default 16)",
    )
    run_g.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="CPU threads for torch (default: torch's choice)",
    )
    run_g.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default <LOG_DIR>/occlusion_test, as the reference)",
    )
    run_g.add_argument("--no-figures", action="store_true", help="write the npz only")
    run_g.add_argument("--no-gif", action="store_true", help="heatmap figures but no sweep gif")
    run_g.add_argument(
        "--opts",
        nargs="*",
        default=[],
        metavar="KEY VALUE",
        help="config overrides as the reference, e.g. --opts DATASET.USE_GENDER True",
    )
    p.set_defaults(func=run)


# ------------------------------------------------------------------------------------ inputs


@dataclass
class Sample:
    """One crop to analyse.

    name : file prefix of its figures. imgname : where it came from. index : dataset index,
    image position or video frame. box : (cx, cy, w, h) pixels. crop : (3, 224, 224) float32.
    display : (480, 480, 3) uint8 RGB, the same crop at display resolution (figures only).
    gt : ground truth (dataset mode).
    """

    name: str
    imgname: str
    index: int
    box: tuple[float, float, float, float]
    crop: np.ndarray | None = None
    display: np.ndarray | None = None
    gt: GroundTruth | None = None


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"cx,cy,w,h"`` -> four floats with w, h > 0 (:class:`InputArrayError` otherwise)."""
    parts = [t.strip() for t in str(text).split(",")]
    try:
        vals = tuple(float(t) for t in parts)
    except ValueError:
        vals = ()
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise InputArrayError(f"--box {text!r}: expected four numbers cx,cy,w,h (pixels)")
    if vals[2] <= 0 or vals[3] <= 0:
        raise InputArrayError(f"--box {text!r}: width and height must be > 0")
    return vals  # type: ignore[return-value]


def whole_image_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The demo's whole-frame box: centred square of side max(W, H)."""
    side = float(max(width, height))
    return (width / 2.0, height / 2.0, side, side)


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; :class:`VideoReadError` naming it otherwise."""
    import cv2
    import numpy as np

    if not path.is_file():
        raise VideoReadError(f"image {path} not found")
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise VideoReadError(f"image {path} could not be decoded (damaged or not an image)")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def demo_display(image: np.ndarray, box: tuple[float, float, float, float], res: int) -> np.ndarray:
    """The demo crop of ``box`` at ``res`` x ``res`` (uint8 RGB), for figures."""
    import cv2

    from pare_studio.pipeline.crops import crop_transform

    trans = crop_transform(*box, scale=1.0, size=res)
    return cv2.warpAffine(
        image, trans, (res, res), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def _unique_name(name: str, used: set[str]) -> str:
    out, k = name, 1
    while out in used:
        k += 1
        out = f"{name}_{k}"
    used.add(out)
    return out


def user_samples(args: argparse.Namespace, figures: bool) -> list[Sample]:
    """Samples of ``--image`` / ``--video`` (crops made now, so bad input fails early)."""
    from pare_studio.pipeline.crops import crop_image
    from pare_studio.render.occlusion_figures import DISPLAY_RES

    boxes = [parse_box(b) for b in (args.box or [])]
    frames: list[tuple[str, str, int, np.ndarray]] = []
    if args.video is not None:
        from pare_studio.pipeline.video import open_source

        if args.frame < 0:
            raise InputArrayError(f"--frame must be >= 0, got {args.frame}")
        with open_source(args.video) as src:
            if args.frame >= len(src):
                raise InputArrayError(
                    f"--frame {args.frame} is past the end of {args.video} ({len(src)} frames)"
                )
            frame = src.read(args.frame)
        frames.append(
            (f"{args.video.stem}_frame{args.frame:06d}", str(args.video), args.frame, frame)
        )
    else:
        for k, path in enumerate(args.image):
            frames.append((path.stem, str(path), k, read_image(path)))
    if len(boxes) not in (0, 1, len(frames)):
        raise InputArrayError(
            f"{len(boxes)} --box values for {len(frames)} image(s): give one box for all, "
            "or one per image"
        )
    samples: list[Sample] = []
    used: set[str] = set()
    for k, (name, imgname, index, image) in enumerate(frames):
        h, w = image.shape[:2]
        box = (
            boxes[k] if len(boxes) == len(frames) else boxes[0] if boxes else whole_image_box(w, h)
        )
        samples.append(
            Sample(
                name=_unique_name(name, used),
                imgname=imgname,
                index=index,
                box=box,
                crop=crop_image(image, box),
                display=demo_display(image, box, DISPLAY_RES) if figures else None,
            )
        )
    if args.limit is not None:
        samples = samples[: args.limit]
    return samples


# ------------------------------------------------------------------------------------ output


class Staging:
    """A hidden folder inside ``out`` where every file is made; :meth:`commit` moves them into
    ``out``, :meth:`discard` removes it (and ``out`` itself and any parent this run created)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.created: list[Path] = []
        probe = out
        while not probe.exists():
            self.created.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        try:
            out.mkdir(parents=True, exist_ok=True)
            self.dir = Path(tempfile.mkdtemp(prefix=".occlusion-", dir=out))
        except OSError as exc:
            self._remove_created()
            from pare_studio.errors import OutputError

            raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None

    def path(self, name: str) -> Path:
        return self.dir / name

    def commit(self) -> list[Path]:
        import os

        written = []
        for f in sorted(self.dir.iterdir()):
            dest = self.out / f.name
            os.replace(f, dest)
            written.append(dest)
        self.dir.rmdir()
        return written

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in self.created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break


def _dataset_samples(args: argparse.Namespace, data_dir: Path) -> tuple[Any, list[int], str]:
    """(dataset, selected indices, name): every ``--save_freq``-th sample, at most ``--limit``."""
    import numpy as np

    from pare_studio.analysis.datasets import load_dataset, parse_dataset_names

    names = parse_dataset_names(str(args.dataset).replace(",", "_"), sep="_")
    if len(names) > 1:
        log.info("--dataset %s: analysing the first dataset only (%s)", args.dataset, names[0])
    ds = load_dataset(names[0], data_dir)
    idx = np.arange(0, len(ds), args.save_freq)
    if args.limit is not None:
        idx = idx[: args.limit]
    ds.select(idx).check_images()
    return ds, [int(i) for i in idx], names[0]


def run(args: argparse.Namespace) -> int:

    from pare_studio.analysis.occlusion import check_fill, grid_shape
    from pare_studio.cancel import CancelToken
    from pare_studio.core.config import load_config

    if args.image is not None and args.video is not None:
        raise InputArrayError("give either --image or --video, not both")
    user_mode = args.image is not None or args.video is not None
    if args.box and not user_mode:
        raise InputArrayError("--box goes with --image or --video")
    fill = check_fill(args.pixel if args.pixel is not None else args.fill)
    grid = grid_shape(args.occ_size, args.stride)
    figures = not args.no_figures
    want_gif = figures and not args.no_gif

    cfg = load_config(args.cfg, overrides=list(args.opts or []))
    ckpt = resolve_checkpoint(args.ckpt, cfg)
    data_dir: Path = args.data_dir
    smpl_dir = resolve_smpl_dir(args.smpl_dir, data_dir)
    log_dir = cfg.get("LOG_DIR", "logs/experiments") or "logs/experiments"
    out_dir: Path = args.out if args.out is not None else Path(str(log_dir)) / "occlusion_test"
    check_out_dir(out_dir)

    dataset = None
    ds_name = ""
    if user_mode:
        samples = user_samples(args, figures)
        indices: list[int] = [s.index for s in samples]
    else:
        dataset, indices, ds_name = _dataset_samples(args, data_dir)
        samples = [
            Sample(
                name=f"result_00_{i}",
                imgname=str(dataset.imgname[i]),
                index=i,
                box=(
                    float(dataset.center[i][0]),
                    float(dataset.center[i][1]),
                    200.0 * float(dataset.scale[i]),
                    200.0 * float(dataset.scale[i]),
                ),
            )
            for i in indices
        ]
    if not samples:
        raise InputArrayError("nothing to analyse (no samples selected)")

    import torch
    from tqdm import tqdm

    from pare_studio.core.predictor import load_predictor
    from pare_studio.core.smpl_io import SmplFiles, load_j_regressor_h36m

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    require = ("model", "j_regressor_extra") + (() if user_mode else ("j_regressor_h36m",))
    files = SmplFiles.from_dir(smpl_dir, require=require)
    j_reg = None
    if files.j_regressor_h36m.is_file():
        j_reg = load_j_regressor_h36m(files.j_regressor_h36m)
    else:
        print(
            f"pare-studio occlusion: note: {files.j_regressor_h36m} not found; the displacement "
            "uses the 14 LSP joints of PARE's 49 joints instead of the evaluation joints",
            file=sys.stderr,
        )

    predictor = load_predictor(args.cfg, ckpt, smpl_dir, device=args.device, backend=args.backend)
    staging: Staging | None = None
    try:
        gendered = None
        if dataset is not None and cfg.use_gender:
            from pare_studio.analysis.datasets import GENDERED_DATASETS

            if dataset.name in GENDERED_DATASETS:
                gendered = gendered_bodies(smpl_dir, predictor.device, "occlusion")
        cancel = CancelToken()
        staging = Staging(out_dir)
        per_sample = grid * grid + 1
        renderer_state: dict[str, Any] = {"renderer": None, "failed": not want_gif}
        results: list[SweepResult] = []
        with ctrl_c_cancels(cancel):
            bar = tqdm(
                total=len(samples) * per_sample,
                desc="occlusion",
                unit="crop",
                file=sys.stderr,
                disable=None,
                dynamic_ncols=True,
            )
            try:
                for k, sample in enumerate(samples):
                    cancel.check()
                    if dataset is not None:
                        _load_dataset_sample(sample, dataset, predictor, gendered, j_reg, figures)
                    result = _run_sweep(
                        predictor, sample, args, fill, j_reg, cancel, want_gif, bar, k * per_sample
                    )
                    results.append(_slim(result))
                    if figures:
                        cancel.check()
                        _write_figures(staging, sample, result, args, predictor, renderer_state)
                    sample.crop = sample.display = None
            finally:
                bar.close()
                if renderer_state["renderer"] is not None:
                    renderer_state["renderer"].close()
            cancel.check()
            _write_npz(staging.path(NPZ_NAME), samples, results, indices, args, fill, ds_name)
            cancel.check()
            written = staging.commit()
            staging = None
    finally:
        if staging is not None:
            staging.discard()
        predictor.close()

    _print_summary(results, samples)
    print(f"results written to {out_dir}: {', '.join(p.name for p in written)}")
    return 0


def _load_dataset_sample(
    sample: Sample, dataset: Any, predictor: Any, gendered: Any, j_reg: Any, figures: bool
) -> None:
    import numpy as np

    from pare_studio.analysis.eval_crop import eval_crop
    from pare_studio.analysis.evaluate import ground_truth_vertices
    from pare_studio.analysis.occlusion_errors import GroundTruth
    from pare_studio.render.occlusion_figures import DISPLAY_RES, denormalize

    i = sample.index
    path = dataset.image_path(i)
    sample.crop = eval_crop(path, dataset.center[i], float(dataset.scale[i]))
    if figures:
        sample.display = denormalize(
            eval_crop(path, dataset.center[i], float(dataset.scale[i]), res=DISPLAY_RES)
        )
    gt_verts = ground_truth_vertices(dataset, np.array([i]), predictor.smpl, gendered)
    sample.gt = GroundTruth.from_vertices(gt_verts[0], j_reg)


def _run_sweep(
    predictor: Any,
    sample: Sample,
    args: argparse.Namespace,
    fill: Any,
    j_reg: Any,
    cancel: Any,
    keep_outputs: bool,
    bar: Any,
    offset: int,
) -> SweepResult:
    import numpy as np

    from pare_studio.analysis.occlusion import iter_sweep

    gen = iter_sweep(
        predictor,
        sample.crop,
        size=args.occ_size,
        stride=args.stride,
        fill=fill,
        batch_size=args.batch_size,
        cancel=cancel,
        gt=sample.gt,
        j_regressor_h36m=None if sample.gt is not None else j_reg,
        rng=np.random.default_rng([args.seed, sample.index]),
        keep_outputs=keep_outputs,
    )
    try:
        while True:
            try:
                prog = next(gen)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            bar.update(offset + prog.done - bar.n)
    finally:
        gen.close()


def _slim(result: SweepResult) -> SweepResult:
    """The result without per-position outputs (kept only until the figures are drawn)."""
    from dataclasses import replace

    return replace(result, outputs=None)


def _write_figures(
    staging: Staging,
    sample: Sample,
    result: SweepResult,
    args: argparse.Namespace,
    predictor: Any,
    renderer_state: dict[str, Any],
) -> None:
    import numpy as np

    from pare_studio.render.occlusion_figures import (
        heatmap_title,
        save_gif,
        save_heatmap_figure,
        sweep_frames,
    )

    assert sample.display is not None
    for kind, maps in result.heatmaps().items():
        save_heatmap_figure(
            staging.path(f"{sample.name}_{kind}_hm.png"),
            sample.display,
            maps,
            heatmap_title(kind, result),
        )
    if renderer_state["failed"]:
        return
    if renderer_state["renderer"] is None:
        from pare_studio.render.mesh_renderer import MeshRenderer

        side = sample.display.shape[0]
        try:
            renderer_state["renderer"] = MeshRenderer(side, side, predictor.faces)
        except (RenderError, PareStudioError) as exc:
            renderer_state["failed"] = True
            print(f"pare-studio occlusion: warning: no sweep gif ({exc})", file=sys.stderr)
            return
    frames = sweep_frames(
        renderer_state["renderer"],
        sample.display,
        result,
        rng=np.random.default_rng([args.seed, sample.index, 1]),
    )
    save_gif(staging.path(f"{sample.name}_sweep.gif"), frames)


def _write_npz(
    path: Path,
    samples: list[Sample],
    results: list[SweepResult],
    indices: list[int],
    args: argparse.Namespace,
    fill: Any,
    dataset: str,
) -> None:
    import numpy as np

    from pare_studio.atomic import write_npz_atomic
    from pare_studio.core.constants import J14_NAMES

    first = results[0]
    arrays: dict[str, np.ndarray] = {
        "displacement_heatmap": np.stack([r.displacement for r in results]),
        "displacement49_heatmap": np.stack([r.displacement49 for r in results]),
        "windows": first.windows,
        "imgname": np.array([s.imgname for s in samples], dtype=str),
        "sample_names": np.array([s.name for s in samples], dtype=str),
        "sample_index": np.array(indices, dtype=np.int64),
        "boxes": np.array([s.box for s in samples], dtype=np.float64).reshape(-1, 4),
        "baseline_joints14": np.stack([r.baseline.joints.joints14[0] for r in results]),
        "joint_names": np.array(J14_NAMES, dtype=str),
        "joint_source": np.array(first.baseline.joint_source),
        "occ_size": np.array(args.occ_size, dtype=np.int64),
        "stride": np.array(args.stride, dtype=np.int64),
        "fill": np.array(fill if isinstance(fill, str) else "pixel"),
        "pixel": np.array(fill if not isinstance(fill, str) else np.nan, dtype=np.float64),
        "dataset": np.array(dataset),
    }
    if first.mpjpe is not None:
        arrays["mpjpe_heatmap"] = np.stack([r.mpjpe for r in results])
        arrays["pampjpe_heatmap"] = np.stack([r.pampjpe for r in results])
        arrays["baseline_mpjpe"] = np.stack([r.baseline.mpjpe for r in results])
        arrays["baseline_pampjpe"] = np.stack([r.baseline.pampjpe for r in results])
    write_npz_atomic(path, arrays)


def _print_summary(results: list[SweepResult], samples: list[Sample]) -> None:
    import numpy as np

    for sample, r in zip(samples, results, strict=True):
        d = r.mean_heatmap("displacement")
        rr, cc = (int(v) for v in np.unravel_index(int(d.argmax()), d.shape))
        line = (
            f"{sample.name}: mean displacement {d.mean():.1f} mm, "
            f"most sensitive position ({rr},{cc}) {d.max():.1f} mm"
        )
        if r.baseline.mpjpe is not None and r.mpjpe is not None:
            line += (
                f" | unoccluded MPJPE {r.baseline.mpjpe.mean():.1f} / PA-MPJPE "
                f"{r.baseline.pampjpe.mean():.1f} mm, occluded worst MPJPE "
                f"{r.mean_heatmap('mpjpe').max():.1f} mm"
            )
        print(line)
