"""``pare-studio inspect FILE.pkl``: what a pare_output.pkl holds, read without running code.

Prints the tracks, their frame ranges and every array's shape and dtype, then whether the file has
the reference layout (spec §5.6). The file is read with the restricted loader
(:func:`pare_studio.pipeline.pkl_io.read_pickle`): a pickle that references any code is refused,
and the command exits non-zero (9) for a refused, unreadable or malformed file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="summarise a pare_output.pkl safely (tracks, frame ranges, array shapes and dtypes)",
        description="Print the tracks, frame ranges and array shapes/dtypes of a pare_output.pkl "
        "(ours or the reference's), read with a loader that never runs code from the file.",
    )
    p.add_argument("file", type=Path, help="a pare_output.pkl")
    p.set_defaults(func=run)


def describe(value: Any) -> str:
    """``(n, 6890, 3) float32`` for arrays, ``None``, or the type name."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return f"{tuple(value.shape)} {value.dtype}"
    if value is None:
        return "None"
    return type(value).__name__


def _frame_summary(frames: Any) -> str:
    import numpy as np

    if not isinstance(frames, np.ndarray) or frames.ndim != 1 or frames.dtype.kind not in "iu":
        return "frames: ?"
    n = len(frames)
    if n == 0:
        return "0 frames"
    first, last = int(frames.min()), int(frames.max())
    gaps = (last - first + 1) - len(np.unique(frames))
    extra = f", {gaps} missing in between" if gaps > 0 else ""
    return f"{n} frames, {first}..{last}{extra}"


def summary_lines(path: Path, obj: Any) -> list[str]:
    """Human-readable lines describing the unpickled object of a results file."""
    lines = [f"file     {path} ({path.stat().st_size / 1e6:.1f} MB)"]
    if not isinstance(obj, dict):
        lines.append(f"content  a {type(obj).__name__}, not a dict of tracks")
        return lines
    lines.append(f"tracks   {len(obj)}")
    for key in obj:
        track = obj[key]
        if not isinstance(track, dict):
            lines.append(f"track {key!r}: a {type(track).__name__}")
            continue
        lines.append(f"track {key}: {_frame_summary(track.get('frame_ids'))}")
        width = max((len(str(k)) for k in track), default=0)
        for name, value in track.items():
            lines.append(f"    {str(name):<{width}}  {describe(value)}")
    return lines


def run(args: argparse.Namespace) -> int:
    from pare_studio.errors import ResultFileError
    from pare_studio.pipeline.pkl_io import read_pickle, validate_reference_dict

    obj = read_pickle(args.file)  # UnsafePickleError / ResultFileError -> non-zero exit
    print("\n".join(summary_lines(args.file, obj)))
    try:
        validate_reference_dict(obj, str(args.file))
    except ResultFileError as exc:
        print(f"layout   NOT the reference pare_output.pkl layout: {exc}")
        return exc.exit_code
    print("layout   OK (reference pare_output.pkl)")
    return 0
