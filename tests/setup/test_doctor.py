"""``pare-studio doctor``: the report as data, its exit status, and probes that cannot hang it."""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

from pare_studio.assets import AssetStore
from pare_studio.cli import main
from pare_studio.setup.doctor import FAIL, OK, WARN, demo_ready, run_doctor, run_probes
from pare_studio.setup.manifest import Manifest
from tests.setup.conftest import populate

YOLO_BYTES = 20 + 4 * 62_001_757


def make_ready(root: Path) -> None:
    """Files named as the demo needs them; yolov3.weights is a sparse file of the COCO size."""
    populate(root)
    with open(root / "yolov3.weights", "wb") as f:
        f.write(struct.pack("<3iq", 0, 2, 0, 32013312))
        f.truncate(YOLO_BYTES)


def statuses(store: AssetStore) -> dict[str, str]:
    return {c.key: c.status for c in run_doctor(store, system=False)}


def test_empty_store_lists_each_missing_thing_with_its_command(store: AssetStore, capsys) -> None:
    assert main(["doctor", "--assets-only"]) == 1
    out = capsys.readouterr().out
    assert f"Asset store: {store.root}  ($PARE_STUDIO_DATA)" in out
    assert "FAIL  PARE data" in out and "`pare-studio setup`" in out
    assert "--from-zip pare-github-data.zip" in out and "drive.google.com" in out
    assert "FAIL  SMPL neutral model" in out and "https://smplify.is.tue.mpg.de" in out
    assert "`pare-studio setup --smpl FILE`" in out
    assert "warn  SMPL male model" in out and "--smpl-male FILE" in out
    assert "FAIL  YOLOv3 weights" in out
    assert (
        "Not ready for `pare-studio demo`: fix PARE data, SMPL neutral model, YOLOv3 weights" in out
    )


def test_ready_store_exits_zero(store: AssetStore, capsys) -> None:
    make_ready(store.root)
    assert main(["doctor", "--assets-only", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["demo_ready"] is True and report["store"] == str(store.root)
    by_key = {c["key"]: c for c in report["checks"]}
    assert by_key["pare_data"]["status"] == OK and by_key["yolo"]["status"] == OK
    assert by_key["smpl_female"] == {
        **by_key["smpl_female"],
        "status": WARN,
        "required": False,
    }
    assert (
        main(["doctor", "--assets-only", "--data-root", str(store.root.parent / "elsewhere")]) == 1
    )


def test_each_missing_piece_is_what_blocks(store: AssetStore) -> None:
    make_ready(store.root)
    (store.root / "pare/checkpoints/pare_checkpoint.ckpt").unlink()  # not the demo's model
    s = statuses(store)
    assert s["pare_data"] == WARN and demo_ready(run_doctor(store, system=False))
    (store.root / "pare/checkpoints/pare_w_3dpw_config.yaml").unlink()
    assert statuses(store)["pare_data"] == FAIL
    make_ready(store.root)
    (store.root / "body_models/smpl/SMPL_NEUTRAL.npz").rename(
        store.root / "body_models/smpl/SMPL_NEUTRAL.pkl"
    )
    check = {c.key: c for c in run_doctor(store, system=False)}["smpl_neutral"]
    assert check.status == OK and "pickle" in check.message and "--smpl" in check.next_step
    with open(store.root / "yolov3.weights", "r+b") as f:
        f.truncate(YOLO_BYTES - 4)
    check = {c.key: c for c in run_doctor(store, system=False)}["yolo"]
    assert check.status == FAIL and "62,001,756 values" in check.message


def test_reference_data_folder_counts(store: AssetStore) -> None:
    make_ready(Path.cwd() / "data")
    checks = run_doctor(store, system=False)
    assert demo_ready(checks)
    assert "./data" in {c.key: c for c in checks}["pare_data"].message


def test_changed_recorded_file_fails_the_manifest_check(store: AssetStore) -> None:
    make_ready(store.root)
    m = Manifest()
    m.record("J_regressor_h36m.npy", "0" * 64, 12345, source="pare-data")
    m.save(store)
    check = {c.key: c for c in run_doctor(store, system=False)}["manifest"]
    assert check.status == FAIL and "J_regressor_h36m.npy (size changed)" in check.message
    assert "--verify" in check.next_step
    store.manifest_path.write_text("{not json")
    assert statuses(store)["manifest"] == FAIL


def test_probe_that_hangs_is_killed_at_the_timeout() -> None:
    t0 = time.monotonic()
    res = run_probes(
        {
            "hang": [sys.executable, "-c", "import time; time.sleep(60)"],
            "fine": [sys.executable, "-c", 'print(\'PROBE {"ok": true, "renderer": "r"}\')'],
        },
        timeout=2.0,
    )
    assert time.monotonic() - t0 < 20
    assert res["hang"] == {"ok": False, "error": "timed out after 2 s (killed)"}
    assert res["fine"] == {"ok": True, "renderer": "r"}


def test_probe_that_crashes_keeps_what_it_said_before() -> None:
    code = (
        'import os, sys; print(\'PROBE {"version": "6.9"}\', flush=True); '
        "sys.stderr.write('qt.qpa.xcb: could not connect to display\\n'); sys.stderr.flush(); "
        "os.abort()"
    )
    res = run_probes({"qt": [sys.executable, "-c", code]}, timeout=30)["qt"]
    assert res["version"] == "6.9" and res["ok"] is False
    assert res["error"] == "killed by SIGABRT: qt.qpa.xcb: could not connect to display"


def test_full_doctor_reports_every_system_check(store: AssetStore, capsys) -> None:
    """Runs the real torch / PyAV / OpenGL / Qt checks; whatever this machine has, each gets a line
    and nothing hangs. PyAV's bundled libx264 and torch are dependencies, so those must pass."""
    make_ready(store.root)
    rc = main(["doctor", "--timeout", "60"])
    out = capsys.readouterr().out
    for title in (
        "PyTorch",
        "CUDA",
        "H.264 encoder",
        "H.264 decoder",
        "OpenGL offscreen (EGL)",
        "OpenGL in a window",
        "Qt (PySide6)",
    ):
        assert f"  {title}" in out, title
    assert "ok    PyTorch" in out and "ok    H.264 encoder" in out and "ok    H.264 decoder" in out
    assert rc == (0 if "Ready:" in out else 1)
    assert ("FAIL  OpenGL offscreen" in out) == (rc == 1)
