# DiffusionMTL (Prediction Diffusion), ResNet-18, NYUD-v2 (MTAN 288x384), one-label
# setting: diffuses the initial predictions instead of the initial features.
_base_ = ['./nyud_one_r18.py']
model = dict(mode='prediction')
