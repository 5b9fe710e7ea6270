# Copyright (c) diffmtl contributors. All rights reserved.
"""Shared pieces of the per-image losses: signature checks, float32
accumulation and data checks that need no host sync on accelerators."""
import contextlib
import contextvars
from typing import Iterator, List, Optional, Tuple

import torch
from torch import Tensor

__all__ = [
    'check_pair', 'accumulation_dtype', 'masked_image_mean', 'check_data',
    'deferred_data_checks', 'resolve_data_checks', 'DataCheck'
]

#: A deferred data check: a 0-dim bool tensor (True = the data is bad) and
#: the message of the ``ValueError`` to raise then.
DataCheck = Tuple[Tensor, str]

_PENDING: contextvars.ContextVar[Optional[List[DataCheck]]] = \
    contextvars.ContextVar('diffmtl_pending_data_checks', default=None)


def check_pair(name: str, pred: Tensor, target: Tensor,
               gt_channels: int) -> None:
    """Validate ``pred`` (N, C, H, W) against ``target`` (N, gt_ch, H, W).

    Raises:
        ValueError: Naming the loss ``name`` and the offending shapes.
    """
    if pred.dim() != 4 or target.dim() != 4:
        raise ValueError(f'{name}: expected 4-D pred (N, C, H, W) and target '
                         f'(N, {gt_channels}, H, W), got {tuple(pred.shape)} '
                         f'and {tuple(target.shape)}')
    if pred.shape[0] != target.shape[0] or pred.shape[2:] != target.shape[2:]:
        raise ValueError(f'{name}: pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} differ in batch or spatial '
                         'size; resize the prediction to the label first')
    if target.shape[1] != gt_channels:
        raise ValueError(f'{name}: target must have {gt_channels} channel(s), '
                         f'got {target.shape[1]}')


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a loss computes and sums in: float32 for half-precision
    (float16 / bfloat16) predictions, else the prediction's own dtype.

    A 512x512 image has 262144 pixels, more than float16 can count
    (largest finite value 65504) and more than bfloat16 counts exactly
    (8 significant bits), so pixel counts, normalisers and per-image sums
    are never formed in half precision, whatever the autocast dtype.
    """
    return torch.promote_types(dtype, torch.float32)


def masked_image_mean(values: Tensor, valid: Tensor) -> Tensor:
    """Per-image sum of ``values`` over ``valid`` pixels / #valid pixels.

    Sums and counts are formed in :func:`accumulation_dtype` (float32 for
    half-precision ``values``).

    Args:
        values (Tensor): (N, H, W) per-pixel losses.
        valid (Tensor): (N, H, W) bool mask.

    Returns:
        Tensor: (N,) in ``accumulation_dtype(values.dtype)``, 0 for an
        image without valid pixels.
    """
    acc = accumulation_dtype(values.dtype)
    values = torch.where(valid, values.to(acc), values.new_zeros((),
                                                                 dtype=acc))
    num = valid.flatten(1).sum(1).clamp(min=1).to(acc)
    return values.flatten(1).sum(1) / num


def check_data(bad: Tensor, message: str) -> None:
    """Raise ``ValueError(message)`` if the 0-dim bool tensor ``bad`` is
    True.

    Reading ``bad`` on the host waits for the device (a host sync). Inside
    :func:`deferred_data_checks` the check is recorded instead and raised
    by :func:`resolve_data_checks`, which reads all of an iteration's
    checks with one sync (the segmentors do so in ``parse_losses``, before
    the backward pass), on every device alike. The caller must compute
    with sanitised data, so that bad values cannot fail inside a kernel
    before the check is read.

    Args:
        bad (Tensor): 0-dim bool tensor, True when the data is bad.
        message (str): The error message.

    Raises:
        ValueError: With ``message`` when ``bad`` is True and the check is
            not deferred.
    """
    pending = _PENDING.get()
    if pending is not None:
        pending.append((bad.reshape(()), message))
        return
    if bool(bad):
        raise ValueError(message)


@contextlib.contextmanager
def deferred_data_checks() -> Iterator[List[DataCheck]]:
    """Collect the :func:`check_data` calls made inside the block.

    Yields:
        list: The deferred checks, to be passed to
        :func:`resolve_data_checks`.
    """
    pending: List[DataCheck] = []
    token = _PENDING.set(pending)
    try:
        yield pending
    finally:
        _PENDING.reset(token)


def resolve_data_checks(pending: List[DataCheck],
                        extra: Optional[List[Tensor]] = None) -> List[bool]:
    """Read deferred checks (and ``extra`` flags) with one host sync.

    Args:
        pending (list): Checks from :func:`deferred_data_checks`.
        extra (list[Tensor], optional): More 0-dim bool tensors to read in
            the same sync (e.g. a loss-finiteness flag).

    Returns:
        list[bool]: The values of ``extra``.

    Raises:
        ValueError: With the message of the first failed check.
    """
    extra = list(extra or [])
    flags = [bad for bad, _ in pending] + extra
    if not flags:
        return []
    devices = {f.device for f in flags}
    if len(devices) > 1:
        flags = [f.cpu() for f in flags]
    values = torch.stack([f.reshape(()) for f in flags]).tolist()
    for value, (_, message) in zip(values, pending):
        if value:
            raise ValueError(message)
    return [bool(v) for v in values[len(pending):]]
