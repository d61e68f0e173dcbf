"""Readers for the reference's evaluation datasets (spec §6.2).

The reference reads SPIN-style npz files from ``data/dataset_extras`` and the images from
``data/dataset_folders/<dataset>``::

    DATA_DIR/dataset_extras/3dpw_all_test_with_mmpose.npz     ('3dpw-all')
    DATA_DIR/dataset_extras/3doh_test.npz                     ('3doh')
    DATA_DIR/dataset_folders/3dpw/imageFiles/<sequence>/image_00000.jpg
    DATA_DIR/dataset_folders/3doh/<imgname as stored in the npz>

Keys read: ``imgname`` (N,) str, ``center`` (N, 2) pixels, ``scale`` (N,) = bbox size / 200,
``pose`` (N, 72) axis-angle (``pose_0yaw_inverseyz`` instead when present), ``shape`` (N, 10)
betas, optional ``gender`` (N,) ('m' -> 0 male, anything else -> 1 female; -1 for every sample
when the key is absent, as the reference).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from pare_studio.analysis.pw3d_sequences import sequence_of
from pare_studio.errors import DatasetError

#: Dataset name -> npz file under ``DATA_DIR/dataset_extras`` (the reference's test files).
DATASET_FILES: dict[str, str] = {
    "3dpw-all": "3dpw_all_test_with_mmpose.npz",
    "3doh": "3doh_test.npz",
}

#: Dataset name -> image folder under ``DATA_DIR``.
DATASET_FOLDERS: dict[str, str] = {
    "3dpw-all": "dataset_folders/3dpw",
    "3doh": "dataset_folders/3doh",
}

#: Datasets whose ground truth may use the gendered SMPL models (``DATASET.USE_GENDER``).
GENDERED_DATASETS: frozenset[str] = frozenset({"3dpw", "3dpw-all"})

#: Sub-folder of ``DATA_DIR`` holding the npz files (the reference's DATASET_NPZ_PATH).
NPZ_SUBDIR = "dataset_extras"

_REQUIRED_KEYS = ("imgname", "center", "scale", "shape")


@dataclass(frozen=True)
class EvalDataset:
    """One evaluation dataset: per-sample crop boxes and SMPL ground truth, N samples.

    Attributes
    ----------
    name : '3dpw-all' or '3doh'.
    npz_path : the npz file it was read from.
    image_dir : folder the ``imgname`` paths are relative to.
    imgname : (N,) str, image path relative to ``image_dir``.
    center : (N, 2) float64, bbox centre in pixels.
    scale : (N,) float64, bbox size / 200.
    pose : (N, 72) float64, SMPL axis-angle pose (radians), joint 0 = global orientation.
    betas : (N, 10) float64, SMPL shape.
    gender : (N,) int32, 0 = male, 1 = female, -1 = unknown (no ``gender`` key).
    pose_key : the npz key the pose came from ('pose' or 'pose_0yaw_inverseyz').
    """

    name: str
    npz_path: Path
    image_dir: Path
    imgname: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    gender: np.ndarray
    pose_key: str = "pose"

    def __len__(self) -> int:
        return int(self.imgname.shape[0])

    @property
    def sequences(self) -> np.ndarray:
        """(N,) str: the second-to-last path component of each ``imgname``."""
        return np.array([sequence_of(n) for n in self.imgname], dtype=str)

    def image_path(self, index: int) -> Path:
        """Full path of sample ``index``'s image (``image_dir / imgname``)."""
        return self.image_dir / str(self.imgname[index])

    def head(self, n: int | None) -> EvalDataset:
        """The first ``n`` samples (all of them when ``n`` is None or larger than N)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"limit must be at least 1, got {n}")
        return self.select(np.arange(n))

    def select(self, indices: np.ndarray) -> EvalDataset:
        """The samples at ``indices`` (an int array or a boolean mask), in that order."""
        return replace(
            self,
            imgname=self.imgname[indices],
            center=self.center[indices],
            scale=self.scale[indices],
            pose=self.pose[indices],
            betas=self.betas[indices],
            gender=self.gender[indices],
        )

    def missing_images(self) -> list[Path]:
        """Image paths of the samples that do not exist as files (each path once, in order)."""
        missing: list[Path] = []
        seen: set[str] = set()
        for name in self.imgname:
            key = str(name)
            if key in seen:
                continue
            seen.add(key)
            path = self.image_dir / key
            if not path.is_file():
                missing.append(path)
        return missing

    def check_images(self) -> None:
        """Raise :class:`DatasetError` naming the first missing images, if any."""
        missing = self.missing_images()
        if missing:
            shown = ", ".join(str(p) for p in missing[:3])
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise DatasetError(
                f"dataset {self.name!r}: {len(missing)} image(s) listed in {self.npz_path} are "
                f"missing: {shown}{more}. Put the {self.name} images under {self.image_dir} "
                f"(imgname paths are relative to it)"
            )


def parse_dataset_names(value: str | Sequence[str], sep: str = ",") -> list[str]:
    """Dataset names from ``'3doh,3dpw-all'`` (``--datasets``), ``'3doh_3dpw-all'`` (VAL_DS, sep
    ``'_'``) or a list; validated, duplicates dropped, order kept.

    Raises :class:`DatasetError` for an unknown name; ``'3dpw'`` gets a pointer to ``'3dpw-all'``
    (the reference has no '3dpw' test file either).
    """
    if isinstance(value, str):
        raw = [v.strip() for v in value.split(sep)]
    else:
        raw = [str(v).strip() for v in value]
    names: list[str] = []
    for name in raw:
        if not name:
            continue
        check_dataset_name(name)
        if name not in names:
            names.append(name)
    if not names:
        raise DatasetError(f"no evaluation dataset given; use one of {', '.join(DATASET_FILES)}")
    return names


def check_dataset_name(name: str) -> None:
    """Raise :class:`DatasetError` unless ``name`` is an evaluation dataset we can read."""
    if name in DATASET_FILES:
        return
    if name == "3dpw":
        raise DatasetError(
            "dataset '3dpw' has no test file in the reference's evaluation (its 3DPW test numbers "
            "come from '3dpw-all', filtered to the 24 test sequences): use '3dpw-all', e.g. "
            "--datasets 3doh,3dpw-all or --opts DATASET.VAL_DS 3doh_3dpw-all"
        )
    raise DatasetError(
        f"unknown evaluation dataset {name!r}: use one of {', '.join(DATASET_FILES)}"
    )


def dataset_paths(name: str, data_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(npz file, image folder) of dataset ``name`` under ``data_dir``."""
    check_dataset_name(name)
    root = Path(data_dir).expanduser()
    return root / NPZ_SUBDIR / DATASET_FILES[name], root / DATASET_FOLDERS[name]


def _text_array(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "S":
        return np.array([s.decode("utf-8", "replace") for s in arr], dtype=str)
    return np.array([str(s) for s in arr], dtype=str)


def _gender_codes(arr: np.ndarray) -> np.ndarray:
    """'m' -> 0 (male), anything else -> 1 (female), as the reference (bytes are decoded)."""
    return np.array([0 if g == "m" else 1 for g in _text_array(arr)], dtype=np.int32)


def load_dataset(
    name: str, data_dir: str | os.PathLike[str] = "data", check_images: bool = False
) -> EvalDataset:
    """Read dataset ``name`` ('3dpw-all' or '3doh') from the reference's ``data/`` layout.

    Parameters
    ----------
    name : dataset name.
    data_dir : the reference's ``data`` folder (holding ``dataset_extras`` and ``dataset_folders``).
    check_images : also verify now that every listed image exists.

    Raises
    ------
    DatasetError : unknown name, missing or unreadable npz, missing key, arrays of the wrong
        shape, or (with ``check_images``) missing images; the message names the file / key.
    """
    npz_path, image_dir = dataset_paths(name, data_dir)
    if not npz_path.is_file():
        raise DatasetError(
            f"dataset {name!r}: {npz_path} not found. Put the reference's "
            f"{DATASET_FILES[name]} under {npz_path.parent} (--data-dir is the folder holding "
            f"dataset_extras/ and dataset_folders/, default ./data)"
        )
    try:
        z = np.load(npz_path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - zip / format errors
        raise DatasetError(
            f"dataset {name!r}: {npz_path} is not a readable npz ({type(exc).__name__}: {exc})"
        ) from None
    with z:
        files = set(z.files)
        pose_key = "pose_0yaw_inverseyz" if "pose_0yaw_inverseyz" in files else "pose"
        missing = [k for k in (*_REQUIRED_KEYS, pose_key) if k not in files]
        if missing:
            raise DatasetError(
                f"dataset {name!r}: {npz_path} has no key(s) {', '.join(map(repr, missing))} "
                f"(it has: {', '.join(sorted(files)) or 'nothing'}); evaluation needs imgname, "
                "center, scale, pose (or pose_0yaw_inverseyz) and shape"
            )
        try:
            arrays = {k: z[k] for k in (*_REQUIRED_KEYS, pose_key)}
            gender_raw = z["gender"] if "gender" in files else None
        except Exception as exc:  # noqa: BLE001 - object arrays, damaged members
            raise DatasetError(
                f"dataset {name!r}: {npz_path} could not be read ({type(exc).__name__}: {exc})"
            ) from None

    imgname = arrays["imgname"]
    if imgname.ndim != 1 or imgname.dtype.kind not in "US":
        raise DatasetError(
            f"dataset {name!r}: {npz_path} key 'imgname' must be a 1-D array of strings, "
            f"got {imgname.dtype} of shape {imgname.shape}"
        )
    names = _text_array(imgname)
    n = imgname.shape[0]
    expected = {
        "center": (n, 2),
        "scale": (n,),
        pose_key: (n, 72),
        "shape": (n, 10),
    }
    for key, shape in expected.items():
        arr = arrays[key]
        if key == "scale" and arr.shape == (n, 1):
            arr = arr[:, 0]
            arrays[key] = arr
        if arr.shape != shape or not np.issubdtype(arr.dtype, np.number):
            raise DatasetError(
                f"dataset {name!r}: {npz_path} key {key!r} has shape {arr.shape} ({arr.dtype}), "
                f"expected {shape} numbers (N = {n} from 'imgname')"
            )
        if not np.isfinite(arr).all():
            raise DatasetError(f"dataset {name!r}: {npz_path} key {key!r} contains NaN or inf")
    bad = np.flatnonzero(arrays["scale"] <= 0)
    if bad.size:
        raise DatasetError(
            f"dataset {name!r}: {npz_path} key 'scale' is not positive for {bad.size} sample(s), "
            f"first {names[bad[0]]!r}"
        )
    if gender_raw is None:
        gender = -np.ones(n, dtype=np.int32)
    else:
        if gender_raw.shape != (n,):
            raise DatasetError(
                f"dataset {name!r}: {npz_path} key 'gender' has shape {gender_raw.shape}, "
                f"expected ({n},)"
            )
        gender = _gender_codes(gender_raw)

    ds = EvalDataset(
        name=name,
        npz_path=npz_path,
        image_dir=image_dir,
        imgname=names,
        center=arrays["center"].astype(np.float64),
        scale=arrays["scale"].astype(np.float64),
        pose=arrays[pose_key].astype(np.float64),
        betas=arrays["shape"].astype(np.float64),
        gender=gender,
        pose_key=pose_key,
    )
    if check_images:
        ds.check_images()
    return ds
