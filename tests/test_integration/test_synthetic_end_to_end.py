# Copyright (c) diffmtl contributors. All rights reserved.
"""The real stack end to end through the tools, on tiny synthetic scenes.

``tools/train.py`` trains DiffusionMTL (the ``make demo`` config, shrunk by
``--cfg-options``) on generated scenes, ``--resume`` continues from its
checkpoint, ``tools/test.py CFG CKPT --out`` evaluates it and exports every
task's predictions, and ``tools/dist_train.sh`` trains with two CPU ranks.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from diffmtl.datasets.synthetic import generate_synthetic_scenes

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CFG = REPO / 'configs' / 'diffmtl' / 'synthetic_one_r18.py'
TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
NUM_VAL = 4


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHON=sys.executable)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (str(REPO), env.get('PYTHONPATH')) if p)
    env.pop('LOCAL_RANK', None)
    return env


def _run(cmd, cwd, timeout=600):
    proc = subprocess.run([str(c) for c in cmd],
                          cwd=str(cwd),
                          env=_env(),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-6000:]
    return proc.stdout


def _options(data_root, max_iters):
    opts = [
        f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.checkpoint.max_keep_ckpts=3',
        'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=2',
        'val_dataloader.batch_size=2',
        'test_dataloader.batch_size=2',
    ]
    for loader in ('train', 'val', 'test'):
        opts += [
            f'{loader}_dataloader.num_workers=0',
            f'{loader}_dataloader.persistent_workers=False',
            f'{loader}_dataloader.dataset.data_root={data_root}',
        ]
    return opts


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('scenes') / 'synthetic_scenes'
    generate_synthetic_scenes(
        str(root), num_train=8, num_val=NUM_VAL, num_test=NUM_VAL, seed=3,
        workers=1)
    return root


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('e2e') / 'work'


@pytest.fixture(scope='module')
def train_log(data_root, work_dir):
    return _run([
        sys.executable, REPO / 'tools' / 'train.py', CFG, '--work-dir',
        work_dir, '--cfg-options', *_options(data_root, 4)
    ], work_dir.parent)


def _logged(log, key):
    # not the 'initial/<key>' of the stage metrics
    values = re.findall(r'(?<![\w/])' + re.escape(key) + r': (-?[\d.]+)',
                        log)
    assert values, f'{key} not in log:\n{log[-4000:]}'
    return float(values[-1])


def test_train_saves_checkpoints_and_validates(train_log, work_dir):
    assert 'Iter(train) [4/4]' in train_log
    assert (work_dir / 'iter_2.pth').is_file()
    assert (work_dir / 'iter_4.pth').is_file()
    # the loss of every task is logged, and validation of all six tasks ran
    for task in TASKS:
        assert f'{task}.loss:' in train_log
    assert 0 <= _logged(train_log, 'semseg/mIoU') <= 100
    assert _logged(train_log, 'normals/mErr') > 0
    assert _logged(train_log, 'depth/absErr') > 0


def test_resume_continues_from_the_checkpoint(train_log, data_root,
                                              work_dir):
    log = _run([
        sys.executable, REPO / 'tools' / 'train.py', CFG, '--work-dir',
        work_dir, '--resume', '--cfg-options', *_options(data_root, 6)
    ], work_dir.parent)
    assert 'resumed' in log.lower() or 'Load checkpoint' in log
    # training restarts at iteration 5, not 1
    assert 'Iter(train) [5/6]' in log
    assert 'Iter(train) [1/6]' not in log
    assert (work_dir / 'iter_6.pth').is_file()


def test_test_tool_evaluates_and_exports(train_log, data_root, work_dir,
                                         tmp_path):
    out = tmp_path / 'preds'
    # testing needs no training data, even when drawing (--show-dir)
    log = _run([
        sys.executable, REPO / 'tools' / 'test.py', CFG,
        work_dir / 'iter_4.pth', '--work-dir', tmp_path / 'test_work',
        '--out', out, '--show-dir', tmp_path / 'show', '--cfg-options',
        *_options(data_root, 4),
        f'train_dataloader.dataset.data_root={tmp_path / "absent"}'
    ], tmp_path)
    drawn = list((tmp_path / 'show' / 'vis_data' / 'vis_image').iterdir())
    assert len(drawn) == NUM_VAL, drawn
    metrics = json.loads((out / 'metrics.json').read_text())
    for key in ('semseg/mIoU', 'human_parts/mIoU', 'sal/maxF',
                'normals/mErr', 'edge/odsF', 'depth/absErr'):
        assert key in metrics, sorted(metrics)
        assert np.isfinite(metrics[key])
        # the printed number is the exported one
        assert _logged(log, key) == pytest.approx(metrics[key], abs=1e-3)
    # one prediction per validation image and task
    for task in TASKS:
        files = sorted(p.name for p in (out / task).iterdir())
        assert len(files) == NUM_VAL, (task, files)


def test_test_tool_with_tta(train_log, data_root, work_dir, tmp_path):
    """``--tta`` merges the plain and the mirrored view of every image."""
    log = _run([
        sys.executable, REPO / 'tools' / 'test.py', CFG,
        work_dir / 'iter_4.pth', '--work-dir', tmp_path / 'tta_work', '--tta',
        '--cfg-options', *_options(data_root, 4)
    ], tmp_path)
    assert f'Iter(test) [{NUM_VAL // 2}/{NUM_VAL // 2}]' in log
    for key in ('semseg/mIoU', 'normals/mErr', 'depth/absErr', 'edge/odsF'):
        assert np.isfinite(_logged(log, key))


def test_dist_train_two_cpu_ranks(data_root, tmp_path):
    work = tmp_path / 'dist_work'
    env = _env()
    proc = subprocess.run([
        'bash',
        str(REPO / 'tools' / 'dist_train.sh'),
        str(CFG), '2', '--work-dir',
        str(work), '--cfg-options', *_options(data_root, 2)
    ],
                          cwd=str(tmp_path),
                          env=dict(env, PORT=str(_free_port())),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert 'Iter(train) [2/2]' in proc.stdout
    # mmengine's environment log names the world size 'GPU number'
    assert 'GPU number: 2' in proc.stdout, proc.stdout[-3000:]
    assert 'using the gloo backend' in proc.stdout
    assert (work / 'iter_2.pth').is_file()


def _free_port():
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _test_metrics(cmd_prefix, ckpt, data_root, out, batch, cwd, env=None):
    opts = _options(data_root, 4) + [
        f'test_dataloader.batch_size={batch}',
        "test_dataloader.dataset.split=test",
    ]
    cmd = [str(c) for c in cmd_prefix] + [
        str(CFG), str(ckpt)
    ] + (['2'] if 'dist_test.sh' in str(cmd_prefix[-1]) else []) + [
        '--work-dir', str(out / 'work'), '--out', str(out), '--cfg-options',
        *opts
    ]
    proc = subprocess.run(cmd, cwd=str(cwd), env=env or _env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:]
    metrics = json.loads((out / 'metrics.json').read_text())
    return {k: v for k, v in metrics.items() if isinstance(v, float)}


def test_seeded_noise_metrics_equal_for_any_batch_and_process_count(
        train_log, data_root, work_dir, tmp_path):
    """The demo config has inference noise on and inference_seed=0: the
    metrics of the test split are the same at batch 1, 2 and 4 and with 2
    processes, for the final and the initial predictions.

    Same up to float rounding: a convolution over a batch of 2 does not
    round exactly like two batches of 1 (the noise-free initial depth
    differs in the 10th digit too), so continuous metrics may move in the
    8th significant digit; with batch-dependent noise they moved by up to
    1.4 %. Discrete metrics are bit-identical here."""
    ckpt = work_dir / 'iter_4.pth'
    test_py = [sys.executable, REPO / 'tools' / 'test.py']
    runs = {
        b: _test_metrics(test_py, ckpt, data_root, tmp_path / f'b{b}', b,
                         tmp_path)
        for b in (1, 2, 4)
    }
    two = _test_metrics(['bash', REPO / 'tools' / 'dist_test.sh'], ckpt,
                        data_root, tmp_path / 'dist', 1, tmp_path,
                        env=dict(_env(), PORT=str(_free_port())))
    ref = runs[1]
    assert 'initial/semseg/mIoU' in ref and 'semseg/mIoU' in ref
    assert len(ref) > 40
    for name, got in [('batch 2', runs[2]), ('batch 4', runs[4]),
                      ('2 processes', two)]:
        assert set(got) == set(ref)
        diff = {
            k: (ref[k], got[k])
            for k in ref
            if got[k] != pytest.approx(ref[k], rel=1e-6, abs=1e-9)
        }
        assert not diff, f'{name} differs from batch 1: {diff}'
        for k in ('semseg/mIoU', 'human_parts/mIoU', 'initial/semseg/mIoU',
                  'sal/maxF', 'edge/odsF'):
            assert got[k] == ref[k], (name, k)
