"""File decisions of the window, as plain functions (no Qt): what to open, where to write."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pare_studio.errors import PareStudioError
from pare_studio.results import VideoResult

#: Extensions taken as videos when looking beside a pare_output.pkl.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".webm", ".mkv")
RESULT_SUFFIXES = (".pkl", ".joblib")


def is_results_file(path: Path) -> bool:
    return Path(path).suffix.lower() in RESULT_SUFFIXES


def find_video_for_results(pkl_path: Path, result: VideoResult) -> Path | None:
    """The video a results file belongs to, if it can be found.

    Order: the path recorded in the result; a video beside the pkl (the reference re-encodes the
    input as ``<output>/<video name>`` and writes ``*_result.mp4`` overlays, which are skipped);
    an image folder ``tmp_images`` beside it (the reference's extracted frames).
    """
    if result.source:
        src = Path(result.source)
        if src.exists():
            return src
    folder = Path(pkl_path).parent
    videos = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and not p.stem.endswith("_result")
    )
    if videos:
        return videos[0]
    frames = folder / "tmp_images"
    if frames.is_dir():
        return frames
    return None


def frame_size_from_boxes(result: VideoResult) -> tuple[int, int]:
    """(width, height) that holds every box, for results shown without their video."""
    if result.width and result.height:
        return int(result.width), int(result.height)
    right, bottom = 1.0, 1.0
    for t in result.tracks.values():
        if t.bboxes is not None and len(t):
            b = np.asarray(t.bboxes, dtype=np.float64)
            right = max(right, float((b[:, 0] + b[:, 2] / 2).max()))
            bottom = max(bottom, float((b[:, 1] + b[:, 3] / 2).max()))
    return int(np.ceil(right)), int(np.ceil(bottom))


def default_output_pkl(video_path: Path) -> Path:
    """``<video folder>/<video stem>_pare/pare_output.pkl``: a folder per video."""
    v = Path(video_path)
    return v.parent / f"{v.stem}_pare" / "pare_output.pkl"


def obj_paths(base: Path, track_ids: list[int]) -> dict[int, Path]:
    """One OBJ per person: ``base`` itself for one track, else ``<stem>_track<id>.obj``."""
    base = Path(base)
    if base.suffix.lower() != ".obj":
        base = base.with_suffix(".obj")
    if len(track_ids) == 1:
        return {track_ids[0]: base}
    return {tid: base.with_name(f"{base.stem}_track{tid}.obj") for tid in track_ids}


def run_options(detector: str, boxes_file: Path | None, batch_size: int, smooth: bool) -> object:
    """``RunOptions`` for the panel's choices; ``PareStudioError`` for a missing boxes file."""
    from pare_studio.pipeline.run import RunOptions

    if detector == "boxes":
        if boxes_file is None:
            raise PareStudioError("Choose a boxes file (MOTChallenge format) or another detector.")
        if not Path(boxes_file).is_file():
            raise PareStudioError(f"The boxes file {boxes_file} does not exist.")
    options = RunOptions(
        detector=detector,
        boxes_file=str(boxes_file) if detector == "boxes" and boxes_file is not None else None,
        batch_size=int(batch_size),
        smooth=bool(smooth),
    )
    try:
        options.validate()
    except ValueError as exc:
        raise PareStudioError(str(exc)) from None
    return options
