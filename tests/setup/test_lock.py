"""One setup at a time per asset store; a crashed holder never blocks the next setup."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pare_studio.assets import AssetStore
from pare_studio.cli import main
from pare_studio.errors import AssetError
from pare_studio.setup.lock import LOCK_NAME, store_lock
from tests.setup.conftest import tree_digest

HOLDER = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def _hold_in_another_process(store: AssetStore) -> subprocess.Popen[str]:
    store.root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(store.root / LOCK_NAME)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_setup_is_refused_and_changes_nothing(
    store: AssetStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "SMPL_NEUTRAL.pkl"
    src.write_bytes(b"never read: the lock is checked first")
    holder = _hold_in_another_process(store)
    try:
        before = tree_digest(store.root)
        assert main(["setup", "--smpl", str(src)]) == AssetError.exit_code
        err = capsys.readouterr().err
        assert "another `pare-studio setup` is changing the asset store" in err
        assert str(store.root) in err
        assert tree_digest(store.root) == before
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: the OS drops its lock
        holder.wait()
    with store_lock(store) as path:
        assert path == store.root / LOCK_NAME
        with pytest.raises(AssetError, match="right now"), store_lock(store):
            pass  # a second holder inside the same process is refused too
    with store_lock(store):  # released on leaving the block
        pass
