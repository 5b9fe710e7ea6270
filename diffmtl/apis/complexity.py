# Copyright (c) diffmtl contributors. All rights reserved.
"""Build a config's model for counting its parameters and MACs
(``diffmtl.models.utils.complexity``): no data preprocessor, no
pretrained weights, on the ``meta`` device by default."""
import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope

from diffmtl.registry import MODELS

__all__ = ['build_for_counting']


def build_for_counting(cfg: Config, device: str = 'meta'):
    """Build ``cfg.model`` without data preprocessor or pretrained weights.

    Args:
        cfg (Config): A model config.
        device (str): Device to build on; ``'meta'`` allocates no memory.
            A model that cannot be built on ``meta`` (a backbone calling
            ``.item()`` while building) is built on the CPU and moved.

    Returns:
        nn.Module: The model.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model_cfg = cfg.model.copy()
    model_cfg.pop('data_preprocessor', None)
    backbone = model_cfg.get('backbone')
    if isinstance(backbone, dict):
        backbone.pop('init_cfg', None)
        backbone.pop('pretrained', None)
    model_cfg.pop('init_cfg', None)
    try:
        with torch.device(device):
            return MODELS.build(model_cfg.copy())
    except (RuntimeError, NotImplementedError) as err:
        if torch.device(device).type != 'meta':
            raise
        # Some backbones call .item() while building (e.g. drop-path rates):
        # build on the CPU and move the weights to the meta device.
        print_log(f'building on the meta device failed ({err}); building '
                  'on the CPU', logger='current')
        return MODELS.build(model_cfg).to(device)
