# DiffusionMTL, Prediction Diffusion: the noisy maps are the tasks' initial
# predictions (logits at stride 8); the conditioner projects each task's
# prediction before fusing (docs/en/models.md, Architecture).
_base_ = ['./diffmtl_r18.py']
model = dict(mode='prediction')
