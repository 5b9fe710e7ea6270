# Copyright (c) diffmtl contributors. All rights reserved.
"""Refuse to validate or test a model whose weights are not finite.

A checkpoint with NaN or inf in one weight gives NaN predictions: the
test loop exported them (all-NaN depth and normals files) and the metrics
of NaN predictions still printed as numbers. :class:`FiniteCheckHook`
checks every parameter and buffer before the validation and test loops
and raises, naming the checkpoint and the first non-finite tensor, before
any prediction is made or exported. Non-finite *predictions* of finite
weights (an overflow) are refused by
:class:`~diffmtl.evaluation.MultiTaskMetric`, which names the image, the
task and, through :data:`WEIGHTS_SOURCE_KEY`, the weights.

``tools/train.py`` / ``tools/test.py`` add the hook
(:func:`diffmtl.utils.tool_cfg.add_finite_check_hook`); other runners list
``dict(type='FiniteCheckHook')`` in ``custom_hooks``.
"""
from typing import List, Optional, Tuple

import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import is_model_wrapper

from diffmtl.registry import HOOKS

__all__ = [
    'FiniteCheckHook', 'non_finite_tensors', 'check_finite_weights',
    'WEIGHTS_SOURCE_KEY'
]

#: Message-hub runtime-info key naming where the evaluated weights come
#: from (a checkpoint path or the training iteration), for error messages.
WEIGHTS_SOURCE_KEY = 'diffmtl_weights_source'


def non_finite_tensors(module: torch.nn.Module
                       ) -> List[Tuple[str, int, int]]:
    """``(name, non-finite count, size)`` of every floating-point parameter
    and buffer of ``module`` holding NaN or inf, in registration order."""
    found = []
    named = list(module.named_parameters()) + list(module.named_buffers())
    for name, tensor in named:
        if tensor is None or not torch.is_floating_point(tensor):
            continue
        bad = int((~torch.isfinite(tensor.detach())).sum())
        if bad:
            found.append((name, bad, tensor.numel()))
    return found


def check_finite_weights(module: torch.nn.Module, source: str) -> None:
    """Raise if a parameter or buffer of ``module`` is not finite.

    Args:
        module (nn.Module): The model (wrappers are looked through).
        source (str): Where the weights come from (for the message).

    Raises:
        FloatingPointError: Naming ``source``, the first non-finite tensor
            and how many others there are.
    """
    if is_model_wrapper(module):
        module = module.module
    found = non_finite_tensors(module)
    if not found:
        return
    name, bad, size = found[0]
    others = ''
    if len(found) > 1:
        shown = ', '.join(n for n, _, _ in found[1:4])
        others = (f' ({len(found) - 1} more tensor(s) too: {shown}'
                  f'{", ..." if len(found) > 4 else ""})')
    raise FloatingPointError(
        f'FiniteCheckHook: the weights of {source} are not finite: '
        f'{name!r} holds {bad} NaN/inf value(s) of {size}{others}. Every '
        'prediction would be NaN and its metrics meaningless, so nothing '
        'is predicted, exported or scored. The checkpoint is damaged or '
        'its run diverged: evaluate an earlier checkpoint')


@HOOKS.register_module()
class FiniteCheckHook(Hook):
    """Check that every weight is finite before validating or testing.

    In ``before_test`` the weights come from the loaded checkpoint
    (``load_from``); in ``before_val`` during training from the current
    iteration. The source is also stored in the message hub under
    :data:`WEIGHTS_SOURCE_KEY` so that ``MultiTaskMetric`` can name it when
    a prediction is not finite. Runs at ``VERY_HIGH`` priority.
    """
    priority = 'VERY_HIGH'

    @staticmethod
    def _source(runner, testing: bool) -> str:
        load_from: Optional[str] = getattr(runner, '_load_from', None)
        train_loop = getattr(runner, '_train_loop', None)
        if not testing and train_loop is not None and not isinstance(
                train_loop, dict):
            return f'the model at training iteration {runner.iter}'
        if load_from:
            return f'the checkpoint {load_from!r}'
        return 'the model (no checkpoint loaded)'

    def _check(self, runner, testing: bool) -> None:
        source = self._source(runner, testing)
        MessageHub.get_current_instance().update_info(
            WEIGHTS_SOURCE_KEY, source, resumed=False)
        check_finite_weights(runner.model, source)

    def before_val(self, runner) -> None:
        self._check(runner, testing=False)

    def before_test(self, runner) -> None:
        self._check(runner, testing=True)
