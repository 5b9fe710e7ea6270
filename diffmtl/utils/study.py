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
that iteration, and for arms scored at two stages the denoising gain
(final minus initial delta-m).

A ``diagnostic`` arm (evaluation on other data, explained by its
``note``) is listed in its own table of ``summary.md``, without delta-m,
and left out of the chart.

For each trained arm and seed, :func:`run_study` runs ``tools/train.py``
in ``<work_dir>/<arm>/seed_<seed>`` with ``randomness.seed=<seed>`` (and
``--resume`` when a checkpoint is already there, so a killed run
continues), then ``tools/test.py`` on its last checkpoint. An evaluation
arm (``eval_of``) tests the checkpoints of another arm with other test
options, so it costs no training. A finished step leaves a ``*.done.json``
record and is never repeated; rerunning the same command continues where
the last one stopped.

The summary (``summary.json``, ``summary.md``, ``summary.png``) gives, per
arm and metric, the mean, the sample standard deviation (ddof 1), n and the
per-seed values, delta-m of every run against the reference arm's mean
metrics, parameters, MACs and the training wall time. ``summary.md`` also
pairs runs by seed: every arm against the reference, and each
``(arm, other)`` of ``comparisons`` (an ablation against its full model).
"""
import json
import math
import os
import os.path as osp
import platform
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    'load_study', 'plan_runs', 'run_study', 'summarise_study',
    'write_summary', 'mean_std', 'format_options', 'checkpoint_arm_name',
    'learning_curve'
]

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


# ---------------------------------------------------------------------------
# study files
# ---------------------------------------------------------------------------
def load_study(path: str) -> dict:
    """Read and validate a study file.

    Returns:
        dict: ``name, seeds, reference, train_options, test_options, arms``
        (each arm with ``name`` and either ``config`` or ``eval_of``).

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
            full = cfg_path if osp.isabs(cfg_path) else osp.join(
                REPO_ROOT, cfg_path)
            if not osp.isfile(full):
                raise FileNotFoundError(f'{path}: arm {arm["name"]!r}: '
                                        f'config {cfg_path!r} not found')
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
        train_options=dict(cfg.get('train_options') or {}),
        test_options=dict(cfg.get('test_options') or {}),
        arms=arms)


def checkpoint_arm_name(arm: str, iteration: int) -> str:
    """Name of the evaluation arm that tests ``arm``'s checkpoint at
    ``iteration``: ``'<arm>@<iteration>'``."""
    return f'{arm}@{iteration}'


def _arm(study: dict, name: str) -> dict:
    return next(a for a in study['arms'] if a['name'] == name)


def format_options(options: Dict) -> List[str]:
    """``{key: value}`` -> ``['key=value', ...]`` for ``--cfg-options``.

    Values are written so that mmengine's ``DictAction`` reads them back
    unchanged: bools as ``True``/``False``, None as ``None``, tuples and
    lists in brackets.
    """
    def fmt(v):
        if isinstance(v, bool) or v is None:
            return str(v)
        if isinstance(v, (list, tuple)):
            inner = ','.join(fmt(x) for x in v)
            return f'({inner},)' if isinstance(v, tuple) else f'[{inner}]'
        if isinstance(v, str):
            return f"'{v}'" if ',' in v or v in ('True', 'False',
                                                 'None') else v
        return repr(v)

    return [f'{k}={fmt(v)}' for k, v in options.items()]


# ---------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------
def plan_runs(study: dict, work_dir: str,
              only: Optional[Sequence[str]] = None,
              record_root: Optional[str] = None) -> List[dict]:
    """Every (arm, seed) step in order: seed by seed (so that every arm
    has a first seed early), within a seed the trained arms in file order,
    then the evaluation-only arms (which need those checkpoints).

    ``record_root`` (the results folder) keeps a copy of every finished
    run's test record in ``<record_root>/runs/<arm>/seed_<s>.json``: small
    files to commit, so a study continued in a fresh checkout (without the
    work dir's checkpoints) does not repeat finished runs.

    Returns:
        list[dict]: ``arm, seed, kind ('train+test' | 'test'), source (the
        trained arm whose checkpoint is tested), run_dir, ckpt_dir, record
        (path or None), checkpoint (the iteration a checkpoint-evaluation
        run tests, else None), config, cfg_options, test_options``.
    """
    only = set(only or [])
    unknown = only - {a['name'] for a in study['arms']}
    if unknown:
        raise ValueError(f'--only names unknown arms {sorted(unknown)}; '
                         f'the study has {[a["name"] for a in study["arms"]]}')
    runs = []
    order = [a for a in study['arms'] if 'config' in a] + \
        [a for a in study['arms'] if 'eval_of' in a]
    for seed in study['seeds']:
        for arm in order:
            if only and arm['name'] not in only:
                continue
            src = _arm(study, arm.get('eval_of', arm['name']))
            runs.append(
                dict(
                    arm=arm['name'],
                    seed=seed,
                    kind='test' if 'eval_of' in arm else 'train+test',
                    source=src['name'],
                    run_dir=osp.join(work_dir, arm['name'], f'seed_{seed}'),
                    ckpt_dir=osp.join(work_dir, src['name'],
                                      f'seed_{seed}'),
                    record=None if record_root is None else osp.join(
                        record_root, 'runs', arm['name'],
                        f'seed_{seed}.json'),
                    checkpoint=arm.get('checkpoint'),
                    config=src['config'],
                    cfg_options={
                        **study['train_options'], **src['cfg_options'],
                        'randomness.seed': seed
                    },
                    test_options={
                        **study['test_options'], **src['cfg_options'],
                        **arm['test_options']
                    }))
    return runs


def _read_json(path: str) -> Optional[dict]:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_json(path: str, obj) -> None:
    """Write ``obj`` atomically (temporary file, fsync, rename)."""
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=False)
        f.write('\n')
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def finished_record(run: dict) -> Optional[dict]:
    """The run's test record from its work dir, else from its committed
    copy (``run['record']``); None while the run is not finished."""
    rec = _read_json(osp.join(run['run_dir'], 'test.done.json'))
    if rec is None and run.get('record'):
        rec = _read_json(run['record'])
    return rec


def _train_done(run: dict) -> str:
    """The record written once the training of ``run``'s checkpoint (its
    own, or its source arm's for an evaluation-only run) has finished."""
    return osp.join(run['ckpt_dir'], 'train.done.json')


def _latest_checkpoint(ckpt_dir: str) -> Optional[str]:
    """The checkpoint named by ``last_checkpoint``, else the newest
    ``iter_*.pth`` / ``epoch_*.pth``."""
    pointer = osp.join(ckpt_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            path = f.read().strip()
        if path and osp.isfile(path):
            return path
        if path and osp.isfile(osp.join(ckpt_dir, osp.basename(path))):
            return osp.join(ckpt_dir, osp.basename(path))
    best = None
    if osp.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            stem, ext = osp.splitext(name)
            if ext != '.pth' or '_' not in stem:
                continue
            prefix, _, num = stem.rpartition('_')
            if prefix in ('iter', 'epoch') and num.isdigit():
                if best is None or int(num) > best[0]:
                    best = (int(num), osp.join(ckpt_dir, name))
    return best[1] if best else None


def _code_commit() -> Optional[str]:
    """The git commit of the code that runs the study (``REPO_ROOT``),
    with ``+dirty`` when tracked files differ from it; None outside a git
    checkout."""
    def git(*args):
        return subprocess.run(['git', '-C', REPO_ROOT, *args],
                              capture_output=True, text=True, timeout=60)
    try:
        head = git('rev-parse', '--short=12', 'HEAD')
        if head.returncode != 0:
            return None
        dirty = git('status', '--porcelain', '--untracked-files=no')
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ('+dirty' if dirty.stdout.strip() else '')


def checkpoint_path(run: dict) -> str:
    """The checkpoint a checkpoint-evaluation run tests:
    ``<ckpt_dir>/iter_<iteration>.pth``."""
    return osp.join(run['ckpt_dir'], f'iter_{run["checkpoint"]}.pth')


def _run_logged(cmd: List[str], log_path: str, env: dict) -> float:
    """Run ``cmd`` with its output appended to ``log_path``; returns the
    wall seconds. Raises ``RuntimeError`` naming the log on failure."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    t0 = time.time()
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(cmd)}\n')
        log.flush()
        proc = subprocess.run(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            env=env)
    if proc.returncode != 0:
        raise RuntimeError(f'{cmd[1]} exited with {proc.returncode}; see '
                           f'{log_path}')
    return time.time() - t0


def train_command(run: dict, python: str = sys.executable) -> List[str]:
    cmd = [
        python,
        osp.join(REPO_ROOT, 'tools', 'train.py'), run['config'],
        '--work-dir', run['ckpt_dir']
    ]
    if _latest_checkpoint(run['ckpt_dir']):
        cmd.append('--resume')
    return cmd + ['--cfg-options'] + format_options(run['cfg_options'])


def test_command(run: dict, ckpt: str, python: str = sys.executable
                 ) -> List[str]:
    eval_dir = osp.join(run['run_dir'], 'eval')
    options = {
        **run['test_options'],
        'test_evaluator.output_dir': eval_dir,
        'test_evaluator.keep_results': False,
    }
    return [
        python,
        osp.join(REPO_ROOT, 'tools', 'test.py'), run['config'], ckpt,
        '--work-dir',
        osp.join(run['run_dir'], 'test_logs'), '--cfg-options'
    ] + format_options(options)


def execute_run(run: dict, env: Optional[dict] = None) -> dict:
    """Train (unless done) and test (unless done) one run.

    Returns:
        dict: The test record ``{metrics, checkpoint, train_seconds,
        resumed, test_seconds, commit, host}`` (also in
        ``<run_dir>/test.done.json``): ``commit`` is the code's git commit
        (``+dirty`` with uncommitted changes; None outside a checkout),
        ``host`` the machine's name.
    """
    env = dict(os.environ if env is None else env)
    env.setdefault('PYTHONUNBUFFERED', '1')
    done = finished_record(run)
    if done is not None:
        return done
    train_done = _train_done(run)
    if run['kind'] == 'train+test' and _read_json(train_done) is None:
        # A checkpoint already there: a killed run continues from it (and
        # its wall time then covers only this last part).
        resumed = _latest_checkpoint(run['ckpt_dir']) is not None
        seconds = _run_logged(train_command(run),
                              osp.join(run['ckpt_dir'], 'study_train.log'),
                              env)
        ckpt = _latest_checkpoint(run['ckpt_dir'])
        if ckpt is None:
            raise RuntimeError(f'training in {run["ckpt_dir"]} left no '
                               'checkpoint')
        _write_json(train_done,
                    dict(checkpoint=ckpt, seconds=seconds, resumed=resumed))
    record = _read_json(train_done)
    if record is None:
        raise RuntimeError(f'{run["arm"]} seed {run["seed"]}: no finished '
                           f'training of {run.get("source", run["arm"])} in '
                           f'{run["ckpt_dir"]} (no train.done.json)')
    test_done = osp.join(run['run_dir'], 'test.done.json')
    ckpt = record['checkpoint']
    if run.get('checkpoint') is not None:
        ckpt = checkpoint_path(run)
        if not osp.isfile(ckpt):
            raise RuntimeError(
                f'{run["arm"]} seed {run["seed"]}: {ckpt} does not exist; '
                f'the training of {run["source"]} must keep it (a '
                'checkpoint interval that divides the iteration and '
                'default_hooks.checkpoint.max_keep_ckpts=-1)')
    seconds = _run_logged(test_command(run, ckpt),
                          osp.join(run['run_dir'], 'study_test.log'), env)
    metrics = _read_json(osp.join(run['run_dir'], 'eval', 'metrics.json'))
    if metrics is None:
        raise RuntimeError(f'testing {ckpt} wrote no metrics.json under '
                           f'{run["run_dir"]}/eval')
    metrics = {
        k: v
        for k, v in metrics.items() if isinstance(v, (int, float))
    }
    result = dict(
        metrics=metrics,
        checkpoint=ckpt,
        train_seconds=record['seconds'],
        resumed=record.get('resumed', False),
        test_seconds=seconds,
        commit=_code_commit(),
        host=platform.node())
    _write_json(test_done, result)
    if run.get('record'):
        os.makedirs(osp.dirname(run['record']), exist_ok=True)
        _write_json(run['record'], result)
    return result


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def _missing_checkpoints(all_runs: Sequence[dict],
                         todo: Sequence[dict]) -> List[str]:
    """Why each evaluation-only run of ``todo`` cannot run: its source
    run has not finished training in ``ckpt_dir`` and is not among the runs
    that train in this invocation (e.g. ``--only`` left it out, or it
    finished on another machine and only its committed record is here)."""
    training = {(r['arm'], r['seed']) for r in todo
                if r['kind'] == 'train+test'}
    by_key = {(r['arm'], r['seed']): r for r in all_runs}
    problems = []
    for r in todo:
        key = (r['source'], r['seed'])
        if r['kind'] != 'test' or key in training:
            continue
        if _read_json(_train_done(r)) is not None:
            if r.get('checkpoint') is not None and not osp.isfile(
                    checkpoint_path(r)):
                problems.append(
                    f'{r["arm"]} seed {r["seed"]} tests '
                    f'{checkpoint_path(r)}, which the finished training of '
                    f'{r["source"]} did not keep (its checkpoint interval '
                    'must divide the iteration, with '
                    'default_hooks.checkpoint.max_keep_ckpts=-1)')
            continue
        src_run = by_key.get(key)
        src_done = src_run is not None and finished_record(src_run)
        if src_done:
            why = (f'{r["source"]} seed {r["seed"]}, which finished (record '
                   f'{src_run["record"] or src_run["run_dir"]}) but whose '
                   f'checkpoint is not in {r["ckpt_dir"]} (another machine '
                   f'or a removed work dir): copy that run directory here, '
                   f'or retrain it into this work dir with a --results '
                   f'folder that lacks its record')
        else:
            why = (f'{r["source"]} seed {r["seed"]} has not finished '
                   f'training in {r["ckpt_dir"]}: add --only '
                   f'{r["source"]} (or drop --only)')
        problems.append(f'{r["arm"]} seed {r["seed"]} tests the checkpoint '
                        f'of {why}')
    return problems


def run_study(study: dict,
              work_dir: str,
              only: Optional[Sequence[str]] = None,
              record_root: Optional[str] = None,
              dry_run: bool = False,
              max_runs: Optional[int] = None,
              execute: Callable[[dict], dict] = execute_run,
              log: Callable[[str], None] = print) -> List[dict]:
    """Run every unfinished step of ``study``; returns the plan.

    ``max_runs`` stops after that many runs that did work (to fit a
    time limit). Progress lines say run k of n, the elapsed time and
    an ETA from the mean time of the runs done so far.

    Raises:
        RuntimeError: Before any run starts, naming every evaluation-only
            run whose source checkpoint is neither in the work dir nor
            trained by this invocation.
    """
    runs = plan_runs(study, work_dir, only, record_root)
    todo = [r for r in runs if finished_record(r) is None]
    log(f'study {study["name"]}: {len(runs)} runs, {len(runs) - len(todo)} '
        f'finished, {len(todo)} to do, work dir {work_dir}')
    problems = _missing_checkpoints(
        plan_runs(study, work_dir, record_root=record_root), todo)
    if problems:
        # before any run starts, so nothing is trained for nothing
        raise RuntimeError('evaluation-only runs without a checkpoint to '
                           'test:\n  ' + '\n  '.join(problems))
    if dry_run:
        for r in todo:
            if r['kind'] == 'train+test' and _read_json(
                    _train_done(r)) is None:
                log('  ' + ' '.join(train_command(r)))
            ckpt = (checkpoint_path(r) if r.get('checkpoint') is not None
                    else '<last checkpoint>')
            log(f'  {" ".join(test_command(r, ckpt))}')
        return runs
    t0 = time.time()
    done = 0
    for k, r in enumerate(todo, 1):
        if max_runs is not None and done >= max_runs:
            log(f'stopping after {done} runs (--max-runs)')
            break
        elapsed = time.time() - t0
        eta = (elapsed / done * (len(todo) - k + 1)) if done else None
        log(f'[run {k} of {len(todo)}] {r["arm"]} seed {r["seed"]} '
            f'({r["kind"]}); elapsed {_fmt_time(elapsed)}, ETA '
            f'{_fmt_time(eta) if eta is not None else "?"}')
        execute(r)
        done += 1
    log(f'study {study["name"]}: {done} runs in '
        f'{_fmt_time(time.time() - t0)}')
    return runs


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------
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


#: ``{(config, model options as JSON, shape): (params, MACs)}``: the runner
#: summarises the whole study after every run, each arm's count once.
_COMPLEXITY: Dict[tuple, Tuple[int, int]] = {}


def _complexity(config: str, cfg_options: dict,
                shape: Tuple[int, int]) -> Tuple[int, int]:
    """(parameters, MACs per image) of a config's model at ``shape``
    (only the ``model.*`` options matter; computed once per process)."""
    import torch
    from mmengine.config import Config

    from diffmtl.models.utils.complexity import count_macs, count_parameters
    opts = {k: v for k, v in cfg_options.items() if k.startswith('model.')}
    key = (config, json.dumps(opts, sort_keys=True, default=repr),
           tuple(shape))
    if key in _COMPLEXITY:
        return _COMPLEXITY[key]
    sys.path.insert(0, osp.join(REPO_ROOT, 'tools', 'analysis_tools'))
    from get_flops import build_for_counting
    cfg = Config.fromfile(osp.join(REPO_ROOT, config)
                          if not osp.isabs(config) else config)
    if opts:
        cfg.merge_from_dict(opts)
    model = build_for_counting(cfg, 'meta')
    inputs = torch.empty((1, 3) + tuple(shape), device='meta')
    macs, _ = count_macs(model, inputs, forward=model._forward)
    _COMPLEXITY[key] = count_parameters(model), macs
    return _COMPLEXITY[key]


def summarise_study(study: dict,
                    work_dir: str,
                    shape: Optional[Tuple[int, int]] = None,
                    record_root: Optional[str] = None) -> dict:
    """Collect the finished runs into the summary dict (see module doc).

    Arms with no finished run are listed with ``n = 0``. Delta-m of each
    run uses the reference arm's mean primary metrics; it is omitted while
    the reference has no finished run.
    """
    from diffmtl.evaluation.functional.delta_m import (delta_m,
                                                       primary_metric_key)
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
            keys = sorted({k for s in seeds for k in per_seed[s]['metrics']})
        for k in keys:
            vals = [per_seed[s]['metrics'][k] for s in seeds
                    if k in per_seed[s]['metrics']]
            mean, std = mean_std(vals)
            metrics[k] = dict(mean=mean, std=std, n=len(vals), values=vals)
        src = _arm(study, arm.get('eval_of', arm['name']))
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
        if shape is not None:
            params, macs = _complexity(src['config'], {
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


def _paired_stat(arm: dict, other: dict, key: str,
                 other_key: Optional[str] = None) -> Optional[dict]:
    """``arm[key] - other[other_key or key]`` per common seed: ``mean, std,
    n, values, seeds, better`` (seeds where the difference is > 0), or
    None without a common seed."""
    mine, theirs = _per_seed(arm, key), _per_seed(other, other_key or key)
    common = sorted(set(mine) & set(theirs))
    if not common:
        return None
    diffs = [mine[s] - theirs[s] for s in common]
    mean, std = mean_std(diffs)
    return dict(mean=mean, std=std, n=len(diffs), values=diffs,
                seeds=common, better=sum(d > 0 for d in diffs))


def learning_curve(summary: dict) -> List[dict]:
    """Per trained arm other than the reference and per iteration (each of
    ``checkpoints``, then the last), delta-m paired by seed against the
    reference's run at the same iteration (``delta_m``), the same for the
    initial predictions (``initial_delta_m``, against the reference's
    initial predictions if it has two stages, else its only ones), and the
    denoising gain (``gain``: the arm's final minus initial delta-m).

    Returns:
        list[dict]: ``arm, points`` with ``points`` a list of ``iteration,
        delta_m, initial_delta_m, gain`` (each a paired statistic of
        :func:`_paired_stat` or None).
    """
    by_name = {a['name']: a for a in summary['arms']}
    ref = summary.get('reference')
    last = summary.get('max_iters') or 'final'
    trained = [a for a in summary['arms']
               if a['kind'] == 'train+test' and not a.get('diagnostic')]
    curve = []
    for arm in trained:
        if arm['name'] == ref:
            continue
        points = []
        for it in list(summary['checkpoints']) + [last]:
            def at(name):
                return by_name.get(name if it == last else
                                   checkpoint_arm_name(name, it))
            mine, theirs = at(arm['name']), at(ref) if ref else None
            if not mine or not mine['n']:
                continue
            point = dict(iteration=it, delta_m=None, initial_delta_m=None,
                         gain=None)
            if theirs and theirs['n']:
                point['delta_m'] = _paired_stat(mine, theirs, 'delta_m')
                point['initial_delta_m'] = _paired_stat(
                    mine, theirs, _INITIAL_DM,
                    _INITIAL_DM if _staged(theirs) else 'delta_m')
            if _staged(mine):
                point['gain'] = _paired_stat(mine, mine, 'delta_m',
                                             _INITIAL_DM)
            points.append(point)
        curve.append(dict(arm=arm['name'], points=points))
    return curve


def _pm(stat: Optional[dict], digits: int = 2) -> str:
    if not stat:
        return '-'
    if stat['std'] is None:
        return f'{stat["mean"]:.{digits}f} (n=1)'
    return f'{stat["mean"]:.{digits}f} ± {stat["std"]:.{digits}f}'


_INITIAL_DM = 'initial/delta_m'


def _staged(arm: dict) -> bool:
    """Whether an arm's runs scored initial predictions too."""
    return any(k.startswith('initial/') for k in arm['metrics'])


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
    from diffmtl.evaluation.functional.delta_m import primary_metric_key
    from diffmtl.structures import get_task_spec
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
    staged = [a for a in summary['arms'] if _staged(a)]
    if staged:
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
        for arm in staged:
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
    lines += _curve_lines(summary)
    return '\n'.join(lines) + '\n'


def _fmt_paired(stat: Optional[dict]) -> str:
    if not stat:
        return '-'
    std = f' ± {stat["std"]:.2f}' if stat['std'] is not None else ''
    return f'{stat["mean"]:+.2f}{std} ({stat["better"]}/{stat["n"]})'


def _curve_lines(summary: dict) -> List[str]:
    """The learning-curve table of a study with ``checkpoints``."""
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
        for p in entry['points']:
            lines.append('| ' + ' | '.join([
                entry['arm'], str(p['iteration']),
                _fmt_paired(p['delta_m']),
                _fmt_paired(p['initial_delta_m']),
                _fmt_paired(p['gain'])
            ]) + ' |')
    return lines


def curve_chart(summary: dict, path: str) -> None:
    """Two panels against iterations, mean ± std over seeds: each arm's
    delta-m paired against the reference at the same iteration, and the
    denoising gain (final minus initial delta-m) of two-stage arms."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    curve = summary['curve']
    last = summary.get('max_iters')
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colors = plt.get_cmap('tab10').colors
    panels = (('delta_m', f'Δm % paired against {summary["reference"]}'),
              ('gain', 'denoising gain: final - initial Δm %'))
    for ax, (key, title) in zip(axes, panels):
        for i, entry in enumerate(curve):
            pts = [p for p in entry['points'] if p[key]
                   and isinstance(p['iteration'], int)]
            if not pts:
                continue
            xs = [p['iteration'] for p in pts]
            ys = [p[key]['mean'] for p in pts]
            es = [p[key]['std'] or 0 for p in pts]
            ax.errorbar(xs, ys, yerr=es, marker='o', capsize=3,
                        color=colors[i % len(colors)], label=entry['arm'])
        ax.axhline(0, color='black', linewidth=0.8)
        ax.set_xlabel('training iteration')
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    n = len(summary['seeds'])
    fig.suptitle(f'{summary["study"]}: mean ± std over up to {n} seeds'
                 + (f', {last} iterations' if last else ''), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _per_seed(arm: dict, key: str) -> Dict[int, float]:
    """``{seed: value}`` of one metric of an arm's summary entry."""
    stat = arm['metrics'].get(key)
    if not stat or len(stat['values']) != len(arm['seeds']):
        return {}
    return dict(zip(arm['seeds'], stat['values']))


def _paired_rows(summary: dict, tasks: Sequence[str], keys: Sequence[str],
                 pairs: Sequence[Tuple[str, str]],
                 pair_label: bool) -> List[str]:
    """Table rows of per-seed differences ``arm - other`` for each
    ``(arm, other)`` pair whose two arms share finished seeds.

    Besides the final metrics and delta-m, an ``initial/delta_m`` row
    pairs the arm's initial predictions with the other arm's initial ones,
    or with its only ones when it has a single stage (a baseline).
    """
    from diffmtl.structures import get_task_spec
    by_name = {a['name']: a for a in summary['arms']}
    rows = []
    for name, other in pairs:
        arm, ref = by_name.get(name), by_name.get(other)
        if not arm or not ref or not arm['n'] or not ref['n']:
            continue
        for t, k in zip(list(tasks) + ['delta_m', 'delta_m'],
                        list(keys) + ['delta_m', _INITIAL_DM]):
            if k == _INITIAL_DM:
                mine = _per_seed(arm, k)
                theirs = _per_seed(ref, k) if _staged(ref) else _per_seed(
                    ref, 'delta_m')
            else:
                mine, theirs = _per_seed(arm, k), _per_seed(ref, k)
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


def summary_chart(summary: dict, tasks: Sequence[str], path: str) -> None:
    """Per task, one bar per arm (mean ± std over seeds); arms that were
    scored at both stages get a hatched bar for the initial predictions."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    from diffmtl.evaluation.functional.delta_m import primary_metric_key
    from diffmtl.structures import get_task_spec
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


def write_summary(summary: dict, out_dir: str,
                  tasks: Sequence[str]) -> List[str]:
    """Write ``summary.json``, ``summary.md`` and ``summary.png``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [osp.join(out_dir, n)
             for n in ('summary.json', 'summary.md', 'summary.png')]
    _write_json(paths[0], summary)
    with open(paths[1], 'w') as f:
        f.write(summary_markdown(summary, list(tasks)))
    if any(a['n'] for a in summary['arms']):
        summary_chart(summary, list(tasks), paths[2])
    else:
        paths = paths[:2]
    if summary.get('curve') and any(e['points'] for e in summary['curve']):
        paths.append(osp.join(out_dir, 'summary_curve.png'))
        curve_chart(summary, paths[-1])
    return paths
