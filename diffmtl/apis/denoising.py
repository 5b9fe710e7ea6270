# Copyright (c) diffmtl contributors. All rights reserved.
"""Run a model's denoising process on packed samples.

A DiffusionMTL model exposes ``model.denoising_process(inputs)`` returning,
per task, the ordered stages ``[('initial', logits), ('noisy', ...),
('step_1', ...), ..., ('final', logits)]`` as (B, n_t, H, W) logits at input
size. :func:`run_denoising_process` feeds packed samples through the model's
data preprocessor, calls it with a fixed seed (inference is stochastic),
turns every stage into a prediction with the task kind's
:func:`~diffmtl.models.utils.logits_to_pred` and removes the padding.
Drawing the stages is :mod:`diffmtl.visualization.denoising_process`'s
job.
"""
from typing import Optional, Sequence

import torch
from mmengine.model import is_model_wrapper

from diffmtl.models.utils.postprocess import logits_to_pred
from diffmtl.structures import unpad_window

__all__ = ['run_denoising_process']


@torch.no_grad()
def run_denoising_process(model: torch.nn.Module,
                          data: dict,
                          seed: Optional[int] = 0,
                          tasks: Optional[Sequence[str]] = None) -> list:
    """Run ``model.denoising_process`` on packed samples.

    Args:
        model (nn.Module): Model with ``data_preprocessor`` and
            ``denoising_process(inputs) -> {task: [(stage, logits)]}``
            (wrappers such as DDP are unwrapped).
        data (dict): ``inputs`` (list of (3, H, W) tensors) and
            ``data_samples`` (list of SegDataSample), as a dataset or the
            test pipeline produces them. Images are run one at a time so
            that their sizes may differ.
        seed (int, optional): Seed of the process' noise; the global RNG
            state is restored afterwards. None leaves the RNG alone.
        tasks (sequence of str, optional): Keep only these tasks.

    Returns:
        list[dict]: Per image ``{task: [(stage, pred)]}`` with ``pred`` a
        CPU tensor (C, h, w) from :func:`logits_to_pred` with the padding
        removed, plus the key ``'data_sample'`` holding the preprocessed
        sample and ``'window'``, the (top, bottom, left, right) bounds of
        the image in the padded input (see
        :func:`~diffmtl.structures.unpad_window`).

    Raises:
        AttributeError: If the model has no ``denoising_process``.
    """
    model = model.module if is_model_wrapper(model) else model
    if not hasattr(model, 'denoising_process'):
        raise AttributeError(
            f'{type(model).__name__} has no denoising_process(inputs); only '
            'DiffusionMTL-style models can draw their denoising process')
    was_training = model.training
    model.eval()
    results = []
    try:
        for inputs, sample in zip(data['inputs'], data['data_samples']):
            batch = model.data_preprocessor(
                dict(inputs=[inputs], data_samples=[sample]), False)
            x, sample = batch['inputs'], batch['data_samples'][0]
            top, bottom, left, right = unpad_window(sample.metainfo,
                                                    x.shape[-2:])
            devices = [x.device.index or 0] if x.is_cuda else []
            with torch.random.fork_rng(devices=devices,
                                       enabled=seed is not None):
                if seed is not None:
                    torch.manual_seed(seed)
                process = model.denoising_process(x)
            out = {'data_sample': sample}
            for task, stages in process.items():
                if tasks is not None and task not in tasks:
                    continue
                out[task] = [(name,
                              logits_to_pred(task,
                                             logits.float())[0, :, top:bottom,
                                                             left:right].cpu())
                             for name, logits in stages]
            out['window'] = (top, bottom, left, right)
            results.append(out)
    finally:
        model.train(was_training)
    return results
