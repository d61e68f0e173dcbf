#!/usr/bin/env python3
"""Inference benchmark: plain eager PyTorch against the fast path (ONNX Runtime) on the CPU.

The same as ``pare-studio bench`` (see :mod:`pare_studio.cli.bench` and docs/performance.md)::

    python benchmarks/bench_inference.py [--cfg CFG --ckpt CKPT --smpl-dir DIR]
        [--batch-sizes 1,16] [--runs 10] [--threads N] [--json OUT.json]

Without the asset flags the synthetic checkpoint of ``shared/parity`` is used (made when missing).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pare_studio.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
