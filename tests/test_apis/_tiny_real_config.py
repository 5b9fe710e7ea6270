# Copyright (c) diffmtl contributors. All rights reserved.
"""The tiny, randomly initialised real DiffusionMTL config (Prediction
Diffusion, six tasks) that the inference-API tests build with
``init_model``."""
TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')

CONFIG = f"""
default_scope = 'mmseg'
custom_imports = dict(imports=['diffmtl'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='DiffusionMTL',
    data_preprocessor=dict(
        type='MultiTaskDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, size_divisor=32),
    tasks={TASKS!r},
    num_classes=dict(semseg=6, human_parts=7),
    mode='prediction',
    backbone=dict(
        type='ResNet', depth=18, base_channels=8, num_stages=4,
        out_indices=(0, 1, 2, 3), strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1), norm_cfg=norm_cfg),
    neck=dict(type='StageFusionNeck', in_channels=[8, 16, 32, 64],
              out_channels=16, ref_index=0, scale=0.5),
    channels=16, decoder=dict(num_blocks=1, norm_cfg=norm_cfg),
    schedule=dict(num_steps=2),
    denoiser=dict(num_blocks=1, num_heads=1, step_freq_dim=16),
    test_cfg=dict(mode='whole'))
test_pipeline = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations'),
    dict(type='PackMultiTaskInputs'),
]
"""
