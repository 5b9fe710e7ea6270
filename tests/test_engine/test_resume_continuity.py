# Copyright (c) diffmtl contributors. All rights reserved.
"""A resumed run continues exactly where the interrupted one stopped: from
the newest complete checkpoint of the run (even when ``last_checkpoint``
was not updated yet), with the same logged per-task losses."""
import json
import os.path as osp
from collections import OrderedDict

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from test_input_check_hook import IDS, TASKS, _runner_cfg, folder  # noqa

from diffmtl.datasets import dump_label_mapping
from diffmtl.engine import find_resumable_checkpoint, resolve_resume
from diffmtl.engine.hooks.atomic_checkpoint_hook import (KEPT_KEY,
                                                         LINEAGE_KEY)


def _save(path, step, lineage='run-a', kept=None):
    meta = dict(iter=step, epoch=0, seed=3)
    if lineage is not None:
        meta[LINEAGE_KEY] = lineage
    meta[KEPT_KEY] = kept
    torch.save(dict(meta=meta, state_dict=OrderedDict(w=torch.zeros(1))),
               path)
    return str(path)


@pytest.mark.parametrize('lineage, chosen', [('run-a', 'iter_8.pth'),
                                             ('run-b', 'iter_4.pth'),
                                             (None, 'iter_4.pth')])
def test_newer_complete_checkpoint_of_the_same_run_wins(tmp_path, lineage,
                                                        chosen):
    _save(tmp_path / 'iter_4.pth', 4)
    _save(tmp_path / 'iter_8.pth', 8, lineage=lineage)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    path, meta = find_resumable_checkpoint(str(tmp_path))
    assert path == str(tmp_path / chosen)


def test_resolve_resume_repoints_and_finishes_the_pruning(tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    _save(work / 'iter_4.pth', 4, kept=[4])
    _save(work / 'iter_8.pth', 8, kept=[8])  # max_keep_ckpts=1
    (work / 'last_checkpoint').write_text(str(work / 'iter_4.pth'))
    cfg = Config(dict(work_dir=str(work), resume=True))
    resolve_resume(cfg)
    assert cfg.load_from == str(work / 'iter_8.pth')
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_8.pth')
    assert sorted(p.name for p in work.glob('iter_*.pth')) == ['iter_8.pth']
    # all checkpoints kept (max_keep_ckpts=-1): nothing is removed
    _save(work / 'iter_12.pth', 12, kept=None)
    _save(work / 'iter_16.pth', 16, kept=None)
    (work / 'last_checkpoint').write_text(str(work / 'iter_12.pth'))
    cfg = Config(dict(work_dir=str(work), resume=True))
    resolve_resume(cfg)
    assert cfg.load_from == str(work / 'iter_16.pth')
    assert (work / 'iter_12.pth').exists()


#: semseg / depth flags of the images a, b, c, d: depth is absent from the
#: batch of the checkpointed iteration (4) and back at iteration 5
MAPPING = dict(a=(True, True), b=(True, False), c=(False, True),
               d=(True, False))


def _log_cfg(root, work_dir, mapping, resume_from=None):
    cfg = _runner_cfg(root, work_dir, label_setting='random',
                      label_mapping=mapping)
    cfg.train_dataloader.batch_size = 1
    cfg.model.data_preprocessor.pop('size_divisor')
    cfg.model.data_preprocessor.size = (64, 64)
    cfg.train_cfg.max_iters = 8
    cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook',
                                        by_epoch=False, interval=4)
    if resume_from:
        cfg.load_from, cfg.resume = resume_from, True
    # runners built in the same second would otherwise share mmengine's
    # message hub and visualiser (both are named after the start time)
    cfg.experiment_name = osp.basename(work_dir)
    return cfg


def _logged(runner):
    path = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(path) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return {
        x['step']: {k: v
                    for k, v in x.items() if 'loss' in k}
        for x in lines if 'loss' in x
    }


@pytest.mark.slow
def test_resumed_task_loss_logs_equal_the_uninterrupted_ones(folder,  # noqa
                                                             tmp_path):
    mapping = osp.join(folder, 'mixed.json')
    dump_label_mapping(MAPPING, TASKS, mapping)
    torch.set_num_threads(1)
    full = Runner.from_cfg(
        _log_cfg(folder, str(tmp_path / 'full'), mapping))
    full.train()
    whole = _logged(full)
    resumed = Runner.from_cfg(
        _log_cfg(folder, str(tmp_path / 'resumed'), mapping,
                 resume_from=str(tmp_path / 'full' / 'iter_4.pth')))
    resumed.train()
    again = _logged(resumed)
    assert sorted(again) == [5, 6, 7, 8]
    assert 'depth.loss' in again[5]  # the first window after the resume
    for step in again:
        assert again[step] == pytest.approx(whole[step], rel=1e-6), step
