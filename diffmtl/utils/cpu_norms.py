# Copyright (c) diffmtl contributors. All rights reserved.
"""Per-process norms for CPU-only multi-process jobs.

``torch.nn.SyncBatchNorm`` runs on GPUs only, and DDP refuses a CPU module
holding one ("SyncBatchNorm layers only work with GPU modules"), while the
GPU configs use SyncBN. :func:`sync_norms_to_bn` makes those norms BN in
the config before the model is built (``setup_launcher`` calls it for
CPU-only multi-process jobs); single-process runs need nothing, mmengine
reverts SyncBN to BN there.
"""
import logging
from typing import Any, List

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log

__all__ = ['SYNC_NORM_TYPES', 'sync_norms_to_bn']

#: Norm config types that synchronise over processes (GPU only).
SYNC_NORM_TYPES = ('SyncBN', 'MMSyncBN')


def _is_sync_norm_type(norm_type: Any) -> bool:
    if isinstance(norm_type, str):
        return norm_type in SYNC_NORM_TYPES
    return isinstance(norm_type, type) and issubclass(norm_type,
                                                      nn.SyncBatchNorm)


def _to_bn(node: Any, path: str, changed: List[str]) -> None:
    if isinstance(node, dict):
        if _is_sync_norm_type(node.get('type')):
            node['type'] = 'BN'
            changed.append(path)
        for key, value in node.items():
            _to_bn(value, f'{path}.{key}', changed)
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _to_bn(value, f'{path}[{i}]', changed)


def sync_norms_to_bn(cfg: Config) -> List[str]:
    """Make the model's synchronised norms per-process BN, in the config.

    Every dict under ``cfg.model`` whose ``type`` is ``'SyncBN'``,
    ``'MMSyncBN'`` or a ``torch.nn.SyncBatchNorm`` class gets
    ``type='BN'`` (its other keys are kept), and mmengine's ``sync_bn``
    option (convert BN to SyncBN when wrapping the model) is dropped. One
    warning names what changed. Each process then normalises with its own
    batch's statistics, as a single-process run does.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        list[str]: The changed config paths (``'model.backbone.norm_cfg'``,
        ..., ``'sync_bn'``); empty when there was nothing to change (and
        then nothing is logged).
    """
    changed: List[str] = []
    if cfg.get('model') is not None:
        _to_bn(cfg.model, 'model', changed)
    if cfg.get('sync_bn') is not None:
        cfg.pop('sync_bn')
        changed.append('sync_bn')
    if changed:
        print_log(
            'No CUDA device: SyncBatchNorm layers only work with GPU '
            'modules, so the model uses BN instead of SyncBN (each process '
            'normalises with its own batch statistics); changed: '
            f'{", ".join(changed)}.',
            logger='current',
            level=logging.WARNING)
    return changed
