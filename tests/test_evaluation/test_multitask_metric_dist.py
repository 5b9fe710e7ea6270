# Copyright (c) diffmtl contributors. All rights reserved.
"""Two gloo processes must give exactly the single-process metrics."""
import os
import pickle
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from diffmtl.evaluation import MultiTaskMetric

pytestmark = pytest.mark.slow

META = dict(
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth'),
    task_classes=dict(semseg=('a', 'b', 'c', 'd')))
N_SAMPLES = 5  # odd: the sampler pads rank 1 with a duplicate
H, W = 24, 32


def random_samples(n=N_SAMPLES, seed=0):
    """``to_dict()``-like samples with random maps (plain nested dicts)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        seg = rng.integers(0, 4, (1, H, W))
        seg[0, :3] = 255
        parts = rng.integers(0, 7, (1, H, W)) if i % 2 else np.full(
            (1, H, W), 255)
        sal = rng.integers(0, 2, (1, H, W))
        nrm = rng.normal(size=(3, H, W))
        nrm[:, 0] = 0
        edge = np.zeros((1, H, W), np.int64)
        edge[0, rng.integers(2, H - 2), 3:W - 3] = 1
        edge_p = np.clip(
            np.roll(edge, rng.integers(-1, 2), axis=1) * 0.7 +
            rng.random((1, H, W)) * 0.4, 0, 1)
        depth = rng.random((1, H, W)) * 5
        depth[depth < 0.5] = 0

        def t(a, dtype=torch.float32):
            return dict(data=torch.as_tensor(a, dtype=dtype))

        out.append(
            dict(
                img_id=f'img{i}',
                tasks=META['tasks'],
                task_mask=(True, ) * 6,
                gt_sem_seg=t(seg, torch.int64),
                pred_sem_seg=t(rng.integers(0, 4, (1, H, W)), torch.int64),
                gt_human_parts=t(parts, torch.int64),
                pred_human_parts=t(rng.integers(0, 7, (1, H, W)),
                                   torch.int64),
                gt_sal=t(sal, torch.int64),
                pred_sal=t(rng.random((1, H, W))),
                gt_normals=t(nrm),
                pred_normals=t(nrm + rng.normal(scale=0.7, size=nrm.shape)),
                gt_edge=t(edge, torch.int64),
                pred_edge=t(edge_p),
                gt_depth=t(depth),
                pred_depth=t(depth + rng.normal(size=depth.shape))))
    return out


def build_metric():
    m = MultiTaskMetric(
        task_metrics=dict(edge=dict(thresholds=[0.3, 0.5, 0.7],
                                    max_dist=0.03)),
        delta_m_reference='pascal_one')
    m.dataset_meta = META
    return m


def _worker(rank, world, port, out_file):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    try:
        samples = random_samples()
        # DefaultSampler order: rank r gets r, r + world, ...; padded to an
        # equal length with samples from the start
        idx = list(range(N_SAMPLES))
        total = -(-N_SAMPLES // world) * world
        idx = (idx + idx[:total - N_SAMPLES])[rank:total:world]
        metric = build_metric()
        for i in idx:
            metric.process({}, [samples[i]])
        res = metric.evaluate(N_SAMPLES)
        with open(f'{out_file}.{rank}', 'wb') as f:
            pickle.dump(res, f)
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_processes_equal_one(tmp_path):
    single = build_metric()
    single.process({}, random_samples())
    expected = single.evaluate(N_SAMPLES)
    assert 'edge/odsF' in expected and 'human_parts/mIoU' in expected
    out = str(tmp_path / 'res.pkl')
    mp.spawn(_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        with open(f'{out}.{rank}', 'rb') as f:
            got = pickle.load(f)
        # every rank receives the broadcast result; numbers are identical
        assert got == expected
