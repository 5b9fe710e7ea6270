# XTC* (cross-task consistency) on the MTL baseline (ResNet-18), NYUD-v2
# (MTAN 288x384), one-label: semseg, depth, normals (6 ordered pairs, 2 per
# one-label image, as MTPSL's NYUv2 splits). Mapper and scaling INFERRED
# (projects/xtc/README.md).
_base_ = ['../../../configs/baselines/mtl_baseline_nyud_one_r18.py']
custom_imports = dict(
    imports=['diffmtl', 'projects.xtc.xtc'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='XTCMultiTaskBaseline',
    mapper=dict(
        type='FiLMResNetMapper',
        depth=18,
        stem_channels=64,
        base_channels=64,
        out_channels=512,
        norm_cfg=norm_cfg),
    xtc_weight=2.0,  # MTPSL NYUv2
    reg_weight=0.5,
    pair_reduction='mean',
    ref_pairs=2.0,
    seg_encoding='gumbel')
# FiLM at 10x the base learning rate, no weight decay (MTPSL NYUv2).
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'film': dict(lr_mult=10.0, decay_mult=0.0)}))
