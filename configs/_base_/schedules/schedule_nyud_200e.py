# NYUD-v2 (paper): Adam 2e-5, poly, 200 epochs (weight decay and clipping as
# PASCAL; the paper does not state them).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=2e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=1e-6),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(
        type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=200,
        by_epoch=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=20)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
