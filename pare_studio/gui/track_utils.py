"""Per-track helpers shared by the widgets: stable colours and presence segments (no Qt)."""

from __future__ import annotations

import colorsys

import numpy as np

#: Golden-ratio hue step: consecutive track ids get well separated hues.
_HUE_STEP = 0.618033988749895


def track_color(track_id: int) -> tuple[float, float, float]:
    """Stable RGB colour of a track, floats in [0, 1].

    The reference picks ``hsv_to_rgb(random(), 0.5, 1.0)`` anew on every run; we keep its
    saturation and value but derive the hue from the id, so a track keeps its colour across
    runs, widgets and exports.
    """
    hue = (0.07 + (int(track_id) - 1) * _HUE_STEP) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.55, 1.0)
    return (r, g, b)


def track_color_255(track_id: int) -> tuple[int, int, int]:
    """:func:`track_color` as 0..255 integers (for Qt pens and brushes)."""
    return tuple(int(round(c * 255)) for c in track_color(track_id))  # type: ignore[return-value]


def contiguous_segments(frame_ids: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive frames, as ``[(start, stop_exclusive), ...]`` in ascending order.

    Parameters
    ----------
    frame_ids : (n,) int, strictly increasing 0-based frame indices of one track.
    """
    ids = np.asarray(frame_ids, dtype=np.int64).ravel()
    if ids.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(ids) != 1)
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks, [ids.size - 1]])
    return [(int(ids[a]), int(ids[b]) + 1) for a, b in zip(starts, stops, strict=True)]
