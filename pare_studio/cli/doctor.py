"""``pare-studio doctor``: one screen saying what is installed, what is missing and what to run.

Checks the asset store (PARE data, SMPL neutral/male/female, YOLOv3 weights, recorded sizes),
torch / CUDA, H.264 encode and decode (PyAV), OpenGL (headless EGL and a window canvas) and Qt.
Exit status 0 when everything ``pare-studio demo`` needs is there, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "doctor",
        help="check what is installed and say what to run for what is missing",
        description="Check the asset store, torch/CUDA, video codecs, OpenGL and Qt. "
        "Exit status 0 when `pare-studio demo` has everything it needs, else 1.",
    )
    p.add_argument("--data-root", type=Path, default=None, help="asset store folder")
    p.add_argument(
        "--assets-only", action="store_true", help="skip the torch, codec, OpenGL and Qt checks"
    )
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds allowed for the OpenGL / Qt probes (default 30)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pare_studio.assets import AssetStore
    from pare_studio.setup.doctor import demo_ready, format_report, run_doctor, store_origin

    store = AssetStore.default(args.data_root)
    checks = run_doctor(store, system=not args.assets_only, probe_timeout=args.timeout)
    ready = demo_ready(checks)
    if args.json:
        print(
            json.dumps(
                {
                    "store": str(store.root),
                    "demo_ready": ready,
                    "checks": [asdict(c) for c in checks],
                },
                indent=1,
            )
        )
    else:
        print(format_report(checks, store, store_origin(args.data_root)))
    return 0 if ready else 1
