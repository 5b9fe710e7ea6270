# JTR on the capacity-matched MTL baseline (5 basic blocks per task, 5.30M
# inference parameters) of the synthetic scenes, one-label setting: the
# 'jtr' arm of configs/studies/synthetic_one.py. It differs from the
# study's reference arm (mtl_baseline_matched) only by the training-only
# g, the JTR loss and the views made in the model; data, schedule,
# optimiser, inference path (parameters used, MACs) and evaluation are the
# same.
_base_ = [
    '../../../configs/baselines/mtl_baseline_synthetic_one_r18_matched.py'
]
custom_imports = dict(imports=['diffmtl', 'projects.jtr.jtr'],
                      allow_failed_imports=False)
model = dict(
    type='JTRMultiTaskBaseline',
    jtr_loss=dict(
        type='JTRLoss',
        # Depth statistics of the one-label training labels (metres; 333
        # images, projects/jtr/README.md), from
        #   python projects/jtr/tools/depth_stats.py \
        #       projects/jtr/configs/jtr_synthetic_one_r18_matched.py
        encodings=dict(depth=dict(mean=4.56661, std=2.62989)),
        dist_weight=4.0,  # lambda_d (JTR), not tuned
        recon_weight=2.0,  # lambda_r (JTR)
        faithful_recon_targets=False,
        normaliser='mask'),
    # g at a quarter of JTR's widths (1.57M parameters; in_channels 19 =
    # 6+7+1+3+1+1, set by the model), chosen once and not tuned
    # (projects/jtr/README.md).
    jtr_net=dict(type='SegNetAutoEncoder',
                 widths=(16, 32, 64, 128, 128),
                 num_convs=(2, 2, 3, 3, 3),
                 norm_cfg=dict(type='IN', affine=True)),
    views=dict(type='JTRViews', scales=(1.0, 1.2, 1.5), photometric=True),
    v2_no_grad=False)
