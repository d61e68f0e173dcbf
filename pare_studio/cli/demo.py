"""``pare-studio demo``: a video or image folder → ``pare_output.pkl`` and an overlay video.

    pare-studio demo --vid_file clip.mp4 [--boxes boxes.txt | --detector yolo|whole]
        [--output_folder logs/demo/demo_results] [--exp NAME] [--smooth] [--no_render] ...

Outputs go to ``<output_folder>/<video name without extension>_<exp>/`` (the reference's naming;
``clip_`` with the default empty ``--exp``):

1. ``pare_output.pkl`` — written first, atomically (temp file + rename), in the reference's
   layout (spec §5.6);
2. ``<name>_<exp>_result.mp4`` — the overlay video (H.264), unless ``--no_render``. A render
   failure is reported and exits non-zero, and the pkl stays.

Ctrl+C cancels after the current batch and writes nothing partial (a second Ctrl+C aborts at once).
The reference's underscore flags are kept; each also accepts dashes (``--vid-file``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pare_studio.cancel import CancelToken
from pare_studio.cli._common import (
    add_model_args,
    ctrl_c_cancels,
    flag,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from pare_studio.errors import Cancelled, OutputError, PareStudioError, RenderError
from pare_studio.results import Progress

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_FOLDER = Path("logs/demo/demo_results")
PKL_NAME = "pare_output.pkl"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run PARE on a video or image folder: pare_output.pkl and an overlay video",
        description="Detect and track people in a video (or a folder of frames), run PARE on "
        "every person in every frame, write pare_output.pkl in the reference's layout and "
        "render the meshes over the video.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(*flag("--vid_file"), dest="vid_file", type=Path, help="input video file")
    src.add_argument(
        *flag("--image_folder"),
        dest="image_folder",
        type=Path,
        help="input folder of frames (png/jpg, natural sort), treated as a video",
    )
    p.add_argument(
        *flag("--output_folder"),
        dest="output_folder",
        type=Path,
        default=DEFAULT_OUTPUT_FOLDER,
        help=f"where the <video name>_<exp> result folder goes (default {DEFAULT_OUTPUT_FOLDER})",
    )
    p.add_argument("--exp", default="", help="suffix of the result folder name (default '')")
    p.add_argument(
        "--mode",
        choices=["video", "folder"],
        default="video",
        help="video: frames of one video, tracked (default); folder: --image_folder images each "
        "on their own, no tracking, one pare_results/<image>.pkl per image (the reference's "
        "folder mode)",
    )
    add_model_args(p)
    det = p.add_argument_group("detection and tracking")
    det.add_argument(
        "--detector",
        choices=["yolo", "boxes", "whole"],
        default=None,
        help="yolo: YOLOv3 + SORT as the reference (default); boxes: a MOTChallenge boxes file "
        "(--boxes); whole: every frame is one person's crop",
    )
    det.add_argument(
        "--boxes",
        type=Path,
        default=None,
        help="MOTChallenge boxes file (frame,id,left,top,width,height,conf,...; 1-based frames; "
        "id -1 = untracked, tracked with SORT); implies --detector boxes",
    )
    det.add_argument(
        *flag("--yolo_weights"),
        dest="yolo_weights",
        type=Path,
        default=None,
        help="yolov3.weights (default: the asset store, ./data, ~/.torch/models)",
    )
    det.add_argument(
        *flag("--tracker_batch_size"),
        dest="tracker_batch_size",
        type=positive_int,
        default=12,
        help="frames per detector batch (default 12)",
    )
    det.add_argument(
        *flag("--min_frames"),
        dest="min_frames",
        type=non_negative_int,
        default=0,
        help="drop tracks shorter than this many frames (default 0: keep all, as the reference)",
    )
    inf = p.add_argument_group("inference and smoothing")
    inf.add_argument(
        *flag("--batch_size"),
        dest="batch_size",
        type=positive_int,
        default=16,
        help="crops per PARE batch (default 16)",
    )
    inf.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    inf.add_argument("--smooth", action="store_true", help="One-Euro smoothing of the pose")
    inf.add_argument(
        *flag("--min_cutoff"),
        dest="min_cutoff",
        type=non_negative_float,
        default=0.004,
        help="One-Euro minimum cutoff (default 0.004)",
    )
    inf.add_argument(
        "--beta",
        type=non_negative_float,
        default=1.0,
        help="One-Euro speed coefficient (default 1.0)",
    )
    inf.add_argument(
        *flag("--smoothing_method"),
        dest="smoothing_method",
        choices=["reference", "rotation"],
        default="reference",
        help="reference: per rotation-matrix element, as the reference (default); rotation: on "
        "the rotation group (exact rotations)",
    )
    ren = p.add_argument_group("overlay video")
    ren.add_argument(
        *flag("--no_render"), dest="no_render", action="store_true", help="skip the video"
    )
    ren.add_argument("--wireframe", action="store_true", help="draw the mesh as a wireframe")
    ren.add_argument("--sideview", action="store_true", help="add a side view to the right")
    ren.add_argument(
        *flag("--draw_keypoints"),
        dest="draw_keypoints",
        action="store_true",
        help="draw the 49 projected joints",
    )
    ren.add_argument(
        *flag("--save_obj"),
        dest="save_obj",
        action="store_true",
        help="also save every mesh as meshes/<track>/<frame>.obj",
    )
    p.set_defaults(func=run)


# --------------------------------------------------------------------------------------------
# Paths and assets


@dataclass(frozen=True)
class DemoPaths:
    """Where one demo run reads and writes."""

    source: Path
    out_dir: Path
    pkl: Path
    video: Path
    meshes: Path


def demo_paths(args: argparse.Namespace) -> DemoPaths:
    """``<output_folder>/<name>_<exp>/``: ``pare_output.pkl`` and ``<name>_<exp>_result.mp4``."""
    source = Path(args.vid_file if args.vid_file is not None else args.image_folder)
    stem = source.name if args.vid_file is None else source.stem
    name = f"{stem}_{args.exp}"
    out_dir = Path(args.output_folder) / name
    return DemoPaths(
        source, out_dir, out_dir / PKL_NAME, out_dir / f"{name}_result.mp4", out_dir / "meshes"
    )


def prepare_output_dir(out_dir: Path) -> None:
    """Create the result folder and check that files can be created in it (before any work)."""
    import tempfile

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to the output folder {out_dir}: {exc.strerror or exc}; choose another "
            "--output_folder"
        ) from exc


def resolve_assets(args: argparse.Namespace) -> Any:
    """The PARE yaml, checkpoint and SMPL folder: the flags, else the asset store's defaults.

    The one place the demo resolves its model files (:func:`pare_studio.assets.resolve_model_paths`;
    ``AssetError`` names each missing file and the flag or ``pare-studio setup`` command that
    provides it).
    """
    from pare_studio.assets import resolve_model_paths

    return resolve_model_paths(args.cfg, args.ckpt, args.smpl_dir)


def run_options(args: argparse.Namespace) -> Any:
    """:class:`~pare_studio.pipeline.run.RunOptions` from the flags."""
    from pare_studio.errors import DetectorError
    from pare_studio.pipeline.run import RunOptions

    detector = args.detector
    if args.boxes is not None:
        if detector not in (None, "boxes"):
            raise DetectorError(
                f"--boxes gives the boxes; it cannot be combined with --detector {detector}"
            )
        detector = "boxes"
    elif detector == "boxes":
        raise DetectorError("--detector boxes needs a MOTChallenge boxes file: --boxes FILE")
    return RunOptions(
        detector=detector or "yolo",
        boxes_file=args.boxes,
        yolo_weights=args.yolo_weights,
        tracker_batch_size=args.tracker_batch_size,
        batch_size=args.batch_size,
        min_frames=args.min_frames,
        smooth=args.smooth,
        min_cutoff=args.min_cutoff,
        beta=args.beta,
        smoothing_method=args.smoothing_method,
        device=args.device,
    )


def load_model(args: argparse.Namespace, assets: Any) -> Any:
    """The predictor (kept separate so tests and the benchmark can substitute a loaded one)."""
    from pare_studio.core.predictor import load_predictor

    return load_predictor(
        assets.cfg, assets.ckpt, assets.smpl_dir, device=args.device, backend=args.backend
    )


# --------------------------------------------------------------------------------------------
# Progress display and Ctrl+C


@dataclass
class StageClock:
    """Seconds and units per stage, for the summary."""

    seconds: dict[str, float] = field(default_factory=dict)
    units: dict[str, int] = field(default_factory=dict)


class ProgressBars:
    """One tqdm bar per stage (on stderr; silent when stderr is not a terminal)."""

    UNITS = {"detect": "frame", "infer": "crop", "render": "frame"}

    def __init__(self, clock: StageClock) -> None:
        self.clock = clock
        self._bar: Any = None
        self._stage: str | None = None
        self._t0 = 0.0
        self._tracks = 0

    def __call__(self, p: Progress) -> None:
        from tqdm import tqdm

        if p.stage != self._stage:
            self.close()
            self._stage = p.stage
            self._t0 = time.perf_counter()
            self._bar = tqdm(
                total=p.total or None,
                desc=f"{p.stage:>6}",
                unit=self.UNITS.get(p.stage, "it"),
                file=sys.stderr,
                disable=None,
                dynamic_ncols=True,
                leave=True,
            )
        if self._bar.total != (p.total or None):
            self._bar.total = p.total or None
        self._bar.update(p.done - self._bar.n)
        if p.track is not None:
            self._tracks += 1
            self._bar.set_postfix_str(f"{self._tracks} track(s) done", refresh=True)
        self.clock.seconds[p.stage] = time.perf_counter() - self._t0
        self.clock.units[p.stage] = p.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def drive(gen: Generator[Progress, None, Any], on_progress: Callable[[Progress], None]) -> Any:
    """Run a pipeline generator to its end, passing each report on; returns its value."""
    while True:
        try:
            report = next(gen)
        except StopIteration as stop:
            return stop.value
        on_progress(report)


# --------------------------------------------------------------------------------------------
# The command


def _rate(units: int, seconds: float) -> str:
    return f"{units / seconds:.1f}/s" if seconds > 0 else "-"


def print_summary(result: Any, paths: DemoPaths, clock: StageClock, video: Path | None) -> None:
    tracks = result.tracks
    person_frames = sum(len(t) for t in tracks.values())
    ids = ", ".join(str(t) for t in sorted(tracks))
    fps = f", {result.fps:g} fps" if result.fps else ""
    lines = [
        f"source   {paths.source} ({result.n_frames} frames, {result.width}x{result.height}{fps})",
        f"tracks   {len(tracks)} (ids {ids}; {person_frames} person-frames)",
    ]
    for stage, unit in (("detect", "frames"), ("infer", "crops"), ("render", "frames")):
        if stage in clock.seconds:
            s, u = clock.seconds[stage], clock.units.get(stage, 0)
            lines.append(f"{stage:<8} {u} {unit} in {s:.1f} s ({_rate(u, s)})")
    lines.append(f"results  {paths.pkl}")
    if video is not None:
        lines.append(f"video    {video}")
    print("\n".join(lines))


def run(args: argparse.Namespace) -> int:
    paths = demo_paths(args)
    options = run_options(args)
    if args.mode == "folder" and args.image_folder is None:
        from pare_studio.errors import VideoReadError

        raise VideoReadError("--mode folder works on a folder of images: give --image_folder")
    if args.vid_file is not None and not paths.source.is_file():
        from pare_studio.errors import VideoReadError

        raise VideoReadError(f"video file {paths.source} not found")
    prepare_output_dir(paths.out_dir)
    assets = resolve_assets(args)

    from pare_studio.pipeline.pkl_io import save_pare_output
    from pare_studio.pipeline.run import iter_video, make_detector

    detector = make_detector(
        options
    )  # a bad boxes file or missing weights fail before the model loads
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    predictor = load_model(args, assets)
    log.info("model loaded in %.1f s", time.perf_counter() - t0)

    if args.mode == "folder":
        return run_folder_mode(args, paths, options, predictor, detector)

    token = CancelToken()
    clock = StageClock()
    bars = ProgressBars(clock)
    video: Path | None = None
    with ctrl_c_cancels(token):
        try:
            result = drive(
                iter_video(paths.source, predictor, options, token, detector=detector), bars
            )
        finally:
            bars.close()
        save_pare_output(paths.pkl, result)
        print(f"wrote {paths.pkl}", file=sys.stderr)
        if not args.no_render:
            try:
                video = render(args, paths, result, predictor.faces, token, bars)
            except Exception as exc:  # the pkl is safe; report and fail
                bars.close()
                code = exc.exit_code if isinstance(exc, PareStudioError) else RenderError.exit_code
                if isinstance(exc, Cancelled):
                    what = "rendering cancelled; no video was written"
                elif isinstance(exc, PareStudioError):
                    what = f"rendering failed: {exc}"
                else:
                    log.debug("render failed", exc_info=True)
                    what = f"rendering failed ({type(exc).__name__}: {exc})"
                print(
                    f"pare-studio demo: {what}\n"
                    f"pare-studio demo: the results are safe in {paths.pkl}",
                    file=sys.stderr,
                )
                print_summary(result, paths, clock, None)
                return code
            finally:
                bars.close()
    print_summary(result, paths, clock, video)
    return 0


def render(
    args: argparse.Namespace,
    paths: DemoPaths,
    result: Any,
    faces: Any,
    token: CancelToken,
    on_progress: Callable[[Progress], None],
) -> Path:
    """The overlay video (and OBJs with ``--save_obj``) of a finished run."""
    from pare_studio.pipeline.video import open_source
    from pare_studio.render.overlay import render_overlay_video

    with open_source(paths.source) as source:
        gen = render_overlay_video(
            source,
            result,
            faces,
            paths.video,
            wireframe=args.wireframe,
            sideview=args.sideview,
            draw_keypoints=args.draw_keypoints,
            save_obj_dir=paths.meshes if args.save_obj else None,
            cancel=token,
        )
        return Path(drive(gen, on_progress))


# --------------------------------------------------------------------------------------------
# Folder mode


def _write_png_atomic(path: Path, rgb: Any) -> None:
    import cv2

    from pare_studio.atomic import write_bytes_atomic

    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"cannot encode {path}")
    write_bytes_atomic(path, data.tobytes())


class FolderRenderer:
    """Overlay images of folder mode; one offscreen renderer per image size (kept while equal)."""

    def __init__(self, faces: Any, wireframe: bool, sideview: bool, keypoints: bool) -> None:
        self.faces = faces
        self.wireframe, self.sideview, self.keypoints = wireframe, sideview, keypoints
        self._renderer: Any = None
        self._size: tuple[int, int] | None = None

    def __call__(self, image: Any, outputs: dict) -> Any:
        import numpy as np

        from pare_studio.render.mesh_renderer import MeshRenderer, track_color
        from pare_studio.render.overlay import draw_keypoints

        h, w = image.shape[:2]
        if self._size != (w, h):
            self.close()
            self._renderer = MeshRenderer(w, h, self.faces)
            self._size = (w, h)
        cams = outputs["orig_cam"]
        order = np.argsort(cams[:, 1], kind="stable")  # nearer (larger sy) drawn last
        out = self._renderer.overlay(
            image,
            [outputs["smpl_vertices"][k] for k in order],
            [cams[k] for k in order],
            [track_color(int(k) + 1) for k in order],
            wireframe=self.wireframe,
            sideview=self.sideview,
        )
        if self.keypoints:
            left = np.ascontiguousarray(out[:, :w])
            for k in order:
                draw_keypoints(left, outputs["smpl_joints2d"][k])
            out[:, :w] = left
        return out

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def run_folder_mode(
    args: argparse.Namespace, paths: DemoPaths, options: Any, predictor: Any, detector: Any
) -> int:
    """``--mode folder``: ``pare_results/<image stem>.pkl`` (+ ``<image name>`` rendered) per image.

    Each file is written atomically as its image is done; a cancel keeps the finished images.
    """
    from pare_studio.pipeline.pkl_io import dump_joblib_atomic
    from pare_studio.pipeline.run import iter_folder

    out_dir = paths.out_dir / "pare_results"
    prepare_output_dir(out_dir)
    token = CancelToken()
    clock = StageClock()
    bars = ProgressBars(clock)
    renderer = (
        None
        if args.no_render
        else FolderRenderer(predictor.faces, args.wireframe, args.sideview, args.draw_keypoints)
    )
    done = people = with_people = rendered = 0
    render_error: str | None = None
    with ctrl_c_cancels(token):
        try:
            for item in iter_folder(paths.source, predictor, options, token, detector=detector):
                done += 1
                if item.outputs is not None:
                    people += len(item.outputs["pred_cam"])
                    with_people += 1
                    dump_joblib_atomic(out_dir / f"{item.path.stem}.pkl", item.outputs)
                    if renderer is not None and render_error is None:
                        try:
                            _write_png_atomic(
                                out_dir / f"{item.path.stem}.png",
                                renderer(item.image, item.outputs),
                            )
                            rendered += 1
                        except Exception as exc:  # the pkls are safe; stop rendering
                            render_error = str(exc) or type(exc).__name__
                bars(Progress("infer", done, item.total))
        finally:
            bars.close()
            if renderer is not None:
                renderer.close()
    lines = [
        f"images   {done} in {paths.source}: {with_people} with people ({people} in all), "
        f"{done - with_people} without (skipped)",
        f"results  {out_dir}/<image>.pkl",
    ]
    if renderer is not None:
        lines.append(f"rendered {rendered} image(s) in {out_dir}")
    print("\n".join(lines))
    if render_error is not None:
        print(f"pare-studio demo: rendering failed: {render_error}", file=sys.stderr)
        return RenderError.exit_code
    return 0
