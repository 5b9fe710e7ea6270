# JTR (joint-task regularisation, Nishi et al., CVPR 2024) on the MTL
# baseline (ResNet-18, 6 basic blocks per task), PASCAL-Context, one-label,
# 512x512. Inference is the baseline's (157.24M parameters, 607.5 GMACs);
# g (JTR's SegNet auto-encoder over the 33 stacked channels, 24.99M
# parameters) runs only in training. Details follow the JTR code
# (projects/jtr/README.md); lambda_d not tuned (JTR's 4).
_base_ = ['../../../configs/baselines/mtl_baseline_pascal_one_r18.py']
custom_imports = dict(imports=['diffmtl', 'projects.jtr.jtr'],
                      allow_failed_imports=False)
model = dict(
    type='JTRMultiTaskBaseline',
    # The model sets tasks and out_channels. PASCAL has no depth, so no
    # label statistics are needed.
    jtr_loss=dict(
        type='JTRLoss',
        dist_weight=4.0,  # lambda_d (JTR; tune over {1, 4, 16} on val)
        recon_weight=2.0,  # lambda_r (JTR)
        faithful_recon_targets=False,
        normaliser='mask'),
    # g: JTR's widths; the model sets in_channels (21+7+1+3+1 = 33).
    # Instance norm = JTR's per-image BatchNorm, batched.
    jtr_net=dict(type='SegNetAutoEncoder',
                 widths=(64, 128, 256, 512, 512),
                 num_convs=(2, 2, 3, 3, 3),
                 norm_cfg=dict(type='IN', affine=True)),
    # v1, v2: random scale-crop {1, 1.2, 1.5} and RandAugment (JTR's 9 ops)
    # of the training sample; views.photometric=False switches RandAugment
    # off.
    views=dict(type='JTRViews', scales=(1.0, 1.2, 1.5), photometric=True),
    v2_no_grad=False)
