# Copyright (c) diffmtl contributors. All rights reserved.
"""A ``CheckpointHook`` whose checkpoints survive ``kill -9`` and resume
bit-identically.

mmengine 0.10.7's ``CheckpointHook`` writes ``iter_<n>.pth`` in place (a
kill mid-write leaves a truncated file under the normal name), with
``max_keep_ckpts`` deletes the oldest checkpoint *before* the new one is
written (a kill in between leaves nothing to resume from), and stores no
random number generator state (resumed runs draw other diffusion noise and
drift from an uninterrupted run). :class:`AtomicCheckpointHook` takes the
same arguments and

* writes every checkpoint and the ``last_checkpoint`` pointer atomically
  (:mod:`diffmtl.engine.fileio`: temporary file in the same folder,
  ``fsync``, rename), updates the pointer only after the checkpoint is
  complete and removes checkpoints beyond ``max_keep_ckpts`` only after
  that, so a kill at any moment leaves the previous or the new checkpoint
  loadable; stale temporary files are removed when training starts;
* stores the torch (CPU and current CUDA device), numpy and Python RNG
  states of every rank in ``checkpoint['rng_states']`` (index = rank) and,
  on resume, restores each rank's own state right before the first batch
  after the resumed iteration is fetched (after mmengine's
  ``IterBasedTrainLoop`` has replayed the dataloader up to that
  iteration);
* runs validation on a saved copy of the generator states
  (``isolate_val_rng``), so validating (which the resumed run does not
  repeat) does not shift the training stream;
* records a *lineage* id in every checkpoint's ``meta`` (``LINEAGE_KEY``):
  drawn when a run starts from scratch, carried over by ``--resume``
  through the message hub. :func:`diffmtl.engine.find_resumable_checkpoint`
  uses it to resume from a complete checkpoint that is newer than the one
  ``last_checkpoint`` names (a kill between the two writes) only when
  both belong to the same run.

``tools/train.py`` / ``tools/test.py`` use it in place of
``CheckpointHook`` automatically (:func:`diffmtl.utils.build_runner`).

What is reproduced exactly on resume, given the same config and hardware:
the model, optimizer, parameter schedulers and message hub (mmengine), the
data order (mmengine's seeded samplers; the loop replays the sampler and
the dataloader workers up to the resumed iteration, so persistent workers
seeded by mmengine's ``worker_init_fn`` reach the same augmentation state)
and the process-global RNG streams (this hook). Not covered: generators a
component creates itself without a seed, ``torch.utils.data.RandomSampler``
without a generator, non-deterministic GPU kernels, and hooks that draw
random numbers in ``after_train_iter`` after this one (``VERY_LOW``
priority). ``save_best`` checkpoints are written atomically too, but
mmengine's logic still deletes the previous best file before writing the
new one (they are not used for resuming).
"""
import contextlib
import logging
import os.path as osp
import uuid
from typing import Any, Dict, List, Optional

from mmengine.dist import get_rank, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from diffmtl.registry import HOOKS
from ..fileio import (ATOMIC_BACKEND, atomic_write_bytes,
                      remove_stale_temp_files)
from ..resume import POINTER_FILE
from ..rng_state import gather_rng_states, get_rng_state, set_rng_state

__all__ = [
    'AtomicCheckpointHook', 'RNG_STATES_KEY', 'LINEAGE_KEY', 'KEPT_KEY'
]

#: Checkpoint key holding the list of per-rank RNG states.
RNG_STATES_KEY = 'rng_states'
#: Key of the run's lineage id in checkpoint ``meta`` and in the message
#: hub's runtime info (resumed with it).
LINEAGE_KEY = 'diffmtl_lineage'
#: Key in checkpoint ``meta`` of the steps ``max_keep_ckpts`` keeps after
#: this checkpoint (None when every checkpoint is kept).
KEPT_KEY = 'diffmtl_kept_steps'


class _RestoreBeforeFetch:
    """Wrap a dataloader iterator; call ``restore`` before fetch ``skip+1``.

    mmengine's ``IterBasedTrainLoop.run`` advances the iterator ``iter``
    times on resume before fetching the first batch to train on; the RNG
    state must be restored after that replay and before that batch.
    """

    def __init__(self, iterator, skip: int, restore):
        self._wrapped = iterator
        self._skip = skip
        self._restore = restore

    def __iter__(self):
        return self

    def __next__(self):
        if self._restore is not None:
            if self._skip == 0:
                restore, self._restore = self._restore, None
                restore()
            else:
                self._skip -= 1
        return next(self._wrapped)

    def skip_iter(self, num_iters: int) -> None:
        """Advance past ``num_iters`` trained batches (the OneDL loop's
        resume call; the upstream loop calls ``next`` instead).

        The batches are replayed through :meth:`__next__`, as the upstream
        loop does, rather than skipped in the sampler: the data workers
        then draw their augmentations from the same streams as in the
        interrupted run and the RNG state is restored before batch
        ``num_iters + 1``, so a resumed run is bit-identical on either
        stack.
        """
        for _ in range(num_iters):
            next(self)

    def __getattr__(self, name: str) -> Any:
        if name == '_wrapped':
            raise AttributeError(name)
        return getattr(self._wrapped, name)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic saves and RNG states (see module doc).

    Args:
        *args: Positional arguments of ``CheckpointHook``.
        save_rng_state (bool): Store every rank's RNG states in the
            checkpoint and restore them on resume. Defaults to True.
        isolate_val_rng (bool): Validate on a copy of the RNG states, so
            validation does not change the training stream. Defaults to
            True.
        **kwargs: Keyword arguments of ``CheckpointHook`` (``interval``,
            ``by_epoch``, ``max_keep_ckpts``, ...).
    """

    def __init__(self,
                 *args,
                 save_rng_state: bool = True,
                 isolate_val_rng: bool = True,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.save_rng_state = save_rng_state
        self.isolate_val_rng = isolate_val_rng
        self.atomic = False
        self._rng_to_save: Optional[List[Dict[str, Any]]] = None
        self._train_rng_in_val: Optional[Dict[str, Any]] = None
        self._loaded_rng: Optional[List[Dict[str, Any]]] = None
        self._loaded = False
        self._rng_checked = False

    # -- atomic saving -----------------------------------------------------

    def before_train(self, runner) -> None:
        """Pick the atomic backend for local folders, drop stale temps."""
        out_dir = self.out_dir if self.out_dir is not None else \
            runner.work_dir
        local = '://' not in str(out_dir)
        plain = self.backend_args in (None, {}, {'backend': 'local'})
        if self.file_client_args is None and local and plain:
            self.backend_args = dict(backend=ATOMIC_BACKEND)
            self.atomic = True
        else:
            print_log(
                'AtomicCheckpointHook: checkpoints go to a non-local or '
                'custom storage backend; they are written without the '
                'atomic temp-file-and-rename protocol.',
                logger='current',
                level=logging.WARNING)
        super().before_train(runner)
        if runner.message_hub.get_info(LINEAGE_KEY) is None:
            # os.urandom: the seeded generators are not touched
            runner.message_hub.update_info(
                LINEAGE_KEY, uuid.uuid4().hex, resumed=True)
        if self.atomic and is_main_process():
            for folder in {str(self.out_dir), runner.work_dir}:
                for path in remove_stale_temp_files(folder):
                    runner.logger.info(
                        f'Removed {path}, a partial checkpoint write of '
                        'an interrupted run.')

    def _write_pointer(self, runner) -> None:
        path = osp.join(runner.work_dir, POINTER_FILE)
        data = str(self.last_ckpt).encode('utf-8')
        if self.atomic:
            atomic_write_bytes(data, path)
        else:
            with open(path, 'wb') as f:
                f.write(data)

    def _remove_checkpoint(self, step: int) -> None:
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if path == self.last_ckpt:
            return
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):
            # checkpoints saved by deepspeed are directories
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        """Save, then update ``last_checkpoint``, then prune old files."""
        outdated = []
        if self.max_keep_ckpts > 0:
            # _save_checkpoint and _save_best_checkpoint may both save the
            # same step
            if not (len(self.keep_ckpt_ids) > 0
                    and self.keep_ckpt_ids[-1] == step):
                if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                    outdated.append(self.keep_ckpt_ids.popleft())
                self.keep_ckpt_ids.append(step)
                runner.message_hub.update_info('keep_ckpt_ids',
                                               list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir,
                                                     ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        meta = dict(meta or {})
        meta[LINEAGE_KEY] = runner.message_hub.get_info(LINEAGE_KEY)
        meta[KEPT_KEY] = (list(self.keep_ckpt_ids)
                          if self.max_keep_ckpts > 0 else None)

        with self._rng_for_checkpoint():
            runner.save_checkpoint(
                self.out_dir,
                ckpt_filename,
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=meta,
                by_epoch=self.by_epoch,
                backend_args=self.backend_args,
                **self.args)

        if not is_main_process():
            return
        # The new checkpoint is complete (renamed into place): only now
        # point to it, and only then forget the outdated ones.
        self._write_pointer(runner)
        for old_step in outdated:
            self._remove_checkpoint(old_step)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """mmengine's best-checkpoint logic, with RNG states stored."""
        if not self.save_best:
            return
        with self._rng_for_checkpoint():
            super()._save_best_checkpoint(runner, metrics)

    # -- RNG states ----------------------------------------------------------

    @contextlib.contextmanager
    def _rng_for_checkpoint(self):
        """Gather every rank's RNG state for the checkpoint being saved.

        A collective call: every rank runs it (all ranks call the saving
        methods; only rank 0 writes). During validation the saved training
        state is stored, not the validation stream.
        """
        previous = self._rng_to_save
        if self.save_rng_state:
            state = self._train_rng_in_val
            self._rng_to_save = gather_rng_states(
                state if state is not None else get_rng_state())
        try:
            yield
        finally:
            self._rng_to_save = previous

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Put the gathered RNG states into ``checkpoint``."""
        if self._rng_to_save is not None:
            checkpoint[RNG_STATES_KEY] = self._rng_to_save

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember the RNG states of a loaded checkpoint."""
        self._loaded = True
        self._rng_checked = False
        states = checkpoint.get(RNG_STATES_KEY)
        self._loaded_rng = list(states) if states else None

    def before_train_epoch(self, runner) -> None:
        """On resume, schedule the RNG restore (once per training run)."""
        if self._rng_checked:
            return
        self._rng_checked = True
        loop = runner.train_loop
        states, self._loaded_rng = self._loaded_rng, None
        resumed = loop.iter > 0 or loop.epoch > 0
        if not (self.save_rng_state and self._loaded and resumed):
            return  # fresh start or load_from: keep the seeded streams
        state = self._own_state(runner, states)
        if state is None:
            return

        def restore():
            set_rng_state(state)

        if isinstance(loop, IterBasedTrainLoop):
            loop.dataloader_iterator = _RestoreBeforeFetch(
                loop.dataloader_iterator, loop.iter, restore)
        else:
            restore()

    @staticmethod
    def _own_state(runner, states: Optional[List[dict]]) -> Optional[dict]:
        """This rank's state from a checkpoint's list, with warnings."""
        if not states:
            runner.logger.warning(
                'The resumed checkpoint holds no RNG states (written '
                'without AtomicCheckpointHook); training continues with '
                'freshly seeded generators and will not be bit-identical '
                'to an uninterrupted run.')
            return None
        rank, world_size = get_rank(), get_world_size()
        if len(states) != world_size:
            runner.logger.warning(
                f'The resumed checkpoint holds RNG states of {len(states)} '
                f'rank(s), this run has {world_size}; ranks without a '
                'state keep their seeded generators.')
        if rank >= len(states):
            return None
        return states[rank]

    def before_val(self, runner) -> None:
        """Keep the training RNG state while validating."""
        if self.isolate_val_rng:
            self._train_rng_in_val = get_rng_state()

    def after_val(self, runner) -> None:
        """Give training back the RNG state it had before validation."""
        if self._train_rng_in_val is not None:
            set_rng_state(self._train_rng_in_val)
            self._train_rng_in_val = None
