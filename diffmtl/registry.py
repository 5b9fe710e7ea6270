# Copyright (c) diffmtl contributors. All rights reserved.
"""Registries used by diffmtl.

diffmtl registers all of its components into MMSegmentation's registries
(``default_scope='mmseg'``), so that mmseg backbones, losses and tools mix
in by config and the stock OpenMMLab tools drive diffmtl unchanged. This
module re-exports them so diffmtl code imports registries from one place.
"""
from mmseg.registry import (DATA_SAMPLERS, DATASETS, EVALUATOR, HOOKS,
                            INFERENCERS, LOG_PROCESSORS, LOOPS, METRICS,
                            MODEL_WRAPPERS, MODELS, OPTIM_WRAPPER_CONSTRUCTORS,
                            OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS,
                            RUNNER_CONSTRUCTORS, RUNNERS, TASK_UTILS,
                            TRANSFORMS, VISBACKENDS, VISUALIZERS,
                            WEIGHT_INITIALIZERS)
from mmengine.registry import Registry

#: diffmtl's own registry: task kinds (``diffmtl.structures.TaskKind``
#: subclasses, keyed by their ``name``), see ``docs/en/add_task.md``.
TASK_KINDS = Registry('task kind')

__all__ = [
    'DATA_SAMPLERS', 'DATASETS', 'EVALUATOR', 'HOOKS', 'INFERENCERS',
    'LOG_PROCESSORS', 'LOOPS', 'METRICS', 'MODEL_WRAPPERS', 'MODELS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'OPTIM_WRAPPERS', 'OPTIMIZERS',
    'PARAM_SCHEDULERS', 'RUNNER_CONSTRUCTORS', 'RUNNERS', 'TASK_UTILS',
    'TRANSFORMS', 'VISBACKENDS', 'VISUALIZERS', 'WEIGHT_INITIALIZERS',
    'TASK_KINDS'
]
