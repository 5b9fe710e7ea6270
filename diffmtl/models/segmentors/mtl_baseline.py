# Copyright (c) diffmtl contributors. All rights reserved.
"""The paper's MTL and single-task baselines."""
from typing import Dict, List, Optional, Sequence, Union

import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.registry import MODELS
from ..utils.head_init import init_head_bias
from .base_multitask import (BaseMultiTaskSegmentor, PartCfg, build_part,
                             decoder_configs, refuse_part_settings)


@MODELS.register_module()
class MultiTaskBaseline(BaseMultiTaskSegmentor):
    """Shared backbone + neck, per task a decoder of basic blocks and a 1x1
    head, upsampled to the input size.

    With one task this is the single-task baseline (train one model per
    task). Losses: ``L = 1/B sum_b T/|L_b| sum_{t in L_b} w_t l_t(P_t)``,
    logged as ``'<task>.loss'``.

    Call flow (mmseg's ``EncoderDecoder`` style)::

        loss():    extract_feat() -> task_logits() -> labelled_rows()
                   -> labelled_gt() -> supervised_losses()
                   (resize, task losses, combine_losses())
        predict(): inference() (extract_feat() -> task_logits() -> resize)
                   -> postprocess_result()

    The per-task decoders are built with ``MODELS.build`` from the
    ``decoder`` template (default ``dict(type='ResidualTaskDecoder',
    num_blocks=6)``), which the model fills with ``channels`` and the
    task's ``out_channels`` (n_t): a replacement maps (B, C, h, w) features
    to (B, n_t, h, w) logits. The decoders' depth and norm are the
    template's ``num_blocks`` (6 here when a ``ResidualTaskDecoder``
    template does not state it) and ``norm_cfg`` (BN); a template stating
    ``channels`` or ``out_channels`` raises a ValueError. The names
    ``num_blocks`` and ``norm_cfg`` are not arguments: passing one raises a
    TypeError naming its key (:attr:`PART_SETTINGS`).

    Every argument is keyword-only.

    Args:
        tasks (Sequence[str]): Task names.
        backbone (dict | nn.Module): Backbone config or module.
        neck (dict | nn.Module, optional): Neck config or module
            (``StageFusionNeck``).
        num_classes (dict, optional): ``{task: N}`` of segmentation tasks.
        channels (int): Decoder width C. Defaults to 512.
        decoder (dict | dict[str, nn.Module], optional): Per-task decoder
            template, built once per task (e.g.
            ``dict(type='ResidualTaskDecoder', num_blocks=6,
            norm_cfg=dict(type='SyncBN'))``), or one module per task (a
            mapping or ``nn.ModuleDict``). Defaults to None
            (``dict(type='ResidualTaskDecoder', num_blocks=6)``).
        loss_weights, losses, align_corners, train_cfg, test_cfg,
        data_preprocessor, init_cfg: see ``BaseMultiTaskSegmentor``.
    """
    #: Basic blocks of a ``ResidualTaskDecoder`` template that does not
    #: state ``num_blocks`` (the paper's baseline).
    DECODER_BLOCKS = 6
    #: Names that are settings of a part, not arguments: name -> the part
    #: key that holds it (see :func:`refuse_part_settings`).
    PART_SETTINGS = {
        'num_blocks': 'decoder.num_blocks',
        'norm_cfg': 'decoder.norm_cfg',
    }

    @refuse_part_settings(PART_SETTINGS)
    def __init__(self,
                 *,
                 tasks: Sequence[str],
                 backbone: Union[dict, nn.Module],
                 neck: PartCfg = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 channels: int = 512,
                 decoder: Union[PartCfg, Dict[str, nn.Module]] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 losses: Optional[Dict[str, dict]] = None,
                 align_corners: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            tasks=tasks,
            backbone=backbone,
            neck=neck,
            num_classes=num_classes,
            loss_weights=loss_weights,
            losses=losses,
            align_corners=align_corners,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        n = self.out_channels
        decoder_cfgs = decoder_configs(
            type(self).__name__, self.tasks, decoder,
            fill=lambda t: dict(
                channels=(channels, f'channels={channels}'),
                out_channels=(n[t], f'the output channels of {t!r}')),
            defaults=dict(num_blocks=self.DECODER_BLOCKS))
        self.decoders = nn.ModuleDict(
            {t: build_part(decoder_cfgs[t])
             for t in self.tasks})
        for t in self.tasks:  # the kind's initial bias, if it asks for one
            init_head_bias(self.decoders[t], self.task_specs[t],
                           type(self).__name__)

    def task_logits(self, feats: Tensor) -> Dict[str, Tensor]:
        """``{task: (B, n_t, h, w)}`` at feature resolution."""
        return {t: self.decoders[t](feats) for t in self.tasks}

    def inference(self,
                  inputs: Tensor,
                  data_samples: Optional[Sequence[SegDataSample]] = None
                  ) -> Dict[str, Tensor]:
        """``{task: (B, n_t, H, W)}`` logits at input size (deterministic:
        ``data_samples`` are not needed)."""
        logits = self.task_logits(self.extract_feat(inputs))
        size = inputs.shape[-2:]
        return {t: self.resize(v, size) for t, v in logits.items()}

    def loss(self, inputs: Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """Losses over the labelled (image, task) pairs.

        The decoders run batched; each task's loss is computed on the
        gathered labelled images only.
        """
        size = inputs.shape[-2:]
        logits = self.task_logits(self.extract_feat(inputs))
        mask, rows = self.labelled_rows(data_samples, inputs.device)
        gts = self.labelled_gt(data_samples, mask, size, inputs.device, rows)
        return self.supervised_losses(logits, mask, gts, size, rows)

    def labelled_gt(self,
                    data_samples: Sequence[SegDataSample],
                    mask: Tensor,
                    size,
                    device,
                    rows: Optional[List[Tensor]] = None) -> Dict[str, Tensor]:
        """Ground truth of the tasks labelled for at least one image.

        Args:
            data_samples (list[SegDataSample]): The batch.
            mask (Tensor): (B, T) labelled mask (:meth:`labelled_mask`).
            size (tuple): (H, W) of the inputs.
            device: Device of the result.
            rows (list[Tensor], optional): Each task's labelled images
                (:meth:`labelled_rows`); with them no host sync reads
                ``mask``.

        Returns:
            dict: ``{task: (B, gt_channels, H, W)}``.
        """
        labelled = [r.numel() > 0 for r in rows] if rows is not None else [
            bool(mask[:, ti].any()) for ti in range(len(self.tasks))
        ]
        return {
            t: self.task_gt(data_samples, t, size, device)
            for ti, t in enumerate(self.tasks) if labelled[ti]
        }

    def supervised_losses(self,
                          logits: Dict[str, Tensor],
                          mask: Tensor,
                          gts: Dict[str, Tensor],
                          size,
                          rows: Optional[List[Tensor]] = None
                          ) -> Dict[str, Tensor]:
        """Each task's loss on its labelled images, from computed logits.

        Subclasses that add terms (``projects/xtc``) call this with the
        logits they already have.

        Args:
            logits (dict): ``{task: (B, n_t, h, w)}`` at feature size.
            mask (Tensor): (B, T) labelled mask.
            gts (dict): ``{task: (B, gt_channels, H, W)}`` of the labelled
                tasks (:meth:`labelled_gt`).
            size (tuple): (H, W) the logits are resized to.
            rows (list[Tensor], optional): Each task's labelled images
                (:meth:`labelled_rows`); without them they are read from
                ``mask`` (a host sync per task).

        Returns:
            dict[str, Tensor]: ``'<task>.loss'`` scalars and the total, as
            :meth:`combine_losses`; with synchronised norms every task's
            logits take part (:meth:`keep_branches_in_graph`).
        """
        terms = {}
        for ti, task in enumerate(self.tasks):
            idx = rows[ti] if rows is not None else \
                mask[:, ti].nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            pred = self.resize(logits[task][idx], size)
            terms[f'{task}.loss'] = (task, idx,
                                     self.task_losses[task](pred,
                                                            gts[task][idx]))
        losses = self.combine_losses(
            terms, mask, anchor=logits[self.tasks[0]])
        # With synchronised norms every decoder gets a backward, whatever
        # this batch's labels.
        return self.keep_branches_in_graph(
            losses, [logits[t] for t in self.tasks])
