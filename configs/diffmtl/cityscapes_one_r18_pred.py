# DiffusionMTL (Prediction Diffusion), ResNet-18, Cityscapes (MTAN 128x256,
# 7 classes), one-label setting.
_base_ = ['./cityscapes_one_r18.py']
model = dict(mode='prediction')
