"""The PARE head of the released configuration (spec §1.3).

Two branches on the backbone features, each [conv3×3 (no bias) → BN → ReLU] × L:
the part branch ends in a 1×1 conv to J+1 part-segmentation logits (channel 0 = background),
the SMPL branch in a 1×1 conv to ``num_features_smpl`` channels. The 24 part maps (background
dropped) are turned into spatial softmax attention that pools the SMPL-branch features per part;
a locally connected layer (one 128 → 6 linear map per joint, no bias) gives the 6-D rotations,
and one linear layer each on the channel-major flattened (c·J + j) pooled features gives shape
and camera. Mean parameters are not added.

Written export-friendly (ONNX, dynamo): reshape / matmul / einsum only, no in-place ops, no
step slicing, no data-dependent control flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BN_MOMENTUM = 0.1


def _rot6d_to_rotmat(x: Tensor) -> Tensor:
    """6-D rotation representation → rotation matrices (PARE / SPIN convention).

    The six numbers are read as a 3×2 matrix row by row: a1 = (x0, x2, x4), a2 = (x1, x3, x5);
    b1 = a1/‖a1‖, b2 = normalize(a2 − (b1·a2) b1), b3 = b1 × b2; R = [b1 b2 b3] as columns.
    Normalisation divides by max(‖v‖, 1e-12).

    Parameters
    ----------
    x : (M, 6) float tensor (any leading shape is flattened).

    Returns
    -------
    (M, 3, 3) float tensor, rotation matrices.
    """
    m = x.reshape(-1, 3, 2)
    a1 = m[:, :, 0]
    a2 = m[:, :, 1]
    b1 = F.normalize(a1, dim=1, eps=1e-12)
    b2 = F.normalize(a2 - (b1 * a2).sum(dim=1, keepdim=True) * b1, dim=1, eps=1e-12)
    u0, u1, u2 = b1[:, 0], b1[:, 1], b1[:, 2]
    v0, v1, v2 = b2[:, 0], b2[:, 1], b2[:, 2]
    b3 = torch.stack([u1 * v2 - u2 * v1, u2 * v0 - u0 * v2, u0 * v1 - u1 * v0], dim=1)
    return torch.stack([b1, b2, b3], dim=-1)


class LocallyConnected2d(nn.Module):
    """Per-position linear map (kernel 1, stride 1, no bias), the reference's parameter layout.

    ``weight`` has shape (1, out, in, H, W, 1), so the checkpoint key ``pose_mlp.weight``
    (1, 6, 128, 24, 1, 1) loads unchanged.

    Forward: (N, in, H, W) → (N, out, H, W),
    out[n, o, h, w] = Σ_c x[n, c, h, w]·weight[0, o, c, h, w, 0].
    """

    def __init__(self, in_channels: int, out_channels: int, output_size: tuple[int, int]) -> None:
        super().__init__()
        h, w = output_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.output_size = (h, w)
        self.weight = nn.Parameter(torch.zeros(1, out_channels, in_channels, h, w, 1))

    def forward(self, x: Tensor) -> Tensor:
        h, w = self.output_size
        weight = self.weight.reshape(self.out_channels, self.in_channels, h, w)
        return torch.einsum("nchw,ochw->nohw", x, weight)


def _conv_branch(in_channels: int, num_layers: int, filters: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    cin = in_channels
    for _ in range(num_layers):
        layers += [
            nn.Conv2d(cin, filters, kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(filters, momentum=BN_MOMENTUM),
            nn.ReLU(),
        ]
        cin = filters
    return nn.Sequential(*layers)


class PareHead(nn.Module):
    """PARE head: part-segmentation attention, per-joint pose, shape and weak-perspective camera.

    Parameters
    ----------
    in_channels : int
        Backbone feature channels (480 for HRNet-W32, 720 for W48).
    num_joints : int
        J, the number of part maps and joint rotations (24).
    num_deconv_layers, num_deconv_filters : int
        Layers and width of each conv branch (2 and 128 released).
    num_features_smpl : int
        Channels of the SMPL-branch 1×1 conv feeding shape / camera (64).
    softmax_temp : float
        Value of the (unused) ``temperature`` buffer.
    """

    def __init__(
        self,
        in_channels: int = 480,
        num_joints: int = 24,
        num_deconv_layers: int = 2,
        num_deconv_filters: int = 128,
        num_features_smpl: int = 64,
        softmax_temp: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.num_features_smpl = num_features_smpl
        # buffers of the reference (saved in the checkpoint, unused by the released forward)
        self.register_buffer("temperature", torch.tensor(float(softmax_temp)))
        self.register_buffer("init_pose", torch.zeros(1, 144))  # SMPL mean pose, 24 × 6-D
        self.register_buffer("init_shape", torch.zeros(1, 10))
        self.register_buffer("init_cam", torch.zeros(1, 3))

        self.keypoint_deconv_layers = _conv_branch(
            in_channels, num_deconv_layers, num_deconv_filters
        )
        self.smpl_deconv_layers = _conv_branch(in_channels, num_deconv_layers, num_deconv_filters)
        self.keypoint_final_layer = nn.Conv2d(num_deconv_filters, num_joints + 1, kernel_size=1)
        self.smpl_final_layer = nn.Conv2d(num_deconv_filters, num_features_smpl, kernel_size=1)
        self.shape_mlp = nn.Linear(num_joints * num_features_smpl, 10)
        self.cam_mlp = nn.Linear(num_joints * num_features_smpl, 3)
        self.pose_mlp = LocallyConnected2d(num_deconv_filters, 6, output_size=(num_joints, 1))

    @staticmethod
    def attention_pool(logits: Tensor, features: Tensor) -> Tensor:
        """Softmax attention pooling per part.

        Parameters
        ----------
        logits : (N, J, H, W) part-attention logits.
        features : (N, C, H, W) features.

        Returns
        -------
        (N, C, J): pooled[n, c, j] = Σ_p softmax_p(logits[n, j])·features[n, c, p].
        """
        n, j = logits.shape[0], logits.shape[1]
        c = features.shape[1]
        attention = F.softmax(logits.reshape(n, j, -1), dim=-1)
        pooled = torch.matmul(attention, features.reshape(n, c, -1).transpose(1, 2))  # (N, J, C)
        return pooled.transpose(1, 2)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        """Backbone features (N, C_in, 56, 56) → head outputs.

        Returns
        -------
        dict with
            ``pred_segm_mask`` (N, J+1, 56, 56) part-segmentation logits, channel 0 background;
            ``pred_pose`` (N, J, 3, 3) rotation matrices;
            ``pred_cam`` (N, 3) weak-perspective camera (s, tx, ty) in crop space;
            ``pred_shape`` (N, 10) SMPL betas.
        """
        n = features.shape[0]
        part_feats = self.keypoint_deconv_layers(features)
        segm = self.keypoint_final_layer(part_feats)  # (N, J+1, H, W)
        smpl_feats = self.smpl_deconv_layers(features)  # (N, F, H, W)
        cam_shape_feats = self.smpl_final_layer(smpl_feats)  # (N, 64, H, W)

        logits = segm[:, 1:]  # drop background
        point_local_feat = self.attention_pool(logits, smpl_feats)  # (N, F, J)
        cam_shape_pooled = self.attention_pool(logits, cam_shape_feats)  # (N, 64, J)

        pose6d = self.pose_mlp(point_local_feat.unsqueeze(-1))  # (N, 6, J, 1)
        pose6d = pose6d.reshape(n, 6, self.num_joints).transpose(1, 2)  # (N, J, 6)
        shape_feats = cam_shape_pooled.reshape(n, self.num_features_smpl * self.num_joints)
        pred_cam = self.cam_mlp(shape_feats)
        pred_shape = self.shape_mlp(shape_feats)
        pred_pose = _rot6d_to_rotmat(pose6d).reshape(n, self.num_joints, 3, 3)
        return {
            "pred_segm_mask": segm,
            "pred_pose": pred_pose,
            "pred_cam": pred_cam,
            "pred_shape": pred_shape,
        }
