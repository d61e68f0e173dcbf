"""``pare-studio bench``: the plain PyTorch predictor against the fast path, side by side.

    pare-studio bench [--cfg CFG --ckpt CKPT --smpl-dir DIR] [--batch-sizes 1,16] [--runs 10]
        [--warmup 2] [--threads N] [--fast-backend auto|onnx] [--json OUT.json]

Both predictors are loaded on the CPU from the same checkpoint (``backend="torch"``, the plain
eager network, and ``--fast-backend``, by default what ``auto`` picks). For every batch size B
the whole :meth:`~pare_studio.core.predictor.ParePredictor.predict` (network, SMPL, projection)
runs on B crops with ``batch_size=B``: ``--warmup`` untimed calls each, then ``--runs`` timed
calls alternating plain / fast, so both see the same machine load. The table gives the median
milliseconds per crop, the ratio plain / fast and the largest difference between the two
predictors' outputs (all eight arrays; "ok" when within the parity tolerance
1e-4 · max(1, max|plain|)). Threads: torch's default (all cores) unless ``--threads``; ONNX
Runtime uses torch's thread count.

Without ``--cfg/--ckpt/--smpl-dir`` the synthetic assets of ``shared/parity`` are used (made
with its scripts into ``$PARE_STUDIO_TEST_ASSETS`` or ``--assets-dir`` when missing; about a
minute the first time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pare_studio.atomic import write_json_atomic
from pare_studio.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from pare_studio.core.predictor import ParePredictor

#: Parity tolerance of the core tests: max|Δ| <= REL_TOL * max(1, max|reference|).
REL_TOL = 1e-4


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="time plain PyTorch against the fast inference path (ms per crop, ratio, max |diff|)",
        description="Time the plain eager PyTorch predictor and the fast predictor side by side "
        "on the same checkpoint (CPU, whole predict() incl. SMPL and projection) and check that "
        "their outputs agree.",
    )
    p.add_argument("--cfg", type=Path, default=None, help="PARE yaml config")
    p.add_argument("--ckpt", type=Path, default=None, help="PARE checkpoint (.ckpt)")
    p.add_argument("--smpl-dir", type=Path, default=None, help="folder laid out as PARE's data/")
    p.add_argument(
        "--batch-sizes", default="1,16", help="comma-separated batch sizes (default 1,16)"
    )
    p.add_argument("--runs", type=int, default=10, help="timed runs per batch size (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (default 2)")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads (default: torch's, all cores)"
    )
    p.add_argument(
        "--fast-backend",
        choices=["auto", "onnx"],
        default="auto",
        help="backend of the fast predictor (default auto: what the app uses)",
    )
    p.add_argument(
        "--assets-dir",
        type=Path,
        default=None,
        help="where to make / find the synthetic assets when --cfg/--ckpt/--smpl-dir are "
        "missing (default $PARE_STUDIO_TEST_ASSETS or a temporary folder)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results as JSON")
    p.set_defaults(func=run)


@dataclass
class BenchRow:
    """One batch size.

    Attributes
    ----------
    batch : crops per predict() call.
    plain_ms, fast_ms : median milliseconds per crop.
    plain_min_ms, fast_min_ms : fastest run, milliseconds per crop.
    ratio : plain_ms / fast_ms.
    max_abs_diff : largest |fast - plain| over all outputs; ``worst`` names the array.
    within_tol : every array within REL_TOL · max(1, max|plain|).
    plain_cpu_ms, fast_cpu_ms : median CPU time of the process per crop, all threads (less
        sensitive to other processes than wall time; includes spin-waiting).
    load : 1-minute load average before and after this batch size (cores: ``os.cpu_count()``).
    """

    batch: int
    plain_ms: float
    fast_ms: float
    plain_min_ms: float
    fast_min_ms: float
    ratio: float
    max_abs_diff: float
    worst: str
    within_tol: bool
    plain_cpu_ms: float = float("nan")
    fast_cpu_ms: float = float("nan")
    load: tuple[float, float] = (float("nan"), float("nan"))


def compare_outputs(
    plain: dict[str, np.ndarray], fast: dict[str, np.ndarray]
) -> tuple[float, str, bool]:
    """(max |fast - plain| over all arrays, the array it is in, all within tolerance)."""
    import numpy as np

    worst, where, ok = 0.0, "", True
    for key, ref in plain.items():
        err = float(np.abs(fast[key].astype(np.float64) - ref.astype(np.float64)).max(initial=0))
        ok &= err <= REL_TOL * max(1.0, float(np.abs(ref).max(initial=0)))
        if err >= worst:
            worst, where = err, key
    return worst, where, ok


def time_pair(
    plain: ParePredictor,
    fast: ParePredictor,
    images: np.ndarray,
    runs: int,
    warmup: int,
) -> BenchRow:
    """Time ``predict(images, batch_size=len(images))`` on both predictors, interleaved."""
    b = len(images)
    load0 = os.getloadavg()[0]
    for _ in range(warmup):
        plain.predict(images, batch_size=b)
        fast.predict(images, batch_size=b)
    tp: list[float] = []
    tf: list[float] = []
    cp: list[float] = []
    cf: list[float] = []
    out_p = out_f = None
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        out_p = plain.predict(images, batch_size=b)
        c1, t1 = time.process_time(), time.perf_counter()
        out_f = fast.predict(images, batch_size=b)
        c2, t2 = time.process_time(), time.perf_counter()
        tp.append((t1 - t0) * 1000 / b)
        tf.append((t2 - t1) * 1000 / b)
        cp.append((c1 - c0) * 1000 / b)
        cf.append((c2 - c1) * 1000 / b)
    assert out_p is not None and out_f is not None
    diff, where, ok = compare_outputs(out_p.to_reference_dict(), out_f.to_reference_dict())
    pm, fm = statistics.median(tp), statistics.median(tf)
    return BenchRow(
        b,
        pm,
        fm,
        min(tp),
        min(tf),
        pm / fm,
        diff,
        where,
        ok,
        statistics.median(cp),
        statistics.median(cf),
        (load0, os.getloadavg()[0]),
    )


def bench_images(batch: int, parity_inputs: Path | None = None) -> np.ndarray:
    """(batch, 3, 224, 224) float32 crops: the parity crops repeated, else seeded noise."""
    import numpy as np

    if parity_inputs is not None and parity_inputs.is_file():
        base = np.load(parity_inputs)["images"].astype(np.float32)
    else:
        base = np.random.default_rng(0).standard_normal((4, 3, 224, 224), dtype=np.float32)
    reps = -(-batch // len(base))
    return np.ascontiguousarray(np.concatenate([base] * reps)[:batch])


def _parity_dir() -> Path | None:
    env = os.environ.get("PARE_STUDIO_SHARED")
    candidates = [Path(env) / "parity"] if env else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "parity", Path.cwd().parent / "shared" / "parity"]
    for c in candidates:
        if (c / "make_synthetic_checkpoint.py").is_file():
            return c
    return None


def synthetic_assets(assets_dir: Path | None) -> tuple[Path, Path, Path, Path]:
    """(cfg, ckpt, smpl_dir, parity_dir) of the synthetic checkpoint, made when missing."""
    parity = _parity_dir()
    if parity is None:
        raise ConfigError(
            "pass --cfg, --ckpt and --smpl-dir (the synthetic assets' scripts in "
            "shared/parity were not found; set PARE_STUDIO_SHARED to the shared folder)"
        )
    root = assets_dir or (
        Path(os.environ["PARE_STUDIO_TEST_ASSETS"])
        if os.environ.get("PARE_STUDIO_TEST_ASSETS")
        else Path(tempfile.gettempdir()) / "pare_studio_bench_assets"
    )
    root.mkdir(parents=True, exist_ok=True)
    smpl, ckpt = root / "smpl", root / "pare_synthetic_public.ckpt"

    def make(args: list[str]) -> None:
        print(f"making {args[0]} ...", file=sys.stderr)
        subprocess.run([sys.executable, *args], cwd=root, check=True, capture_output=True)

    if not (smpl / "smpl_mean_params.npz").is_file():
        make([str(parity / "make_synthetic_smpl.py"), str(smpl)])
    if not ckpt.is_file():
        make(
            [
                str(parity / "make_synthetic_checkpoint.py"),
                "--keys",
                str(parity / "pare_hrnet_w32_state_dict.json"),
                "--smpl-dir",
                str(smpl),
                "--salt",
                "public",
                "--out",
                str(ckpt),
            ]
        )
    return parity / "pare_hrnet_w32_config.yaml", ckpt, smpl, parity


def format_table(rows: list[BenchRow], fast_name: str) -> str:
    """The results as a fixed-width text table."""
    fast_col = f"fast ({fast_name}) ms/crop"
    head = (
        f"{'batch':>5} | {'plain torch ms/crop':>22} | {fast_col:>22} | {'ratio':>6} | "
        f"{'CPU ms/crop plain/fast':>22} | {'load avg':>11} | max |diff| (array)"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.batch:>5} | {r.plain_ms:>10.1f} (min {r.plain_min_ms:>6.1f}) | "
            f"{r.fast_ms:>10.1f} (min {r.fast_min_ms:>6.1f}) | {r.ratio:>5.2f}x | "
            f"{r.plain_cpu_ms:>10.1f} / {r.fast_cpu_ms:>9.1f} | "
            f"{r.load[0]:>4.2f}->{r.load[1]:>4.2f} | "
            f"{r.max_abs_diff:.2g} ({r.worst}){'' if r.within_tol else '  OVER TOLERANCE'}"
        )
    return "\n".join(lines)


def _parse_batches(text: str) -> list[int]:
    try:
        out = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        out = []
    if not out or any(b < 1 for b in out):
        raise ConfigError(f"--batch-sizes must be positive integers like 1,16, got {text!r}")
    return out


def run(args: argparse.Namespace) -> int:
    import torch

    from pare_studio.core.predictor import load_predictor

    batches = _parse_batches(args.batch_sizes)
    if args.runs < 1 or args.warmup < 0:
        raise ConfigError("--runs must be >= 1 and --warmup >= 0")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    parity_inputs = None
    if args.cfg is None or args.ckpt is None or args.smpl_dir is None:
        cfg, ckpt, smpl_dir, parity = synthetic_assets(args.assets_dir)
        cfg, ckpt, smpl_dir = args.cfg or cfg, args.ckpt or ckpt, args.smpl_dir or smpl_dir
        parity_inputs = parity / "inputs.npz"
    else:
        cfg, ckpt, smpl_dir = args.cfg, args.ckpt, args.smpl_dir
        parity = _parity_dir()
        parity_inputs = parity / "inputs.npz" if parity else None

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    plain = load_predictor(cfg, ckpt, smpl_dir, device="cpu", backend="torch")
    t1 = time.perf_counter()
    fast = load_predictor(cfg, ckpt, smpl_dir, device="cpu", backend=args.fast_backend)
    t2 = time.perf_counter()
    runner = fast.runner
    how = ""
    if getattr(runner, "export_seconds", None) is not None:
        how = f", exported to ONNX in {runner.export_seconds:.1f} s"
    elif getattr(runner, "cache_hit", False):
        how = ", ONNX network from the cache"
    try:
        rows = [
            time_pair(plain, fast, bench_images(b, parity_inputs), args.runs, args.warmup)
            for b in batches
        ]
    finally:
        plain.close()
        fast.close()
    load_after = os.getloadavg()[0]
    threads = torch.get_num_threads()
    print(
        f"PARE inference on the CPU, {threads} thread(s); checkpoint {ckpt}\n"
        f"whole predict() (network + SMPL + projection), median of {args.runs} runs after "
        f"{args.warmup} warm-up, plain and fast interleaved\n"
        f"load: plain {t1 - t0:.1f} s, fast {t2 - t1:.1f} s (backend {fast.backend}{how}); "
        f"load average {load_before:.2f} -> {load_after:.2f} (1 min, {os.cpu_count()} cores)\n"
    )
    print(format_table(rows, fast.backend))
    if args.json is not None:
        write_json_atomic(
            args.json,
            {
                "threads": threads,
                "fast_backend": fast.backend,
                "runs": args.runs,
                "warmup": args.warmup,
                "load_average": [load_before, load_after],
                "load_seconds": {"plain": t1 - t0, "fast": t2 - t1},
                "rows": [asdict(r) for r in rows],
            },
        )
    return 0 if all(r.within_tol for r in rows) else 1
