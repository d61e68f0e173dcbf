"""``pare-studio gui`` (also: no subcommand): open the window."""

from __future__ import annotations

import argparse
import importlib


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the PARE Studio window")
    p.add_argument(
        "path",
        nargs="?",
        help="a video, an image folder, a pare_output.pkl or a .pareproj project to open",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # importlib keeps Qt out of the CLI's import graph (see the import-linter contracts).
    app = importlib.import_module("pare_studio.gui.app")
    return int(app.run(args.path))
