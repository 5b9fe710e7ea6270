# Copyright (c) diffmtl contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from diffmtl.registry import MODELS
from _mtl_model_utils import PASCAL_TASKS, make_batch, tiny_baseline_cfg

torch.set_num_threads(1)


def test_baseline_loss_equals_per_image_reference():
    torch.manual_seed(0)
    model = MODELS.build(tiny_baseline_cfg())
    model.eval()
    masks = [(1, 0, 0, 0, 0), (0, 1, 1, 1, 0), (0, 0, 0, 0, 0)]
    inputs, samples = make_batch(masks)
    losses = model.loss(inputs, samples)
    ref = 0.0
    for b, s in enumerate(samples):
        labelled = [t for t, m in zip(PASCAL_TASKS, masks[b]) if m]
        for t in labelled:
            logits = model.decoders[t](model.extract_feat(inputs[b:b + 1]))
            logits = F.interpolate(logits, size=(32, 48), mode='bilinear')
            gt = s.get(model.task_specs[t].gt_field).data[None]
            ref = ref + 5 / len(labelled) * model.loss_weights[t] * \
                model.task_losses[t](logits, gt)[0] / 3
    assert set(losses) == {'semseg.loss', 'human_parts.loss', 'sal.loss',
                           'normals.loss'}
    assert sum(losses.values()).item() == pytest.approx(ref.item(), rel=1e-5)


def test_baseline_predict_fields():
    torch.manual_seed(0)
    model = MODELS.build(tiny_baseline_cfg(tasks=('edge', 'depth')))
    model.eval()
    inputs, samples = make_batch([(1, 1)], tasks=('edge', 'depth'))
    with torch.no_grad():
        logits = model._forward(inputs)
        out = model.predict(inputs, samples)[0]
    assert torch.allclose(out.pred_edge.data, logits['edge'][0].sigmoid())
    assert torch.equal(out.pred_depth.data, logits['depth'][0])
    assert torch.equal(out.logits_depth.data, logits['depth'][0])


def test_no_labelled_pair_gives_differentiable_zero():
    model = MODELS.build(tiny_baseline_cfg())
    inputs, samples = make_batch([(0, ) * 5])
    losses = model.loss(inputs, samples)
    total = sum(losses.values())
    assert total.item() == 0.0
    total.backward()  # must not raise
