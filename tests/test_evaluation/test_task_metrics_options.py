# Copyright (c) diffmtl contributors. All rights reserved.
"""``MultiTaskMetric(task_metrics=...)``: one TaskMetric per task, options
per task (set there only: the flat option names are refused with the
``task_metrics`` entry to write), and a perfect score for every registered
task kind (the scores the kind itself declares,
``TaskKind.perfect_scores``)."""
import numpy as np
import pytest
import torch

from diffmtl.evaluation import MultiTaskMetric
from diffmtl.evaluation.metrics.multitask_metric import TASK_OPTION_NAMES
from diffmtl.structures import (TASK_SPECS, TaskSpec, list_task_kinds,
                                register_task_spec)

H, W = 20, 30  # diagonal 36.06 px


def t(a, dtype=torch.float32):
    return dict(data=torch.as_tensor(np.asarray(a), dtype=dtype))


@pytest.fixture
def edge2():
    """A second boundary-kind task, removed again afterwards."""
    spec = register_task_spec(
        TaskSpec(name='edge2', kind='boundary', results_key='gt_edge2_map',
                 gt_field='gt_edge2', pred_field='pred_edge2',
                 logits_field='logits_edge2'),
        force=True)
    try:
        yield spec
    finally:
        del TASK_SPECS['edge2']


def boundary_samples():
    """One image: a 20-pixel GT line on row 10; the prediction (p = 0.8)
    has its left half one row below (distance 1 px) and its right half
    three rows below (3 px). Both boundary tasks get the same maps."""
    gt = np.zeros((1, H, W), np.int64)
    gt[0, 10, 5:25] = 1
    pred = np.zeros((1, H, W))
    pred[0, 11, 5:15] = 0.8
    pred[0, 13, 15:25] = 0.8
    return [
        dict(img_id='a', tasks=('edge', 'edge2'), task_mask=(True, True),
             gt_edge=t(gt, torch.int64), pred_edge=t(pred),
             gt_edge2=t(gt, torch.int64), pred_edge2=t(pred))
    ]


def evaluate(samples, meta=None, **kw):
    metric = MultiTaskMetric(**kw)
    if meta is not None:
        metric.dataset_meta = meta
    metric.process({}, samples)
    return metric, metric.evaluate(len(samples))


def test_two_boundary_tasks_with_their_own_max_dist(edge2):
    # tolerance = max_dist * 36.06 px: 0.0075 -> 0.27 px (nothing matches),
    # 0.06 -> 2.16 px (the 1-px half: P = R = 10/20), 0.11 -> 3.97 px (all)
    _, res = evaluate(
        boundary_samples(), tasks=['edge', 'edge2'],
        task_metrics=dict(edge=dict(max_dist=0.06, thresholds=[0.5]),
                          edge2=dict(max_dist=0.11, thresholds=[0.5])))
    assert res['edge/odsF'] == pytest.approx(50.0)
    assert res['edge2/odsF'] == pytest.approx(100.0)
    assert res['edge/oisF'] == pytest.approx(50.0)
    # the defaults (0.0075 of the diagonal) match nothing
    _, res = evaluate(boundary_samples(), tasks=['edge', 'edge2'],
                      task_metrics=dict(edge=dict(thresholds=[0.5]),
                                        edge2=dict(thresholds=[0.5])))
    assert res['edge/odsF'] == 0.0 and res['edge2/odsF'] == 0.0


FLAT = dict(
    num_classes=dict(semseg=4),
    per_class_iou=False,
    sal_thresholds=[0.2, 0.5],
    sal_beta2=1.0,
    normals_bin_width=0.5,
    normals_thresholds=[5, 45],
    depth_range=(0.6, 4),
    edge_thresholds=[0.3, 0.5, 0.7],
    edge_max_dist=0.03,
    edge_nms=False,
    edge_thin_gt=False,
    edge_backend='numpy',
    edge_downsample=2,
    eval_edge=True,
    edge_eval_ids=['img1', 'img3', 'img4'])
#: The task_metrics entry each FLAT name's message names.
ENTRY = dict(
    num_classes='semseg=dict(num_classes=4)',
    per_class_iou='semseg=dict(per_class_iou=False), '
    'human_parts=dict(per_class_iou=False)',
    sal_thresholds='sal=dict(thresholds=[0.2, 0.5])',
    sal_beta2='sal=dict(beta2=1.0)',
    normals_bin_width='normals=dict(bin_width=0.5)',
    normals_thresholds='normals=dict(thresholds=[5, 45])',
    depth_range='depth=dict(depth_range=(0.6, 4))',
    edge_thresholds='edge=dict(thresholds=[0.3, 0.5, 0.7])',
    edge_max_dist='edge=dict(max_dist=0.03)',
    edge_nms='edge=dict(nms=False)',
    edge_thin_gt='edge=dict(thin_gt=False)',
    edge_backend="edge=dict(backend='numpy')",
    edge_downsample='edge=dict(downsample=2)',
    eval_edge='edge=dict(enabled=True)',
    edge_eval_ids="edge=dict(eval_ids=['img1', 'img3', 'img4'])")


@pytest.mark.parametrize('name', sorted(FLAT))
def test_flat_option_name_is_refused_with_its_task_metrics_entry(name):
    assert set(FLAT) == set(TASK_OPTION_NAMES)
    with pytest.raises(TypeError) as info:
        MultiTaskMetric(**{name: FLAT[name]})
    msg = str(info.value)
    assert msg.startswith(f'MultiTaskMetric: `{name}` moved to '
                          f'`task_metrics`; write '
                          f'task_metrics=dict({ENTRY[name]})'), msg
    # the entry it names is accepted as written
    entry = eval(f'dict({ENTRY[name]})')
    metric = MultiTaskMetric(task_metrics=entry)
    for task, options in entry.items():
        assert metric.task_options(task) == options


def test_metric_arguments_are_metric_wide_and_keyword_only():
    import inspect
    params = list(
        inspect.signature(MultiTaskMetric.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [
        'tasks', 'task_metrics', 'delta_m_reference', 'output_dir',
        'keep_results', 'format_only', 'collect_device', 'prefix',
        'collect_dir', 'print_tables'
    ]
    assert all(p.kind is p.KEYWORD_ONLY for p in params)
    with pytest.raises(TypeError, match='unexpected keyword'):
        MultiTaskMetric(edge_max_dst=0.03)


NEW = dict(
    semseg=dict(num_classes=4, per_class_iou=False),
    human_parts=dict(per_class_iou=False),
    sal=dict(thresholds=[0.2, 0.5], beta2=1.0),
    normals=dict(bin_width=0.5, thresholds=[5, 45]),
    depth=dict(depth_range=(0.6, 4)),
    edge=dict(thresholds=[0.3, 0.5, 0.7], max_dist=0.03, nms=False,
              thin_gt=False, backend='numpy', downsample=2, enabled=True,
              eval_ids=['img1', 'img3', 'img4']))


def test_every_task_option_takes_effect():
    from test_multitask_metric_dist import META, random_samples
    metric, res = evaluate(random_samples(), META, task_metrics=NEW)
    for task in META['tasks']:
        assert metric.task_options(task) == NEW[task]
        config = metric._task_metric(task).config()
        assert all(config[k] == v or list(config[k]) == list(v)
                   for k, v in NEW[task].items() if k in config), task
    assert not any('/IoU.' in k for k in res)  # per_class_iou=False
    # and they are not the defaults
    _, res_default = evaluate(random_samples(), META)
    assert res_default['edge/odsF'] != res['edge/odsF']
    assert res_default['sal/maxF'] != res['sal/maxF']


def test_unknown_option_names_the_task_and_the_accepted_options():
    with pytest.raises(TypeError, match=r"'edge'.*max_dst.*max_dist"):
        MultiTaskMetric(tasks=['edge'],
                        task_metrics=dict(edge=dict(max_dst=0.01)))
    # tasks known only from dataset_meta: checked up front all the same
    with pytest.raises(TypeError, match=r"'sal'.*\['beta'\].*beta2"):
        MultiTaskMetric(task_metrics=dict(sal=dict(beta=1.0)))
    # a bad value of a known option: the task is named too
    with pytest.raises(ValueError, match="'normals'"):
        MultiTaskMetric(task_metrics=dict(normals=dict(bin_width=0)))


def test_unknown_task_is_an_error_a_not_evaluated_one_is_ignored():
    with pytest.raises(ValueError, match="'nope'"):
        MultiTaskMetric(task_metrics=dict(nope=dict(x=1)))
    # a config written for more tasks than the dataset has: ignored, but
    # its options are still checked
    metric = MultiTaskMetric(tasks=['semseg'],
                             task_metrics=dict(edge=dict(max_dist=0.011)))
    assert set(metric._task_metric_map(['semseg'])) == {'semseg'}
    with pytest.raises(TypeError, match="'edge'"):
        MultiTaskMetric(tasks=['semseg'],
                        task_metrics=dict(edge=dict(max_dst=0.011)))
    metric = MultiTaskMetric(task_metrics=dict(edge=dict(max_dist=0.011)))
    metric.dataset_meta = dict(tasks=('semseg', 'depth'))
    assert set(metric._task_metric_map(('semseg', 'depth'))) == {
        'semseg', 'depth'}


# ----------------------------------------------------------------------
# every registered kind: a perfect prediction gets the perfect score
# ----------------------------------------------------------------------

def _spec_of(kind):
    """The first registered TaskSpec of ``kind`` (the built-in task of a
    built-in kind); fails without one."""
    specs = [s for s in TASK_SPECS.values() if s.kind == kind]
    assert specs, f'task kind {kind!r} has no registered TaskSpec'
    return specs[0]


def _gt_map(spec):
    """A (C, H, W) ground truth with every pixel valid."""
    if spec.discrete:
        n = spec.task_kind.num_labels(spec, 3)
        n = 3 if n is None else int(n)
        gt = np.zeros((spec.gt_channels, H, W), np.int64)
        gt[:, 10, 5:25] = 1  # a thin line: also a boundary map
        for k in range(2, n):
            gt[:, H - 1, k] = k
        return gt
    low, high = spec.task_kind.gt_value_range
    rng = np.random.default_rng(0)
    return rng.uniform(low, high, (spec.gt_channels, H, W))


@pytest.mark.parametrize('kind', list_task_kinds())
def test_perfect_prediction_gets_the_perfect_score(kind):
    spec = _spec_of(kind)
    task = spec.name
    gt = _gt_map(spec)
    sample = dict(img_id='a', tasks=(task, ), task_mask=(True, ))
    sample[spec.gt_field] = t(gt, torch.int64 if spec.discrete else
                              torch.float32)
    sample[spec.pred_field] = t(gt.astype(np.float32))
    meta = dict(tasks=(task, ))
    if spec.task_kind.has_classes:
        meta['task_classes'] = {task: ('c0', 'c1', 'c2')}
    # builds the kind's TaskMetric: a kind without one fails here
    _, res = evaluate([sample], meta)
    perfect = spec.task_kind.perfect_scores(spec)
    assert spec.primary_metric in perfect, (
        f'task kind {kind!r}: perfect_scores() does not list the primary '
        f'metric {spec.primary_metric!r}; the metric returned {res}')
    for name, value in perfect.items():
        assert f'{task}/{name}' in res, (
            f'task kind {kind!r}: perfect_scores() lists {name!r}, which '
            f'the metric does not return ({sorted(res)})')
        assert res[f'{task}/{name}'] == pytest.approx(value, abs=1e-9), name
