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
from loss_gradients import format_table, gradient_table  # noqa: E402


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


def test_terms_of_no_task_get_rows_and_unused_terms_norm_zero():
    """JTR: the distance term reaches F through the unlabelled tasks'
    predictions of view 1; g's own terms (distance on view 2,
    reconstruction) do not reach F or the backbone at all."""
    sys.path.insert(0, str(REPO / 'tests' / 'test_projects'))
    from test_jtr_model import batch, build
    model = build(seed=0)
    model.train()
    inputs, samples = batch()
    torch.manual_seed(2)
    table = gradient_table(model, [dict(inputs=inputs,
                                        data_samples=samples)])
    assert table['jtr.loss_dist']['feat'] > 0
    assert table['jtr.loss_dist']['backbone'] > 0
    for key in ('jtr.loss_dist_g', 'jtr.loss_recon'):
        assert table[key] == dict(feat=0.0, backbone=0.0, n=1)
    text = format_table(table, list(model.tasks))
    rows = {line.split()[0]: line.split()[1:]
            for line in text.splitlines()[1:]}
    assert float(rows['jtr.loss_dist'][0]) == pytest.approx(
        table['jtr.loss_dist']['feat'], rel=1e-3)
    assert rows['jtr.loss_recon'] == ['0', '0', '1']
    assert 'semseg' in rows and 'other' in rows
