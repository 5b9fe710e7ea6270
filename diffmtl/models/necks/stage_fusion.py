# Copyright (c) diffmtl contributors. All rights reserved.
"""Fuse all backbone stages at one resolution."""
from typing import Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from diffmtl.registry import MODELS


@MODELS.register_module()
class StageFusionNeck(nn.Module):
    """Resize every stage to one size, concatenate, project with a conv.

    The target size is ``floor(scale * size of stage ref_index)``; the
    default (stage 0 at stride 4, ``scale=0.5``) gives stride 8 as the
    reference. Resizing is bilinear; the projection is one ``kernel_size``
    conv with bias and no norm / activation.

    Args:
        in_channels (Sequence[int]): Channels of the stages, e.g.
            ``[64, 128, 256, 512]``.
        out_channels (int): Output width C. Defaults to 512.
        ref_index (int): Stage that sets the size. Defaults to 0.
        scale (float): Factor applied to that stage's size. Defaults to 0.5.
        kernel_size (int): Of the projection. Defaults to 3.
        align_corners (bool): Of the resizes. Defaults to False.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int = 512,
                 ref_index: int = 0,
                 scale: float = 0.5,
                 kernel_size: int = 3,
                 align_corners: bool = False):
        super().__init__()
        self.in_channels = list(in_channels)
        self.ref_index = ref_index
        self.scale = scale
        self.align_corners = align_corners
        self.proj = nn.Conv2d(
            sum(self.in_channels), out_channels, kernel_size,
            padding=kernel_size // 2)

    def forward(self, inputs: Union[Sequence[Tensor], Tensor]
                ) -> Tuple[Tensor]:
        """Args: inputs: per stage (N, C_i, H_i, W_i).

        Returns:
            tuple[Tensor]: one (N, out_channels, H_r * scale, W_r * scale).
        """
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'StageFusionNeck: expected '
                             f'{len(self.in_channels)} stages, got '
                             f'{len(inputs)}')
        ref = inputs[self.ref_index].shape[-2:]
        size = (int(ref[0] * self.scale), int(ref[1] * self.scale))
        maps = [
            x if tuple(x.shape[-2:]) == size else F.interpolate(
                x, size=size, mode='bilinear',
                align_corners=self.align_corners) for x in inputs
        ]
        return (self.proj(torch.cat(maps, dim=1)), )
