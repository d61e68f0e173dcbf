"""One ``pare-studio setup`` at a time per asset store.

Two setups on the same store would append to the same partial download and interleave their
moves and manifest updates. :func:`store_lock` holds an OS file lock (``filelock``: ``flock``
on POSIX, ``msvcrt.locking`` on Windows) on ``<store>/.setup.lock`` for the whole operation;
the OS releases it when the process ends, however it ends, so a crashed setup never blocks the
next one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from pare_studio.assets import AssetStore
from pare_studio.atomic import prepare_folder
from pare_studio.errors import AssetError

#: Lock file name in the store's root.
LOCK_NAME = ".setup.lock"


@contextlib.contextmanager
def store_lock(store: AssetStore) -> Iterator[Path]:
    """Hold the store's setup lock for the ``with`` block; yields the lock file's path.

    Raises
    ------
    AssetError : another process holds it (another setup is changing this store now).
    OutputError : the store folder cannot be created.
    """
    from filelock import FileLock, Timeout

    path = prepare_folder(store.root, "asset store") / LOCK_NAME
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise AssetError(
            f"another `pare-studio setup` is changing the asset store {store.root} right now; "
            "wait for it to finish, then run this command again"
        ) from None
    try:
        yield path
    finally:
        lock.release()
