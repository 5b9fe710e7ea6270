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


def test_init_distributed_on_cuda_uses_mmengine_init_dist(monkeypatch):
    """With CUDA the group is started before the Runner too (the Runner then
    skips its own init_dist), with the config's launcher and dist_cfg."""
    from diffmtl.utils import launch
    calls = []
    monkeypatch.setattr(launch, 'init_dist',
                        lambda launcher, **kw: calls.append((launcher, kw)))
    monkeypatch.setattr(launch, 'set_multi_processing',
                        lambda **kw: calls.append(('mp', kw)))
    for launcher in ('pytorch', 'slurm', 'mpi'):
        cfg = setup_launcher(
            _cfg(env_cfg=dict(
                mp_cfg=dict(mp_start_method='fork'),
                dist_cfg=dict(backend='nccl', timeout=60))),
            launcher,
            use_cuda=True)
        assert init_distributed(cfg, use_cuda=True) is True
        assert calls[-2:] == [
            ('mp', dict(mp_start_method='fork', distributed=True)),
            (launcher, dict(backend='nccl', timeout=60)),
        ]
    assert init_distributed(setup_launcher(_cfg(), 'none'),
                            use_cuda=True) is False
    assert len(calls) == 6


def _resume_rank(rank, world, port, work_dir, out_dir):
    """One rank of a job started as on a CUDA host: ``build_runner`` must
    start the group (here a gloo one standing in for NCCL) before it
    resolves --resume, and rank 1 must take rank 0's choice."""
    import json
    from unittest import mock

    from mmengine.runner import Runner

    import diffmtl  # noqa: F401
    from diffmtl.engine import resume
    from diffmtl.utils import build_runner, launch

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world), MASTER_ADDR='127.0.0.1',
                      MASTER_PORT=str(port))

    def fake_init_dist(launcher, backend='nccl', **kwargs):
        torch_dist.init_process_group('gloo', rank=rank, world_size=world)

    def not_on_rank_1(*args, **kwargs):
        raise AssertionError('rank 1 looked for checkpoints itself')

    cfg = Config(dict(work_dir=work_dir, resume=True, load_from=None,
                      default_hooks=dict(checkpoint=dict(
                          type='CheckpointHook', interval=1)),
                      env_cfg=dict(dist_cfg=dict(backend='nccl'))))
    setup_launcher(cfg, 'pytorch', use_cuda=True)
    patches = [
        mock.patch.object(launch, 'cuda_available', lambda: True),
        mock.patch.object(launch, 'init_dist', fake_init_dist),
        mock.patch.object(Runner, 'from_cfg', staticmethod(lambda c: c)),
    ]
    if rank == 1:
        patches.append(mock.patch.object(
            resume, 'find_resumable_checkpoint', not_on_rank_1))
    for p in patches:
        p.start()
    try:
        built = build_runner(cfg)
        result = dict(load_from=built.load_from, resume=built.resume,
                      seed=(built.get('randomness') or {}).get('seed'),
                      world=torch_dist.get_world_size())
    finally:
        for p in patches:
            p.stop()
        if torch_dist.is_initialized():
            torch_dist.destroy_process_group()
    with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(result, f)


@pytest.mark.slow
@pytest.mark.slow
def test_resume_is_decided_by_rank_0_on_a_cuda_style_launch(tmp_path):
    import json

    import torch
    import torch.multiprocessing as mp
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    ckpt = work_dir / 'iter_3.pth'
    torch.save(dict(meta=dict(iter=3, seed=11), state_dict={}), ckpt)
    (work_dir / 'last_checkpoint').write_text(str(ckpt))
    mp.spawn(_resume_rank, args=(2, free_port(), str(work_dir),
                                 str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f'rank{r}.json').read_text())
               for r in range(2)]
    for r in results:
        assert r == dict(load_from=str(ckpt), resume=True, seed=11, world=2)
