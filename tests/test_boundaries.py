"""Layering checks: compute packages and the CLI never load Qt, VisPy or pyqtgraph."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUI_MODULES = ("PySide6", "vispy", "pyqtgraph")


def _loaded_after_import(statement: str) -> set[str]:
    code = (
        f"import sys\n{statement}\n"
        f"print(','.join(m for m in {GUI_MODULES!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    return {m for m in out.split(",") if m}


@pytest.mark.parametrize(
    "statement",
    [
        "import pare_studio.cli; pare_studio.cli.build_parser()",
        "import pare_studio.core.predictor",
        "import pare_studio.pipeline.run",
        "import pare_studio.analysis.evaluate",
    ],
)
def test_compute_and_cli_do_not_load_gui_toolkits(statement: str) -> None:
    assert _loaded_after_import(statement) == set()


def test_cli_help_does_not_import_torch() -> None:
    code = "import sys, pare_studio.cli as c; c.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert out == "False"


def test_import_linter_contracts_hold() -> None:
    exe = shutil.which("lint-imports")
    assert exe is not None, "import-linter is part of the test extras: pip install -e .[test]"
    proc = subprocess.run([exe], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
