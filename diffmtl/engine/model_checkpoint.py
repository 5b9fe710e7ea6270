# Copyright (c) diffmtl contributors. All rights reserved.
"""Refuse checkpoints that do not match the model they are loaded into.

mmengine loads weights with ``strict=False``: a checkpoint of another
architecture only logs a (long) warning and leaves every mismatched
parameter at its random initial value, so ``tools/test.py`` happily reports
the metrics of a half-random model. :func:`check_checkpoint_matches`
compares the checkpoint's state dict with the model's before anything is
loaded and raises :class:`CheckpointMismatchError` naming the first
missing, unexpected and mis-shaped keys. Partial loading (fine-tuning from
a checkpoint of a different head, say) stays possible by an explicit
opt-in: ``allow_partial_checkpoint = True`` in the config or the
``--allow-partial-checkpoint`` flag of ``tools/train.py`` /
``tools/test.py``.
"""
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.runner.checkpoint import (_load_checkpoint,
                                        _load_checkpoint_to_model)

__all__ = [
    'ALLOW_PARTIAL_KEY', 'DEFAULT_REVISE_KEYS', 'CheckpointMismatchError',
    'unwrap_model', 'checkpoint_state_dict', 'find_checkpoint_mismatch',
    'check_checkpoint_matches', 'load_model_checkpoint'
]

#: Config key that allows loading checkpoints that match only in part.
ALLOW_PARTIAL_KEY = 'allow_partial_checkpoint'

#: How the flag is spelled in the error message.
_OPT_IN = ('pass --allow-partial-checkpoint to tools/train.py or '
           'tools/test.py, or set allow_partial_checkpoint = True in the '
           'config (init_model: cfg_options=dict(allow_partial_checkpoint='
           'True))')

#: ``revise_keys`` of :func:`mmengine.runner.load_checkpoint`. (``Runner``
#: uses ``[(r'^module.', '')]``, unescaped; the runner hook passes that.)
DEFAULT_REVISE_KEYS = [(r'^module\.', '')]


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not fit the model.

    Attributes:
        filename (str): The checkpoint (``'<checkpoint>'`` when unknown).
        missing (list[str]): Model keys the checkpoint lacks.
        unexpected (list[str]): Checkpoint keys the model lacks.
        mismatched (list[tuple]): ``(key, checkpoint shape, model shape)``.
    """

    def __init__(self, message: str, filename: str, missing: List[str],
                 unexpected: List[str], mismatched: List[Tuple[str, tuple,
                                                               tuple]]):
        super().__init__(message)
        self.filename = filename
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched


def unwrap_model(model: torch.nn.Module) -> torch.nn.Module:
    """The module mmengine loads weights into (no DDP / TTA wrapper)."""
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def checkpoint_state_dict(
    checkpoint: Any,
    revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS
) -> Dict[str, Any]:
    """The weights of a loaded checkpoint, keys revised as mmengine does.

    Args:
        checkpoint: A loaded checkpoint: a dict with ``state_dict``, or a
            plain state dict.
        revise_keys (list[tuple]): ``(pattern, replacement)`` pairs applied
            to every key, as in mmengine (a leading ``module.`` stripped).

    Returns:
        dict: Key -> tensor.
    """
    if not isinstance(checkpoint, dict):
        raise TypeError('A checkpoint must be a dict, got '
                        f'{type(checkpoint).__name__}')
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict):
        raise TypeError('checkpoint["state_dict"] must be a dict, got '
                        f'{type(state_dict).__name__}')
    revised = {}
    for key, value in state_dict.items():
        for pattern, repl in revise_keys:
            key = re.sub(pattern, repl, key)
        revised[key] = value
    return revised


def find_checkpoint_mismatch(
    model: torch.nn.Module,
    checkpoint: Any,
    revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS
) -> Tuple[List[str], List[str], List[Tuple[str, tuple, tuple]]]:
    """Missing, unexpected and mis-shaped keys of ``checkpoint``.

    As in mmengine, missing ``num_batches_tracked`` buffers are ignored
    (torch fills them in).

    Args:
        model (nn.Module): The model (wrappers are looked through).
        checkpoint: A loaded checkpoint or state dict.
        revise_keys (list[tuple]): See :func:`checkpoint_state_dict`.

    Returns:
        tuple: ``(missing, unexpected, mismatched)`` in model / checkpoint
        key order; ``mismatched`` holds ``(key, ckpt_shape, model_shape)``.
    """
    expected = unwrap_model(model).state_dict()
    given = checkpoint_state_dict(checkpoint, revise_keys)
    missing = [
        k for k in expected
        if k not in given and not k.endswith('num_batches_tracked')
    ]
    unexpected = [k for k in given if k not in expected]
    mismatched = []
    for key, value in expected.items():
        if key not in given or not hasattr(given[key], 'shape'):
            continue
        ckpt_shape = tuple(given[key].shape)
        model_shape = tuple(value.shape)
        if ckpt_shape != model_shape:
            mismatched.append((key, ckpt_shape, model_shape))
    return missing, unexpected, mismatched


def _first(items: List[str], limit: int) -> str:
    shown = ', '.join(items[:limit])
    more = len(items) - limit
    return shown + (f', ... ({more} more)' if more > 0 else '')


def check_checkpoint_matches(
        model: torch.nn.Module,
        checkpoint: Any,
        filename: Optional[str] = None,
        limit: int = 5,
        revise_keys: Sequence[Tuple[str, str]] = DEFAULT_REVISE_KEYS) -> None:
    """Raise unless every model key is in ``checkpoint`` with its shape.

    Args:
        model (nn.Module): The model.
        checkpoint: A loaded checkpoint or state dict.
        filename (str, optional): Named in the error.
        limit (int): How many keys of each kind the message lists.
        revise_keys (list[tuple]): See :func:`checkpoint_state_dict`.

    Raises:
        CheckpointMismatchError: On any missing, unexpected or mis-shaped
            key.
    """
    missing, unexpected, mismatched = find_checkpoint_mismatch(
        model, checkpoint, revise_keys)
    if not (missing or unexpected or mismatched):
        return
    name = filename or '<checkpoint>'
    parts = []
    if mismatched:
        shapes = [
            f'{k} (checkpoint {list(c)}, model {list(m)})'
            for k, c, m in mismatched
        ]
        parts.append(f'{len(mismatched)} with a different shape: ' +
                     _first(shapes, limit))
    if missing:
        parts.append(f'{len(missing)} missing from the checkpoint: ' +
                     _first(missing, limit))
    if unexpected:
        parts.append(f'{len(unexpected)} not in the model: ' +
                     _first(unexpected, limit))
    model_name = type(unwrap_model(model)).__name__
    raise CheckpointMismatchError(
        f'Checkpoint {name} does not match the model {model_name} (is it '
        'a checkpoint of another config?). Keys ' + '; '.join(parts) +
        '. To load the matching part anyway (the rest keeps its initial '
        f'values), {_OPT_IN}.', name, missing, unexpected, mismatched)


def load_model_checkpoint(model: torch.nn.Module,
                          filename: str,
                          map_location: Any = 'cpu',
                          allow_partial: bool = False) -> dict:
    """Load ``filename`` into ``model``, refusing mismatched checkpoints.

    Reads the file with mmengine's checkpoint loaders (diffmtl's safe
    local / URL loaders), checks it with :func:`check_checkpoint_matches`
    unless ``allow_partial`` and loads it like
    :func:`mmengine.runner.load_checkpoint` (``strict=False``).

    Args:
        model (nn.Module): The model.
        filename (str): Checkpoint path or URL.
        map_location: Same as :func:`torch.load`.
        allow_partial (bool): Load the matching part of a mismatched
            checkpoint (mmengine logs the rest) instead of raising.

    Returns:
        dict: The loaded checkpoint.
    """
    checkpoint = _load_checkpoint(filename, map_location=map_location)
    if not allow_partial:
        check_checkpoint_matches(model, checkpoint, filename)
    return _load_checkpoint_to_model(
        unwrap_model(model), checkpoint, strict=False)
