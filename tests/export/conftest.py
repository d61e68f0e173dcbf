"""Fixtures of the export tests: the synthetic SMPL as a rig and as SMPL bodies, and results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.results import VideoResult
from tests.export.synthetic import make_result


@pytest.fixture(scope="session")
def smpl_arrays(smpl_dir: Path) -> dict[str, np.ndarray]:
    from pare_studio.core.smpl_io import SmplFiles, load_smpl_model

    return load_smpl_model(SmplFiles.from_dir(smpl_dir).model)


@pytest.fixture(scope="session")
def j_extra(smpl_dir: Path) -> np.ndarray:
    from pare_studio.core.smpl_io import SmplFiles, load_j_regressor_extra

    return load_j_regressor_extra(SmplFiles.from_dir(smpl_dir).j_regressor_extra)


@pytest.fixture(scope="session")
def rig(smpl_dir: Path):  # type: ignore[no-untyped-def]
    from pare_studio.export.rig import SmplRig

    return SmplRig.from_smpl_dir(smpl_dir)


@pytest.fixture(scope="session")
def smpl_body(smpl_arrays: dict, j_extra: np.ndarray):  # type: ignore[no-untyped-def]
    """SMPL as PARE uses it (smplx), pose blend shapes included."""
    from pare_studio.core.smpl import SmplBody

    return SmplBody(smpl_arrays, j_extra)


@pytest.fixture(scope="session")
def smpl_body_lbs(smpl_arrays: dict, j_extra: np.ndarray):  # type: ignore[no-untyped-def]
    """The same SMPL without pose blend shapes (posedirs = 0): plain linear blend skinning."""
    from pare_studio.core.smpl import SmplBody

    arrays = dict(smpl_arrays)
    arrays["posedirs"] = np.zeros_like(arrays["posedirs"])
    return SmplBody(arrays, j_extra)


@pytest.fixture(scope="session")
def result(smpl_body) -> VideoResult:  # type: ignore[no-untyped-def]
    """Two posed, moving tracks (track 2 has a gap), 640×360 at 25 fps."""
    return make_result(smpl_body)
