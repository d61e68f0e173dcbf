"""``pare-studio inspect``: summary through the restricted loader, non-zero on refused files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from pare_studio.cli import main
from pare_studio.pipeline.pkl_io import save_pare_output
from pare_studio.results import VideoResult
from tests.pipeline.video_helpers import make_track


@pytest.fixture()
def pkl(tmp_path: Path) -> Path:
    result = VideoResult(tracks={1: make_track(1, [0, 1, 2], 1), 4: make_track(4, [3, 5, 6, 7], 2)})
    return save_pare_output(tmp_path / "pare_output.pkl", result)


def test_inspect_prints_tracks_ranges_shapes_and_dtypes(pkl: Path, capsys) -> None:
    assert main(["inspect", str(pkl)]) == 0
    out = capsys.readouterr().out
    assert "tracks   2" in out
    assert "track 1: 3 frames, 0..2" in out
    assert "track 4: 4 frames, 3..7, 1 missing in between" in out
    assert "verts          (4, 6890, 3) float32" in out
    assert "orig_cam       (3, 4) float64" in out
    assert "pose           (3, 24, 3, 3) float32" in out
    assert "frame_ids      (4,) int64" in out
    assert "joints2d       None" in out
    assert "layout   OK" in out


def test_inspect_refuses_a_pickle_with_code(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "RAN"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({1: {"verts": Payload()}}))
    assert main(["inspect", str(evil)]) == 9
    err = capsys.readouterr().err
    assert "refusing to load" in err and "system" in err
    assert not marker.exists()


def test_inspect_reports_a_wrong_layout(tmp_path: Path, capsys) -> None:
    odd = tmp_path / "odd.pkl"
    odd.write_bytes(pickle.dumps({1: {"verts": None}}))
    assert main(["inspect", str(odd)]) == 9
    out = capsys.readouterr().out
    assert (
        "verts  None" in out
        and "NOT the reference pare_output.pkl layout" in out
        and "missing key" in out
    )


def test_inspect_truncated_file(pkl: Path, tmp_path: Path, capsys) -> None:
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(pkl.read_bytes()[:5000])
    assert main(["inspect", str(cut)]) == 9
    assert "truncated" in capsys.readouterr().err
