"""A one-slot, thread-safe "latest request wins" mailbox (napari's async slicer idiom).

The occlusion panel posts probe requests faster than the engine can serve them; the engine only
ever needs the newest one. ``put`` replaces whatever is waiting, ``take`` empties the slot.
"""

from __future__ import annotations

import threading
from typing import Generic, TypeVar

T = TypeVar("T")


class LatestMailbox(Generic[T]):
    """Holds at most one pending item; a newer ``put`` drops the older item."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None
        self._dropped = 0

    def put(self, item: T) -> bool:
        """Store ``item``; returns True when it replaced an item nobody took."""
        with self._lock:
            replaced = self._item is not None
            if replaced:
                self._dropped += 1
            self._item = item
            return replaced

    def take(self) -> T | None:
        """The pending item (and empty the slot), or None."""
        with self._lock:
            item, self._item = self._item, None
            return item

    @property
    def dropped(self) -> int:
        """How many items were replaced before anyone took them."""
        with self._lock:
            return self._dropped
