# DiffusionMTL with a ResNet-18 backbone (Feature Diffusion, the released
# variant). Defaults: PASCAL-Context's 5 tasks; dataset configs override
# `tasks`, `num_classes` and `loss_weights`.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='DiffusionMTL',
    data_preprocessor=dict(
        type='MultiTaskDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        size=(512, 512),  # experiment configs set their crop size
        pad_val=0),  # after normalisation: the mean colour
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge'),
    num_classes=dict(semseg=21, human_parts=7),
    mode='feature',
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
    # The parts, each built with MODELS.build from its dict (swap one by
    # giving another registered `type`); a part's settings are keys of its
    # dict (e.g. --cfg-options model.decoder.num_blocks=5). The model sets
    # what it requires (channels, tasks, the tasks' in/out channels, the
    # attention kind, align_corners); a part dict stating one of those
    # raises a ValueError.
    # Per-task preliminary decoder: basic blocks and their norm.
    decoder=dict(type='ResidualTaskDecoder', num_blocks=2, norm_cfg=norm_cfg),
    # per_task_proj defaults to mode == 'prediction'; unused (not built)
    # with multi_task_condition=False.
    conditioner=dict(type='MultiTaskConditioner'),
    # diffusion: S steps, x0 prediction; 'linear' = linear in sqrt(beta), the
    # reference's (LDM's) name ('sqrt_linear' = linear in beta).
    schedule=dict(
        type='DiffusionSchedule',
        num_steps=2,
        beta_start=1e-3,
        beta_end=1e-2,
        beta_schedule='linear'),
    denoiser=dict(
        type='MultiTaskDenoiser',
        num_blocks=4,
        num_heads=4,
        mlp_ratio=4.,
        token_scale=0.25,
        head_convs=3,
        step_freq_dim=256),
    use_diffusion=True,
    multi_task_condition=True,
    detach_condition=True,
    detach_x_start=False,
    inference_noise=True,
    # Seeded, per-image inference noise: a checkpoint's metrics are a fixed
    # function of it (any batch size or process count). None = the
    # official, unseeded stochastic inference.
    inference_seed=0,
    init_loss_weight=0.5,
    loss_weights=dict(
        semseg=1.0, human_parts=2.0, sal=5.0, normals=10.0, edge=50.0),
    align_corners=False,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
