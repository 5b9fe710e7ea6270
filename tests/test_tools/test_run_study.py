# Copyright (c) diffmtl contributors. All rights reserved.
"""``tools/analysis_tools/run_study.py`` on tiny arms with 2 seeds: every
run trains and tests, a finished run is never re-run, a run killed
mid-training continues from its checkpoint, and the summary's means and
standard deviations are those of the per-seed results."""
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from diffmtl.datasets.synthetic import generate_synthetic_scenes
from diffmtl.engine.work_dir_lock import WorkDirLock, WorkDirLockedError
from diffmtl.studies.running import run_lock
from diffmtl.utils.study import (format_options, load_study, mean_std,
                                 plan_runs, run_study, summarise_study,
                                 train_command)
from tool_runner import REPO, tool_env

RUN_STUDY = REPO / 'tools' / 'analysis_tools' / 'run_study.py'
MAX_ITERS = 12

STUDY = '''
tasks = ['semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth']
seeds = [0, 1]
input_shape = (96, 128)
reference = 'base'
_small = {{
    'model.backbone.stem_channels': 8, 'model.backbone.base_channels': 8,
    'model.neck.in_channels': [8, 16, 32, 64],
    'model.neck.out_channels': 16, 'model.channels': 16}}
_loader = {{'num_workers': 0, 'persistent_workers': False,
           'dataset.data_root': '{root}'}}
train_options = {{
    'train_cfg.max_iters': {iters}, 'train_cfg.val_interval': 100000,
    'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
    'param_scheduler': None, 'train_dataloader.batch_size': 2,
    'default_hooks.checkpoint.interval': 2,
    'default_hooks.logger.interval': 1,
    'default_hooks.checkpoint.max_keep_ckpts': 2,
    **{{'train_dataloader.' + k: v for k, v in _loader.items()}}}}
test_options = {{
    'test_dataloader.dataset.split': 'test',
    'test_dataloader.batch_size': 2,
    **{{'test_dataloader.' + k: v for k, v in _loader.items()}}}}
arms = [
    dict(name='feat', config='configs/diffmtl/synthetic_one_r18.py',
         cfg_options=dict(_small, **{{'model.denoiser.num_blocks': 1,
                                      'model.denoiser.head_convs': 1}})),
    dict(name='base',
         config='configs/baselines/mtl_baseline_synthetic_one_r18.py',
         cfg_options=dict(_small, **{{'model.decoder.num_blocks': 1}})),
    dict(name='feat_off', eval_of='feat',
         test_options={{'model.inference_noise': False}}),
]
'''


@pytest.fixture(scope='module')
def study_file(tmp_path_factory):
    base = tmp_path_factory.mktemp('study')
    root = base / 'scenes'
    generate_synthetic_scenes(
        str(root), num_train=6, num_val=1, num_test=3, seed=2, workers=1)
    path = base / 'tiny_study.py'
    path.write_text(STUDY.format(root=root, iters=MAX_ITERS))
    return path


def _cmd(study_file, work, *extra):
    return [
        sys.executable,
        str(RUN_STUDY),
        str(study_file), '--work-dir',
        str(work), '--results',
        str(work / 'results'), *extra
    ]


def _run(cmd, cwd):
    env = tool_env()
    proc = subprocess.run(cmd, cwd=str(cwd), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def test_plan_and_options(study_file, tmp_path):
    study = load_study(str(study_file))
    runs = plan_runs(study, str(tmp_path))
    # seed by seed; trained arms before the eval arm; eval reuses feat
    assert [(r['arm'], r['seed']) for r in runs] == [
        ('feat', 0), ('base', 0), ('feat_off', 0), ('feat', 1),
        ('base', 1), ('feat_off', 1)
    ]
    off = runs[2]
    assert off['kind'] == 'test'
    assert off['ckpt_dir'] == str(tmp_path / 'feat' / 'seed_0')
    assert off['test_options']['model.inference_noise'] is False
    assert off['test_options']['model.channels'] == 16  # arm's own model
    assert runs[0]['cfg_options']['randomness.seed'] == 0
    assert runs[3]['cfg_options']['randomness.seed'] == 1
    # no checkpoint yet: no --resume; one there: --resume
    assert '--resume' not in train_command(runs[0])
    os.makedirs(runs[0]['ckpt_dir'])
    open(os.path.join(runs[0]['ckpt_dir'], 'iter_2.pth'), 'w').close()
    assert '--resume' in train_command(runs[0])
    assert format_options({'a': None, 'b': False, 'c': [1, 2], 'd': (3, ),
                           'e': 'x'}) == [
                               'a=None', 'b=False', 'c=[1,2]', 'd=(3,)',
                               'e=x'
                           ]
    with pytest.raises(ValueError, match='unknown arms'):
        plan_runs(study, str(tmp_path), only=['nope'])


def test_runs_are_the_package_modules(study_file, tmp_path):
    """Training and testing run ``python -m diffmtl.cli.train`` / ``test``
    (no script of the checkout), with the diffmtl that runs the study
    first on the runs' ``PYTHONPATH``."""
    from diffmtl.studies.planning import test_command
    from diffmtl.studies.running import PACKAGE_PARENT, run_env
    run = plan_runs(load_study(str(study_file)), str(tmp_path))[0]
    assert train_command(run)[:5] == [
        sys.executable, '-m', 'diffmtl.cli.train', run['config'],
        '--work-dir'
    ]
    assert test_command(run, 'c.pth')[:5] == [
        sys.executable, '-m', 'diffmtl.cli.test', run['config'], 'c.pth'
    ]
    assert PACKAGE_PARENT == str(REPO)  # this checkout
    env = run_env({'PYTHONPATH': os.pathsep.join(['/elsewhere',
                                                  PACKAGE_PARENT])})
    assert env['PYTHONPATH'].split(os.pathsep) == [PACKAGE_PARENT,
                                                   '/elsewhere']
    assert env['PYTHONUNBUFFERED'] == '1'


def test_relative_configs_resolve_from_the_current_directory_first(
        tmp_path, monkeypatch):
    from diffmtl.studies import study_file
    rel = 'configs/diffmtl/synthetic_one_r18.py'
    path = tmp_path / 'study.py'
    path.write_text("seeds = [0]\narms = [dict(name='a', config="
                    f"'{rel}'), dict(name='b', config='own.py')]\n")
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'own.py').write_text('model = dict()\n')
    monkeypatch.chdir(work)

    def files():
        study = load_study(str(path))
        return {r['arm']: r['config'] for r in plan_runs(study, 'w')}

    # not in the current directory: the checkout's root
    assert files() == {'a': str(REPO / rel), 'b': 'own.py'}
    # a copy in the current directory comes first
    (work / rel).parent.mkdir(parents=True)
    (work / rel).write_text('model = dict()\n')
    assert files() == {'a': rel, 'b': 'own.py'}
    # the summary names the config as the study file writes it
    summary = summarise_study(load_study(str(path)), 'w')
    assert [a['config'] for a in summary['arms']] == [rel, 'own.py']
    # an installed diffmtl has no checkout to fall back on
    (work / rel).unlink()
    monkeypatch.setattr(study_file, 'CHECKOUT_ROOT', None)
    with pytest.raises(FileNotFoundError,
                       match=f"'{rel}' not found from the current "
                       'directory$'):
        load_study(str(path))


def test_bad_study_files(tmp_path):
    bad = tmp_path / 'bad.py'
    bad.write_text("seeds = [0]\narms = [dict(name='a', eval_of='b')]\n")
    with pytest.raises(ValueError, match="eval_of 'b'"):
        load_study(str(bad))
    bad.write_text("seeds = []\narms = []\n")
    with pytest.raises(ValueError, match='seeds'):
        load_study(str(bad))
    bad.write_text("seeds = [0]\narms = [dict(name='a', config='x.py')]\n")
    with pytest.raises(FileNotFoundError, match="'x.py'"):
        load_study(str(bad))
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_study(str(tmp_path / 'missing.py'))


def test_eval_arm_without_checkpoint_fails_before_any_run(
        study_file, tmp_path):
    """An evaluation-only arm whose source checkpoint is missing is refused
    before anything runs, and the error says why and what to do."""
    study = load_study(str(study_file))
    work, results = tmp_path / 'work', tmp_path / 'results'

    def never(run):
        pytest.fail(f'{run["arm"]} seed {run["seed"]} ran')

    # 1. the source arm has not trained, and --only leaves it out
    with pytest.raises(RuntimeError) as err:
        run_study(study, str(work), only=['feat_off'],
                  record_root=str(results), execute=never, log=lambda m: 0)
    msg = str(err.value)
    assert 'feat_off seed 0 tests the checkpoint of feat seed 0' in msg
    assert 'feat_off seed 1' in msg and 'add --only feat' in msg
    assert str(work / 'feat' / 'seed_0') in msg
    # with the source arm in the same invocation it would train first
    runs = run_study(study, str(work), only=['feat', 'feat_off'],
                     record_root=str(results), dry_run=True,
                     log=lambda m: 0)
    assert [r['source'] for r in runs] == ['feat', 'feat', 'feat', 'feat']

    # 2. the source finished on another machine: its committed record is
    #    here, its checkpoint is not
    rec = results / 'runs' / 'feat' / 'seed_1.json'
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps(dict(metrics={'semseg/mIoU': 1.0},
                                   checkpoint='/elsewhere/iter_12.pth',
                                   train_seconds=1.0, test_seconds=1.0)))
    with pytest.raises(RuntimeError) as err:
        run_study(study, str(work), only=['feat', 'feat_off'],
                  record_root=str(results), execute=never, log=lambda m: 0)
    msg = str(err.value)
    assert 'feat_off seed 0' not in msg  # feat seed 0 trains first
    assert f'feat seed 1, which finished (record {rec})' in msg
    assert f'checkpoint is not in {work / "feat" / "seed_1"}' in msg
    assert not work.exists()  # nothing ran, nothing was written


def _fake_runner(calls, also_finish=None):
    """An ``execute`` that records its calls and leaves the files of a
    finished run (``also_finish``: ``{(arm, seed): run}`` it finishes too,
    as another runner would)."""

    def execute(run):
        calls.append((run['arm'], run['seed']))
        if run['kind'] == 'train+test':
            os.makedirs(run['ckpt_dir'], exist_ok=True)
            with open(os.path.join(run['ckpt_dir'], 'train.done.json'),
                      'w') as f:
                json.dump(dict(checkpoint='x.pth', seconds=1.0), f)
        for r in [run] + list((also_finish or {}).pop(
                (run['arm'], run['seed']), [])):
            os.makedirs(r['run_dir'], exist_ok=True)
            with open(os.path.join(r['run_dir'], 'test.done.json'),
                      'w') as f:
                json.dump(dict(metrics={'semseg/mIoU': 1.0}), f)

    return execute


def test_runners_skip_runs_another_runner_holds(study_file, tmp_path):
    """Two runners of one study never work on the same run: a held run is
    skipped, and so are the evaluations of a checkpoint still in training;
    the next invocation does what was skipped, and no lock stays held."""
    study = load_study(str(study_file))
    work, results = tmp_path / 'work', tmp_path / 'results'
    runs = plan_runs(study, str(work), record_root=str(results))
    everything = [(r['arm'], r['seed']) for r in runs]
    other = run_lock(str(work / 'feat' / 'seed_0'))  # "another runner"
    other.acquire()
    calls, logs = [], []
    run_study(study, str(work), record_root=str(results),
              execute=_fake_runner(calls), log=logs.append)
    assert calls == [k for k in everything
                     if k not in {('feat', 0), ('feat_off', 0)}]
    text = '\n'.join(logs)
    me = f"host '{socket.gethostname()}', pid {os.getpid()}, started "
    assert f'skipped: another runner works on it ({me}' in text
    assert (f'skipped: it tests feat seed 0, which another runner is '
            f'training ({me}') in text
    assert ('2 runs left to the runners that hold them or their '
            'checkpoints: feat seed 0, feat_off seed 0') in text
    # the training a runner starts takes its own lock, another file
    with WorkDirLock(str(work / 'feat' / 'seed_0')):
        pass
    other.release()

    calls.clear()
    run_study(study, str(work), record_root=str(results),
              execute=_fake_runner(calls), log=logs.append)
    assert calls == [('feat', 0), ('feat_off', 0)]
    for r in runs:  # every lock was given back
        with run_lock(r['run_dir']):
            pass


def test_a_run_finished_meanwhile_is_not_repeated(study_file, tmp_path):
    study = load_study(str(study_file))
    work = tmp_path / 'work'
    runs = plan_runs(study, str(work))
    first, last = runs[0], runs[-1]
    calls, logs = [], []
    run_study(study, str(work), log=logs.append,
              execute=_fake_runner(calls, {(first['arm'], first['seed']):
                                           [last]}))
    assert (last['arm'], last['seed']) not in calls
    assert len(calls) == len(runs) - 1
    assert 'finished by another runner meanwhile' in '\n'.join(logs)


def test_a_killed_runner_leaves_its_runs_to_the_next(tmp_path):
    """The runner's lock dies with its process."""
    run_dir = tmp_path / 'arm' / 'seed_0'
    code = ('import sys, time; from diffmtl.studies.running import run_lock;'
            ' run_lock(sys.argv[1]).acquire(); print("held", flush=True); '
            'time.sleep(300)')
    proc = subprocess.Popen([sys.executable, '-c', code,
                             str(run_dir)], env=tool_env(),
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == 'held'
        lock = run_lock(str(run_dir))
        with pytest.raises(WorkDirLockedError):
            lock.acquire()
        assert f'pid {proc.pid}' in lock.describe_holder()
    finally:
        proc.kill()
        proc.wait()
    with run_lock(str(run_dir)):
        pass


def test_mean_std():
    assert mean_std([1.0]) == (1.0, None)
    m, s = mean_std([1.0, 2.0, 4.0])
    assert m == pytest.approx(7 / 3)
    assert s == pytest.approx(math.sqrt(((1 - 7 / 3)**2 + (2 - 7 / 3)**2 +
                                         (4 - 7 / 3)**2) / 2))


@pytest.mark.slow
def test_killed_run_resumes_finished_runs_are_skipped(study_file, tmp_path):
    work = tmp_path / 'work'
    first = work / 'feat' / 'seed_0'
    # 1. kill the study (its whole process group) once the first run has
    #    written a checkpoint but not finished training
    proc = subprocess.Popen(
        _cmd(study_file, work), cwd=str(tmp_path), env=tool_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True)
    deadline = time.time() + 300
    try:
        while not (first / 'iter_4.pth').exists():
            assert proc.poll() is None, 'the study ended before a checkpoint'
            assert time.time() < deadline, 'no checkpoint within 300 s'
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (first / 'train.done.json').exists()

    # 2. the same command finishes the study; the killed run resumed
    out = _run(_cmd(study_file, work), tmp_path)
    assert 'study tiny_study: 6 runs, 0 finished, 6 to do' in out
    log = (first / 'study_train.log').read_text()
    commands = [ln for ln in log.splitlines() if ln.startswith('$ ')]
    assert len(commands) == 2 and '--resume' in commands[1]
    assert '--resume' not in commands[0]
    second = log[log.index(commands[1]):]
    assert f'Iter(train) [{MAX_ITERS}/{MAX_ITERS}]' in second
    assert f'Iter(train) [ 1/{MAX_ITERS}]' not in second
    assert json.loads((first / 'train.done.json').read_text())['resumed']
    for arm in ('feat', 'base', 'feat_off'):
        for seed in (0, 1):
            assert (work / arm / f'seed_{seed}' / 'test.done.json').is_file()

    # 3. again: nothing to do, no run repeated
    stamps = {
        p: p.stat().st_mtime_ns
        for p in work.rglob('*.done.json')
    }
    out = _run(_cmd(study_file, work), tmp_path)
    assert '6 runs, 6 finished, 0 to do' in out
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # 3b. a fresh checkout: the work dir is gone, the committed records in
    #     the results folder say every run is finished
    import shutil
    records = sorted((work / 'results' / 'runs').rglob('seed_*.json'))
    assert len(records) == 6
    fresh = tmp_path / 'fresh'
    shutil.copytree(work / 'results', fresh / 'results')
    out = _run(_cmd(study_file, fresh), tmp_path)
    assert '6 runs, 6 finished, 0 to do' in out
    again = json.loads((fresh / 'results' / 'summary.json').read_text())

    # 4. the summary: per-seed values, their mean and sample std
    summary = json.loads((work / 'results' / 'summary.json').read_text())
    assert (work / 'results' / 'summary.md').is_file()
    assert (work / 'results' / 'summary.png').stat().st_size > 1000
    arms = {a['name']: a for a in summary['arms']}
    assert set(arms) == {'feat', 'base', 'feat_off'}
    for name, arm in arms.items():
        assert arm['n'] == 2 and arm['seeds'] == [0, 1]
        recs = [
            json.loads((work / name / f'seed_{s}' /
                        'test.done.json').read_text())['metrics']
            for s in (0, 1)
        ]
        for key in ('semseg/mIoU', 'depth/absErr', 'normals/mErr'):
            vals = [r[key] for r in recs]
            stat = arm['metrics'][key]
            assert stat['values'] == vals
            assert stat['mean'] == pytest.approx(sum(vals) / 2)
            assert stat['std'] == pytest.approx(abs(vals[0] - vals[1]) /
                                                math.sqrt(2))
        assert 'initial/semseg/mIoU' in arm['metrics'] or name == 'base'
        assert arm['params'] > 0 and arm['macs'] > 0
    # delta-m against the reference arm's mean: the reference's own mean
    # delta-m is 0 by construction
    assert arms['base']['metrics']['delta_m']['mean'] == pytest.approx(
        0, abs=1e-9)
    assert arms['feat_off']['params'] == arms['feat']['params']
    # the fresh checkout summarises the same numbers from the records
    assert [a['metrics'] for a in again['arms']] == [
        a['metrics'] for a in summary['arms']
    ]
    assert arms['feat_off']['test_options'] == {
        'model.inference_noise': False
    }


def test_complexity_is_counted_once_per_model(monkeypatch):
    """The runner summarises after every run: each arm's model is built
    for counting once per process; only model options change the key."""
    from diffmtl.apis import complexity as counting
    from diffmtl.studies import complexity
    monkeypatch.setattr(complexity, '_CACHE', {})
    built = []
    real = counting.build_for_counting

    def counting_build(*args, **kwargs):
        built.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(counting, 'build_for_counting', counting_build)
    cfg = str(REPO / 'configs' / 'diffmtl' / 'synthetic_one_r18.py')
    small = {
        'model.backbone.stem_channels': 8,
        'model.backbone.base_channels': 8,
        'model.neck.in_channels': [8, 16, 32, 64],
        'model.neck.out_channels': 16, 'model.channels': 16
    }
    count = complexity.arm_complexity
    first = count(cfg, dict(small, **{'train_cfg.max_iters': 5}), (96, 128))
    assert count(cfg, small, (96, 128)) == first
    assert len(built) == 1
    fewer = count(cfg, dict(small, **{'model.decoder.num_blocks': 1}),
                  (96, 128))
    assert len(built) == 2 and fewer[0] < first[0]
    assert count(cfg, small, (48, 64))[1] < first[1]
    assert len(built) == 3


CURVE_STUDY = STUDY.replace("seeds = [0, 1]", "seeds = [0]").replace(
    "'default_hooks.checkpoint.max_keep_ckpts': 2,",
    "'default_hooks.checkpoint.max_keep_ckpts': -1,").replace(
        "    dict(name='feat_off', eval_of='feat',\n"
        "         test_options={{'model.inference_noise': False}}),\n",
        '') + ('checkpoints = [4]\nmax_iters = {iters}\n'
               'train_loss_window = 3\n')


@pytest.mark.slow
def test_checkpoint_curve_study_tests_every_listed_checkpoint(
        study_file, tmp_path):
    """``checkpoints``: each trained arm's kept checkpoint at a listed
    iteration is tested as ``<arm>@<iteration>``, with delta-m against
    the reference at the same iteration, and the summary carries the
    paired learning curve."""
    path = tmp_path / 'curve_study.py'
    root = study_file.parent / 'scenes'
    path.write_text(CURVE_STUDY.format(root=root, iters=MAX_ITERS))
    study = load_study(str(path))
    assert study['name'] == 'curve_study'
    work = tmp_path / 'work'
    runs = plan_runs(study, str(work))
    assert [(r['arm'], r['kind'], r['checkpoint']) for r in runs] == [
        ('feat', 'train+test', None), ('base', 'train+test', None),
        ('feat@4', 'test', 4), ('base@4', 'test', 4)
    ]
    assert runs[2]['ckpt_dir'] == str(work / 'feat' / 'seed_0')
    out = _run(_cmd(path, work), tmp_path)
    assert '4 runs, 0 finished, 4 to do' in out
    rec = {
        r['arm']: json.loads((work / r['arm'] / 'seed_0' /
                              'test.done.json').read_text())
        for r in runs
    }
    assert rec['feat@4']['checkpoint'] == str(
        work / 'feat' / 'seed_0' / 'iter_4.pth')
    assert rec['feat']['checkpoint'].endswith(f'iter_{MAX_ITERS}.pth')
    # provenance next to the data: the code's commit, the machine and
    # the threads of the runs (tool_env sets OMP_NUM_THREADS=1)
    assert rec['feat']['host'] and rec['feat@4']['host']
    assert rec['feat']['threads'] == rec['feat@4']['threads'] == '1'
    assert rec['feat']['commit'] is None or len(
        rec['feat']['commit'].split('+')[0]) == 12
    # an early checkpoint is another model than the last one
    assert rec['feat@4']['metrics'] != rec['feat']['metrics']

    def delta_m(arm, base):
        # written out: mean over tasks of +-(arm - base) / base, in %
        lower = {'normals/mErr', 'depth/absErr'}
        keys = ['semseg/mIoU', 'human_parts/mIoU', 'sal/maxF',
                'normals/mErr', 'edge/odsF', 'depth/absErr']
        terms = [(-1 if k in lower else 1) * (arm[k] - base[k]) / base[k]
                 for k in keys]
        return 100 * sum(terms) / len(terms)

    summary = json.loads((work / 'results' / 'summary.json').read_text())
    arms = {a['name']: a for a in summary['arms']}
    expected = delta_m(rec['feat@4']['metrics'], rec['base@4']['metrics'])
    assert arms['feat@4']['metrics']['delta_m']['mean'] == pytest.approx(
        expected, rel=1e-6)
    assert arms['feat@4']['checkpoint'] == 4
    (curve, ) = [e for e in summary['curve'] if not e['reference']]
    assert curve['arm'] == 'feat'
    assert [p['iteration'] for p in curve['points']] == [4, MAX_ITERS]
    at4 = curve['points'][0]
    assert at4['delta_m']['values'] == [pytest.approx(expected, rel=1e-6)]
    gain = expected - delta_m(
        {k[len('initial/'):]: v for k, v in rec['feat@4']['metrics'].items()
         if k.startswith('initial/')}, rec['base@4']['metrics'])
    assert at4['gain']['values'] == [pytest.approx(gain, rel=1e-6)]
    # the training loss before each tested checkpoint, from the run's own
    # log (logger interval 1): the mean over iterations 2-4 and 10-12
    logged = {}
    for line in next((work / 'feat' / 'seed_0').glob(
            '*/vis_data/scalars.json')).read_text().splitlines():
        entry = json.loads(line)
        logged[entry['iter']] = entry['loss']
    for arm, last in (('feat@4', 4), ('feat', MAX_ITERS)):
        want = [logged[i] for i in range(last - 2, last + 1)]
        assert rec[arm]['train_loss']['mean'] == pytest.approx(
            sum(want) / 3, rel=1e-9)
        assert rec[arm]['train_loss']['n'] == 3
    assert [p['train_loss']['values'] for p in curve['points']] == [
        [rec['feat@4']['train_loss']['mean']],
        [rec['feat']['train_loss']['mean']]
    ]
    # progress: the same yardstick (the reference's last iteration) at
    # every iteration; the reference has a curve of its own
    (base_curve, ) = [e for e in summary['curve'] if e['reference']]
    assert base_curve['arm'] == 'base'
    assert at4['progress']['mean'] == pytest.approx(
        delta_m(rec['feat@4']['metrics'], rec['base']['metrics']), rel=1e-6)
    assert base_curve['points'][-1]['progress']['mean'] == pytest.approx(
        0.0, abs=1e-9)
    assert at4['metrics']['semseg/mIoU']['mean'] == pytest.approx(
        rec['feat@4']['metrics']['semseg/mIoU'])
    md = (work / 'results' / 'summary.md').read_text()
    assert '## Learning curve, paired against `base`' in md
    assert '## Progress of each arm over iterations' in md
    assert (work / 'results' / 'summary_curve.png').stat().st_size > 1000
    # nothing left to do; a checkpoint that was not kept is named up front
    assert '4 runs, 4 finished, 0 to do' in _run(_cmd(path, work), tmp_path)
    (work / 'results' / 'runs' / 'feat@4' / 'seed_0.json').unlink()
    (work / 'feat@4' / 'seed_0' / 'test.done.json').unlink()
    (work / 'feat' / 'seed_0' / 'iter_4.pth').unlink()
    with pytest.raises(RuntimeError, match='iter_4.pth, which the finished'):
        run_study(study, str(work), record_root=str(work / 'results'),
                  log=lambda *_: None)


def test_learning_curve_pairs_seeds_at_each_iteration():
    from diffmtl.utils.study import learning_curve

    def arm(name, kind, checkpoint, dm, init=None):
        metrics = {'delta_m': dict(values=dm)}
        if init is not None:
            metrics['initial/delta_m'] = dict(values=init)
        return dict(name=name, kind=kind, checkpoint=checkpoint,
                    seeds=[0, 1], n=2, metrics=metrics)

    summary = dict(
        reference='base', checkpoints=[10], max_iters=20, arms=[
            arm('feat', 'train+test', None, [1.0, 3.0], [0.0, 1.0]),
            arm('base', 'train+test', None, [0.5, -0.5]),
            arm('feat@10', 'test', 10, [-2.0, -1.0], [-4.0, -4.0]),
            arm('base@10', 'test', 10, [1.0, -1.0]),
        ])
    base_curve, curve = learning_curve(summary)
    assert base_curve['arm'] == 'base' and base_curve['reference']
    assert base_curve['points'][0]['delta_m'] is None
    at10, at20 = curve['points']
    assert at10['iteration'] == 10 and at20['iteration'] == 20
    assert at10['delta_m']['values'] == [-3.0, 0.0]
    assert at10['delta_m']['better'] == 0
    # a single-stage reference: initial predictions against its only ones
    assert at10['initial_delta_m']['values'] == [-5.0, -3.0]
    assert at10['gain']['values'] == [2.0, 3.0]
    assert at20['delta_m']['values'] == [0.5, 3.5]
    assert at20['delta_m']['mean'] == pytest.approx(2.0)
    assert at20['delta_m']['std'] == pytest.approx(math.sqrt(4.5))


def test_bad_checkpoint_lists(tmp_path):
    bad = tmp_path / 'bad.py'
    cfg = "seeds = [0]\narms = [dict(name='a', config='configs/diffmtl/" \
          "synthetic_one_r18.py')]\n"
    for extra, match in [('checkpoints = [0]', 'positive'),
                         ('checkpoints = [5, 5]', 'distinct'),
                         ('checkpoints = [5]\nmax_iters = 5', 'larger')]:
        bad.write_text(cfg + extra + '\n')
        with pytest.raises(ValueError, match=match):
            load_study(str(bad))


def test_learning_curve_progress_and_training_loss():
    from diffmtl.utils.study import learning_curve

    def arm(name, checkpoint, final_ref_dm, miou, loss=None):
        metrics = {
            'delta_m': dict(values=[0.0, 0.0], mean=0.0, std=0.0, n=2),
            'delta_m_final_ref': dict(values=final_ref_dm,
                                      mean=sum(final_ref_dm) / 2,
                                      std=None, n=2),
            'semseg/mIoU': dict(values=miou, mean=sum(miou) / 2, std=None,
                                n=2),
            'semseg/mAcc': dict(values=miou, mean=0.0, std=None, n=2),
        }
        entry = dict(name=name, kind='train+test' if checkpoint is None
                     else 'test', checkpoint=checkpoint, seeds=[0, 1], n=2,
                     metrics=metrics)
        if loss is not None:
            entry['train_loss'] = dict(mean=loss, std=0.0, n=2,
                                       values=[loss, loss], seeds=[0, 1])
        return entry

    summary = dict(reference='base', checkpoints=[10], max_iters=20, arms=[
        arm('feat', None, [1.0, 2.0], [50.0, 52.0], loss=1.5),
        arm('base', None, [0.5, -0.5], [48.0, 50.0]),
        arm('feat@10', 10, [-3.0, -1.0], [40.0, 42.0], loss=2.5),
        arm('base@10', 10, [-2.0, -2.0], [39.0, 41.0]),
    ])
    base_curve, curve = learning_curve(summary)
    assert [p['progress']['mean'] for p in curve['points']] == [-2.0, 1.5]
    assert [p['progress']['mean'] for p in base_curve['points']] == [-2.0,
                                                                     0.0]
    # only the primary metric of each task
    assert set(curve['points'][0]['metrics']) == {'semseg/mIoU'}
    assert curve['points'][0]['metrics']['semseg/mIoU']['mean'] == 41.0
    assert [p['train_loss']['mean'] for p in curve['points']] == [2.5, 1.5]
    assert [p['train_loss'] for p in base_curve['points']] == [None, None]
    # changes since the previous point, paired by seed
    first, second = curve['points']
    assert first['progress_step'] is None
    assert first['train_loss_step'] is None
    assert second['progress_step']['values'] == [4.0, 3.0]
    assert second['progress_step']['better'] == 2
    assert second['train_loss_step']['values'] == [-1.0, -1.0]
    assert second['train_loss_step']['better'] == 2
    assert base_curve['points'][1]['train_loss_step'] is None


def _write_scalars(path, rows, tail=''):
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(r) + '\n' for r in rows) + tail)


def test_training_loss_reads_every_launch_of_a_run(tmp_path):
    """The logged loss of a run killed after its checkpoint at 4 and
    resumed from there: the resumed launch's values win where both logged
    an iteration, a line cut by the kill is skipped, and the window is
    ``(iteration - window, iteration]``."""
    from diffmtl.studies.records import logged_losses, training_loss
    first = tmp_path / '20260101_000000' / 'vis_data' / 'scalars.json'
    second = tmp_path / '20260101_010000' / 'vis_data' / 'scalars.json'
    _write_scalars(first, [dict(iter=i, loss=10.0 + i, lr=0.1)
                           for i in (2, 4, 6)] + [dict(iter=8, lr=0.1)],
                   tail='{"iter": 8, "lo')
    _write_scalars(second, [dict(iter=i, loss=float(i)) for i in (6, 8)])
    assert logged_losses(str(tmp_path)) == {2: 12.0, 4: 14.0, 6: 6.0,
                                           8: 8.0}
    got = training_loss(str(tmp_path), 8, window=4)
    assert got == dict(mean=7.0, n=2, first=6, last=8, window=4)
    assert training_loss(str(tmp_path), 4, window=3)['mean'] == 13.0
    assert training_loss(str(tmp_path), 4, window=1)['n'] == 1
    assert training_loss(str(tmp_path), 1, window=1) is None
    assert training_loss(str(tmp_path / 'missing'), 8, window=4) is None
    _write_scalars(tmp_path / 'x' / 'vis_data' / 'scalars.json',
                   [dict(iter=8, loss=float('nan'))])
    assert training_loss(str(tmp_path), 8, window=4) is None


def test_backfill_adds_the_training_loss_to_older_records(tmp_path):
    from diffmtl.studies.records import read_json
    from diffmtl.utils.study import backfill_training_loss
    ckpt_dir = tmp_path / 'work' / 'a' / 'seed_0'
    _write_scalars(ckpt_dir / '20260101_000000' / 'vis_data' /
                   'scalars.json', [dict(iter=i, loss=float(i))
                                    for i in (1, 2, 3)])
    old = dict(metrics={'semseg/mIoU': 1.0},
               checkpoint=str(ckpt_dir / 'iter_3.pth'))
    (ckpt_dir / 'test.done.json').write_text(json.dumps(old))
    record = tmp_path / 'results' / 'runs' / 'a' / 'seed_0.json'
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps(old))
    run = dict(arm='a', seed=0, run_dir=str(ckpt_dir),
               ckpt_dir=str(ckpt_dir), record=str(record), checkpoint=None,
               train_loss_window=2)
    assert backfill_training_loss([run]) == 1
    for path in (ckpt_dir / 'test.done.json', record):
        rec = read_json(str(path))
        assert rec['train_loss']['mean'] == 2.5
        assert rec['metrics'] == old['metrics']
    assert backfill_training_loss([run]) == 0


def test_bad_train_loss_window(tmp_path):
    bad = tmp_path / 'bad.py'
    for value in ('0', "'500'", 'True'):
        bad.write_text("seeds = [0]\narms = [dict(name='a', config='configs/"
                       "diffmtl/synthetic_one_r18.py')]\n"
                       f'train_loss_window = {value}\n')
        with pytest.raises(ValueError, match='train_loss_window'):
            load_study(str(bad))
