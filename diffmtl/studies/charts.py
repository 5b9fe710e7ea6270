# Copyright (c) diffmtl contributors. All rights reserved.
"""The charts of a study's summary: ``summary.png`` (per task, one bar
per arm) and ``summary_curve.png`` (the learning curve)."""
from typing import Sequence

from diffmtl.evaluation.functional.delta_m import primary_metric_key
from diffmtl.structures import get_task_spec

__all__ = ['summary_chart', 'curve_chart']


def summary_chart(summary: dict, tasks: Sequence[str], path: str) -> None:
    """Per task, one bar per arm (mean ± std over seeds); arms that were
    scored at both stages get a hatched bar for the initial predictions."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    keys = [primary_metric_key(t) for t in tasks] + ['delta_m']
    arms = [a for a in summary['arms']
            if a['n'] and not a.get('diagnostic')]
    cols = 4
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows),
                             squeeze=False)
    colors = plt.get_cmap('tab10').colors
    for ax, key in zip(axes.flat, keys):
        xs, labels = [], []
        for i, arm in enumerate(arms):
            m = arm['metrics']
            for j, (k, hatch) in enumerate(((f'initial/{key}', '//'),
                                            (key, None))):
                if k not in m:
                    continue
                x = i + (j - 0.5) * 0.4 if f'initial/{key}' in m else i
                stat = m[k]
                ax.bar(x, stat['mean'], width=0.38 if f'initial/{key}' in m
                       else 0.7, yerr=stat['std'] or 0, capsize=3,
                       color=colors[i % len(colors)], hatch=hatch,
                       edgecolor='black', linewidth=0.5,
                       alpha=0.55 if hatch else 1.0)
            xs.append(i)
            labels.append(arm['name'])
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=40, ha='right', fontsize=7)
        task = key.split('/')[0]
        better = 'higher' if key == 'delta_m' or get_task_spec(
            task).higher_is_better else 'lower'
        ax.set_title(f'{key} ({better} is better)', fontsize=9)
        vals = [arm['metrics'][k]['mean'] for arm in arms
                for k in (key, f'initial/{key}') if k in arm['metrics']]
        if vals and key != 'delta_m':
            lo, hi = min(vals), max(vals)
            pad = (hi - lo) * 0.6 + 1e-3 * max(abs(hi), 1)
            ax.set_ylim(lo - pad, hi + pad)
        ax.grid(axis='y', alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis('off')
    fig.suptitle(f'{summary["study"]}: mean ± std over seeds (hatched: '
                 'initial predictions of the same checkpoints)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curve_chart(summary: dict, path: str) -> None:
    """Four panels against iterations, mean ± std over seeds: each arm's
    delta-m paired against the reference at the same iteration, the
    denoising gain (final minus initial delta-m) of two-stage arms, every
    arm's delta-m against the reference's last iteration (its test-score
    progress, the reference's own included) and its logged training loss.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    curve = summary['curve']
    ref = summary['reference']
    last = summary.get('max_iters')
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    colors = plt.get_cmap('tab10').colors
    panels = (('delta_m', f'Δm % paired against {ref}', True),
              ('gain', 'denoising gain: final - initial Δm %', True),
              ('progress', f'Δm % against {ref} at the last iteration '
               '(test progress)', False),
              ('train_loss', 'training loss (each arm\'s own; trend only)',
               False))
    its = [p['iteration'] for e in curve for p in e['points']
           if isinstance(p['iteration'], int)]
    # arms side by side at each iteration, so that error bars do not hide
    # each other
    dodge = 0.012 * max(its, default=0)
    for ax, (key, title, zero_line) in zip(axes.flat, panels):
        for i, entry in enumerate(curve):
            pts = [p for p in entry['points'] if p.get(key)
                   and isinstance(p['iteration'], int)]
            if not pts:
                continue
            shift = dodge * (i - (len(curve) - 1) / 2)
            xs = [p['iteration'] + shift for p in pts]
            ys = [p[key]['mean'] for p in pts]
            es = [p[key]['std'] or 0 for p in pts]
            ax.errorbar(xs, ys, yerr=es, marker='o', capsize=3,
                        color=colors[i % len(colors)], label=entry['arm'],
                        linestyle='--' if entry.get('reference') else '-')
        if zero_line:
            ax.axhline(0, color='black', linewidth=0.8)
        ax.set_xlabel('training iteration')
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, 'no data', ha='center', va='center',
                    transform=ax.transAxes, color='grey')
    n = len(summary['seeds'])
    fig.suptitle(f'{summary["study"]}: mean ± std over up to {n} seeds'
                 + (f', {last} iterations' if last else ''), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
