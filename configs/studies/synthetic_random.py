# Random-label study on the synthetic scenes: every training image is
# labelled for 1-5 of its six tasks. Run (resumable):
#   python tools/analysis_tools/run_study.py \
#       configs/studies/synthetic_random.py --results results/synthetic_random
_base_ = ['./_common.py']
name = 'synthetic_random'
reference = 'mtl_baseline_matched'
arms = [
    dict(name='feature', config='configs/diffmtl/synthetic_random_r18.py'),
    dict(name='mtl_baseline_matched',
         config='configs/baselines/mtl_baseline_synthetic_random_r18_matched.py'),
    # XTC* (projects/xtc): the matched baseline plus the training-only
    # cross-task mappers and consistency loss
    dict(name='xtc',
         config='projects/xtc/configs/xtc_synthetic_random_r18_matched.py'),
    # JTR (projects/jtr): the matched baseline plus the training-only
    # auto-encoder g, the JTR loss and two views made in the model
    dict(name='jtr',
         config='projects/jtr/configs/jtr_synthetic_random_r18_matched.py'),
]
# DiffusionMTL against XTC* and JTR, and JTR against XTC*, paired by seed
# (summary.md).
comparisons = [('feature', 'xtc'), ('feature', 'jtr'), ('jtr', 'xtc')]
