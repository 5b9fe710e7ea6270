# JTR (joint-task regularisation, Nishi et al., CVPR 2024) on the MTL
# baseline (ResNet-18), NYUD-v2 (MTAN 288x384), one-label: semseg, depth,
# normals. g is JTR's SegNet auto-encoder over the 17 stacked channels
# (24.98M parameters, training only).
_base_ = ['../../../configs/baselines/mtl_baseline_nyud_one_r18.py']
custom_imports = dict(imports=['diffmtl', 'projects.jtr.jtr'],
                      allow_failed_imports=False)
model = dict(
    type='JTRMultiTaskBaseline',
    # JTR's settings are the defaults of JTRLoss (lambda_d = 4,
    # lambda_r = 2, not tuned), SegNetAutoEncoder (JTR's widths,
    # per-image norm) and JTRViews (scale-crop {1, 1.2, 1.5} and
    # RandAugment): projects/jtr/README.md. The model sets the tasks,
    # output channels and g's input channels.
    # REQUIRED: the mean and std (metres) of the valid training depth
    # labelled in this setting. The model refuses to build without
    # them; compute them on the dataset with
    #   python projects/jtr/tools/depth_stats.py \
    #       projects/jtr/configs/jtr_nyud_one_r18.py
    # and write its last line here (JTR hard-codes 2.3618 / 1.5876,
    # of unstated origin, which they should come close to).
    jtr_loss=dict(encodings=dict(depth=dict(mean=None, std=None))))
