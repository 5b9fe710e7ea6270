# DiffusionMTL (Prediction Diffusion), ResNet-18, PASCAL-Context, random-label
# setting: diffuses the initial predictions instead of the initial features.
_base_ = ['./pascal_random_r18.py']
model = dict(mode='prediction')
