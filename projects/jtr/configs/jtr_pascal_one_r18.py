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
    # JTR's settings are the defaults of JTRLoss (lambda_d = 4,
    # lambda_r = 2, not tuned), SegNetAutoEncoder (JTR's widths,
    # per-image norm) and JTRViews (scale-crop {1, 1.2, 1.5} and
    # RandAugment): projects/jtr/README.md. The model sets the tasks,
    # output channels and g's input channels.
)
