# Learning curve of claim (b): DiffusionMTL (Feature, and Prediction with
# the diffusion start detached) against the capacity-matched MTL baseline,
# one-label setting, trained for 12000 iterations (4x the one-label study)
# and scored on the test split at 1500, 3000, 6000 and 12000 iterations.
# One schedule for every arm: the study's linear warm-up (iterations
# 0-100) then poly decay (power 0.9) from 100 to 12000, i.e. the one-label
# study's schedule stretched to the new length. Checkpoints are written
# every 1500 iterations and all kept, so one training run per (arm, seed)
# gives the whole curve. Run (resumable; skips finished runs):
#   python tools/analysis_tools/run_study.py \
#       configs/studies/synthetic_one_curve.py \
#       --results results/synthetic_one_curve
_base_ = ['./_common.py']
name = 'synthetic_one_curve'
reference = 'mtl_baseline_matched'
max_iters = 12000
# every checkpoint listed here is tested (`<arm>@<iteration>` in the
# summary); the last one is the trained arm's own test
checkpoints = [1500, 3000, 6000]
_curve = {
    'train_cfg.max_iters': max_iters,
    'param_scheduler.1.end': max_iters,
    'default_hooks.checkpoint.interval': 1500,
    'default_hooks.checkpoint.max_keep_ckpts': -1,
}
arms = [
    dict(name='feature', config='configs/diffmtl/synthetic_one_r18.py',
         cfg_options=_curve),
    dict(name='mtl_baseline_matched',
         config='configs/baselines/mtl_baseline_synthetic_one_r18_matched.py',
         cfg_options=_curve),
    dict(name='prediction_detach',
         config='configs/diffmtl/synthetic_one_r18_pred.py',
         cfg_options={**_curve, 'model.detach_x_start': True}),
]
