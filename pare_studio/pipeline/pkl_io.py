"""Write and read ``pare_output.pkl`` (spec §5.6) safely.

Writing
    :func:`save_pare_output` stores ``VideoResult.to_reference_dict()`` with ``joblib.dump``, the
    reference's exact layout and dtypes, into a temp file in the target folder, fsyncs it and
    ``os.replace``s it over the target. A crash, a full disk or a Ctrl+C never leaves a partial
    file and never replaces a good one. The arrays are written without joblib ≥ 1.2's alignment
    padding and with pickle protocol 4, so the reference's own environment (Python 3.7,
    joblib 0.15) reads our files too; modern joblib reads them as well.

Reading
    :func:`read_pickle` is a *restricted* unpickler: it understands joblib files (plain and
    zlib/gzip/bz2/xz/lzma-compressed) and plain pickles, and refuses every global except numpy's
    array reconstruction, joblib's array wrapper and builtin containers
    (:class:`~pare_studio.errors.UnsafePickleError` names the refused global). So a pkl from a
    stranger cannot run code: a ``__reduce__`` payload never gets the callable it needs.

    joblib stores an array as a pickled ``joblib.numpy_pickle.NumpyArrayWrapper`` (attributes
    ``subclass``, ``shape``, ``order``, ``dtype``, ``allow_mmap`` and, since joblib 1.2,
    ``numpy_array_alignment_bytes``) immediately followed by the raw array bytes (after one padding
    length byte and that many padding bytes when the alignment attribute is set). We never
    instantiate joblib's class: a stand-in records the attributes, they are checked, and the bytes
    are read here. Object arrays are refused. This format has been stable since joblib 0.10, so the
    reference's files (joblib 0.15, protocol 3, no alignment attribute) load too.

    :func:`load_pare_output` then checks the layout (keys, shapes, dtypes, frame ids) and returns a
    :class:`~pare_studio.results.VideoResult`.
"""

from __future__ import annotations

import _compat_pickle
import bz2
import contextlib
import gzip
import importlib
import io
import lzma
import os
import pickle
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from pare_studio.atomic import atomic_output
from pare_studio.errors import ResultFileError, UnsafePickleError
from pare_studio.results import TrackResult, VideoResult

#: Pickle protocol of the files we write (Python >= 3.4 reads it; the reference ran 3.7).
WRITE_PROTOCOL = 4

#: Expected trailing shape and dtype of every array of a track (``n`` frames lead).
TRACK_LAYOUT: dict[str, tuple[tuple[int, ...], np.dtype]] = {
    "pred_cam": ((3,), np.dtype(np.float32)),
    "orig_cam": ((4,), np.dtype(np.float64)),
    "verts": ((6890, 3), np.dtype(np.float32)),
    "pose": ((24, 3, 3), np.dtype(np.float32)),
    "betas": ((10,), np.dtype(np.float32)),
    "joints3d": ((49, 3), np.dtype(np.float32)),
    "smpl_joints2d": ((49, 2), np.dtype(np.float32)),
    "bboxes": ((4,), np.dtype(np.float64)),
    "frame_ids": ((), np.dtype(np.int64)),
}

_READ_CHUNK = 1 << 24


# --------------------------------------------------------------------------------------------
# Writing


class _NoTellWriter:
    """A write-only view of a file without ``tell``.

    joblib ≥ 1.2 pads arrays for memory mapping only when the file can ``tell``; the padding is a
    format change that joblib < 1.2 (the reference's 0.15) cannot read. Hiding ``tell`` keeps the
    file in the format every joblib since 0.10 reads.
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def write(self, data: Any) -> int:
        return self._raw.write(data)

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


def save_pare_output(path: str | os.PathLike[str], result: VideoResult) -> Path:
    """Write ``result`` as a reference-layout ``pare_output.pkl``, atomically.

    Parameters
    ----------
    path : target file; its folder is created when missing.
    result : the tracks to store (``result.to_reference_dict()``).

    Returns
    -------
    The path written.

    Raises
    ------
    OutputError
        The folder cannot be created or written (nothing is left behind and an existing file at
        ``path`` is untouched).
    ResultFileError
        ``result`` does not have the reference layout (a bug upstream; nothing is written).
    """
    payload = result.to_reference_dict()
    validate_reference_dict(payload, str(path))  # never write a file we would refuse to read
    return dump_joblib_atomic(path, payload)


def dump_joblib_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    """``joblib.dump(payload)`` to ``path`` through a temp file + ``os.replace`` (see
    :func:`save_pare_output`; the same format and guarantees for any dict of arrays).

    Raises
    ------
    OutputError
        The folder cannot be created or written; nothing is left behind.
    """
    import joblib

    with atomic_output(path, "wb") as fh:
        joblib.dump(payload, _NoTellWriter(fh), protocol=WRITE_PROTOCOL)
    return Path(path)


# --------------------------------------------------------------------------------------------
# Restricted reading


class _ArrayWrapperStub:
    """Stand-in for ``joblib.numpy_pickle.NumpyArrayWrapper``: records attributes, runs nothing."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise ResultFileError("malformed joblib array record (state is not a dict)")
        self.state = dict(state)


def _numpy_attr(modules: tuple[str, ...], name: str) -> Callable[[], Any]:
    def resolve() -> Any:
        for mod in modules:
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        raise ResultFileError(f"this numpy has no {modules[0]}.{name}")

    return resolve


_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")
_NUMERIC = ("numpy._core.numeric", "numpy.core.numeric")

#: (module, name) → resolver of the only globals a results file may reference.
_ALLOWED: dict[tuple[str, str], Callable[[], Any]] = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): lambda: _ArrayWrapperStub,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_attr(_MULTIARRAY, "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): _numpy_attr(_MULTIARRAY, "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): _numpy_attr(_MULTIARRAY, "scalar"),
    ("numpy._core.multiarray", "scalar"): _numpy_attr(_MULTIARRAY, "scalar"),
    ("numpy.core.numeric", "_frombuffer"): _numpy_attr(_NUMERIC, "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): _numpy_attr(_NUMERIC, "_frombuffer"),
    ("_codecs", "encode"): lambda: importlib.import_module("_codecs").encode,
    ("collections", "OrderedDict"): lambda: OrderedDict,
    ("builtins", "dict"): lambda: dict,
    ("builtins", "list"): lambda: list,
    ("builtins", "tuple"): lambda: tuple,
    ("builtins", "set"): lambda: set,
    ("builtins", "frozenset"): lambda: frozenset,
    ("builtins", "bytearray"): lambda: bytearray,
}


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]
    """Pure-Python unpickler with an allow-list of globals and joblib's array records."""

    dispatch = pickle._Unpickler.dispatch.copy()  # type: ignore[attr-defined]

    def __init__(self, fh: IO[bytes], label: str, size: int | None) -> None:
        super().__init__(fh)
        self._fh = fh
        self._label = label
        self._size = size  # bytes of an uncompressed file, None when decompressing

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        resolve = _ALLOWED.get((module, name))
        if resolve is None:
            raise UnsafePickleError(
                f"{self._label} refers to the Python global '{module}.{name}', which a results "
                "file never contains; refusing to load it (loading it could run code). Only open "
                "pkl files from people you trust with the tools that wrote them."
            )
        return resolve()

    def persistent_load(self, pid: Any) -> Any:
        raise ResultFileError(f"{self._label} uses pickle persistent ids; not a results file")

    def load_build(self) -> None:
        super().load_build()
        if isinstance(self.stack[-1], _ArrayWrapperStub):
            stub = self.stack.pop()
            self.stack.append(self._read_wrapped_array(stub.state))

    dispatch[pickle.BUILD[0]] = load_build

    # joblib array bytes ------------------------------------------------------------------

    def _read_exact(self, n: int, what: str) -> bytes:
        data = self._fh.read(n)
        if len(data) != n:
            raise ResultFileError(f"{self._label} is truncated (it ends inside {what})")
        return data

    def _read_wrapped_array(self, state: dict[str, Any]) -> np.ndarray:
        subclass = state.get("subclass", np.ndarray)
        shape = state.get("shape")
        order = state.get("order", "C")
        dtype = state.get("dtype")
        if subclass is not np.ndarray:
            raise ResultFileError(f"{self._label}: array of type {subclass!r} (only plain arrays)")
        if (
            not isinstance(shape, tuple)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
            or order not in ("C", "F")
            or not isinstance(dtype, np.dtype)
        ):
            raise ResultFileError(f"{self._label}: malformed joblib array record")
        if dtype.hasobject or dtype.itemsize == 0:
            raise ResultFileError(
                f"{self._label}: an array of Python objects ({dtype}); results files hold numbers"
            )
        align = state.get("numpy_array_alignment_bytes")
        if align is not None:
            pad = self._read_exact(1, "an array's padding")[0]
            if pad:
                self._read_exact(pad, "an array's padding")
        count = 1
        for s in shape:
            count *= s
        nbytes = count * dtype.itemsize
        self._check_fits(nbytes)
        flat = np.empty(count, dtype=dtype)
        view = memoryview(flat).cast("B") if nbytes else memoryview(b"")
        got = 0
        while got < nbytes:
            chunk = self._fh.read(min(_READ_CHUNK, nbytes - got))
            if not chunk:
                raise ResultFileError(f"{self._label} is truncated (it ends inside an array)")
            view[got : got + len(chunk)] = chunk
            got += len(chunk)
        array = flat.reshape(shape[::-1]).T if order == "F" else flat.reshape(shape)
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
        return array

    def _check_fits(self, nbytes: int) -> None:
        """Refuse a record claiming more bytes than an uncompressed file has left."""
        if self._size is None:
            return
        remaining = self._size - self._fh.tell()
        if nbytes > remaining:
            raise ResultFileError(
                f"{self._label} is truncated (an array needs {nbytes} bytes, {remaining} remain)"
            )


def _open_decompressed(fh: io.BufferedReader) -> IO[bytes]:
    """The file itself, or a decompressing reader for joblib's compressed formats."""
    head = fh.peek(8)[:8]
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(fh, mode="rb")
    if head.startswith(b"\xfd7zXZ"):
        return lzma.LZMAFile(fh, mode="rb", format=lzma.FORMAT_XZ)
    if head.startswith(b"\x5d\x00"):
        return lzma.LZMAFile(fh, mode="rb", format=lzma.FORMAT_ALONE)
    if head.startswith(b"\x78"):
        from joblib.compressor import BinaryZlibFile

        return BinaryZlibFile(fh, mode="rb")
    if head.startswith(b"\x04\x22\x4d\x18"):
        raise ResultFileError("the file is lz4-compressed; save it uncompressed")
    if head.startswith(b"ZF"):
        raise ResultFileError("the file was written by joblib < 0.9.3; re-save it")
    return fh


def read_pickle(path: str | os.PathLike[str]) -> Any:
    """Unpickle a joblib file or a plain pickle without running code.

    Parameters
    ----------
    path : the file.

    Returns
    -------
    The stored object, built only from numbers, strings, containers and numpy arrays.

    Raises
    ------
    UnsafePickleError
        The file references any other Python global (the message names it).
    ResultFileError
        Missing, truncated, corrupt or not a pickle.
    """
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise ResultFileError(f"{label} does not exist")
    if path.is_dir():
        raise ResultFileError(f"{label} is a folder, not a pkl file")
    try:
        with open(path, "rb") as raw:
            size = os.fstat(raw.fileno()).st_size
            if size == 0:
                raise ResultFileError(f"{label} is empty")
            fh = _open_decompressed(raw)
            with fh if fh is not raw else contextlib.nullcontext(raw):
                return _RestrictedUnpickler(fh, label, size if fh is raw else None).load()
    except (UnsafePickleError, ResultFileError):
        raise
    except MemoryError as exc:
        raise ResultFileError(f"{label} asks for more memory than there is; corrupt?") from exc
    except EOFError as exc:
        raise ResultFileError(f"{label} is truncated (it ends before the pickle does)") from exc
    except OSError as exc:
        raise ResultFileError(f"cannot read {label}: {exc.strerror or exc}") from exc
    except Exception as exc:  # pickle raises many types on garbage input
        raise ResultFileError(
            f"{label} is corrupt or not a pickle ({type(exc).__name__}: {exc})"
        ) from exc


# --------------------------------------------------------------------------------------------
# Layout


def _as_track_id(key: Any, label: str) -> int:
    if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
        raise ResultFileError(
            f"{label}: top-level key {key!r} is not a track id; a pare_output.pkl maps integer "
            "track ids to per-track dicts"
        )
    return int(key)


def validate_reference_dict(obj: Any, label: str = "pare_output.pkl") -> dict[int, dict[str, Any]]:
    """Check the reference layout (spec §5.6) and return it with canonical dtypes.

    Parameters
    ----------
    obj : what the pkl holds, ``{track_id: {key: array}}``.
    label : file name for messages.

    Returns
    -------
    ``{track_id: {key: array}}`` with float arrays cast to the reference dtypes
    (:data:`TRACK_LAYOUT`), ``frame_ids`` int64 and ``joints2d`` left as stored (None or an
    ``(n, K, 3)`` array).

    Raises
    ------
    ResultFileError
        A missing key, a wrong shape or kind, frame counts that differ between keys of a track,
        or frame ids that are not strictly increasing and non-negative.
    """
    if not isinstance(obj, dict):
        raise ResultFileError(
            f"{label} holds a {type(obj).__name__}, not the dict of tracks of a pare_output.pkl"
        )
    out: dict[int, dict[str, Any]] = {}
    for key in obj:
        tid = _as_track_id(key, label)
        track = obj[key]
        where = f"{label}, track {tid}"
        if not isinstance(track, dict):
            raise ResultFileError(f"{where}: holds a {type(track).__name__}, not a dict of arrays")
        missing = [k for k in TrackResult.REFERENCE_KEYS if k not in track]
        if missing:
            raise ResultFileError(f"{where}: missing key(s) {', '.join(missing)}")
        n = None
        clean: dict[str, Any] = {}
        for name, (tail, dtype) in TRACK_LAYOUT.items():
            arr = track[name]
            if not isinstance(arr, np.ndarray):
                raise ResultFileError(f"{where}: '{name}' is a {type(arr).__name__}, not an array")
            want_kind = "iu" if dtype.kind == "i" else "f"
            if arr.dtype.kind not in want_kind:
                raise ResultFileError(f"{where}: '{name}' has dtype {arr.dtype}, expected {dtype}")
            if arr.ndim != 1 + len(tail) or tuple(arr.shape[1:]) != tail:
                expect = "(n" + "".join(f", {s}" for s in tail) + ")"
                raise ResultFileError(
                    f"{where}: '{name}' has shape {tuple(arr.shape)}, expected {expect}"
                )
            if n is None:
                n = arr.shape[0]
            elif arr.shape[0] != n:
                raise ResultFileError(
                    f"{where}: '{name}' has {arr.shape[0]} frames, 'pred_cam' has {n}"
                )
            clean[name] = arr if arr.dtype == dtype else arr.astype(dtype)
        frames = clean["frame_ids"]
        if n and (frames.min() < 0 or np.any(np.diff(frames) <= 0)):
            raise ResultFileError(
                f"{where}: frame_ids must be non-negative and strictly increasing"
            )
        j2d = track["joints2d"]
        if j2d is not None:
            if not isinstance(j2d, np.ndarray) or j2d.ndim != 3 or j2d.shape[0] != n:
                raise ResultFileError(
                    f"{where}: 'joints2d' must be None or an (n, K, 3) array of keypoints"
                )
        clean["joints2d"] = j2d
        if tid in out:
            raise ResultFileError(f"{label}: track id {tid} appears twice")
        out[tid] = {k: clean[k] for k in TrackResult.REFERENCE_KEYS}
    return out


def load_pare_output(path: str | os.PathLike[str]) -> VideoResult:
    """Read a ``pare_output.pkl`` (ours or the reference's) safely.

    Parameters
    ----------
    path : the pkl file.

    Returns
    -------
    VideoResult with one TrackResult per track id, in ascending id order. The pkl does not store
    the video's size or fps: ``width``, ``height`` and ``fps`` are 0, ``n_frames`` is the last
    frame id + 1 and ``source`` is ''.

    Raises
    ------
    UnsafePickleError, ResultFileError
        See :func:`read_pickle` and :func:`validate_reference_dict`.
    """
    tracks = validate_reference_dict(read_pickle(path), str(path))
    result = VideoResult()
    last = -1
    for tid in sorted(tracks):
        tr = TrackResult.from_reference_dict(tid, tracks[tid])
        result.tracks[tid] = tr
        if len(tr):
            last = max(last, int(tr.frame_ids[-1]))
    result.n_frames = last + 1
    return result
