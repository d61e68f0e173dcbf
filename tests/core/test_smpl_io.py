"""The chumpy-free, code-free SMPL loader and the SMPL folder checks."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from pare_studio.core.smpl_io import (
    SMPL_ARRAY_SHAPES,
    SmplFiles,
    load_j_regressor_extra,
    load_mean_params,
    load_smpl_model,
    load_smpl_pickle,
    save_clean_smpl,
)
from pare_studio.errors import SmplModelError, UnsafePickleError


@pytest.fixture(scope="module")
def smpl_arrays(smpl_dir: Path) -> dict[str, np.ndarray]:
    return load_smpl_model(smpl_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl")


def _fake_chumpy_modules() -> dict[str, types.ModuleType]:
    """Fake ``chumpy``, ``chumpy.ch``, ``chumpy.reordering`` whose classes pickle like chumpy's."""

    class Ch:
        def __init__(self, x: np.ndarray) -> None:
            self.x = x
            self._dirty_vars: set[str] = set()
            self.label = None

        def __getstate__(self) -> dict:
            return {"x": self.x, "_dirty_vars": self._dirty_vars, "label": self.label}

    class Select(Ch):
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    root = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")
    ch.Ch = Ch
    reordering.Select = Select
    root.ch, root.reordering, root.Ch = ch, reordering, Ch
    return {"chumpy": root, "chumpy.ch": ch, "chumpy.reordering": reordering}


def _pickle_with_fake_chumpy(payload_fn, path: Path, protocol: int = 2) -> None:
    mods = _fake_chumpy_modules()
    assert not any(name in sys.modules for name in mods), "a real chumpy is imported"
    sys.modules.update(mods)
    try:
        payload = payload_fn(mods["chumpy.ch"].Ch, mods["chumpy.reordering"].Select)
        with open(path, "wb") as fh:
            pickle.dump(payload, fh, protocol=protocol)
    finally:
        for name in mods:
            sys.modules.pop(name, None)


def test_chumpy_pickle_loads_as_plain_arrays(
    tmp_path: Path, smpl_dir: Path, smpl_arrays: dict
) -> None:
    a = smpl_arrays

    def payload(Ch, Select):  # noqa: N803 - class arguments
        return {
            "v_template": Ch(a["v_template"]),
            "shapedirs": Select(a["shapedirs"]),
            "posedirs": Ch(a["posedirs"]),
            "J_regressor": sp.csc_matrix(a["J_regressor"]),
            "J_regressor_prior": sp.csr_matrix(a["J_regressor"][:, ::-1]),
            "weights": Ch(a["weights"]),
            "kintree_table": a["kintree_table"],
            "f": a["f"],
            "J": Ch(a["J"]),
            "bs_type": "lrotmin",
            "bs_style": "lbs",
            "pose_training_info": {"nsubj": 1, "data": "x"},
        }

    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    _pickle_with_fake_chumpy(payload, path)
    assert "chumpy" not in sys.modules
    assert b"chumpy.ch" in path.read_bytes()  # the file really references chumpy classes

    loaded = load_smpl_pickle(path)
    assert "chumpy" not in sys.modules
    for key in (
        "v_template",
        "shapedirs",
        "posedirs",
        "J_regressor",
        "weights",
        "kintree_table",
        "f",
        "J",
    ):
        assert isinstance(loaded[key], np.ndarray), key
        np.testing.assert_array_equal(loaded[key], a[key], err_msg=key)
    np.testing.assert_array_equal(loaded["J_regressor_prior"], a["J_regressor"][:, ::-1])
    assert loaded["J_regressor"].shape == (24, 6890)
    assert "bs_type" not in loaded and "pose_training_info" not in loaded
    # the official file name is found in the folder layout and validates
    model_dir = tmp_path / "data" / "body_models" / "smpl"
    model_dir.mkdir(parents=True)
    shutil.move(path, model_dir / path.name)
    for extra in ("J_regressor_extra.npy", "J_regressor_h36m.npy", "smpl_mean_params.npz"):
        os.symlink(smpl_dir / extra, tmp_path / "data" / extra)
    files = SmplFiles.from_dir(tmp_path / "data")
    assert files.model == model_dir / path.name
    assert set(load_smpl_model(files.model)) >= set(SMPL_ARRAY_SHAPES)


@pytest.mark.parametrize("protocol", [0, 2])
def test_old_pickle_forms(tmp_path: Path, protocol: int) -> None:
    """copyreg._reconstructor (protocols 0/1) and numpy-1 module names, as in Python-2 files."""
    arr = np.arange(6.0).reshape(2, 3)

    def payload(Ch, Select):  # noqa: N803
        return {"v_template": Ch(arr), "shapedirs": Select(arr[::-1].copy()), "n": 3}

    path = tmp_path / "old.pkl"
    _pickle_with_fake_chumpy(payload, path, protocol=protocol)
    data = path.read_bytes()
    if protocol == 0:  # written like Python 2 does: copy_reg._reconstructor(cls, object, None)
        assert b"copy_reg\n_reconstructor" in data and b"cchumpy.ch\nCh" in data
    # files written by numpy 1.x name numpy.core.multiarray (numpy 2 warns when it is imported)
    data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in data
    path.write_bytes(data)
    loaded = load_smpl_pickle(path)
    assert set(loaded) == {"v_template", "shapedirs"}
    np.testing.assert_array_equal(loaded["v_template"], arr)
    np.testing.assert_array_equal(loaded["shapedirs"], arr[::-1])


def test_plain_synthetic_pickle_matches_scipy(smpl_dir: Path, smpl_arrays: dict) -> None:
    with open(smpl_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")  # trusted test asset
    np.testing.assert_array_equal(smpl_arrays["J_regressor"], raw["J_regressor"].toarray())
    np.testing.assert_array_equal(smpl_arrays["posedirs"], raw["posedirs"])
    assert smpl_arrays["f"].shape == (13776, 3)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("kind", ["os.system", "eval"])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    evil = _Evil(marker) if kind == "os.system" else _EvalEvil()
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    with open(path, "wb") as fh:
        pickle.dump({"v_template": np.zeros((2, 3)), "f": evil}, fh, protocol=2)
    with pytest.raises(UnsafePickleError) as info:
        load_smpl_pickle(path)
    msg = str(info.value)
    assert str(path) in msg
    assert ("system" in msg) if kind == "os.system" else ("eval" in msg)
    assert not marker.exists()


def test_truncated_and_non_dict_pickles(tmp_path: Path, smpl_dir: Path) -> None:
    src = (smpl_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl").read_bytes()
    bad = tmp_path / "trunc.pkl"
    bad.write_bytes(src[: len(src) // 3])
    with pytest.raises(SmplModelError, match="damaged"):
        load_smpl_pickle(bad)
    lst = tmp_path / "list.pkl"
    lst.write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(SmplModelError, match="not the dict"):
        load_smpl_pickle(lst)


def test_wrong_shapes_name_file_and_array(tmp_path: Path, smpl_arrays: dict) -> None:
    bad = dict(smpl_arrays)
    bad["posedirs"] = bad["posedirs"][:, :, :200]
    path = tmp_path / "SMPL_NEUTRAL.npz"
    np.savez(path, **bad)
    with pytest.raises(SmplModelError) as info:
        load_smpl_model(path)
    assert (
        str(path) in str(info.value)
        and "'posedirs'" in str(info.value)
        and "(6890, 3, 207)" in str(info.value)
    )

    bad = dict(smpl_arrays)
    del bad["weights"]
    np.savez(path, **bad)
    with pytest.raises(SmplModelError, match="no array 'weights'"):
        load_smpl_model(path)

    bad = dict(smpl_arrays)
    bad["shapedirs"] = bad["shapedirs"][..., :5]
    with pytest.raises(SmplModelError, match=r"'shapedirs'.*>=10"):
        save_clean_smpl(bad, path)

    reg = tmp_path / "J_regressor_extra.npy"
    np.save(reg, np.zeros((8, 6890)))
    with pytest.raises(SmplModelError) as info:
        load_j_regressor_extra(reg)
    assert str(reg) in str(info.value) and "(9, 6890)" in str(info.value)

    mean = tmp_path / "smpl_mean_params.npz"
    np.savez(mean, pose=np.zeros(144), shape=np.zeros(9), cam=np.zeros(3))
    with pytest.raises(SmplModelError) as info:
        load_mean_params(mean)
    assert str(mean) in str(info.value) and "'shape'" in str(info.value)


def test_missing_files_name_the_expected_path(tmp_path: Path, smpl_dir: Path) -> None:
    with pytest.raises(SmplModelError, match="does not exist"):
        SmplFiles.from_dir(tmp_path / "nope")
    (tmp_path / "body_models" / "smpl").mkdir(parents=True)
    with pytest.raises(SmplModelError) as info:
        SmplFiles.from_dir(tmp_path)
    msg = str(info.value)
    assert str(tmp_path / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl") in msg
    assert "smpl.is.tue.mpg.de" in msg

    os.symlink(
        smpl_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl",
        tmp_path / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl",
    )
    with pytest.raises(SmplModelError) as info:
        SmplFiles.from_dir(tmp_path)
    assert str(tmp_path / "J_regressor_extra.npy") in str(info.value)
    assert "pare-studio setup" in str(info.value)

    os.symlink(smpl_dir / "J_regressor_extra.npy", tmp_path / "J_regressor_extra.npy")
    files = SmplFiles.from_dir(tmp_path)  # enough for prediction
    with pytest.raises(SmplModelError, match="J_regressor_h36m.npy"):
        files.check("j_regressor_h36m")
    with pytest.raises(SmplModelError, match="SMPL_MALE.pkl"):
        SmplFiles.from_dir(tmp_path, gender="male")
    with pytest.raises(SmplModelError, match="gender"):
        SmplFiles.from_dir(tmp_path, gender="robot")


def test_clean_npz_round_trip_and_preferred(
    tmp_path: Path, smpl_dir: Path, smpl_arrays: dict
) -> None:
    model_dir = tmp_path / "body_models" / "smpl"
    out = save_clean_smpl(smpl_arrays, model_dir / "SMPL_NEUTRAL.npz")
    assert out.is_file() and not list(model_dir.glob("*.tmp"))
    with np.load(out, allow_pickle=False) as z:  # no pickled objects inside
        assert set(z.files) == {*SMPL_ARRAY_SHAPES, "J"}
    again = load_smpl_model(out)
    for key in SMPL_ARRAY_SHAPES:
        np.testing.assert_array_equal(again[key], smpl_arrays[key], err_msg=key)
    os.symlink(
        smpl_dir / "body_models" / "smpl" / "SMPL_NEUTRAL.pkl", model_dir / "SMPL_NEUTRAL.pkl"
    )
    os.symlink(smpl_dir / "J_regressor_extra.npy", tmp_path / "J_regressor_extra.npy")
    assert SmplFiles.from_dir(tmp_path).model == out
