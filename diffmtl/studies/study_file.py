# Copyright (c) diffmtl contributors. All rights reserved.
"""Study files: reading and validating one, the config files its arms
name, and the checkpoint evaluation arms its ``checkpoints`` add."""
import os.path as osp
from typing import Optional

__all__ = [
    'load_study', 'checkpoint_arm_name', 'study_arm', 'resolve_config',
    'CHECKOUT_ROOT', 'DEFAULT_TRAIN_LOSS_WINDOW'
]

#: Iterations before a tested checkpoint over which its run's logged
#: training loss is averaged (study key ``train_loss_window``).
DEFAULT_TRAIN_LOSS_WINDOW = 500


def _checkout_root() -> Optional[str]:
    """The repository root when diffmtl runs from a checkout (the folder
    above the package holds ``setup.py`` and ``configs``); None for an
    installed package."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    if osp.isfile(osp.join(root, 'setup.py')) and osp.isdir(
            osp.join(root, 'configs')):
        return root
    return None


#: The repository root of the checkout diffmtl runs from; None when it is
#: an installed package (a wheel).
CHECKOUT_ROOT = _checkout_root()


def resolve_config(path: str) -> Optional[str]:
    """The file a study's ``config`` names.

    An absolute path is taken as it is. A relative one is looked up from
    the current directory first (and then returned unchanged), else, when
    diffmtl runs from a checkout, under the repository root
    (:data:`CHECKOUT_ROOT`).

    Returns:
        str or None: The path to the file, None when there is none.
    """
    if osp.isabs(path) or osp.isfile(path):
        return path if osp.isfile(path) else None
    if CHECKOUT_ROOT is not None:
        full = osp.join(CHECKOUT_ROOT, path)
        if osp.isfile(full):
            return full
    return None


def load_study(path: str) -> dict:
    """Read and validate a study file.

    Returns:
        dict: ``name, path, seeds, reference, comparisons, checkpoints,
        max_iters, train_loss_window, train_options, test_options, arms``
        (each arm with ``name`` and either ``config``, as written, and
        ``config_file``, the file it resolves to (:func:`resolve_config`),
        or ``eval_of``).

    Raises:
        FileNotFoundError / ValueError: Naming the file and the field.
    """
    from mmengine.config import Config
    if not osp.isfile(path):
        raise FileNotFoundError(f'study file {path!r} does not exist')
    cfg = Config.fromfile(path)
    name = cfg.get('name') or osp.splitext(osp.basename(path))[0]
    seeds = list(cfg.get('seeds') or [])
    if not seeds or not all(isinstance(s, int) for s in seeds):
        raise ValueError(f'{path}: `seeds` must be a non-empty list of ints, '
                         f'got {seeds!r}')
    if len(set(seeds)) != len(seeds):
        raise ValueError(f'{path}: duplicate seeds in {seeds}')
    arms = [dict(a) for a in (cfg.get('arms') or [])]
    if not arms:
        raise ValueError(f'{path}: `arms` is empty')
    names = [a.get('name') for a in arms]
    if any(not n or '/' in n for n in names) or len(set(names)) != len(names):
        raise ValueError(f'{path}: every arm needs a unique `name` without '
                         f'"/", got {names}')
    for arm in arms:
        has_cfg, has_eval = 'config' in arm, 'eval_of' in arm
        if has_cfg == has_eval:
            raise ValueError(f'{path}: arm {arm["name"]!r} needs exactly one '
                             'of `config` (trained) or `eval_of` (tests '
                             'another arm\'s checkpoints)')
        if has_eval:
            src = next((a for a in arms if a['name'] == arm['eval_of']),
                       None)
            if src is None or 'config' not in src:
                raise ValueError(f'{path}: arm {arm["name"]!r}: eval_of '
                                 f'{arm["eval_of"]!r} is not a trained arm')
        else:
            cfg_path = arm['config']
            arm['config_file'] = resolve_config(cfg_path)
            if arm['config_file'] is None:
                where = '' if osp.isabs(cfg_path) else (
                    ' from the current directory' +
                    (f' or under {CHECKOUT_ROOT}' if CHECKOUT_ROOT else ''))
                raise FileNotFoundError(f'{path}: arm {arm["name"]!r}: '
                                        f'config {cfg_path!r} not found'
                                        f'{where}')
        arm.setdefault('cfg_options', {})
        arm.setdefault('test_options', {})
        arm.setdefault('diagnostic', False)
        arm.setdefault('note', '')
    checkpoints = list(cfg.get('checkpoints') or [])
    if not all(isinstance(k, int) and not isinstance(k, bool) and k > 0
               for k in checkpoints) or len(set(checkpoints)) != len(
                   checkpoints):
        raise ValueError(f'{path}: `checkpoints` must be distinct positive '
                         f'iteration numbers, got {checkpoints!r}')
    checkpoints = sorted(checkpoints)
    max_iters = cfg.get('max_iters')
    if max_iters is not None and checkpoints and max_iters <= checkpoints[-1]:
        raise ValueError(f'{path}: `max_iters` ({max_iters}) must be larger '
                         f'than every entry of `checkpoints` {checkpoints} '
                         '(the last iteration is the trained arm\'s own '
                         'test)')
    for arm in [a for a in arms if 'config' in a]:
        for k in checkpoints:
            ckpt_arm = checkpoint_arm_name(arm['name'], k)
            if ckpt_arm in names:
                raise ValueError(f'{path}: arm name {ckpt_arm!r} is taken '
                                 'by the checkpoint evaluation of '
                                 f'{arm["name"]!r}')
            arms.append(
                dict(name=ckpt_arm, eval_of=arm['name'], checkpoint=k,
                     cfg_options={}, test_options={}, diagnostic=False,
                     note=f'`{arm["name"]}` at iteration {k}'))
    window = cfg.get('train_loss_window', DEFAULT_TRAIN_LOSS_WINDOW)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f'{path}: `train_loss_window` must be a positive '
                         f'number of iterations, got {window!r}')
    reference = cfg.get('reference')
    if reference is not None and reference not in names:
        raise ValueError(f'{path}: reference {reference!r} is not an arm')
    comparisons = []
    for pair in cfg.get('comparisons') or []:
        pair = tuple(pair)
        if len(pair) != 2 or not all(p in names for p in pair) or (
                pair[0] == pair[1]):
            raise ValueError(f'{path}: every entry of `comparisons` must be '
                             f'two different arm names, got {pair!r} '
                             f'(arms: {names})')
        comparisons.append(pair)
    return dict(
        name=name,
        path=path,
        seeds=seeds,
        reference=reference,
        comparisons=comparisons,
        checkpoints=checkpoints,
        max_iters=max_iters,
        train_loss_window=window,
        train_options=dict(cfg.get('train_options') or {}),
        test_options=dict(cfg.get('test_options') or {}),
        arms=arms)


def checkpoint_arm_name(arm: str, iteration: int) -> str:
    """Name of the evaluation arm that tests ``arm``'s checkpoint at
    ``iteration``: ``'<arm>@<iteration>'``."""
    return f'{arm}@{iteration}'


def study_arm(study: dict, name: str) -> dict:
    """The arm called ``name`` of a study from :func:`load_study`."""
    return next(a for a in study['arms'] if a['name'] == name)
