"""Atomic file output: a temp file in the target folder, fsync, then ``os.replace`` over it.

A crash, a full disk, a cancelled run or a Ctrl+C never leaves a partial file at the target and
never replaces a good file with a broken one. Every file PARE Studio writes goes through here:

- :func:`atomic_output`: a ``with`` block around an open temp file (bytes or text);
- :func:`atomic_path`: a ``with`` block around a temp *path*, for writers that open the file
  themselves (an exporter given a file name);
- :func:`write_bytes_atomic`, :func:`write_text_atomic`, :func:`write_json_atomic`,
  :func:`write_npz_atomic`: one call each;
- :func:`temp_beside` + :func:`publish`: the two steps, for a writer with its own lifetime
  (the video writer opens the temp file, appends frames, and publishes on ``close``).

Published files get the permissions ``open()`` would give them (``0666 & ~umask``), not
``mkstemp``'s private 0600. Failures raise :class:`~pare_studio.errors.OutputError` naming the
file and the system's reason; the temp file is removed and the target left as it was.

This module sits below every layer (it imports only the standard library, numpy and
:mod:`pare_studio.errors`), so the pipeline, the exporters, the renderer and the CLI share it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from pare_studio.errors import OutputError

__all__ = [
    "atomic_output",
    "atomic_path",
    "prepare_folder",
    "publish",
    "temp_beside",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_npz_atomic",
    "write_text_atomic",
]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _folder_of(path: Path) -> Path:
    return path.parent if str(path.parent) else Path(".")


def prepare_folder(folder: str | os.PathLike[str], what: str = "output") -> Path:
    """Create ``folder`` (and parents) or raise :class:`OutputError` naming it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the {what} folder {folder}: {exc.strerror or exc}; choose another path"
        ) from exc
    if not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; choose another path")
    return folder


def temp_beside(path: str | os.PathLike[str], create_folder: bool = True) -> Path:
    """Create an empty temp file in ``path``'s folder: ``.<name>.<random>.tmp``.

    Parameters
    ----------
    path : the file that will be written; its folder is created when missing (unless
        ``create_folder`` is False, then a missing folder is an error).

    Returns
    -------
    The temp file's path (only this process knows the random name).

    Raises
    ------
    OutputError : the folder cannot be created or written, or ``path`` is a folder.
    """
    path = Path(path)
    folder = _folder_of(path)
    if create_folder:
        prepare_folder(folder)
    elif not folder.is_dir():
        raise OutputError(f"the output folder {folder} does not exist; create it first")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; cannot write a file there")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write in the folder {folder}: {exc.strerror or exc}; choose another path"
        ) from exc
    os.close(fd)
    return Path(tmp)


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Give the finished temp file ordinary permissions, fsync it and move it over ``path``.

    Raises
    ------
    OutputError : the move failed (the temp file is removed; ``path`` is unchanged).
    """
    tmp, path = Path(tmp), Path(path)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        discard(tmp)
        raise _write_error(path, exc) from exc
    _fsync_dir(_folder_of(path))
    return path


def discard(tmp: str | os.PathLike[str]) -> None:
    """Remove a temp file if it is still there."""
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def _write_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write {path}: {exc.strerror or exc}; nothing was written"
        + (" (the existing file is unchanged)" if path.exists() else "")
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], create_folder: bool = True) -> Iterator[Path]:
    """Yield a temp path beside ``path``; when the block ends normally it replaces ``path``.

    The temp file exists (empty) when the block starts; the writer may overwrite it. When the
    block raises, the temp file is removed and ``path`` is untouched; an ``OSError`` from the
    block becomes :class:`OutputError`.
    """
    path = Path(path)
    tmp = temp_beside(path, create_folder)
    try:
        yield tmp
    except OSError as exc:
        discard(tmp)
        raise _write_error(path, exc) from exc
    except BaseException:
        discard(tmp)
        raise
    publish(tmp, path)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], mode: str = "wb", create_folder: bool = True
) -> Iterator[IO]:
    """Open a temp file beside ``path``; when the block ends normally it replaces ``path``.

    Parameters
    ----------
    path : the file to (re)write; its folder is created when missing.
    mode : ``"wb"`` (bytes) or ``"w"`` (UTF-8 text, ``\\n`` line ends).

    Yields
    ------
    The open temp file. When the block raises, the temp file is removed and ``path`` is
    untouched.

    Raises
    ------
    OutputError : the folder cannot be created or written, the disk is full, or ``path`` is a
        folder.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_output: mode must be 'wb' or 'w', got {mode!r}")
    text = {"encoding": "utf-8", "newline": "\n"} if mode == "w" else {}
    with atomic_path(path, create_folder) as tmp, open(tmp, mode, **text) as fh:
        yield fh


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_output`); returns the path."""
    with atomic_output(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    with atomic_output(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], data: Any, indent: int = 1) -> Path:
    """Write ``data`` as JSON (UTF-8, trailing newline) to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent) + "\n")


def write_npz_atomic(
    path: str | os.PathLike[str],
    arrays: Mapping[str, np.ndarray],
    compressed: bool = False,
    create_folder: bool = True,
) -> Path:
    """``np.savez`` (or ``savez_compressed``) the arrays to ``path`` atomically."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_output(path, "wb", create_folder) as fh:
        save(fh, **dict(arrays))
    return Path(path)
