# Copyright (c) diffmtl contributors. All rights reserved.
"""Statistics over a study's seeds: mean and sample standard deviation,
differences paired by seed, and the learning curve of a study with
``checkpoints``."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

from diffmtl.evaluation.functional.delta_m import primary_metric_key
from .study_file import checkpoint_arm_name

__all__ = [
    'mean_std', 'per_seed', 'paired_stat', 'staged', 'learning_curve',
    'INITIAL_DM', 'FINAL_REF_DM'
]

#: Delta-m of an arm's initial predictions (two-stage arms).
INITIAL_DM = 'initial/delta_m'
#: Delta-m against the reference arm's mean at the last iteration (studies
#: with ``checkpoints``): the same yardstick at every iteration.
FINAL_REF_DM = 'delta_m_final_ref'


def mean_std(values: Sequence[float]) -> Tuple[float, Optional[float]]:
    """Mean and sample standard deviation (ddof 1; None for one value)."""
    n = len(values)
    if n == 0:
        raise ValueError('mean_std of no values')
    mean = sum(values) / n
    if n == 1:
        return mean, None
    var = sum((v - mean)**2 for v in values) / (n - 1)
    return mean, math.sqrt(var)


def per_seed(arm: dict, key: str) -> Dict[int, float]:
    """``{seed: value}`` of one metric of an arm's summary entry."""
    stat = arm['metrics'].get(key)
    if not stat or len(stat['values']) != len(arm['seeds']):
        return {}
    return dict(zip(arm['seeds'], stat['values']))


def staged(arm: dict) -> bool:
    """Whether an arm's runs scored initial predictions too."""
    return any(k.startswith('initial/') for k in arm['metrics'])


def paired_stat(arm: dict, other: dict, key: str,
                other_key: Optional[str] = None) -> Optional[dict]:
    """``arm[key] - other[other_key or key]`` per common seed: ``mean, std,
    n, values, seeds, better`` (seeds where the difference is > 0), or
    None without a common seed."""
    mine, theirs = per_seed(arm, key), per_seed(other, other_key or key)
    common = sorted(set(mine) & set(theirs))
    if not common:
        return None
    diffs = [mine[s] - theirs[s] for s in common]
    mean, std = mean_std(diffs)
    return dict(mean=mean, std=std, n=len(diffs), values=diffs,
                seeds=common, better=sum(d > 0 for d in diffs))


def learning_curve(summary: dict) -> List[dict]:
    """Per trained arm and per iteration (each of ``checkpoints``, then
    the last), the arm's progress and its gap to the reference.

    * ``delta_m``: delta-m paired by seed against the reference's run at
      the same iteration; ``initial_delta_m``: the same for the initial
      predictions (against the reference's initial predictions if it has
      two stages, else its only ones); ``gain``: the arm's final minus
      initial delta-m (what denoising adds). None for the reference.
    * ``progress``: delta-m against the reference's mean at the last
      iteration (``delta_m_final_ref``), mean ± std over seeds: one
      yardstick for every iteration, so a falling line is a falling test
      score. The reference arm has a curve of its own for this.
    * ``metrics``: ``{key: stat}`` of the primary metrics (``task/name``
      keys without ``initial/``) at that iteration.
    * ``train_loss``: the runs' logged training loss before the
      checkpoint (``{mean, std, n, values, seeds, window}``), or None.
    * ``progress_step`` and ``train_loss_step``: the change of
      ``progress`` and of the training loss since the arm's previous
      point, paired by seed (None at the first point). A test score that
      falls while the training loss falls is overfitting.

    Returns:
        list[dict]: ``arm, reference (bool), points`` with ``points`` a
        list of ``iteration, delta_m, initial_delta_m, gain, progress,
        metrics, train_loss, progress_step, train_loss_step`` (paired
        statistics of :func:`paired_stat`, seed statistics of the summary,
        or None).
    """
    by_name = {a['name']: a for a in summary['arms']}
    ref = summary.get('reference')
    last = summary.get('max_iters') or 'final'
    trained = [a for a in summary['arms']
               if a['kind'] == 'train+test' and not a.get('diagnostic')]
    trained.sort(key=lambda a: a['name'] != ref)
    curve = []
    for arm in trained:
        is_ref = arm['name'] == ref
        points = []
        previous = None
        for it in list(summary['checkpoints']) + [last]:
            def at(name):
                return by_name.get(name if it == last else
                                   checkpoint_arm_name(name, it))
            mine, theirs = at(arm['name']), at(ref) if ref else None
            if not mine or not mine['n']:
                continue
            point = dict(
                iteration=it, delta_m=None, initial_delta_m=None, gain=None,
                progress=_stat(mine['metrics'].get(FINAL_REF_DM)),
                metrics={
                    k: _stat(v)
                    for k, v in mine['metrics'].items()
                    if k.count('/') == 1 and not k.startswith('initial/')
                    and _primary(k)
                },
                train_loss=mine.get('train_loss'),
                progress_step=None, train_loss_step=None)
            if previous is not None:
                point['progress_step'] = paired_stat(mine, previous,
                                                     FINAL_REF_DM)
                point['train_loss_step'] = _paired_losses(
                    mine.get('train_loss'), previous.get('train_loss'))
            previous = mine
            if theirs and theirs['n'] and not is_ref:
                point['delta_m'] = paired_stat(mine, theirs, 'delta_m')
                point['initial_delta_m'] = paired_stat(
                    mine, theirs, INITIAL_DM,
                    INITIAL_DM if staged(theirs) else 'delta_m')
            if staged(mine):
                point['gain'] = paired_stat(mine, mine, 'delta_m',
                                            INITIAL_DM)
            points.append(point)
        curve.append(dict(arm=arm['name'], reference=is_ref, points=points))
    return curve


def _paired_losses(mine: Optional[dict],
                   before: Optional[dict]) -> Optional[dict]:
    """``mine - before`` of two ``train_loss`` entries per common seed,
    as :func:`paired_stat` (``better``: seeds whose loss fell)."""
    if not mine or not before:
        return None
    now = dict(zip(mine['seeds'], mine['values']))
    then = dict(zip(before['seeds'], before['values']))
    common = sorted(set(now) & set(then))
    if not common:
        return None
    diffs = [now[s] - then[s] for s in common]
    mean, std = mean_std(diffs)
    return dict(mean=mean, std=std, n=len(diffs), values=diffs,
                seeds=common, better=sum(d < 0 for d in diffs))


def _stat(stat: Optional[dict]) -> Optional[dict]:
    """``mean, std, n`` of a summary metric entry (None stays None)."""
    if not stat:
        return None
    return dict(mean=stat['mean'], std=stat['std'], n=stat['n'])


def _primary(key: str) -> bool:
    """Whether ``key`` is its task's primary metric."""
    try:
        return primary_metric_key(key.split('/')[0]) == key
    except (KeyError, ValueError):
        return False
