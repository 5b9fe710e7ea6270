# Copyright (c) diffmtl contributors. All rights reserved.
"""Fail when ``load_from`` / ``--resume`` / ``tools/test.py`` load a
checkpoint that does not fit the model, instead of logging a warning."""
from mmengine.hooks import Hook

from diffmtl.registry import HOOKS
from ..model_checkpoint import ALLOW_PARTIAL_KEY, check_checkpoint_matches

__all__ = ['CheckpointMatchHook']

#: ``Runner.load_checkpoint``'s ``revise_keys`` (sic: unescaped dot).
_RUNNER_REVISE_KEYS = [(r'^module.', '')]


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Raise :class:`~diffmtl.engine.CheckpointMismatchError` on mismatch.

    Runs in ``after_load_checkpoint``, i.e. before the runner copies any
    weight, for every checkpoint the runner loads (``load_from``, resume,
    ``tools/test.py CONFIG CHECKPOINT``). The error names the file and the
    first missing, unexpected and mis-shaped keys.

    Args:
        allow_partial (bool): Load the matching part anyway (mmengine's
            behaviour: it logs the rest). The config key
            ``allow_partial_checkpoint = True`` (``--allow-partial-
            checkpoint``) does the same. Defaults to False.
    """

    priority = 'VERY_HIGH'

    def __init__(self, allow_partial: bool = False):
        self.allow_partial = allow_partial

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Compare ``checkpoint`` with ``runner.model``."""
        cfg = runner.cfg
        if self.allow_partial or cfg.get(ALLOW_PARTIAL_KEY, False):
            return
        filename = cfg.get('load_from') or None
        check_checkpoint_matches(
            runner.model,
            checkpoint,
            filename=filename,
            revise_keys=_RUNNER_REVISE_KEYS)
