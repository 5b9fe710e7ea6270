# Copyright (c) diffmtl contributors. All rights reserved.
"""Training and inference speed and memory of configs on random data.

For each config the model is built offline with random initial weights
(pretrained ``init_cfg`` / ``pretrained`` dropped, so nothing is
downloaded; SyncBN layers become BN, as for one process) and fed random
one-label batches: ``--batch`` images of ``--size`` x ``--size`` random
pixels, each labelled for one task drawn at random (its ground truth
random class ids, 0/1 labels or values in (0.1, 1) per channel, the other
tasks filled with their pad values), so no dataset is needed. Measured:

* training, for each ``--precisions`` entry (``fp32``: the config's
  ``OptimWrapper``; ``fp16`` / ``bf16``: ``AmpOptimWrapper`` with a
  dynamic loss scale and that autocast dtype): seconds per iteration
  (median of ``--iters`` after ``--warmup``), images per second and the
  peak GPU memory allocated (GiB; None on the CPU). ``model.train_step``
  only, data loading excluded (``benchmark_train.py`` times a config's own
  dataloader and data);
* inference: ``model.test_step`` on one image at a time, milliseconds per
  image (median of ``--infer-images``), with the config's seeded noise
  and, for models that have it, with ``inference_seed=None`` (noise from
  the global RNG, no per-image generators).

AMP needs CUDA (mmengine's ``AmpOptimWrapper``); on the CPU those rows
are reported as skipped. Run it on an otherwise idle machine.

Example (one H100, the PASCAL one-label configs)::

    python tools/analysis_tools/benchmark_gpu.py \\
        configs/diffmtl/pascal_one_r18.py \\
        configs/baselines/mtl_baseline_pascal_one_r18.py \\
        --size 512 --batch 6 --out work_dirs/benchmark_gpu.json
"""
import argparse
import copy
import importlib.util
import json
import os.path as osp
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import Config, DictAction

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

__all__ = [
    'PRECISIONS', 'build_model', 'random_batch', 'time_training',
    'time_inference', 'benchmark_config', 'markdown_table'
]

#: ``--precisions`` choices: the optimizer wrapper and autocast dtype.
PRECISIONS = {
    'fp32': None,
    'fp16': 'float16',
    'bf16': 'bfloat16',
}


def _drop_pretrained(model_cfg: dict) -> dict:
    """``tools/misc/model_fingerprints.py``'s offline model config."""
    path = osp.join(REPO_ROOT, 'tools', 'misc', 'model_fingerprints.py')
    spec = importlib.util.spec_from_file_location('_model_fingerprints',
                                                  path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.drop_pretrained(model_cfg)


def build_model(cfg: Config, device: str, seed: int = 0) -> torch.nn.Module:
    """The config's model, randomly initialised, one-process norms.

    Args:
        cfg (Config): A loaded config.
        device (str): Where to put the model.
        seed (int): ``torch.manual_seed`` before building.

    Returns:
        nn.Module: The model (training mode).
    """
    import diffmtl  # noqa: F401  (registers diffmtl modules)
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope

    from diffmtl.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    torch.manual_seed(seed)
    model = MODELS.build(_drop_pretrained(copy.deepcopy(cfg.model)))
    model.init_weights()
    model = revert_sync_batchnorm(model)
    return model.to(device).train()


def random_batch(model: torch.nn.Module, batch: int, size: int,
                 seed: int) -> dict:
    """A random one-label batch for ``model.train_step`` / ``test_step``.

    Args:
        model (nn.Module): A diffmtl multi-task model (``tasks``,
            ``out_channels``).
        batch (int): Images.
        size (int): Height and width.
        seed (int): Seed of the pixels, labels and labelled tasks.

    Returns:
        dict: ``inputs`` (list of (3, size, size) uint8 CPU tensors) and
        ``data_samples`` (``SegDataSample`` with every task's GT field).
    """
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    from diffmtl.structures import get_task_spec
    g = torch.Generator().manual_seed(seed)
    tasks = tuple(model.tasks)
    inputs, samples = [], []
    for _ in range(batch):
        inputs.append(
            torch.randint(0, 256, (3, size, size), generator=g,
                          dtype=torch.uint8))
        labelled = int(torch.randint(0, len(tasks), (1, ), generator=g))
        meta = dict(
            tasks=tasks,
            task_mask=tuple(i == labelled for i in range(len(tasks))),
            img_shape=(size, size),
            ori_shape=(size, size),
            pad_shape=(size, size))
        sample = SegDataSample(metainfo=meta)
        for i, task in enumerate(tasks):
            spec = get_task_spec(task)
            shape = (spec.gt_channels, size, size)
            if i != labelled:
                dtype = torch.int64 if spec.discrete else torch.float32
                gt = torch.full(shape, spec.pad_value, dtype=dtype)
            elif spec.discrete:
                high = max(int(model.out_channels[task]), 2)
                gt = torch.randint(0, high, shape, generator=g)
            else:
                gt = 0.1 + 0.9 * torch.rand(shape, generator=g)
            sample.set_field(PixelData(data=gt), spec.gt_field)
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def _sync(device: str) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if torch.device(device).type == 'cuda':
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> Optional[float]:
    if torch.device(device).type != 'cuda':
        return None
    return torch.cuda.max_memory_allocated() / 2**30


def _optim_wrapper(model, cfg: Config, precision: str):
    from mmengine.optim import build_optim_wrapper
    wrapper = copy.deepcopy(dict(cfg.optim_wrapper))
    dtype = PRECISIONS[precision]
    if dtype is not None:
        wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic',
                       dtype=dtype)
    return build_optim_wrapper(model, Config(dict(optim_wrapper=wrapper))
                               .optim_wrapper)


def time_training(cfg: Config, precision: str, device: str, batch: int,
                  size: int, iters: int, warmup: int, seed: int = 0) -> dict:
    """Time ``model.train_step`` at one precision.

    Returns:
        dict: ``precision``, ``status`` (``'ok'``, ``'skipped: ...'`` or
        ``'error: ...'``), ``sec_per_iter`` (median), ``mean``,
        ``images_per_sec``, ``peak_gib``, ``final_loss`` and ``finite``
        (every timed loss finite).
    """
    row = dict(precision=precision, batch=batch, size=size)
    if PRECISIONS[precision] is not None and \
            torch.device(device).type != 'cuda':
        return dict(row, status='skipped: AMP needs CUDA')
    model = optim = None
    try:
        model = build_model(cfg, device, seed)
        optim = _optim_wrapper(model, cfg, precision)
        batches = [random_batch(model, batch, size, seed + k)
                   for k in range(min(4, warmup + iters))]
        times, losses = [], []
        _reset_peak(device)
        for i in range(warmup + iters):
            _sync(device)
            t0 = time.perf_counter()
            log_vars = model.train_step(batches[i % len(batches)], optim)
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                losses.append(float(log_vars['loss'].detach()))
        median = statistics.median(times)
        return dict(
            row,
            status='ok',
            sec_per_iter=median,
            mean=statistics.fmean(times),
            images_per_sec=batch / median,
            peak_gib=_peak_gib(device),
            final_loss=losses[-1],
            finite=all(l == l and abs(l) != float('inf') for l in losses))
    except torch.cuda.OutOfMemoryError as err:
        return dict(row, status=f'error: out of memory ({err})'[:300])
    finally:
        del model, optim
        if torch.device(device).type == 'cuda':
            torch.cuda.empty_cache()


def time_inference(cfg: Config, device: str, size: int, images: int,
                   seed: int = 0) -> List[dict]:
    """Milliseconds per image of ``model.test_step`` (batch 1).

    Returns:
        list[dict]: ``noise`` (``'seeded'``: the config's
        ``inference_seed``; ``'global RNG'``: ``inference_seed=None``;
        ``'n/a'`` for models without one), ``ms_per_image`` (median),
        ``peak_gib``.
    """
    model = build_model(cfg, device, seed).eval()
    data = [random_batch(model, 1, size, seed + 100 + k)
            for k in range(images + 1)]
    variants = [('n/a', None)]
    if hasattr(model, 'inference_seed'):
        seeded = model.inference_seed if model.inference_seed is not None \
            else 0
        variants = [('seeded', seeded), ('global RNG', None)]
    rows = []
    for name, value in variants:
        if name != 'n/a':
            model.inference_seed = value
        _reset_peak(device)
        times = []
        with torch.no_grad():
            for k, batch in enumerate(data):
                _sync(device)
                t0 = time.perf_counter()
                model.test_step(batch)
                _sync(device)
                if k:  # the first image warms up
                    times.append(1000 * (time.perf_counter() - t0))
        rows.append(
            dict(noise=name, ms_per_image=statistics.median(times),
                 peak_gib=_peak_gib(device), size=size))
    del model
    return rows


def benchmark_config(path: str,
                     precisions: Sequence[str] = ('fp32', 'fp16', 'bf16'),
                     device: str = 'cuda',
                     batch: int = 6,
                     size: int = 512,
                     iters: int = 20,
                     warmup: int = 5,
                     infer_images: int = 10,
                     options: Optional[dict] = None,
                     seed: int = 0) -> Dict[str, object]:
    """Training rows (one per precision) and inference rows of a config."""
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(options)
    train = [
        time_training(cfg, p, device, batch, size, iters, warmup, seed)
        for p in precisions
    ]
    infer = time_inference(cfg, device, size, infer_images, seed) \
        if infer_images > 0 else []
    return dict(config=path, model=cfg.model.get('type'), train=train,
                inference=infer)


def _fmt(value, digits=3):
    if value is None:
        return '-'
    return f'{value:.{digits}f}'


def markdown_table(results: Sequence[dict]) -> str:
    """Two markdown tables (training, inference) of :func:`benchmark_config`
    results."""
    lines = [
        '| config | precision | s/iter | images/s | peak GiB | status |',
        '|---|---|---|---|---|---|'
    ]
    for res in results:
        name = osp.basename(res['config'])
        for r in res['train']:
            lines.append(
                f"| {name} | {r['precision']} | {_fmt(r.get('sec_per_iter'))}"
                f" | {_fmt(r.get('images_per_sec'), 1)} | "
                f"{_fmt(r.get('peak_gib'), 2)} | {r['status']} |")
    lines += [
        '', '| config | inference noise | ms/image | peak GiB |',
        '|---|---|---|---|'
    ]
    for res in results:
        name = osp.basename(res['config'])
        for r in res['inference']:
            lines.append(f"| {name} | {r['noise']} | "
                         f"{_fmt(r['ms_per_image'], 1)} | "
                         f"{_fmt(r.get('peak_gib'), 2)} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Training / inference speed and memory on random data')
    p.add_argument('configs', nargs='+', help='config files')
    p.add_argument('--device', default=None,
                   help='cuda or cpu (default: cuda when available)')
    p.add_argument('--size', type=int, default=512,
                   help='image height and width (default 512)')
    p.add_argument('--batch', type=int, default=6,
                   help='training batch size (default 6)')
    p.add_argument('--iters', type=int, default=20,
                   help='timed training iterations (default 20)')
    p.add_argument('--warmup', type=int, default=5,
                   help='untimed iterations first (default 5)')
    p.add_argument('--precisions', nargs='+', default=list(PRECISIONS),
                   choices=list(PRECISIONS))
    p.add_argument('--infer-images', type=int, default=10,
                   help='timed inference images (0: no inference)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', help='write the results as JSON here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides applied to every config')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.logging import MMLogger

    # init_weights reports every parameter at INFO on the current logger
    MMLogger.get_instance('benchmark_gpu', log_level='WARNING')
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.iters < 1 or args.warmup < 0 or args.batch < 1:
        raise SystemExit('--iters and --batch must be >= 1, --warmup >= 0')
    name = torch.cuda.get_device_name() if device == 'cuda' else 'CPU'
    print(f'torch {torch.__version__} on {name}; batch {args.batch}, '
          f'{args.size}x{args.size}, {args.warmup} warm-up + {args.iters} '
          'timed iterations')
    results = [
        benchmark_config(c, args.precisions, device, args.batch, args.size,
                         args.iters, args.warmup, args.infer_images,
                         args.cfg_options, args.seed) for c in args.configs
    ]
    print(markdown_table(results))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(device=name, torch=torch.__version__,
                           results=results), f, indent=2)
    return results


if __name__ == '__main__':
    main()
