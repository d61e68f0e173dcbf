"""Atomic file output: write to a temp file in the target folder, fsync, ``os.replace``.

A crash, a full disk or a Ctrl+C never leaves a partial file at the target and never replaces a
good file with a broken one. Every exporter and the project file use :func:`atomic_output`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pare_studio.errors import OutputError


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


def prepare_folder(folder: Path, what: str = "output") -> Path:
    """Create ``folder`` (and parents) or raise :class:`OutputError` naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the {what} folder {folder}: {exc.strerror or exc}; choose another path"
        ) from exc
    if not folder.is_dir():
        raise OutputError(f"{folder} exists and is not a folder; choose another path")
    return folder


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open a temp file next to ``path``; on success it replaces ``path`` atomically.

    Parameters
    ----------
    path : the file to (re)write; its folder is created when missing.
    mode : ``"wb"`` (bytes) or ``"w"`` (UTF-8 text, ``\\n`` line ends).

    Yields
    ------
    The open temp file. When the ``with`` block raises, the temp file is removed and ``path``
    is untouched.

    Raises
    ------
    OutputError
        The folder cannot be created or written, or ``path`` is a folder.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_output: mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    folder = prepare_folder(path.parent if str(path.parent) else Path("."))
    if path.is_dir():
        raise OutputError(f"{path} is a folder; cannot write a file there")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(
            f"cannot write in the folder {folder}: {exc.strerror or exc}; choose another path"
        ) from exc
    tmp = Path(tmp_name)
    try:
        if mode == "w":
            fh: IO = os.fdopen(fd, "w", encoding="utf-8", newline="\n")
        else:
            fh = os.fdopen(fd, "wb")
        with fh:
            yield fh
            fh.flush()
            # mkstemp makes the file private (0600); give it the permissions open() would.
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise OutputError(
                f"cannot write {path}: {exc.strerror or exc}; nothing was written"
                + (" (the existing file is unchanged)" if path.exists() else "")
            ) from exc
        raise
    _fsync_dir(folder)


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
