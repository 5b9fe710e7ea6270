# Copyright (c) diffmtl contributors. All rights reserved.
"""Multi-task conditioning: all tasks' initial predictions -> one map."""
from typing import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from diffmtl.registry import MODELS


@MODELS.register_module()
class MultiTaskConditioner(nn.Module):
    """Project the initial predictions of every task to ``channels``.

    * ``per_task_proj=False`` (Feature Diffusion, official code): one 3x3
      conv on the channel concatenation (``sum n_t -> C``).
    * ``per_task_proj=True`` (Prediction Diffusion, paper): a 3x3 conv per
      task (``n_t -> C``), concatenation (``T C``), a 3x3 conv to ``C``.

    Conv weights are Kaiming-normal (fan_out, relu), biases 0.

    ``DiffusionMTL`` builds it from its ``conditioner`` config, filling in
    ``in_channels`` and ``channels`` (``per_task_proj`` defaults to
    ``mode == 'prediction'``).

    Args:
        in_channels (Sequence[int]): ``n_t`` per task, in task order.
        channels (int): Output width C. Defaults to 512.
        per_task_proj (bool): See above. Defaults to False.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 channels: int = 512,
                 per_task_proj: bool = False):
        super().__init__()
        self.in_channels = list(in_channels)
        self.per_task_proj = per_task_proj
        if per_task_proj:
            self.task_projs = nn.ModuleList(
                nn.Conv2d(c, channels, 3, padding=1)
                for c in self.in_channels)
            fuse_in = channels * len(self.in_channels)
        else:
            self.task_projs = None
            fuse_in = sum(self.in_channels)
        self.fuse = nn.Conv2d(fuse_in, channels, 3, padding=1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(
                    m.weight, mode='fan_out', nonlinearity='relu')
                nn.init.zeros_(m.bias)

    def forward(self, preds: Sequence[Tensor]) -> Tensor:
        """Args: preds: per task (N, n_t, h, w), in task order.

        Returns:
            Tensor: (N, C, h, w) condition map.
        """
        if len(preds) != len(self.in_channels):
            raise ValueError(f'MultiTaskConditioner: expected '
                             f'{len(self.in_channels)} task maps, got '
                             f'{len(preds)}')
        if self.task_projs is not None:
            preds = [proj(p) for proj, p in zip(self.task_projs, preds)]
        return self.fuse(torch.cat(list(preds), dim=1))
