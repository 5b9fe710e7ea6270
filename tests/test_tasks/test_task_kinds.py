# Copyright (c) diffmtl contributors. All rights reserved.
"""The task-kind registry and how a TaskSpec resolves its kind."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from diffmtl.registry import TASK_KINDS
from diffmtl.structures import (TASK_SPECS, TaskKind, TaskSpec,
                                get_task_kind, get_task_spec,
                                list_task_kinds, register_task_kind,
                                task_class_names)

BUILTIN = ('boundary', 'depth', 'normals', 'saliency', 'segmentation')


def test_builtin_kinds_registered():
    assert set(BUILTIN) <= set(list_task_kinds())
    for name in BUILTIN:
        kind = get_task_kind(name)
        assert isinstance(kind, TaskKind) and kind.name == name
        assert get_task_kind(name) is kind  # one shared instance


def test_every_builtin_task_resolves_its_kind():
    # the specs of the paper's six tasks, as they were before the kinds
    want = dict(
        semseg=('segmentation', None, 1, True, 255, 'mIoU', True),
        human_parts=('segmentation', None, 1, True, 255, 'mIoU', True),
        sal=('saliency', 2, 1, True, 255, 'maxF', True),
        normals=('normals', 3, 3, False, None, 'mErr', False),
        edge=('boundary', 1, 1, True, 255, 'odsF', True),
        depth=('depth', 1, 1, False, None, 'absErr', False))
    for task, row in want.items():
        s = get_task_spec(task)
        assert (s.kind, s.out_channels, s.gt_channels, s.discrete,
                s.ignore_index, s.primary_metric,
                s.higher_is_better) == row, task
    assert get_task_spec('edge').loss == dict(type='WeightedBCELoss',
                                              pos_weight=0.95)
    assert get_task_spec('semseg').mmseg_classes
    assert not get_task_spec('human_parts').mmseg_classes


def test_unknown_kind_error_names_it_and_the_known_ones():
    with pytest.raises(ValueError, match="unknown task kind 'flowz'.*"
                       'segmentation'):
        TaskSpec(name='x', kind='flowz', results_key='k', gt_field='g',
                 pred_field='p', logits_field='l')
    with pytest.raises(KeyError, match='register_task_kind'):
        get_task_kind('flowz')


def test_spec_overrides_win_and_loss_is_copied():
    s = TaskSpec(name='x', kind='boundary', results_key='k', gt_field='g',
                 pred_field='p', logits_field='l', pad_value=0,
                 primary_metric='AP')
    assert s.pad_value == 0 and s.primary_metric == 'AP'
    assert s.loss == get_task_kind('boundary').loss
    assert s.loss is not get_task_kind('boundary').loss
    with pytest.raises(ValueError, match='gt_channels'):
        TaskSpec(name='x', kind='depth', results_key='k', gt_field='g',
                 pred_field='p', logits_field='l', gt_channels=0)


def test_register_a_kind_and_unregister():

    class Heat(TaskKind):
        name = 'test_heat'
        discrete = False
        gt_channels = 4
        pad_value = 0.0
        ignore_index = None
        # keypoint heatmaps: left/right joints trade places on a mirror
        flip_swap = {'horizontal': ((0, 1), (2, 3))}

    try:
        register_task_kind(Heat)
        assert 'test_heat' in list_task_kinds()
        with pytest.raises(KeyError):
            register_task_kind(Heat)
        register_task_kind(Heat, force=True)
        spec = TaskSpec(name='test_heat_task', kind='test_heat',
                        results_key='k', gt_field='g', pred_field='p',
                        logits_field='l')
        assert spec.gt_channels == 4 and not spec.discrete
        arr = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
        flipped = spec.task_kind.flip_map(spec, arr, 'horizontal')
        np.testing.assert_array_equal(flipped[:, 0], arr[:, 2][...,
                                                               [1, 0, 3, 2]])
        fill = spec.task_kind.fill_map(spec, (5, 6))
        assert fill.shape == (5, 6, 4) and fill.dtype == np.float32
    finally:
        TASK_KINDS.module_dict.pop('test_heat', None)
    with pytest.raises(TypeError):
        register_task_kind(int)


class _SwapNegate(TaskKind):
    """Swaps and negations in both directions (not registered); each
    flip is its own inverse, as a geometric one is."""
    name = 'test_swap_negate'
    discrete = False
    gt_channels = 4
    pad_value = 0.0
    ignore_index = None
    flip_swap = {'horizontal': ((0, 1), ), 'vertical': ((1, 2), )}
    flip_negate = {'horizontal': (0, 1, 3), 'vertical': (3, )}


def _loop_flip(kind, arr, direction):
    """Reference: mirror, then ``out[c] = +-in[source(c)]`` channel by
    channel; the diagonal as the horizontal then the vertical flip."""
    if direction == 'diagonal':
        return _loop_flip(kind, _loop_flip(kind, arr, 'horizontal'),
                          'vertical')
    m = arr[:, ::-1] if direction == 'horizontal' else arr[::-1]
    out = np.empty_like(m)
    for c in range(m.shape[-1]):
        src = c
        for a, b in kind.flip_swap.get(direction, ()):
            src = b if c == a else a if c == b else src
        sign = -1 if c in kind.flip_negate.get(direction, ()) else 1
        out[..., c] = sign * m[..., src]
    return out


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_flip_swap_and_negate_against_a_loop(direction):
    kind = _SwapNegate()
    spec = SimpleNamespace(name='t')
    arr = np.random.default_rng(0).normal(size=(3, 5, 4)).astype(np.float32)
    out = kind.flip_map(spec, arr, direction)
    np.testing.assert_array_equal(out, _loop_flip(kind, arr, direction))
    # the diagonal composes: the vertical swap moves the horizontal
    # negations (channel 1 -> 2), then the vertical one toggles 3
    assert kind.negated_channels('diagonal') == (0, 2)
    if direction != 'diagonal':
        # the test-time un-flip of (C, H, W) logits does the same
        t = torch.from_numpy(arr).permute(2, 0, 1)
        np.testing.assert_array_equal(
            kind.flip_tensor(spec, t, direction).permute(1, 2, 0).numpy(),
            out)
        np.testing.assert_array_equal(
            kind.flip_map(spec, out, direction), arr)
    with pytest.raises(ValueError, match='swaps'):
        kind.flip_map(spec, arr[..., :2], direction)


def test_negated_channels_and_flip_tensor():
    n = get_task_kind('normals')
    assert n.negated_channels('horizontal') == (0, )
    assert n.negated_channels('vertical') == (1, )
    assert n.negated_channels('diagonal') == (0, 1)
    assert get_task_kind('depth').negated_channels('diagonal') == ()
    with pytest.raises(ValueError, match='flip direction'):
        n.negated_channels('sideways')
    spec = get_task_spec('normals')
    t = torch.arange(3 * 2 * 2, dtype=torch.float32).view(3, 2, 2)
    out = n.flip_tensor(spec, t, 'horizontal')
    assert torch.equal(out[0], -t[0].flip(-1))
    assert torch.equal(out[1:], t[1:].flip(-1))


def test_zoom_map_uses_the_exponent():
    spec = get_task_spec('depth')
    arr = np.full((2, 2), 6.0, dtype=np.float32)
    out = spec.task_kind.zoom_map(spec, arr, 2.0)
    assert out.dtype == np.float32 and np.all(out == 3.0)
    seg = get_task_spec('semseg')
    lab = np.ones((2, 2), np.uint8)
    assert seg.task_kind.zoom_map(seg, lab, 2.0) is lab


def test_task_class_names_is_the_one_resolution():
    meta = dict(classes=('a', 'b'), task_classes=dict(human_parts=('x', )))
    assert task_class_names('semseg', meta) == ('a', 'b')
    assert task_class_names('human_parts', meta) == ('x', )
    # human_parts is not mmseg's segmentation: no fallback to 'classes'
    assert task_class_names('human_parts', dict(classes=('a', ))) == tuple(
        get_task_spec('human_parts').default_classes)
    assert task_class_names('semseg', {}) is None
    assert task_class_names('semseg', {}, 3) == ('0', '1', '2')
    # a list of the wrong length gives numbered names
    assert task_class_names('semseg', meta, 3) == ('0', '1', '2')
    assert 'semseg' in TASK_SPECS
