# XTC* (cross-task consistency, Li, Liu and Bilen, CVPR 2022) on the MTL
# baseline (ResNet-18, 6 basic blocks per task), PASCAL-Context, one-label,
# 512x512: the paper's main comparison (Tab. 3, 173M params, 608 GMACs).
# The mapper and the loss scaling are INFERRED from the paper's numbers
# and the MTPSL code (projects/xtc/README.md); XTC* itself is unreleased.
_base_ = ['../../../configs/baselines/mtl_baseline_pascal_one_r18.py']
custom_imports = dict(
    imports=['diffmtl', 'projects.xtc.xtc'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='XTCMultiTaskBaseline',
    # A copy of the baseline encoder (per-task stems, ResNet-18 stages with
    # FiLM per ordered task pair, 960 -> 512 fusion): +15.85M parameters,
    # used only in training. Its output has the shape of F (512, H/8, W/8).
    mapper=dict(
        type='FiLMResNetMapper',
        depth=18,
        stem_channels=64,
        base_channels=64,
        out_channels=512,
        norm_cfg=norm_cfg),
    xtc_weight=2.0,  # lambda (MTPSL NYUv2; tune over {0.5, 1, 2, 4})
    reg_weight=0.5,  # MTPSL's forward default
    pair_reduction='mean',  # 2 / |P_b| per pair: MTPSL's 2 pairs per image
    ref_pairs=2.0,
    max_pairs=None,  # every (s, t) pair of every image
    seg_encoding='gumbel',
    gumbel_tau=1.0)
# The FiLM gamma / beta at 10x the learning rate without weight decay
# (MTPSL NYUv2: 1e-3 against 1e-4); every other mapper parameter joins the
# baseline's Adam group.
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'film': dict(lr_mult=10.0, decay_mult=0.0)}))
