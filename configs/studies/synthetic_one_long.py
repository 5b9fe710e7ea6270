# Longer schedule (6000 iterations, ~24 epochs; twice the one-label study's)
# for DiffusionMTL Feature and the capacity-matched MTL baseline: does the
# denoiser's gain over the initial predictions, or the gap to the baseline,
# change when the initial predictions that condition it are better trained?
#   python tools/analysis_tools/run_study.py \
#       configs/studies/synthetic_one_long.py --results results/synthetic_one_long
_base_ = ['./_common.py']
name = 'synthetic_one_long'
reference = 'mtl_baseline_matched'
_long = {'train_cfg.max_iters': 6000, 'param_scheduler.1.end': 6000}
arms = [
    dict(name='feature', config='configs/diffmtl/synthetic_one_r18.py',
         cfg_options=_long),
    dict(name='mtl_baseline_matched',
         config='configs/baselines/mtl_baseline_synthetic_one_r18_matched.py',
         cfg_options=_long),
]
