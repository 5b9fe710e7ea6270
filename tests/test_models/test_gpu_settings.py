# Copyright (c) diffmtl contributors. All rights reserved.
"""Settings that matter on a GPU, checked on the CPU: the documented
defaults of ``env_cfg.cudnn_benchmark``, the data preprocessor's
``non_blocking`` copies, and the labelled rows the training loss takes
from the host instead of a device mask."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from diffmtl.models.data_preprocessor import MultiTaskDataPreProcessor
from diffmtl.registry import MODELS
from _mtl_model_utils import make_batch, tiny_diffusion_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.parametrize(
    'path',
    sorted(glob.glob(osp.join(REPO, 'configs', 'diffmtl', '*.py'))) +
    sorted(glob.glob(osp.join(REPO, 'configs', 'baselines', '*.py'))),
    ids=osp.basename)
def test_configs_default_to_no_cudnn_benchmark_and_no_pinned_memory(path):
    """docs/en/gpu.md: cudnn_benchmark off (test images of varying sizes
    would re-tune every new shape) and unpinned loader memory unless a run
    asks for them (--cfg-options env_cfg.cudnn_benchmark=True
    train_dataloader.pin_memory=True)."""
    cfg = Config.fromfile(path)
    assert cfg.env_cfg.cudnn_benchmark is False
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        if cfg.get(key):
            assert cfg[key].get('pin_memory', False) is False, key
    pre = cfg.model.get('data_preprocessor') or {}
    assert pre.get('non_blocking', False) is False


def test_data_preprocessor_non_blocking_option():
    kwargs = dict(mean=[1., 2., 3.], std=[2., 2., 2.], size_divisor=32)
    blocking = MultiTaskDataPreProcessor(**kwargs)
    non_blocking = MultiTaskDataPreProcessor(non_blocking=True, **kwargs)
    assert not blocking._non_blocking and non_blocking._non_blocking
    _, samples = make_batch([(1, ) * 5] * 2)
    data = dict(inputs=[torch.randint(0, 256, (3, 32, 48), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)
    a = blocking(data, training=True)
    b = non_blocking(data, training=True)
    assert torch.equal(a['inputs'], b['inputs'])
    assert a['inputs'].shape == (2, 3, 32, 64)


def test_labelled_rows_match_the_mask():
    model = MODELS.build(tiny_diffusion_cfg())
    masks = [(1, 0, 1, 0, 0), (0, 0, 1, 1, 0), (1, 0, 0, 0, 0)]
    _, samples = make_batch(masks)
    mask, rows = model.labelled_rows(samples, 'cpu')
    assert torch.equal(mask, model.labelled_mask(samples, 'cpu'))
    assert torch.equal(mask, torch.tensor(masks, dtype=torch.bool))
    assert [r.tolist() for r in rows] == [[0, 2], [], [0, 1], [1], []]
    assert all(r.dtype == torch.int64 for r in rows)
