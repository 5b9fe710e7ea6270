# Copyright (c) diffmtl contributors. All rights reserved.
"""Tiny models and synthetic batches shared by the model tests."""
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from diffmtl.structures import get_task_spec

PASCAL_TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
NUM_CLASSES = dict(semseg=5, human_parts=3)


def tiny_backbone():
    return dict(
        type='ResNet',
        depth=18,
        stem_channels=8,
        base_channels=8,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=None)


def tiny_diffusion_cfg(tasks=PASCAL_TASKS, mode='feature', **kwargs):
    cfg = dict(
        type='DiffusionMTL',
        tasks=tasks,
        num_classes={k: v
                     for k, v in NUM_CLASSES.items() if k in tasks},
        mode=mode,
        backbone=tiny_backbone(),
        neck=dict(
            type='StageFusionNeck', in_channels=[8, 16, 32, 64],
            out_channels=16),
        channels=16,
        decoder=dict(num_blocks=1),
        denoiser=dict(num_blocks=2, num_heads=2, token_scale=0.5,
                      head_convs=1, step_freq_dim=8),
        loss_weights=dict(semseg=1.0, human_parts=2.0, sal=5.0,
                          normals=10.0, edge=50.0))
    cfg.update(kwargs)
    return cfg


def tiny_baseline_cfg(tasks=PASCAL_TASKS, **kwargs):
    cfg = dict(
        type='MultiTaskBaseline',
        tasks=tasks,
        num_classes={k: v
                     for k, v in NUM_CLASSES.items() if k in tasks},
        backbone=tiny_backbone(),
        neck=dict(
            type='StageFusionNeck', in_channels=[8, 16, 32, 64],
            out_channels=16),
        channels=16,
        decoder=dict(num_blocks=2),
        loss_weights=dict(semseg=1.0, human_parts=2.0, sal=5.0,
                          normals=10.0, edge=50.0))
    cfg.update(kwargs)
    return cfg


def make_batch(masks, tasks=PASCAL_TASKS, size=(32, 48), seed=0,
               num_classes=NUM_CLASSES):
    """Structured random images and GT: label = quadrant of a blob.

    Images carry a bright rectangle; every task's GT is derived from it,
    so the maps are learnable. Unlabelled tasks are filled with pad values.

    Returns:
        tuple: inputs (B, 3, H, W), list of SegDataSample.
    """
    g = torch.Generator().manual_seed(seed)
    h, w = size
    inputs, samples = [], []
    for mask in masks:
        y0 = int(torch.randint(0, h // 2, (1, ), generator=g))
        x0 = int(torch.randint(0, w // 2, (1, ), generator=g))
        fg = torch.zeros(h, w, dtype=torch.bool)
        fg[y0:y0 + h // 2, x0:x0 + w // 2] = True
        img = 0.3 * torch.randn(3, h, w, generator=g)
        img[:, fg] += 2.0
        inputs.append(img)
        s = SegDataSample(
            metainfo=dict(
                tasks=tuple(tasks), task_mask=tuple(bool(m) for m in mask),
                ori_shape=size, img_shape=size, pad_shape=size))
        for task, labelled in zip(tasks, mask):
            spec = get_task_spec(task)
            if spec.kind == 'segmentation':
                gt = fg.long() * (num_classes[task] - 1)
                gt[0, :] = 255  # a few ignored pixels
                gt = gt[None]
            elif spec.kind in ('saliency', 'boundary'):
                gt = fg.long()[None]
                if spec.kind == 'boundary':
                    gt = (fg ^ torch.roll(fg, 1, dims=1)).long()[None]
            elif spec.kind == 'normals':
                gt = torch.zeros(3, h, w)
                gt[2] = -1.0
                gt[0, fg] = 0.6
                gt[2, fg] = -0.8
                gt[:, -1, :] = 0  # invalid row
            else:
                gt = 1.0 + fg.float()[None]
            if not labelled:
                gt = torch.full_like(gt, spec.pad_value)
            s.set_data({spec.gt_field: PixelData(data=gt)})
        samples.append(s)
    return torch.stack(inputs), samples


def build_on_meta(cfg):
    """A config's model built on the meta device (no weights, no data
    preprocessor, no pretrained backbone)."""
    import copy

    from mmengine.registry import init_default_scope

    from diffmtl.registry import MODELS
    init_default_scope('mmseg')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pop('data_preprocessor', None)
    model_cfg.backbone.pop('init_cfg', None)
    with torch.device('meta'):
        return MODELS.build(model_cfg)


def count_on_meta(cfg, shape):
    """``(model, parameters, inference MACs per image)`` of a config's
    model at input ``shape`` (h, w), counted on the meta device."""
    from diffmtl.models.utils.complexity import count_macs, count_parameters
    model = build_on_meta(cfg)
    inputs = torch.empty((1, 3) + tuple(shape), device='meta')
    macs, _ = count_macs(model, inputs, forward=model._forward)
    return model, count_parameters(model), macs
