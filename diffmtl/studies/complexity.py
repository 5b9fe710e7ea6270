# Copyright (c) diffmtl contributors. All rights reserved.
"""Parameters and MACs of a study arm's model, counted once per model and
process (the runner summarises the whole study after every run)."""
import json
from typing import Dict, Tuple

__all__ = ['arm_complexity']

#: ``{(config, model options as JSON, shape): (params, MACs)}``.
_CACHE: Dict[tuple, Tuple[int, int]] = {}


def arm_complexity(config: str, cfg_options: dict,
                   shape: Tuple[int, int]) -> Tuple[int, int]:
    """(parameters, MACs per image) of a config's model at ``shape``.

    Only the ``model.*`` options of ``cfg_options`` matter; the model is
    built on the ``meta`` device
    (:func:`diffmtl.apis.complexity.build_for_counting`) once per process
    for each config, model options and shape.

    Args:
        config (str): The config file.
        cfg_options (dict): The arm's options (training ones included).
        shape (tuple[int, int]): Input height and width.
    """
    import torch
    from mmengine.config import Config

    from diffmtl.apis import complexity
    from diffmtl.models.utils.complexity import count_macs, count_parameters
    opts = {k: v for k, v in cfg_options.items() if k.startswith('model.')}
    key = (config, json.dumps(opts, sort_keys=True, default=repr),
           tuple(shape))
    if key in _CACHE:
        return _CACHE[key]
    cfg = Config.fromfile(config)
    if opts:
        cfg.merge_from_dict(opts)
    model = complexity.build_for_counting(cfg, 'meta')
    inputs = torch.empty((1, 3) + tuple(shape), device='meta')
    macs, _ = count_macs(model, inputs, forward=model._forward)
    _CACHE[key] = count_parameters(model), macs
    return _CACHE[key]
