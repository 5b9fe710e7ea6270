# Copyright (c) diffmtl contributors. All rights reserved.
"""``summary.md`` of a study: the table of final metrics (mean ± std over
seeds, delta-m, parameters, MACs, training time), diagnostics, initial
against final predictions, the paired tables and the learning curve."""
from typing import List, Optional, Sequence, Tuple

from diffmtl.evaluation.functional.delta_m import primary_metric_key
from diffmtl.structures import get_task_spec
from .statistics import INITIAL_DM, mean_std, per_seed, staged

__all__ = ['summary_markdown']


def _pm(stat: Optional[dict], digits: int = 2) -> str:
    if not stat:
        return '-'
    if stat['std'] is None:
        return f'{stat["mean"]:.{digits}f} (n=1)'
    return f'{stat["mean"]:.{digits}f} ± {stat["std"]:.{digits}f}'


def _has_resumed_run(arm: dict) -> bool:
    """Whether a seed of ``arm`` was continued from a checkpoint."""
    return any(arm.get('train_seconds', {}).get('resumed', ()))


def _train_minutes(arm: dict) -> str:
    """Mean training minutes over seeds, † when a run was resumed."""
    if 'train_seconds' not in arm:
        return '-'
    mark = '†' if _has_resumed_run(arm) else ''
    return f'{arm["train_seconds"]["mean"] / 60:.1f}{mark}'


def summary_markdown(summary: dict, tasks: Sequence[str]) -> str:
    """Markdown tables: final metrics (mean ± std over seeds, delta-m,
    params, MACs, train time) and initial vs final per task."""
    keys = [primary_metric_key(t) for t in tasks]
    arrows = ['↑' if get_task_spec(t).higher_is_better else '↓'
              for t in tasks]
    lines = [
        f'# Study `{summary["study"]}`', '',
        f'Seeds {summary["seeds"]}; mean ± sample std over the finished '
        f'seeds (n per arm); every number on the held-out test split. '
        f'Delta-m (%) against the mean of `{summary["reference"]}`.', ''
    ]
    head = ['arm', 'n'] + [f'{k} {a}' for k, a in zip(keys, arrows)] + [
        'Δm % ↑', 'params (M)', 'GMACs', 'train min'
    ]
    digits = [4 if k == 'depth/absErr' else 2 for k in keys]
    for diagnostic in (False, True):
        arms = [a for a in summary['arms']
                if bool(a.get('diagnostic')) == diagnostic]
        if not arms:
            continue
        if diagnostic:
            lines += [
                '', '## Diagnostics', '',
                'Evaluation-only arms on other data (their `note`); not '
                'comparable with the test-split table, so no delta-m.', ''
            ]
        lines += ['| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for arm in arms:
            m = arm['metrics']
            row = [arm['name'], str(arm['n'])]
            row += [_pm(m.get(k), d) for k, d in zip(keys, digits)]
            row.append('-' if diagnostic else _pm(m.get('delta_m')))
            row.append(f'{arm["params"] / 1e6:.2f}' if 'params' in arm
                       else '-')
            row.append(f'{arm["macs"] / 1e9:.2f}' if 'macs' in arm else '-')
            row.append(_train_minutes(arm))
            lines.append('| ' + ' | '.join(row) + ' |')
        if any(_has_resumed_run(a) for a in arms):
            lines.append(
                '\n† mean over seeds some of which were continued from a '
                'checkpoint after an interruption: those runs count only '
                'the training time after the resume.')
        for arm in arms:
            if arm.get('note'):
                lines.append(f'\n`{arm["name"]}`: {arm["note"]}')
    two_stage = [a for a in summary['arms'] if staged(a)]
    if two_stage:
        lines += [
            '', '## Initial vs final predictions', '',
            'The same checkpoints scored twice: the preliminary decoders\' '
            'initial predictions and the denoised final ones '
            '(`test_cfg.eval_stages`). Δ = final - initial, signed so '
            'that > 0 is better.', ''
        ]
        head = ['arm', 'task', 'initial', 'final', 'Δ (better > 0)',
                'seeds better']
        lines += ['| ' + ' | '.join(head) + ' |',
                  '|' + '---|' * len(head)]
        for arm in two_stage:
            m = arm['metrics']
            for t, k in zip(tasks + ['delta_m'], keys + ['delta_m']):
                ik = f'initial/{k}'
                if k not in m or ik not in m:
                    continue
                sign = 1 if t == 'delta_m' or get_task_spec(
                    t).higher_is_better else -1
                diffs = [
                    sign * (f - i)
                    for f, i in zip(m[k]['values'], m[ik]['values'])
                ]
                d = 4 if k == 'depth/absErr' else 2
                dm, ds = mean_std(diffs)
                lines.append('| ' + ' | '.join([
                    arm['name'], k,
                    _pm(m[ik], d),
                    _pm(m[k], d),
                    f'{dm:+.{d}f}' + (f' ± {ds:.{d}f}' if ds is not None
                                      else ''),
                    f'{sum(x > 0 for x in diffs)}/{len(diffs)}'
                ]) + ' |')
    lines += _paired_lines(summary, tasks, keys)
    lines += _curve_lines(summary, keys)
    return '\n'.join(lines) + '\n'


def _fmt_paired(stat: Optional[dict], digits: int = 2) -> str:
    if not stat:
        return '-'
    std = (f' ± {stat["std"]:.{digits}f}' if stat['std'] is not None
           else '')
    return (f'{stat["mean"]:+.{digits}f}{std} '
            f'({stat["better"]}/{stat["n"]})')


def _curve_lines(summary: dict, keys: Sequence[str]) -> List[str]:
    """The learning-curve tables of a study with ``checkpoints``: the gap
    to the reference paired by seed, then every arm's own progress (test
    metrics, delta-m against the reference's last iteration, training
    loss), with the metric ``keys`` in the study's task order."""
    curve = summary.get('curve')
    if not curve:
        return []
    ref = summary.get('reference')
    lines = [
        '', f'## Learning curve, paired against `{ref}` at each iteration',
        '',
        'Per seed, the arm\'s checkpoint minus the reference arm\'s '
        'checkpoint of the same seed and iteration; mean ± sample std over '
        'seeds, (seeds better / seeds). Gain: the arm\'s final minus '
        'initial delta-m (what denoising adds).', '',
        '| arm | iteration | Δm paired | initial Δm paired | gain |',
        '|---|---|---|---|---|'
    ]
    for entry in curve:
        if entry.get('reference'):
            continue
        for p in entry['points']:
            lines.append('| ' + ' | '.join([
                entry['arm'], str(p['iteration']),
                _fmt_paired(p['delta_m']),
                _fmt_paired(p['initial_delta_m']),
                _fmt_paired(p['gain'])
            ]) + ' |')
    present = {k for e in curve for p in e['points']
               for k in p.get('metrics') or {}}
    keys = [k for k in keys if k in present]
    window = next((p['train_loss'].get('window') for e in curve
                   for p in e['points'] if p.get('train_loss')), None)
    loss_note = (f'the mean logged training loss over the {window} '
                 'iterations before the checkpoint (each arm\'s own loss: '
                 'compare its trend, not its level, across arms)'
                 if window else 'not logged')
    head = ['arm', 'iteration'] + keys + [
        f'Δm vs `{ref}` at the last iteration',
        'change since the previous row', 'training loss',
        'change since the previous row']
    lines += [
        '', '## Progress of each arm over iterations', '',
        'Test metrics of every arm\'s checkpoints (mean ± sample std over '
        f'seeds), delta-m of each against `{ref}`\'s mean at the last '
        'iteration (one yardstick for every row, so a falling value is a '
        f'falling test score), and the training loss: {loss_note}. '
        'Changes are paired by seed, (seeds up / seeds) for the test '
        'score and (seeds down / seeds) for the loss: a test score that '
        'falls while the training loss falls is overfitting.', '',
        '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)
    ]
    for entry in curve:
        for p in entry['points']:
            metrics = p.get('metrics') or {}
            row = [entry['arm'], str(p['iteration'])]
            row += [_pm(metrics.get(k), 4 if k == 'depth/absErr' else 2)
                    for k in keys]
            row += [_pm(p.get('progress')),
                    _fmt_paired(p.get('progress_step')),
                    _pm(p.get('train_loss'), 3),
                    _fmt_paired(p.get('train_loss_step'), 3)]
            lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def _paired_rows(summary: dict, tasks: Sequence[str], keys: Sequence[str],
                 pairs: Sequence[Tuple[str, str]],
                 pair_label: bool) -> List[str]:
    """Table rows of per-seed differences ``arm - other`` for each
    ``(arm, other)`` pair whose two arms share finished seeds.

    Besides the final metrics and delta-m, an ``initial/delta_m`` row
    pairs the arm's initial predictions with the other arm's initial ones,
    or with its only ones when it has a single stage (a baseline).
    """
    by_name = {a['name']: a for a in summary['arms']}
    rows = []
    for name, other in pairs:
        arm, ref = by_name.get(name), by_name.get(other)
        if not arm or not ref or not arm['n'] or not ref['n']:
            continue
        for t, k in zip(list(tasks) + ['delta_m', 'delta_m'],
                        list(keys) + ['delta_m', INITIAL_DM]):
            if k == INITIAL_DM:
                mine = per_seed(arm, k)
                theirs = per_seed(ref, k) if staged(ref) else per_seed(
                    ref, 'delta_m')
            else:
                mine, theirs = per_seed(arm, k), per_seed(ref, k)
            common = sorted(set(mine) & set(theirs))
            if not common:
                continue
            sign = 1 if t == 'delta_m' or get_task_spec(
                t).higher_is_better else -1
            diffs = [sign * (mine[s] - theirs[s]) for s in common]
            d = 4 if k == 'depth/absErr' else 2
            dm, ds = mean_std(diffs)
            rows.append('| ' + ' | '.join([
                f'{name} - {other}' if pair_label else name, k,
                f'{dm:+.{d}f}' + (f' ± {ds:.{d}f}' if ds is not None else
                                  ''),
                f'{sum(x > 0 for x in diffs)}/{len(diffs)}',
                ', '.join(str(s) for s in common)
            ]) + ' |')
    return rows


def _paired_lines(summary: dict, tasks: Sequence[str],
                  keys: Sequence[str]) -> List[str]:
    """The "paired against the reference" table (per arm and metric, the
    per-seed difference to the reference arm's run of the same seed), then
    the study's own ``comparisons`` (``(arm, other)`` pairs) likewise."""
    by_name = {a['name']: a for a in summary['arms']}
    ref = by_name.get(summary.get('reference'))
    lines = []
    explain = ('signed so that > 0 is better; mean ± sample std over the '
               'seeds both arms have. `initial/delta_m`: the first arm\'s '
               'initial predictions against the other arm\'s initial ones, '
               'or its only ones if it has a single stage (the baselines).')
    if ref and ref['n']:
        pairs = [(a['name'], ref['name']) for a in summary['arms']
                 if a is not ref and not a.get('diagnostic')
                 and a.get('checkpoint') is None]
        rows = _paired_rows(summary, tasks, keys, pairs, False)
        if rows:
            head = ['arm', 'metric', f'arm - {ref["name"]} (better > 0)',
                    'seeds better', 'seeds']
            lines += [
                '', f'## Paired against `{ref["name"]}`', '',
                'Per seed, the arm\'s run minus the reference arm\'s run of '
                'the same seed (same initialisation seed, data order and '
                'augmentations), ' + explain, '',
                '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)
            ] + rows
    comparisons = [tuple(c) for c in summary.get('comparisons') or []]
    rows = _paired_rows(summary, tasks, keys, comparisons, True)
    if rows:
        head = ['arm - other', 'metric', 'difference (better > 0)',
                'seeds better', 'seeds']
        lines += [
            '', '## Paired comparisons', '',
            'The study\'s `comparisons`: per seed, the first arm\'s run '
            'minus the second arm\'s run of the same seed, ' + explain, '',
            '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)
        ] + rows
    return lines
