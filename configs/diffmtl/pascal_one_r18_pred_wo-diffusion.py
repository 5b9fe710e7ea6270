# Ablation (Table 2) "w/o Diffusion": Prediction Diffusion network without
# noise, plain 2-step iterative refinement.
_base_ = ['./pascal_one_r18_pred.py']
model = dict(use_diffusion=False)
