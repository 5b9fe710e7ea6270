# Copyright (c) diffmtl contributors. All rights reserved.
"""``MultiTaskMetric`` end to end on tiny hand-made samples."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from diffmtl.evaluation import MultiTaskMetric
from diffmtl.registry import METRICS

PASCAL = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
META = dict(
    tasks=PASCAL + ('depth', ),
    task_classes=dict(
        semseg=('bg', 'a', 'b'),
        human_parts=('background', 'head', 'torso', 'uarm', 'larm', 'uleg',
                     'lleg')))
H, W = 20, 30


def _pix(a, dtype):
    return PixelData(data=torch.as_tensor(np.asarray(a), dtype=dtype))


def make_sample(img_id, seg_gt, seg_pred, parts_gt, sal_gt, sal_p,
                nrm_gt, nrm_p, edge_gt, edge_p, depth_gt, depth_p):
    ds = SegDataSample(
        metainfo=dict(
            img_id=img_id,
            img_path=f'/x/{img_id}.jpg',
            ori_shape=(H, W),
            tasks=META['tasks'],
            task_mask=(True, ) * 6))
    ds.gt_sem_seg = _pix(seg_gt[None], torch.int64)
    ds.pred_sem_seg = _pix(seg_pred[None], torch.int64)
    ds.gt_human_parts = _pix(parts_gt[None], torch.int64)
    ds.pred_human_parts = _pix(np.zeros((1, H, W)), torch.int64)
    ds.gt_sal = _pix(sal_gt[None], torch.int64)
    ds.pred_sal = _pix(sal_p[None], torch.float32)
    ds.gt_normals = _pix(nrm_gt, torch.float32)
    ds.pred_normals = _pix(nrm_p, torch.float32)
    ds.gt_edge = _pix(edge_gt[None], torch.int64)
    ds.pred_edge = _pix(edge_p[None], torch.float32)
    ds.gt_depth = _pix(depth_gt[None], torch.float32)
    ds.pred_depth = _pix(depth_p[None], torch.float32)
    return ds.to_dict()


def simple_samples():
    """Two images whose metrics are known by hand."""
    seg = np.zeros((H, W), np.int64)
    seg[:, 15:] = 1  # classes 0 and 1; class 2 absent -> IoU 0
    parts_none = np.full((H, W), 255)  # image without persons
    sal_gt = np.zeros((H, W), np.int64)
    sal_gt[:10] = 1
    sal_p = np.where(sal_gt == 1, 0.9, 0.1)
    up = np.zeros((3, H, W))
    up[2] = -1
    edge_gt = np.zeros((H, W), np.int64)
    edge_gt[10, 5:25] = 1
    edge_p = np.where(edge_gt == 1, 0.8, 0.0)
    depth_gt = np.full((H, W), 2.0)
    depth_gt[0] = 0  # invalid row
    s1 = make_sample('a', seg, seg, parts_none, sal_gt, sal_p, up, up,
                     edge_gt, edge_p, depth_gt, depth_gt + 1.0)
    parts = np.zeros((H, W), np.int64)
    s2 = make_sample('b', seg, 1 - seg, parts, sal_gt, sal_p, up, -up,
                     edge_gt, edge_p, depth_gt, depth_gt)
    return [s1, s2]


def test_metric_values_by_hand(tmp_path):
    metric = MultiTaskMetric(
        task_metrics=dict(edge=dict(thresholds=[0.5])),
        delta_m_reference='pascal_one')
    metric.dataset_meta = META
    metric.process({}, simple_samples())
    res = metric.evaluate(2)
    # semseg: image a perfect, b inverted (classes 0/1 swap):
    # I = (300, 300), P = L = (600, 600) -> IoU 1/3 each; class 2 = 0
    assert res['semseg/mIoU'] == pytest.approx(100 * (1 / 3 + 1 / 3) / 3)
    # parts: image a has no person (skipped); b: all background correct
    assert res['human_parts/mIoU'] == pytest.approx(100 / 7)
    assert res['sal/maxF_corrected'] == pytest.approx(100.0)
    # quirk: sigmoid(0.1)=0.525, sigmoid(0.9)=0.711 -> 0.55..0.70 separate
    assert res['sal/maxF'] == pytest.approx(100.0)
    # normals: a exact (0 deg), b antipodal (180 deg)
    assert res['normals/mErr'] == pytest.approx(90.0)
    assert res['normals/11.25'] == pytest.approx(50.0)
    # depth: a off by 1 on 19 * 30 px, b exact
    assert res['depth/absErr'] == pytest.approx(0.5)
    assert res['depth/rmse'] == pytest.approx(np.sqrt(0.5))
    assert res['edge/odsF'] == pytest.approx(100.0)
    expected_dm = 100 / 5 * (
        (res['semseg/mIoU'] - 50.34) / 50.34 +
        (res['human_parts/mIoU'] - 59.05) / 59.05 + (100 - 77.43) / 77.43 -
        (90 - 16.59) / 16.59 + (100 - 64.40) / 64.40)
    assert res['delta_m'] == pytest.approx(expected_dm)
    assert all(isinstance(v, float) for v in res.values())


def test_registered_and_tasks_from_constructor():
    metric = METRICS.build(
        dict(type='MultiTaskMetric', tasks=['semseg', 'depth'],
             task_metrics=dict(semseg=dict(num_classes=3))))
    metric.process({}, simple_samples())
    res = metric.evaluate(2)
    assert set(res) == {
        'semseg/mIoU', 'semseg/mAcc', 'semseg/aAcc', 'semseg/IoU.0',
        'semseg/IoU.1', 'semseg/IoU.2', 'depth/absErr', 'depth/rmse',
        'depth/absRel', 'depth/sqRel', 'depth/logRMSE'
    }
    off = METRICS.build(
        dict(type='MultiTaskMetric', tasks=['semseg'],
             task_metrics=dict(
                 semseg=dict(num_classes=3, per_class_iou=False))))
    off.process({}, simple_samples())
    assert set(off.evaluate(2)) == {'semseg/mIoU', 'semseg/mAcc',
                                    'semseg/aAcc'}


def test_per_class_iou_is_returned():
    metric = MultiTaskMetric(task_metrics=dict(edge=dict(thresholds=[0.5])))
    metric.dataset_meta = META
    metric.process({}, simple_samples())
    res = metric.evaluate(2)
    # semseg: classes bg / a IoU 1/3, b absent -> 0 (see the hand values)
    assert res['semseg/IoU.bg'] == pytest.approx(100 / 3)
    assert res['semseg/IoU.a'] == pytest.approx(100 / 3)
    assert res['semseg/IoU.b'] == 0.0
    assert res['semseg/mIoU'] == pytest.approx(
        np.mean([res[f'semseg/IoU.{c}'] for c in ('bg', 'a', 'b')]))
    assert res['human_parts/IoU.background'] == pytest.approx(100.0)
    assert res['human_parts/IoU.head'] == 0.0
    per_class = [k for k in res if '/IoU.' in k]
    assert len(per_class) == 3 + 7  # one key per class, nothing else
    assert all(type(res[k]) is float for k in per_class)
    # the keys keep the <task>/<metric> shape the study summary splits
    assert {k.split('/')[0] for k in per_class} == {'semseg', 'human_parts'}
    assert all(k.count('/') == 1 for k in per_class)


def test_per_class_key_names():
    from diffmtl.tasks import per_class_keys
    assert per_class_keys(['bg', 'potted plant', 'a/b', 'bg', '']) == [
        'IoU.bg', 'IoU.potted_plant', 'IoU.a_b', 'IoU.bg.3', 'IoU.4'
    ]


def test_tables_only_when_asked_or_through_a_runner_logger(capsys):
    from mmengine.logging import MMLogger

    def run(**kw):
        metric = MultiTaskMetric(
            tasks=['semseg'], task_metrics=dict(semseg=dict(num_classes=3)),
            **kw)
        metric.process({}, simple_samples())
        metric.evaluate(2)
        out = capsys.readouterr()
        return out.out + out.err

    saved = dict(MMLogger._instance_dict)
    try:
        # a bare evaluate() (only mmengine's fallback logger): silent
        MMLogger._instance_dict.clear()
        assert 'IoU' not in run() and 'Multi-task summary' not in run()
        text = run(print_tables=True)
        assert '| Class |' in text and 'Multi-task summary' in text
        # a Runner's logger (any named MMLogger): logged at INFO
        MMLogger.get_instance('metric_tables_test', log_level='INFO')
        text = run()
        assert '| Class |' in text and 'Multi-task summary' in text
        assert run(print_tables=False) == ''
    finally:
        MMLogger._instance_dict.clear()
        MMLogger._instance_dict.update(saved)
    with pytest.raises(ValueError, match='print_tables'):
        MultiTaskMetric(print_tables='yes')


def test_export_and_metrics_json(tmp_path):
    out = str(tmp_path / 'out')
    metric = MultiTaskMetric(
        task_metrics=dict(edge=dict(thresholds=[0.5])), output_dir=out,
        keep_results=True)
    metric.dataset_meta = META
    samples = simple_samples()
    metric.process({}, samples)
    res = metric.evaluate(2)
    import mmcv
    edge = mmcv.imread(osp.join(out, 'edge', 'a.png'), flag='unchanged')
    assert edge.shape == (H, W) and edge.dtype == np.uint8
    assert edge[10, 5] == int(0.8 * 255) and edge[0, 0] == 0
    seg = mmcv.imread(osp.join(out, 'semseg', 'b.png'), flag='unchanged')
    np.testing.assert_array_equal(seg, samples[1]['pred_sem_seg']['data'][0])
    nrm = np.load(osp.join(out, 'normals', 'b.npy'))
    assert nrm.shape == (H, W, 3) and nrm[0, 0, 2] == 1.0
    dep = np.load(osp.join(out, 'depth', 'a.npy'))
    assert dep[5, 5] == pytest.approx(3.0)
    with open(osp.join(out, 'metrics.json')) as f:
        dumped = json.load(f)
    assert dumped['semseg/mIoU'] == pytest.approx(res['semseg/mIoU'])
    assert dumped['per_class']['semseg']['b'] == 0.0
    # the dump can serve as a delta-m reference: identical -> 0
    again = MultiTaskMetric(
        task_metrics=dict(edge=dict(thresholds=[0.5])),
        delta_m_reference=osp.join(out, 'metrics.json'))
    again.dataset_meta = META
    again.process({}, simple_samples())
    assert again.evaluate(2)['delta_m'] == pytest.approx(0.0, abs=1e-9)


def test_format_only_needs_no_gt(tmp_path):
    out = str(tmp_path / 'fmt')
    metric = MultiTaskMetric(output_dir=out, format_only=True)
    metric.dataset_meta = META
    samples = simple_samples()
    for s in samples:
        for k in [k for k in s if k.startswith('gt_')]:
            del s[k]
    metric.process({}, samples)
    assert metric.evaluate(2) == {}
    assert osp.isfile(osp.join(out, 'sal', 'a.png'))
    assert osp.isfile(osp.join(out, 'edge', 'b.png'))
    assert not osp.exists(osp.join(out, 'metrics.json'))


def test_shape_mismatch_names_task_and_sample():
    metric = MultiTaskMetric(tasks=['depth'])
    s = simple_samples()[0]
    s['pred_depth']['data'] = s['pred_depth']['data'][:, :5]
    with pytest.raises(ValueError, match="'depth'.*'a'"):
        metric.process({}, [s])
    with pytest.raises(ValueError, match='format_only'):
        MultiTaskMetric(format_only=True)


def test_through_mmengine_evaluator_with_data_samples():
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(
        METRICS.build(dict(type='MultiTaskMetric',
                           tasks=['semseg', 'normals'])))
    evaluator.dataset_meta = META
    # Evaluator.process calls to_dict() on SegDataSample objects itself
    samples = [SegDataSample(), SegDataSample()]
    raw = simple_samples()
    for ds, r in zip(samples, raw):
        ds.set_metainfo(dict(img_id=r['img_id']))
        for key in ('gt_sem_seg', 'pred_sem_seg', 'gt_normals',
                    'pred_normals'):
            ds.set_field(PixelData(data=r[key]['data']), key)
    evaluator.process(samples, {})
    res = evaluator.evaluate(2)
    assert res['semseg/mIoU'] == pytest.approx(100 * (2 / 3) / 3)
    assert res['normals/mErr'] == pytest.approx(90.0)


def test_edge_downsample_keeps_a_perfect_prediction_perfect():
    metric = MultiTaskMetric(
        tasks=['edge'],
        task_metrics=dict(edge=dict(thresholds=[0.5], downsample=2)))
    metric.process({}, simple_samples())
    res = metric.evaluate(2)
    assert res['edge/odsF'] == pytest.approx(100.0)
    assert res['edge/ods_threshold'] == 0.5
    off = MultiTaskMetric(tasks=['edge'],
                          task_metrics=dict(edge=dict(enabled=False)))
    off.process({}, simple_samples())
    assert off.evaluate(2) == {}


def test_edge_eval_ids_restrict_the_scored_images(tmp_path):
    samples = simple_samples()
    # image b's boundary prediction is moved far away: F = 0 on b alone
    samples[1]['pred_edge']['data'] = torch.roll(
        samples[1]['pred_edge']['data'], 8, dims=1)
    ids = tmp_path / 'ids.txt'
    ids.write_text('a\n')
    for eval_ids, expected in ((None, 50.0), (str(ids), 100.0),
                               (['b'], 0.0)):
        metric = MultiTaskMetric(
            tasks=['edge'],
            task_metrics=dict(edge=dict(thresholds=[0.5], eval_ids=eval_ids)))
        metric.process({}, simple_samples()[:1] + samples[1:])
        assert metric.evaluate(2)['edge/odsF'] == pytest.approx(expected)
