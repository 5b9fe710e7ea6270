# MTL baseline on the synthetic scenes, one-label setting: the same narrow
# ResNet-18, fusion neck, data, schedule and evaluation as
# configs/diffmtl/synthetic_one_r18.py, with 6 basic blocks and a 1x1 head
# per task instead of the diffusion network (5.74 M parameters, the paper's
# baseline shape; the capacity-matched one is *_matched.py).
_base_ = ['../diffmtl/synthetic_one_r18.py']
width = 32
channels = 64
model = dict(
    _delete_=True,
    type='MultiTaskBaseline',
    data_preprocessor=dict(
        type='MultiTaskDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=(96, 128),
        pad_val=0),
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth'),
    num_classes=dict(semseg=6, human_parts=7),
    backbone=dict(
        type='ResNet',
        depth=18,
        stem_channels=width,
        base_channels=width,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        deep_stem=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(
        type='StageFusionNeck',
        in_channels=[width, width * 2, width * 4, width * 8],
        out_channels=channels,
        ref_index=0,
        scale=0.5),
    channels=channels,
    decoder=dict(
        type='ResidualTaskDecoder',
        num_blocks=6,
        norm_cfg=dict(type='BN', requires_grad=True)),
    loss_weights=dict(
        semseg=1.0,
        human_parts=2.0,
        sal=5.0,
        normals=10.0,
        edge=50.0,
        depth=1.0),
    align_corners=False,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
