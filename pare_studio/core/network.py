"""The PARE network: HRNet backbone + PARE head (no SMPL), checkpoint-compatible.

``PareNetwork.state_dict()`` keys are ``backbone.*`` / ``head.*``: the official checkpoint's
``model.backbone.*`` / ``model.head.*`` entries with the ``model.`` prefix stripped
(see :mod:`pare_studio.core.checkpoint`).
"""

from __future__ import annotations

from torch import Tensor, nn

from pare_studio.core.config import PareConfig
from pare_studio.core.hrnet import HRNet
from pare_studio.core.pare_head import PareHead


class PareNetwork(nn.Module):
    """Backbone + head of PARE.

    Parameters
    ----------
    cfg : PareConfig
        Network fields (backbone, head widths, joints).

    Forward: images (N, 3, 224, 224) float32, ImageNet-normalised RGB → dict of
    ``pred_segm_mask`` (N, J+1, 56, 56) part logits (channel 0 background),
    ``pred_pose`` (N, J, 3, 3) rotation matrices, ``pred_cam`` (N, 3) weak-perspective
    (s, tx, ty), ``pred_shape`` (N, 10) betas.
    """

    def __init__(self, cfg: PareConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = HRNet(width=cfg.hrnet_width, use_conv=cfg.backbone_use_conv)
        self.head = PareHead(
            in_channels=self.backbone.out_channels,
            num_joints=cfg.num_joints,
            num_deconv_layers=cfg.num_deconv_layers,
            num_deconv_filters=cfg.num_deconv_filters,
            num_features_smpl=cfg.num_features_smpl,
            softmax_temp=cfg.softmax_temp,
        )

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """images (N, 3, 224, 224) float32 → head outputs (see class docstring)."""
        return self.head(self.backbone(images))


def build_network(cfg: PareConfig | None = None) -> PareNetwork:
    """A :class:`PareNetwork` for ``cfg`` (None = released configuration), in eval mode.

    Weights are uninitialised placeholders until
    :func:`~pare_studio.core.checkpoint.load_network_weights`.
    """
    if cfg is None:
        from pare_studio.core.config import load_config

        cfg = load_config(None)
    return PareNetwork(cfg).eval()
