"""``pare-studio setup --smpl``: official-style SMPL pickles (chumpy inside) -> clean npz."""

from __future__ import annotations

import json
import pickle
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

from pare_studio.assets import AssetStore
from pare_studio.cli import main
from pare_studio.core.smpl_io import SmplFiles, load_smpl_pickle
from tests.setup.conftest import tree_digest

CHUMPY_KEYS = ("v_template", "shapedirs", "posedirs", "weights", "J")


@pytest.fixture(scope="module")
def smpl_arrays(smpl_dir: Path) -> dict[str, np.ndarray]:
    return load_smpl_pickle(smpl_dir / "body_models/smpl/SMPL_NEUTRAL.pkl")


def write_chumpy_pickle(
    path: Path, arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Pickle like the official files: chumpy ``Ch`` objects, a scipy csc J_regressor, strings.

    Fake ``chumpy`` modules exist only while pickling, so the loader under test cannot import them.
    """
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x
            self._dirty_vars = set()

    Ch.__module__ = "chumpy.ch"
    Ch.__qualname__ = "Ch"
    ch.Ch = Ch
    chumpy.ch = ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    obj: dict[str, object] = {
        k: (Ch(np.asarray(v, dtype=np.float64)) if k in CHUMPY_KEYS else v)
        for k, v in arrays.items()
    }
    obj["J_regressor"] = scipy.sparse.csc_matrix(arrays["J_regressor"])
    obj["bs_type"] = "lrotmin"
    obj["bs_style"] = "lbs"
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    assert b"chumpy.ch" in path.read_bytes()
    return path


def test_chumpy_pickle_becomes_a_clean_npz(
    store: AssetStore,
    tmp_path: Path,
    smpl_arrays: dict[str, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = write_chumpy_pickle(
        tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl", smpl_arrays, monkeypatch
    )
    assert "chumpy" not in sys.modules
    assert main(["setup", "--smpl", str(src)]) == 0
    assert "chumpy" not in sys.modules

    out = store.root / "body_models/smpl/SMPL_NEUTRAL.npz"
    with np.load(out, allow_pickle=False) as z:  # no pickled object anywhere in the file
        got = {k: z[k] for k in z.files}
    for key in ("v_template", "shapedirs", "posedirs", "weights", "kintree_table", "f"):
        np.testing.assert_array_equal(got[key], smpl_arrays[key], err_msg=key)
    np.testing.assert_array_equal(got["J_regressor"], np.asarray(smpl_arrays["J_regressor"]))
    assert got["J_regressor"].shape == (24, 6890)

    manifest = json.loads(store.manifest_path.read_text())
    entry = manifest["files"]["body_models/smpl/SMPL_NEUTRAL.npz"]
    assert entry["size"] == out.stat().st_size and entry["source"] == "smpl-neutral"
    assert manifest["installs"]["smpl-neutral"]["from"] == str(src)
    assert SmplFiles.from_dir(store.root, require=("model",)).model == out
    assert main(["setup", "--verify"]) == 0


def test_bad_shape_imports_nothing(
    store: AssetStore,
    tmp_path: Path,
    smpl_arrays: dict[str, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    good = write_chumpy_pickle(tmp_path / "n.pkl", smpl_arrays, monkeypatch)
    broken = dict(smpl_arrays, v_template=smpl_arrays["v_template"][:100])
    bad = write_chumpy_pickle(tmp_path / "m.pkl", broken, monkeypatch)
    rc = main(["setup", "--smpl", str(good), "--smpl-male", str(bad)])
    assert rc == 4  # SmplModelError
    err = capsys.readouterr().err
    assert "m.pkl" in err and "v_template" in err and "(6890, 3)" in err
    assert tree_digest(store.root) == {}  # not even the good neutral file


def test_pickle_that_runs_code_is_refused(store: AssetStore, tmp_path: Path, capsys) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    src = tmp_path / "evil.pkl"
    src.write_bytes(pickle.dumps({"v_template": Evil()}, protocol=2))
    assert main(["setup", "--smpl", str(src)]) == 9  # UnsafePickleError
    captured = capsys.readouterr()
    assert "pwned" not in captured.out
    assert re.search(r"references \S*print, which is not allowed", captured.err)
    assert tree_digest(store.root) == {}


def test_missing_file_is_named(store: AssetStore, tmp_path: Path, capsys) -> None:
    assert main(["setup", "--smpl", str(tmp_path / "nope.pkl")]) == 4
    assert "nope.pkl" in capsys.readouterr().err
