# Copyright (c) diffmtl contributors. All rights reserved.
"""End to end through mmengine's Runner, LoggerHook and LocalVisBackend: a
task's loss is logged exactly on the iterations whose batch had the task,
never repeated on the others."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from test_input_check_hook import IDS, TASKS, _runner_cfg, folder  # noqa

from diffmtl.datasets import dump_label_mapping

pytestmark = pytest.mark.slow

#: semseg / depth flags of the images a, b, c, d.
MAPPING = dict(a=(True, True), b=(True, False), c=(False, True),
               d=(True, False))


def test_logged_task_losses_follow_the_batches(folder, tmp_path):  # noqa
    mapping = osp.join(folder, 'mixed.json')
    dump_label_mapping(MAPPING, TASKS, mapping)
    work_dir = str(tmp_path / 'log')
    cfg = _runner_cfg(folder, work_dir, label_setting='random',
                      label_mapping=mapping)
    cfg.train_dataloader.batch_size = 1
    # batch 1: pad to 64x64 so BN sees 2x2 values at the last stage
    cfg.model.data_preprocessor.pop('size_divisor')
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.train_cfg.max_iters = 8
    cfg.default_hooks.checkpoint.interval = 100
    torch.set_num_threads(1)
    runner = Runner.from_cfg(cfg)
    runner.train()
    path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    train = [x for x in lines if 'loss' in x]
    assert [x['step'] for x in train] == list(range(1, 9))
    order = [IDS[k % 4] for k in range(8)]  # no shuffling, batch 1
    for line, img in zip(train, order):
        for task, labelled in zip(TASKS, MAPPING[img]):
            assert (f'{task}.loss' in line) == labelled, (line, img)
        assert all(np.isfinite(v) for v in line.values()
                   if isinstance(v, float))
    # the values are windowed means over batches that had the task only:
    # depth at step 3 averages steps 1 and 3, not a repeat of step 1
    depth = {x['step']: x['depth.loss'] for x in train if 'depth.loss' in x}
    assert sorted(depth) == [1, 3, 5, 7]
    assert len(set(depth.values())) == 4
    with pytest.raises(KeyError):
        runner.message_hub.get_scalar('train/depth.loss')  # hidden now
