# DiffusionMTL (Feature Diffusion) on the synthetic scenes, one-label
# setting: the `make demo` config and the DiffusionMTL arm of the studies in
# configs/studies/. A narrow ResNet-18 (base width 32, no pretrained
# weights: nothing is downloaded) and C = 64, sized to train and evaluate on
# a 2-core CPU in about a quarter of an hour. The denoiser has the paper's
# shape (4 blocks, MLP ratio 4, 3 head convs, step embedding 256) and
# token_scale=1.0: the 12x16 fused features give 192 tokens to the
# cross-attention (PASCAL at 512x512 with 0.25: 16x16 = 256). The scale was
# fixed from these two constraints (>= 8x8 tokens, ~15 min a run) before any
# study run; nothing was tuned on the test split.
_base_ = [
    '../_base_/models/diffmtl_r18.py',
    '../_base_/datasets/synthetic_scenes.py',
    '../_base_/default_runtime.py'
]
norm_cfg = dict(type='BN', requires_grad=True)
crop_size = (96, 128)
width = 32  # ResNet-18 base width (64 in the paper)
channels = 64  # C (512 in the paper)
max_iters = 3000  # ~12 epochs of the 2000 training images

model = dict(
    data_preprocessor=dict(size=crop_size),
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth'),
    num_classes=dict(semseg=6, human_parts=7),
    backbone=dict(
        stem_channels=width,
        base_channels=width,
        norm_cfg=norm_cfg,
        init_cfg=None),
    neck=dict(
        in_channels=[width, width * 2, width * 4, width * 8],
        out_channels=channels),
    channels=channels,
    decoder=dict(norm_cfg=norm_cfg),
    denoiser=dict(
        num_blocks=4,
        num_heads=4,
        mlp_ratio=4.,
        token_scale=1.0,
        head_convs=3,
        step_freq_dim=256),
    # PASCAL weights for its five tasks, 1 for depth (NYUD).
    loss_weights=dict(
        semseg=1.0,
        human_parts=2.0,
        sal=5.0,
        normals=10.0,
        edge=50.0,
        depth=1.0),
    # Each image's inference noise is a function of (seed, image id, task,
    # step): metrics do not depend on batch size or process count.
    inference_seed=0,
    # Score the initial predictions too (keys 'initial/<task>/<metric>').
    test_cfg=dict(mode='whole', eval_stages=('initial', 'final')))

# From scratch, so a larger learning rate than the paper's 2e-5
# (fine-tuning ImageNet weights); poly decay per iteration.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=1e-6),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, begin=0, end=100, by_epoch=False),
    dict(
        type='PolyLR', power=0.9, eta_min=0.0, begin=100, end=max_iters,
        by_epoch=False)
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
train_dataloader = dict(batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    # Every 500 iterations, so a killed run (or study) resumes close by.
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=500,
        max_keep_ckpts=2))
randomness = dict(seed=0)
