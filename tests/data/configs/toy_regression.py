# Copyright (c) diffmtl contributors. All rights reserved.
# A tiny, self-contained config for testing tools/train.py, tools/test.py
# and tools/dist_*.sh on CPU: a linear regressor on 8 random samples. The
# toy components live in tests/test_tools/toy_components.py, which must be
# on PYTHONPATH (the tests put it there).
default_scope = 'mmseg'
custom_imports = dict(
    imports=['diffmtl', 'toy_components'], allow_failed_imports=False)

model = dict(type='ToyRegressor', in_ch=4)

train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ToyRegressionDataset', num_samples=8, seed=0))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    collate_fn=dict(type='default_collate'),
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyRegressionDataset', num_samples=8, seed=1))
test_dataloader = val_dataloader
val_evaluator = dict(type='ToyMSEMetric')
test_evaluator = val_evaluator

optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=0.02, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=False, begin=0, end=2)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=1, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='RankMarkerHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # as in the real configs: tools/*.py switch to gloo without CUDA
    dist_cfg=dict(backend='nccl'))
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
