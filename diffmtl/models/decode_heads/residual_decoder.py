# Copyright (c) diffmtl contributors. All rights reserved.
"""Per-task stack of ResNet basic blocks."""
from typing import Optional

import torch.nn as nn
from mmseg.models.backbones.resnet import BasicBlock
from torch import Tensor

from diffmtl.registry import MODELS


@MODELS.register_module()
class ResidualTaskDecoder(nn.Module):
    """``num_blocks`` ResNet basic blocks at constant width, optionally
    followed by a 1x1 prediction conv.

    Used as the preliminary decoder of DiffusionMTL (2 blocks) and as the
    per-task decoder of the MTL baseline (6 blocks), each built from the
    segmentor's ``decoder`` config, which states ``num_blocks`` and
    ``norm_cfg`` (the MTL baseline's gets 6 blocks when it does not), with
    ``channels`` (and, for the baseline, ``out_channels``) set by the
    segmentor.

    Args:
        channels (int): Width. Defaults to 512.
        num_blocks (int): Basic blocks. Defaults to 2.
        norm_cfg (dict): Norm layer config. Defaults to ``dict(type='BN')``.
        out_channels (int, optional): If set, ``forward`` returns the
            output of a 1x1 conv ``channels -> out_channels`` instead of the
            features.
    """

    def __init__(self,
                 channels: int = 512,
                 num_blocks: int = 2,
                 norm_cfg: Optional[dict] = None,
                 out_channels: Optional[int] = None):
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.blocks = nn.Sequential(*[
            BasicBlock(channels, channels, norm_cfg=norm_cfg)
            for _ in range(num_blocks)
        ])
        self.head = None if out_channels is None else nn.Conv2d(
            channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """(N, C, h, w) -> (N, C or out_channels, h, w)."""
        x = self.blocks(x)
        return x if self.head is None else self.head(x)
