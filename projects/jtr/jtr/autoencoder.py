# Copyright (c) diffmtl contributors. All rights reserved.
"""JTR's regulariser network g: a SegNet auto-encoder over the stacked
task maps (JTR ``models/nyuv2_segnet_jtr.py``)."""
from typing import List, Optional, Sequence, Tuple, Union

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from torch import Tensor

from diffmtl.models.utils import xavier_normal_init
from diffmtl.registry import MODELS

__all__ = ['SegNetAutoEncoder']

#: How the decoder upsamples: with the encoder's pooling indices (JTR), or
#: by interpolation, from the latent alone.
UNPOOL_MODES = ('indices', 'nearest', 'bilinear')


@MODELS.register_module()
class SegNetAutoEncoder(nn.Module):
    """SegNet encoder-decoder that embeds and reconstructs stacked maps.

    Encoder g1: ``len(widths)`` stages; stage ``s`` is ``num_convs[s]``
    3x3 convs (the first from the previous width, the rest at
    ``widths[s]``), each + norm + ReLU, then a 2x2 max-pool that keeps its
    indices. The latent ``z`` is the last pool's output,
    (N, widths[-1], H / 2^S, W / 2^S). Decoder g2: per stage, deepest
    first, a max-unpool with the encoder indices of the same pass (so g2
    cannot decode a latent alone), a conv ``widths[s] -> widths[s-1]``
    (``widths[0]`` for the first stage) and ``num_convs[s] - 1`` convs at
    that width. Head: conv 3x3 (``widths[0]``, with bias), then conv 1x1
    to ``in_channels``, no norm or activation.

    ``unpool='nearest'`` or ``'bilinear'`` replaces the max-unpool by an
    interpolation to the same size, so the reconstruction depends on the
    latent ``z`` alone (the indices are not used); the parameters are the
    same. With JTR's unpooling the pooling indices can carry what the
    reconstruction needs, and nothing then keeps ``z`` informative.

    The defaults are JTR's layout (VGG16's 13 encoder convs) with one
    change: the norm defaults to ``InstanceNorm2d(affine=True)``. JTR runs
    g in train mode on one image at a time, so its BatchNorm uses that
    image's statistics, which is exactly instance norm; with it, all images
    of a batch go through one call. Convs followed by a norm have no bias
    (the norm cancels it). Convs are Xavier-normal initialised (biases 0),
    norms 1 / 0, as JTR.

    Args:
        in_channels (int): ``C``: channels of the stacked maps (the sum of
            the tasks' encoded channels).
        widths (Sequence[int]): Stage widths. Defaults to JTR's
            ``(64, 128, 256, 512, 512)``.
        num_convs (Sequence[int]): Convs per stage (encoder and decoder).
            Defaults to ``(2, 2, 3, 3, 3)``.
        norm_cfg (dict, optional): mmcv norm config. Defaults to
            ``dict(type='IN', affine=True)``.
        unpool (str): ``'indices'`` (JTR), ``'nearest'`` or
            ``'bilinear'``. Defaults to ``'indices'``.
    """

    def __init__(self,
                 *,
                 in_channels: int,
                 widths: Sequence[int] = (64, 128, 256, 512, 512),
                 num_convs: Sequence[int] = (2, 2, 3, 3, 3),
                 norm_cfg: Optional[dict] = None,
                 unpool: str = 'indices') -> None:
        super().__init__()
        name = type(self).__name__
        if unpool not in UNPOOL_MODES:
            raise ValueError(f'{name}: unpool must be one of {UNPOOL_MODES}, '
                             f'got {unpool!r}')
        widths = [int(w) for w in widths]
        num_convs = [int(n) for n in num_convs]
        if int(in_channels) < 1:
            raise ValueError(f'{name}: in_channels must be >= 1, got '
                             f'{in_channels}')
        if not widths or len(widths) != len(num_convs):
            raise ValueError(f'{name}: widths {widths} and num_convs '
                             f'{num_convs} must be non-empty and of the same '
                             'length (one entry per stage)')
        if min(widths) < 1 or min(num_convs) < 1:
            raise ValueError(f'{name}: every entry of widths {widths} and '
                             f'num_convs {num_convs} must be >= 1')
        self.in_channels = int(in_channels)
        self.widths = tuple(widths)
        self.num_convs = tuple(num_convs)
        self.norm_cfg = dict(norm_cfg or dict(type='IN', affine=True))
        self.unpool_mode = unpool

        self.encoder = nn.ModuleList()
        prev = self.in_channels
        for width, n in zip(widths, num_convs):
            self.encoder.append(
                nn.Sequential(*[
                    self._conv(prev if i == 0 else width, width)
                    for i in range(n)
                ]))
            prev = width
        # decoder[s] undoes encoder stage s; it runs deepest first
        self.decoder = nn.ModuleList()
        for s, (width, n) in enumerate(zip(widths, num_convs)):
            out = widths[s - 1] if s > 0 else widths[0]
            self.decoder.append(
                nn.Sequential(*[
                    self._conv(width if i == 0 else out, out) for i in range(n)
                ]))
        self.head = nn.Sequential(
            nn.Conv2d(widths[0], widths[0], 3, padding=1),
            nn.Conv2d(widths[0], self.in_channels, 1))
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(kernel_size=2, stride=2)
        xavier_normal_init(self)

    def _conv(self, in_ch: int, out_ch: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
            build_norm_layer(self.norm_cfg, out_ch)[1], nn.ReLU(inplace=True))

    @property
    def stride(self) -> int:
        """Downsampling of the latent: ``2 ** len(widths)``."""
        return 2**len(self.widths)

    def encode(self, x: Tensor) -> Tuple[Tensor, List[Tensor], List[tuple]]:
        """g1.

        Args:
            x (Tensor): (N, C, H, W) stacked maps, ``H, W >= stride``.

        Returns:
            tuple: ``z`` (N, widths[-1], H', W') with ``H' = floor`` of
            ``H / stride``; the pool indices and the pre-pool sizes of
            every stage (the decoder's skip information).
        """
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'{type(self).__name__}: expected (N, '
                             f'{self.in_channels}, H, W) input, got '
                             f'{tuple(x.shape)}')
        if min(x.shape[-2:]) < self.stride:
            raise ValueError(f'{type(self).__name__}: input {tuple(x.shape)} '
                             f'is smaller than the {self.stride}x '
                             'downsampling of its encoder')
        indices, sizes = [], []
        for stage in self.encoder:
            x = stage(x)
            sizes.append(tuple(x.shape[-2:]))
            x, idx = self.pool(x)
            indices.append(idx)
        return x, indices, sizes

    def decode(self, z: Tensor, indices: Sequence[Tensor],
               sizes: Sequence[tuple]) -> Tensor:
        """g2 and the head: (N, C, H, W) logits of the stacked maps.

        With ``unpool`` other than ``'indices'``, ``indices`` is not used.
        """
        x = z
        for s in reversed(range(len(self.decoder))):
            if self.unpool_mode == 'indices':
                x = self.unpool(x, indices[s], output_size=sizes[s])
            else:
                x = F.interpolate(x, size=sizes[s], mode=self.unpool_mode)
            x = self.decoder[s](x)
        return self.head(x)

    def forward(
            self,
            x: Tensor,
            latent_only: bool = False) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        """Embed (and reconstruct) stacked maps.

        Args:
            x (Tensor): (N, C, H, W).
            latent_only (bool): Return only ``z`` (the encoder pass of
                the distance loss).

        Returns:
            Tensor | tuple[Tensor, Tensor]: ``z``, or ``(z, recon)`` with
            ``recon`` (N, C, H, W).
        """
        z, indices, sizes = self.encode(x)
        if latent_only:
            return z
        return z, self.decode(z, indices, sizes)
