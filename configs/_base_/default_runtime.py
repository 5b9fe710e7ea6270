# Runtime shared by every diffmtl config.
#
# diffmtl registers into MMSegmentation's registries, so the default scope is
# 'mmseg' and importing the `diffmtl` package (custom_imports) registers all
# of its components before anything is built.
default_scope = 'mmseg'
custom_imports = dict(imports=['diffmtl'], allow_failed_imports=False)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py and tools/test.py switch 'nccl' to 'gloo' on hosts
    # without CUDA, so the same config runs CPU-only multi-process jobs.
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='MultiTaskLocalVisualizer', vis_backends=vis_backends,
    name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

# Partially labelled batches leave the branches of unlabelled tasks without
# gradients in some iterations.
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel', find_unused_parameters=True)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='MultiTaskVisualizationHook'))
tta_model = dict(type='MultiTaskTTAModel')
