"""Finding, reading and validating the SMPL files PARE needs, without chumpy and without
executing code from the files.

The folder (``--smpl-dir``) is laid out as the reference's ``data/``::

    SMPL_DIR/body_models/smpl/SMPL_NEUTRAL.pkl   (or SMPL_NEUTRAL.npz,
                                                 or basicModel_neutral_lbs_10_207_0_v1.0.0.pkl)
    SMPL_DIR/J_regressor_extra.npy               (9, 6890)
    SMPL_DIR/J_regressor_h36m.npy                (17, 6890)
    SMPL_DIR/smpl_mean_params.npz                pose (144,), shape (10,), cam (3,)

The official SMPL pickles are Python-2 pickles holding ``chumpy`` objects and
``scipy.sparse`` matrices. chumpy no longer imports on current numpy / Python, and a pickle can
run arbitrary code, so :func:`load_smpl_pickle` uses a restricted unpickler: chumpy classes become
stubs whose state (``'x'``) is read back as a plain array, scipy sparse matrices become stubs
converted to dense arrays, numpy's array reconstruction is allowed, and every other global is
refused with :class:`~pare_studio.errors.UnsafePickleError`.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pare_studio.atomic import write_npz_atomic
from pare_studio.core.constants import (
    SMPL_NUM_BETAS,
    SMPL_NUM_FACES,
    SMPL_NUM_JOINTS,
    SMPL_NUM_POSE_BASIS,
    SMPL_NUM_VERTICES,
)
from pare_studio.errors import SmplModelError, UnsafePickleError

log = logging.getLogger(__name__)

SMPL_URL = "https://smpl.is.tue.mpg.de"
_SMPL_HINT = (
    f"SMPL is licensed separately: register at {SMPL_URL}, download the SMPL model "
    "(or the neutral model from SMPLify) and put it there, or import it with `pare-studio setup`"
)
_DATA_HINT = (
    "it is part of PARE's data zip (pare-github-data.zip, folder data/); "
    "`pare-studio setup` downloads and unpacks it"
)

_GENDER_CODES = {"neutral": "neutral", "male": "m", "female": "f"}

#: Arrays of the SMPL model file the body model uses, with their required shapes
#: (``None`` = any size, ``-1`` in shapedirs' last axis = at least SMPL_NUM_BETAS).
SMPL_ARRAY_SHAPES: dict[str, tuple[int, ...]] = {
    "v_template": (SMPL_NUM_VERTICES, 3),
    "shapedirs": (SMPL_NUM_VERTICES, 3, -1),
    "posedirs": (SMPL_NUM_VERTICES, 3, SMPL_NUM_POSE_BASIS),
    "J_regressor": (SMPL_NUM_JOINTS, SMPL_NUM_VERTICES),
    "weights": (SMPL_NUM_VERTICES, SMPL_NUM_JOINTS),
    "kintree_table": (2, SMPL_NUM_JOINTS),
    "f": (SMPL_NUM_FACES, 3),
}


# --------------------------------------------------------------------------------------------
# Folder layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmplFiles:
    """Paths of the SMPL files in one ``--smpl-dir`` folder.

    Attributes
    ----------
    root : the folder.
    gender : "neutral", "male" or "female".
    model : the SMPL model file (``.pkl`` official pickle or pickle-free ``.npz``).
    j_regressor_extra : ``J_regressor_extra.npy`` (9, 6890).
    j_regressor_h36m : ``J_regressor_h36m.npy`` (17, 6890); only evaluation needs it.
    mean_params : ``smpl_mean_params.npz``; the checkpoint carries the same values.
    """

    root: Path
    gender: str
    model: Path
    j_regressor_extra: Path
    j_regressor_h36m: Path
    mean_params: Path

    @classmethod
    def from_dir(
        cls,
        smpl_dir: str | os.PathLike[str],
        gender: str = "neutral",
        require: tuple[str, ...] = ("model", "j_regressor_extra"),
    ) -> SmplFiles:
        """Resolve the files of ``smpl_dir``.

        ``require`` names the fields that must exist now (default: what prediction needs);
        the others are checked by their loaders. Raises :class:`SmplModelError` naming the
        missing file, the path where it is expected and where to get it.
        """
        if gender not in _GENDER_CODES:
            raise SmplModelError(
                f"unknown SMPL gender {gender!r}: use one of {', '.join(_GENDER_CODES)}"
            )
        root = Path(smpl_dir).expanduser()
        if not root.is_dir():
            raise SmplModelError(
                f"SMPL folder {root} does not exist: pass the folder laid out as PARE's data/ "
                "(body_models/smpl/SMPL_NEUTRAL.pkl, J_regressor_extra.npy, J_regressor_h36m.npy, "
                "smpl_mean_params.npz); `pare-studio setup` creates one"
            )
        files = cls(
            root=root,
            gender=gender,
            model=_find_model_file(root / "body_models" / "smpl", gender),
            j_regressor_extra=root / "J_regressor_extra.npy",
            j_regressor_h36m=root / "J_regressor_h36m.npy",
            mean_params=root / "smpl_mean_params.npz",
        )
        files.check(*require)
        return files

    def check(self, *names: str) -> None:
        """Raise :class:`SmplModelError` for the first of the named files that is missing."""
        for name in names:
            path = getattr(self, name)
            if not Path(path).is_file():
                raise SmplModelError(missing_file_message(name, Path(path), self.gender))


def missing_file_message(name: str, path: Path, gender: str = "neutral") -> str:
    """The message for a missing SMPL-folder file: which, where expected, where to get it."""
    if name == "model":
        return (
            f"SMPL model file for gender {gender!r} not found: expected {path} "
            f"(also accepted: the .npz written by `pare-studio setup`, or the official "
            f"basicModel_*_lbs_10_207_0_v1.*.pkl name in the same folder). {_SMPL_HINT}"
        )
    return f"{path.name} not found: expected {path}; {_DATA_HINT}"


def find_smpl_model(folder: Path, gender: str) -> Path | None:
    """The SMPL model file of ``gender`` present in ``folder`` (PARE's ``body_models/smpl``), or
    None. Looked for in order: ``SMPL_<GENDER>.npz`` (written by ``pare-studio setup``), then
    ``SMPL_<GENDER>.pkl``, then the newest official name
    ``basicModel_<f|m|neutral>_lbs_10_207_0_v1.*.pkl``.
    """
    upper = gender.upper()
    for cand in (folder / f"SMPL_{upper}.npz", folder / f"SMPL_{upper}.pkl"):
        if cand.is_file():
            return cand
    if folder.is_dir():
        prefix = f"basicmodel_{_GENDER_CODES[gender]}_lbs_10_207_0_v1."
        official = sorted(
            p
            for p in folder.iterdir()
            if p.suffix.lower() == ".pkl" and p.name.lower().startswith(prefix)
        )
        if official:
            return official[-1]  # the newest version
    return None


def _find_model_file(folder: Path, gender: str) -> Path:
    """:func:`find_smpl_model`, else the canonical ``SMPL_<GENDER>.pkl`` path (for the message)."""
    return find_smpl_model(folder, gender) or folder / f"SMPL_{gender.upper()}.pkl"


# --------------------------------------------------------------------------------------------
# Restricted unpickler
# --------------------------------------------------------------------------------------------


class _ChumpyStub:
    """Stand-in for any chumpy class; keeps the pickled state (the value is ``state['x']``)."""

    _chumpy_class = "chumpy"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def to_array(self, key: str) -> np.ndarray:
        state = self._state
        if isinstance(state, dict) and "x" in state:
            return _to_array(state["x"], key)
        raise SmplModelError(
            f"array {key!r} is a {self._chumpy_class} object without a stored value ('x'); "
            "convert the file with chumpy once or use a plain-numpy SMPL file"
        )


class _SparseStub:
    """Stand-in for a pickled scipy.sparse matrix; converted to a dense array."""

    _sparse_format = "csc"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._state: Any = None

    def __setstate__(self, state: Any) -> None:
        self._state = state

    def to_array(self, key: str) -> np.ndarray:
        st = self._state if isinstance(self._state, dict) else {}
        try:
            shape = tuple(int(v) for v in st.get("_shape", st.get("shape")))
            data = np.asarray(st["data"], dtype=np.float64)
            fmt = self._sparse_format
            if fmt in ("csc", "csr"):
                indices = np.asarray(st["indices"], dtype=np.int64)
                indptr = np.asarray(st["indptr"], dtype=np.int64)
                major, minor = (shape[1], shape[0]) if fmt == "csc" else shape
                if indptr.shape != (major + 1,) or indptr[-1] > len(indices):
                    raise ValueError("inconsistent indptr")
                rows_major = np.repeat(np.arange(major), np.diff(indptr))
                dense_t = np.zeros((major, minor), dtype=np.float64)
                np.add.at(dense_t, (rows_major, indices[: indptr[-1]]), data[: indptr[-1]])
                return dense_t.T.copy() if fmt == "csc" else dense_t
            if fmt == "coo":
                if "coords" in st:
                    row, col = (np.asarray(c, dtype=np.int64) for c in st["coords"])
                else:
                    row = np.asarray(st["row"], dtype=np.int64)
                    col = np.asarray(st["col"], dtype=np.int64)
                dense = np.zeros(shape, dtype=np.float64)
                np.add.at(dense, (row, col), data)
                return dense
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise SmplModelError(
                f"array {key!r}: malformed scipy.sparse {self._sparse_format} matrix ({exc})"
            ) from None
        raise SmplModelError(f"array {key!r}: unsupported sparse format {self._sparse_format}")


def _make_chumpy_stub(qualname: str) -> type:
    return type(f"ChumpyStub[{qualname}]", (_ChumpyStub,), {"_chumpy_class": qualname})


def _make_sparse_stub(fmt: str) -> type:
    return type(f"SparseStub[{fmt}]", (_SparseStub,), {"_sparse_format": fmt})


def _safe_codecs_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as Python 3 pickles use it for bytes, limited to text encodings."""
    if encoding.lower().replace("_", "-") not in (
        "latin1",
        "latin-1",
        "iso-8859-1",
        "utf-8",
        "utf8",
    ):
        raise UnsafePickleError(f"pickle asks for codec {encoding!r}; refused")
    return obj.encode(encoding, errors)


_SPARSE_FORMATS = {
    "csc_matrix": "csc",
    "csr_matrix": "csr",
    "coo_matrix": "coo",
    "csc_array": "csc",
    "csr_array": "csr",
    "coo_array": "coo",
}
_SAFE_BUILTINS = {
    "object",
    "set",
    "frozenset",
    "complex",
    "slice",
    "bytearray",
    "list",
    "dict",
    "tuple",
}


def _numpy_global(name: str) -> Any:
    """numpy's array-reconstruction helpers, without importing the deprecated ``numpy.core``."""
    if name in ("ndarray", "dtype"):
        return getattr(np, name)
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    if name in ("_reconstruct", "scalar"):
        return getattr(multiarray, name)
    raise KeyError(name)


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that allows only numpy arrays, chumpy stubs and sparse-matrix stubs."""

    def find_class(self, module: str, name: str) -> Any:
        top = module.split(".")[0]
        if top == "chumpy":
            return _make_chumpy_stub(f"{module}.{name}")
        if top == "scipy" and module.startswith("scipy.sparse") and name in _SPARSE_FORMATS:
            return _make_sparse_stub(_SPARSE_FORMATS[name])
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            try:
                return _numpy_global(name)
            except KeyError:
                pass
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return getattr(__import__("builtins"), name)
        if module in ("_codecs", "codecs") and name == "encode":
            return _safe_codecs_encode
        if module in ("copyreg", "copy_reg") and name == "_reconstructor":
            import copyreg

            return copyreg._reconstructor  # type: ignore[attr-defined]
        raise UnsafePickleError(
            f"the pickle references {module}.{name}, which is not allowed in an SMPL model file "
            "(only numpy arrays, chumpy arrays and scipy.sparse matrices are read; nothing is "
            "executed)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("the pickle uses persistent ids; not an SMPL model file")


def _to_array(value: Any, key: str) -> np.ndarray:
    if isinstance(value, (_ChumpyStub, _SparseStub)):
        return value.to_array(key)
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise SmplModelError(f"array {key!r} holds Python objects, not numbers")
        return value
    raise SmplModelError(f"entry {key!r} is a {type(value).__name__}, not an array")


def load_smpl_pickle(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read an SMPL model pickle (official Python-2 file or a plain one) without chumpy.

    Parameters
    ----------
    path : the ``.pkl`` file.

    Returns
    -------
    dict of every array entry, name -> numpy array (chumpy objects become their values,
    scipy.sparse matrices become dense float64 arrays). Non-array entries (strings such as
    ``bs_type``, the ``pose_training_info`` dict) are dropped.

    Raises
    ------
    UnsafePickleError : the file references any other global (nothing of it is executed).
    SmplModelError : unreadable / truncated file, or not a dict.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            obj = _RestrictedUnpickler(fh, encoding="latin1").load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{path}: {exc}") from None
    except SmplModelError:
        raise
    except FileNotFoundError:
        raise SmplModelError(missing_file_message("model", path)) from None
    except OSError as exc:
        raise SmplModelError(f"cannot read SMPL model file {path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a damaged file
        raise SmplModelError(
            f"SMPL model file {path} is damaged or not a pickle ({type(exc).__name__}: {exc}); "
            "download it again"
        ) from None
    if not isinstance(obj, dict):
        raise SmplModelError(
            f"SMPL model file {path} holds a {type(obj).__name__}, not the dict of arrays of "
            "an SMPL model"
        )
    out: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if isinstance(value, (_ChumpyStub, _SparseStub, np.ndarray)):
            try:
                out[str(key)] = _to_array(value, str(key))
            except SmplModelError as exc:
                if str(key) in SMPL_ARRAY_SHAPES:
                    raise SmplModelError(f"{path}: {exc}") from None
                log.debug("skipping %s in %s: %s", key, path, exc)
    return out


# --------------------------------------------------------------------------------------------
# Validation and loading
# --------------------------------------------------------------------------------------------


def _shape_ok(shape: tuple[int, ...], want: tuple[int, ...]) -> bool:
    if len(shape) != len(want):
        return False
    for got, exp in zip(shape, want, strict=True):
        if exp == -1:
            if got < SMPL_NUM_BETAS:
                return False
        elif got != exp:
            return False
    return True


def _want_text(want: tuple[int, ...]) -> str:
    return "(" + ", ".join(f">={SMPL_NUM_BETAS}" if w == -1 else str(w) for w in want) + ")"


def validate_smpl_arrays(arrays: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> None:
    """Check every array the body model uses; :class:`SmplModelError` names file and array."""
    for key, want in SMPL_ARRAY_SHAPES.items():
        if key not in arrays:
            raise SmplModelError(f"SMPL model file {path} has no array {key!r}")
        arr = np.asarray(arrays[key])
        if not np.issubdtype(arr.dtype, np.number):
            raise SmplModelError(
                f"SMPL model file {path}: array {key!r} has dtype {arr.dtype}, not numbers"
            )
        if not _shape_ok(arr.shape, want):
            raise SmplModelError(
                f"SMPL model file {path}: array {key!r} has shape {arr.shape}, "
                f"expected {_want_text(want)}"
            )
        if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
            raise SmplModelError(f"SMPL model file {path}: array {key!r} contains NaN or inf")
    faces = np.asarray(arrays["f"])
    if faces.min() < 0 or faces.max() >= SMPL_NUM_VERTICES:
        raise SmplModelError(
            f"SMPL model file {path}: array 'f' has vertex ids outside 0..{SMPL_NUM_VERTICES - 1}"
        )
    parents = np.asarray(arrays["kintree_table"])[0, 1:]
    if (parents < 0).any() or (parents >= np.arange(1, SMPL_NUM_JOINTS)).any():
        raise SmplModelError(
            f"SMPL model file {path}: array 'kintree_table' is not an SMPL kinematic tree "
            "(each joint's parent must come before it)"
        )


def load_smpl_model(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Read and validate an SMPL model file (``.pkl`` via :func:`load_smpl_pickle`, or a
    pickle-free ``.npz`` as written by :func:`save_clean_smpl`)."""
    path = Path(path)
    if not path.is_file():
        raise SmplModelError(missing_file_message("model", path))
    if path.suffix.lower() == ".npz":
        arrays = _load_npz(path, "SMPL model file")
    else:
        arrays = load_smpl_pickle(path)
    validate_smpl_arrays(arrays, path)
    return arrays


def save_clean_smpl(arrays: Mapping[str, np.ndarray], path: str | os.PathLike[str]) -> Path:
    """Write the body-model arrays to a pickle-free ``.npz`` atomically (:mod:`pare_studio.atomic`;
    :class:`~pare_studio.errors.OutputError` when it cannot be written).

    Only the arrays of :data:`SMPL_ARRAY_SHAPES` (plus ``J`` when present) are kept;
    ``shapedirs`` keeps all its components. Returns the written path.
    """
    path = Path(path)
    validate_smpl_arrays(arrays, path)
    keep = {k: np.asarray(arrays[k]) for k in (*SMPL_ARRAY_SHAPES, "J") if k in arrays}
    return write_npz_atomic(path, keep)


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise SmplModelError(f"{what} {path} not found") from None
    except Exception as exc:  # noqa: BLE001 - zip / format / object-array errors
        raise SmplModelError(
            f"{what} {path} is damaged or not a plain numpy .npz ({type(exc).__name__}: {exc})"
        ) from None


def _load_npy(path: Path, name: str) -> np.ndarray:
    if not path.is_file():
        raise SmplModelError(missing_file_message(name, path))
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise SmplModelError(
            f"{path} is damaged or not a plain numpy .npy ({type(exc).__name__}: {exc}); "
            f"{_DATA_HINT}"
        ) from None


def _check_regressor(arr: np.ndarray, rows: int, path: Path) -> np.ndarray:
    if arr.shape != (rows, SMPL_NUM_VERTICES) or not np.issubdtype(arr.dtype, np.number):
        raise SmplModelError(
            f"{path}: joint regressor has shape {arr.shape} ({arr.dtype}), "
            f"expected ({rows}, {SMPL_NUM_VERTICES}) numbers"
        )
    if not np.isfinite(arr).all():
        raise SmplModelError(f"{path}: joint regressor contains NaN or inf")
    return arr


def load_j_regressor_extra(path: str | os.PathLike[str]) -> np.ndarray:
    """``J_regressor_extra.npy``: (9, 6890) float64 regressor of the 9 extra PARE joints."""
    path = Path(path)
    return _check_regressor(_load_npy(path, "j_regressor_extra"), 9, path)


def load_j_regressor_h36m(path: str | os.PathLike[str]) -> np.ndarray:
    """``J_regressor_h36m.npy``: (17, 6890) float64 regressor of the 17 Human3.6M joints."""
    path = Path(path)
    return _check_regressor(_load_npy(path, "j_regressor_h36m"), 17, path)


def load_mean_params(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """``smpl_mean_params.npz``: ``pose`` (144,) 6-D mean pose, ``shape`` (10,), ``cam`` (3,)."""
    path = Path(path)
    if not path.is_file():
        raise SmplModelError(missing_file_message("mean_params", path))
    arrays = _load_npz(path, "mean-parameter file")
    for key, shape in (("pose", (144,)), ("shape", (SMPL_NUM_BETAS,)), ("cam", (3,))):
        if key not in arrays:
            raise SmplModelError(f"mean-parameter file {path} has no array {key!r}")
        if arrays[key].shape != shape or not np.issubdtype(arrays[key].dtype, np.number):
            raise SmplModelError(
                f"mean-parameter file {path}: array {key!r} has shape {arrays[key].shape}, "
                f"expected {shape}"
            )
    return arrays
