"""The shared atomic writer: all-or-nothing files with ordinary permissions."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from pare_studio.atomic import (
    atomic_output,
    atomic_path,
    publish,
    temp_beside,
    write_json_atomic,
    write_npz_atomic,
    write_text_atomic,
)
from pare_studio.errors import OutputError


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@contextlib.contextmanager
def _umask(mask: int):  # noqa: ANN202
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_published_files_follow_the_umask_not_mkstemp(tmp_path: Path, mask: int) -> None:
    with _umask(mask):
        text = write_text_atomic(tmp_path / "a.txt", "hello\n")
        arrays = write_npz_atomic(tmp_path / "a.npz", {"x": np.arange(3)})
    for path in (text, arrays):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert text.read_text() == "hello\n"
    with np.load(arrays) as z:
        assert z["x"].tolist() == [0, 1, 2]


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = write_json_atomic(tmp_path / "r.json", {"ok": 1})
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target, "w") as fh:
        fh.write("partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == before
    assert _names(tmp_path) == ["r.json"]


def test_os_errors_become_output_errors_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(OutputError, match="out.bin.*No space left"), atomic_output(target) as fh:
        fh.write(b"x")
        raise OSError(28, "No space left on device")
    assert _names(tmp_path) == []


def test_atomic_path_publishes_what_the_writer_put_at_the_temp_path(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.onnx"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"weights")
        assert not target.exists()
    assert target.read_bytes() == b"weights"
    assert _names(target.parent) == ["model.onnx"]
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"weights" and _names(target.parent) == ["model.onnx"]


def test_folders_are_created_unless_told_not_to(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c.txt"
    write_text_atomic(deep, "x")
    assert deep.read_text() == "x"
    with pytest.raises(OutputError, match="does not exist"):
        write_npz_atomic(tmp_path / "missing" / "o.npz", {"x": np.zeros(1)}, create_folder=False)
    assert not (tmp_path / "missing").exists()


def test_unusable_targets_are_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    with pytest.raises(OutputError, match="output folder"):
        write_text_atomic(blocker / "x.txt", "x")
    with pytest.raises(OutputError, match="is a folder"):
        write_text_atomic(tmp_path, "x")

    def denied(*args: object, **kwargs: object) -> tuple[int, str]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied"):
        write_text_atomic(tmp_path / "y.txt", "y")
    assert _names(tmp_path) == ["file"] and blocker.read_text() == "keep me"


def test_a_failed_publish_removes_the_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp = temp_beside(tmp_path / "v.mp4")
    tmp.write_bytes(b"frames")

    def refuse(src: object, dst: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match="v.mp4.*cross-device"):
        publish(tmp, tmp_path / "v.mp4")
    assert _names(tmp_path) == []
