"""HRNet backbone of PARE (``hrnet_w32`` / ``hrnet_w48``, "-conv" and "-interp" outputs).

The standard HRNet "pose" network (stem, 4 bottlenecks, stages of 1 / 4 / 3 high-resolution
modules with 2 / 3 / 4 branches of BasicBlocks), with PARE's ending: the four branch outputs
are brought to 1/4 resolution and concatenated (spec §1.2). Module and parameter names produce
exactly the keys of the official checkpoint (``conv1``, ``layer1.0.downsample.0``,
``transition1.1.0.0``, ``stage2.0.branches.0.0.conv1``, ``stage3.0.fuse_layers.2.0.1.0``,
``final_layer``, ``upsample_stage_4.9``, ...). ``final_layer`` is created (so it loads) but never
used, as in the reference.

Written export-friendly: no in-place ops, no data-dependent Python control flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_MOMENTUM = 0.1

#: (modules, blocks per branch) of stages 2, 3, 4; branch channels are width · (1, 2, 4, 8).
_STAGES: tuple[tuple[int, int], ...] = ((1, 4), (4, 4), (3, 4))

#: Output channels of HRNet's unused pose ``final_layer`` (the reference's MODEL.NUM_JOINTS).
_FINAL_LAYER_JOINTS = 24


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3×3 convs with BN, residual add, ReLU (expansion 1)."""

    expansion = 1

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1×1 → 3×3 → 1×1 (×4 expansion) convs with BN, residual add, ReLU."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by all-to-all SUM fusion (multi-scale output).

    Fuse (i, j): j > i: 1×1 conv + BN + nearest ×2^(j−i); j == i: identity; j < i: (i−j) 3×3
    stride-2 convs, all but the last with BN + ReLU, the last mapping to C_i with BN only.
    Output i = ReLU(Σ_j fuse(i, j)(x_j)).
    """

    def __init__(self, channels: list[int], num_blocks: int) -> None:
        super().__init__()
        self.num_branches = len(channels)
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c, c) for _ in range(num_blocks))) for c in channels
        )
        self.fuse_layers = self._make_fuse_layers(channels)
        self.relu = nn.ReLU()

    @staticmethod
    def _make_fuse_layers(channels: list[int]) -> nn.ModuleList:
        n = len(channels)
        fuse = nn.ModuleList()
        for i in range(n):
            row: list[nn.Module | None] = []
            for j in range(n):
                if j > i:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(channels[j], channels[i], 1, 1, 0, bias=False),
                            nn.BatchNorm2d(channels[i]),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    row.append(None)
                else:
                    steps: list[nn.Module] = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            steps.append(
                                nn.Sequential(
                                    _conv3x3(channels[j], channels[i], stride=2),
                                    nn.BatchNorm2d(channels[i]),
                                )
                            )
                        else:
                            steps.append(
                                nn.Sequential(
                                    _conv3x3(channels[j], channels[j], stride=2),
                                    nn.BatchNorm2d(channels[j]),
                                    nn.ReLU(),
                                )
                            )
                    row.append(nn.Sequential(*steps))
            fuse.append(nn.ModuleList(row))
        return fuse

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        out: list[Tensor] = []
        for i, row in enumerate(self.fuse_layers):
            y = xs[0] if i == 0 else row[0](xs[0])
            for j in range(1, self.num_branches):
                y = y + (xs[j] if i == j else row[j](xs[j]))
            out.append(self.relu(y))
        return out


def _upsample_stack(channels: int, times: int) -> nn.Sequential:
    """[bilinear ×2 (align_corners=True), conv3×3 (no bias), BN, ReLU] × ``times``."""
    layers: list[nn.Module] = []
    for _ in range(times):
        layers += [
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
            _conv3x3(channels, channels),
            nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            nn.ReLU(),
        ]
    return nn.Sequential(*layers)


class HRNet(nn.Module):
    """PARE's HRNet backbone.

    Parameters
    ----------
    width : int
        32 or 48 (branch channels width · (1, 2, 4, 8)).
    use_conv : bool
        True for "-conv" (branches 1..3 reach 1/4 resolution through ``upsample_stage_{2,3,4}``),
        False for "-interp" (bilinear interpolation, align_corners=True, no weights).

    Forward: images (N, 3, H, W) float32 → features (N, 15·width, H/4, W/4)
    (480 × 56 × 56 for W32 at 224).
    """

    def __init__(self, width: int = 32, use_conv: bool = True) -> None:
        super().__init__()
        self.width = width
        self.use_conv = use_conv
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(
            Bottleneck(
                64,
                64,
                downsample=nn.Sequential(
                    nn.Conv2d(64, 256, kernel_size=1, bias=False),
                    nn.BatchNorm2d(256, momentum=BN_MOMENTUM),
                ),
            ),
            *(Bottleneck(256, 64) for _ in range(3)),
        )

        pre = [256]
        for s, (modules, blocks) in enumerate(_STAGES, start=2):
            channels = [width * 2**b for b in range(s)]
            setattr(self, f"transition{s - 1}", self._make_transition(pre, channels))
            setattr(
                self,
                f"stage{s}",
                nn.Sequential(*(HighResolutionModule(channels, blocks) for _ in range(modules))),
            )
            pre = channels

        self.final_layer = nn.Conv2d(width, _FINAL_LAYER_JOINTS, kernel_size=1, stride=1, padding=0)
        if use_conv:
            self.upsample_stage_2 = _upsample_stack(2 * width, 1)
            self.upsample_stage_3 = _upsample_stack(4 * width, 2)
            self.upsample_stage_4 = _upsample_stack(8 * width, 3)

    @staticmethod
    def _make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(pre):
                if c != pre[i]:
                    layers.append(nn.Sequential(_conv3x3(pre[i], c), nn.BatchNorm2d(c), nn.ReLU()))
                else:
                    layers.append(None)
            else:
                steps: list[nn.Module] = []
                for k in range(i + 1 - len(pre)):
                    cin = pre[-1]
                    cout = c if k == i - len(pre) else cin
                    steps.append(
                        nn.Sequential(
                            _conv3x3(cin, cout, stride=2), nn.BatchNorm2d(cout), nn.ReLU()
                        )
                    )
                layers.append(nn.Sequential(*steps))
        return nn.ModuleList(layers)

    @property
    def out_channels(self) -> int:
        """Channels of the output features: 15 · width."""
        return 15 * self.width

    def forward(self, x: Tensor) -> Tensor:
        """images (N, 3, H, W) float32 → features (N, 15·width, H/4, W/4)."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)

        xs: list[Tensor] = [x]
        for s in (2, 3, 4):
            transition: nn.ModuleList = getattr(self, f"transition{s - 1}")
            inputs: list[Tensor] = []
            for i, t in enumerate(transition):
                if t is None:
                    inputs.append(xs[i])
                else:
                    # new branches start from the lowest-resolution output of the previous stage
                    inputs.append(t(xs[i] if i < len(xs) else xs[-1]))
            xs = inputs
            for module in getattr(self, f"stage{s}"):
                xs = module(xs)

        x0, x1, x2, x3 = xs
        if self.use_conv:
            x1 = self.upsample_stage_2(x1)
            x2 = self.upsample_stage_3(x2)
            x3 = self.upsample_stage_4(x3)
        else:
            size = x0.shape[-2:]
            x1 = F.interpolate(x1, size=size, mode="bilinear", align_corners=True)
            x2 = F.interpolate(x2, size=size, mode="bilinear", align_corners=True)
            x3 = F.interpolate(x3, size=size, mode="bilinear", align_corners=True)
        return torch.cat([x0, x1, x2, x3], dim=1)
