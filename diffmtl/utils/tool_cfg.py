# Copyright (c) diffmtl contributors. All rights reserved.
"""Config edits behind the ``tools/train.py`` / ``tools/test.py`` flags.

Each function applies one command-line option to an mmengine ``Config`` so
the tools stay thin and the behaviour is testable without running a job.
The semantics follow MMSegmentation's stock tools unless noted.
"""
import argparse
import logging
import os
import os.path as osp
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.runner import Runner

from .launch import (LAUNCHERS, cuda_available, init_distributed,
                     set_local_rank_env, setup_launcher)

__all__ = [
    'add_common_args', 'load_tool_config', 'set_work_dir', 'enable_amp',
    'enable_visualization', 'set_test_output', 'enable_tta',
    'drop_training', 'enable_safe_checkpoints', 'build_runner',
    'add_finite_check_hook', 'enable_data_check', 'prepare_output_dir',
    'mark_output_complete', 'OUTPUT_COMPLETE', 'OUTPUT_INCOMPLETE'
]

#: Config keys only training needs (mmengine wants the first three all set
#: or all None).
TRAINING_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper',
                 'param_scheduler')


def add_common_args(
        parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options ``tools/train.py`` and ``tools/test.py`` share.

    ``--trust-checkpoint``, ``--allow-partial-checkpoint``,
    ``--cfg-options``, ``--launcher`` and ``--local_rank`` /
    ``--local-rank``. Each tool adds its own positional
    arguments and ``--work-dir`` (whose meaning differs between them).

    Args:
        parser (argparse.ArgumentParser): The parser, modified in place.

    Returns:
        argparse.ArgumentParser: ``parser``.
    """
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        default=False,
        help='load checkpoints with weights_only=False (runs code from the '
        'pickle; only for files you trust). Same as '
        'DIFFMTL_TRUSTED_CHECKPOINTS=1')
    parser.add_argument(
        '--allow-partial-checkpoint',
        action='store_true',
        default=False,
        help='load a checkpoint whose keys or shapes do not all match the '
        'model (the rest keeps its initial values); without it such a '
        'checkpoint is an error. Same as allow_partial_checkpoint=True in '
        'the config')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='KEY=VALUE pairs applied on top of the config file, with '
        'dotted keys for nested fields (e.g. train_cfg.max_iters=100). '
        'Lists are written a,b or "[a,b]", nested sequences as '
        '"[(a,b),(c,d)]"; quote such values and put no spaces inside one '
        'pair.')
    parser.add_argument(
        '--launcher',
        choices=list(LAUNCHERS),
        default='none',
        help='job launcher')
    # torch.distributed.launch passes --local-rank (older: --local_rank);
    # torchrun sets the LOCAL_RANK environment variable instead.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def load_tool_config(args: argparse.Namespace) -> Config:
    """Start-up shared by the tools: read the config and apply common flags.

    In order: ``--trust-checkpoint`` sets ``DIFFMTL_TRUSTED_CHECKPOINTS=1``,
    ``--local-rank`` is exported (:func:`set_local_rank_env`), the config
    is read and ``--cfg-options`` merged into it,
    ``--allow-partial-checkpoint`` sets ``allow_partial_checkpoint=True``,
    then ``--launcher`` (:func:`setup_launcher`) and ``--work-dir``
    (:func:`set_work_dir`) are applied.

    Args:
        args (argparse.Namespace): Parsed arguments with ``config``,
            ``work_dir`` and the options of :func:`add_common_args`.

    Returns:
        Config: The config.
    """
    if args.trust_checkpoint:
        # Imported here: diffmtl.engine imports diffmtl.utils.
        from diffmtl.engine import TRUSTED_CHECKPOINTS_ENV
        os.environ[TRUSTED_CHECKPOINTS_ENV] = '1'
    set_local_rank_env(args.local_rank)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if getattr(args, 'allow_partial_checkpoint', False):
        from diffmtl.engine import ALLOW_PARTIAL_KEY
        cfg[ALLOW_PARTIAL_KEY] = True
    setup_launcher(cfg, args.launcher)
    set_work_dir(cfg, args.work_dir, args.config)
    return cfg


def set_work_dir(cfg: Config, work_dir: Optional[str],
                 config_path: str) -> Config:
    """Set ``cfg.work_dir``: CLI > config > ``./work_dirs/<config stem>``.

    Args:
        cfg (Config): The config, modified in place.
        work_dir (str, optional): ``--work-dir``.
        config_path (str): Path of the config file.

    Returns:
        Config: ``cfg``.
    """
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        stem = osp.splitext(osp.basename(config_path))[0]
        cfg.work_dir = osp.join('./work_dirs', stem)
    return cfg


def enable_amp(cfg: Config, use_cuda: Optional[bool] = None) -> Config:
    """``--amp``: turn ``OptimWrapper`` into a dynamic-loss-scale AMP one.

    Args:
        cfg (Config): The config, modified in place.
        use_cuda (bool, optional): Override CUDA detection (tests).

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: Without CUDA (mmengine's ``AmpOptimWrapper`` needs a
            GPU) or when ``optim_wrapper.type`` is neither ``OptimWrapper``
            nor ``AmpOptimWrapper``.
    """
    if use_cuda is None:
        use_cuda = cuda_available()
    if not use_cuda:
        raise ValueError('--amp needs a CUDA device: mmengine\'s '
                         'AmpOptimWrapper does not run on CPU.')
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type == 'AmpOptimWrapper':
        print_log(
            'AMP training is already enabled in your config.',
            logger='current',
            level=logging.WARNING)
        return cfg
    if wrapper_type != 'OptimWrapper':
        raise ValueError(
            '--amp only supports optim_wrapper.type='
            f'"OptimWrapper", but the config has {wrapper_type!r}')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    return cfg


def enable_visualization(cfg: Config,
                         show: bool = False,
                         show_dir: Optional[str] = None,
                         wait_time: float = 2,
                         interval: Optional[int] = 1) -> Config:
    """``--show`` / ``--show-dir``: make the visualization hook draw.

    Unlike mmseg's tool this also sets the hook's ``interval`` (default 1,
    i.e. every test image), because the stock default of 50 draws nothing
    on small test sets. Pass ``interval=None`` to keep the config's value.
    Images are written by the visualizer's ``LocalVisBackend`` to
    ``<show_dir>/vis_data/vis_image/`` (a relative ``show_dir`` is relative
    to the current directory).

    Args:
        cfg (Config): The config, modified in place.
        show (bool): Display images in a window.
        show_dir (str, optional): Directory to save drawn images to.
        wait_time (float): Seconds each displayed image stays up.
        interval (int, optional): Draw every ``interval``-th test batch.

    Returns:
        Config: ``cfg``.

    Raises:
        RuntimeError: If ``default_hooks`` has no ``visualization`` hook.
    """
    if not (show or show_dir):
        return cfg
    hooks = cfg.get('default_hooks') or {}
    if 'visualization' not in hooks or hooks['visualization'] is None:
        raise RuntimeError(
            '--show/--show-dir need a "visualization" entry in '
            'cfg.default_hooks (e.g. dict(type="MultiTaskVisualizationHook")).')
    hook = cfg.default_hooks.visualization
    hook['draw'] = True
    if interval is not None:
        hook['interval'] = interval
    if show:
        hook['show'] = True
        hook['wait_time'] = wait_time
    if show_dir:
        cfg.visualizer['save_dir'] = show_dir
    return cfg


#: Marker files of a ``tools/test.py --out`` folder: ``.incomplete`` is
#: written before the first prediction, ``.complete`` after
#: ``metrics.json``, when the whole set is written.
OUTPUT_INCOMPLETE = '.incomplete'
OUTPUT_COMPLETE = '.complete'
#: What marks a folder as written by ``tools/test.py --out``.
_OUTPUT_SIGNS = (OUTPUT_COMPLETE, OUTPUT_INCOMPLETE, 'metrics.json')


def prepare_output_dir(out: str, overwrite: bool = False,
                       info: Optional[dict] = None) -> str:
    """Make ``--out DIR`` ready for a new prediction set.

    A missing or empty folder is used as it is. A folder with files is
    refused (they would mix with the new predictions and ``metrics.json``
    would be replaced) unless ``overwrite``; then its previous contents are
    deleted first, but only when it was written by ``tools/test.py`` (it
    holds ``.complete``, ``.incomplete`` or ``metrics.json``), never an
    unrelated folder. Finally the ``.incomplete`` marker is written (JSON:
    ``info`` plus host, pid and start time), so a run killed before the
    end leaves a recognisably incomplete set.

    Args:
        out (str): The folder.
        overwrite (bool): ``--overwrite-out``.
        info (dict, optional): Recorded in the markers (config,
            checkpoint).

    Returns:
        str: ``out``.

    Raises:
        FileExistsError: For a non-empty folder without ``overwrite``, a
            non-empty folder not written by ``tools/test.py``, or a file
            named ``out``.
    """
    import json
    import shutil
    import socket
    import time
    from diffmtl.engine.fileio import atomic_write_bytes
    if osp.exists(out) and not osp.isdir(out):
        raise FileExistsError(f'--out {out!r} is a file, not a folder')
    entries = sorted(os.listdir(out)) if osp.isdir(out) else []
    if entries:
        shown = ', '.join(entries[:5]) + (' ...' if len(entries) > 5 else '')
        if not overwrite:
            raise FileExistsError(
                f'--out {out!r} is not empty ({len(entries)} entries: '
                f'{shown}). New predictions would mix with these files and '
                'metrics.json would be replaced. Use a new folder, or pass '
                '--overwrite-out to delete the previous results first')
        if not any(sign in entries for sign in _OUTPUT_SIGNS):
            raise FileExistsError(
                f'--overwrite-out deletes only a folder written by '
                f'tools/test.py --out (holding metrics.json, '
                f'{OUTPUT_COMPLETE} or {OUTPUT_INCOMPLETE}); {out!r} holds '
                f'other files ({shown}). Choose another folder')
        for name in entries:
            path = osp.join(out, name)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path)
            else:
                os.remove(path)
        print_log(f'--overwrite-out: deleted the {len(entries)} previous '
                  f'entries of {out!r}', logger='current')
    os.makedirs(out, exist_ok=True)
    record = dict(info or {})
    record.update(host=socket.gethostname(), pid=os.getpid(),
                  started=time.strftime('%Y-%m-%d %H:%M:%S'))
    atomic_write_bytes(
        json.dumps(record, indent=2).encode('utf-8'),
        osp.join(out, OUTPUT_INCOMPLETE))
    return out


def mark_output_complete(out: str) -> str:
    """Mark ``--out DIR`` complete: write ``.complete`` (the
    ``.incomplete`` record plus the finish time and the number of files)
    after everything else, then remove ``.incomplete``.

    Returns:
        str: The path of the ``.complete`` marker.
    """
    import json
    import time
    from diffmtl.engine.fileio import atomic_write_bytes
    pending = osp.join(out, OUTPUT_INCOMPLETE)
    record = {}
    if osp.isfile(pending):
        with open(pending, 'rb') as f:
            try:
                record = json.loads(f.read().decode('utf-8'))
            except ValueError:
                record = {}
    files = sum(
        len([n for n in names if n not in _OUTPUT_SIGNS[:2]])
        for _, _, names in os.walk(out))
    record.update(finished=time.strftime('%Y-%m-%d %H:%M:%S'), files=files)
    path = osp.join(out, OUTPUT_COMPLETE)
    atomic_write_bytes(json.dumps(record, indent=2).encode('utf-8'), path)
    if osp.isfile(pending):
        os.remove(pending)
    return path


def set_test_output(cfg: Config, out: Optional[str]) -> Config:
    """``--out DIR``: ask the test evaluator to keep results in ``DIR``.

    Sets ``test_evaluator.output_dir`` and ``keep_results=True`` (the metric
    must accept these keyword arguments, as mmseg's ``IoUMetric`` does).
    ``tools/test.py`` also prepares the folder and marks the finished set
    (:func:`prepare_output_dir`, :func:`mark_output_complete`).

    Args:
        cfg (Config): The config, modified in place.
        out (str, optional): The output directory.

    Returns:
        Config: ``cfg``.
    """
    if out is None:
        return cfg
    evaluator = cfg.get('test_evaluator')
    if not isinstance(evaluator, dict):
        raise ValueError('--out needs test_evaluator to be a single metric '
                         f'dict, got {type(evaluator).__name__}')
    evaluator['output_dir'] = out
    evaluator['keep_results'] = True
    return cfg


def enable_tta(cfg: Config) -> Config:
    """``--tta``: test with ``cfg.tta_pipeline`` and ``cfg.tta_model``.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        Config: ``cfg``.
    """
    for key in ('tta_pipeline', 'tta_model'):
        if cfg.get(key) is None:
            raise ValueError(f'--tta needs cfg.{key}; the config has none.')
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
    cfg.tta_model.module = cfg.model
    cfg.model = cfg.tta_model
    return cfg


def drop_training(cfg: Config) -> Config:
    """Remove what only training needs, for ``tools/test.py``.

    Testing a checkpoint must not need the training data: mmseg's
    the visualisation hook reads ``runner.iter``, which builds the train
    loop and so the training dataset, and fails when that data is absent.
    Without a train loop ``runner.iter`` is 0.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        Config: ``cfg``.
    """
    for key in TRAINING_KEYS:
        cfg[key] = None
    return cfg


#: ``default_hooks.checkpoint`` types replaced by ``AtomicCheckpointHook``.
_PLAIN_CHECKPOINT_HOOKS = ('CheckpointHook', 'mmengine.CheckpointHook')


def enable_safe_checkpoints(cfg: Config) -> Config:
    """Use diffmtl's checkpoint hooks (see :mod:`diffmtl.engine.hooks`).

    * ``default_hooks.checkpoint`` of type ``CheckpointHook`` becomes an
      ``AtomicCheckpointHook`` with the same arguments (atomic writes,
      pruning after the new file is complete, RNG states for bit-identical
      resume); other types are kept, with a warning;
    * ``CheckpointMatchHook`` is added to ``custom_hooks`` (mismatched
      checkpoints are an error unless ``allow_partial_checkpoint``).

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        Config: ``cfg``.
    """
    hooks = cfg.get('default_hooks') or {}
    hook = hooks.get('checkpoint')
    if isinstance(hook, dict):
        hook_type = hook.get('type')
        plain = hook_type in _PLAIN_CHECKPOINT_HOOKS or getattr(
            hook_type, '__name__', None) == 'CheckpointHook'
        if plain:
            hook['type'] = 'AtomicCheckpointHook'
        elif hook_type != 'AtomicCheckpointHook':
            print_log(
                f'default_hooks.checkpoint is {hook_type!r}, not '
                'CheckpointHook: kept as is, so checkpoints are not written '
                'atomically and hold no RNG states.',
                logger='current',
                level=logging.WARNING)
    return _add_custom_hook(cfg, 'CheckpointMatchHook')


def _add_custom_hook(cfg: Config, hook_type: str) -> Config:
    """Append ``dict(type=hook_type)`` to ``cfg.custom_hooks`` unless a hook
    of that type is listed already (its own arguments are then kept)."""
    custom_hooks = list(cfg.get('custom_hooks') or [])
    if not any(
            isinstance(h, dict) and h.get('type') == hook_type
            for h in custom_hooks):
        custom_hooks.append(dict(type=hook_type))
    cfg.custom_hooks = custom_hooks
    return cfg


# --- input checks: InputCheckHook in every tool runner --------------------
def add_input_check_hook(cfg: Config) -> Config:
    """Add ``InputCheckHook`` to ``cfg.custom_hooks`` (once).

    The hook (:mod:`diffmtl.engine.hooks.input_check_hook`) refuses, before
    the first training iteration, a model that predicts a task the
    training set lacks or that no training image is labelled for. A config
    that lists it already (e.g. with ``allow_unlabelled_tasks=True``) is
    kept as is. Without a training loop it does nothing.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        Config: ``cfg``.
    """
    # Imported here (registers the hook): diffmtl.engine imports utils.
    import diffmtl.engine.hooks.input_check_hook  # noqa: F401
    return _add_custom_hook(cfg, 'InputCheckHook')


def add_finite_check_hook(cfg: Config) -> Config:
    """Add ``FiniteCheckHook`` to ``cfg.custom_hooks`` (once).

    The hook (:mod:`diffmtl.engine.hooks.finite_check_hook`) refuses to
    validate or test weights holding NaN / inf, naming the checkpoint and
    the first such tensor.

    Args:
        cfg (Config): The config, modified in place.

    Returns:
        Config: ``cfg``.
    """
    import diffmtl.engine.hooks.finite_check_hook  # noqa: F401
    return _add_custom_hook(cfg, 'FiniteCheckHook')


def enable_data_check(cfg: Config, keys=('train_dataloader',
                                         'val_dataloader')) -> Config:
    """``--check-data``: set ``check_data=True`` on the diffmtl datasets of
    the given dataloaders (looking into ``ConcatDataset`` /
    ``RepeatDataset``-style wrappers), so every listed file is decoded
    once before the run starts.

    Args:
        cfg (Config): The config, modified in place.
        keys (sequence of str): Dataloader keys of the config.

    Returns:
        Config: ``cfg``.

    Raises:
        ValueError: When none of the dataloaders has a diffmtl dataset.
    """
    from diffmtl.datasets import MultiTaskPartialDataset
    from diffmtl.registry import DATASETS

    def visit(dataset) -> int:
        if not isinstance(dataset, dict):
            return 0
        found = 0
        for sub in dataset.get('datasets') or []:
            found += visit(sub)
        found += visit(dataset.get('dataset'))
        dtype = dataset.get('type')
        cls = DATASETS.get(dtype) if isinstance(dtype, str) else dtype
        if isinstance(cls, type) and issubclass(cls,
                                                MultiTaskPartialDataset):
            dataset['check_data'] = True
            found += 1
        return found

    found = sum(
        visit((cfg.get(key) or {}).get('dataset')) for key in keys
        if isinstance(cfg.get(key), dict))
    if not found:
        raise ValueError(f'--check-data: none of {list(keys)} has a diffmtl '
                         'dataset (MultiTaskPartialDataset) to check')
    return cfg


def build_runner(cfg: Config) -> Runner:
    """Build the runner (``cfg.runner_type`` from ``RUNNERS`` if set).

    First starts the process group of a distributed job
    (:func:`diffmtl.utils.init_distributed`, a no-op when it exists or for
    ``launcher='none'``), then applies :func:`enable_safe_checkpoints` and,
    for ``resume=True`` without ``load_from``,
    :func:`diffmtl.engine.resolve_resume` (choose a loadable checkpoint,
    falling back past a damaged pointer or file): rank 0 chooses and the
    other ranks receive its choice, with any launcher and backend.
    """
    from diffmtl.engine import resolve_resume
    init_distributed(cfg)
    enable_safe_checkpoints(cfg)
    resolve_resume(cfg)
    add_finite_check_hook(cfg)  # no NaN weights validated or tested
    add_input_check_hook(cfg)  # model tasks against the dataset's labels
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    from diffmtl.registry import RUNNERS
    return RUNNERS.build(cfg)
