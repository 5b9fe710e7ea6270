# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/test.py refuses foreign pickles unless --trust-checkpoint."""
import pytest
import torch
from tool_runner import TOY_CFG, logged_metric, run_tool
from toy_components import ToyRegressionDataset, ToyRegressor

pytestmark = pytest.mark.slow


def test_foreign_checkpoint_refused_then_trusted(tmp_path):
    model = ToyRegressor(in_ch=4)
    with torch.no_grad():  # the exact solution: val MSE 0
        model.linear.weight.copy_(torch.arange(1., 5.).unsqueeze(0))
    path = tmp_path / 'legacy.pth'
    # an importable but non-allow-listed object, as old checkpoints hold
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset=ToyRegressionDataset(num_samples=2))), path)

    refused = run_tool(
        'test.py', [TOY_CFG, path, '--work-dir', tmp_path / 'a'], cwd=tmp_path)
    assert refused.returncode != 0
    assert f'Refusing to load checkpoint {path}' in refused.stdout
    assert 'toy_components.ToyRegressionDataset' in refused.stdout
    assert 'DIFFMTL_TRUSTED_CHECKPOINTS=1' in refused.stdout

    trusted = run_tool(
        'test.py',
        [TOY_CFG, path, '--work-dir', tmp_path / 'b', '--trust-checkpoint'],
        cwd=tmp_path)
    assert trusted.returncode == 0, trusted.stdout[-5000:]
    assert f'Loading checkpoint {path} with weights_only=False' in \
        trusted.stdout
    assert logged_metric(trusted.stdout, 'toy/mse') == 0
    assert logged_metric(trusted.stdout, 'toy/num_samples') == 8
