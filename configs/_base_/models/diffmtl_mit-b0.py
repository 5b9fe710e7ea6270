# DiffusionMTL (Feature Diffusion) on a SegFormer MiT-B0 backbone: any mmseg
# backbone that returns its stages works; only the neck's in_channels change.
_base_ = ['./diffmtl_r18.py', './mit-b0_backbone.py']
model = dict(
    backbone={{_base_.mit_b0_backbone}},
    neck=dict(in_channels={{_base_.mit_b0_channels}}))
