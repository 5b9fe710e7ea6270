# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/jtr/tools/latent_distance.py: its d1 is the loss's own d1 on
the same views, and every encoder sees the same stacks. (The command runs
on a trained project config in
``test_jtr_configs.test_train_and_test_tools_run_the_project_config``.)"""
import copy
import math
import os.path as osp
import sys

import pytest
import torch

from projects.jtr.tools.latent_distance import latent_distances

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__))))
from test_jtr_model import batch, build  # noqa: E402


def _expected_d1(model, data, seed):
    """JTRLoss.terms on the views the model makes from the same draws:
    the weighted mean of d1 over the batch."""
    torch.manual_seed(seed)
    data = model.data_preprocessor(data, True)
    inputs, samples = data['inputs'], data['data_samples']
    size = inputs.shape[-2:]
    mask, rows = model.labelled_rows(samples, inputs.device)
    gts = model.labelled_gt(samples, mask, size, inputs.device, rows)
    view_inputs, view_gts = model.make_views(inputs, gts)
    logits = model.view_logits(inputs, view_inputs)
    with torch.no_grad():
        terms = model.jtr_loss.terms(
            model.jtr_net, *model.jtr_loss_inputs(logits, view_gts, size),
            mask)
    w = terms['weight_v1']
    return float((terms['dist'] * w).sum() / w.sum()), int(w.sum())


def test_d1_is_the_loss_terms_d1_and_encoders_share_the_stacks():
    model = build(seed=0)
    model.train()
    inputs, samples = batch()
    data = dict(inputs=inputs, data_samples=samples)
    expected, images = _expected_d1(model, data, seed=5)
    same = copy.deepcopy(model.jtr_net)
    torch.manual_seed(5)
    got = latent_distances(model, [data], dict(g=model.jtr_net, copy=same))
    assert got['g']['images'] == images == 4
    assert got['g']['dist'] == pytest.approx(expected, rel=1e-5)
    # the same stacks for every encoder: an identical copy, the same d1
    assert got['copy']['dist'] == got['g']['dist']
    assert 0 < got['input_rel']['value'] < math.inf
    # the encoder's buffers are left as they were
    for (k, a), b in zip(model.jtr_net.state_dict().items(),
                         same.state_dict().values()):
        assert torch.equal(a, b), k
