# Copyright (c) diffmtl contributors. All rights reserved.
"""Stage metrics: MultiTaskMetric scores the initial predictions a model
writes with ``test_cfg.eval_stages`` beside the final ones."""
import pickle

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from diffmtl.evaluation import MultiTaskMetric
from diffmtl.structures import stage_field
from test_multitask_metric_dist import (N_SAMPLES, _free_port, _worker,
                                        random_samples)

H, W = 4, 6
REF = {'semseg/mIoU': 50.0, 'depth/absErr': 1.0}


def t(a, dtype=torch.float32):
    return dict(data=torch.as_tensor(np.asarray(a), dtype=dtype))


def hand_samples():
    """Two images. semseg: final perfect, initial swaps classes 0/1 on the
    right half; depth: final off by 0.5 m, initial off by 1.5 m."""
    out = []
    for i in range(2):
        seg = np.zeros((1, H, W), np.int64)
        seg[:, :, W // 2:] = 1
        init_seg = seg.copy()
        init_seg[:, :, W // 2:] = 0  # predicts 0 everywhere
        depth = np.full((1, H, W), 2.0 + i)
        out.append(
            dict(
                img_id=f'im{i}',
                tasks=('semseg', 'depth'),
                task_mask=(True, True),
                pred_stages=('initial', ),
                gt_sem_seg=t(seg, torch.int64),
                pred_sem_seg=t(seg, torch.int64),
                initial_pred_sem_seg=t(init_seg, torch.int64),
                gt_depth=t(depth),
                pred_depth=t(depth + 0.5),
                initial_pred_depth=t(depth - 1.5)))
    return out


def build(**kw):
    m = MultiTaskMetric(delta_m_reference=REF, **kw)
    m.dataset_meta = dict(tasks=('semseg', 'depth'),
                          task_classes=dict(semseg=('a', 'b')))
    return m


def test_stage_field_names():
    assert stage_field('pred_sem_seg') == 'pred_sem_seg'
    assert stage_field('pred_sem_seg', 'final') == 'pred_sem_seg'
    assert stage_field('pred_sem_seg', 'initial') == 'initial_pred_sem_seg'


def test_initial_and_final_keys_have_their_own_values():
    metric = build()
    metric.process({}, hand_samples())
    res = metric.evaluate(2)
    # final: perfect segmentation, depth off by 0.5
    assert res['semseg/mIoU'] == pytest.approx(100.0)
    assert res['depth/absErr'] == pytest.approx(0.5)
    # initial: class 0 IoU = 12/24 = 50 %, class 1 IoU = 0 -> mIoU 25
    assert res['initial/semseg/mIoU'] == pytest.approx(25.0)
    assert res['initial/semseg/aAcc'] == pytest.approx(50.0)
    assert res['initial/depth/absErr'] == pytest.approx(1.5)
    # delta-m per stage against the same reference
    assert res['delta_m'] == pytest.approx(
        100 * ((100 - 50) / 50 - (0.5 - 1) / 1) / 2)
    assert res['initial/delta_m'] == pytest.approx(
        100 * ((25 - 50) / 50 - (1.5 - 1) / 1) / 2)
    # the final keys keep their names and come first
    keys = list(res)
    assert keys.index('delta_m') < keys.index('initial/semseg/mIoU')
    assert not any(k.startswith('final/') for k in keys)


def test_per_class_iou_of_each_stage():
    metric = build()
    metric.process({}, hand_samples())
    res = metric.evaluate(2)
    assert res['semseg/IoU.a'] == pytest.approx(100.0)
    assert res['semseg/IoU.b'] == pytest.approx(100.0)
    # initial: class a IoU = 12/24, class b IoU = 0
    assert res['initial/semseg/IoU.a'] == pytest.approx(50.0)
    assert res['initial/semseg/IoU.b'] == 0.0
    assert sorted(k for k in res if 'IoU.' in k) == [
        'initial/semseg/IoU.a', 'initial/semseg/IoU.b', 'semseg/IoU.a',
        'semseg/IoU.b'
    ]
    assert all(type(v) is float for v in res.values())
    # delta-m reads only the primary metrics
    assert res['initial/delta_m'] == pytest.approx(
        100 * ((25 - 50) / 50 - (1.5 - 1) / 1) / 2)


def test_without_stages_no_initial_keys():
    samples = hand_samples()
    for s in samples:
        del s['pred_stages']
    metric = build()
    metric.process({}, samples)
    res = metric.evaluate(2)
    assert not any(k.startswith('initial/') for k in res)
    assert res['semseg/mIoU'] == pytest.approx(100.0)


def test_missing_stage_prediction_names_the_field():
    samples = hand_samples()
    del samples[0]['initial_pred_depth']
    metric = build()
    with pytest.raises(KeyError, match='initial_pred_depth'):
        metric.process({}, samples)


def test_summary_line_lists_both_stages(capsys):
    from mmengine.logging import MMLogger
    MMLogger.get_instance('stage_metrics_test', log_level='INFO')
    metric = build()
    metric.process({}, hand_samples())
    metric.evaluate(2)
    out = capsys.readouterr()
    text = out.out + out.err
    line = next(ln for ln in text.splitlines()
                if 'Multi-task summary' in ln)
    assert 'semseg/mIoU: 100.0000' in line
    assert 'initial/semseg/mIoU: 25.0000' in line
    assert 'initial/delta_m' in line


def staged_random_samples():
    """The dist test's random samples, plus different initial preds."""
    samples = random_samples()
    rng = np.random.default_rng(7)
    for s in samples:
        for key in [k for k in s if k.startswith('pred_')]:
            v = s[key]['data']
            if v.dtype == torch.int64:
                new = torch.as_tensor(rng.permutation(v.numpy().ravel()))
                new = new.reshape(v.shape)
            else:
                new = v + torch.as_tensor(
                    rng.normal(scale=0.2, size=tuple(v.shape)),
                    dtype=v.dtype)
            s['initial_' + key] = dict(data=new)
        s['pred_stages'] = ('initial', )
    return samples


def _staged_worker(rank, world, port, out_file):
    import test_multitask_metric_dist as dist_test
    dist_test.random_samples = staged_random_samples
    _worker(rank, world, port, out_file)


@pytest.mark.slow
def test_two_processes_equal_one_with_stages(tmp_path):
    from test_multitask_metric_dist import build_metric
    single = build_metric()
    single.process({}, staged_random_samples())
    expected = single.evaluate(N_SAMPLES)
    assert 'initial/edge/odsF' in expected
    assert 'initial/delta_m' in expected
    assert expected['initial/semseg/mIoU'] != expected['semseg/mIoU']
    out = str(tmp_path / 'res.pkl')
    mp.spawn(_staged_worker, args=(2, _free_port(), out), nprocs=2,
             join=True)
    for rank in (0, 1):
        with open(f'{out}.{rank}', 'rb') as f:
            assert pickle.load(f) == expected
