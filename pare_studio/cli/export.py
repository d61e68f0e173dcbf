"""``pare-studio export``: a pare_output.pkl or a project file → BVH, glTF, npz, OBJ or pkl.

    pare-studio export RESULT.pkl|PROJECT.pareproj --format bvh|glb|npz|obj|pkl --out PATH
        [--tracks 1,3] [--smpl-dir D] [--fps F] [--smooth | --no-smooth] [--min-cutoff X]
        [--beta X] [--smooth-method rotation|reference] [--no-translation] [--camera-frame]
        [--fov DEG | --focal-length PX] [--image-size WxH] [--betas mean|first]
        [--units m|cm] [--max-influences N] [--pose-blendshapes] [--show-absent]

A project file brings its edits (renamed, merged, split, deleted tracks), its export choice (the
default for ``--tracks``) and its smoothing settings (used unless ``--smooth`` / ``--no-smooth``
says otherwise). Written paths are printed, one per line (the OBJ export prints its folder).
See ``docs/export.md`` for the formats, the world frame and the root translation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pare_studio.cli._common import non_negative_float, positive_float, positive_int

#: The export formats (``pare_studio.export.dispatch.FORMATS``; repeated here so that building
#: the parser imports nothing heavy).
FORMATS = ("bvh", "glb", "npz", "obj", "pkl")


def _tracks(text: str) -> list[int]:
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of track ids"
        ) from None
    if not ids or any(t < 1 for t in ids):
        raise argparse.ArgumentTypeError(f"track ids are whole numbers >= 1, got {text!r}")
    return ids


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"image size is WIDTHxHEIGHT, e.g. 1920x1080, got {text!r}"
        ) from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"image size must be positive, got {text!r}")
    return w, h


def _fov(text: str) -> float:
    value = positive_float(text)
    if value >= 180:
        raise argparse.ArgumentTypeError(f"field of view must be below 180 degrees, got {text}")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export results or a project to BVH, glTF (.glb), npz, an OBJ sequence or a pkl",
        description="Export the tracks of a pare_output.pkl or of a PARE Studio project file: "
        "BVH skeleton animation, binary glTF with the skinned SMPL mesh, SMPL parameters (npz), "
        "one OBJ per frame, or a pare_output.pkl holding the edited tracks. See docs/export.md.",
    )
    p.add_argument("input", type=Path, help="a pare_output.pkl or a .pareproj project file")
    p.add_argument("--format", required=True, choices=FORMATS, help="output format")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output file (a folder for obj); with several tracks, bvh and npz write "
        "<stem>_track<id><suffix> next to it",
    )
    p.add_argument(
        "--tracks",
        type=_tracks,
        default=None,
        help="track ids, e.g. 1,3 (default: all, or the project's export choice)",
    )
    p.add_argument(
        "--smpl-dir",
        type=Path,
        default=None,
        help="folder laid out as PARE's data/ (body_models/smpl/SMPL_NEUTRAL.*); needed by bvh, "
        "glb, obj and smoothing (default: the asset store, then ./data)",
    )
    p.add_argument(
        "--fps",
        type=positive_float,
        default=None,
        help="frame rate of the animation (default: the video's; 30 for a bare pkl)",
    )
    sm = p.add_argument_group("smoothing (One-Euro filter, pipeline.smoothing)")
    onoff = sm.add_mutually_exclusive_group()
    onoff.add_argument(
        "--smooth",
        dest="smooth",
        action="store_true",
        default=None,
        help="smooth the pose before exporting",
    )
    onoff.add_argument(
        "--no-smooth",
        dest="smooth",
        action="store_false",
        help="do not smooth, even if the project says so",
    )
    sm.add_argument(
        "--smooth-method",
        choices=["rotation", "reference"],
        default=None,
        help="rotation: on rotations, orthonormal (default); reference: element-wise as "
        "the reference",
    )
    sm.add_argument(
        "--min-cutoff", type=non_negative_float, default=None, help="One-Euro min_cutoff (0.004)"
    )
    sm.add_argument("--beta", type=non_negative_float, default=None, help="One-Euro beta (1.0)")
    world = p.add_argument_group("world frame and root translation")
    world.add_argument(
        "--no-translation",
        action="store_true",
        help="keep the root at its rest place instead of the camera-estimated position",
    )
    world.add_argument(
        "--camera-frame",
        action="store_true",
        help="write PARE's camera frame (y down, z forward) instead of y up",
    )
    foc = world.add_mutually_exclusive_group()
    foc.add_argument(
        "--fov",
        type=_fov,
        default=None,
        help="assumed horizontal field of view of the video, degrees (default 60)",
    )
    foc.add_argument(
        "--focal-length",
        type=positive_float,
        default=None,
        help="assumed focal length of the video, pixels",
    )
    world.add_argument(
        "--image-size",
        type=_size,
        default=None,
        help="video size WIDTHxHEIGHT (default: the project's, or estimated from the pkl)",
    )
    world.add_argument(
        "--betas",
        choices=["mean", "first"],
        default="mean",
        help="body shape of the skeleton / mesh: the track's mean betas or its first frame's",
    )
    fmt = p.add_argument_group("format options")
    fmt.add_argument("--units", choices=["m", "cm"], default="m", help="BVH units (default metres)")
    fmt.add_argument(
        "--max-influences",
        type=positive_int,
        default=None,
        help="glb: skinning weights per vertex (default all non-zero; 4 for viewers "
        "that read one set)",
    )
    fmt.add_argument(
        "--pose-blendshapes",
        action="store_true",
        help="glb: add SMPL's pose correctives as 207 morph targets (exact mesh, ~17 MB)",
    )
    fmt.add_argument(
        "--show-absent",
        action="store_true",
        help="glb: keep bodies visible on frames where their track is absent",
    )
    p.set_defaults(func=run)


def _find_smpl_dir(explicit: Path | None, why: str) -> Path:
    if explicit is not None:
        return explicit
    from pare_studio.assets import SMPL_CMD, candidate_stores
    from pare_studio.errors import AssetError

    stores = candidate_stores()
    for _label, store in stores:
        if store.smpl_model_path() is not None:
            return store.root
    where = " and ".join(str(s.root) for _, s in stores)
    raise AssetError(
        f"{why} needs the SMPL model, which is not in {where}: pass --smpl-dir or install it with "
        f"`{SMPL_CMD}`"
    )


def run(args: argparse.Namespace) -> int:
    from pare_studio.edits import EditState
    from pare_studio.errors import ResultFileError, TrackEditError
    from pare_studio.export.common import ExportOptions
    from pare_studio.export.dispatch import NEEDS_RIG, FormatOptions, export_result, smooth_result
    from pare_studio.export.translation import DEFAULT_FOV_DEG
    from pare_studio.pipeline.smoothing import DEFAULT_BETA, DEFAULT_MIN_CUTOFF
    from pare_studio.project import SmoothingSettings, is_project_file, load_project

    path: Path = args.input
    if not path.exists():
        raise ResultFileError(f"{path} does not exist")
    if is_project_file(path):
        project = load_project(path)
        state = project.state
        smoothing = project.smoothing
        track_ids = args.tracks if args.tracks is not None else state.selected_ids()
        if not track_ids:
            raise TrackEditError(
                f"no track of {path} is chosen for export; "
                "choose some in the window or pass --tracks"
            )
    else:
        from pare_studio.pipeline.pkl_io import load_pare_output

        state = EditState.from_result(load_pare_output(path))
        smoothing = SmoothingSettings()
        track_ids = args.tracks
    result = state.to_result()

    enabled = smoothing.enabled if args.smooth is None else args.smooth
    method = args.smooth_method or (smoothing.method if smoothing.enabled else "rotation")
    min_cutoff = (
        args.min_cutoff
        if args.min_cutoff is not None
        else (smoothing.min_cutoff if smoothing.enabled else DEFAULT_MIN_CUTOFF)
    )
    beta = (
        args.beta
        if args.beta is not None
        else (smoothing.beta if smoothing.enabled else DEFAULT_BETA)
    )

    needs = []
    if args.format in NEEDS_RIG:
        needs.append(f"--format {args.format}")
    if enabled:
        needs.append("smoothing")
    rig = None
    if needs:
        smpl_dir = _find_smpl_dir(args.smpl_dir, " and ".join(needs))
        if args.format in NEEDS_RIG:
            from pare_studio.export.rig import SmplRig

            rig = SmplRig.from_smpl_dir(smpl_dir)
        if enabled:
            from pare_studio.core.smpl import SmplBody
            from pare_studio.core.smpl_io import SmplFiles

            body = SmplBody.from_files(SmplFiles.from_dir(smpl_dir))
            result = smooth_result(result, body, method, min_cutoff, beta, track_ids)
            print(f"smoothed ({method}, min_cutoff {min_cutoff:g}, beta {beta:g})", file=sys.stderr)

    options = ExportOptions(
        fps=args.fps,
        upright=not args.camera_frame,
        translation=not args.no_translation,
        focal_length=args.focal_length,
        fov_deg=args.fov if args.fov is not None else DEFAULT_FOV_DEG,
        image_size=args.image_size,
        betas=args.betas,
    )
    if args.format in ("bvh", "glb", "npz") and args.fps is None and not result.fps:
        print(
            f"the input has no frame rate; writing {options.resolve_fps(result):g} fps "
            "(pass --fps to choose)",
            file=sys.stderr,
        )
    if options.translation and args.format != "pkl":
        camera = options.camera(result)
        if camera is None:
            print(
                "the image size is unknown and the cameras do not give it; the root stays at "
                "its rest place (pass --image-size)",
                file=sys.stderr,
            )
    fo = FormatOptions(
        bvh_scale=100.0 if args.units == "cm" else 1.0,
        max_influences=args.max_influences,
        pose_blendshapes=args.pose_blendshapes,
        hide_absent=not args.show_absent,
    )
    written = export_result(
        result,
        args.format,
        args.out,
        track_ids=track_ids,
        options=options,
        format_options=fo,
        rig=rig,
    )
    if args.format == "obj":
        print(f"{args.out} ({len(written)} OBJ files)")
    else:
        for p in written:
            print(p)
    return 0
