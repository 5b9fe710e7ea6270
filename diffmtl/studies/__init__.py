# Copyright (c) diffmtl contributors. All rights reserved.
"""Seeded, resumable studies: train every (arm, seed), test, summarise.

A *study file* is a Python file (read with ``mmengine.Config``) holding::

    name = 'synthetic_one'               # optional, default: file name
    seeds = [0, 1, 2]
    reference = 'mtl_baseline_matched'   # arm whose mean is delta-m's base
    train_options = {...}                # cfg-options of every training run
    test_options = {...}                 # cfg-options of every test run
    arms = [
        dict(name='feature', config='configs/diffmtl/x.py',
             cfg_options={...}),           # trained arm
        dict(name='feature_noise_off', eval_of='feature',
             test_options={'model.inference_noise': False}),  # eval-only
        dict(name='feature_train', eval_of='feature', diagnostic=True,
             note='scored on the training split',
             test_options={'test_dataloader.dataset.split': 'train'}),
    ]
    comparisons = [('feature_wo_mtcond', 'feature')]  # optional pairs

A relative ``config`` is looked up from the current directory first and
then, when diffmtl runs from a checkout, under the repository root
(:func:`~diffmtl.studies.study_file.resolve_config`).

A study may also list ``checkpoints = [1500, 3000, ...]`` (iterations;
the trained arms must keep those checkpoints, e.g. with
``default_hooks.checkpoint.interval`` dividing them and
``max_keep_ckpts=-1``) and ``max_iters`` (the training length, a label):
every trained arm then gets an evaluation-only arm ``<arm>@<iteration>``
per listed iteration, which tests ``iter_<iteration>.pth`` of the same
run. Their delta-m is taken against the reference arm at the same
iteration, and the summary adds the learning curve (``curve`` in
``summary.json``, a table in ``summary.md``, ``summary_curve.png``): per
arm and iteration, delta-m paired by seed against the reference's run at
that iteration, for arms scored at two stages the denoising gain
(final minus initial delta-m), and every arm's progress: its test
metrics and its delta-m against the reference's last iteration (one
yardstick for the whole curve), beside its training loss. Every test
record holds ``train_loss``, the mean of the run's logged training loss
over the ``train_loss_window`` iterations (default 500) before the tested
checkpoint; the summary completes older records from the runs' logs.

A ``diagnostic`` arm (evaluation on other data, explained by its
``note``) is listed in its own table of ``summary.md``, without delta-m,
and left out of the chart.

For each trained arm and seed, :func:`run_study` runs
``python -m diffmtl.cli.train`` in ``<work_dir>/<arm>/seed_<seed>`` with
``randomness.seed=<seed>`` (and ``--resume`` when a checkpoint is already
there, so a killed run continues), then ``python -m diffmtl.cli.test`` on
its last checkpoint; both run in the current directory with the folder
holding this diffmtl first on ``PYTHONPATH``, so an installed diffmtl
runs a study as a checkout does. An evaluation arm (``eval_of``) tests
the checkpoints of another arm with other test options, so it costs no
training. A finished step leaves a ``*.done.json`` record and is never
repeated; rerunning the same command continues where the last one
stopped. Several runners of one study may run side by side (one per GPU,
each with its own ``CUDA_VISIBLE_DEVICES``): a runner works on a run only
while it holds the run directory's lock
(:func:`~diffmtl.studies.running.run_lock`), skips the runs that another
runner holds, and the evaluations of a checkpoint another runner is still
training, and names them at the end.

The summary (``summary.json``, ``summary.md``, ``summary.png``) gives, per
arm and metric, the mean, the sample standard deviation (ddof 1), n and the
per-seed values, delta-m of every run against the reference arm's mean
metrics, parameters, MACs and the training wall time. ``summary.md`` also
pairs runs by seed: every arm against the reference, and each
``(arm, other)`` of ``comparisons`` (an ablation against its full model).

Modules: :mod:`~diffmtl.studies.study_file` (reading a study file),
:mod:`~diffmtl.studies.planning` (runs and their commands),
:mod:`~diffmtl.studies.records` (what the runs leave on disk),
:mod:`~diffmtl.studies.running` (running them),
:mod:`~diffmtl.studies.statistics` (seed statistics, learning curve),
:mod:`~diffmtl.studies.complexity` (parameters and MACs),
:mod:`~diffmtl.studies.summary` (the summary dict),
:mod:`~diffmtl.studies.markdown`, :mod:`~diffmtl.studies.charts` and
:mod:`~diffmtl.studies.reports` (the summary files).
"""
from .charts import curve_chart, summary_chart
from .complexity import arm_complexity
from .markdown import summary_markdown
from .planning import format_options, plan_runs, test_command, train_command
from .records import checkpoint_path, finished_record
from .reports import write_summary
from .running import backfill_training_loss, execute_run, run_study
from .statistics import learning_curve, mean_std
from .study_file import checkpoint_arm_name, load_study, resolve_config
from .summary import summarise_study

__all__ = [
    'load_study', 'checkpoint_arm_name', 'resolve_config', 'plan_runs',
    'format_options', 'train_command', 'test_command', 'finished_record',
    'checkpoint_path', 'execute_run', 'run_study', 'backfill_training_loss',
    'mean_std',
    'learning_curve', 'arm_complexity', 'summarise_study',
    'summary_markdown', 'summary_chart', 'curve_chart', 'write_summary'
]
