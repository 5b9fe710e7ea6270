# Copyright (c) diffmtl contributors. All rights reserved.
"""The multi-task denoiser: x0-estimate of one task's noisy map."""
from typing import Dict, Optional, Sequence

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from diffmtl.registry import MODELS
from .attention import CrossAttentionBlock, SelfAttentionBlock
from .step_embedding import StepEmbedding


def _task_head(channels: int, num_convs: int,
               out_channels: Optional[int]) -> nn.Sequential:
    layers = [nn.Conv2d(channels, channels, 1)]
    for _ in range(num_convs):
        layers += [nn.Conv2d(channels, channels, 3, padding=1),
                   nn.ReLU(inplace=True)]
    if out_channels is not None:
        layers.append(nn.Conv2d(channels, out_channels, 1))
    return nn.Sequential(*layers)


@MODELS.register_module()
class MultiTaskDenoiser(nn.Module):
    """Denoising network shared by all tasks, with per-task in/out layers.

    For task ``k`` and step ``t``::

        z  = pre_layers[k](x_t) + step_embed(t)            # (N, C, h, w)
        E  = tokens(down(z)); Q = tokens(down(cond))       # (N, L, C)
        Q  = blocks(Q, E)           # cross-attention, query = condition
        y  = up(map(Q)) + z
        x0 = task_heads[k](y)       # C ch. (feature) or n_k ch. (prediction)

    ``down`` is bilinear ``token_scale`` resizing, ``up`` resizes back to
    (h, w). With ``attention='self'`` (ablation without multi-task
    conditioning) the blocks are self-attention blocks over E and ``cond``
    is unused. ``task_heads[k]`` is a 1x1 conv, ``head_convs`` x (3x3 conv,
    ReLU) and, when ``out_channels`` is given, a 1x1 conv to ``n_k``.

    ``DiffusionMTL`` builds it from its ``denoiser`` config, filling in
    ``tasks``, ``in_channels``, ``channels``, ``out_channels``,
    ``attention`` and ``align_corners``; a replacement registered in
    ``MODELS`` takes the same arguments and the same :meth:`forward`.

    Args:
        tasks (Sequence[str]): Task names.
        in_channels (dict): Input channels per task (C in feature mode,
            ``n_t`` in prediction mode).
        channels (int): Width C. Defaults to 512.
        out_channels (dict, optional): Output channels per task; ``None``
            keeps C (feature mode).
        num_blocks (int): Attention blocks. Defaults to 4.
        num_heads (int): Heads per block. Defaults to 4 (official code; the
            paper's supplement says 1).
        mlp_ratio (float): Defaults to 4.
        token_scale (float): Resize factor before tokenising.
            Defaults to 0.25.
        head_convs (int): 3x3 conv + ReLU layers of each task head.
            Defaults to 3.
        step_freq_dim (int): Sinusoid width of the step embedding.
            Defaults to 256.
        attention (str): ``'cross'`` or ``'self'``. Defaults to 'cross'.
        align_corners (bool): Of the token resizes. Defaults to False.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 in_channels: Dict[str, int],
                 channels: int = 512,
                 out_channels: Optional[Dict[str, int]] = None,
                 num_blocks: int = 4,
                 num_heads: int = 4,
                 mlp_ratio: float = 4.,
                 token_scale: float = 0.25,
                 head_convs: int = 3,
                 step_freq_dim: int = 256,
                 attention: str = 'cross',
                 align_corners: bool = False):
        super().__init__()
        if attention not in ('cross', 'self'):
            raise ValueError(f'MultiTaskDenoiser: attention must be cross or '
                             f'self, got {attention!r}')
        self.tasks = tuple(tasks)
        self.attention = attention
        self.token_scale = token_scale
        self.align_corners = align_corners
        missing = [t for t in self.tasks if t not in in_channels]
        if missing:
            raise KeyError(f'MultiTaskDenoiser: in_channels lacks {missing}')
        self.step_embed = StepEmbedding(channels, step_freq_dim)
        self.pre_layers = nn.ModuleDict({
            t: nn.Conv2d(in_channels[t], channels, 3, padding=1)
            for t in self.tasks
        })
        block = CrossAttentionBlock if attention == 'cross' \
            else SelfAttentionBlock
        self.blocks = nn.ModuleList(
            block(channels, num_heads, mlp_ratio) for _ in range(num_blocks))
        self.task_heads = nn.ModuleDict({
            t: _task_head(channels, head_convs,
                          None if out_channels is None else out_channels[t])
            for t in self.tasks
        })

    def _down(self, x: Tensor) -> Tensor:
        if self.token_scale == 1:
            return x
        return F.interpolate(
            x, scale_factor=self.token_scale, mode='bilinear',
            align_corners=self.align_corners)

    def forward(self, task: str, x: Tensor, t: Tensor,
                cond: Optional[Tensor] = None) -> Tensor:
        """Estimate x0 of ``task``.

        Args:
            task (str): Task name.
            x (Tensor): (N, in_ch, h, w) noisy map.
            t (Tensor): (N,) integer step indices.
            cond (Tensor, optional): (N, C, h, w) condition map (required
                for cross-attention).

        Returns:
            Tensor: (N, C or n_task, h, w) x0 estimate.
        """
        if task not in self.pre_layers:
            raise KeyError(f'MultiTaskDenoiser: unknown task {task!r}; has '
                           f'{list(self.tasks)}')
        z = self.pre_layers[task](x)
        z = z + self.step_embed(t)[:, :, None, None].to(z.dtype)
        e = self._down(z)
        n, c, hq, wq = e.shape
        e = e.flatten(2).transpose(1, 2)
        if self.attention == 'cross':
            if cond is None:
                raise ValueError('MultiTaskDenoiser: cross-attention needs a '
                                 'condition map')
            q = self._down(cond).flatten(2).transpose(1, 2)
            for blk in self.blocks:
                q, e = blk(q, e)
            out = q
        else:
            for blk in self.blocks:
                e = blk(e)
            out = e
        out = out.transpose(1, 2).reshape(n, c, hq, wq)
        if out.shape[-2:] != z.shape[-2:]:
            out = F.interpolate(
                out, size=z.shape[-2:], mode='bilinear',
                align_corners=self.align_corners)
        return self.task_heads[task](out + z)
