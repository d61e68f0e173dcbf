"""Shared fixtures: the synthetic SMPL folder, the synthetic checkpoint and the parity data.

The assets are generated once per test session with the scripts in ``../shared/parity`` (numpy,
scipy and torch only), in a temporary folder. Set ``PARE_STUDIO_TEST_ASSETS=DIR`` to generate
them once into DIR and reuse them across sessions while developing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PARE_STUDIO_SHARED", REPO.parent / "shared"))
PARITY = SHARED / "parity"
YOLO_PARITY = PARITY / "yolov3"


def pytest_configure(config: pytest.Config) -> None:
    """Keep the fast path's ONNX export cache inside the test session (never the user's cache).

    With ``PARE_STUDIO_TEST_ASSETS`` set it lives beside the assets and is reused across sessions.
    """
    if "PARE_STUDIO_CACHE" in os.environ:
        return
    fixed = os.environ.get("PARE_STUDIO_TEST_ASSETS")
    if fixed:
        cache = Path(fixed) / "cache"
        cache.mkdir(parents=True, exist_ok=True)
    else:
        cache = Path(tempfile.mkdtemp(prefix="pare_studio_test_cache_"))
    os.environ["PARE_STUDIO_CACHE"] = str(cache)


def _run(args: list[str], cwd: Path) -> None:
    subprocess.run([sys.executable, *args], cwd=cwd, check=True, capture_output=True)


def _assets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fixed = os.environ.get("PARE_STUDIO_TEST_ASSETS")
    if fixed:
        path = Path(fixed)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("pare_assets")


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    if not PARITY.is_dir():
        pytest.fail(f"parity fixture not found at {PARITY}; set PARE_STUDIO_SHARED")
    return PARITY


@pytest.fixture(scope="session")
def assets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _assets_dir(tmp_path_factory)


@pytest.fixture(scope="session")
def smpl_dir(assets_dir: Path, parity_dir: Path) -> Path:
    """Synthetic SMPL folder laid out as PARE's ``data/`` (body_models/smpl/SMPL_NEUTRAL.pkl, ...)."""
    out = assets_dir / "smpl"
    if not (out / "smpl_mean_params.npz").is_file():
        _run([str(parity_dir / "make_synthetic_smpl.py"), str(out)], cwd=assets_dir)
    return out


@pytest.fixture(scope="session")
def ckpt_path(assets_dir: Path, smpl_dir: Path, parity_dir: Path) -> Path:
    """The synthetic training-style checkpoint with the public salt (~190 MB)."""
    out = assets_dir / "pare_synthetic_public.ckpt"
    if not out.is_file():
        _run(
            [
                str(parity_dir / "make_synthetic_checkpoint.py"),
                "--keys", str(parity_dir / "pare_hrnet_w32_state_dict.json"),
                "--smpl-dir", str(smpl_dir),
                "--salt", "public",
                "--out", str(out),
            ],
            cwd=assets_dir,
        )
    return out


@pytest.fixture(scope="session")
def cfg_path(parity_dir: Path) -> Path:
    return parity_dir / "pare_hrnet_w32_config.yaml"


@pytest.fixture(scope="session")
def parity_inputs(parity_dir: Path) -> np.ndarray:
    """(4, 3, 224, 224) float32 normalised crops."""
    return np.load(parity_dir / "inputs.npz")["images"]


@pytest.fixture(scope="session")
def parity_expected(parity_dir: Path) -> dict[str, np.ndarray]:
    with np.load(parity_dir / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def assert_parity(ours: np.ndarray, expected: np.ndarray, name: str, rel: float = 1e-4) -> None:
    """The parity README's check: max|ours - expected| <= rel * max(1, max|expected|)."""
    assert ours.shape == expected.shape, f"{name}: shape {ours.shape} != {expected.shape}"
    tol = rel * max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(ours.astype(np.float64) - expected.astype(np.float64)).max())
    assert err <= tol, f"{name}: max abs error {err:.3g} > {tol:.3g}"
