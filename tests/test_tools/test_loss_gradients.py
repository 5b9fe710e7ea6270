# Copyright (c) diffmtl contributors. All rights reserved.
"""``tools/analysis_tools/loss_gradients.py``: per-term gradient norms at
the shared features equal a direct autograd computation."""
import sys

import pytest
import torch

from diffmtl.registry import MODELS
from tool_runner import REPO

sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))
sys.path.insert(0, str(REPO / 'tests' / 'test_models'))
from _mtl_model_utils import make_batch, tiny_diffusion_cfg  # noqa: E402
from loss_gradients import gradient_table  # noqa: E402


def test_gradient_table_matches_autograd():
    torch.manual_seed(0)
    model = MODELS.build(tiny_diffusion_cfg(inference_seed=None))
    model.train()
    masks = [(1, 0, 0, 0, 1), (0, 1, 1, 0, 0)]
    inputs, samples = make_batch(masks)
    # the same training noise for the table and the direct computation
    torch.manual_seed(1)
    table = gradient_table(model, [dict(inputs=inputs,
                                        data_samples=samples)])
    torch.manual_seed(1)
    feats = model.extract_feat(inputs)
    orig = model.extract_feat
    model.extract_feat = lambda x: feats
    try:
        losses = model.loss(inputs, samples)
    finally:
        model.extract_feat = orig
    for key in ('semseg.loss', 'semseg.loss_init', 'sal.loss',
                'edge.loss_init'):
        g = torch.autograd.grad(losses[key], feats, retain_graph=True)[0]
        assert table[key]['feat'] == pytest.approx(float(g.norm()),
                                                   rel=1e-4)
        assert table[key]['n'] == 1
        assert table[key]['backbone'] > 0
    # a task without labels in the batch has no term
    assert 'normals.loss' not in table
    assert -1 <= table['semseg.cos']['cos'] <= 1
