"""What the window asks the inference engine to do: plain, immutable requests (no Qt).

Each request is wrapped in a :class:`Job` with its own :class:`CancelToken`; the window cancels a
job by setting the token directly from the GUI thread (the engine's thread is busy iterating
the pipeline and does not process queued events until the job ends).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pare_studio.cancel import CancelToken
from pare_studio.results import VideoResult

_ids = itertools.count(1)


@dataclass(frozen=True)
class ModelAssets:
    """The files :func:`pare_studio.core.predictor.load_predictor` needs."""

    cfg: Path | None
    ckpt: Path
    smpl_dir: Path
    device: str | None = None
    backend: str = "auto"


@dataclass(frozen=True)
class RunRequest:
    """Run the video pipeline on ``source_path`` (and save ``out_pkl`` when it completes).

    options : a :class:`pare_studio.pipeline.run.RunOptions`.
    """

    source_path: Path
    assets: ModelAssets
    options: Any
    out_pkl: Path | None = None


@dataclass(frozen=True)
class PreloadRequest:
    """Load the predictor now (in the background), so that the first run starts at once."""

    assets: ModelAssets


@dataclass(frozen=True)
class SavePklRequest:
    """Write ``result`` to ``path`` with the pipeline's atomic writer."""

    result: VideoResult
    path: Path


@dataclass(frozen=True)
class OverlayVideoRequest:
    """Render the overlay video of ``result`` over ``source_path`` into ``out_path``.

    faces : (13776, 3) SMPL faces.
    """

    source_path: Path
    result: VideoResult
    faces: np.ndarray
    out_path: Path
    wireframe: bool = False
    sideview: bool = False
    draw_keypoints: bool = False


@dataclass(frozen=True)
class Job:
    """One request with its id and cancel flag.

    background : a job the user did not ask for (loading the mesh faces); it does not make the
        engine "busy" and is not cancelled by :meth:`InferenceEngine.cancel`.
    """

    request: Any
    token: CancelToken = field(default_factory=CancelToken)
    id: int = field(default_factory=lambda: next(_ids))
    background: bool = False
