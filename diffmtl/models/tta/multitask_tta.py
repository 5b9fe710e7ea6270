# Copyright (c) diffmtl contributors. All rights reserved.
"""Test-time augmentation merging for multi-task predictions."""
from typing import List, Sequence

import torch
from mmengine.model import BaseTTAModel
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.registry import MODELS
from diffmtl.structures import TASK_SPECS, get_task_spec, stage_field
from ..utils.postprocess import logits_to_pred

__all__ = ['MultiTaskTTAModel', 'merge_task_logits']


def merge_task_logits(task: str, logits: Sequence[Tensor]) -> Tensor:
    """Merge one task's logits of several views of the same image.

    The merge happens in prediction space and is returned as logits whose
    :func:`logits_to_pred` is the merged prediction: the task kind's
    :meth:`~diffmtl.structures.TaskKind.merge_logits`. For the built-in
    kinds:

    * segmentation / saliency: mean softmax, returned as its log;
    * boundary: mean sigmoid, returned as its logit;
    * normals: mean of the L2-normalised vectors;
    * depth: mean.

    Args:
        task (str): Task name.
        logits (Sequence[Tensor]): (C, H, W) logits per view, flips undone.

    Returns:
        Tensor: (C, H, W) merged logits.
    """
    if not logits:
        raise ValueError(f'merge_task_logits({task!r}): no views to merge')
    return get_task_spec(task).task_kind.merge_logits(
        torch.stack(list(logits)))


@MODELS.register_module()
class MultiTaskTTAModel(BaseTTAModel):
    """Merge the per-task predictions of augmented views.

    Each view's prediction must already be at the original image size
    with flips undone (the segmentors' ``predict`` does that). Every task
    whose ``logits_field`` is present in the first view is merged with
    :func:`merge_task_logits`; the prediction field is recomputed. The
    extra stages of ``metainfo['pred_stages']`` (``test_cfg.eval_stages``)
    are merged the same way.
    """

    def merge_preds(self, data_samples_list: List[List[SegDataSample]]
                    ) -> List[SegDataSample]:
        """Args: data_samples_list: per image, the list of its views.

        Returns:
            list[SegDataSample]: one merged sample per image.
        """
        merged = []
        for views in data_samples_list:
            first = views[0]
            out = SegDataSample(metainfo=first.metainfo)
            stages = ('final', ) + tuple(
                first.metainfo.get('pred_stages', ()))
            for spec in TASK_SPECS.values():
                if spec.gt_field in first:
                    out.set_data({spec.gt_field: first.get(spec.gt_field)})
                for stage in stages:
                    field = stage_field(spec.logits_field, stage)
                    if field not in first:
                        continue
                    logits = merge_task_logits(
                        spec.name, [v.get(field).data for v in views])
                    out.set_data({
                        field: PixelData(data=logits),
                        stage_field(spec.pred_field, stage): PixelData(
                            data=logits_to_pred(spec.name, logits))
                    })
            merged.append(out)
        return merged
