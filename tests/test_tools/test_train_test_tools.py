# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/train.py -> --resume -> tools/test.py on CPU, as subprocesses."""
import json

import pytest
from tool_runner import TOY_CFG, logged_metric, run_tool
from toy_components import ToyRegressionDataset

from diffmtl.engine import load_checkpoint_file

pytestmark = pytest.mark.slow


def _val_mse(checkpoint_path) -> float:
    """MSE of a checkpoint's weights on the toy val set, computed here."""
    ckpt = load_checkpoint_file(str(checkpoint_path))
    weight = ckpt['state_dict']['linear.weight']
    data = ToyRegressionDataset(num_samples=8, seed=1)
    return float(((data.x @ weight.t() - data.y)**2).mean())


def _check(proc):
    assert proc.returncode == 0, proc.stdout[-5000:]
    return proc.stdout


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('toy_tools') / 'work'


@pytest.fixture(scope='module')
def train_log(work_dir):
    return _check(
        run_tool(
            'train.py', [TOY_CFG, '--work-dir', work_dir],
            cwd=work_dir.parent))


@pytest.fixture(scope='module')
def resume_log(work_dir, train_log):
    return _check(
        run_tool(
            'train.py', [
                TOY_CFG, '--work-dir', work_dir, '--resume', '--cfg-options',
                'train_cfg.max_iters=6', 'train_cfg.val_interval=6'
            ],
            cwd=work_dir.parent))


def test_train_runs_saves_and_validates(work_dir, train_log):
    assert 'Iter(train) [4/4]' in train_log
    assert (work_dir / 'iter_2.pth').is_file()
    assert (work_dir / 'iter_4.pth').is_file()
    marker = json.loads((work_dir / 'rank0_of_1.json').read_text())
    assert marker == dict(rank=0, world_size=1, iters=4, final_iter=4)
    # validation at the end printed the metric of the final weights
    assert logged_metric(train_log, 'toy/num_samples') == 8
    assert logged_metric(train_log, 'toy/mse') == pytest.approx(
        _val_mse(work_dir / 'iter_4.pth'), rel=1e-3, abs=1e-3)
    # the zero-initialised model has MSE mean(y^2); training reduced it
    data = ToyRegressionDataset(num_samples=8, seed=1)
    assert logged_metric(train_log, 'toy/mse') < float((data.y**2).mean())


def test_resume_continues_iterations(work_dir, resume_log):
    assert 'resumed epoch: 0, iter: 4' in resume_log
    assert 'Iter(train) [5/6]' in resume_log
    assert 'Iter(train) [6/6]' in resume_log
    assert 'Iter(train) [1/6]' not in resume_log
    assert (work_dir / 'iter_6.pth').is_file()
    # the resumed run trained exactly the 2 missing iterations
    marker = json.loads((work_dir / 'rank0_of_1.json').read_text())
    assert marker == dict(rank=0, world_size=1, iters=2, final_iter=6)
    ckpt = load_checkpoint_file(str(work_dir / 'iter_6.pth'))
    assert ckpt['meta']['iter'] == 6
    # the optimizer state came back: momentum buffers exist in iter_6
    assert ckpt['optimizer']['state'], 'optimizer state missing'


def test_test_tool_loads_checkpoint_and_prints_metrics(work_dir, resume_log):
    out_dir = work_dir.parent / 'results'
    log = _check(
        run_tool(
            'test.py', [
                TOY_CFG, work_dir / 'iter_6.pth', '--work-dir',
                work_dir.parent / 'test_work', '--out', out_dir
            ],
            cwd=work_dir.parent))
    assert 'Load checkpoint from' in log
    expected = _val_mse(work_dir / 'iter_6.pth')
    assert logged_metric(log, 'toy/mse') == pytest.approx(
        expected, rel=1e-3, abs=1e-3)
    assert logged_metric(log, 'toy/num_samples') == 8
    # --out reached the evaluator (output_dir + keep_results)
    errors = json.loads((out_dir / 'errors.json').read_text())
    assert len(errors) == 8
    assert sum(errors) / 8 == pytest.approx(expected, rel=1e-4)
