"""``pare-studio predict`` in-process: parity of every output, one-line errors, no tracebacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pare_studio.cli import main
from pare_studio.errors import CheckpointError, InputArrayError, OutputError, SmplModelError
from pare_studio.results import PREDICT_KEYS
from tests.conftest import assert_parity


def _args(cfg: Path, ckpt: Path, smpl: Path, crops: Path, out: Path, *extra: str) -> list[str]:
    # --backend torch: the eager network is the ground truth (the fast backends test themselves)
    # fmt: off
    return [
        "predict", "--cfg", str(cfg), "--ckpt", str(ckpt), "--smpl-dir", str(smpl),
        "--crops", str(crops), "--out", str(out), "--device", "cpu", "--backend", "torch",
        *extra,
    ]
    # fmt: on


def test_predict_cli_parity(
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    parity_dir: Path,
    parity_expected: dict[str, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out.npz"
    code = main(
        _args(cfg_path, ckpt_path, smpl_dir, parity_dir / "inputs.npz", out, "--batch-size", "4")
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "4 crop(s)" in captured.out and "ms/crop" in captured.out
    assert len(captured.out.strip().splitlines()) == 1
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == sorted(PREDICT_KEYS)
        errors = {}
        for key in PREDICT_KEYS:
            assert z[key].dtype == np.float32, key
            assert_parity(z[key], parity_expected[key], key)
            errors[key] = float(np.abs(z[key].astype(np.float64) - parity_expected[key]).max())
    print("max abs errors:", {k: f"{v:.2e}" for k, v in errors.items()})
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]  # no temp file left


def _check_error(code: int, capsys: pytest.CaptureFixture[str], exc: type, *needles: str) -> str:
    captured = capsys.readouterr()
    assert code == exc.exit_code != 0
    err = captured.err.strip()
    assert err.startswith("pare-studio predict: error:"), err
    assert "Traceback" not in captured.err and "Traceback" not in captured.out
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.fixture()
def crops(tmp_path: Path, parity_inputs: np.ndarray) -> Path:
    path = tmp_path / "crops.npz"
    np.savez(path, images=parity_inputs[:1])
    return path


def test_missing_checkpoint(
    cfg_path: Path, smpl_dir: Path, crops: Path, tmp_path: Path, capsys
) -> None:
    missing = tmp_path / "nope.ckpt"
    code = main(_args(cfg_path, missing, smpl_dir, crops, tmp_path / "o.npz"))
    _check_error(code, capsys, CheckpointError, str(missing), "not found")
    assert not (tmp_path / "o.npz").exists()


def test_truncated_checkpoint(
    cfg_path: Path, ckpt_path: Path, smpl_dir: Path, crops: Path, tmp_path: Path, capsys
) -> None:
    trunc = tmp_path / "trunc.ckpt"
    with open(ckpt_path, "rb") as src, open(trunc, "wb") as dst:
        dst.write(src.read(4 << 20))
    code = main(_args(cfg_path, trunc, smpl_dir, crops, tmp_path / "o.npz"))
    _check_error(code, capsys, CheckpointError, str(trunc))
    assert not (tmp_path / "o.npz").exists()


def test_missing_smpl_file(
    cfg_path: Path, ckpt_path: Path, crops: Path, tmp_path: Path, capsys
) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    code = main(_args(cfg_path, ckpt_path, empty, crops, tmp_path / "o.npz"))
    _check_error(code, capsys, SmplModelError, "SMPL_NEUTRAL.pkl", "smpl.is.tue.mpg.de")


def test_wrong_crops_shape_and_key(
    cfg_path: Path, ckpt_path: Path, smpl_dir: Path, tmp_path: Path, capsys
) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 3, 112, 112), np.float32))
    code = main(_args(cfg_path, ckpt_path, smpl_dir, bad, tmp_path / "o.npz"))
    _check_error(code, capsys, InputArrayError, "(2, 3, 112, 112)", "(N, 3, 224, 224)")

    nokey = tmp_path / "nokey.npz"
    np.savez(nokey, crops=np.zeros((1, 3, 224, 224), np.float32))
    code = main(_args(cfg_path, ckpt_path, smpl_dir, nokey, tmp_path / "o.npz"))
    _check_error(code, capsys, InputArrayError, "'images'", "crops")

    raw = tmp_path / "raw.npz"
    np.savez(raw, images=np.zeros((1, 3, 224, 224), np.uint8))
    code = main(_args(cfg_path, ckpt_path, smpl_dir, raw, tmp_path / "o.npz"))
    _check_error(code, capsys, InputArrayError, "uint8")

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    code = main(_args(cfg_path, ckpt_path, smpl_dir, junk, tmp_path / "o.npz"))
    _check_error(code, capsys, InputArrayError, str(junk))

    code = main(_args(cfg_path, ckpt_path, smpl_dir, tmp_path / "absent.npz", tmp_path / "o.npz"))
    _check_error(code, capsys, InputArrayError, "absent.npz", "not found")
    assert not (tmp_path / "o.npz").exists()


def test_missing_output_folder(
    cfg_path: Path, ckpt_path: Path, smpl_dir: Path, crops: Path, tmp_path: Path, capsys
) -> None:
    code = main(_args(cfg_path, ckpt_path, smpl_dir, crops, tmp_path / "no" / "o.npz"))
    _check_error(code, capsys, OutputError, str(tmp_path / "no"))
