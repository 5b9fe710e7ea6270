# DiffusionMTL (Prediction Diffusion), ResNet-18, PASCAL-Context, one-label
# setting: diffuses the initial predictions instead of the initial features.
_base_ = ['./pascal_one_r18.py']
model = dict(mode='prediction')
