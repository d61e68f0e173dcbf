"""Argument types and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
import signal
from pathlib import Path

import pytest

from pare_studio.cancel import CancelToken
from pare_studio.cli._common import (
    check_out_dir,
    ctrl_c_cancels,
    flag,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from pare_studio.errors import OutputError


@pytest.mark.parametrize(
    ("parse", "good", "bad"),
    [
        (positive_int, [("1", 1), ("16", 16)], ["0", "-3", "1.5", "x", ""]),
        (non_negative_int, [("0", 0), ("7", 7)], ["-1", "2.0", "nan"]),
        (positive_float, [("0.5", 0.5), ("60", 60.0)], ["0", "-1", "inf", "nan", "x"]),
        (non_negative_float, [("0", 0.0), ("1e-3", 1e-3)], ["-0.1", "inf", "nan"]),
    ],
)
def test_argument_types(parse, good, bad) -> None:  # noqa: ANN001
    for text, value in good:
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def test_flag_keeps_the_reference_spelling_first() -> None:
    assert flag("--vid_file") == ["--vid_file", "--vid-file"]
    assert flag("--fps") == ["--fps"]


def test_check_out_dir_refuses_a_file_in_the_way(tmp_path: Path) -> None:
    check_out_dir(tmp_path / "new" / "deeper")  # creatable: fine, nothing made
    assert not (tmp_path / "new").exists()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is not a folder"):
        check_out_dir(blocker / "out")


def test_first_ctrl_c_cancels_the_second_interrupts() -> None:
    token = CancelToken()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), ctrl_c_cancels(token):
        os.kill(os.getpid(), signal.SIGINT)
        assert token.cancelled
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
