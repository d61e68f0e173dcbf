"""The fast CPU path: ONNX Runtime parity, "auto" selection, export cache, fallbacks, bench.

One real export per session (into ``<assets>/onnx_cache``, kept between sessions when
``PARE_STUDIO_TEST_ASSETS`` is set); tests that need more exports copy that model instead of
running the exporter again.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from pare_studio.core.config import PareConfig, load_config
from pare_studio.core.fast import onnx_runner
from pare_studio.core.fast.cache import CACHE_ENV, ExportCache, ExportKey
from pare_studio.core.fast.fold import ChannelsLastInput, count_batchnorms, fold_batchnorm
from pare_studio.core.fast.onnx_runner import (
    FastPathUnavailable,
    OnnxRunner,
    build_auto_runner,
    build_onnx_runner,
    check_export,
    export_key,
)
from pare_studio.core.predictor import HEAD_KEYS, ParePredictor, load_predictor
from pare_studio.errors import ConfigError
from pare_studio.results import PREDICT_KEYS
from tests.conftest import assert_parity


@pytest.fixture(scope="module")
def export_calls() -> list[Path]:
    return []


@pytest.fixture(scope="module", autouse=True)
def module_cache(assets_dir: Path, export_calls: list[Path]) -> Iterator[Path]:
    """PARE_STUDIO_CACHE for this module; counts the real exporter's calls."""
    cache = assets_dir / "onnx_cache"
    real_export = onnx_runner.export_network

    def counting_export(network: torch.nn.Module, path: Path, *args: Any, **kwargs: Any) -> None:
        export_calls.append(path)
        real_export(network, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(CACHE_ENV, str(cache))
        mp.setattr(onnx_runner, "export_network", counting_export)
        yield cache


@pytest.fixture(scope="module")
def cfg(cfg_path: Path) -> PareConfig:
    return load_config(cfg_path)


@pytest.fixture(scope="module")
def onnx_predictor(cfg_path: Path, ckpt_path: Path, smpl_dir: Path) -> Iterator[ParePredictor]:
    pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="onnx")
    yield pred
    pred.close()


@pytest.fixture(scope="module")
def network(cfg: PareConfig, ckpt_path: Path) -> torch.nn.Module:
    from pare_studio.core.checkpoint import load_network_weights
    from pare_studio.core.network import build_network

    net = build_network(cfg)
    load_network_weights(net, ckpt_path)
    return net.eval()


@pytest.fixture
def reuse_network(network: torch.nn.Module, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exports build the network from the module's copy instead of reading the checkpoint."""
    monkeypatch.setattr(onnx_runner, "_build_network", lambda cfg, ckpt: copy.deepcopy(network))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("pare_studio")
    ]


def _copying_exporter(good: Path, calls: list[Path]):  # noqa: ANN202
    """Stands in for export_network: writes the known-good export (no 30+ s export)."""

    def export(
        network: torch.nn.Module, path: Path, img_res: int = 224, exporter: str = ""
    ) -> None:
        calls.append(path)
        shutil.copyfile(good, path)

    return export


def _check_all_eight(pred: ParePredictor, images: np.ndarray, expected: dict, batch: int) -> None:
    ours = pred.predict(images, batch_size=batch).to_reference_dict()
    for key in PREDICT_KEYS:
        assert ours[key].dtype == np.float32, key
        assert_parity(ours[key], expected[key], key)


# ------------------------------------------------------------------------ parity and selection


def test_onnx_backend_parity_all_eight_arrays(
    onnx_predictor: ParePredictor,
    parity_inputs: np.ndarray,
    parity_expected: dict[str, np.ndarray],
) -> None:
    assert onnx_predictor.backend == "onnx"
    assert isinstance(onnx_predictor.runner, OnnxRunner)
    # batch 3 -> calls of 3 and 1 crops: the exported batch axis is dynamic
    _check_all_eight(onnx_predictor, parity_inputs, parity_expected, batch=3)
    heads = onnx_predictor.runner(parity_inputs[:2])
    assert sorted(heads) == sorted(HEAD_KEYS)
    assert heads["pred_pose"].shape == (2, 24, 3, 3) and heads["pred_pose"].dtype == np.float32


def test_auto_picks_onnx_on_cpu_and_reuses_the_cache(
    onnx_predictor: ParePredictor,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    parity_inputs: np.ndarray,
    parity_expected: dict[str, np.ndarray],
    export_calls: list[Path],
    module_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exports_before = len(export_calls)
    assert exports_before <= len(onnx_runner.EXPORTERS)  # the fixture's export, if any
    model = onnx_predictor.runner.model_path
    assert model is not None and model.parent == module_cache / "onnx" and model.is_file()
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["onnx_size"] == model.stat().st_size
    assert meta["check_max_abs_diff"] < 1e-3

    with caplog.at_level(logging.WARNING):
        pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")  # backend="auto"
    try:
        assert pred.backend == "onnx"
        assert pred.runner.cache_hit and pred.runner.export_seconds is None
        assert len(export_calls) == exports_before  # second load: no export
        assert _warnings(caplog) == []
        assert pred.runner.threads == torch.get_num_threads()
        _check_all_eight(pred, parity_inputs, parity_expected, batch=4)
    finally:
        pred.close()
    with pytest.raises(RuntimeError, match="closed"):
        pred.runner(parity_inputs[:1])


def test_auto_on_gpu_devices_uses_torch(
    cfg: PareConfig, ckpt_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = object()
    monkeypatch.setattr(onnx_runner, "build_torch_runner", lambda c, p, d: (sentinel, d))

    def no_onnx(*args: object, **kwargs: object) -> None:
        raise AssertionError("the ONNX path must not be tried for a GPU device")

    monkeypatch.setattr(onnx_runner, "load_onnx_runner", no_onnx)
    for dev in ("cuda", "cuda:1", "mps"):
        assert build_auto_runner(cfg, ckpt_path, torch.device(dev)) == (sentinel, torch.device(dev))
    with pytest.raises(ConfigError, match="CPU only"):
        build_onnx_runner(cfg, ckpt_path, torch.device("cuda"))


# ------------------------------------------------------------------------ cache key and damage


def test_cache_key_follows_checkpoint_config_and_versions(cfg: PareConfig, tmp_path: Path) -> None:
    import onnxruntime

    a, b = tmp_path / "a.ckpt", tmp_path / "b.ckpt"
    a.write_bytes(b"weights-a" * 1000)
    b.write_bytes(b"weights-a" * 999 + b"weights-b")
    key_a = export_key(cfg, a, onnxruntime)
    assert export_key(cfg, a, onnxruntime).digest == key_a.digest  # deterministic
    assert export_key(cfg, b, onnxruntime).digest != key_a.digest  # checkpoint bytes
    other_net = dataclasses.replace(cfg, num_deconv_filters=64)
    assert export_key(other_net, a, onnxruntime).digest != key_a.digest
    not_network = dataclasses.replace(cfg, batch_size=7, focal_length=1000.0)
    assert export_key(not_network, a, onnxruntime).digest == key_a.digest
    assert key_a.versions["onnxruntime"] == onnxruntime.__version__
    assert key_a.versions["torch"] == torch.__version__
    bumped = ExportKey(key_a.ckpt_sha256, key_a.config, {**key_a.versions, "export_code": "999"})
    assert bumped.digest != key_a.digest

    cache = ExportCache(tmp_path / "cache")
    cache.store(key_a, lambda p: p.write_bytes(b"model-a"))
    assert cache.lookup(key_a) is not None
    key_b = export_key(cfg, b, onnxruntime)
    assert cache.lookup(key_b) is None  # another checkpoint -> another entry
    assert cache.model_path(key_a) != cache.model_path(key_b)


def test_cache_detects_damage_and_prunes(
    cfg: PareConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = ExportCache(tmp_path / "cache", max_entries=2)
    key = ExportKey("0" * 64, {"backbone": "x"}, {"torch": "1"})
    payload = bytes(range(256)) * 64

    def fresh() -> Path:
        entry = cache.store(key, lambda p: p.write_bytes(payload))
        assert entry.model.read_bytes() == payload
        assert cache.lookup(key) is not None
        return entry.model

    model = fresh()
    flipped = bytearray(payload)
    flipped[5000] ^= 0xFF  # same size, other bytes
    model.write_bytes(bytes(flipped))
    with caplog.at_level(logging.WARNING):
        assert cache.lookup(key) is None
    assert "sha256" in " ".join(_warnings(caplog))
    assert not model.exists() and not cache.meta_path(key).exists()

    fresh().write_bytes(payload[:100])  # truncated
    assert cache.lookup(key) is None
    fresh()
    cache.meta_path(key).write_text("{not json")
    assert cache.lookup(key) is None
    fresh().unlink()
    assert cache.lookup(key) is None

    for i in range(4):  # only the 2 most recent entries stay
        k = ExportKey(f"{i}" * 64, {}, {})
        cache.store(k, lambda p: p.write_bytes(b"m"))
        os.utime(cache.meta_path(k), (1000 + i, 1000 + i))
    cache.prune()
    assert len(cache.entries()) == 2
    assert len(list(cache.dir.glob("*.onnx"))) == 2
    assert not list(cache.dir.glob("*.tmp"))


def test_corrupt_cached_model_is_rebuilt(
    onnx_predictor: ParePredictor,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    parity_inputs: np.ndarray,
    parity_expected: dict[str, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[Path] = []
    good = onnx_predictor.runner.model_path
    monkeypatch.setattr(onnx_runner, "export_network", _copying_exporter(good, calls))
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))

    pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")
    assert pred.backend == "onnx" and not pred.runner.cache_hit and len(calls) == 1
    model = pred.runner.model_path
    pred.close()
    assert model.parent == tmp_path / "cache" / "onnx"

    data = bytearray(model.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):  # damage the weights in place
        data[i] ^= 0xFF
    model.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")
    try:
        assert pred.backend == "onnx" and len(calls) == 2  # detected and exported again
        assert any("damaged" in w for w in _warnings(caplog))
        _check_all_eight(pred, parity_inputs, parity_expected, batch=4)
    finally:
        pred.close()


# ------------------------------------------------------------------------ fallbacks


def test_no_writable_cache_dir_falls_back_with_one_warning(
    onnx_predictor: ParePredictor,
    network: torch.nn.Module,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))  # under a regular file: mkdir fails
    with caplog.at_level(logging.WARNING):
        pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")
    assert pred.backend == "torch"
    pred.close()
    warned = _warnings(caplog)
    assert len(warned) == 1, warned
    assert "cache folder" in warned[0] and CACHE_ENV in warned[0] and "PyTorch" in warned[0]

    # asked for explicitly, the onnx backend exports into a temporary folder instead
    monkeypatch.setattr(onnx_runner, "_build_network", lambda c, p: copy.deepcopy(network))
    calls: list[Path] = []
    monkeypatch.setattr(
        onnx_runner, "export_network", _copying_exporter(onnx_predictor.runner.model_path, calls)
    )
    caplog.clear()
    before = set(Path(tempfile.gettempdir()).glob("pare-studio-onnx-*"))
    with caplog.at_level(logging.WARNING):
        pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="onnx")
    assert pred.backend == "onnx" and len(calls) == 1
    assert len(_warnings(caplog)) == 1 and "temporary" in _warnings(caplog)[0]
    assert set(Path(tempfile.gettempdir()).glob("pare-studio-onnx-*")) == before  # cleaned up
    assert pred.runner(np.zeros((1, 3, 224, 224), np.float32))["pred_cam"].shape == (1, 3)
    pred.close()


def test_onnxruntime_missing_falls_back_with_one_warning(
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    parity_inputs: np.ndarray,
    parity_expected: dict[str, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import raises ImportError
    with caplog.at_level(logging.WARNING):
        pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")
    try:
        assert pred.backend == "torch"
        # the fallback network is folded + channels_last, and still passes the parity check
        assert isinstance(pred.runner.network, ChannelsLastInput)
        assert count_batchnorms(pred.runner.network) == 0
        _check_all_eight(pred, parity_inputs, parity_expected, batch=4)
    finally:
        pred.close()
    warned = _warnings(caplog)
    assert len(warned) == 1 and "ONNX Runtime" in warned[0], warned
    with pytest.raises(ConfigError, match="onnxruntime"):
        load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="onnx")


def test_export_failure_falls_back_with_one_warning(
    reuse_network: None,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_export(
        network: torch.nn.Module, path: Path, img_res: int = 224, exporter: str = ""
    ) -> None:
        tried.append(exporter)
        path.write_bytes(b"partial")
        raise RuntimeError("exporter exploded")

    tried: list[str] = []

    monkeypatch.setattr(onnx_runner, "export_network", broken_export)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        pred = load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu")
    assert pred.backend == "torch"
    pred.close()
    warned = _warnings(caplog)
    assert len(warned) == 1 and "exporter exploded" in warned[0], warned
    assert tried == list(onnx_runner.EXPORTERS)  # every exporter was tried
    assert sorted(p.name for p in (tmp_path / "cache" / "onnx").iterdir()) == []  # no leftovers
    with pytest.raises(ConfigError, match="exporter exploded"):
        load_predictor(cfg_path, ckpt_path, smpl_dir, device="cpu", backend="onnx")


def test_export_check_rejects_a_different_network(
    onnx_predictor: ParePredictor, network: torch.nn.Module
) -> None:
    session = onnx_predictor.runner._session
    assert check_export(session, network) < 1e-4

    class Zeros(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            n = x.shape[0]
            shapes = {
                "pred_pose": (n, 24, 3, 3),
                "pred_shape": (n, 10),
                "pred_cam": (n, 3),
                "pred_segm_mask": (n, 25, 56, 56),
            }
            return {k: torch.zeros(s) for k, s in shapes.items()}

    with pytest.raises(FastPathUnavailable, match="differs from PyTorch"):
        check_export(session, Zeros())


def test_both_exporters_handle_the_head(network: torch.nn.Module, tmp_path: Path) -> None:
    """The head (slicing, softmax pooling, locally connected layer, 6-D -> rotation) exports
    with the TorchScript-based and with the dynamo exporter (the fallback) and matches eager."""
    import onnxruntime

    head = fold_batchnorm(network.head)
    channels = network.backbone.out_channels
    for exporter in onnx_runner.EXPORTERS:
        path = tmp_path / f"head_{exporter}.onnx"
        onnx_runner.export_network(head, path, img_res=56, exporter=exporter, channels=channels)
        session = onnx_runner.make_session(onnxruntime, path)
        assert check_export(session, network.head, img_res=56, channels=channels) < 1e-4
        assert [o.name for o in session.get_outputs()] == list(HEAD_KEYS)
    with pytest.raises(ValueError, match="unknown exporter"):
        onnx_runner.export_network(head, tmp_path / "x.onnx", exporter="tensorrt")


# ------------------------------------------------------------------------ folding, bench


def test_fold_batchnorm_keeps_outputs(network: torch.nn.Module, parity_inputs: np.ndarray) -> None:
    before = count_batchnorms(network)
    folded = fold_batchnorm(network)
    assert before > 100 and count_batchnorms(network) == before  # original untouched
    assert count_batchnorms(folded) == 0
    x = torch.from_numpy(parity_inputs[:2])
    with torch.inference_mode():
        ref, got = network(x), folded(x)
    for key in HEAD_KEYS:
        assert_parity(got[key].numpy(), ref[key].numpy(), key)


def test_bench_command_compares_both_paths(
    onnx_predictor: ParePredictor,
    cfg_path: Path,
    ckpt_path: Path,
    smpl_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from pare_studio.cli import main

    out = tmp_path / "bench.json"
    argv = ["bench", "--cfg", str(cfg_path), "--ckpt", str(ckpt_path), "--smpl-dir"]
    argv += [str(smpl_dir), "--batch-sizes", "1,2", "--runs", "1", "--warmup", "0"]
    assert main([*argv, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "plain torch ms/crop" in text and "fast (onnx)" in text
    result = json.loads(out.read_text())
    assert result["fast_backend"] == "onnx"
    assert [r["batch"] for r in result["rows"]] == [1, 2]
    for row in result["rows"]:
        assert row["within_tol"] and np.isfinite(row["max_abs_diff"])
        assert row["plain_ms"] > 0 and row["fast_ms"] > 0
        assert row["ratio"] == pytest.approx(row["plain_ms"] / row["fast_ms"])
    assert main(["bench", "--batch-sizes", "0"]) == 2  # ConfigError exit code
