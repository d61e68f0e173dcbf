"""Import the user's SMPL model files into the store as clean, pickle-free ``.npz`` files.

The official SMPL pickles need chumpy (which no longer imports) and, being pickles, could run
code. :func:`import_smpl_models` reads them with the core's restricted, chumpy-free loader,
validates every array's shape, and writes ``body_models/smpl/SMPL_<GENDER>.npz`` with plain
numpy arrays only (``np.load(..., allow_pickle=False)`` reads it; smplx accepts it too).
All files are read and validated before any is written, so one bad file imports nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pare_studio.assets import SMPL_STEMS, AssetStore, smpl_rel
from pare_studio.errors import SmplModelError
from pare_studio.setup.manifest import Manifest, now_iso, sha256_file


def import_smpl_models(
    sources: Mapping[str, str | os.PathLike[str]], store: AssetStore
) -> dict[str, Path]:
    """Convert SMPL model files into the store.

    Parameters
    ----------
    sources : gender (``"neutral"``, ``"male"``, ``"female"``) -> the user's file (official
        ``.pkl``, with or without chumpy objects, or an ``.npz`` of plain arrays).
    store : the asset store.

    Returns
    -------
    gender -> written ``.npz`` path.

    Raises
    ------
    SmplModelError
        A file is missing, damaged, or has an array of the wrong shape (nothing is written).
    UnsafePickleError
        A pickle references code other than numpy / chumpy / scipy.sparse (nothing is written).
    """
    from pare_studio.core.smpl_io import load_smpl_model, save_clean_smpl

    loaded = {}
    for gender, src in sources.items():
        if gender not in SMPL_STEMS:
            raise SmplModelError(
                f"unknown SMPL gender {gender!r}; use one of {', '.join(SMPL_STEMS)}"
            )
        path = Path(src).expanduser()
        if not path.is_file():
            raise SmplModelError(f"SMPL model file {path} (given for {gender}) does not exist")
        loaded[gender] = (path, load_smpl_model(path))

    manifest = Manifest.load(store)
    written: dict[str, Path] = {}
    for gender, (path, arrays) in loaded.items():
        rel = smpl_rel(gender, ".npz")
        dest = save_clean_smpl(arrays, store.path(rel))
        manifest.record(rel, sha256_file(dest), dest.stat().st_size, source=f"smpl-{gender}")
        manifest.installs[f"smpl-{gender}"] = {
            "from": str(path.absolute()),
            "source_sha256": sha256_file(path),
            "at": now_iso(),
        }
        written[gender] = dest
    manifest.save(store)
    return written
