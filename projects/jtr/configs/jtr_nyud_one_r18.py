# JTR (joint-task regularisation, Nishi et al., CVPR 2024) on the MTL
# baseline (ResNet-18), NYUD-v2 (MTAN 288x384), one-label: semseg, depth,
# normals. g is JTR's SegNet auto-encoder over the 17 stacked channels
# (24.98M parameters, training only).
_base_ = ['../../../configs/baselines/mtl_baseline_nyud_one_r18.py']
custom_imports = dict(imports=['diffmtl', 'projects.jtr.jtr'],
                      allow_failed_imports=False)
model = dict(
    type='JTRMultiTaskBaseline',
    jtr_loss=dict(
        type='JTRLoss',
        # REQUIRED: the mean and std (metres) of the valid training depth
        # labelled in this setting. The model refuses to build without
        # them; compute them on the dataset with
        #   python projects/jtr/tools/depth_stats.py \
        #       projects/jtr/configs/jtr_nyud_one_r18.py
        # and write its last line here (JTR hard-codes 2.3618 / 1.5876,
        # of unstated origin, which they should come close to).
        encodings=dict(depth=dict(mean=None, std=None)),
        dist_weight=4.0,
        recon_weight=2.0,
        faithful_recon_targets=False,
        normaliser='mask'),
    jtr_net=dict(type='SegNetAutoEncoder',
                 widths=(64, 128, 256, 512, 512),
                 num_convs=(2, 2, 3, 3, 3),
                 norm_cfg=dict(type='IN', affine=True)),
    views=dict(type='JTRViews', scales=(1.0, 1.2, 1.5), photometric=True),
    v2_no_grad=False)
