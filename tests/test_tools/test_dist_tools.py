# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/dist_train.sh and dist_test.sh with 2 processes on a CPU host."""
import json

import pytest
import torch
from tool_runner import TOOLS, TOY_CFG, free_port, logged_metric, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        torch.cuda.is_available(),
        reason='checks the automatic CPU (gloo) set-up of hosts without CUDA')
]


def test_dist_train_and_test_two_cpu_processes(tmp_path):
    work_dir = tmp_path / 'work'
    proc = run(
        ['bash', TOOLS / 'dist_train.sh', TOY_CFG, 2, '--work-dir', work_dir],
        cwd=tmp_path,
        extra_env=dict(PORT=str(free_port())))
    log = proc.stdout
    assert proc.returncode == 0, log[-5000:]
    # both ranks trained every iteration of the job
    for rank in (0, 1):
        marker = json.loads((work_dir / f'rank{rank}_of_2.json').read_text())
        assert marker == dict(rank=rank, world_size=2, iters=4, final_iter=4)
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for world_size
    assert 'gloo' in log
    # validation shards (4 + 4 samples) were gathered across the ranks
    assert logged_metric(log, 'toy/num_samples') == 8

    proc = run([
        'bash', TOOLS / 'dist_test.sh', TOY_CFG, work_dir / 'iter_4.pth', 2,
        '--work-dir', tmp_path / 'test'
    ],
               cwd=tmp_path,
               extra_env=dict(PORT=str(free_port())))
    assert proc.returncode == 0, proc.stdout[-5000:]
    assert logged_metric(proc.stdout, 'toy/num_samples') == 8
    assert logged_metric(proc.stdout, 'toy/mse') == pytest.approx(
        logged_metric(log, 'toy/mse'), rel=1e-3, abs=1e-3)
