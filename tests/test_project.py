"""Project files: round trip of an edited session, and clear errors for other versions and
damaged files."""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pare_studio.edits import EditState, merge_tracks, rename_track, set_export, split_track
from pare_studio.errors import OutputError, ResultFileError
from pare_studio.project import (
    FORMAT_VERSION,
    PROJECT_JSON,
    Project,
    SmoothingSettings,
    is_project_file,
    load_project,
    save_project,
)
from pare_studio.results import TrackResult, VideoResult
from tests.export.pipeline_run import pipeline_result

ARRAY_KEYS = [k for k in TrackResult.REFERENCE_KEYS if k != "joints2d"]


@pytest.fixture(scope="module")
def run(parity_dir: Path, cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> VideoResult:
    return pipeline_result(str(parity_dir), str(cfg_path), str(ckpt_path), str(smpl_dir))


@pytest.fixture()
def edited(run: VideoResult) -> Project:
    state = split_track(EditState.from_result(run), 1, 2)  # tracks 1 [0, 1], 2 [0..2], 3 [2]
    state = rename_track(state, 2, "Bob – ünïcode")
    state = set_export(state, 1, False)
    smoothing = SmoothingSettings(enabled=True, method="rotation", min_cutoff=0.01, beta=0.7)
    return Project(
        state=state,
        smoothing=smoothing,
        results_path="/data/pare_output.pkl",
        settings={"viewport": {"yaw": 12.5, "overlay": True}},
    )


@pytest.fixture()
def saved(tmp_path: Path, edited: Project) -> Path:
    return save_project(tmp_path / "session.pareproj", edited)


def _rewrite(src: Path, dst: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Copy a project zip, letting ``change(name, bytes)`` alter or drop (None) members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _edit_json(src: Path, dst: Path, fn) -> Path:  # type: ignore[no-untyped-def]
    def change(name: str, data: bytes) -> bytes:
        if name != PROJECT_JSON:
            return data
        doc = json.loads(data)
        fn(doc)
        return json.dumps(doc).encode()

    return _rewrite(src, dst, change)


def test_project_round_trip(saved: Path, edited: Project, run: VideoResult) -> None:
    assert is_project_file(saved)
    assert not [p for p in saved.parent.iterdir() if p.name.endswith(".tmp")]
    back = load_project(saved)
    st, want = back.state, edited.state
    assert st.track_ids() == want.track_ids() == [1, 2, 3]
    assert (
        st.selected_ids() == [2, 3] and st.name(2) == "Bob – ünïcode" and st.name(1) == "Person 1"
    )
    assert st.next_id == 4
    assert (st.n_frames, st.width, st.height, st.fps) == (3, 320, 180, pytest.approx(25.0))
    assert back.video_path == str(Path(run.source).absolute())
    assert back.smoothing == edited.smoothing
    assert back.results_path == "/data/pare_output.pkl"
    assert back.settings == {"viewport": {"yaw": 12.5, "overlay": True}}
    for t in st.track_ids():
        for k in ARRAY_KEYS:
            got, exp = getattr(st.tracks[t], k), getattr(want.tracks[t], k)
            assert got.dtype == exp.dtype, k
            np.testing.assert_array_equal(got, exp, err_msg=f"{t}.{k}")
        assert st.tracks[t].joints2d is None
    # edits continue after reopening: merging the split parts gives the run's track back
    merged = merge_tracks(st, 1, 3).tracks[1]
    for k in ARRAY_KEYS:
        np.testing.assert_array_equal(getattr(merged, k), getattr(run.tracks[1], k), err_msg=k)
    # the json is plain, documented JSON; arrays load with allow_pickle=False
    with zipfile.ZipFile(saved) as zf:
        doc = json.loads(zf.read(PROJECT_JSON))
        assert doc["format"] == "pare-studio-project" and doc["version"] == FORMAT_VERSION
        assert [t["id"] for t in doc["tracks"]] == [1, 2, 3]
        with zf.open("arrays/track_2/pose.npy") as fh:
            pose = np.lib.format.read_array(fh, allow_pickle=False)
        np.testing.assert_array_equal(pose, want.tracks[2].pose)


def test_keypoints_and_relative_video_path(tmp_path: Path, run: VideoResult) -> None:
    import dataclasses

    video = tmp_path / "proj" / "clip.mp4"
    video.parent.mkdir()
    shutil.copy(run.source, video)
    kp = np.random.default_rng(0).normal(size=(3, 21, 3))
    tracks = {1: dataclasses.replace(run.tracks[1], joints2d=kp), 2: run.tracks[2]}
    state = EditState.from_result(dataclasses.replace(run, tracks=tracks, source=str(video)))
    path = save_project(tmp_path / "proj" / "p.pareproj", Project(state=state))
    moved = tmp_path / "moved"
    shutil.move(str(tmp_path / "proj"), moved)  # project and video move together
    back = load_project(moved / "p.pareproj")
    assert Path(back.video_path) == (moved / "clip.mp4").resolve()
    np.testing.assert_array_equal(back.state.tracks[1].joints2d, kp)
    assert back.state.tracks[2].joints2d is None
    assert back.smoothing == SmoothingSettings()  # defaults: off
    del path


def test_other_versions_give_a_clear_error(saved: Path, tmp_path: Path) -> None:
    newer = _edit_json(
        saved, tmp_path / "newer.pareproj", lambda d: d.update(version=FORMAT_VERSION + 1)
    )
    with pytest.raises(ResultFileError, match=r"newer PARE Studio .*Update PARE Studio"):
        load_project(newer)
    older = _edit_json(saved, tmp_path / "older.pareproj", lambda d: d.update(version=0))
    with pytest.raises(ResultFileError, match=r"format 0, older than this PARE Studio reads"):
        load_project(older)
    other = _edit_json(saved, tmp_path / "other.pareproj", lambda d: d.update(format="blender"))
    with pytest.raises(ResultFileError, match="not a PARE Studio project"):
        load_project(other)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "not a PARE Studio project or it is damaged"),
        ("garbage", "not a PARE Studio project or it is damaged"),
        ("flip_array_byte", "damaged"),
        ("no_json", "has no project.json"),
        ("bad_json", "not valid JSON"),
        ("json_list", "not a JSON object"),
        ("missing_field", "'video.fps' is missing"),
        ("wrong_type", "'tracks\\[0\\].export' is 'yes', expected bool"),
        ("nan_fps", "'video.fps' is not a finite number"),
        ("bad_smoothing", "smoothing settings: smoothing method"),
        ("missing_array", "arrays/track_1/verts.npy is missing"),
        ("object_array", "holds Python objects"),
        ("wrong_shape", "'pose' has shape \\(2, 24, 3\\)"),
        ("frames_mismatch", "should have 5 frames"),
        ("duplicate_id", "ids must be unique"),
    ],
)
def test_damaged_files_give_a_clear_error(
    saved: Path, tmp_path: Path, damage: str, message: str
) -> None:
    bad = tmp_path / f"{damage}.pareproj"
    if damage == "truncate":
        data = saved.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"\x80\x04not a zip at all" * 10)
    elif damage == "flip_array_byte":
        data = bytearray(saved.read_bytes())
        with zipfile.ZipFile(saved) as zf:
            info = zf.getinfo("arrays/track_1/verts.npy")
        data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF  # inside the array data
        bad.write_bytes(bytes(data))
    elif damage == "no_json":
        _rewrite(saved, bad, lambda n, d: None if n == PROJECT_JSON else d)
    elif damage == "bad_json":
        _rewrite(saved, bad, lambda n, d: d[:-10] if n == PROJECT_JSON else d)
    elif damage == "json_list":
        _rewrite(saved, bad, lambda n, d: b"[1, 2]" if n == PROJECT_JSON else d)
    elif damage == "missing_field":
        _edit_json(saved, bad, lambda d: d["video"].pop("fps"))
    elif damage == "wrong_type":
        _edit_json(saved, bad, lambda d: d["tracks"][0].update(export="yes"))
    elif damage == "nan_fps":
        _edit_json(saved, bad, lambda d: d["video"].update(fps=float("nan")))
    elif damage == "bad_smoothing":
        _edit_json(saved, bad, lambda d: d["smoothing"].update(method="magic"))
    elif damage == "missing_array":
        _rewrite(saved, bad, lambda n, d: None if n == "arrays/track_1/verts.npy" else d)
    elif damage in ("object_array", "wrong_shape"):
        import io

        def swap(name: str, data: bytes) -> bytes:
            if name != "arrays/track_1/pose.npy":
                return data
            bio = io.BytesIO()
            if damage == "object_array":
                np.save(bio, np.array([{"x": 1}, None], dtype=object), allow_pickle=True)
            else:
                np.save(bio, np.zeros((2, 24, 3), np.float32))
            return bio.getvalue()

        _rewrite(saved, bad, swap)
    elif damage == "frames_mismatch":
        _edit_json(saved, bad, lambda d: d["tracks"][0].update(frames=5))
    elif damage == "duplicate_id":
        _edit_json(saved, bad, lambda d: d["tracks"].append(dict(d["tracks"][0])))
    with pytest.raises(ResultFileError, match=message):
        load_project(bad)


def test_missing_folder_and_pkl_inputs(tmp_path: Path) -> None:
    with pytest.raises(ResultFileError, match="does not exist"):
        load_project(tmp_path / "nope.pareproj")
    with pytest.raises(ResultFileError, match="is a folder"):
        load_project(tmp_path)
    assert not is_project_file(tmp_path / "nope.pareproj")


def test_saving_is_atomic(saved: Path, edited: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    before = saved.read_bytes()

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", boom)
    with pytest.raises(OutputError, match="No space left"):
        save_project(saved, edited)
    assert saved.read_bytes() == before
    assert sorted(os.listdir(saved.parent)) == [saved.name]
    with pytest.raises(ValueError):
        save_project(
            saved.with_name("x.pareproj"), Project(state=edited.state, settings={"f": {1, 2}})
        )
    assert not saved.with_name("x.pareproj").exists()
