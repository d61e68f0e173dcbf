"""Dataset readers: the reference's npz layout, fallbacks and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.analysis.datasets import load_dataset, parse_dataset_names
from pare_studio.analysis.pw3d_sequences import (
    PW3D_OCCLUDED_PREFIXES,
    PW3D_TEST_SEQUENCES,
    is_occluded_sequence,
    is_test_sequence,
    sequence_of,
)
from pare_studio.errors import DatasetError
from tests.analysis.synthetic_eval_data import OH3D_SAMPLES, PW3D_SAMPLES, write_dataset


def test_reads_the_reference_layout(tmp_path: Path) -> None:
    arrays = write_dataset(tmp_path, "3dpw-all", PW3D_SAMPLES, image_size=(40, 60))
    ds = load_dataset("3dpw-all", tmp_path, check_images=True)
    assert len(ds) == 4
    assert ds.npz_path == tmp_path / "dataset_extras" / "3dpw_all_test_with_mmpose.npz"
    assert ds.image_dir == tmp_path / "dataset_folders" / "3dpw"
    assert ds.image_path(2) == ds.image_dir / "imageFiles/flat_guitar_01/image_00003.jpg"
    np.testing.assert_array_equal(ds.center, arrays["center"])
    np.testing.assert_array_equal(ds.scale, arrays["scale"])
    np.testing.assert_array_equal(ds.pose, arrays["pose"])
    np.testing.assert_array_equal(ds.betas, arrays["shape"])
    np.testing.assert_array_equal(ds.gender, [0, 1, 1, 0])  # 'm' -> 0, else 1
    assert list(ds.sequences) == [
        "downtown_bar_00",
        "downtown_bar_00",
        "flat_guitar_01",
        "courtyard_walkDogs_00",
    ]
    assert ds.pose_key == "pose"
    head = ds.head(2)
    assert len(head) == 2 and list(head.imgname) == list(ds.imgname[:2])
    assert ds.head(10) is ds


def test_3doh_and_fallbacks(tmp_path: Path) -> None:
    write_dataset(tmp_path, "3doh", OH3D_SAMPLES, image_size=(40, 60), drop_keys=("gender",))
    ds = load_dataset("3doh", tmp_path)
    assert ds.image_dir == tmp_path / "dataset_folders" / "3doh"
    np.testing.assert_array_equal(ds.gender, [-1])  # absent gender: -1 as the reference
    assert list(ds.sequences) == ["images"]


def test_pose_0yaw_inverseyz_is_preferred(tmp_path: Path) -> None:
    arrays = write_dataset(tmp_path, "3doh", OH3D_SAMPLES, write_images=False)
    other = arrays["pose"] + 1.0
    np.savez(tmp_path / "dataset_extras" / "3doh_test.npz", **arrays, pose_0yaw_inverseyz=other)
    ds = load_dataset("3doh", tmp_path)
    assert ds.pose_key == "pose_0yaw_inverseyz"
    np.testing.assert_array_equal(ds.pose, other)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"3doh_test\.npz not found") as exc:
        load_dataset("3doh", tmp_path)
    assert str(tmp_path / "dataset_extras") in str(exc.value)


@pytest.mark.parametrize("key", ["imgname", "center", "scale", "pose", "shape"])
def test_missing_key_is_named(tmp_path: Path, key: str) -> None:
    write_dataset(tmp_path, "3doh", OH3D_SAMPLES, write_images=False, drop_keys=(key,))
    with pytest.raises(DatasetError, match=f"no key.*'{key}'"):
        load_dataset("3doh", tmp_path)


def test_wrong_shape_is_named(tmp_path: Path) -> None:
    arrays = write_dataset(tmp_path, "3doh", OH3D_SAMPLES, write_images=False)
    arrays["shape"] = np.zeros((1, 11))
    np.savez(tmp_path / "dataset_extras" / "3doh_test.npz", **arrays)
    with pytest.raises(DatasetError, match=r"'shape' has shape \(1, 11\).*expected \(1, 10\)"):
        load_dataset("3doh", tmp_path)


def test_damaged_npz(tmp_path: Path) -> None:
    (tmp_path / "dataset_extras").mkdir()
    (tmp_path / "dataset_extras" / "3doh_test.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="not a readable npz"):
        load_dataset("3doh", tmp_path)


def test_missing_images_are_listed(tmp_path: Path) -> None:
    write_dataset(tmp_path, "3dpw-all", PW3D_SAMPLES, image_size=(40, 60))
    gone = tmp_path / "dataset_folders/3dpw/imageFiles/flat_guitar_01/image_00003.jpg"
    gone.unlink()
    ds = load_dataset("3dpw-all", tmp_path)
    assert ds.missing_images() == [gone]
    with pytest.raises(DatasetError, match="1 image.*missing.*image_00003.jpg"):
        ds.check_images()
    ds.head(2).check_images()  # the first two samples' image is there


def test_dataset_names() -> None:
    assert parse_dataset_names("3doh_3dpw-all", sep="_") == ["3doh", "3dpw-all"]
    assert parse_dataset_names("3dpw-all, 3doh,3dpw-all") == ["3dpw-all", "3doh"]
    with pytest.raises(DatasetError, match="use '3dpw-all'"):
        parse_dataset_names("3dpw_3doh", sep="_")  # the reference's default VAL_DS
    with pytest.raises(DatasetError, match="unknown evaluation dataset 'h36m'"):
        parse_dataset_names("h36m")
    with pytest.raises(DatasetError, match="no evaluation dataset"):
        parse_dataset_names(" , ")


def test_3dpw_sequence_lists() -> None:
    assert len(PW3D_TEST_SEQUENCES) == 24 and len(set(PW3D_TEST_SEQUENCES)) == 24
    assert len(PW3D_OCCLUDED_PREFIXES) == 17
    assert sequence_of("imageFiles/downtown_bar_00/image_00010.jpg") == "downtown_bar_00"
    assert sequence_of("a\\b\\c.jpg") == "b"
    assert sequence_of("c.jpg") == ""
    assert is_test_sequence("downtown_bar_00") and not is_test_sequence("downtown_bar_01")
    assert not is_occluded_sequence("downtown_bar_00")
    assert is_occluded_sequence("flat_guitar_01") and is_occluded_sequence("courtyard_box_00")
    assert is_occluded_sequence("downtown_stairs_00") and not is_occluded_sequence(
        "downtown_upstairs_00"
    )
