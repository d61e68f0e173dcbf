"""pare_output.pkl: reference layout, atomic writes, restricted loading (joblib and pickle)."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import joblib
import numpy as np
import pytest

from pare_studio.errors import OutputError, ResultFileError, UnsafePickleError
from pare_studio.pipeline import pkl_io
from pare_studio.pipeline.pkl_io import (
    load_pare_output,
    read_pickle,
    save_pare_output,
    validate_reference_dict,
)
from pare_studio.results import TrackResult, VideoResult
from tests.pipeline.video_helpers import REFERENCE_LAYOUT, make_track


@pytest.fixture()
def result() -> VideoResult:
    return VideoResult(tracks={1: make_track(1, [0, 1, 2, 4], 1), 3: make_track(3, [2, 3], 2)})


def assert_same_result(a: VideoResult, b: VideoResult) -> None:
    assert sorted(a.tracks) == sorted(b.tracks)
    for tid in a.tracks:
        for key in TrackResult.REFERENCE_KEYS:
            x, y = getattr(a.tracks[tid], key), getattr(b.tracks[tid], key)
            if x is None:
                assert y is None, key
                continue
            assert y.dtype == x.dtype and y.shape == x.shape, key
            np.testing.assert_array_equal(y, x, err_msg=key)


# ------------------------------------------------------------------------------- writing


def test_round_trip_keeps_reference_layout_exactly(tmp_path: Path, result: VideoResult) -> None:
    path = save_pare_output(tmp_path / "out" / "pare_output.pkl", result)
    assert path.is_file()
    # What joblib (the reference's reader) sees: exactly the reference's dict.
    raw = joblib.load(path)
    assert list(raw) == [1, 3] and all(type(k) is int for k in raw)
    for tid, track in raw.items():
        assert list(track) == list(TrackResult.REFERENCE_KEYS)
        n = len(result.tracks[tid])
        assert track["joints2d"] is None
        for key, (tail, dtype) in REFERENCE_LAYOUT.items():
            assert track[key].shape == (n, *tail), key
            assert track[key].dtype == dtype, key
    loaded = load_pare_output(path)
    assert_same_result(result, loaded)
    assert loaded.n_frames == 5
    assert [p.name for p in path.parent.iterdir()] == ["pare_output.pkl"]  # no temp left


def test_files_have_no_alignment_padding_so_old_joblib_reads_them(
    tmp_path: Path, result: VideoResult
) -> None:
    path = save_pare_output(tmp_path / "pare_output.pkl", result)
    # joblib >= 1.2 stores numpy_array_alignment_bytes=16 and pads; joblib 0.15 cannot skip that.
    seen: list[object] = []

    class Spy(pkl_io._RestrictedUnpickler):
        def _read_wrapped_array(self, state):  # type: ignore[no-untyped-def]
            seen.append(state.get("numpy_array_alignment_bytes"))
            return super()._read_wrapped_array(state)

    with open(path, "rb") as fh:
        Spy(fh, str(path), os.path.getsize(path)).load()
    assert len(seen) == 2 * 9 and all(v is None for v in seen)


def test_failed_write_leaves_existing_file_and_no_temp(
    tmp_path: Path, result: VideoResult, monkeypatch
) -> None:
    target = tmp_path / "pare_output.pkl"
    save_pare_output(target, result)
    good = target.read_bytes()

    def dump_then_fail(value, fh, protocol=None):  # type: ignore[no-untyped-def]
        fh.write(b"\x80\x04partial garbage" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(joblib, "dump", dump_then_fail)
    with pytest.raises(OutputError, match="No space left"):
        save_pare_output(target, VideoResult(tracks={7: make_track(7, [0], 9)}))
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pare_output.pkl"]


def test_interrupted_write_cleans_up_and_propagates(
    tmp_path: Path, result: VideoResult, monkeypatch
) -> None:
    target = tmp_path / "pare_output.pkl"
    save_pare_output(target, result)
    good = target.read_bytes()

    def dump_then_interrupt(value, fh, protocol=None):  # type: ignore[no-untyped-def]
        fh.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(joblib, "dump", dump_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_pare_output(target, result)
    assert target.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pare_output.pkl"]


def test_unwritable_folder_is_an_output_error(tmp_path: Path, result: VideoResult) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a regular file, not a folder")
    with pytest.raises(OutputError, match="output folder"):
        save_pare_output(blocker / "sub" / "pare_output.pkl", result)
    assert blocker.read_text() == "a regular file, not a folder"


def test_writer_refuses_a_malformed_result(tmp_path: Path, result: VideoResult) -> None:
    result.tracks[1].pose = result.tracks[1].pose.reshape(-1, 216)  # (n, 216) is not the layout
    with pytest.raises(ResultFileError, match="'pose' has shape"):
        save_pare_output(tmp_path / "pare_output.pkl", result)
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------- reading


class _Joblib015Pickler(joblib.numpy_pickle.NumpyPickler):
    """Writes joblib 0.15's format: the array record has no numpy_array_alignment_bytes."""

    def _create_array_wrapper(self, array):  # type: ignore[no-untyped-def]
        wrapper = super()._create_array_wrapper(array)
        del wrapper.numpy_array_alignment_bytes
        return wrapper


def test_reads_reference_joblib_015_files(tmp_path: Path, result: VideoResult) -> None:
    path = tmp_path / "reference.pkl"
    with open(path, "wb") as fh:  # Python 3.7's default protocol, as the reference wrote it
        _Joblib015Pickler(fh, protocol=3).dump(result.to_reference_dict())
    assert b"numpy_array_alignment_bytes" not in path.read_bytes()
    assert_same_result(result, load_pare_output(path))


@pytest.mark.parametrize(
    "compress", [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("xz", 3), ("lzma", 3)]
)
def test_reads_modern_joblib_files(tmp_path: Path, result: VideoResult, compress) -> None:
    path = tmp_path / "p.pkl"
    joblib.dump(result.to_reference_dict(), path, compress=compress)
    assert_same_result(result, load_pare_output(path))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_reads_plain_pickles(tmp_path: Path, result: VideoResult, protocol: int) -> None:
    path = tmp_path / "p.pkl"
    with open(path, "wb") as fh:
        pickle.dump(result.to_reference_dict(), fh, protocol=protocol)
    assert_same_result(result, load_pare_output(path))


def test_big_endian_arrays_become_native(tmp_path: Path, result: VideoResult) -> None:
    d = result.to_reference_dict()
    d[1]["verts"] = d[1]["verts"].astype(">f4")
    path = tmp_path / "p.pkl"
    joblib.dump(d, path)
    loaded = load_pare_output(path)
    assert loaded.tracks[1].verts.dtype == np.float32 and loaded.tracks[1].verts.dtype.isnative
    np.testing.assert_array_equal(loaded.tracks[1].verts, result.tracks[1].verts)


class _Payload:
    """Creates a marker file when unpickled by an unrestricted loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_reduce_payload_is_refused_and_never_runs(
    tmp_path: Path, result: VideoResult, writer: str
) -> None:
    marker = tmp_path / "PWNED"
    payload = result.to_reference_dict()
    payload[1]["betas"] = _Payload(marker)
    path = tmp_path / "evil.pkl"
    if writer == "pickle":
        with open(path, "wb") as fh:
            pickle.dump(payload, fh)
    else:
        joblib.dump(payload, path)
    with pytest.raises(UnsafePickleError, match=r"'(posix|nt)\.system'"):
        load_pare_output(path)
    assert not marker.exists()


def test_other_dangerous_globals_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl"
    # GLOBAL builtins.eval, then REDUCE with one string: a hand-written protocol-0 pickle.
    path.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        read_pickle(path)
    # A joblib array record whose "subclass" is smuggled in as another global.
    path.write_bytes(
        b"\x80\x04cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(\x8c\x08subclass"
        b"csubprocess\nPopen\nub."
    )
    with pytest.raises(UnsafePickleError, match="subprocess.Popen"):
        read_pickle(path)


def test_truncated_file_is_a_clear_error(tmp_path: Path, result: VideoResult) -> None:
    good = save_pare_output(tmp_path / "pare_output.pkl", result).read_bytes()
    for cut in (len(good) // 2, 40, len(good) - 1):
        bad = tmp_path / f"cut{cut}.pkl"
        bad.write_bytes(good[:cut])
        with pytest.raises(ResultFileError, match="truncated"):
            load_pare_output(bad)


def test_corrupt_empty_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"\x80\x04" + bytes(range(256)) * 4)
    with pytest.raises(ResultFileError, match="corrupt or not a pickle|truncated"):
        load_pare_output(garbage)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(ResultFileError, match="empty"):
        load_pare_output(empty)
    with pytest.raises(ResultFileError, match="does not exist"):
        load_pare_output(tmp_path / "nope.pkl")
    with pytest.raises(ResultFileError, match="folder"):
        load_pare_output(tmp_path)


def test_layout_errors_name_the_problem(result: VideoResult) -> None:
    def broken(edit) -> dict:  # type: ignore[no-untyped-def]
        d = result.to_reference_dict()
        edit(d)
        return d

    cases = [
        (lambda d: d[1].pop("orig_cam"), "missing key.*orig_cam"),
        (
            lambda d: d[1].__setitem__("verts", d[1]["verts"][:, :100]),
            r"'verts' has shape \(4, 100, 3\)",
        ),
        (lambda d: d[3].__setitem__("betas", d[3]["betas"][:1]), "'betas' has 1 frames"),
        (lambda d: d[1].__setitem__("frame_ids", np.array([0, 2, 1, 4])), "strictly increasing"),
        (
            lambda d: d[1].__setitem__("pose", d[1]["pose"].astype(np.int32)),
            "'pose' has dtype int32",
        ),
        (lambda d: d.__setitem__("x", d.pop(1)), "key 'x' is not a track id"),
    ]
    for edit, pattern in cases:
        with pytest.raises(ResultFileError, match=pattern):
            validate_reference_dict(broken(edit))
    with pytest.raises(ResultFileError, match="not the dict of tracks"):
        validate_reference_dict([1, 2, 3])


def test_loader_casts_float_widths_to_reference_dtypes(result: VideoResult) -> None:
    d = result.to_reference_dict()
    d[1]["verts"] = d[1]["verts"].astype(np.float64)
    d[1]["frame_ids"] = d[1]["frame_ids"].astype(np.int32)
    clean = validate_reference_dict(d)
    assert clean[1]["verts"].dtype == np.float32 and clean[1]["frame_ids"].dtype == np.int64
