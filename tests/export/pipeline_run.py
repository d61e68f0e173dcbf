"""Real pipeline output for the edit and project tests, computed once per test session.

``pipeline.run.run_video`` on the synthetic 3-frame clip with its MOTChallenge boxes (two
people in every frame, 6 crops) with the synthetic checkpoint — the same inputs as
``tests/pipeline/test_run.py``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from pare_studio.results import VideoResult
from tests.pipeline.video_helpers import cached_predictor, make_clip


@functools.lru_cache(maxsize=1)
def pipeline_result(parity_dir: str, cfg_path: str, ckpt_path: str, smpl_dir: str) -> VideoResult:
    from pare_studio.pipeline.run import RunOptions, run_video

    folder = Path(tempfile.mkdtemp(prefix="pare_export_clip_"))
    atexit.register(shutil.rmtree, folder, True)
    make_clip(Path(parity_dir), folder, frames=3)
    predictor = cached_predictor(cfg_path, ckpt_path, smpl_dir)
    options = RunOptions(detector="boxes", boxes_file=folder / "boxes.txt", batch_size=6)
    return run_video(folder / "clip.mp4", predictor, options)
