# MTL baseline on the synthetic scenes at DiffusionMTL's capacity: 5 basic
# blocks per task instead of 6, so that the whole model has 5.30 M
# parameters against DiffusionMTL Feature's 5.24 M (task-specific 2.22 M
# against 2.17 M; `python tools/analysis_tools/get_flops.py CFG --shape 96
# 128 --by-module`). The reference arm of configs/studies/synthetic_one.py.
_base_ = ['./mtl_baseline_synthetic_one_r18.py']
model = dict(decoder=dict(num_blocks=5))
