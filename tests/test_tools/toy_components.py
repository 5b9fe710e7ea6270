# Copyright (c) diffmtl contributors. All rights reserved.
"""A toy model, dataset, metric and hook for testing the tools.

They are registered into MMSegmentation's registries (like every diffmtl
component) and loaded by ``tests/data/configs/toy_regression.py`` through
``custom_imports=dict(imports=['toy_components'])`` with this directory on
``PYTHONPATH``. They let the tool tests (train / resume / test / dist) run
in seconds on CPU, independent of the real diffmtl models and datasets.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from torch.utils.data import Dataset

from diffmtl.registry import DATASETS, HOOKS, METRICS, MODELS


@DATASETS.register_module()
class ToyRegressionDataset(Dataset):
    """``num_samples`` pairs ``(x, y = x @ w_true)`` from a fixed seed.

    Each item is ``dict(inputs=x (in_ch,), data_samples=y (1,))``.
    """

    METAINFO = dict(classes=('target', ), palette=[[255, 0, 0]])

    def __init__(self, num_samples: int = 8, in_ch: int = 4, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randn(num_samples, in_ch, generator=gen)
        w_true = torch.arange(1, in_ch + 1, dtype=torch.float32)
        self.y = (self.x @ w_true).unsqueeze(1)

    @property
    def metainfo(self) -> dict:
        return dict(self.METAINFO)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, idx: int) -> dict:
        return dict(inputs=self.x[idx], data_samples=self.y[idx])


@MODELS.register_module()
class ToyRegressor(BaseModel):
    """A linear regressor ``y = x @ w`` with an MSE loss."""

    def __init__(self, in_ch: int = 4, data_preprocessor=None, init_cfg=None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.linear = torch.nn.Linear(in_ch, 1, bias=False)
        torch.nn.init.zeros_(self.linear.weight)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: torch.Tensor,
                mode: str = 'tensor'):
        pred = self.linear(inputs)
        if mode == 'loss':
            return dict(loss_mse=((pred - data_samples)**2).mean())
        if mode == 'predict':
            return [
                dict(pred=p.detach(), target=t)
                for p, t in zip(pred, data_samples)
            ]
        return pred


@METRICS.register_module()
class ToyMSEMetric(BaseMetric):
    """Mean squared error and number of evaluated samples.

    With ``output_dir`` (``tools/test.py --out``) the per-sample errors are
    also written to ``<output_dir>/errors_rank<r>.json``.
    """

    default_prefix = 'toy'

    def __init__(self,
                 output_dir: Optional[str] = None,
                 keep_results: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.output_dir = output_dir
        self.keep_results = keep_results

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            err = float(((sample['pred'] - sample['target'])**2).sum())
            self.results.append(dict(sq_err=err))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        errors = [r['sq_err'] for r in results]
        if self.output_dir is not None:
            os.makedirs(self.output_dir, exist_ok=True)
            with open(osp.join(self.output_dir, 'errors.json'), 'w') as f:
                json.dump(errors, f)
        return dict(mse=float(np.mean(errors)), num_samples=len(errors))


@HOOKS.register_module()
class RankMarkerHook(Hook):
    """Writes ``<work_dir>/rank<r>_of_<world>.json`` after training.

    The file records how many train iterations this rank ran, so tests can
    check that every rank of a distributed job took part.
    """

    def __init__(self):
        self.iters = 0

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self.iters += 1

    def after_train(self, runner) -> None:
        rank, world_size = get_dist_info()
        path = osp.join(runner.work_dir, f'rank{rank}_of_{world_size}.json')
        with open(path, 'w') as f:
            json.dump(
                dict(
                    rank=rank,
                    world_size=world_size,
                    iters=self.iters,
                    final_iter=runner.iter), f)
