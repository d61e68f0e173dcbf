"""Fixtures of the render tests: the synthetic SMPL mesh (plain pickle) and a box mesh."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def smpl_mesh(smpl_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(verts (6890, 3) float32, faces (13776, 3) int64): the synthetic SMPL template turned
    upright in PARE's camera frame (y down, z away from the camera), centred at the origin."""
    with open(smpl_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl", "rb") as fh:
        model = pickle.load(fh, encoding="latin1")
    verts = np.asarray(model["v_template"], np.float64) * np.array([1.0, -1.0, -1.0])
    verts -= (verts.max(axis=0) + verts.min(axis=0)) / 2
    return verts.astype(np.float32), np.asarray(model["f"], np.int64)


BOX_FACES = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # z = -1 (towards the camera)
        [4, 5, 6], [4, 6, 7],  # z = +1
        [0, 1, 5], [0, 5, 4],  # y = -1
        [3, 7, 6], [3, 6, 2],  # y = +1
        [0, 4, 7], [0, 7, 3],  # x = -1
        [1, 2, 6], [1, 6, 5],  # x = +1
    ],
    np.int64,
)  # fmt: skip


def box_verts(center: tuple[float, float, float], half: tuple[float, float, float]) -> np.ndarray:
    """(8, 3) float32 corners of an axis-aligned box (faces: BOX_FACES)."""
    corners = np.array(
        [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1],
         [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]],
        np.float64,
    )  # fmt: skip
    return (corners * np.asarray(half) + np.asarray(center)).astype(np.float32)
