"""PARE's network in ONNX Runtime: export (dynamic batch), on-disk cache, session runner.

Only the network is exported (images -> ``pred_pose`` (B,24,3,3), ``pred_shape`` (B,10),
``pred_cam`` (B,3), ``pred_segm_mask`` (B,25,56,56)); SMPL and the projection stay in torch
(:meth:`~pare_studio.core.predictor.ParePredictor.outputs_from_heads`).

Load (:func:`load_onnx_runner`): sha256 of the checkpoint file -> cache key
(:class:`~pare_studio.core.fast.cache.ExportKey`) -> cached ``.onnx`` if intact, else build the
PyTorch network with the checkpoint's weights (strict), fold its batch norms into the convs
(:mod:`~pare_studio.core.fast.fold`), export it with ``torch.onnx.export`` (:data:`EXPORTERS`:
the TorchScript-based exporter, else the dynamo one), check the ONNX Runtime outputs against
eager PyTorch on a random crop (:data:`EXPORT_CHECK_REL`) and store it. A cache hit does
not read the checkpoint's tensors at all.

Backends registered in :data:`pare_studio.core.predictor.RUNNER_FACTORIES`:

- ``"onnx"`` (:func:`build_onnx_runner`): this engine, CPU only; problems raise ``ConfigError``.
  Without a writable cache folder it exports into a temporary folder (one warning, every load).
- ``"auto"`` (:func:`build_auto_runner`): on CPU this engine, or, when it cannot be used
  (ONNX Runtime missing, no writable cache folder, export failure), the PyTorch network
  (batch norm folded, channels_last: :func:`build_torch_cpu_runner`) with exactly one
  ``logging`` warning saying why. On CUDA / MPS: the plain PyTorch network on that device.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pare_studio.core.fast.cache import (
    CacheUnavailable,
    ExportCache,
    ExportKey,
    config_fields,
    file_sha256,
)
from pare_studio.core.predictor import HEAD_KEYS, NetworkRunner, TorchRunner, build_torch_runner
from pare_studio.errors import ConfigError, PareStudioError

if TYPE_CHECKING:
    from types import ModuleType

    from pare_studio.core.config import PareConfig

log = logging.getLogger(__name__)

#: Version of the export code; part of the cache key (bump when the exported graph changes).
EXPORT_VERSION = 2

#: Exporters tried in order until one gives a model that passes :func:`check_export`: the
#: TorchScript-based one is ~6x faster (~7 s vs ~40 s of CPU for the folded network) but
#: deprecated by PyTorch; the dynamo one is its successor.
EXPORTERS: tuple[str, ...] = ("torchscript", "dynamo")

#: ONNX input name.
INPUT_NAME = "images"

#: ONNX opset of the export.
OPSET = 18

#: Export check: max |onnx - torch| <= EXPORT_CHECK_REL * max(1, max |torch|) per output.
EXPORT_CHECK_REL = 1e-4


class FastPathUnavailable(RuntimeError):
    """The ONNX Runtime path cannot be used on this machine (the message says why)."""


# ---------------------------------------------------------------------------- ONNX Runtime


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module; :class:`FastPathUnavailable` when it cannot be imported."""
    try:
        import onnxruntime
    except (ImportError, OSError) as exc:
        raise FastPathUnavailable(
            f"ONNX Runtime cannot be imported ({type(exc).__name__}: {exc}); "
            "`pip install onnxruntime` for the fast CPU path"
        ) from None
    return onnxruntime


def make_session(ort: ModuleType, model: Path, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the CPU for ``model``.

    Parameters
    ----------
    ort : the onnxruntime module.
    model : ``.onnx`` file.
    threads : intra-op threads; None = ``torch.get_num_threads()`` (what the PyTorch path uses).

    Options: full graph optimisation (constant folding, Conv+BN / Conv+ReLU fusion, NCHWc
    layout), sequential execution, one inter-op thread, no spin-waiting, runtime warnings muted.
    """
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    # idle worker threads sleep instead of spinning: the same speed on an idle machine, and
    # far better when the cores are shared (video decoding, rendering, other processes)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), sess_options=so, providers=["CPUExecutionProvider"])


class OnnxRunner:
    """Network runner on an ONNX Runtime CPU session (see :class:`NetworkRunner`).

    Parameters
    ----------
    session : ``onnxruntime.InferenceSession`` of an export by :func:`export_network`.
    model_path : the ``.onnx`` it was loaded from (informational).
    cache_hit : True when the model came from the cache, False when exported by this load.
    export_seconds : seconds this load spent making the model (network build, folding, export,
        check, store); None on a cache hit.

    Calling it with images (B, 3, 224, 224) float32 C-contiguous returns a dict of numpy float32
    arrays with :data:`~pare_studio.core.predictor.HEAD_KEYS`.
    """

    name = "onnx"

    def __init__(
        self,
        session: Any,
        model_path: Path | None = None,
        cache_hit: bool = False,
        export_seconds: float | None = None,
    ) -> None:
        self.device = torch.device("cpu")
        self.model_path = model_path
        self.cache_hit = bool(cache_hit)
        self.export_seconds = export_seconds
        self._session: Any = session
        self._input = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]
        missing = [k for k in HEAD_KEYS if k not in names]
        if missing:
            raise FastPathUnavailable(f"the ONNX model has no output(s) {', '.join(missing)}")

    @property
    def threads(self) -> int:
        """Intra-op threads of the session."""
        if self._session is None:
            return 0
        return int(self._session.get_session_options().intra_op_num_threads)

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self._session is None:
            raise RuntimeError("OnnxRunner is closed")
        outs = self._session.run(list(HEAD_KEYS), {self._input: images})
        return dict(zip(HEAD_KEYS, outs, strict=True))

    def close(self) -> None:
        self._session = None


# ---------------------------------------------------------------------------- export


class _HeadTuple(torch.nn.Module):
    """The network with its dict output flattened to a tuple in :data:`HEAD_KEYS` order."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.network(images)
        return tuple(out[k] for k in HEAD_KEYS)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints, warnings and torch's log lines."""
    import io
    import sys

    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    stdout = sys.stdout
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sys.stdout = io.StringIO()
            yield
    finally:
        sys.stdout = stdout
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_network(
    network: torch.nn.Module,
    path: Path,
    img_res: int = 224,
    exporter: str = "dynamo",
    channels: int = 3,
) -> None:
    """Export the network (eval mode, CPU, float32) to ONNX with a dynamic batch axis.

    Parameters
    ----------
    network : :class:`~pare_studio.core.network.PareNetwork` (or any module with its outputs).
    path : ``.onnx`` file to write (weights embedded; ~130 MB for HRNet-W32).
    img_res, channels : the input is (N, channels, img_res, img_res) (crops: 3, 224).
    exporter : ``"torchscript"`` (``torch.onnx.export(dynamo=False)``, opset 17: ~7 s CPU for
        the folded network, deprecated by PyTorch) or ``"dynamo"`` (``dynamo=True`` via
        ``torch.export`` + onnxscript, opset :data:`OPSET`: ~40 s CPU).

    Raises
    ------
    FastPathUnavailable : the dynamo exporter's onnxscript is not installed.
    Whatever the exporter raises on a graph it cannot translate.
    """
    wrapper = _HeadTuple(network.to("cpu", torch.float32).eval()).eval()
    example = torch.zeros(2, channels, img_res, img_res)  # 2: torch.export specialises 1
    if exporter == "torchscript":
        with _quiet_exporter():
            torch.onnx.export(
                wrapper,
                (example,),
                str(path),
                dynamo=False,
                opset_version=17,
                input_names=[INPUT_NAME],
                output_names=list(HEAD_KEYS),
                dynamic_axes={name: {0: "batch"} for name in (INPUT_NAME, *HEAD_KEYS)},
                do_constant_folding=True,
            )
        return
    if exporter != "dynamo":
        raise ValueError(f"unknown exporter {exporter!r}")
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it)
    except ImportError as exc:
        raise FastPathUnavailable(
            f"the ONNX exporter needs onnxscript ({exc}); `pip install onnxscript`"
        ) from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    with _quiet_exporter():
        program = torch.onnx.export(
            wrapper,
            (example,),
            dynamo=True,
            opset_version=OPSET,
            input_names=[INPUT_NAME],
            output_names=list(HEAD_KEYS),
            dynamic_shapes={"images": {0: batch}},
            optimize=True,
            external_data=False,
            verbose=False,
        )
        if program is None:  # pragma: no cover - exporters that write the file themselves
            raise FastPathUnavailable("torch.onnx.export returned no program")
        program.save(str(path), external_data=False)


def check_export(
    session: Any,
    network: torch.nn.Module,
    img_res: int = 224,
    rel: float = EXPORT_CHECK_REL,
    channels: int = 3,
) -> float:
    """Compare the session with eager PyTorch on one seeded random crop (the export's example
    batch has two, so a batch size baked into the graph shows up here).

    Returns
    -------
    float : the largest max|onnx - torch| over the four outputs.

    Raises
    ------
    FastPathUnavailable : an output differs by more than ``rel * max(1, max|torch|)``.
    """
    x = np.random.default_rng(0).standard_normal((1, channels, img_res, img_res), np.float32)
    with torch.inference_mode():
        ref = network(torch.from_numpy(x))
    got = session.run(list(HEAD_KEYS), {session.get_inputs()[0].name: x})
    worst = 0.0
    for key, ours in zip(HEAD_KEYS, got, strict=True):
        theirs = ref[key].numpy()
        if ours.shape != theirs.shape:
            raise FastPathUnavailable(
                f"the exported network's {key} has shape {ours.shape}, PyTorch's {theirs.shape}"
            )
        err = float(np.abs(ours.astype(np.float64) - theirs).max())
        tol = rel * max(1.0, float(np.abs(theirs).max()))
        if not err <= tol:
            raise FastPathUnavailable(
                f"the exported network's {key} differs from PyTorch by {err:.3g} (> {tol:.3g})"
            )
        worst = max(worst, err)
    return worst


# ---------------------------------------------------------------------------- loading


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def export_key(cfg: PareConfig, ckpt_path: Path, ort: ModuleType) -> ExportKey:
    """The cache key of ``cfg`` + ``ckpt_path`` (hashes the checkpoint file, ~0.1 s / 100 MB)."""
    return ExportKey(
        ckpt_sha256=file_sha256(ckpt_path),
        config=config_fields(cfg),
        versions={
            "torch": torch.__version__,
            "onnx": _version("onnx"),
            "onnxscript": _version("onnxscript"),
            "onnxruntime": str(getattr(ort, "__version__", "unknown")),
            "export_code": str(EXPORT_VERSION),
            "opset": str(OPSET),
        },
    )


def _build_network(cfg: PareConfig, ckpt_path: Path) -> torch.nn.Module:
    from pare_studio.core.checkpoint import load_network_weights
    from pare_studio.core.network import build_network

    network = build_network(cfg)
    load_network_weights(network, ckpt_path)
    return network.eval()


def load_onnx_runner(
    cfg: PareConfig,
    ckpt_path: str | Path,
    cache: ExportCache | None = None,
    threads: int | None = None,
    allow_uncached: bool = False,
) -> OnnxRunner:
    """The ONNX Runtime runner for ``cfg`` + ``ckpt_path``, from the cache or exported now.

    Parameters
    ----------
    cfg : the configuration (network fields).
    ckpt_path : the PARE checkpoint.
    cache : export cache; None = :class:`ExportCache` at the default location.
    threads : intra-op threads; None = ``torch.get_num_threads()``.
    allow_uncached : when the cache folder cannot be written, export into a temporary folder
        (one warning) instead of raising.

    Raises
    ------
    FastPathUnavailable : ONNX Runtime / the exporter missing, cache folder not writable
        (unless ``allow_uncached``), or an export that does not match PyTorch.
    CheckpointError, ConfigError : the checkpoint / configuration (as for the PyTorch path).
    Anything unexpected the exporter or ONNX Runtime raises.
    """
    ort = import_onnxruntime()
    ckpt_path = Path(ckpt_path)
    cache = cache if cache is not None else ExportCache()
    key = export_key(cfg, ckpt_path, ort)
    entry = cache.lookup(key)
    if entry is not None:
        try:
            session = make_session(ort, entry.model, threads)
            log.debug("ONNX network from the cache: %s", entry.model)
            return OnnxRunner(session, model_path=entry.model, cache_hit=True)
        except Exception as exc:  # noqa: BLE001 - intact hash but unloadable: export again
            log.warning(
                "cached ONNX network %s cannot be loaded (%s); exporting it again", entry.model, exc
            )
            cache.remove(key)
    try:
        cache.ensure_writable()
    except CacheUnavailable as exc:
        if not allow_uncached:
            raise FastPathUnavailable(str(exc)) from None
        log.warning("%s; exporting the network to a temporary folder (not kept)", exc)
        with tempfile.TemporaryDirectory(prefix="pare-studio-onnx-") as tmp:
            return _export_and_load(cfg, ckpt_path, key, ExportCache(tmp), ort, threads)
    return _export_and_load(cfg, ckpt_path, key, cache, ort, threads)


def _folded(network: torch.nn.Module) -> torch.nn.Module:
    """``network`` with batch norm folded into the convs (faster export), or as is."""
    from pare_studio.core.fast.fold import fold_batchnorm

    try:
        return fold_batchnorm(network)
    except Exception as exc:  # noqa: BLE001 - folding is an optimisation only
        log.debug("batch-norm folding skipped (%s); exporting unfolded", _reason(exc))
        return network


def _export_and_load(
    cfg: PareConfig,
    ckpt_path: Path,
    key: ExportKey,
    cache: ExportCache,
    ort: ModuleType,
    threads: int | None,
) -> OnnxRunner:
    t_start = time.perf_counter()
    network = _build_network(cfg, ckpt_path)
    exported = _folded(network)
    img_res = int(getattr(cfg, "img_res", 224))
    stats: dict[str, Any] = {}  # read by cache.store after write() ran
    sessions: list[Any] = []

    def write(tmp: Path) -> None:
        failures = []
        for exporter in EXPORTERS:
            try:
                t0 = time.perf_counter()
                export_network(exported, tmp, img_res, exporter=exporter)
                t1 = time.perf_counter()
                # the session reads the whole file now, so it stays valid after the rename
                session = make_session(ort, tmp, threads)
                t2 = time.perf_counter()
                stats["check_max_abs_diff"] = check_export(session, network, img_res)
                t3 = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - try the next exporter
                log.debug("ONNX export with %s failed: %s", exporter, _reason(exc))
                failures.append(f"{exporter} exporter: {_reason(exc)}")
                continue
            stats["exporter"] = exporter
            stats["seconds"] = {
                "export": round(t1 - t0, 2),
                "session": round(t2 - t1, 2),
                "check": round(t3 - t2, 2),
            }
            sessions.append(session)
            return
        raise FastPathUnavailable("the network could not be exported (" + "; ".join(failures) + ")")

    entry = cache.store(key, write, stats)
    seconds = time.perf_counter() - t_start
    log.info(
        "exported PARE's network to ONNX in %.1f s (%s exporter; checked against PyTorch: "
        "max |diff| %.2g): %s",
        seconds,
        stats["exporter"],
        stats["check_max_abs_diff"],
        entry.model,
    )
    return OnnxRunner(sessions[0], model_path=entry.model, export_seconds=seconds)


# ---------------------------------------------------------------------------- factories


def build_onnx_runner(cfg: PareConfig, ckpt_path: Path, device: torch.device) -> NetworkRunner:
    """``backend="onnx"``: the ONNX Runtime runner on the CPU.

    Raises
    ------
    ConfigError : a non-CPU device, ONNX Runtime / the exporter missing, or a failed export.
    CheckpointError : the checkpoint cannot be loaded.
    """
    if torch.device(device).type != "cpu":
        raise ConfigError(
            f"the onnx backend runs on the CPU only, not on {device}: use --device cpu, or "
            "--backend torch / auto for the GPU"
        )
    try:
        return load_onnx_runner(cfg, ckpt_path, allow_uncached=True)
    except PareStudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - any exporter / runtime failure, explained
        raise ConfigError(
            f"the ONNX Runtime backend cannot be used: {_reason(exc)}; use --backend torch"
        ) from exc


def build_auto_runner(cfg: PareConfig, ckpt_path: Path, device: torch.device) -> NetworkRunner:
    """``backend="auto"``: ONNX Runtime on the CPU, PyTorch on CUDA / MPS.

    On the CPU, when the fast path cannot be used, logs exactly one warning with the reason
    and returns :func:`build_torch_cpu_runner` (same results within ~2e-5, slower).
    Checkpoint / configuration errors are raised as they would be by the PyTorch path.
    """
    if torch.device(device).type != "cpu":
        return build_torch_runner(cfg, ckpt_path, device)
    try:
        return load_onnx_runner(cfg, ckpt_path)
    except PareStudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - fall back, never fail, on any fast-path problem
        log.warning(
            "fast CPU inference (ONNX Runtime) not used: %s. Running PARE's network in "
            "PyTorch instead (same results, about 1.3x slower)",
            _reason(exc),
        )
    return build_torch_cpu_runner(cfg, ckpt_path, device)


def build_torch_cpu_runner(cfg: PareConfig, ckpt_path: Path, device: torch.device) -> NetworkRunner:
    """The PyTorch runner with the network optimised for the CPU (batch norm folded,
    channels_last: :func:`~pare_studio.core.fast.fold.optimise_for_cpu`); name ``"torch"``."""
    from pare_studio.core.fast.fold import optimise_for_cpu

    runner = build_torch_runner(cfg, ckpt_path, device)
    network = getattr(runner, "network", None)
    if isinstance(runner, TorchRunner) and network is not None:
        try:
            runner.network = optimise_for_cpu(network).to(runner.device)
        except Exception as exc:  # noqa: BLE001 - keep the plain network
            log.debug("CPU optimisation of the PyTorch network skipped (%s)", _reason(exc))
    return runner


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FastPathUnavailable):
        return str(exc)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
