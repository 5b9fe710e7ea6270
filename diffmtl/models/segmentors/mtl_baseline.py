# Copyright (c) diffmtl contributors. All rights reserved.
"""The paper's MTL and single-task baselines."""
from typing import Dict, Optional, Sequence

import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.registry import MODELS
from ..decode_heads import ResidualTaskDecoder
from .base_multitask import BaseMultiTaskSegmentor


@MODELS.register_module()
class MultiTaskBaseline(BaseMultiTaskSegmentor):
    """Shared backbone + neck, per task ``num_blocks`` basic blocks and a
    1x1 head, upsampled to the input size.

    With one task this is the single-task baseline (train one model per
    task). Losses: ``L = 1/B sum_b T/|L_b| sum_{t in L_b} w_t l_t(P_t)``,
    logged as ``'<task>.loss'``.

    Args:
        tasks (Sequence[str]): Task names.
        backbone (dict): Backbone config.
        neck (dict, optional): Neck config (``StageFusionNeck``).
        num_classes (dict, optional): ``{task: N}`` of segmentation tasks.
        channels (int): Decoder width. Defaults to 512.
        num_blocks (int): Basic blocks per task. Defaults to 6.
        norm_cfg (dict, optional): Norm of the decoders.
        loss_weights, losses, align_corners, train_cfg, test_cfg,
        data_preprocessor, init_cfg: see ``BaseMultiTaskSegmentor``.
    """

    def __init__(self,
                 tasks: Sequence[str],
                 backbone: dict,
                 neck: Optional[dict] = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 channels: int = 512,
                 num_blocks: int = 6,
                 norm_cfg: Optional[dict] = None,
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
        self.decoders = nn.ModuleDict({
            t: ResidualTaskDecoder(
                channels, num_blocks, norm_cfg,
                out_channels=self.out_channels[t])
            for t in self.tasks
        })

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
        mask = self.labelled_mask(data_samples, inputs.device)
        terms = {}
        for ti, task in enumerate(self.tasks):
            idx = mask[:, ti].nonzero(as_tuple=True)[0]
            if idx.numel() == 0:
                continue
            gt = self.task_gt(data_samples, task, size, inputs.device)[idx]
            pred = self.resize(logits[task][idx], size)
            terms[f'{task}.loss'] = (task, idx,
                                     self.task_losses[task](pred, gt))
        return self.combine_losses(terms, mask, anchor=logits[self.tasks[0]])
