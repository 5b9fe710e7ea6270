# Copyright (c) diffmtl contributors. All rights reserved.
"""The initial bias a task kind asks of its output heads
(:meth:`~diffmtl.structures.TaskKind.head_bias`)."""
from typing import Optional

import torch
import torch.nn as nn

__all__ = ['output_conv', 'init_head_bias']


def output_conv(head: nn.Module) -> Optional[nn.Conv2d]:
    """The convolution whose output is the task's prediction: ``head``
    itself when it is an ``nn.Conv2d``, its ``head`` attribute (e.g.
    :class:`~diffmtl.models.decode_heads.ResidualTaskDecoder`), or the last
    layer of an ``nn.Sequential``; None when there is none of these."""
    if isinstance(head, nn.Conv2d):
        return head
    inner = getattr(head, 'head', None)
    if isinstance(inner, nn.Conv2d):
        return inner
    if isinstance(head, nn.Sequential) and len(head) and isinstance(
            head[-1], nn.Conv2d):
        return head[-1]
    return None


def init_head_bias(head: nn.Module, spec, owner: str) -> None:
    """Set the bias of ``head``'s output convolution to the value the
    kind of task ``spec`` asks for; nothing when it asks for none (the
    default), so the model is built exactly as without this call.

    Args:
        head (nn.Module): What predicts the task (see :func:`output_conv`).
        spec (TaskSpec): The task.
        owner (str): Named in errors (the model's class name).

    Raises:
        ValueError: The kind asks for a bias but ``head`` has no output
            convolution with a bias, or the kind's value has neither one
            nor ``out_channels`` entries.
    """
    conv = output_conv(head)
    out_channels = None if conv is None else conv.out_channels
    value = spec.task_kind.head_bias(spec, out_channels)
    if value is None:
        return
    if conv is None or conv.bias is None:
        raise ValueError(
            f'{owner}: task {spec.name!r} (kind {spec.kind!r}) asks for an '
            f'initial head bias, but its head {type(head).__name__} has no '
            'output convolution with a bias (an nn.Conv2d, a module whose '
            '`head` is one, or an nn.Sequential ending in one)')
    bias = torch.as_tensor(value, dtype=conv.bias.dtype).flatten()
    if bias.numel() not in (1, out_channels):
        raise ValueError(
            f'{owner}: task {spec.name!r} (kind {spec.kind!r}): head_bias '
            f'gave {bias.numel()} values for a head with {out_channels} '
            'output channels (expected 1 or one per channel)')
    with torch.no_grad():
        conv.bias.copy_(bias.expand(out_channels))
