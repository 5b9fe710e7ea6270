# PASCAL-Context (official config): Adam 2e-5, weight decay 1e-6, gradient
# clipping at L2 norm 10, poly (power 0.9) stepped once per epoch, 100 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=2e-5, betas=(0.9, 0.999), eps=1e-8,
        weight_decay=1e-6),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(
        type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=100,
        by_epoch=True)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100, val_interval=10)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
