# Copyright (c) diffmtl contributors. All rights reserved.
"""Launcher set-up shared by ``tools/train.py`` and ``tools/test.py``.

The same config runs single-process, multi-GPU (NCCL) and CPU-only
multi-process (gloo) jobs. On a host without CUDA, mmengine 0.10.7 cannot
start a distributed job by itself:

* ``mmengine.dist.init_dist`` calls ``torch.cuda.set_device`` unconditionally
  (CPU-only torch builds raise ``AttributeError``), and the configs ask for
  the ``'nccl'`` backend, which needs GPUs;
* ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to
  ``MMDistributedDataParallel``, which DDP rejects for CPU modules.

:func:`setup_launcher` fixes the config (gloo backend, ``device_ids=None``).
:func:`init_distributed` initialises the process group before the
``Runner`` is built, for every launcher and backend: itself on hosts
without CUDA, with mmengine's ``init_dist`` (device binding, NCCL) on CUDA
hosts. The ``Runner`` then sees an initialised group and skips
``init_dist``, and what runs before it (the choice of the checkpoint to
resume from, :func:`diffmtl.engine.resolve_resume`) can already be decided
by rank 0 and broadcast to the other ranks.
"""
import copy
import datetime
import logging
import os
import sys
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.dist import init_dist
from mmengine.logging import print_log
from mmengine.utils.dl_utils import set_multi_processing

from .cpu_norms import sync_norms_to_bn

__all__ = [
    'cuda_available', 'set_local_rank_env', 'setup_launcher',
    'init_distributed', 'close_distributed', 'exit_finished_cpu_job'
]

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


def cuda_available() -> bool:
    """Whether this process can use CUDA (``torch.cuda.is_available()``)."""
    return torch.cuda.is_available()


def set_local_rank_env(local_rank: Optional[int]) -> None:
    """Export ``--local-rank`` as ``LOCAL_RANK`` unless it is already set.

    ``torch.distributed.launch`` passes ``--local-rank``; ``torchrun`` sets
    the ``LOCAL_RANK`` environment variable, which wins.

    Args:
        local_rank (int, optional): The value parsed from the command line.
    """
    if local_rank is not None and 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(local_rank)


def setup_launcher(cfg: Config,
                   launcher: str = 'none',
                   use_cuda: Optional[bool] = None) -> Config:
    """Set ``cfg.launcher`` and adapt the config to a host without CUDA.

    With ``launcher != 'none'`` and no CUDA:

    * ``env_cfg.dist_cfg.backend`` ``'nccl'`` (or unset) becomes ``'gloo'``;
    * ``model_wrapper_cfg.device_ids`` becomes ``None`` (CPU DDP). An unset
      ``model_wrapper_cfg`` is written out as mmengine's default wrapper
      (``MMDistributedDataParallel`` with ``broadcast_buffers=False`` and
      the config's ``find_unused_parameters``), plus ``device_ids=None``;
    * SyncBN norm configs of the model become BN, with one warning
      (:func:`~diffmtl.utils.cpu_norms.sync_norms_to_bn`): DDP refuses CPU
      modules with ``SyncBatchNorm`` layers.

    Explicit user choices (a non-NCCL backend, explicit ``device_ids``) are
    kept. On CUDA hosts only ``cfg.launcher`` is set.

    Args:
        cfg (Config): The config, modified in place.
        launcher (str): One of ``'none'``, ``'pytorch'``, ``'slurm'``,
            ``'mpi'``.
        use_cuda (bool, optional): Override CUDA detection (tests).

    Returns:
        Config: ``cfg``.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'launcher must be one of {LAUNCHERS}, '
                         f'got {launcher!r}')
    cfg.launcher = launcher
    if launcher == 'none':
        return cfg
    if use_cuda is None:
        use_cuda = cuda_available()
    if use_cuda:
        return cfg

    env_cfg = cfg.get('env_cfg') or ConfigDict()
    dist_cfg = env_cfg.get('dist_cfg') or ConfigDict()
    backend = dist_cfg.get('backend', 'nccl')
    if backend == 'nccl':
        dist_cfg['backend'] = 'gloo'
        print_log(
            'No CUDA device: using the gloo backend instead of nccl.',
            logger='current')
    env_cfg['dist_cfg'] = dist_cfg
    cfg.env_cfg = env_cfg

    wrapper_cfg = cfg.get('model_wrapper_cfg')
    if wrapper_cfg is None:
        wrapper_cfg = ConfigDict(
            type='MMDistributedDataParallel',
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper_cfg = copy.deepcopy(wrapper_cfg)
    wrapper_cfg.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper_cfg
    sync_norms_to_bn(cfg)
    return cfg


def init_distributed(cfg: Config, use_cuda: Optional[bool] = None) -> bool:
    """Initialise the default process group of a distributed job.

    Acts when ``cfg.launcher != 'none'`` and no group exists yet, on any
    host, so that code running before the ``Runner`` (which then skips its
    own ``init_dist``) can use collectives:

    * with CUDA, as the ``Runner`` would: ``env_cfg.mp_cfg`` is applied
      (``set_multi_processing``), then mmengine's
      ``init_dist(cfg.launcher, **env_cfg.dist_cfg)`` binds the process to
      its GPU and starts the group (NCCL by default), for every launcher;
    * without CUDA, only for ``launcher='pytorch'`` (``slurm`` / ``mpi``
      raise a clear error: mmengine binds their processes to GPUs); it
      reads the ``torchrun`` environment (``RANK``, ``WORLD_SIZE``,
      ``MASTER_ADDR``, ``MASTER_PORT``) and uses the backend from
      ``cfg.env_cfg.dist_cfg`` (gloo, see :func:`setup_launcher`).

    Args:
        cfg (Config): A config already passed through :func:`setup_launcher`.
        use_cuda (bool, optional): Override CUDA detection (tests).

    Returns:
        bool: Whether this call initialised the process group.

    Raises:
        RuntimeError: If torchrun's environment variables are missing, or
            for the ``slurm`` / ``mpi`` launchers on a host without CUDA.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none' or torch_dist.is_initialized():
        return False
    if use_cuda is None:
        use_cuda = cuda_available()
    env_cfg = cfg.get('env_cfg') or {}
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    if use_cuda:
        set_multi_processing(
            **dict(env_cfg.get('mp_cfg') or {}), distributed=True)
        init_dist(launcher, **dist_cfg)
        return True
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA devices (mmengine binds each '
            'process to a GPU). On a host without CUDA start CPU processes '
            'with tools/dist_train.sh / tools/dist_test.sh (torchrun, '
            '--launcher pytorch).')
    for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        if key not in os.environ:
            raise RuntimeError(
                f'--launcher pytorch needs the environment variable {key}; '
                'start the job with tools/dist_train.sh / dist_test.sh or '
                'torchrun.')
    backend = dist_cfg.pop('backend', 'gloo')
    if isinstance(dist_cfg.get('timeout'), (int, float)):
        dist_cfg['timeout'] = datetime.timedelta(seconds=dist_cfg['timeout'])
    torch_dist.init_process_group(backend=backend, **dist_cfg)
    return True


def close_distributed() -> bool:
    """Tear the default process group down at the end of a finished job.

    The ranks first meet at a barrier, so no peer is still sending, then
    the group is destroyed in order rather than left to interpreter
    shutdown. This alone does not stop a gloo rank from aborting in C++
    teardown after its work is done ("terminate called without an active
    exception", SIGABRT; seen in CI even after this call); the tools
    therefore pass its result to :func:`exit_finished_cpu_job`.

    Call it only after success: a rank that failed must not wait at the
    barrier for peers that may never arrive (torchrun then ends the others).

    Returns:
        bool: Whether a process group was destroyed.
    """
    if not (torch_dist.is_available() and torch_dist.is_initialized()):
        return False
    torch_dist.barrier()
    torch_dist.destroy_process_group()
    return True


def exit_finished_cpu_job(closed: bool) -> None:
    """End a finished CPU (gloo) multi-process rank without C++ teardown.

    Even with the group destroyed, a gloo rank can still abort in the C++
    static destructors at interpreter exit ("terminate called without an
    active exception", seen on the 2-core CI machine after the job had
    saved its last checkpoint and validated). Once the work is done and the
    group closed, the rank flushes its logs and streams and leaves with
    ``os._exit(0)``. Single-process and CUDA jobs return normally.

    Args:
        closed (bool): What :func:`close_distributed` returned.
    """
    if not closed or cuda_available():
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
