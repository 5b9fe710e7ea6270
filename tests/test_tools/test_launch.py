# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.utils.launch: CPU/GPU launcher set-up used by the tools."""
import os

import pytest
import torch.distributed as torch_dist
from mmengine.config import Config
from tool_runner import free_port

from diffmtl.utils import (close_distributed, init_distributed,
                           set_local_rank_env, setup_launcher)


def _cfg(**kwargs):
    base = dict(env_cfg=dict(dist_cfg=dict(backend='nccl')))
    base.update(kwargs)
    return Config(base)


def test_cpu_launch_switches_to_gloo_and_cpu_ddp():
    cfg = setup_launcher(_cfg(), 'pytorch', use_cuda=False)
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    # mmengine's own default wrapper, written out, without device_ids
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        broadcast_buffers=False,
        find_unused_parameters=False,
        device_ids=None)


def test_cpu_launch_keeps_user_wrapper_and_backend():
    cfg = _cfg(
        env_cfg=dict(dist_cfg=dict(backend='mpi', timeout=60)),
        model_wrapper_cfg=dict(
            type='MMDistributedDataParallel', find_unused_parameters=True))
    setup_launcher(cfg, 'slurm', use_cuda=False)
    assert cfg.env_cfg.dist_cfg == dict(backend='mpi', timeout=60)
    assert cfg.model_wrapper_cfg == dict(
        type='MMDistributedDataParallel',
        find_unused_parameters=True,
        device_ids=None)

    cfg = _cfg(find_unused_parameters=True)
    setup_launcher(cfg, 'pytorch', use_cuda=False)
    assert cfg.model_wrapper_cfg.find_unused_parameters is True


def test_gpu_and_single_process_launch_leave_config_alone():
    cfg = setup_launcher(_cfg(), 'pytorch', use_cuda=True)
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    cfg = setup_launcher(_cfg(), 'none', use_cuda=False)
    assert cfg.launcher == 'none'
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg
    with pytest.raises(ValueError, match='launcher must be one of'):
        setup_launcher(_cfg(), 'torchrun')


def test_set_local_rank_env(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    set_local_rank_env(3)
    assert os.environ['LOCAL_RANK'] == '3'
    set_local_rank_env(1)  # torchrun's environment wins
    assert os.environ['LOCAL_RANK'] == '3'


def test_init_distributed_needs_torchrun_env(monkeypatch):
    cfg = setup_launcher(_cfg(), 'pytorch', use_cuda=False)
    for key, value in dict(
            RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1').items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv('MASTER_PORT', raising=False)
    with pytest.raises(RuntimeError, match='MASTER_PORT'):
        init_distributed(cfg, use_cuda=False)
    assert init_distributed(
        setup_launcher(_cfg(), 'none'), use_cuda=False) is False
    assert init_distributed(cfg, use_cuda=True) is False
    slurm = setup_launcher(_cfg(), 'slurm', use_cuda=False)
    with pytest.raises(RuntimeError, match='launcher slurm needs CUDA'):
        init_distributed(slurm, use_cuda=False)


def test_init_distributed_starts_a_gloo_group(monkeypatch):
    cfg = setup_launcher(
        _cfg(env_cfg=dict(dist_cfg=dict(backend='nccl', timeout=120))),
        'pytorch',
        use_cuda=False)
    for key, value in dict(
            RANK='0',
            WORLD_SIZE='1',
            MASTER_ADDR='127.0.0.1',
            MASTER_PORT=str(free_port())).items():
        monkeypatch.setenv(key, value)
    assert init_distributed(cfg, use_cuda=False) is True
    try:
        assert torch_dist.get_backend() == 'gloo'
        assert torch_dist.get_world_size() == 1
        # an existing group is reused, not re-initialised
        assert init_distributed(cfg, use_cuda=False) is False
    finally:
        # the tools end a finished job with close_distributed (a barrier,
        # then the group destroyed), so no rank tears gloo down mid-exchange
        assert close_distributed() is True
    assert not torch_dist.is_initialized()
    assert close_distributed() is False  # nothing left to close


def test_exit_finished_cpu_job_only_after_a_closed_cpu_group(monkeypatch):
    from diffmtl.utils import launch
    codes = []
    monkeypatch.setattr(launch.os, '_exit', codes.append)
    monkeypatch.setattr(launch, 'cuda_available', lambda: False)
    launch.exit_finished_cpu_job(False)  # single process: returns normally
    assert codes == []
    launch.exit_finished_cpu_job(True)  # a closed gloo group: exit 0 now
    assert codes == [0]
    monkeypatch.setattr(launch, 'cuda_available', lambda: True)
    launch.exit_finished_cpu_job(True)  # CUDA jobs are left to mmengine
    assert codes == [0]
