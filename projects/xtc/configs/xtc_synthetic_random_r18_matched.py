# XTC* on the capacity-matched MTL baseline of the synthetic scenes,
# random-label setting: the 'xtc' arm of configs/studies/synthetic_random.py.
# The XTC settings are those of xtc_synthetic_one_r18_matched.py (a test
# checks that the two resolve to the same model and optimiser).
_base_ = [
    '../../../configs/baselines/'
    'mtl_baseline_synthetic_random_r18_matched.py'
]
custom_imports = dict(
    imports=['diffmtl', 'projects.xtc.xtc'], allow_failed_imports=False)
model = dict(
    type='XTCMultiTaskBaseline',
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
    max_pairs=None,
    seg_encoding='gumbel',
    gumbel_tau=1.0)
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'film': dict(lr_mult=10.0, decay_mult=0.0)}))
