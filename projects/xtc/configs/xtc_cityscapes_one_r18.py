# XTC* (cross-task consistency) on the MTL baseline (ResNet-18), Cityscapes
# (MTAN 128x256), one-label (= random-label with two tasks; Tab. 1):
# semseg, depth (2 ordered pairs, 1 per one-label image). Mapper and
# scaling INFERRED (projects/xtc/README.md).
_base_ = ['../../../configs/baselines/mtl_baseline_cityscapes_one_r18.py']
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
    xtc_weight=1.0,  # MTPSL Cityscapes
    reg_weight=0.5,
    # MTPSL sums the pairs; with one pair per image the 'mean' reduction
    # would double the term (ref_pairs=2), so sum here.
    pair_reduction='sum',
    seg_encoding='gumbel')
# MTPSL Cityscapes gives FiLM a tenth of the base learning rate (1e-5
# against 1e-4), no weight decay.
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={'film': dict(lr_mult=0.1, decay_mult=0.0)}))
