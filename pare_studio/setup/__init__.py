"""First-run setup: PARE's data into the asset store, the user's SMPL files, verification, doctor.

Nothing here imports torch, Qt or VisPy at import time (the checks that need torch import it
when they run; OpenGL and Qt are probed in child processes).

- :func:`~pare_studio.setup.download.download`: resumable HTTP download (``*.part`` + Range).
- :func:`~pare_studio.setup.install.install_pare_zip`: unpack, verify, move into place, manifest.
- :func:`~pare_studio.setup.smpl_import.import_smpl_models`: chumpy-free SMPL -> clean ``.npz``.
- :func:`~pare_studio.setup.manifest.verify_store`: re-hash every recorded file.
- :func:`~pare_studio.setup.doctor.run_doctor`: the report as a list of ``Check``.
"""

from __future__ import annotations

from pare_studio.setup.doctor import Check, demo_ready, format_report, run_doctor
from pare_studio.setup.download import DEFAULT_DATA_URL, data_url, download
from pare_studio.setup.install import (
    EXPECTED_FILES,
    InstallReport,
    install_pare_zip,
    pare_data_installed,
)
from pare_studio.setup.manifest import Manifest, VerifyReport, verify_store
from pare_studio.setup.smpl_import import import_smpl_models

__all__ = [
    "DEFAULT_DATA_URL",
    "EXPECTED_FILES",
    "Check",
    "InstallReport",
    "Manifest",
    "VerifyReport",
    "data_url",
    "demo_ready",
    "download",
    "format_report",
    "import_smpl_models",
    "install_pare_zip",
    "pare_data_installed",
    "run_doctor",
    "verify_store",
]
