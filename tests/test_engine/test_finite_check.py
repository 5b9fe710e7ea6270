# Copyright (c) diffmtl contributors. All rights reserved.
"""Non-finite weights stop validation and testing before the first batch
(FiniteCheckHook); non-finite predictions are never scored or exported
(MultiTaskMetric); exports are atomic and name the file on I/O errors."""
import os
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from test_input_check_hook import _runner_cfg, folder  # noqa: F401

from diffmtl.engine.hooks.finite_check_hook import (FiniteCheckHook,
                                                    check_finite_weights,
                                                    non_finite_tensors)
from diffmtl.evaluation import MultiTaskMetric
from diffmtl.evaluation.metrics.multitask_metric import export_atomic
from diffmtl.structures import get_task_spec
from diffmtl.utils import build_runner

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..',
                                'test_tools'))
import out_components  # noqa: E402,F401  (registers PoisonWeightsHook)


def test_non_finite_tensors_names_parameters_and_buffers():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    assert non_finite_tensors(net) == []
    with torch.no_grad():
        net[0].bias[1] = float('inf')
    net[1].running_var[0] = float('nan')
    assert non_finite_tensors(net) == [('0.bias', 1, 2),
                                       ('1.running_var', 1, 2)]
    with pytest.raises(FloatingPointError) as err:
        check_finite_weights(net, "the checkpoint 'x.pth'")
    msg = str(err.value)
    assert "the checkpoint 'x.pth'" in msg
    assert "'0.bias' holds 1 NaN/inf value(s) of 2" in msg
    assert '1 more tensor(s) too: 1.running_var' in msg


def _sample(img_id, **preds):
    ds = dict(img_id=img_id, tasks=('depth', 'normals'),
              task_mask=(True, True),
              gt_depth=dict(data=torch.ones(1, 4, 4)),
              gt_normals=dict(data=torch.zeros(3, 4, 4)))
    for field, value in preds.items():
        ds[field] = dict(data=value)
    return ds


def test_metric_refuses_non_finite_predictions(tmp_path):
    out = tmp_path / 'out'
    metric = MultiTaskMetric(tasks=('depth', 'normals'), output_dir=str(out))
    MessageHub.get_current_instance().update_info(
        'diffmtl_weights_source', "the checkpoint 'w.pth'", resumed=False)
    good = _sample('a', pred_depth=torch.ones(1, 4, 4),
                   pred_normals=torch.ones(3, 4, 4) / 3**0.5)
    metric.process(None, [good])
    nan_normals = torch.full((3, 4, 4), float('nan'))
    bad = _sample('b', pred_depth=torch.ones(1, 4, 4),
                  pred_normals=nan_normals)
    with pytest.raises(FloatingPointError) as err:
        metric.process(None, [bad])
    msg = str(err.value)
    assert "'pred_normals' of task 'normals' for image 'b'" in msg
    assert '48 NaN/inf value(s) of 48' in msg
    assert "the checkpoint 'w.pth'" in msg
    # nothing of the image was exported, the good one was
    assert sorted(os.listdir(out / 'depth')) == ['a.npy']
    assert sorted(os.listdir(out / 'normals')) == ['a.npy']
    assert len(metric.results) == 1
    # the stages a model writes besides the final one are checked too
    staged = _sample('c', pred_depth=torch.ones(1, 4, 4),
                     pred_normals=torch.ones(3, 4, 4) / 3**0.5,
                     initial_pred_normals=torch.ones(3, 4, 4) / 3**0.5,
                     initial_pred_depth=torch.full((1, 4, 4),
                                                   float('inf')))
    staged['pred_stages'] = ('initial', )
    with pytest.raises(FloatingPointError, match="'initial_pred_depth'"):
        metric.process(None, [staged])


def test_export_atomic_names_the_file_and_leaves_nothing(tmp_path,
                                                         monkeypatch):
    spec = get_task_spec('depth')
    written = []

    def half_then_fail(path, arr):
        with open(path, 'wb') as f:
            f.write(b'\x93NUMPY' + b'\0' * 100)
        written.append(path)
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(np, 'save', half_then_fail)
    stem = str(tmp_path / 'img1')
    with pytest.raises(OSError) as err:
        export_atomic(spec, np.ones((1, 4, 4), np.float32), stem)
    assert f"cannot write the 'depth' prediction '{stem}.npy'" in str(
        err.value)
    assert 'No space left on device' in str(err.value)
    assert err.value.errno == 28
    assert written and '.diffmtl-tmp' in written[0]  # never the final name
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_validation_stops_on_weights_that_turned_nan(folder, tmp_path):  # noqa
    work_dir = str(tmp_path / 'val')
    cfg = _runner_cfg(folder, work_dir)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2,
                         val_interval=2)
    cfg.val_dataloader = dict(cfg.train_dataloader, batch_size=1)
    cfg.val_dataloader.dataset = dict(cfg.train_dataloader.dataset,
                                      test_mode=True)
    cfg.val_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
    cfg.val_cfg = dict(type='ValLoop')
    cfg.val_evaluator = dict(type='MultiTaskMetric')
    cfg.custom_hooks = [dict(type='PoisonWeightsHook', at=2)]
    torch.set_num_threads(1)
    runner = build_runner(cfg)
    assert any(isinstance(h, FiniteCheckHook) for h in runner.hooks)
    first = next(iter(runner.model.named_parameters()))[0]
    with pytest.raises(FloatingPointError) as err:
        runner.train()
    msg = str(err.value)
    assert 'the model at training iteration 2' in msg
    assert f"{first!r} holds 1 NaN/inf" in msg
