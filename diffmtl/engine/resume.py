# Copyright (c) diffmtl contributors. All rights reserved.
"""Choose the checkpoint ``--resume`` continues from, robustly.

mmengine resumes from the path in ``<work_dir>/last_checkpoint`` and fails
with a bare ``EOFError`` / ``KeyError`` when that file or the checkpoint it
names is empty or damaged; without the pointer it silently starts again
from iteration 1 and overwrites the checkpoints in the folder.
:func:`find_resumable_checkpoint` instead

* uses the pointer when it names a loadable checkpoint (a pointer into a
  moved work dir is looked up by its base name in the work dir), unless a
  newer complete checkpoint of the same name pattern and of the same run
  (the lineage id ``AtomicCheckpointHook`` stores in ``meta``) is in the
  work dir: a run stopped between writing ``iter_8.pth`` and updating the
  pointer resumes from ``iter_8.pth``, not ``iter_4.pth``;
* otherwise warns, naming the bad pointer or file, and falls back to the
  newest loadable ``iter_<n>.pth`` / ``epoch_<n>.pth`` in the work dir;
* resumes from those files when there is no pointer at all;
* raises when checkpoint files exist but none of them can be loaded,
  rather than training over them.

:func:`resolve_resume` applies the choice to a config (``load_from`` with
``resume=True``, which makes mmengine resume from exactly that file),
points ``last_checkpoint`` at it, and compares the config with the
checkpoint's (:mod:`diffmtl.engine.resume_config`);
``tools/train.py --resume`` calls it through
:func:`diffmtl.utils.build_runner`.
"""
import logging
import os
import os.path as osp
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config
from mmengine.dist import broadcast_object_list, get_rank, is_distributed
from mmengine.logging import print_log

from .checkpoint import load_checkpoint_file
from .fileio import atomic_write_bytes
from .resume_config import ResumeConfigMismatchError, check_resume_config

__all__ = [
    'POINTER_FILE', 'NoResumableCheckpointError', 'checkpoint_problem',
    'list_checkpoints', 'find_resumable_checkpoint', 'resolve_resume'
]

#: The file mmengine's ``CheckpointHook`` writes the latest path to.
POINTER_FILE = 'last_checkpoint'

#: Default checkpoint names: ``CheckpointHook`` ``filename_tmpl``s.
DEFAULT_TEMPLATES = ('iter_{}.pth', 'epoch_{}.pth')


class NoResumableCheckpointError(RuntimeError):
    """Checkpoints exist but none can be resumed from."""


def _warn(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


def _template_regex(template: str) -> 're.Pattern':
    head, _, tail = template.partition('{}')
    return re.compile('^' + re.escape(head) + r'(\d+)' + re.escape(tail) + '$')


def list_checkpoints(
        folders: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES) -> List[str]:
    """Checkpoint files in ``folders``, newest (highest step) first.

    Args:
        folders (list[str]): Folders to scan (missing ones are skipped).
        templates (list[str]): ``CheckpointHook.filename_tmpl`` patterns
            with one ``{}`` for the step.

    Returns:
        list[str]: Paths, by step and then modification time, descending.
    """
    regexes = [_template_regex(t) for t in templates]
    found: Dict[str, Tuple[int, float]] = {}
    for folder in folders:
        if not osp.isdir(folder):
            continue
        for name in os.listdir(folder):
            for regex in regexes:
                match = regex.match(name)
                path = osp.abspath(osp.join(folder, name))
                if match and osp.isfile(path):
                    found[path] = (int(match.group(1)), osp.getmtime(path))
                    break
    return sorted(found, key=lambda p: found[p], reverse=True)


def checkpoint_problem(path: str) -> Tuple[Optional[str], Optional[dict]]:
    """Load ``path`` to see whether training can resume from it.

    Args:
        path (str): A checkpoint path.

    Returns:
        tuple: ``(None, meta)`` when loadable (``meta`` is the checkpoint's
        ``meta`` dict), else ``(reason, None)``.
    """
    if not osp.isfile(path):
        return 'the file does not exist', None
    try:
        checkpoint = load_checkpoint_file(path, map_location='cpu')
    except Exception as err:  # noqa: BLE001  (reported, then skipped)
        return f'{type(err).__name__}: {err}', None
    if not isinstance(checkpoint, dict):
        return 'it is not a dict', None
    meta = checkpoint.get('meta')
    if not isinstance(meta, dict) or 'iter' not in meta:
        return 'it has no meta["iter"] (not a training checkpoint)', None
    if 'state_dict' not in checkpoint:
        return 'it has no state_dict', None
    return None, meta


def _name_step(path: str,
               templates: Sequence[str]) -> Optional[Tuple[int, int]]:
    """``(template index, step)`` of a checkpoint name, or None."""
    for index, template in enumerate(templates):
        match = _template_regex(template).match(osp.basename(path))
        if match:
            return index, int(match.group(1))
    return None


def _newer_than(target: str, target_meta: dict, folders: Sequence[str],
                templates: Sequence[str], tried: Dict[str, str]
                ) -> Tuple[Optional[str], Optional[dict]]:
    """The newest loadable checkpoint of the same run as ``target`` with a
    higher step of the same name pattern, or ``(None, None)``.

    Such a file exists when a run was stopped after a checkpoint was
    complete and before the pointer named it. "The same run" is the
    lineage id ``AtomicCheckpointHook`` stores in ``meta`` (kept across
    resumes): files with a higher step from another run (an earlier,
    longer one in the same work dir) or without the id are ignored.
    """
    from .hooks.atomic_checkpoint_hook import LINEAGE_KEY
    lineage = (target_meta or {}).get(LINEAGE_KEY)
    own = _name_step(target, templates)
    if own is None or lineage is None:
        return None, None
    for path in list_checkpoints(folders, templates):
        step = _name_step(path, templates)
        if step is None or step[0] != own[0] or step[1] <= own[1]:
            continue
        if path in tried:
            continue
        reason, meta = checkpoint_problem(path)
        if reason is not None:
            tried[path] = reason
            _warn(f'Skipping checkpoint {path}: {reason}')
        elif meta.get(LINEAGE_KEY) == lineage:
            return path, meta
    return None, None


def _read_pointer(pointer: str) -> Tuple[Optional[str], Optional[str]]:
    """``(path, None)`` from a pointer file, or ``(None, reason)``."""
    try:
        with open(pointer, 'rb') as f:
            raw = f.read()
    except OSError as err:
        return None, f'it cannot be read ({err})'
    try:
        text = raw.decode('utf-8').strip()
    except UnicodeDecodeError:
        return None, f'it is not text ({len(raw)} bytes of binary data)'
    if not text:
        return None, 'it is empty'
    if '\n' in text or '\x00' in text:
        return None, f'it does not hold one path ({text[:80]!r})'
    return text, None


def find_resumable_checkpoint(
    work_dir: str,
    checkpoint_dirs: Optional[Sequence[str]] = None,
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    superseded: Optional[List[str]] = None
) -> Tuple[Optional[str], Optional[dict]]:
    """The checkpoint to resume from, with fallbacks (see module doc).

    Args:
        work_dir (str): The work dir (holds ``last_checkpoint``).
        checkpoint_dirs (list[str], optional): Folders holding checkpoint
            files; defaults to ``[work_dir]``.
        templates (list[str]): Checkpoint name patterns, see
            :func:`list_checkpoints`.
        superseded (list, optional): When given, the checkpoint the
            pointer names is appended to it if a newer one of the same run
            is chosen instead.

    Returns:
        tuple: ``(path, meta)`` of the chosen checkpoint, or
        ``(None, None)`` when there is nothing to resume from.

    Raises:
        NoResumableCheckpointError: If checkpoint files exist but none is
            loadable.
    """
    work_dir = osp.abspath(work_dir)
    folders = [work_dir] + [
        osp.abspath(d)
        for d in (checkpoint_dirs or []) if osp.abspath(d) != work_dir
    ]
    pointer = osp.join(work_dir, POINTER_FILE)
    tried: Dict[str, str] = {}
    if osp.exists(pointer):
        target, bad = _read_pointer(pointer)
        if target is not None:
            if not osp.isabs(target):
                target = osp.join(work_dir, target)
            if not osp.isfile(target):
                moved = [
                    osp.join(d, osp.basename(target)) for d in folders
                    if osp.isfile(osp.join(d, osp.basename(target)))
                ]
                if moved:
                    _warn(f'{pointer} names {target}, which does not '
                          f'exist; using {moved[0]} (same name in the '
                          'work dir).')
                    target = moved[0]
            target = osp.abspath(target)
            reason, meta = checkpoint_problem(target)
            if reason is None:
                newer, newer_meta = _newer_than(target, meta, folders,
                                                templates, tried)
                if newer is not None:
                    _warn(f'{pointer} names {target}, but {newer} is newer '
                          'and complete (the run stopped after writing it, '
                          'before updating the pointer); resuming from '
                          f'{osp.basename(newer)}.')
                    if superseded is not None:
                        superseded.append(target)
                    return newer, newer_meta
                return target, meta
            tried[target] = reason
            bad = f'the checkpoint it names, {target}, is unusable: {reason}'
        _warn(f'Cannot resume from {pointer}: {bad}. Falling back to the '
              'newest loadable checkpoint in the work dir.')
    candidates = list_checkpoints(folders, templates)
    if candidates and not osp.exists(pointer):
        _warn(f'{pointer} is missing but {len(candidates)} checkpoint(s) '
              f'are in the work dir ({osp.basename(candidates[0])} is the '
              'newest); resuming from the newest loadable one instead of '
              'starting over.')
    for path in candidates:
        if path in tried:
            continue
        reason, meta = checkpoint_problem(path)
        if reason is None:
            _warn(f'Resuming from {path} (fallback).')
            return path, meta
        tried[path] = reason
        _warn(f'Skipping checkpoint {path}: {reason}')
    damaged = {p: r for p, r in tried.items() if osp.exists(p)}
    if damaged:
        listing = '; '.join(f'{p}: {r}' for p, r in damaged.items())
        raise NoResumableCheckpointError(
            f'--resume found checkpoints in {work_dir} but none can be '
            f'loaded ({listing}). Move the damaged files away to start '
            'over, or set load_from to a good checkpoint.')
    return None, None


def _checkpoint_dirs(cfg: Config) -> Tuple[List[str], Tuple[str, ...]]:
    """Checkpoint folders and name patterns from ``default_hooks``."""
    work_dir = osp.abspath(cfg.work_dir)
    hook = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    dirs = [work_dir]
    out_dir = hook.get('out_dir')
    if out_dir and '://' not in out_dir:
        dirs.append(
            osp.join(
                osp.abspath(out_dir), osp.basename(work_dir.rstrip(os.sep))))
    templates = list(DEFAULT_TEMPLATES)
    if hook.get('filename_tmpl'):
        templates.insert(0, hook['filename_tmpl'])
    return dirs, tuple(templates)


def _finish_pruning(old: str, meta: dict,
                    templates: Sequence[str]) -> None:
    """Delete ``old``, superseded by the checkpoint of ``meta`` of the same
    run, when that checkpoint's ``max_keep_ckpts`` list (``KEPT_KEY``) no
    longer holds it: the interrupted run was about to delete it."""
    from .hooks.atomic_checkpoint_hook import KEPT_KEY
    kept = (meta or {}).get(KEPT_KEY)
    step = _name_step(old, templates)
    if not kept or step is None or step[1] in kept or not osp.isfile(old):
        return
    try:
        os.remove(old)
    except OSError as err:
        _warn(f'Cannot remove {old}, which the interrupted run had '
              f'replaced: {err}')
        return
    _warn(f'Removed {old}: the interrupted run had replaced it (its '
          f'max_keep_ckpts kept {kept}) but stopped before deleting it.')


def _point_to(work_dir: str, path: str) -> None:
    """Make ``<work_dir>/last_checkpoint`` name ``path`` (atomically),
    unless it already does."""
    pointer = osp.join(work_dir, POINTER_FILE)
    if osp.exists(pointer):
        current, _ = _read_pointer(pointer)
        if current is not None and osp.abspath(
                osp.join(work_dir, current)) == osp.abspath(path):
            return
    try:
        atomic_write_bytes(path.encode('utf-8'), pointer)
    except OSError as err:
        _warn(f'Cannot update {pointer} to name {path}: {err}')
        return
    _warn(f'{pointer} now names {path}.')


def resolve_resume(cfg: Config) -> Config:
    """Turn ``resume=True`` without ``load_from`` into an explicit file.

    Sets ``cfg.load_from`` to :func:`find_resumable_checkpoint`'s choice
    (mmengine then resumes from exactly that file) and makes
    ``last_checkpoint`` name it. With nothing to resume from,
    ``cfg.resume`` becomes ``False`` (training starts from scratch,
    overwriting nothing). When ``randomness.seed`` is unset the
    checkpoint's seed is used, so that the data order continues as in the
    interrupted run. In a distributed job rank 0 decides and the other
    ranks follow. Configs without ``resume`` are returned unchanged; with
    ``load_from`` set, that file is resumed from as mmengine does.

    In both cases the config's ``model``, ``optim_wrapper`` and
    ``param_scheduler`` are compared with those stored in the checkpoint
    (:func:`~diffmtl.engine.resume_config.check_resume_config`).

    Args:
        cfg (Config): The config (``work_dir`` set), modified in place.

    Returns:
        Config: ``cfg``.

    Raises:
        NoResumableCheckpointError: Checkpoints exist but none loads.
        ResumeConfigMismatchError: The config differs from the
            checkpoint's and ``allow_resume_changes`` is not set.
    """
    if not cfg.get('resume', False):
        return cfg
    explicit = cfg.get('load_from')
    if explicit is not None:
        error = None
        if not is_distributed() or get_rank() == 0:
            if isinstance(explicit, str) and osp.isfile(explicit):
                reason, meta = checkpoint_problem(explicit)
                if reason is None:
                    try:
                        check_resume_config(cfg, meta, explicit)
                    except ResumeConfigMismatchError as err:
                        error = str(err)
        if is_distributed():
            box = [error]
            broadcast_object_list(box, src=0)
            error = box[0]
        if error is not None:
            raise ResumeConfigMismatchError(error)
        return cfg
    dirs, templates = _checkpoint_dirs(cfg)
    choice: List[Any] = [None, None, None, None]
    if not is_distributed() or get_rank() == 0:
        try:
            superseded: List[str] = []
            path, meta = find_resumable_checkpoint(cfg.work_dir, dirs,
                                                   templates, superseded)
            choice = [path, (meta or {}).get('seed'), None, None]
            if path is not None:
                check_resume_config(cfg, meta, path)
                _point_to(osp.abspath(cfg.work_dir), path)
                for old in superseded:
                    _finish_pruning(old, meta, templates)
        except NoResumableCheckpointError as err:
            choice = [None, None, str(err), False]
        except ResumeConfigMismatchError as err:
            choice = [None, None, str(err), True]
    if is_distributed():
        broadcast_object_list(choice, src=0)
    path, seed, error, config_changed = choice
    if error is not None:
        if config_changed:
            raise ResumeConfigMismatchError(error)
        raise NoResumableCheckpointError(error)
    if path is None:
        print_log(
            f'--resume: no checkpoint in {cfg.work_dir}; training starts '
            'from scratch.',
            logger='current',
            level=logging.WARNING)
        cfg.resume = False
        return cfg
    cfg.load_from = path
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is None and seed is not None:
        cfg.randomness = dict(randomness, seed=seed)
    return cfg
