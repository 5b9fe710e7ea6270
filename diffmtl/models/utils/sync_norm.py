# Copyright (c) diffmtl contributors. All rights reserved.
"""Synchronised normalisation under partial labels.

A synchronised batch norm (``SyncBN``) issues collectives: its forward
gathers every process's statistics and its backward all-reduces the
gradient statistics. Every process must issue the same sequence of them.
With partial labels a task may have no labelled image in one process's
batch and some in another's; a branch whose output no loss term uses gets
no backward in that process, so its norms would skip their backward
collectives there while the other processes run them.

The segmentors keep the sequence fixed (``docs/en/models.md``,
*Multi-process training with partial labels*): while
:func:`norms_synchronise` holds, every task branch that ran forward takes
part in the loss through :func:`zero_term`, and parts that run only on the
pairs present in a process (the XTC mapper) run the groups present in any
process, empty ones included (:func:`all_reduce_counts`).
"""
from typing import Iterable, List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
from mmengine.utils.dl_utils import mmcv_full_available
from torch import Tensor

__all__ = [
    'sync_norm_types', 'sync_norm_layers', 'norms_synchronise', 'zero_term',
    'all_reduce_counts'
]


def sync_norm_types() -> tuple:
    """The synchronised norm classes: ``torch.nn.SyncBatchNorm`` (mmcv's
    ``'SyncBN'``) and, with compiled mmcv ops, ``mmcv.ops.SyncBatchNorm``
    (``'MMSyncBN'``); the classes mmengine's ``revert_sync_batchnorm``
    converts."""
    types = [nn.SyncBatchNorm]
    if mmcv_full_available():
        from mmcv.ops import SyncBatchNorm
        types.append(SyncBatchNorm)
    return tuple(types)


def _group(layer: nn.Module):
    """The process group a synchronised norm layer reduces over (None is
    the default group)."""
    group = getattr(layer, 'process_group', None)
    return group if group is not None else getattr(layer, 'group', None)


def sync_norm_layers(module: nn.Module) -> List[nn.Module]:
    """The synchronised norm layers of ``module`` (itself included), in
    ``module.modules()`` order."""
    types = sync_norm_types()
    return [m for m in module.modules() if isinstance(m, types)]


def norms_synchronise(module: nn.Module) -> bool:
    """Whether a forward of ``module`` now issues norm collectives.

    True when one of its synchronised norm layers is in training mode and
    its process group has more than one process (what makes
    ``torch.nn.SyncBatchNorm`` synchronise). Single-process runs (mmengine
    converts SyncBN to BN there), evaluation and models without
    synchronised norms give False.

    Args:
        module (nn.Module): The model or one of its parts.

    Returns:
        bool
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    return any(layer.training and dist.get_world_size(_group(layer)) > 1
               for layer in sync_norm_layers(module))


def zero_term(tensors: Iterable[Tensor]) -> Tensor:
    """A scalar exactly 0 that depends on every tensor of ``tensors``.

    Added to a loss it changes neither the loss nor any gradient, but
    backward reaches every module that produced one of the tensors, with a
    zero gradient: their synchronised norms run their backward collectives
    (and, through those, pass on the other processes' gradient statistics,
    which they need). It is the sum of an empty slice of each tensor, so no
    value of the tensors (not even inf or NaN) can make it non-zero.

    Args:
        tensors (Iterable[Tensor]): Outputs of the branches to keep in the
            graph (any shapes; at least one).

    Returns:
        Tensor: () zero on the tensors' device (their promoted dtype).
    """
    parts = [t.reshape(-1)[:0].sum() for t in tensors]
    if not parts:
        raise ValueError('zero_term: no tensors given')
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def all_reduce_counts(counts: Tensor,
                      module: Optional[nn.Module] = None) -> Tensor:
    """Sum integer counts over the processes of ``module``'s norms.

    Args:
        counts (Tensor): Local counts (any shape, integer).
        module (nn.Module, optional): Whose synchronised norms' process
            group to use (that of its first one); None or none: the
            default group.

    Returns:
        Tensor: The summed counts (a new tensor, ``counts`` is unchanged).
    """
    group = None
    if module is not None:
        layers = sync_norm_layers(module)
        group = _group(layers[0]) if layers else None
    total = counts.clone()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total
