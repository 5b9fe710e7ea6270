# DiffusionMTL (Feature Diffusion) with a SegFormer MiT-B0 backbone (any mmseg
# backbone returning its 4 stages works; only the neck's in_channels change),
# PASCAL-Context one-label setting. Pretrained MiT weights: set
# model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...).
_base_ = ['./pascal_one_r18.py', '../_base_/models/mit-b0_backbone.py']
model = dict(
    backbone={{_base_.mit_b0_backbone}},
    neck=dict(in_channels={{_base_.mit_b0_channels}}))
