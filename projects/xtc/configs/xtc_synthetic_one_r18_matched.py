# XTC* on the capacity-matched MTL baseline (5 basic blocks per task, 5.30M
# inference parameters) of the synthetic scenes, one-label setting: the
# 'xtc' arm of configs/studies/synthetic_one.py. It differs from the
# study's reference arm (mtl_baseline_matched) only by the training-only
# mapper, the XTC loss and the FiLM parameter group; data, schedule,
# inference path (parameters used, MACs) and evaluation are the same.
_base_ = [
    '../../../configs/baselines/mtl_baseline_synthetic_one_r18_matched.py'
]
custom_imports = dict(
    imports=['diffmtl', 'projects.xtc.xtc'], allow_failed_imports=False)
model = dict(
    type='XTCMultiTaskBaseline',
    # A copy of the baseline encoder: ResNet-18 stages of base width 32,
    # fusion to C = 64 (F is (64, H/8, W/8)); stems per task.
    mapper=dict(
        type='FiLMResNetMapper',
        depth=18,
        stem_channels=32,
        base_channels=32,
        out_channels=64,
        norm_cfg=dict(type='BN', requires_grad=True)),
    xtc_weight=2.0,
    reg_weight=0.5,
    pair_reduction='mean',
    ref_pairs=2.0,
    max_pairs=None,  # one-label: all 5 pairs of every image
    seg_encoding='gumbel',
    gumbel_tau=1.0)
# FiLM at 10x the base learning rate, no weight decay (MTPSL NYUv2 ratio).
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'film': dict(lr_mult=10.0, decay_mult=0.0)}))
