# Copyright (c) diffmtl contributors. All rights reserved.
"""Compare the config of a ``--resume`` run with the checkpoint's.

mmengine stores the whole config of a run in every checkpoint
(``meta['cfg']``, the config's text). On resume it loads the optimizer's
and the parameter schedulers' *state* from the checkpoint, learning rates
included, so a config with another learning rate (or momentum, weight
decay, schedule) silently continues with the checkpoint's values, and a
changed model setting (a loss weight, a diffusion step count) silently
mixes two setups in one run.

:func:`check_resume_config` compares the sections :data:`COMPARED` of the
running config with the checkpoint's and refuses the resume, listing
every difference, unless the config sets ``allow_resume_changes=True``
(``tools/train.py --allow-resume-changes``): then the differences are
logged and the run continues, the optimizer and scheduler state still
coming from the checkpoint. The loop settings (``train_cfg``: more
iterations, another validation interval) are not compared: they are not
restored from the checkpoint and take effect as configured.
"""
import logging
import os
import os.path as osp
import tempfile
from typing import Any, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.logging import print_log

__all__ = [
    'COMPARED', 'ALLOW_RESUME_CHANGES_KEY', 'ResumeConfigMismatchError',
    'config_differences', 'check_resume_config'
]

#: Config sections a resumed run must share with its checkpoint.
COMPARED = ('model', 'optim_wrapper', 'param_scheduler')
#: Config key that turns the refusal into a warning.
ALLOW_RESUME_CHANGES_KEY = 'allow_resume_changes'

_MISSING = '<not set>'


class ResumeConfigMismatchError(ValueError):
    """The config differs from the resumed checkpoint's."""


def _plain(value: Any) -> Any:
    """Config values as plain Python (dicts, lists) for comparison."""
    if hasattr(value, 'to_dict'):
        value = value.to_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _flatten(value: Any, prefix: str, out: dict) -> dict:
    if isinstance(value, dict):
        if not value:
            out[prefix] = {}
        for key, sub in value.items():
            _flatten(sub, f'{prefix}.{key}' if prefix else key, out)
    elif isinstance(value, list) and any(
            isinstance(v, (dict, list)) for v in value):
        for i, sub in enumerate(value):
            _flatten(sub, f'{prefix}[{i}]', out)
        if not value:
            out[prefix] = []
    else:
        out[prefix] = value
    return out


def _parse_saved(text: str) -> Config:
    """The checkpoint's config text as a ``Config`` (no custom imports)."""
    fd, path = tempfile.mkstemp(suffix='.py', text=True)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            f.write(text)
        return Config.fromfile(path, import_custom_modules=False)
    finally:
        os.remove(path)


def config_differences(cfg: Config, saved: Config,
                       sections: Sequence[str] = COMPARED
                       ) -> List[Tuple[str, Any, Any]]:
    """``[(key, checkpoint value, config value)]`` of the leaves of
    ``sections`` that differ, with dotted keys (``optim_wrapper.optimizer
    .lr``); an absent value is ``'<not set>'``."""
    diffs = []
    for section in sections:
        new = _flatten(_plain(cfg.get(section)), section, {})
        old = _flatten(_plain(saved.get(section)), section, {})
        for key in sorted(set(new) | set(old)):
            a, b = old.get(key, _MISSING), new.get(key, _MISSING)
            if a != b:
                diffs.append((key, a, b))
    return diffs


def check_resume_config(cfg: Config, meta: Optional[dict],
                        path: str) -> List[Tuple[str, Any, Any]]:
    """Refuse (or, if allowed, log) config changes against a checkpoint.

    Args:
        cfg (Config): The running config.
        meta (dict, optional): The checkpoint's ``meta`` (``meta['cfg']``:
            the config text mmengine saved).
        path (str): The checkpoint, for the messages.

    Returns:
        list: The differences (empty when none or nothing to compare).

    Raises:
        ResumeConfigMismatchError: Listing every difference, when the
            config does not set ``allow_resume_changes=True``.
    """
    text = (meta or {}).get('cfg')
    if not isinstance(text, str) or not text.strip():
        print_log(
            f'--resume: {path} stores no config; the model, optimizer and '
            'schedule settings cannot be compared with it.',
            logger='current',
            level=logging.WARNING)
        return []
    try:
        saved = _parse_saved(text)
    except Exception as err:  # noqa: BLE001  (reported, not fatal)
        print_log(
            f'--resume: the config stored in {path} cannot be read back '
            f'({type(err).__name__}: {err}); the model, optimizer and '
            'schedule settings are not compared with it.',
            logger='current',
            level=logging.WARNING)
        return []
    diffs = config_differences(cfg, saved)
    if not diffs:
        return diffs
    listing = '\n'.join(f'  {key}: {old!r} (checkpoint) -> {new!r} (config)'
                        for key, old, new in diffs)
    name = osp.basename(path)
    if cfg.get(ALLOW_RESUME_CHANGES_KEY, False):
        print_log(
            f'--resume from {path} with {len(diffs)} setting(s) that differ '
            f'from the checkpoint\'s (allowed by {ALLOW_RESUME_CHANGES_KEY}'
            f'):\n{listing}\nThe optimizer and scheduler state (learning '
            f'rates included) continue from {name}; the other settings '
            'apply as configured.',
            logger='current',
            level=logging.WARNING)
        return diffs
    raise ResumeConfigMismatchError(
        f'--resume: the config differs from the one {path} was trained '
        f'with in {len(diffs)} setting(s):\n{listing}\nResuming would '
        f'continue with the optimizer and scheduler state stored in {name} '
        '(a changed learning rate or schedule would not take effect) and '
        'mix two model setups in one run. Restore the settings to resume; '
        'to train with the new settings from these weights, start a new '
        f'run in another work dir with load_from={path!r}; or pass '
        '--allow-resume-changes (tools/train.py) / set '
        f'{ALLOW_RESUME_CHANGES_KEY}=True to resume anyway')
