# Copyright (c) diffmtl contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from diffmtl.models.tta import MultiTaskTTAModel, merge_task_logits
from diffmtl.models.utils import (flip_task_logits, logits_to_pred,
                                  postprocess_task_logits)


def test_logits_to_pred_per_kind():
    x = torch.tensor([[[1.0]], [[3.0]], [[2.0]]])  # (3, 1, 1)
    assert logits_to_pred('semseg', x).tolist() == [[[1]]]
    assert logits_to_pred('semseg', x).dtype == torch.int64
    assert logits_to_pred('normals', x).norm().item() == pytest.approx(1.0)
    s = logits_to_pred('sal', torch.tensor([[[0.0]], [[0.0]]]))
    assert s.shape == (1, 1, 1) and s.item() == pytest.approx(0.5)
    assert logits_to_pred('edge', torch.zeros(1, 1, 1)).item() == 0.5
    assert torch.equal(logits_to_pred('depth', x[:1]), x[:1])
    batched = logits_to_pred('semseg', x[None])
    assert batched.shape == (1, 1, 1, 1)


def test_flip_negates_normal_component():
    n = torch.arange(12.).reshape(3, 2, 2)
    f = flip_task_logits('normals', n, 'horizontal')
    assert torch.equal(f[0], -n[0].flip(-1))
    assert torch.equal(f[1], n[1].flip(-1))
    v = flip_task_logits('normals', n, 'vertical')
    assert torch.equal(v[1], -n[1].flip(-2))
    s = flip_task_logits('semseg', n, 'horizontal')
    assert torch.equal(s, n.flip(-1))
    with pytest.raises(ValueError, match='diagonal'):
        flip_task_logits('semseg', n, 'diagonal')


def test_postprocess_crop_and_resize():
    x = torch.zeros(1, 6, 8)
    x[:, 1:5, 2:8] = 1.0
    meta = dict(img_padding_size=[2, 0, 1, 1], ori_shape=(8, 12))
    out = postprocess_task_logits('depth', x, meta)
    assert out.shape == (1, 8, 12)
    assert torch.allclose(out, torch.ones(1, 8, 12))


def _sample(logits_by_field):
    s = SegDataSample(metainfo=dict(ori_shape=(1, 2)))
    s.set_data({k: PixelData(data=v) for k, v in logits_by_field.items()})
    return s


def test_tta_merges_in_prediction_space():
    a = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])
    b = torch.tensor([[[0.0, 0.0]], [[0.0, 4.0]]])
    views = [
        _sample({'seg_logits': a, 'logits_edge': a[:1],
                 'logits_depth': a[:1],
                 'logits_normals': torch.tensor([[[1.]], [[0.]], [[0.]]])}),
        _sample({'seg_logits': b, 'logits_edge': b[:1],
                 'logits_depth': b[:1] + 1,
                 'logits_normals': torch.tensor([[[0.]], [[3.]], [[0.]]])}),
    ]
    class _Model(torch.nn.Module):

        def test_step(self, data):
            return data

    tta = MultiTaskTTAModel(module=_Model())
    out = tta.merge_preds([views])[0]
    prob = (a.softmax(0) + b.softmax(0)) / 2
    assert torch.allclose(out.seg_logits.data.softmax(0), prob, atol=1e-6)
    assert torch.equal(out.pred_sem_seg.data, prob.argmax(0, keepdim=True))
    edge = (a[:1].sigmoid() + b[:1].sigmoid()) / 2
    assert torch.allclose(out.pred_edge.data, edge, atol=1e-5)
    assert torch.allclose(out.pred_depth.data, (a[:1] + b[:1] + 1) / 2)
    n = out.pred_normals.data[:, 0, 0]
    assert torch.allclose(n, torch.tensor([0.5**0.5, 0.5**0.5, 0.]))
    with pytest.raises(ValueError):
        merge_task_logits('semseg', [])


def test_tta_wraps_a_real_model():
    import copy

    from diffmtl.registry import MODELS
    from _mtl_model_utils import make_batch, tiny_diffusion_cfg
    torch.manual_seed(0)
    model = MODELS.build(tiny_diffusion_cfg(inference_noise=False))
    model.eval()
    inputs, samples = make_batch([(1, ) * 5])
    flipped = copy.deepcopy(samples)
    flipped[0].set_metainfo(dict(flip=True, flip_direction='horizontal'))
    tta = MultiTaskTTAModel(module=model)
    with torch.no_grad():
        merged = tta.test_step(
            dict(inputs=[inputs, inputs.flip(-1)],
                 data_samples=[samples, flipped]))[0]
        plain = model.predict(inputs, copy.deepcopy(samples))[0]
        mirrored = model.predict(inputs.flip(-1), copy.deepcopy(flipped))[0]
    n = torch.nn.functional.normalize
    exp_normals = n(
        n(plain.logits_normals.data, dim=0) +
        n(mirrored.logits_normals.data, dim=0), dim=0)
    assert torch.allclose(merged.pred_normals.data, exp_normals, atol=1e-5)
    prob = (plain.seg_logits.data.softmax(0) +
            mirrored.seg_logits.data.softmax(0)) / 2
    assert torch.equal(merged.pred_sem_seg.data, prob.argmax(0, keepdim=True))
