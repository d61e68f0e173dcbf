"""Figures of the occlusion analysis: reference-style per-joint heatmaps and a sweep gif.

Heatmap figure (spec §7, ``result_00_<idx>_mpjpe_hm.png``)
    A 2 x 7 grid, one panel per evaluation joint, titled with the joint's name and the min / max
    of its raw map in mm. Each panel shows the display image (the crop at 480 px) with the heatmap
    on top: every joint's ``(rows, cols)`` map is upsampled to the image size with
    ``cv2.INTER_CUBIC``, the maps are min-max normalised **jointly over all joints**, and drawn
    with the ``jet`` colour map at alpha 0.5 (blended in numpy, then shown). Drawn with
    matplotlib's object API (Agg canvas, no pyplot state), so it is safe off the main thread.

Sweep gif
    One frame per occluder position (row-major, after an unoccluded first frame): the display
    image with the occluder painted in its fill, the predicted mesh for that position on top
    (:class:`~pare_studio.render.mesh_renderer.MeshRenderer`, the crop's weak-perspective camera
    ``(s, s, tx, ty)``) and the side view to the right, plus a caption.

Every file is written atomically (:mod:`pare_studio.atomic`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pare_studio.analysis.occlusion import Fill, OccluderRect, fill_pixels
from pare_studio.atomic import atomic_output
from pare_studio.core.constants import IMAGENET_MEAN, IMAGENET_STD, J14_NAMES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pare_studio.analysis.occlusion import SweepResult
    from pare_studio.render.mesh_renderer import MeshRenderer

#: Side of the reference's display image, pixels (RENDER_RES).
DISPLAY_RES = 480
#: Frame rate of the sweep gif (the reference's mp4 is 15 fps).
GIF_FPS = 15.0
#: Units and titles of the error kinds.
KIND_TITLES = {
    "mpjpe": "MPJPE",
    "pampjpe": "PA-MPJPE",
    "displacement": "displacement from the unoccluded prediction",
}

_MEAN = np.asarray(IMAGENET_MEAN, dtype=np.float64)
_STD = np.asarray(IMAGENET_STD, dtype=np.float64)


def denormalize(crop: np.ndarray) -> np.ndarray:
    """(3, H, W) ImageNet-normalised float -> (H, W, 3) uint8 RGB."""
    rgb = (np.transpose(np.asarray(crop, np.float64), (1, 2, 0)) * _STD + _MEAN) * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def upsample_heatmaps(maps: np.ndarray, width: int, height: int) -> np.ndarray:
    """Each joint's map upsampled with ``cv2.INTER_CUBIC`` and min-max normalised over all joints.

    Parameters
    ----------
    maps : (rows, cols, J) float, any unit.
    width, height : target size, pixels.

    Returns
    -------
    (height, width, J) float32 in [0, 1] (all zeros when the maps are constant).
    """
    import cv2

    m = np.asarray(maps, np.float32)
    up = np.stack(
        [
            cv2.resize(m[..., j], (width, height), interpolation=cv2.INTER_CUBIC)
            for j in range(m.shape[-1])
        ],
        axis=-1,
    )
    lo, hi = float(up.min()), float(up.max())
    if hi - lo <= 0:
        return np.zeros_like(up)
    return (up - lo) / (hi - lo)


def blend_heatmap(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``jet(heat)`` over ``image`` with opacity ``alpha`` (what ``imshow(..., alpha=0.5)`` draws).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB.
    heat : (H, W) float in [0, 1].

    Returns
    -------
    (H, W, 3) uint8 RGB.
    """
    from matplotlib import colormaps

    colours = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    out = (1.0 - alpha) * image.astype(np.float64) + alpha * colours
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def heatmap_figure(
    image: np.ndarray,
    maps: np.ndarray,
    title: str,
    joint_names: Sequence[str] = J14_NAMES,
    panel_px: int = 240,
) -> Figure:
    """The 2 x 7 per-joint heatmap figure.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB display image.
    maps : (rows, cols, 14) float mm.
    title : figure title (e.g. the unoccluded errors).
    joint_names : 14 panel names.
    panel_px : panels are blended at the image's size, then shrunk to this side (INTER_AREA)
        so that matplotlib does not resample 14 full-size images.
    """
    import cv2
    from matplotlib.figure import Figure

    maps = np.asarray(maps, np.float64)
    n = maps.shape[-1]
    if len(joint_names) != n:
        raise ValueError(f"{n} maps but {len(joint_names)} joint names")
    h, w = image.shape[:2]
    norm = upsample_heatmaps(maps, w, h)
    ncols = -(-n // 2)
    fig = Figure(figsize=(2.6 * ncols, 6.0), dpi=100)
    axes = fig.subplots(2, ncols, squeeze=False)
    scale = min(1.0, panel_px / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    for j, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if j >= n:
            continue
        panel = blend_heatmap(image, norm[..., j])
        if scale < 1.0:
            panel = cv2.resize(panel, size, interpolation=cv2.INTER_AREA)
        ax.imshow(panel, interpolation="nearest")
        ax.set_title(
            f"{joint_names[j]}\nmin: {maps[..., j].min():.1f} max: {maps[..., j].max():.1f}",
            fontsize=9,
        )
    fig.suptitle(title, fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.86, wspace=0.05, hspace=0.25)
    return fig


def save_heatmap_figure(
    path: str | os.PathLike[str],
    image: np.ndarray,
    maps: np.ndarray,
    title: str,
    joint_names: Sequence[str] = J14_NAMES,
) -> Path:
    """:func:`heatmap_figure` saved as PNG (atomically); returns the path."""
    fig = heatmap_figure(image, maps, title, joint_names)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    with atomic_output(path) as fh:
        fig.savefig(fh, format="png")
    return Path(path)


def heatmap_title(kind: str, sweep: SweepResult) -> str:
    """Figure title: the unoccluded errors (GT mode, as the reference) or the mean displacement."""
    base = sweep.baseline
    name = KIND_TITLES.get(kind, kind)
    if base.mpjpe is not None and base.pampjpe is not None:
        return (
            f"{name} (mm) | unoccluded: MPJPE {base.mpjpe.mean():.1f}, "
            f"PA-MPJPE {base.pampjpe.mean():.1f}"
        )
    return (
        f"{name} (mm) | mean over positions and joints {sweep.displacement.mean():.1f}, "
        f"max {sweep.displacement.max():.1f}"
    )


def paint_occluder(
    image: np.ndarray,
    rect: OccluderRect,
    fill: Fill,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """A copy of an RGB uint8 image with ``rect`` (image pixels, clipped) painted in ``fill``'s
    colour (the normalised fill turned back into RGB)."""
    out = image.copy()
    h, w = image.shape[:2]
    r = rect
    x0, x1 = min(max(r.x, 0), w), min(max(r.x1, 0), w)
    y0, y1 = min(max(r.y, 0), h), min(max(r.y1, 0), h)
    if x1 <= x0 or y1 <= y0:
        return out
    px = np.broadcast_to(fill_pixels(fill, y1 - y0, x1 - x0, rng), (3, y1 - y0, x1 - x0))
    out[y0:y1, x0:x1] = denormalize(px)
    return out


def _caption(frame: np.ndarray, text: str) -> np.ndarray:
    import cv2

    cv2.putText(frame, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(
        frame, text, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA
    )
    return frame


def sweep_frames(
    renderer: MeshRenderer,
    image: np.ndarray,
    sweep: SweepResult,
    rng: np.random.Generator | None = None,
) -> Iterator[np.ndarray]:
    """The gif's frames: unoccluded first, then each position row-major.

    Parameters
    ----------
    renderer : a MeshRenderer of the display image's size.
    image : (H, H, 3) uint8 RGB display image (the crop at any square size).
    sweep : a SweepResult made with ``keep_outputs=True``.

    Yields
    ------
    (H, 2H, 3) uint8 RGB: image + mesh, side view.
    """
    if sweep.outputs is None:
        raise ValueError("the sweep kept no outputs: run it with keep_outputs=True")
    side = image.shape[0]
    factor = side / 224.0
    base = sweep.baseline.output

    def cam(out_cam: np.ndarray) -> np.ndarray:
        s, tx, ty = (float(v) for v in out_cam)
        return np.array([[s, s, tx, ty]])

    frame = renderer.overlay(image, [base.smpl_vertices[0]], cam(base.pred_cam[0]), sideview=True)
    yield _caption(frame, "unoccluded")
    rows, cols = sweep.grid_shape
    flat = sweep.windows.reshape(-1, 4)
    disp = sweep.displacement.reshape(rows * cols, -1)
    for k in range(rows * cols):
        rect = OccluderRect(*(int(v) for v in flat[k])).scaled(factor)
        shown = paint_occluder(image, rect, sweep.fill, rng)
        frame = renderer.overlay(
            shown, [sweep.outputs.smpl_vertices[k]], cam(sweep.outputs.pred_cam[k]), sideview=True
        )
        r, c = divmod(k, cols)
        yield _caption(frame, f"({r},{c}) mean displacement {disp[k].mean():.1f} mm")


def save_gif(
    path: str | os.PathLike[str],
    frames: Sequence[np.ndarray] | Iterator[np.ndarray],
    fps: float = GIF_FPS,
) -> Path:
    """RGB uint8 frames as a looping gif (adaptive palette per frame), written atomically."""
    from PIL import Image

    # fast octree palette per frame: ~10 ms for 480 x 960 (an adaptive median cut takes ~1 s)
    images = [
        Image.fromarray(np.ascontiguousarray(f)).quantize(256, method=Image.Quantize.FASTOCTREE)
        for f in frames
    ]
    if not images:
        raise ValueError("no frames to write")
    duration = max(20, int(round(1000.0 / fps)))

    with atomic_output(path) as fh:
        images[0].save(
            fh, format="GIF", save_all=True, append_images=images[1:], duration=duration, loop=0
        )
    return Path(path)
