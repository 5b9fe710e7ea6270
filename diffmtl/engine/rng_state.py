# Copyright (c) diffmtl contributors. All rights reserved.
"""Capture and restore the random number generator states of a process.

Training draws random numbers from process-global generators: DiffusionMTL
samples its diffusion noise with ``torch.randn_like``, dropout and drop-path
use torch's generator, augmentations in the main process use numpy's and
Python's. A checkpoint that omits these states cannot be resumed
bit-identically. :func:`get_rng_state` returns them as a plain dict of
tensors and numbers (it passes ``torch.load(weights_only=True)`` without
widening diffmtl's allow-list); :func:`set_rng_state` puts them back.
:func:`gather_rng_states` collects the state of every rank of a distributed
job (rank ``r`` at index ``r``).
"""
import random
from typing import Any, Dict, List

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size

__all__ = ['get_rng_state', 'set_rng_state', 'gather_rng_states']


def get_rng_state() -> Dict[str, Any]:
    """The torch (CPU and current CUDA device), numpy and Python states.

    The CUDA state is included only when CUDA has been initialised in this
    process (a CPU-only job never touches the CUDA generators).

    Returns:
        dict: ``torch`` (uint8 tensor), ``numpy`` (dict), ``python`` (dict)
        and, with CUDA, ``cuda`` (uint8 tensor) and ``cuda_device`` (int).
    """
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(
            name=str(np_name),
            keys=torch.from_numpy(np_keys.astype(np.int64)),
            pos=int(np_pos),
            has_gauss=int(np_has_gauss),
            cached_gaussian=float(np_gauss)),
        python=dict(
            version=int(py_version),
            internal=torch.tensor(py_internal, dtype=torch.int64),
            gauss_next=py_gauss))
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state()
        state['cuda_device'] = torch.cuda.current_device()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore a state returned by :func:`get_rng_state`.

    Tensors may have been mapped to another device by ``map_location``;
    they are moved back to the CPU first. A CUDA state is restored to the
    current CUDA device when CUDA is available, and ignored otherwise.

    Args:
        state (dict): The state.
    """
    torch.set_rng_state(state['torch'].cpu())
    np_state = state['numpy']
    np.random.set_state(
        (np_state['name'], np_state['keys'].cpu().numpy().astype(np.uint32),
         np_state['pos'], np_state['has_gauss'], np_state['cached_gaussian']))
    py_state = state['python']
    internal = tuple(int(v) for v in py_state['internal'].cpu().tolist())
    random.setstate((py_state['version'], internal, py_state['gauss_next']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state['cuda'].cpu())


def gather_rng_states(state: Dict[str, Any] = None) -> List[Dict[str, Any]]:
    """The RNG states of all ranks (a collective call in distributed jobs).

    Args:
        state (dict, optional): This rank's state; defaults to
            :func:`get_rng_state`.

    Returns:
        list[dict]: One state per rank, indexed by rank.
    """
    if state is None:
        state = get_rng_state()
    if get_world_size() == 1:
        return [state]
    return all_gather_object(state)
