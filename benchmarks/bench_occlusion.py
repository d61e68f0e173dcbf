#!/usr/bin/env python3
"""Occlusion analysis benchmark: the cost of a live probe and of a full sweep.

Times, with the predictor loaded once (``backend="auto"``: the fast path when it is available):

(a) one forward pass at batch 1 (``predictor.predict(crop[None], batch_size=1)``);
(b) one probe (``occlude`` + forward at batch 1 + per-joint displacement) against a baseline
    computed beforehand, as the window's live panel runs it while the user drags;
(c) a full 6 x 6 sweep (size 40, stride 40; 36 occluded crops, the baseline precomputed as in
    the window; and once more computing its own baseline, 37 crops, as the CLI) vs the per-crop
    batched cost (``predict`` of 16 crops at batch 16, divided by 16) measured right before and
    after each sweep.

Targets (issue 6): probe <= 1.3 x forward@1; sweep <= 40 x per-crop batched cost.
(a), (b) and the batch-16 forward are interleaved over ``--repeats`` rounds, ratios are taken
within a round and their medians reported, so that a machine whose load changes affects both
sides of a ratio alike.

    python benchmarks/bench_occlusion.py --cfg CFG --ckpt CKPT --smpl-dir DIR \\
        [--repeats 5] [--sweeps 1] [--threads N] [--device cpu] [--backend auto]

Without ``--cfg/--ckpt/--smpl-dir`` the synthetic assets of ``$PARE_STUDIO_TEST_ASSETS`` and
``shared/parity`` are used.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PARITY = REPO.parent / "shared" / "parity"


def parse_args() -> argparse.Namespace:
    assets = Path(os.environ.get("PARE_STUDIO_TEST_ASSETS", "/tmp/pare_assets"))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cfg", type=Path, default=PARITY / "pare_hrnet_w32_config.yaml")
    p.add_argument("--ckpt", type=Path, default=assets / "pare_synthetic_public.ckpt")
    p.add_argument("--smpl-dir", type=Path, default=assets / "smpl")
    p.add_argument("--device", default=None)
    p.add_argument("--backend", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--repeats", type=int, default=5, help="rounds of (a), (b), batch-16 forward")
    p.add_argument("--sweeps", type=int, default=2, help="full sweeps timed (median)")
    p.add_argument("--size", type=int, default=40)
    p.add_argument("--stride", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=16)
    return p.parse_args()


def main() -> int:
    args = parse_args()
    import numpy as np
    import torch

    from pare_studio.analysis.occlusion import (
        OccluderRect,
        compute_baseline,
        grid_shape,
        probe,
        sweep,
    )
    from pare_studio.core.predictor import load_predictor

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    predictor = load_predictor(
        args.cfg, args.ckpt, args.smpl_dir, device=args.device, backend=args.backend
    )
    load_s = time.perf_counter() - t0
    reg_path = Path(args.smpl_dir) / "J_regressor_h36m.npy"
    reg = np.load(reg_path) if reg_path.is_file() else None
    inputs = PARITY / "inputs.npz"
    rng = np.random.default_rng(0)
    if inputs.is_file():
        crops = np.load(inputs)["images"].astype(np.float32)
    else:
        crops = rng.normal(size=(4, 3, 224, 224)).astype(np.float32)
    crop = np.ascontiguousarray(crops[0])
    batch = np.ascontiguousarray(np.resize(crops, (args.batch_size, 3, 224, 224)))

    # warm-up: first-call costs (allocator, kernels, an engine's lazy init) out of the timings
    predictor.predict(crop[None], batch_size=1)
    predictor.predict(batch, batch_size=args.batch_size)
    baseline = compute_baseline(predictor, crop, j_regressor_h36m=reg)

    def per_crop_batched() -> float:
        t = time.perf_counter()
        predictor.predict(batch, batch_size=args.batch_size)
        return (time.perf_counter() - t) / args.batch_size

    fwd1, probes, per_crop, probe_ratio = [], [], [], []
    for r in range(args.repeats):
        t = time.perf_counter()
        predictor.predict(crop[None], batch_size=1)
        fwd1.append(time.perf_counter() - t)
        # a drag: a 50 px occluder at a new position every time
        x, y = (int(v) for v in rng.integers(0, 174, size=2))
        t = time.perf_counter()
        probe(predictor, crop, OccluderRect(x, y, 50, 50), "mean", baseline=baseline)
        probes.append(time.perf_counter() - t)
        probe_ratio.append(probes[-1] / fwd1[-1])
        per_crop.append(per_crop_batched())
        print(
            f"round {r + 1}/{args.repeats}: forward@1 {fwd1[-1] * 1e3:.1f} ms, probe "
            f"{probes[-1] * 1e3:.1f} ms, batch {args.batch_size} {per_crop[-1] * 1e3:.1f} ms/crop",
            file=sys.stderr,
        )
    # Each sweep between two batched forwards; its ratio uses their mean (load drifts).
    g = grid_shape(args.size, args.stride)
    sweeps, sweep_ratio, alone, alone_ratio = [], [], [], []
    before = per_crop_batched()
    for _ in range(args.sweeps):
        t = time.perf_counter()
        sweep(predictor, crop, args.size, args.stride, "mean", args.batch_size, baseline=baseline)
        sweeps.append(time.perf_counter() - t)
        after = per_crop_batched()
        sweep_ratio.append(sweeps[-1] / ((before + after) / 2))
        before = after
        # the same sweep computing its own baseline (g*g + 1 crops), as the CLI runs it
        t = time.perf_counter()
        sweep(
            predictor, crop, args.size, args.stride, "mean", args.batch_size, j_regressor_h36m=reg
        )
        alone.append(time.perf_counter() - t)
        after = per_crop_batched()
        alone_ratio.append(alone[-1] / ((before + after) / 2))
        before = after
        print(
            f"sweep {g}x{g}: {sweeps[-1]:.2f} s ({sweep_ratio[-1]:.1f} x per-crop), "
            f"with its baseline {alone[-1]:.2f} s ({alone_ratio[-1]:.1f} x)",
            file=sys.stderr,
        )
    predictor.close()

    med = statistics.median
    f1, pr, pc = med(fwd1), med(probes), med(per_crop)
    print(
        f"device {predictor.device}, backend {predictor.backend}, "
        f"threads {torch.get_num_threads()}, load {load_s:.1f} s, "
        f"{args.repeats} rounds, {args.sweeps} sweep(s); medians"
    )
    print(f"(a) forward @ batch 1            {f1 * 1e3:9.1f} ms")
    print(f"(b) probe                        {pr * 1e3:9.1f} ms   probe / forward@1 = "
          f"{med(probe_ratio):.3f}  (target <= 1.3)")  # fmt: skip
    print(f"    per-crop batched (b={args.batch_size})     {pc * 1e3:9.1f} ms")
    print(f"(c) sweep {g}x{g}, baseline given    {med(sweeps):9.2f} s    sweep / per-crop = "
          f"{med(sweep_ratio):.1f}  (target <= 40; {g * g} crops)")  # fmt: skip
    print(f"    sweep {g}x{g} + its baseline     {med(alone):9.2f} s    sweep / per-crop = "
          f"{med(alone_ratio):.1f}  ({g * g + 1} crops)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
