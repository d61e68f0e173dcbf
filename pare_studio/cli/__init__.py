"""The ``pare-studio`` command line.

Each subcommand lives in its own module of this package with two functions:
``add_parser(subparsers)`` (declares its flags) and ``run(args) -> int`` (does the work).
Modules import nothing heavy at module level, so ``pare-studio --help`` is instant.
With no subcommand the window opens.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pare_studio import __version__
from pare_studio.errors import PareStudioError

#: Subcommand name -> module under ``pare_studio.cli``.
COMMANDS: dict[str, str] = {
    "predict": "predict",
    "demo": "demo",
    "inspect": "inspect",
    "bench": "bench",
    "eval": "evaluate",
    "occlusion": "occlusion",
    "export": "export",
    "setup": "setup",
    "doctor": "doctor",
    "gui": "gui",
}


def _available_commands() -> dict[str, object]:
    mods = {}
    for name, mod in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(f"pare_studio.cli.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"pare_studio.cli.{mod}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pare-studio",
        description="PARE 3D human mesh recovery: window (no arguments) and commands.",
    )
    parser.add_argument("--version", action="version", version=f"pare-studio {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module in _available_commands().items():
        module.add_parser(sub)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pare-studio``; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    try:
        return int(args.func(args) or 0)
    except PareStudioError as exc:
        print(f"pare-studio {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(
            f"pare-studio {args.command}: cancelled; nothing partial was written.", file=sys.stderr
        )
        return 130
