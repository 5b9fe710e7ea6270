# Copyright (c) diffmtl contributors. All rights reserved.
"""A study's summary: its finished runs collected per arm (mean, sample
standard deviation, per-seed values, delta-m, parameters, MACs, wall
times) and its learning curve."""
from typing import Dict, Optional, Tuple

from diffmtl.evaluation.functional.delta_m import delta_m, primary_metric_key
from .complexity import arm_complexity
from .planning import plan_runs
from .records import finished_record
from .statistics import FINAL_REF_DM, learning_curve, mean_std
from .study_file import checkpoint_arm_name, study_arm

__all__ = ['summarise_study']


def summarise_study(study: dict,
                    work_dir: str,
                    shape: Optional[Tuple[int, int]] = None,
                    record_root: Optional[str] = None) -> dict:
    """Collect the finished runs into the summary dict (see
    :mod:`diffmtl.studies`).

    Arms with no finished run are listed with ``n = 0``. Delta-m of each
    run uses the reference arm's mean primary metrics (at the same
    iteration for a checkpoint arm); it is omitted while the reference has
    no finished run. A study with ``checkpoints`` also gives every run
    ``delta_m_final_ref``, its delta-m against the reference's mean at the
    last iteration, one yardstick for the whole curve. ``train_loss``
    (mean over seeds of the records' logged training loss before the
    tested checkpoint) is there when the records have it.
    """
    runs = plan_runs(study, work_dir, record_root=record_root)
    results: Dict[str, Dict[int, dict]] = {}
    for r in runs:
        rec = finished_record(r)
        if rec is not None:
            results.setdefault(r['arm'], {})[r['seed']] = rec

    def metric_means(arm):
        per_seed = results.get(arm, {})
        keys = sorted({k for rec in per_seed.values() for k in rec['metrics']})
        return {
            k: mean_std([rec['metrics'][k] for rec in per_seed.values()
                         if k in rec['metrics']])[0]
            for k in keys
        }

    def primary_means(name):
        """The primary metrics' means of arm ``name`` (None: no run)."""
        if not name or not results.get(name):
            return None
        means = {}
        for k, v in metric_means(name).items():
            parts = k.split('/')
            if len(parts) == 2 and parts[0] != 'initial':
                try:
                    if primary_metric_key(parts[0]) == k:
                        means[k] = v
                except (KeyError, ValueError):
                    pass
        return means

    ref_name = study.get('reference')
    reference_of = {}  # delta-m base of each arm: the reference at its step
    for arm in study['arms']:
        if ref_name and arm.get('checkpoint') is not None:
            reference_of[arm['name']] = primary_means(
                checkpoint_arm_name(ref_name, arm['checkpoint']))
        else:
            reference_of[arm['name']] = primary_means(ref_name)
    final_reference = (primary_means(ref_name)
                       if study.get('checkpoints') else None)
    arms_out = []
    for arm in study['arms']:
        reference = reference_of[arm['name']]
        per_seed = results.get(arm['name'], {})
        seeds = sorted(per_seed)
        metrics = {}
        keys = sorted({k for s in seeds for k in per_seed[s]['metrics']})
        if reference:
            for s in seeds:
                m = per_seed[s]['metrics']
                final = {k: v for k, v in m.items()
                         if not k.startswith('initial/')}
                dm = delta_m(final, reference)
                if dm is not None:
                    m['delta_m'] = dm
                init = {k[len('initial/'):]: v for k, v in m.items()
                        if k.startswith('initial/')}
                dm = delta_m(init, reference) if init else None
                if dm is not None:
                    m['initial/delta_m'] = dm
                if final_reference is not None:
                    # one yardstick for every iteration: the curve's
                    # progress of each arm, the reference's own included
                    dm = delta_m(final, final_reference)
                    if dm is not None:
                        m[FINAL_REF_DM] = dm
            keys = sorted({k for s in seeds for k in per_seed[s]['metrics']})
        for k in keys:
            vals = [per_seed[s]['metrics'][k] for s in seeds
                    if k in per_seed[s]['metrics']]
            mean, std = mean_std(vals)
            metrics[k] = dict(mean=mean, std=std, n=len(vals), values=vals)
        src = study_arm(study, arm.get('eval_of', arm['name']))
        entry = dict(
            name=arm['name'],
            kind='test' if 'eval_of' in arm else 'train+test',
            config=src['config'],
            cfg_options=src['cfg_options'],
            test_options=arm['test_options'],
            eval_of=arm.get('eval_of'),
            checkpoint=arm.get('checkpoint'),
            diagnostic=bool(arm.get('diagnostic', False)),
            note=arm.get('note', ''),
            seeds=seeds,
            n=len(seeds),
            metrics=metrics)
        train_s = [per_seed[s]['train_seconds'] for s in seeds]
        test_s = [per_seed[s]['test_seconds'] for s in seeds]
        if train_s:
            # a run continued from a checkpoint only timed its last part
            entry['train_seconds'] = dict(
                mean=mean_std(train_s)[0], values=train_s,
                resumed=[bool(per_seed[s].get('resumed')) for s in seeds])
            entry['test_seconds'] = dict(
                mean=mean_std(test_s)[0], values=test_s)
        losses = [(s, per_seed[s]['train_loss']['mean']) for s in seeds
                  if (per_seed[s].get('train_loss') or {}).get('mean')
                  is not None]
        if losses:
            mean, std = mean_std([v for _, v in losses])
            entry['train_loss'] = dict(
                mean=mean, std=std, n=len(losses),
                values=[v for _, v in losses],
                seeds=[s for s, _ in losses],
                window=per_seed[losses[0][0]]['train_loss'].get('window'))
        if shape is not None:
            params, macs = arm_complexity(src['config_file'], {
                **study['train_options'], **src['cfg_options']
            }, shape)
            entry['params'] = params
            entry['macs'] = macs
        arms_out.append(entry)
    summary = dict(
        study=study['name'],
        study_file=study['path'],
        seeds=study['seeds'],
        reference=ref_name,
        reference_metrics=primary_means(ref_name),
        comparisons=[list(c) for c in study.get('comparisons') or []],
        input_shape=list(shape) if shape else None,
        checkpoints=list(study.get('checkpoints') or []),
        max_iters=study.get('max_iters'),
        arms=arms_out)
    if summary['checkpoints']:
        summary['curve'] = learning_curve(summary)
    return summary
