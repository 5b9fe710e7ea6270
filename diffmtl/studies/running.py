# Copyright (c) diffmtl contributors. All rights reserved.
"""Running a study: every unfinished run as subprocesses (training, then
testing), its record written once it finished, resumably."""
import os
import os.path as osp
import platform
import subprocess
import time
from typing import Callable, List, Optional, Sequence

from diffmtl.engine.work_dir_lock import (STUDY_LOCK_FILE, WorkDirLock,
                                          WorkDirLockedError)

from .planning import plan_runs, test_command, train_command
from .records import (checkpoint_iteration, checkpoint_path, code_commit,
                      finished_record, latest_checkpoint, read_json,
                      train_done_path, training_loss, write_json)
from .study_file import DEFAULT_TRAIN_LOSS_WINDOW

__all__ = [
    'execute_run', 'run_study', 'run_env', 'run_training_loss',
    'backfill_training_loss', 'run_lock', 'PACKAGE_PARENT'
]

#: The folder holding the diffmtl package that runs the study (the
#: repository root of a checkout, ``site-packages`` of an installation):
#: first on the runs' ``PYTHONPATH``, so that they import the same code.
PACKAGE_PARENT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def run_env(env: Optional[dict] = None) -> dict:
    """The environment of a run's subprocesses: ``env`` (default: this
    process's) with unbuffered output and :data:`PACKAGE_PARENT` first on
    ``PYTHONPATH``."""
    env = dict(os.environ if env is None else env)
    env.setdefault('PYTHONUNBUFFERED', '1')
    paths = [p for p in env.get('PYTHONPATH', '').split(os.pathsep)
             if p and p != PACKAGE_PARENT]
    env['PYTHONPATH'] = os.pathsep.join([PACKAGE_PARENT] + paths)
    return env


def _run_logged(cmd: List[str], log_path: str, env: dict) -> float:
    """Run ``cmd`` in the current directory with its output appended to
    ``log_path``; returns the wall seconds. Raises ``RuntimeError`` naming
    the log on failure."""
    os.makedirs(osp.dirname(log_path), exist_ok=True)
    t0 = time.time()
    with open(log_path, 'a') as log:
        log.write(f'\n$ {" ".join(cmd)}\n')
        log.flush()
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                              env=env)
    if proc.returncode != 0:
        what = cmd[2] if cmd[1:2] == ['-m'] else cmd[1]
        raise RuntimeError(f'{what} exited with {proc.returncode}; see '
                           f'{log_path}')
    return time.time() - t0


def run_training_loss(run: dict, ckpt: str) -> Optional[dict]:
    """The logged training loss of the run that wrote checkpoint ``ckpt``
    of ``run`` (:func:`~diffmtl.studies.records.training_loss` over the
    study's ``train_loss_window`` before its iteration); None for a
    checkpoint not named ``iter_<n>.pth`` or without logs."""
    iteration = run.get('checkpoint')
    if iteration is None:
        iteration = checkpoint_iteration(ckpt)
    if iteration is None:
        return None
    return training_loss(
        run['ckpt_dir'], iteration,
        run.get('train_loss_window', DEFAULT_TRAIN_LOSS_WINDOW))


def backfill_training_loss(runs: Sequence[dict]) -> int:
    """Add ``train_loss`` to the finished records of ``runs`` written
    without it, where the run's logs are in its work dir; the work dir's
    ``test.done.json`` and the committed copy are rewritten atomically.

    Returns:
        int: The number of records completed.
    """
    done = 0
    for run in runs:
        rec = finished_record(run)
        if rec is None or rec.get('train_loss') is not None:
            continue
        loss = run_training_loss(run, rec.get('checkpoint') or '')
        if loss is None:
            continue
        rec['train_loss'] = loss
        for path in (osp.join(run['run_dir'], 'test.done.json'),
                     run.get('record')):
            if path and osp.isfile(path):
                write_json(path, rec)
        done += 1
    return done


def execute_run(run: dict, env: Optional[dict] = None) -> dict:
    """Train (unless done) and test (unless done) one run.

    Both run in the current directory, with :func:`run_env`'s
    environment.

    Returns:
        dict: The test record ``{metrics, checkpoint, train_seconds,
        resumed, test_seconds, train_loss, commit, host, threads}`` (also
        in ``<run_dir>/test.done.json``): ``train_loss`` is the
        checkpoint's logged training loss (:func:`run_training_loss`, None
        without logs), ``commit`` is the code's git commit (``+dirty``
        with uncommitted changes; None for an installed package or outside
        a checkout), ``host`` the machine's name,
        ``threads`` the runs' ``OMP_NUM_THREADS`` (None: torch's default,
        one per core), which their wall times depend on.
    """
    env = run_env(env)
    done = finished_record(run)
    if done is not None:
        return done
    train_done = train_done_path(run)
    if run['kind'] == 'train+test' and read_json(train_done) is None:
        # A checkpoint already there: a killed run continues from it (and
        # its wall time then covers only this last part).
        resumed = latest_checkpoint(run['ckpt_dir']) is not None
        seconds = _run_logged(train_command(run),
                              osp.join(run['ckpt_dir'], 'study_train.log'),
                              env)
        ckpt = latest_checkpoint(run['ckpt_dir'])
        if ckpt is None:
            raise RuntimeError(f'training in {run["ckpt_dir"]} left no '
                               'checkpoint')
        write_json(train_done,
                   dict(checkpoint=ckpt, seconds=seconds, resumed=resumed))
    record = read_json(train_done)
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
    metrics = read_json(osp.join(run['run_dir'], 'eval', 'metrics.json'))
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
        train_loss=run_training_loss(run, ckpt),
        commit=code_commit(),
        host=platform.node(),
        threads=env.get('OMP_NUM_THREADS'))
    write_json(test_done, result)
    if run.get('record'):
        os.makedirs(osp.dirname(run['record']), exist_ok=True)
        write_json(run['record'], result)
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
        if read_json(train_done_path(r)) is not None:
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
            if r['kind'] == 'train+test' and read_json(
                    train_done_path(r)) is None:
                log('  ' + ' '.join(train_command(r)))
            ckpt = (checkpoint_path(r) if r.get('checkpoint') is not None
                    else '<last checkpoint>')
            log(f'  {" ".join(test_command(r, ckpt))}')
        return runs
    t0 = time.time()
    done = 0
    skipped = []
    for k, r in enumerate(todo, 1):
        if max_runs is not None and done >= max_runs:
            log(f'stopping after {done} runs (--max-runs)')
            break
        elapsed = time.time() - t0
        eta = (elapsed / done * (len(todo) - k + 1)) if done else None
        log(f'[run {k} of {len(todo)}] {r["arm"]} seed {r["seed"]} '
            f'({r["kind"]}); elapsed {_fmt_time(elapsed)}, ETA '
            f'{_fmt_time(eta) if eta is not None else "?"}')
        busy = _held_elsewhere(r)
        if busy is not None:
            log(f'  skipped: {busy}')
            skipped.append(r)
            continue
        lock = run_lock(r['run_dir'])
        try:
            lock.acquire()
        except WorkDirLockedError:
            log('  skipped: another runner works on it '
                f'({lock.describe_holder()})')
            skipped.append(r)
            continue
        try:
            if finished_record(r) is not None:
                log('  finished by another runner meanwhile')
                continue
            execute(r)
            done += 1
        finally:
            lock.release()
    log(f'study {study["name"]}: {done} runs in '
        f'{_fmt_time(time.time() - t0)}')
    if skipped:
        log(f'{len(skipped)} runs left to the runners that hold them or '
            'their checkpoints: ' + ', '.join(
                f'{r["arm"]} seed {r["seed"]}' for r in skipped) +
            '; run this command again once those runners have stopped')
    return runs


def run_lock(run_dir: str) -> WorkDirLock:
    """The study runner's lock of a run directory
    (:data:`~diffmtl.engine.work_dir_lock.STUDY_LOCK_FILE`; the training it
    starts there takes the training lock, another file)."""
    return WorkDirLock(run_dir, purpose='run_study.py',
                       lock_file=STUDY_LOCK_FILE)


def _held_elsewhere(run: dict) -> Optional[str]:
    """Why an evaluation-only run must wait: its source run has not
    finished training and another runner is training it; None otherwise
    (the run's own lock is taken in :func:`run_study`)."""
    if (run['kind'] != 'test' or not osp.isdir(run['ckpt_dir'])
            or read_json(train_done_path(run)) is not None):
        return None
    source = run_lock(run['ckpt_dir'])
    try:
        source.acquire()
    except WorkDirLockedError:
        return (f'it tests {run["source"]} seed {run["seed"]}, which another '
                f'runner is training ({source.describe_holder()})')
    source.release()
    return None
