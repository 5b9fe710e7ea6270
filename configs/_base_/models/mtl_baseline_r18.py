# MTL baseline: ResNet-18 + stage fusion, 6 basic blocks and a 1x1 head per
# task. With a single task it is the single-task baseline.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='MultiTaskBaseline',
    data_preprocessor=dict(
        type='MultiTaskDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=(512, 512),  # experiment configs set their crop size
        pad_val=0),  # after normalisation: the mean colour
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge'),
    num_classes=dict(semseg=21, human_parts=7),
    backbone=dict(
        type='ResNet',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        strides=(1, 2, 2, 2),
        dilations=(1, 1, 1, 1),
        style='pytorch',
        deep_stem=False,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet18')),
    neck=dict(
        type='StageFusionNeck',
        in_channels=[64, 128, 256, 512],
        out_channels=512,
        ref_index=0,
        scale=0.5),
    channels=512,
    # Per-task decoder, built with MODELS.build (swap it by giving another
    # registered `type`): 6 basic blocks and a 1x1 head. Its settings are
    # keys of this dict (e.g. --cfg-options model.decoder.num_blocks=5);
    # the model sets channels and each task's out_channels, and a decoder
    # dict stating those raises a ValueError.
    decoder=dict(type='ResidualTaskDecoder', num_blocks=6, norm_cfg=norm_cfg),
    loss_weights=dict(
        semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0, edge=50.0),
    align_corners=False,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
