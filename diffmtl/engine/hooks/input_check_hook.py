# Copyright (c) diffmtl contributors. All rights reserved.
"""Refuse a model / training-set task mismatch before the first iteration.

The dataset refuses its own bad inputs (files, mappings, a training set
labelled for no task; see :mod:`diffmtl.datasets`). What only the runner
sees is the pair: a model that predicts a task the dataset does not have
trains that task's branch on nothing (every image counts as unlabelled for
it), and so does a model task that no training image is labelled for. Both
would run to the end, at a loss that ignores the task, and save
checkpoints. :class:`InputCheckHook` raises in ``before_train`` instead,
before any iteration or checkpoint.

The same holds for the number of classes: a model that predicts more (or
fewer) classes of a task than the dataset has (``task_classes``, e.g. from
``meta.json``) trains and scores without a word. The hook compares them
for the training set in ``before_train`` and for the validation and test
sets in ``before_val`` / ``before_test`` (so ``tools/test.py`` checks it
too).

``tools/train.py`` adds it by default
(:func:`diffmtl.utils.tool_cfg.add_input_check_hook`); other runners add
``dict(type='InputCheckHook')`` to ``custom_hooks``.
"""
import logging
from typing import Dict, List, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from diffmtl.registry import HOOKS
from diffmtl.structures.task_spec import get_task_spec, task_out_channels

__all__ = [
    'InputCheckHook', 'check_model_dataset_tasks', 'task_label_counts',
    'check_model_dataset_classes'
]


def _leaf_datasets(dataset) -> List:
    """The datasets holding samples under mmengine / torch wrappers."""
    if hasattr(dataset, 'datasets'):  # ConcatDataset
        return [d for sub in dataset.datasets for d in _leaf_datasets(sub)]
    inner = getattr(dataset, 'dataset', None)  # RepeatDataset & co.
    if inner is not None:
        return _leaf_datasets(inner)
    return [dataset]


def _dataset_tasks(dataset) -> Tuple[str, ...]:
    meta = getattr(dataset, 'metainfo', None) or {}
    return tuple(meta.get('tasks') or ())


def task_label_counts(dataset) -> Tuple[Dict[str, int], int]:
    """Labelled training images per task, and the number of images.

    Reads ``get_task_mask()`` of diffmtl datasets, else ``task_mask`` /
    ``tasks`` of every ``get_data_info(i)`` (a sample without
    ``task_mask`` counts as labelled for all tasks of its dataset). Datasets
    under ``ConcatDataset`` / ``RepeatDataset`` wrappers are added up.

    Returns:
        tuple: ``({task: count}, num_images)``.
    """
    counts: Dict[str, int] = {}
    total = 0
    for leaf in _leaf_datasets(dataset):
        tasks = _dataset_tasks(leaf)
        for t in tasks:
            counts.setdefault(t, 0)
        if hasattr(leaf, 'get_task_mask'):
            rows = [(tasks, m) for m in leaf.get_task_mask().values()]
        else:
            rows = []
            for i in range(len(leaf)):
                info = leaf.get_data_info(i)
                names = tuple(info.get('tasks') or tasks)
                rows.append(
                    (names, info.get('task_mask', (True, ) * len(names))))
        for names, mask in rows:
            total += 1
            for t, flag in zip(names, mask):
                counts[t] = counts.get(t, 0) + int(bool(flag))
    return counts, total


def check_model_dataset_tasks(model_tasks: Sequence[str],
                              dataset,
                              allow_unlabelled_tasks: bool = False) -> None:
    """Raise if the training set cannot train every task of the model.

    Args:
        model_tasks (Sequence[str]): ``model.tasks``.
        dataset: The training dataset (``metainfo['tasks']`` and per-image
            task masks; wrappers are looked through).
        allow_unlabelled_tasks (bool): Only warn for a model task no image
            is labelled for (the dataset still needs to have it).

    Raises:
        ValueError: Naming the model tasks the dataset lacks, or those no
            training image is labelled for (with the per-task counts).
    """
    name = type(dataset).__name__
    model_tasks = tuple(model_tasks)
    have = set()
    for leaf in _leaf_datasets(dataset):
        have.update(_dataset_tasks(leaf))
    if not have:
        print_log(
            f'InputCheckHook: the training dataset {name} has no '
            "metainfo['tasks']; the model/dataset task check is skipped",
            logger='current',
            level=logging.WARNING)
        return
    missing = [t for t in model_tasks if t not in have]
    if missing:
        raise ValueError(
            f'InputCheckHook: the model predicts the tasks {missing} that '
            f'the training dataset {name} does not have (its tasks: '
            f'{sorted(have)}); these branches would train on nothing. Set '
            'model.tasks to tasks of the dataset, or add the tasks to the '
            'dataset')
    counts, total = task_label_counts(dataset)
    per_task = {t: counts.get(t, 0) for t in model_tasks}
    if not any(per_task.values()):
        raise ValueError(
            f'InputCheckHook: none of the {total} training images of {name} '
            f'is labelled for any model task {list(model_tasks)}; training '
            'would run at loss 0. Check label_setting / label_mapping and '
            'missing_ann of the dataset')
    empty = [t for t, c in per_task.items() if c == 0]
    if empty:
        msg = (f'InputCheckHook: no training image of {name} ({total} '
               f'images) is labelled for the model tasks {empty}; labelled '
               f'images per task: {per_task}')
        if not allow_unlabelled_tasks:
            raise ValueError(
                f'{msg}. The model would never learn them: check '
                'label_setting / label_mapping, or remove them from '
                'model.tasks (InputCheckHook(allow_unlabelled_tasks=True) '
                'only warns)')
        print_log(msg, logger='current', level=logging.WARNING)


def _task_model(model):
    """The model that has ``tasks`` under DDP / TTA wrappers, or None."""
    for _ in range(4):
        if is_model_wrapper(model):
            model = model.module
        if getattr(model, 'tasks', None) is not None:
            return model
        model = getattr(model, 'module', None)
        if model is None:
            return None
    return None


def check_model_dataset_classes(model, dataset, split: str = 'training'
                                ) -> None:
    """Raise if the model predicts another number of classes for a task
    than the dataset has.

    For each model task that the dataset has, the network's output
    channels (``model.out_channels``, else from ``model.num_classes``) are
    compared with those the dataset's classes give
    (``metainfo['task_classes']``, e.g. ``meta.json``): a model with more
    classes would train and be scored on classes no label holds, one with
    fewer would meet labels it cannot predict.

    Args:
        model: A diffmtl model (``tasks``; wrappers are looked through).
        dataset: The dataset (wrappers are looked through).
        split (str): ``'training'``, ``'validation'`` or ``'test'`` (for
            the message).

    Raises:
        ValueError: Naming the task, both numbers and the fix.
    """
    model = _task_model(model)
    if model is None:
        return
    out = dict(getattr(model, 'out_channels', None) or {})
    num_classes = dict(getattr(model, 'num_classes', None) or {})
    for leaf in _leaf_datasets(dataset):
        meta = getattr(leaf, 'metainfo', None) or {}
        classes = meta.get('task_classes') or {}
        name = type(leaf).__name__
        for task in model.tasks:
            names = classes.get(task)
            if not names or task not in _dataset_tasks(leaf):
                continue
            try:
                want = task_out_channels(task, {task: len(names)})
                got = out.get(task)
                if got is None:
                    got = task_out_channels(task, num_classes)
            except KeyError:
                continue
            if int(got) == int(want):
                continue
            raise ValueError(
                f'InputCheckHook: the model predicts {got} classes for task '
                f'{task!r} ({get_task_spec(task).kind}), but the {split} '
                f'dataset {name} has {len(names)} ({list(names)[:8]}'
                f'{" ..." if len(names) > 8 else ""}, from its task_classes '
                f'/ meta.json): the model would predict classes no label '
                'holds, or never predict classes the labels hold. Set '
                f'model.num_classes={{{task!r}: {len(names)}}}, or fix the '
                'classes of the dataset')


@HOOKS.register_module()
class InputCheckHook(Hook):
    """Check the model's tasks against the training set in ``before_train``.

    Raises (see :func:`check_model_dataset_tasks`) when the model predicts
    a task the training dataset lacks, when no training image is labelled
    for one of the model's tasks, or for none of them; and (see
    :func:`check_model_dataset_classes`) when the model predicts another
    number of classes for a task than the training, validation or test set
    has (in ``before_train``, ``before_val`` once and ``before_test``).
    Models without a ``tasks`` attribute are not checked. Runs at
    ``VERY_HIGH`` priority, before anything is written.

    Args:
        allow_unlabelled_tasks (bool): Only warn for model tasks without
            any labelled training image. Defaults to False.
    """
    priority = 'VERY_HIGH'

    def __init__(self, allow_unlabelled_tasks: bool = False) -> None:
        self.allow_unlabelled_tasks = allow_unlabelled_tasks
        self._val_checked = False

    def before_train(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        tasks = getattr(model, 'tasks', None)
        if tasks is None:
            return
        check_model_dataset_tasks(tasks, runner.train_dataloader.dataset,
                                  self.allow_unlabelled_tasks)
        check_model_dataset_classes(model, runner.train_dataloader.dataset)

    def before_val(self, runner) -> None:
        """Compare the model's classes with the validation set's (once)."""
        if self._val_checked:
            return
        self._val_checked = True
        check_model_dataset_classes(runner.model,
                                    runner.val_loop.dataloader.dataset,
                                    'validation')

    def before_test(self, runner) -> None:
        """Compare the model's classes with the test set's."""
        check_model_dataset_classes(runner.model,
                                    runner.test_loop.dataloader.dataset,
                                    'test')
