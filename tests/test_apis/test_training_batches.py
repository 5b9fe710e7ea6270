# Copyright (c) diffmtl contributors. All rights reserved.
"""``training_batches``: the first batches of a config's training loader,
as training builds it, in this process."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from diffmtl.apis import training_batches
from diffmtl.datasets.synthetic import generate_synthetic_scenes

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _cfg(root):
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'baselines',
                 'mtl_baseline_synthetic_one_r18_matched.py'))
    cfg.train_dataloader.dataset.data_root = str(root)
    cfg.train_dataloader.batch_size = 2
    return cfg


def test_first_batches_of_the_seeded_training_loader(tmp_path):
    generate_synthetic_scenes(str(tmp_path), num_train=6, num_val=1,
                              num_test=0, seed=4, workers=1)
    cfg = _cfg(tmp_path)
    assert cfg.train_dataloader.num_workers > 0
    batches = training_batches(cfg, 3, seed=7)
    assert len(batches) == 3
    # mmengine's loader of the same config and seed, with its worker
    # processes, gives the same images in the same order
    with DefaultScope.overwrite_default_scope('mmseg'):
        with_workers = Runner.build_dataloader(
            _cfg(tmp_path).train_dataloader, seed=7)
        paths = [[s.img_path for s in b['data_samples']]
                 for b, _ in zip(with_workers, range(3))]
    assert [[s.img_path for s in b['data_samples']]
            for b in batches] == paths
    # the same seed, the same augmented batches, whatever ran in between;
    # another seed, other batches
    torch.rand(5)
    again = training_batches(cfg, 3, seed=7)
    other = training_batches(cfg, 3, seed=8)
    pairs = [(a, b, c) for x, y, z in zip(batches, again, other)
             for a, b, c in zip(x['inputs'], y['inputs'], z['inputs'])]
    assert all(torch.equal(a, b) for a, b, _ in pairs)
    assert not all(torch.equal(a, c) for a, _, c in pairs)
