# Copyright (c) diffmtl contributors. All rights reserved.
"""Xavier-normal initialisation of a module's convolutions, the scheme the
training-only networks of the comparison methods (XTC's cross-task mapper,
JTR's auto-encoder) take from their reference code."""
import torch.nn as nn

__all__ = ['xavier_normal_init']


def xavier_normal_init(module: nn.Module) -> None:
    """Initialise ``module`` in place, in :meth:`~torch.nn.Module.modules`
    order: every ``nn.Conv2d`` Xavier-normal (gain 1, from torch's global
    generator) with bias 0, every affine norm (batch, instance and sync
    batch norms) weight 1 and bias 0. Other layers keep their
    initialisation.

    Args:
        module (nn.Module): The network to initialise.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._NormBase):
            if m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
