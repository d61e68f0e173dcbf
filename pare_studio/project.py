"""PARE Studio project files (``.pareproj``): save and reopen a session, without pickle.

Format (version 1)
    A zip archive holding

    ``project.json``
        UTF-8 JSON object::

            {
              "format": "pare-studio-project",
              "version": 1,
              "written_by": "PARE Studio 0.1.0",
              "saved": "2025-01-31T12:00:00Z",
              "video": {"path": "/abs/clip.mp4", "relative_path": "clip.mp4",
                        "n_frames": 300, "width": 1280, "height": 720, "fps": 30.0},
              "results": {"path": "/abs/pare_output.pkl"},
              "smoothing": {"enabled": true, "method": "rotation",
                            "min_cutoff": 0.004, "beta": 1.0},
              "next_track_id": 4,
              "tracks": [{"id": 1, "name": "Alice", "export": true, "frames": 120,
                          "joints2d": false}, ...],
              "settings": {...}
            }

        ``video.relative_path`` is the video relative to the project's folder (null when on
        another drive); on opening, ``path`` is used when it exists, else ``relative_path`` —
        so a project moved together with its video still finds it. ``name`` is null for a track
        that was not renamed. ``settings`` is a free JSON object the window keeps its view
        settings in; it is stored and returned unchanged.

    ``arrays/track_<id>/<key>.npy``
        One numpy ``.npy`` per array of each track, in ``pare_output.pkl``'s layout (spec §5.6:
        ``pred_cam``, ``orig_cam``, ``verts``, ``pose``, ``betas``, ``joints3d``,
        ``smpl_joints2d``, ``bboxes``, ``frame_ids``, and ``joints2d`` when not None) — the
        tracks *after* the user's edits. They are read with ``allow_pickle=False``: a project
        file cannot run code.

    Arrays are stored uncompressed (float meshes barely compress); the JSON is deflated.

Versions and damage
    A file of another format version, a truncated or corrupted archive, a missing or malformed
    ``project.json``, a missing array or one of the wrong shape raises
    :class:`~pare_studio.errors.ResultFileError` with a message that says which and what to do;
    opening never crashes and never executes anything from the file.

Writing is atomic (temp file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pare_studio import __version__
from pare_studio.atomic import atomic_output
from pare_studio.edits import EditState
from pare_studio.errors import ResultFileError
from pare_studio.pipeline.smoothing import (
    DEFAULT_BETA,
    DEFAULT_MIN_CUTOFF,
    SMOOTHING_METHODS,
)
from pare_studio.results import TrackResult

FORMAT_NAME = "pare-studio-project"
#: The format version this module writes.
FORMAT_VERSION = 1
#: Oldest format version this module reads.
MIN_FORMAT_VERSION = 1
PROJECT_SUFFIX = ".pareproj"
PROJECT_JSON = "project.json"
_MAX_JSON_BYTES = 64 << 20


@dataclass(frozen=True)
class SmoothingSettings:
    """The smoothing the session applies (``pipeline.smoothing``; exports use it too).

    enabled : smooth at all. method : "rotation" (on rotations, orthonormal) or "reference".
    min_cutoff, beta : One-Euro parameters (>= 0).
    """

    enabled: bool = False
    method: str = "rotation"
    min_cutoff: float = DEFAULT_MIN_CUTOFF
    beta: float = DEFAULT_BETA

    def __post_init__(self) -> None:
        if self.method not in SMOOTHING_METHODS:
            raise ValueError(
                f"smoothing method must be one of {', '.join(SMOOTHING_METHODS)}, "
                f"got {self.method!r}"
            )
        for name in ("min_cutoff", "beta"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"smoothing {name} must be a number >= 0, got {v!r}")


@dataclass(frozen=True)
class Project:
    """A saved session.

    state : the edited tracks, names, export choice and video geometry (``state.source`` is the
        video path). smoothing : the smoothing settings. results_path : the pkl the results
        came from ('' when they came from a run). settings : free JSON-compatible window
        settings, stored unchanged.
    """

    state: EditState
    smoothing: SmoothingSettings = SmoothingSettings()
    results_path: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def video_path(self) -> str:
        return self.state.source


# --------------------------------------------------------------------------------------------
# Saving


def _relative(path: str, folder: Path) -> str | None:
    if not path:
        return None
    try:
        return os.path.relpath(Path(path).absolute(), folder.absolute()).replace(os.sep, "/")
    except ValueError:  # another drive on Windows
        return None


def project_json(project: Project, folder: Path) -> dict[str, Any]:
    """The ``project.json`` object of ``project`` saved into ``folder``."""
    st = project.state
    video_path = str(Path(st.source).absolute()) if st.source else ""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "written_by": f"PARE Studio {__version__}",
        "saved": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "video": {
            "path": video_path,
            "relative_path": _relative(video_path, folder),
            "n_frames": int(st.n_frames),
            "width": int(st.width),
            "height": int(st.height),
            "fps": float(st.fps),
        },
        "results": {"path": str(project.results_path or "")},
        "smoothing": {
            "enabled": bool(project.smoothing.enabled),
            "method": project.smoothing.method,
            "min_cutoff": float(project.smoothing.min_cutoff),
            "beta": float(project.smoothing.beta),
        },
        "next_track_id": int(st.next_id),
        "tracks": [
            {
                "id": int(t),
                "name": st.names.get(t),
                "export": t in st.export,
                "frames": len(st.tracks[t]),
                "joints2d": st.tracks[t].joints2d is not None,
            }
            for t in st.tracks
        ],
        "settings": dict(project.settings),
    }


def save_project(path: str | os.PathLike[str], project: Project) -> Path:
    """Write ``project`` to ``path`` (a ``.pareproj`` zip, module docstring), atomically.

    Raises
    ------
    OutputError
        The folder cannot be written (an existing file at ``path`` is untouched).
    ValueError
        ``project.settings`` is not JSON-serialisable.
    """
    path = Path(path)
    doc = project_json(project, path.parent)
    try:
        text = json.dumps(doc, indent=2, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"project settings must be plain JSON values: {exc}") from exc
    with atomic_output(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(PROJECT_JSON, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)
        for tid, track in project.state.tracks.items():
            for key in TrackResult.REFERENCE_KEYS:
                arr = getattr(track, key)
                if arr is None:
                    continue
                arr = np.ascontiguousarray(arr)
                name = f"arrays/track_{int(tid)}/{key}.npy"
                with zf.open(name, "w", force_zip64=arr.nbytes > (1 << 30)) as out:
                    np.lib.format.write_array(out, arr, allow_pickle=False)
    return path


# --------------------------------------------------------------------------------------------
# Loading


class _Json:
    """Typed access to the JSON object with messages naming the field."""

    def __init__(self, label: str) -> None:
        self.label = label

    def err(self, msg: str) -> ResultFileError:
        return ResultFileError(f"project file {self.label}: {msg}")

    def get(
        self, obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str
    ) -> Any:
        if key not in obj:
            raise self.err(f"'{where}{key}' is missing; the file is damaged")
        value = obj[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.err(f"'{where}{key}' is {value!r}, expected {kinds[0].__name__}")
        if not isinstance(value, kinds):
            raise self.err(f"'{where}{key}' is {value!r}, expected {kinds[0].__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.err(f"'{where}{key}' is not a finite number")
        return value


def _read_json(zf: zipfile.ZipFile, label: str) -> dict[str, Any]:
    try:
        info = zf.getinfo(PROJECT_JSON)
    except KeyError:
        raise ResultFileError(
            f"{label} has no {PROJECT_JSON}; it is not a PARE Studio project (or it is damaged)"
        ) from None
    if info.file_size > _MAX_JSON_BYTES:
        raise ResultFileError(f"{label}: {PROJECT_JSON} is implausibly large; the file is damaged")
    try:
        doc = json.loads(zf.read(PROJECT_JSON).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultFileError(
            f"{label}: {PROJECT_JSON} is not valid JSON ({exc}); the file is damaged"
        ) from exc
    if not isinstance(doc, dict):
        raise ResultFileError(f"{label}: {PROJECT_JSON} is not a JSON object; the file is damaged")
    return doc


def _check_version(doc: Mapping[str, Any], label: str) -> None:
    if doc.get("format") != FORMAT_NAME:
        raise ResultFileError(
            f"{label} is not a PARE Studio project ({PROJECT_JSON} has format "
            f"{doc.get('format')!r}, expected {FORMAT_NAME!r})"
        )
    version = doc.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ResultFileError(
            f"{label}: project format version {version!r} is not a number; damaged"
        )
    if version > FORMAT_VERSION:
        raise ResultFileError(
            f"{label} was written by a newer PARE Studio ({doc.get('written_by', 'unknown')}, "
            f"project format {version}); this version reads formats {MIN_FORMAT_VERSION}.."
            f"{FORMAT_VERSION}. Update PARE Studio to open it."
        )
    if version < MIN_FORMAT_VERSION:
        raise ResultFileError(
            f"{label} uses project format {version}, older than this PARE Studio reads "
            f"({MIN_FORMAT_VERSION}..{FORMAT_VERSION}). Open its pare_output.pkl instead and "
            "redo the edits, or open it with the PARE Studio version that wrote it."
        )


def _read_array(zf: zipfile.ZipFile, name: str, label: str) -> np.ndarray:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ResultFileError(f"{label}: array {name} is missing; the file is damaged") from None
    try:
        with zf.open(info) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise ValueError(f"npy version {version}")
            if dtype.hasobject:
                raise ResultFileError(f"{label}: {name} holds Python objects; refusing to load it")
            count = int(np.prod(shape, dtype=np.int64))
            nbytes = count * dtype.itemsize
            if nbytes > info.file_size:
                raise ValueError(
                    f"its header claims {nbytes} bytes, the member has {info.file_size}"
                )
            flat = np.empty(count, dtype=dtype)
            view = memoryview(flat).cast("B") if nbytes else memoryview(bytearray())
            got = 0
            while got < nbytes:
                n = fh.readinto(view[got:])
                if not n:
                    raise ValueError("the array data is truncated")
                got += n
            if fh.read(1):  # also makes zipfile check the member's CRC
                raise ValueError("extra bytes after the array data")
            arr = flat.reshape(shape, order="F" if fortran else "C")
    except ResultFileError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        ValueError,
        TypeError,
        OSError,
        EOFError,
    ) as exc:
        raise ResultFileError(f"{label}: array {name} is damaged ({exc})") from exc
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _resolve_video(video: Mapping[str, Any], folder: Path) -> str:
    path = video.get("path") or ""
    rel = video.get("relative_path")
    if path and Path(path).exists():
        return str(path)
    if isinstance(rel, str) and rel:
        candidate = (folder / rel).resolve()
        if candidate.exists():
            return str(candidate)
    return str(path)


def load_project(path: str | os.PathLike[str]) -> Project:
    """Open a project file (module docstring).

    Returns
    -------
    The :class:`Project`; ``state.source`` is the video path (resolved against the project's
    folder when the saved absolute path no longer exists; the video itself is not opened).

    Raises
    ------
    ResultFileError
        Missing file, not a project, another format version, or damaged (the message says which).
    """
    path = Path(path)
    label = str(path)
    if not path.exists():
        raise ResultFileError(f"project file {label} does not exist")
    if path.is_dir():
        raise ResultFileError(f"{label} is a folder, not a project file")
    try:
        zf = zipfile.ZipFile(path, "r")
    except zipfile.BadZipFile as exc:
        raise ResultFileError(
            f"{label} is not a PARE Studio project or it is damaged (not a complete zip archive: "
            f"{exc})"
        ) from exc
    except OSError as exc:
        raise ResultFileError(f"cannot read {label}: {exc.strerror or exc}") from exc
    try:
        with zf:
            return _load_open(zf, path, label)
    except ResultFileError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, zlib.error) as exc:
        raise ResultFileError(
            f"{label} is damaged ({type(exc).__name__}: {exc}); open its pare_output.pkl instead "
            "or a backup of the project"
        ) from exc


def _load_open(zf: zipfile.ZipFile, path: Path, label: str) -> Project:
    """The body of :func:`load_project` once the archive is open."""
    from pare_studio.pipeline.pkl_io import validate_reference_dict

    doc = _read_json(zf, label)
    _check_version(doc, label)
    j = _Json(label)
    video = j.get(doc, "video", dict, "")
    src = _resolve_video(video, path.parent)
    n_frames = j.get(video, "n_frames", int, "video.")
    width = j.get(video, "width", int, "video.")
    height = j.get(video, "height", int, "video.")
    fps = float(j.get(video, "fps", (int, float), "video."))
    results = j.get(doc, "results", dict, "")
    results_path = j.get(results, "path", str, "results.")
    sm = j.get(doc, "smoothing", dict, "")
    try:
        smoothing = SmoothingSettings(
            enabled=j.get(sm, "enabled", bool, "smoothing."),
            method=j.get(sm, "method", str, "smoothing."),
            min_cutoff=float(j.get(sm, "min_cutoff", (int, float), "smoothing.")),
            beta=float(j.get(sm, "beta", (int, float), "smoothing.")),
        )
    except ValueError as exc:
        raise j.err(f"smoothing settings: {exc}") from exc
    next_id = j.get(doc, "next_track_id", int, "")
    track_docs = j.get(doc, "tracks", list, "")
    settings = j.get(doc, "settings", dict, "")

    raw: dict[int, dict[str, Any]] = {}
    names: dict[int, str] = {}
    export: set[int] = set()
    for i, td in enumerate(track_docs):
        where = f"tracks[{i}]."
        if not isinstance(td, dict):
            raise j.err(f"'tracks[{i}]' is not an object; the file is damaged")
        tid = j.get(td, "id", int, where)
        if tid < 1 or tid in raw:
            raise j.err(f"'{where}id' is {tid}: track ids must be unique and >= 1")
        name = td.get("name")
        if name is not None and not isinstance(name, str):
            raise j.err(f"'{where}name' must be a string or null")
        if name:
            names[tid] = name
        if j.get(td, "export", bool, where):
            export.add(tid)
        has_j2d = j.get(td, "joints2d", bool, where)
        arrays: dict[str, Any] = {}
        for key in TrackResult.REFERENCE_KEYS:
            if key == "joints2d" and not has_j2d:
                arrays[key] = None
                continue
            arrays[key] = _read_array(zf, f"arrays/track_{tid}/{key}.npy", label)
        frames = j.get(td, "frames", int, where)
        if arrays["frame_ids"].shape[:1] != (frames,):
            raise j.err(
                f"track {tid} should have {frames} frames, its arrays have "
                f"{arrays['frame_ids'].shape[:1]}; the file is damaged"
            )
        raw[tid] = arrays
    clean = validate_reference_dict(raw, f"project file {label}")
    tracks = {tid: TrackResult.from_reference_dict(tid, clean[tid]) for tid in sorted(clean)}
    state = EditState(
        tracks=tracks,
        names=names,
        export=frozenset(export),
        next_id=int(next_id),
        n_frames=int(n_frames),
        width=int(width),
        height=int(height),
        fps=float(fps),
        source=src,
    )
    return Project(state=state, smoothing=smoothing, results_path=results_path, settings=settings)


def is_project_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a zip archive holding a ``project.json`` (cheap check)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"PK\x03\x04":
                return False
        with zipfile.ZipFile(path) as zf:
            return PROJECT_JSON in zf.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
