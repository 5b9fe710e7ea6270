# JTR (joint-task regularisation, Nishi et al., CVPR 2024) on the MTL
# baseline (ResNet-18), Cityscapes (MTAN 128x256), one-label: semseg, depth.
# g is JTR's SegNet auto-encoder over the 8 stacked channels (24.98M
# parameters, training only).
_base_ = ['../../../configs/baselines/mtl_baseline_cityscapes_one_r18.py']
custom_imports = dict(imports=['diffmtl', 'projects.jtr.jtr'],
                      allow_failed_imports=False)
model = dict(
    type='JTRMultiTaskBaseline',
    jtr_loss=dict(
        type='JTRLoss',
        # REQUIRED: the mean and std of the valid training depth labelled
        # in this setting, in the dataset's units (inverse depth; JTR
        # reuses NYUv2's metres here, which flattens the encoding). The
        # model refuses to build without them; compute them with
        #   python projects/jtr/tools/depth_stats.py \
        #       projects/jtr/configs/jtr_cityscapes_one_r18.py
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
