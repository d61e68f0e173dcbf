"""Darknet YOLOv3-416 (COCO, 80 classes) in plain torch, and the ``yolov3.weights`` reader.

This is the standard YOLOv3 network that the reference's person detector runs (spec §5.3,
``shared/parity/yolov3/README.md``): Darknet-53 backbone, three detection heads (13×13, 26×26,
52×52 for a 416 input), 107 blocks numbered 0..106 as in ``yolov3.cfg``, 75 convolutions.
:meth:`DarknetYoloV3.forward` returns the *decoded* head outputs, one row per anchor and cell:

    ``(N, 10647, 85)`` float32 = ``[x, y, w, h, obj, cls_0 .. cls_79]``

with ``x, y, w, h`` in pixels of the (square) network input, ``obj`` and the class scores
independent sigmoids. Rows are the 13×13 head, then 26×26, then 52×52; inside one head
``row = (anchor·G + gy)·G + gx``.

The module is plain ``nn.Conv2d`` / ``nn.BatchNorm2d`` / ``nn.LeakyReLU`` with a static block
list, so it traces and exports (TorchScript / ONNX) without custom ops. Batch norm is *not*
folded into the convolutions: the detector's decisions (objectness ≥ 0.8, IoU > 0.4) sit close to
their thresholds on the parity fixtures, so we keep the reference's exact operations.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pare_studio.errors import DetectorError

NUM_CLASSES = 80
#: Channels per anchor: tx, ty, tw, th, objectness, 80 class logits.
ROW_WIDTH = 5 + NUM_CLASSES
#: Anchors (w, h) in pixels of the 416 input, per head (13×13, 26×26, 52×52), as in ``yolov3.cfg``.
YOLOV3_ANCHORS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((116, 90), (156, 198), (373, 326)),
    ((30, 61), (62, 45), (59, 119)),
    ((10, 13), (16, 30), (33, 23)),
)
#: Number of float32 values after the header in the COCO ``yolov3.weights``.
YOLOV3_NUM_WEIGHTS = 62_001_757
WEIGHTS_FILE_NAME = "yolov3.weights"


@dataclass(frozen=True)
class BlockSpec:
    """One block of the network, as a ``[section]`` of ``yolov3.cfg``.

    kind : 'conv' | 'shortcut' | 'route' | 'upsample' | 'yolo'
    c_in, c_out : channels (conv); c_out is the block's output channels for every kind.
    size, stride, bn : conv kernel size, stride, batch norm (False = bias + linear output layer).
    sources : absolute block indices read by a shortcut (its two inputs) or route (concatenated).
    head : 0, 1, 2 for the yolo blocks (13×13, 26×26, 52×52 for a 416 input).
    """

    kind: str
    c_in: int = 0
    c_out: int = 0
    size: int = 0
    stride: int = 1
    bn: bool = True
    sources: tuple[int, ...] = ()
    head: int = -1


def yolov3_blocks(num_classes: int = NUM_CLASSES) -> list[BlockSpec]:
    """The 107 blocks of standard YOLOv3 (COCO), in ``yolov3.cfg`` order.

    Returns
    -------
    list of BlockSpec, length 107; route and shortcut sources are absolute block indices.
    """
    blocks: list[BlockSpec] = []
    ch: list[int] = []  # ch[i] = output channels of block i

    def c_prev() -> int:
        return ch[-1] if ch else 3

    def conv(c_out: int, k: int, s: int = 1, bn: bool = True) -> None:
        blocks.append(BlockSpec("conv", c_prev(), c_out, k, s, bn))
        ch.append(c_out)

    def res(c: int) -> None:
        conv(c // 2, 1)
        conv(c, 3)
        i = len(blocks)
        blocks.append(BlockSpec("shortcut", c_out=c, sources=(i - 1, i - 3)))
        ch.append(c)

    conv(32, 3)
    for c, n in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
        conv(c, 3, 2)
        for _ in range(n):
            res(c)
    out_ch = 3 * (5 + num_classes)
    for head, c in enumerate((512, 256, 128)):
        if head:
            i = len(blocks)
            blocks.append(BlockSpec("route", c_out=ch[i - 4], sources=(i - 4,)))
            ch.append(ch[i - 4])
            conv(c, 1)
            blocks.append(BlockSpec("upsample", c_out=c, stride=2))
            ch.append(c)
            i = len(blocks)
            skip = 61 if head == 1 else 36
            blocks.append(BlockSpec("route", c_out=ch[i - 1] + ch[skip], sources=(i - 1, skip)))
            ch.append(ch[i - 1] + ch[skip])
        for _ in range(3):
            conv(c, 1)
            conv(2 * c, 3)
        conv(out_ch, 1, bn=False)
        blocks.append(BlockSpec("yolo", c_out=out_ch, head=head))
        ch.append(out_ch)
    return blocks


class ConvBlock(nn.Module):
    """Conv2d(k, stride, pad (k−1)//2) → BatchNorm(eps 1e-5) → LeakyReLU(0.1); or conv + bias."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            spec.c_in, spec.c_out, spec.size, spec.stride, (spec.size - 1) // 2, bias=not spec.bn
        )
        self.bn = nn.BatchNorm2d(spec.c_out, eps=1e-5) if spec.bn else None
        self.act = nn.LeakyReLU(0.1) if spec.bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.act(self.bn(x))
        return x


class YoloDecode(nn.Module):
    """Decode one head ``(N, 3·85, G, G)`` into ``(N, 3·G·G, 85)`` rows (pixels of the input).

    ``x = (σ(tx) + gx)·s``, ``y = (σ(ty) + gy)·s``, ``w = exp(tw)·(aw/s)·s``, ``h`` likewise,
    ``obj = σ(to)``, ``cls = σ(tc)``, with stride ``s = input size / G``. The operations are in the
    reference's order (anchors scaled to grid units, then the boxes multiplied by the stride).
    """

    def __init__(self, anchors: Sequence[tuple[int, int]], num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.anchors = tuple((float(w), float(h)) for w, h in anchors)
        self.num_anchors = len(self.anchors)
        self.num_classes = num_classes

    def forward(self, p: torch.Tensor, img_size: int) -> torch.Tensor:
        n, _, g, _ = p.shape
        stride = img_size / g
        na, nc = self.num_anchors, self.num_classes
        p = p.view(n, na, nc + 5, g, g).permute(0, 1, 3, 4, 2).contiguous()
        grid = torch.arange(g, dtype=p.dtype, device=p.device)
        gx = grid.view(1, 1, 1, g)
        gy = grid.view(1, 1, g, 1)
        scaled = torch.tensor(
            [(w / stride, h / stride) for w, h in self.anchors], dtype=p.dtype, device=p.device
        )
        aw = scaled[:, 0].view(1, na, 1, 1)
        ah = scaled[:, 1].view(1, na, 1, 1)
        x = torch.sigmoid(p[..., 0]) + gx
        y = torch.sigmoid(p[..., 1]) + gy
        w = torch.exp(p[..., 2]) * aw
        h = torch.exp(p[..., 3]) * ah
        boxes = torch.stack((x, y, w, h), dim=-1).view(n, -1, 4) * stride
        conf = torch.sigmoid(p[..., 4]).view(n, -1, 1)
        cls = torch.sigmoid(p[..., 5:]).view(n, -1, nc)
        return torch.cat((boxes, conf, cls), dim=-1)


class DarknetYoloV3(nn.Module):
    """Standard YOLOv3 (COCO) as ``yolov3.cfg``: ``forward(x (N,3,S,S) RGB, [0,1]) -> (N,R,85)``.

    ``S`` is a multiple of 32 (416 in the reference); ``R = 3·((S/32)² + (S/16)² + (S/8)²)``,
    10647 for 416. The weights are loaded with :func:`load_darknet_weights`.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.specs = yolov3_blocks(num_classes)
        layers: list[nn.Module] = []
        for spec in self.specs:
            if spec.kind == "conv":
                layers.append(ConvBlock(spec))
            elif spec.kind == "yolo":
                layers.append(YoloDecode(YOLOV3_ANCHORS[spec.head], num_classes))
            else:
                layers.append(nn.Identity())
        self.module_list = nn.ModuleList(layers)
        # Block outputs read later by a shortcut / route: free each after its last use.
        last_use: dict[int, int] = {}
        for i, spec in enumerate(self.specs):
            for src in spec.sources:
                if src != i - 1:
                    last_use[src] = max(last_use.get(src, -1), i)
        self._keep = frozenset(last_use)
        free_after: dict[int, list[int]] = {}
        for src, last in last_use.items():
            free_after.setdefault(last, []).append(src)
        self._free_after = {k: tuple(v) for k, v in free_after.items()}

    def conv_layers(self) -> Iterator[ConvBlock]:
        """The 75 convolution blocks in network (= weight file) order."""
        for spec, layer in zip(self.specs, self.module_list, strict=True):
            if spec.kind == "conv":
                assert isinstance(layer, ConvBlock)
                yield layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        img_size = int(x.shape[-1])
        saved: dict[int, torch.Tensor] = {}
        outputs: list[torch.Tensor] = []
        for i, (spec, layer) in enumerate(zip(self.specs, self.module_list, strict=True)):
            if spec.kind == "conv":
                x = layer(x)
            elif spec.kind == "shortcut":
                x = x + saved[spec.sources[1]]
            elif spec.kind == "route":
                parts = [x if s == i - 1 else saved[s] for s in spec.sources]
                x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
            elif spec.kind == "upsample":
                x = nn.functional.interpolate(x, scale_factor=spec.stride, mode="nearest")
            else:  # yolo: decode; the next block (a route) reads the saved branch point
                outputs.append(layer(x, img_size))
            if i in self._keep:
                saved[i] = x
            for k in self._free_after.get(i, ()):
                del saved[k]
        return torch.cat(outputs, dim=1)


def num_darknet_values(model: DarknetYoloV3) -> int:
    """float32 values a Darknet weight file must hold for ``model`` (62,001,757 for COCO YOLOv3)."""
    total = 0
    for layer in model.conv_layers():
        c = layer.conv.out_channels
        total += layer.conv.weight.numel() + (4 * c if layer.bn is not None else c)
    return total


@dataclass(frozen=True)
class DarknetHeader:
    """The header of a Darknet weight file: version and images seen in training."""

    major: int
    minor: int
    revision: int
    seen: int
    header_bytes: int  # 20 (int64 seen, version >= 0.2) or 16 (int32 seen)


def read_darknet_header(path: Path) -> DarknetHeader:
    """Read the version words and ``seen``; the size of ``seen`` follows the version like Darknet.

    Darknet writes ``seen`` as 64 bits when ``major·10 + minor >= 2`` (and both < 1000), else as
    32 bits. (The reference always reads five int32 words, which misreads 16-byte headers.)
    """
    try:
        with open(path, "rb") as f:
            raw = f.read(20)
    except OSError as e:
        raise DetectorError(f"{path}: cannot read the weights file ({e.strerror or e})") from None
    if len(raw) < 16:
        raise DetectorError(
            f"{path}: only {len(raw)} bytes; this is not a Darknet weights file (truncated?)."
        )
    major, minor, revision = (int(v) for v in np.frombuffer(raw[:12], dtype="<i4"))
    if not (0 <= major < 1000 and 0 <= minor < 1000 and revision >= 0):
        raise DetectorError(
            f"{path}: header version {major}.{minor}.{revision} is not a Darknet weights header; "
            f"expected the COCO {WEIGHTS_FILE_NAME} (Darknet format)."
        )
    if major * 10 + minor >= 2:
        if len(raw) < 20:
            raise DetectorError(f"{path}: truncated header ({len(raw)} of 20 bytes).")
        seen = int(np.frombuffer(raw[12:20], dtype="<i8")[0])
        nbytes = 20
    else:
        seen = int(np.frombuffer(raw[12:16], dtype="<i4")[0])
        nbytes = 16
    return DarknetHeader(major, minor, revision, seen, nbytes)


def load_darknet_weights(model: DarknetYoloV3, path: str | os.PathLike[str]) -> DarknetHeader:
    """Load a Darknet ``.weights`` file into ``model`` (in place) and return its header.

    File layout: header (16 or 20 bytes, see :func:`read_darknet_header`), then for each of the
    75 convolutions in network order: with batch norm β, γ, running mean, running var (each
    ``(C,)``) then ``W (C_out, C_in, k, k)``; without (the three output layers) bias ``(C,)``,
    then W.
    float32 little endian, nothing after the last layer.

    Raises
    ------
    DetectorError
        Missing file, not a Darknet file, or a size that is not the COCO YOLOv3's (truncated file
        or another network).
    """
    path = Path(path)
    if not path.is_file():
        raise DetectorError(f"YOLOv3 weights file not found: {path}")
    header = read_darknet_header(path)
    n_values = num_darknet_values(model)
    expected = header.header_bytes + 4 * n_values
    size = path.stat().st_size
    if size != expected:
        what = "truncated" if size < expected else "too large"
        raise DetectorError(
            f"{path}: {size:,} bytes, but the YOLOv3 (COCO, 80 classes) Darknet weights are "
            f"{expected:,} bytes ({header.header_bytes}-byte header + {n_values:,} float32 "
            "values); "
            f"the file is {what} or belongs to another network (e.g. yolov3-tiny / yolov3-spp). "
            f"Download {WEIGHTS_FILE_NAME} again (it comes with PARE's data download)."
        )
    try:
        f = open(path, "rb")  # noqa: SIM115  closed below
    except OSError as e:
        raise DetectorError(f"{path}: cannot read the weights file ({e.strerror or e})") from None
    with f:
        f.seek(header.header_bytes)

        def take(t: torch.Tensor) -> None:
            n = t.numel()
            chunk = np.fromfile(f, dtype="<f4", count=n)
            if chunk.size != n:  # the file changed under us
                raise DetectorError(f"{path}: ended early while reading the weights")
            with torch.no_grad():
                t.copy_(torch.from_numpy(chunk.astype(np.float32).reshape(tuple(t.shape))))

        for layer in model.conv_layers():
            if layer.bn is not None:
                take(layer.bn.bias)
                take(layer.bn.weight)
                take(layer.bn.running_mean)
                take(layer.bn.running_var)
            else:
                assert layer.conv.bias is not None
                take(layer.conv.bias)
            take(layer.conv.weight)
    return header


def load_yolov3(
    path: str | os.PathLike[str] | None = None,
    *,
    device: str | torch.device | None = None,
) -> DarknetYoloV3:
    """Load YOLOv3 in eval mode on ``device`` (default: CUDA when available).

    ``path`` None looks where :func:`pare_studio.assets.resolve_yolo_weights` looks (the asset
    store, PARE's ``./data``, ``~/.torch/models``) and raises
    :class:`~pare_studio.errors.AssetError` naming those places when the file is in none.
    """
    from pare_studio.assets import resolve_yolo_weights

    weights = resolve_yolo_weights(path)
    model = DarknetYoloV3()
    load_darknet_weights(model, weights)
    model.eval()
    return model.to(default_device(device))


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a torch.device; None / "auto" means CUDA when available, else CPU.

    Raises ConfigError for an unknown or unavailable device
    (:func:`pare_studio.core.device.choose_device`).
    """
    from pare_studio.core.device import choose_device

    return choose_device(device)


@contextlib.contextmanager
def full_fp32_convolutions(device: torch.device) -> Iterator[None]:
    """On CUDA, run cuDNN convolutions in full fp32 (no TF32) inside the block.

    TF32 (the cuDNN default on Ampere and later) moves YOLO's outputs by far more than the
    reference's CPU noise, enough to flip objectness ≥ 0.8 decisions. The flag is global in torch,
    so it is restored on exit.
    """
    if device.type != "cuda":
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):
        old = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
    else:  # older torch
        old_flag = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = old_flag
