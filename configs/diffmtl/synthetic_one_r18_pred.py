# DiffusionMTL (Prediction Diffusion) on the synthetic scenes, one-label
# setting: the diffusion runs on the initial predictions instead of the
# preliminary features. Everything else as synthetic_one_r18.py.
_base_ = ['./synthetic_one_r18.py']
model = dict(mode='prediction')
