"""``pare-studio setup``: download (resumed), --from-zip, --verify, and refusing damaged archives.

The zip is laid out like ``pare-github-data.zip`` and built from the synthetic assets; the synthetic
checkpoint stands in for both released checkpoints. ``yolov3.weights`` is a small file with a valid
Darknet header: setup checks the header and reports the unusual size as a warning (it does not load
the 248 MB detector network; the detector's own loader checks the layers).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from pare_studio.assets import AssetStore, resolve_model_paths, resolve_yolo_weights
from pare_studio.cli import main
from pare_studio.setup.doctor import run_doctor
from pare_studio.setup.smpl_import import import_smpl_models
from tests.conftest import assert_parity
from tests.setup.conftest import (
    RangeServer,
    Route,
    flip_byte_of_member,
    tree_digest,
    write_zip,
)

EXPECTED_RELS = {
    "pare/checkpoints/pare_checkpoint.ckpt",
    "pare/checkpoints/pare_config.yaml",
    "pare/checkpoints/pare_w_3dpw_checkpoint.ckpt",
    "pare/checkpoints/pare_w_3dpw_config.yaml",
    "smpl_mean_params.npz",
    "J_regressor_extra.npy",
    "J_regressor_h36m.npy",
    "yolov3.weights",
    "dataset_extras/README.txt",
}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def test_download_is_resumed_installed_and_found_without_flags(
    store: AssetStore,
    http_server: RangeServer,
    pare_zip: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    parity_inputs: np.ndarray,
    parity_expected: dict[str, np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cut = 64 << 20
    http_server.routes["/pare-github-data.zip"] = Route(pare_zip, drop_after=cut)
    url = http_server.url("/pare-github-data.zip")

    assert main(["setup", "--url", url]) == 0
    out = capsys.readouterr().out
    gets = http_server.gets("/pare-github-data.zip")
    assert [g.get("range") for g in gets] == [None, f"bytes={cut}-"]
    assert "Installed 9 files" in out and "1,000 values" in out  # the dummy YOLO file's warning

    manifest = json.loads(store.manifest_path.read_text())
    assert set(manifest["files"]) == EXPECTED_RELS
    assert manifest["installs"]["pare-data"]["from"] == url
    ckpt_sha = sha256(ckpt_path)
    for rel in (
        "pare/checkpoints/pare_checkpoint.ckpt",
        "pare/checkpoints/pare_w_3dpw_checkpoint.ckpt",
    ):
        assert manifest["files"][rel]["sha256"] == ckpt_sha == sha256(store.path(rel))
    assert not (store.root / "downloads").exists()  # the zip is removed once installed
    assert not list(store.root.glob(".staging-*")) and not (store.root / "__MACOSX").exists()

    # Running it again does not download again.
    assert main(["setup", "--url", url]) == 0
    assert "already installed" in capsys.readouterr().out
    assert len(http_server.gets("/pare-github-data.zip")) == 2

    # With the SMPL file imported, every command finds everything with no flags.
    import_smpl_models({"neutral": smpl_dir / "body_models/smpl/SMPL_NEUTRAL.pkl"}, store)
    paths = resolve_model_paths()
    assert paths.ckpt == store.path("pare/checkpoints/pare_w_3dpw_checkpoint.ckpt")
    assert paths.cfg == store.path("pare/checkpoints/pare_w_3dpw_config.yaml")
    assert paths.smpl_dir == store.root
    assert resolve_yolo_weights() == store.path("yolov3.weights")

    from pare_studio.core.predictor import load_predictor

    pred = load_predictor(paths.cfg, paths.ckpt, paths.smpl_dir, device="cpu", backend="torch")
    got = pred.predict(parity_inputs[:1])  # one crop: the point is that the files load and match
    for key in ("pred_cam", "pred_pose", "smpl_vertices"):
        assert_parity(getattr(got, key), parity_expected[key][:1], key)

    checks = {c.key: c for c in run_doctor(system=False)}
    assert checks["pare_data"].status == "ok" and checks["smpl_neutral"].status == "ok"
    assert checks["manifest"].status == "ok"
    assert checks["yolo"].status == "fail" and "1,000 values" in checks["yolo"].message


def test_from_zip_then_verify_catches_modified_and_missing_files(
    store: AssetStore, pare_zip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["setup", "--from-zip", str(pare_zip)]) == 0
    assert main(["setup", "--verify"]) == 0
    assert "All 9 installed files match" in capsys.readouterr().out

    h36m = store.path("J_regressor_h36m.npy")
    data = bytearray(h36m.read_bytes())
    data[-1] ^= 0x01  # same size, different content
    h36m.write_bytes(bytes(data))
    store.path("yolov3.weights").unlink()
    assert main(["setup", "--verify"]) == 1
    out = capsys.readouterr().out
    assert "MODIFIED  J_regressor_h36m.npy: sha256 differs" in out
    assert "MISSING   yolov3.weights" in out
    assert "2 of 9 installed files are missing or modified" in out
    assert {c.key: c.status for c in run_doctor(system=False)}["manifest"] == "fail"


def test_verify_without_an_install_says_what_to_run(store: AssetStore, capsys) -> None:
    assert main(["setup", "--verify"]) == 4
    assert "run `pare-studio setup` first" in capsys.readouterr().err


@pytest.fixture
def previous_state(store: AssetStore, smpl_dir: Path) -> dict[str, str]:
    """A store that already holds an imported SMPL model (and its manifest)."""
    import_smpl_models({"neutral": smpl_dir / "body_models/smpl/SMPL_NEUTRAL.pkl"}, store)
    return tree_digest(store.root)


def assert_unchanged(store: AssetStore, before: dict[str, str]) -> None:
    assert tree_digest(store.root) == before
    assert not list(store.root.glob(".staging-*"))


def test_corrupted_archive_is_refused_and_nothing_installed(
    store: AssetStore, previous_state: dict[str, str], light_files, tmp_path: Path, capsys
) -> None:
    bad = write_zip(tmp_path / "pare-github-data.zip", light_files, stored=True)
    flip_byte_of_member(bad, "data/yolov3.weights")  # the last member unpacked: all others staged
    assert main(["setup", "--from-zip", str(bad)]) == 4
    err = capsys.readouterr().err
    assert "is damaged" in err and "Bad CRC-32" in err and "data/yolov3.weights" in err
    assert "Nothing was installed" in err
    assert_unchanged(store, previous_state)


def test_truncated_archive_is_refused(
    store: AssetStore, previous_state: dict[str, str], light_files, tmp_path: Path, capsys
) -> None:
    full = write_zip(tmp_path / "full.zip", light_files)
    cut = tmp_path / "pare-github-data.zip"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 2 // 3])
    assert main(["setup", "--from-zip", str(cut)]) == 4
    err = capsys.readouterr().err
    assert "is damaged (a truncated download or a corrupted file)" in err
    assert_unchanged(store, previous_state)


def test_damaged_download_is_discarded_for_a_fresh_one(
    store: AssetStore, http_server: RangeServer, light_files, tmp_path: Path, capsys
) -> None:
    bad = write_zip(tmp_path / "bad.zip", light_files, stored=True)
    flip_byte_of_member(bad, "data/J_regressor_extra.npy")
    http_server.routes["/d.zip"] = Route(bad)
    assert main(["setup", "--url", http_server.url("/d.zip")]) == 4
    err = capsys.readouterr().err
    assert "Bad CRC-32" in err and "run `pare-studio setup` again to download it afresh" in err
    assert tree_digest(store.root) == {} and not (store.root / "downloads").exists()


def test_checkpoint_of_another_network_is_refused(
    store: AssetStore, previous_state: dict[str, str], light_files, tmp_path: Path, capsys
) -> None:
    import torch

    wrong = tmp_path / "wrong.ckpt"
    torch.save({"state_dict": {"model.head.cam_mlp.weight": torch.zeros(3, 7)}}, wrong)
    files = dict(light_files)
    files["pare/checkpoints/pare_w_3dpw_checkpoint.ckpt"] = wrong
    z = write_zip(tmp_path / "pare-github-data.zip", files)
    assert main(["setup", "--from-zip", str(z)]) == 4
    err = capsys.readouterr().err
    assert "data/pare/checkpoints/pare_w_3dpw_checkpoint.ckpt in the archive does not load" in err
    assert "backbone" in err  # the strict loader lists the missing keys
    assert_unchanged(store, previous_state)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("drop_yolo", "lacks data/yolov3.weights"),
        ("no_checkpoints", "is not PARE's data archive"),
        ("escape", "unsafe entry 'data/../evil.txt'"),
        (
            "bad_regressor",
            "data/J_regressor_extra.npy (extra-joint regressor (9, 6890)) in the archive is not "
            "valid",
        ),
    ],
)
def test_archive_that_is_not_pare_data_is_refused(
    store: AssetStore, light_files, tmp_path: Path, capsys, edit: str, message: str
) -> None:
    files = dict(light_files)
    if edit == "drop_yolo":
        del files["yolov3.weights"]
    elif edit == "no_checkpoints":
        files = {k: v for k, v in files.items() if not k.startswith("pare/")}
    elif edit == "escape":
        files["../evil.txt"] = b"x"
    elif edit == "bad_regressor":
        (tmp_path / "r.npy").write_bytes(b"")
        np.save(tmp_path / "r.npy", np.zeros((9, 100)))
        files["J_regressor_extra.npy"] = tmp_path / "r.npy"
    z = write_zip(tmp_path / "pare-github-data.zip", files)
    assert main(["setup", "--from-zip", str(z)]) == 4
    assert message in capsys.readouterr().err
    assert tree_digest(store.root) == {}
    assert not (tmp_path / "evil.txt").exists()


def test_flat_archive_without_data_folder_is_accepted(
    store: AssetStore, light_files, tmp_path: Path
) -> None:
    """Some mirrors zip the contents of data/ directly: the layout is found by its checkpoints
    folder (checked here up to the checkpoint load, which the light stand-ins fail)."""
    from pare_studio.errors import ArchiveError
    from pare_studio.setup.install import install_pare_zip

    z = write_zip(tmp_path / "flat.zip", light_files, prefix="")
    with pytest.raises(
        ArchiveError, match=r"data/pare/checkpoints/pare_w_3dpw_checkpoint.ckpt .*does not load"
    ):
        install_pare_zip(z, store)
    report = install_pare_zip(z, store, load_checkpoints=False)
    assert set(report.installed) == EXPECTED_RELS
    assert report.ignored == ["__MACOSX/data/._yolov3.weights"]
    with zipfile.ZipFile(z) as zf:
        assert store.path("J_regressor_h36m.npy").read_bytes() == zf.read("J_regressor_h36m.npy")
    shutil.rmtree(store.root)


def test_staging_left_by_a_dead_setup_is_removed(
    store: AssetStore, light_files, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from pare_studio.setup.install import install_pare_zip

    dead_pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stale = store.root / f".staging-{dead_pid}-0000"
    running = store.root / f".staging-{os.getppid()}-0000"  # a live process: maybe mid-install
    for d in (stale, running):
        (d / "pare").mkdir(parents=True)
        (d / "pare" / "half.ckpt").write_bytes(b"x")
    install_pare_zip(write_zip(tmp_path / "z.zip", light_files), store, load_checkpoints=False)
    assert not stale.exists() and running.exists()
