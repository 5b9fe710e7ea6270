# Copyright (c) diffmtl contributors. All rights reserved.
"""The cross-task mapping network of XTC, conditioned on the task pair.

MTPSL's mapper is a copy of its SegNet encoder with a stem per task and
FiLM after the normalisation layers, selected by the ordered task pair.
:class:`FiLMResNetMapper` is the same idea on the DiffusionMTL baseline's
encoder (INFERRED default of the paper's XTC*, not from released code):
per-task ResNet stems, shared ResNet basic-block stages with FiLM after
every norm inside the blocks, and the baseline's stage-fusion projection,
so that its output has the shape of the shared feature ``F``.

A mapper is any ``MODELS`` module whose constructor takes ``tasks``,
``in_channels`` (``{task: n_t}``), ``num_pairs`` and ``out_channels`` and
whose ``forward(inputs, pair_index)`` maps groups of encoded maps (one
group per stem task) to features; see :meth:`FiLMResNetMapper.forward`.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from torch import Tensor

from diffmtl.models.necks import StageFusionNeck
from diffmtl.models.utils import xavier_normal_init
from diffmtl.registry import MODELS

__all__ = ['FiLM', 'FiLMBasicBlock', 'FiLMResNetMapper', 'pair_code']


def pair_code(source: Tensor, target: Tensor, num_tasks: int) -> Tensor:
    """Index of the ordered pair ``(s, t)``, ``s != t``, row-major.

    ``k = s (T - 1) + t - [t > s]`` (MTPSL ``model/mapfns.py``), so the
    ``T (T - 1)`` pairs are numbered ``0 .. T (T - 1) - 1``.

    Args:
        source (Tensor): (N,) int task indices ``s``.
        target (Tensor): (N,) int task indices ``t``.
        num_tasks (int): ``T``.

    Returns:
        Tensor: (N,) int64 pair codes.
    """
    if bool((source == target).any()):
        raise ValueError('pair_code: source and target must differ')
    return (source * (num_tasks - 1) + target -
            (target > source).long()).long()


class FiLM(nn.Module):
    """Feature-wise affine modulation selected per sample.

    ``out[n] = x[n] * gamma[k_n] + beta[k_n]`` with ``gamma`` initialised
    to 1 and ``beta`` to 0 (MTPSL). The parameters are named ``gamma`` /
    ``beta`` inside modules named ``film*``, so the optimiser can give them
    their own learning rate (``paramwise_cfg.custom_keys['film']``).

    Args:
        channels (int): C.
        num_pairs (int): Number of conditions ``P`` (ordered task pairs).
    """

    def __init__(self, channels: int, num_pairs: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_pairs, channels))
        self.beta = nn.Parameter(torch.zeros(num_pairs, channels))

    def forward(self, x: Tensor, pair_index: Tensor) -> Tensor:
        """Args: x (N, C, h, w); pair_index (N,) int64 in ``[0, P)``.

        Returns:
            Tensor: (N, C, h, w).
        """
        gamma = self.gamma[pair_index][:, :, None, None]
        beta = self.beta[pair_index][:, :, None, None]
        return x * gamma + beta


class FiLMBasicBlock(nn.Module):
    """ResNet basic block with FiLM after both of its norms.

    ``relu(film2(bn2(conv2(relu(film1(bn1(conv1(x))))))) + down(x))``;
    the shortcut's norm (if any) is not modulated.

    Args:
        in_channels (int): Input width.
        channels (int): Output width.
        stride (int): Of the first conv and the shortcut. Defaults to 1.
        num_pairs (int): FiLM conditions. Defaults to 1.
        norm_cfg (dict, optional): Norm config. Defaults to BN.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 stride: int = 1,
                 num_pairs: int = 1,
                 norm_cfg: Optional[dict] = None):
        super().__init__()
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.conv1 = nn.Conv2d(
            in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = build_norm_layer(norm_cfg, channels)[1]
        self.film1 = FiLM(channels, num_pairs)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = build_norm_layer(norm_cfg, channels)[1]
        self.film2 = FiLM(channels, num_pairs)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                build_norm_layer(norm_cfg, channels)[1])

    def forward(self, x: Tensor, pair_index: Tensor) -> Tensor:
        """Args: x (N, C_in, h, w); pair_index (N,).

        Returns:
            Tensor: (N, C, h / stride, w / stride).
        """
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.film1(self.bn1(self.conv1(x)), pair_index))
        out = self.film2(self.bn2(self.conv2(out)), pair_index)
        return self.relu(out + identity)


@MODELS.register_module()
class FiLMResNetMapper(nn.Module):
    """Pair-conditioned copy of the baseline encoder (ResNet + fusion).

    Per task ``t`` a stem ``conv 7x7 / 2 (n_t -> stem_channels) + norm +
    ReLU`` (not modulated); then, shared by every task and pair, a 3x3 / 2
    max-pool, four stages of :class:`FiLMBasicBlock` (widths
    ``base_channels * 2^i``, strides ``strides``) and the baseline's
    :class:`~diffmtl.models.necks.StageFusionNeck` (every stage resized to
    ``fusion_scale`` x the first stage's size, concatenated, 3x3 conv to
    ``out_channels``, no activation). With the defaults and a stride-4
    stem this maps (N, n_t, H, W) to (N, 512, H/8, W/8), the shape of the
    baseline's shared feature ``F``.

    Convolutions are Xavier-normal initialised (biases 0), norms 1 / 0 and
    FiLM 1 / 0, as MTPSL.

    Args:
        tasks (Sequence[str]): Task names, in the model's order.
        in_channels (dict): ``{task: n_t}`` channels of each encoded map.
        num_pairs (int): FiLM conditions, ``T (T - 1)``.
        out_channels (int): Width of the output (``F``'s). Defaults to 512.
        depth (int): 18 or 34 (basic-block ResNets). Defaults to 18.
        stem_channels (int): Stem width. Defaults to 64.
        base_channels (int): Width of the first stage. Defaults to 64.
        strides (Sequence[int]): Of the four stages. Defaults to
            ``(1, 2, 2, 2)``.
        fusion_scale (float): Fused size relative to the first stage.
            Defaults to 0.5 (stride 8).
        norm_cfg (dict, optional): Norm of stems and blocks. Defaults to BN.
        align_corners (bool): Of the fusion resizes. Defaults to False.
    """
    ARCH = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}

    def __init__(self,
                 tasks: Sequence[str],
                 in_channels: Dict[str, int],
                 num_pairs: int,
                 out_channels: int = 512,
                 depth: int = 18,
                 stem_channels: int = 64,
                 base_channels: int = 64,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 fusion_scale: float = 0.5,
                 norm_cfg: Optional[dict] = None,
                 align_corners: bool = False):
        super().__init__()
        if depth not in self.ARCH:
            raise ValueError(f'FiLMResNetMapper: depth must be one of '
                             f'{sorted(self.ARCH)}, got {depth}')
        missing = [t for t in tasks if t not in in_channels]
        if missing:
            raise KeyError(f'FiLMResNetMapper: in_channels lacks {missing}')
        norm_cfg = norm_cfg or dict(type='BN', requires_grad=True)
        self.tasks = tuple(tasks)
        self.num_pairs = int(num_pairs)
        self.out_channels = out_channels
        self.stems = nn.ModuleDict({
            t:
            nn.Sequential(
                nn.Conv2d(
                    int(in_channels[t]),
                    stem_channels,
                    7,
                    stride=2,
                    padding=3,
                    bias=False),
                build_norm_layer(norm_cfg, stem_channels)[1],
                nn.ReLU(inplace=True))
            for t in self.tasks
        })
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = [base_channels * 2**i for i in range(4)]
        self.stages = nn.ModuleList()
        in_ch = stem_channels
        for width, stride, blocks in zip(widths, strides, self.ARCH[depth]):
            self.stages.append(
                nn.ModuleList([
                    FiLMBasicBlock(
                        in_ch if i == 0 else width,
                        width,
                        stride=stride if i == 0 else 1,
                        num_pairs=self.num_pairs,
                        norm_cfg=norm_cfg) for i in range(blocks)
                ]))
            in_ch = width
        self.fusion = StageFusionNeck(
            in_channels=widths,
            out_channels=out_channels,
            ref_index=0,
            scale=fusion_scale,
            align_corners=align_corners)
        xavier_normal_init(self)

    def forward(self, inputs: Dict[str, Tensor],
                pair_index: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Map groups of encoded maps, one trunk pass for all of them.

        Every group goes through its task's stem; the stem outputs are
        concatenated and run through the shared stages and fusion once,
        each row modulated by its own pair's FiLM parameters (so the norms
        see all rows of the call). An empty group (N_task = 0) runs its
        stem too, and a call of empty groups runs the trunk on no rows:
        with synchronised norms every process then issues the same norm
        collectives whatever its rows (the caller passes the same groups
        in every process).

        Args:
            inputs (dict[str, Tensor]): ``{task: (N_task, n_task, H, W)}``,
                the encoded maps whose stem is ``task``'s; the same H, W.
            pair_index (dict[str, Tensor]): ``{task: (N_task,)}`` int64
                pair codes of the rows (:func:`pair_code`).

        Returns:
            dict[str, Tensor]: ``{task: (N_task, out_channels, h, w)}``;
            ``{}`` for no groups.
        """
        keys = list(inputs)
        if not keys:
            return {}
        x = torch.cat([self.stems[t](inputs[t]) for t in keys])
        codes = torch.cat([pair_index[t].to(x.device).long() for t in keys])
        if codes.numel() != x.shape[0]:
            raise ValueError('FiLMResNetMapper: pair_index and inputs differ '
                             'in length')
        x = self.maxpool(x)
        outs = []
        for stage in self.stages:
            for block in stage:
                x = block(x, codes)
            outs.append(x)
        y = self.fusion(outs)[0]
        sizes = [inputs[t].shape[0] for t in keys]
        return dict(zip(keys, torch.split(y, sizes)))
