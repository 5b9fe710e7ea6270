# Copyright (c) diffmtl contributors. All rights reserved.
"""One training run per work dir: a second tools/train.py on the same work
dir stops at once naming the first; a lock left by a run that ended (even
by kill -9) is taken over with a warning."""
import json
import logging
import os
import socket
import subprocess
import sys
import time

import pytest
from mmengine.logging import MMLogger
from resume_utils import (kill, run_train, start_train, wait_for,
                          write_noisy_cfg)
from rng_components import KILL_ENV, SLOW_WRITE_ENV

from diffmtl.engine import work_dir_lock
from diffmtl.engine.work_dir_lock import (LOCK_FILE, WorkDirLock,
                                         WorkDirLockedError)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def _write_lock(work_dir, **record):
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / LOCK_FILE).write_text(json.dumps(record))


class _Warnings:

    def __enter__(self):
        self.records = []
        self.logger = MMLogger.get_current_instance()
        records = self.records

        class Handler(logging.Handler):

            def emit(self, record):
                records.append(record.getMessage())

        self.handler = Handler(level=logging.WARNING)
        self.logger.addHandler(self.handler)
        return self.records

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)


def test_a_held_lock_refuses_a_second_holder(tmp_path):
    work_dir = tmp_path / 'work'
    first = WorkDirLock(str(work_dir)).acquire()
    try:
        record = json.loads((work_dir / LOCK_FILE).read_text())
        assert record['host'] == socket.gethostname()
        assert record['pid'] == os.getpid()
        with pytest.raises(WorkDirLockedError) as err:
            WorkDirLock(str(work_dir)).acquire()
        msg = str(err.value)
        assert f'pid {os.getpid()}' in msg and socket.gethostname() in msg
        assert str(work_dir / LOCK_FILE) in msg
    finally:
        first.release()
    assert not (work_dir / LOCK_FILE).exists()
    with WorkDirLock(str(work_dir)):  # free again
        pass


def test_a_lock_left_by_an_ended_run_is_taken_over(tmp_path):
    work_dir = tmp_path / 'work'
    pid = _dead_pid()
    _write_lock(work_dir, host=socket.gethostname(), pid=pid,
                command='tools/train.py old')
    with _Warnings() as warnings:
        lock = WorkDirLock(str(work_dir)).acquire()
    try:
        assert any('stale lock' in w and f'pid {pid}' in w for w in warnings)
        assert json.loads(
            (work_dir / LOCK_FILE).read_text())['pid'] == os.getpid()
    finally:
        lock.release()


def test_without_flock_staleness_comes_from_host_and_pid(tmp_path,
                                                         monkeypatch):
    monkeypatch.setattr(work_dir_lock, 'fcntl', None)
    here = socket.gethostname()
    # a live process on this host holds it
    work_dir = tmp_path / 'live'
    _write_lock(work_dir, host=here, pid=os.getpid(),
                process_start=work_dir_lock.process_start_time(os.getpid()))
    with pytest.raises(WorkDirLockedError, match=f'pid {os.getpid()}'):
        WorkDirLock(str(work_dir)).acquire()
    # another host cannot be checked: refused, with how to remove it
    work_dir = tmp_path / 'other'
    _write_lock(work_dir, host='elsewhere', pid=1)
    with pytest.raises(WorkDirLockedError, match='delete .*' + LOCK_FILE):
        WorkDirLock(str(work_dir)).acquire()
    # a dead process, or a pid reused by a later process: stale
    for name, record in [('dead', dict(pid=_dead_pid())),
                         ('reused', dict(pid=os.getpid(), process_start=1.0))]:
        work_dir = tmp_path / name
        _write_lock(work_dir, host=here, **record)
        with _Warnings() as warnings:
            lock = WorkDirLock(str(work_dir)).acquire()
        assert any('stale lock' in w for w in warnings), (name, warnings)
        lock.release()
        assert not (work_dir / LOCK_FILE).exists()


@pytest.mark.slow
def test_train_stops_at_once_on_a_locked_work_dir(tmp_path):
    cfg = write_noisy_cfg(tmp_path / 'cfg.py')
    work_dir = tmp_path / 'work'
    with WorkDirLock(str(work_dir), purpose='another run'):
        start = time.time()
        proc = run_train(cfg, work_dir)
        elapsed = time.time() - start
    assert proc.returncode != 0, proc.stdout[-3000:]
    assert 'is in use by another training run' in proc.stdout
    assert f'pid {os.getpid()}' in proc.stdout
    # nothing of a run was started: no log folder, no checkpoint
    assert sorted(p.name for p in work_dir.iterdir()) == []
    assert elapsed < 60


@pytest.mark.slow
def test_two_train_runs_on_one_work_dir(tmp_path):
    cfg = write_noisy_cfg(tmp_path / 'cfg.py')
    work_dir = tmp_path / 'work'
    # every checkpoint write of the first run pauses for 4 s, so it is
    # still training while the second starts
    first = start_train(cfg, work_dir, env={SLOW_WRITE_ENV: '4'})
    try:
        wait_for(lambda: (work_dir / LOCK_FILE).exists(), first)
        second = run_train(cfg, work_dir)
        assert first.poll() is None, 'the first run ended too early'
        assert second.returncode != 0
        assert 'is in use by another training run' in second.stdout
        assert f'pid {first.pid}' in second.stdout
        assert first.wait(timeout=300) == 0
    finally:
        kill(first)
    assert not (work_dir / LOCK_FILE).exists()  # released at the end
    assert (work_dir / 'iter_12.pth').is_file()


@pytest.mark.slow
def test_resume_after_kill_takes_over_the_stale_lock(tmp_path):
    cfg = write_noisy_cfg(tmp_path / 'cfg.py')
    work_dir = tmp_path / 'work'
    killed = run_train(cfg, work_dir, env={KILL_ENV: '6'})
    assert killed.returncode == -9
    assert (work_dir / LOCK_FILE).exists()  # left behind by kill -9
    resumed = run_train(cfg, work_dir, '--resume')
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert 'taking over the stale lock' in resumed.stdout
    assert not (work_dir / LOCK_FILE).exists()
