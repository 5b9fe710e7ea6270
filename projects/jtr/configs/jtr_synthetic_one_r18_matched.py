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
    # JTR's settings are the defaults of JTRLoss (lambda_d = 4,
    # lambda_r = 2, not tuned), SegNetAutoEncoder (JTR's widths,
    # per-image norm) and JTRViews (scale-crop {1, 1.2, 1.5} and
    # RandAugment): projects/jtr/README.md. The model sets the tasks,
    # output channels and g's input channels.
    # Depth statistics of the one-label training labels (metres; 333
    # images, projects/jtr/README.md), from
    #   python projects/jtr/tools/depth_stats.py \
    #       projects/jtr/configs/jtr_synthetic_one_r18_matched.py
    jtr_loss=dict(encodings=dict(depth=dict(mean=4.56661, std=2.62989))),
    # g at a quarter of JTR's widths (1.57M parameters), chosen once
    # and not tuned (projects/jtr/README.md).
    jtr_net=dict(widths=(16, 32, 64, 128, 128)))
