# Copyright (c) diffmtl contributors. All rights reserved.
"""Shared machinery of diffmtl's multi-task segmentors."""
import functools
import logging
from typing import (Any, Callable, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.logging import MessageHub, print_log
from mmengine.structures import PixelData
from mmseg.models.segmentors.base import BaseSegmentor
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.registry import MODELS
from diffmtl.structures import (TASK_SPECS, get_task_mask, get_task_specs,
                                stack_task_gt, stage_field,
                                task_out_channels)
from ..decode_heads import ResidualTaskDecoder
from ..losses._utils import deferred_data_checks, resolve_data_checks
from ..utils.postprocess import logits_to_pred, postprocess_task_logits
from ..utils.sync_norm import norms_synchronise, zero_term

#: A loss term: (task, indices of the images it covers, (n,) losses).
LossTerm = Tuple[str, Tensor, Tensor]
#: A model part argument: a config dict (``type`` optional), a built module
#: or None (the default part).
PartCfg = Union[dict, nn.Module, None]


def refuse_part_settings(settings: Mapping[str, str]) -> Callable:
    """Decorator of a segmentor constructor refusing settings of its parts.

    A setting of a part is a key of that part's dict only. ``settings``
    maps a name that is not an argument of the constructor to the part key
    that holds the setting (``{'decoder_blocks': 'decoder.num_blocks'}``);
    passing one raises a TypeError that says what to write instead, e.g.
    ``DiffusionMTL: `decoder_blocks` moved to `decoder.num_blocks`; write
    decoder=dict(num_blocks=5) (--cfg-options model.decoder.num_blocks=5)``.
    The wrapped constructor keeps its signature (``inspect.signature``
    follows ``__wrapped__``) and lists the names in ``part_settings``.

    Args:
        settings (Mapping[str, str]): Name -> ``'<part>.<key>'``.

    Returns:
        Callable: The decorator.
    """
    settings = dict(settings)

    def decorate(init: Callable) -> Callable:

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            given = [name for name in settings if name in kwargs]
            if given:
                owner = type(self).__name__
                raise TypeError('; '.join(
                    part_setting_message(owner, name, settings[name],
                                         kwargs[name]) for name in given))
            init(self, *args, **kwargs)

        __init__.part_settings = settings
        return __init__

    return decorate


def part_setting_message(owner: str, name: str, key: str,
                         value: Any) -> str:
    """What to write instead of the argument ``name``, a setting held by
    the part key ``key`` (``'<part>.<key>'``); see
    :func:`refuse_part_settings`."""
    part, option = key.split('.', 1)
    return (f'{owner}: `{name}` moved to `{key}`; write '
            f'{part}=dict({option}={value!r}) (--cfg-options '
            f'model.{key}={value!r})')


def part_config(owner: str,
                name: str,
                cfg: PartCfg,
                default_type: type,
                fill: Optional[Dict[str, Tuple[Any, str]]] = None,
                defaults: Optional[Dict[str, Any]] = None
                ) -> Union[dict, nn.Module]:
    """The config a segmentor builds one of its parts from.

    ``cfg`` None means ``dict(type=default_type)`` and a dict without
    ``type`` is of ``default_type``; a module is returned as is (nothing
    is filled in or checked). Every setting of the part is a key of its
    dict, with the part class's default when the dict does not state it,
    except:

    * ``fill`` ``{key: (value, source)}``: what the segmentor sets itself
      from its own arguments (widths, tasks, channels); ``source`` names
      the argument (``'channels=16'``). A dict stating one of these keys
      raises a ValueError naming the key and ``source``.
    * ``defaults`` ``{key: value}``: the segmentor's default of a
      ``default_type`` setting (e.g. the MTL baseline's 6 decoder blocks),
      set when a dict of ``default_type`` does not state it.

    Args:
        owner (str): Segmentor name, for messages.
        name (str): The part's argument name (``'denoiser'``), for messages.
        cfg (dict | nn.Module | None): The part argument.
        default_type (type): Registered class of the default part.
        fill (dict, optional): What the segmentor sets.
        defaults (dict, optional): The segmentor's defaults.

    Returns:
        dict | nn.Module: the completed config (build it with
        ``MODELS.build``), or the given module.
    """
    if isinstance(cfg, nn.Module):
        return cfg
    if cfg is None:
        cfg = dict(type=default_type.__name__)
    elif not isinstance(cfg, dict):
        raise TypeError(f'{owner}: {name} must be a config dict, an '
                        f'nn.Module or None, got {type(cfg).__name__}')
    cfg = dict(cfg)
    cfg.setdefault('type', default_type.__name__)
    part_type = cfg['type']
    if isinstance(part_type, str):
        part_type = MODELS.get(part_type)
    for key, (value, source) in (fill or {}).items():
        if key in cfg:
            raise ValueError(
                f'{owner}: {name}.{key}={cfg[key]!r} is set by the model '
                f'from {source} (here {name}.{key}={value!r}); remove '
                f'{name}.{key}')
    if part_type is default_type:
        for key, value in (defaults or {}).items():
            cfg.setdefault(key, value)
    return dict(cfg, **{k: v for k, (v, _) in (fill or {}).items()})


def decoder_configs(owner: str,
                    tasks: Sequence[str],
                    decoder: Union[PartCfg, Mapping[str, nn.Module]],
                    fill: Callable[[str], Dict[str, Tuple[Any, str]]],
                    defaults: Optional[Dict[str, Any]] = None
                    ) -> Dict[str, Union[dict, nn.Module]]:
    """``{task: config or module}`` of the per-task decoders.

    ``decoder`` is a template config (see :func:`part_config`, default
    type ``ResidualTaskDecoder``) completed per task with ``fill(task)``
    and ``defaults``, or a mapping ``{task: nn.Module}`` (e.g. an
    ``nn.ModuleDict``) with one built decoder per task. A single module is
    refused: the tasks would share it.
    """
    if isinstance(decoder, nn.ModuleDict):
        decoder = dict(decoder.items())
    if isinstance(decoder, Mapping) and decoder and all(
            isinstance(v, nn.Module) for v in decoder.values()):
        if set(decoder) != set(tasks):
            raise KeyError(f'{owner}: decoder modules given for '
                           f'{sorted(decoder)}, the tasks are {list(tasks)}')
        return {t: decoder[t] for t in tasks}
    if isinstance(decoder, nn.Module):
        raise TypeError(f'{owner}: decoder is a per-task template; give a '
                        f'config dict or {{task: nn.Module}}, not one module '
                        f'the tasks would share')
    return {
        t: part_config(owner, 'decoder', decoder, ResidualTaskDecoder,
                       fill=fill(t), defaults=defaults)
        for t in tasks
    }


def build_part(cfg: Union[dict, nn.Module]) -> nn.Module:
    """``MODELS.build(cfg)``, or ``cfg`` itself when it is a module."""
    return cfg if isinstance(cfg, nn.Module) else MODELS.build(cfg)


class BaseMultiTaskSegmentor(BaseSegmentor):
    """Backbone + neck, per-task losses, loss aggregation and prediction.

    Subclasses implement :meth:`loss` and :meth:`inference` (batched
    logits of every task at input size).

    Loss aggregation (``docs/en/models.md``, *Losses*): with ``L_b`` the labelled
    tasks of image ``b`` and ``T`` the number of tasks,
    ``L = 1/B sum_b T/|L_b| sum_{t in L_b} w_t * terms_t(b)``; every term is
    reported as its own key (``'<task>.loss'`` ...) so that the keys sum to
    ``L``.

    Every argument is keyword-only.

    Args:
        tasks (Sequence[str]): Task names, in dataset order.
        backbone (dict | nn.Module): Backbone config (any mmseg backbone)
            or module.
        neck (dict | nn.Module, optional): Neck config or module.
        num_classes (dict, optional): ``{task: N}`` of segmentation tasks.
        loss_weights (dict, optional): ``{task: w_t}``; missing tasks get
            1.0; keys of known tasks the model does not have are ignored.
        losses (dict, optional): ``{task: loss cfg}`` overriding the
            TaskSpec default loss.
        align_corners (bool): Of every bilinear resize. Defaults to False.
        train_cfg (dict, optional): ``check_finite_loss`` (default True):
            stop training with a ``FloatingPointError`` naming the loss
            terms when the total loss is NaN or infinite. Under float16
            autocast (``AmpOptimWrapper``, whose ``GradScaler`` skips the
            optimizer step of a non-finite loss, as it does for overflowing
            gradients) a non-finite loss is a skipped step with a warning,
            and only ``fp16_nonfinite_limit`` (default 16, the halvings
            that bring the default initial loss scale 2**16 to 1)
            consecutive ones stop the run.
        test_cfg (dict, optional): ``mode`` must be ``'whole'`` (one pass
            over the padded image); sliding windows are not supported.
            ``eval_stages`` (default ``('final',)``): the prediction stages
            :meth:`predict` writes; ``'final'`` goes to each task's
            ``pred_field`` as always, another stage ``s`` (one of the
            model's :attr:`extra_stages`, e.g. DiffusionMTL's
            ``'initial'``) to ``stage_field(pred_field, s)``, and
            ``metainfo['pred_stages']`` lists the extra stages so that
            ``MultiTaskMetric`` scores them too.
        data_preprocessor (dict, optional): Data preprocessor config.
        init_cfg (dict, optional): Initialisation config.
    """
    #: Prediction stages besides ``'final'`` that :meth:`stage_logits`
    #: can return (see ``test_cfg.eval_stages``).
    extra_stages: Tuple[str, ...] = ()

    def __init__(self,
                 *,
                 tasks: Sequence[str],
                 backbone: Union[dict, nn.Module],
                 neck: PartCfg = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 losses: Optional[Dict[str, dict]] = None,
                 align_corners: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if isinstance(tasks, str):
            tasks = (tasks, )
        if not tasks:
            raise ValueError(f'{type(self).__name__}: tasks must not be empty')
        self.tasks = tuple(tasks)
        self.task_specs = {s.name: s for s in get_task_specs(self.tasks)}
        self.num_classes = dict(num_classes or {})
        self.out_channels = {
            t: task_out_channels(t, self.num_classes)
            for t in self.tasks
        }
        self.align_corners = align_corners
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if test_cfg and test_cfg.get('mode', 'whole') != 'whole':
            raise NotImplementedError(
                f'{type(self).__name__}: only test_cfg.mode="whole" is '
                f'supported, got {test_cfg.get("mode")!r}')
        self.eval_stages = self._check_stages(
            (test_cfg or {}).get('eval_stages', ('final', )))
        self.backbone = build_part(backbone)
        self.neck = build_part(neck) if neck is not None else None

        loss_weights = dict(loss_weights or {})
        unknown = [k for k in loss_weights if k not in TASK_SPECS]
        if unknown:
            raise KeyError(f'{type(self).__name__}: loss_weights names '
                           f'unknown tasks {unknown}')
        self.loss_weights = {
            t: float(loss_weights.get(t, 1.0))
            for t in self.tasks
        }
        losses = dict(losses or {})
        extra = [k for k in losses if k not in self.tasks]
        if extra:
            raise KeyError(f'{type(self).__name__}: losses given for tasks '
                           f'{extra} that are not in tasks={self.tasks}')
        self.task_losses = nn.ModuleDict({
            t: MODELS.build(losses.get(t, self.task_specs[t].loss))
            for t in self.tasks
        })

    # ------------------------------------------------------------------
    # features
    # ------------------------------------------------------------------
    @property
    def with_neck(self) -> bool:
        return self.neck is not None

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Backbone (+ neck). Returns the neck's first output, or the
        backbone's last stage without a neck; (B, C, h, w)."""
        x = self.backbone(inputs)
        if self.neck is not None:
            x = self.neck(x)
        if isinstance(x, (list, tuple)):
            x = x[0] if self.neck is not None else x[-1]
        return x

    def resize(self, x: Tensor, size) -> Tensor:
        """Bilinear resize to ``size`` (no-op when already that size)."""
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(
            x, size=tuple(size), mode='bilinear',
            align_corners=self.align_corners)

    # ------------------------------------------------------------------
    # losses
    # ------------------------------------------------------------------
    def task_gt(self, data_samples: Sequence[SegDataSample], task: str,
                size, device) -> Tensor:
        """Stacked GT of ``task`` checked against the network input size."""
        gt = stack_task_gt(data_samples, task).to(device)
        if tuple(gt.shape[-2:]) != tuple(size):
            raise ValueError(f'{type(self).__name__}: GT of task {task!r} is '
                             f'{tuple(gt.shape[-2:])} but the network input '
                             f'is {tuple(size)}; pad/resize GT with the data '
                             'preprocessor')
        return gt

    def labelled_mask(self, data_samples: Sequence[SegDataSample],
                      device) -> Tensor:
        """(B, T) bool mask of labelled (image, task) pairs.

        Built on the host from the metainfo and copied with
        ``non_blocking=True`` (a blocking host-to-device copy waits for the
        device's queue)."""
        return get_task_mask(data_samples, self.tasks).to(
            device, non_blocking=True)

    def labelled_rows(self, data_samples: Sequence[SegDataSample],
                      device) -> Tuple[Tensor, List[Tensor]]:
        """The labelled mask and each task's labelled images, on
        ``device``, without a host sync.

        The indices come from the metainfo on the host (which knows the
        labels already) rather than from ``mask[:, t].nonzero()`` on a
        device mask, which waits for the device once per task; their
        ``numel()`` is known on the host.

        Args:
            data_samples (list[SegDataSample]): The batch.
            device: Device of the results.

        Returns:
            tuple: The (B, T) bool mask and, in task order, the (n_t,)
            int64 indices of the images labelled for each task.
        """
        host = get_task_mask(data_samples, self.tasks)
        mask = host.to(device, non_blocking=True)
        rows = [
            host[:, ti].nonzero(as_tuple=True)[0].to(
                device, non_blocking=True) for ti in range(len(self.tasks))
        ]
        return mask, rows

    def keep_branches_in_graph(self, losses: Dict[str, Tensor],
                               branches: Sequence[Tensor]
                               ) -> Dict[str, Tensor]:
        """Let every task branch take part in the loss while norms
        synchronise.

        While :func:`~diffmtl.models.utils.sync_norm.norms_synchronise`
        holds for the model (training with SyncBN in a group of several
        processes), adds a :func:`~diffmtl.models.utils.sync_norm.zero_term`
        of ``branches`` to the first loss key, so that backward reaches
        every branch whatever the labels of this process's batch and every
        process runs the same norm collectives (``docs/en/models.md``,
        *Multi-process training with partial labels*). Otherwise
        ``losses`` is returned as is. Values are unchanged either way.

        Args:
            losses (dict[str, Tensor]): The model's loss dict (modified in
                place).
            branches (Sequence[Tensor]): The outputs of every task branch
                that ran forward, e.g. each task's logits.

        Returns:
            dict[str, Tensor]: ``losses``.
        """
        if not norms_synchronise(self):
            return losses
        key = next(k for k in losses if 'loss' in k)
        losses[key] = losses[key] + zero_term(branches)
        return losses

    def combine_losses(self, terms: Dict[str, LossTerm], mask: Tensor,
                       anchor: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Weight, rescale and batch-average per-image loss terms.

        Args:
            terms (dict): ``{key: (task, idx (n,), values (n,))}``.
            mask (Tensor): (B, T) labelled mask.
            anchor (Tensor, optional): A tensor of the graph used to make
                a zero loss differentiable when nothing is labelled.

        Returns:
            dict[str, Tensor]: one scalar per key; they sum to the loss.
        """
        batch, num_tasks = mask.shape
        scale = num_tasks / mask.sum(1).clamp(min=1).to(torch.float32)
        out = {}
        for key, (task, idx, values) in terms.items():
            w = self.loss_weights[task]
            out[key] = (w * values * scale[idx].to(values.dtype)).sum() / batch
        if not out:
            zero = mask.new_zeros((), dtype=torch.float32)
            if anchor is not None:
                zero = anchor.sum() * 0
            out['loss'] = zero
        return out

    #: Default of ``train_cfg.fp16_nonfinite_limit``.
    FP16_NONFINITE_LIMIT = 16

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None,
                mode: str = 'tensor'):
        """mmseg's entry point; in ``'loss'`` mode it also records, for
        :meth:`parse_losses`, the losses' deferred data checks (see
        :func:`diffmtl.models.losses._utils.check_data`) and the autocast
        dtype the forward pass ran under (None without autocast)."""
        if mode != 'loss':
            return super().forward(inputs, data_samples, mode)
        # checks left by a loss forward whose losses were never parsed
        stale, self._pending_data_checks = \
            getattr(self, '_pending_data_checks', []), []
        resolve_data_checks(stale)
        device_type = inputs.device.type
        self._loss_autocast_dtype = torch.get_autocast_dtype(device_type) \
            if torch.is_autocast_enabled(device_type) else None
        with deferred_data_checks() as pending:
            losses = super().forward(inputs, data_samples, mode)
        self._pending_data_checks = pending
        return losses

    def parse_losses(self, losses: Dict[str, Tensor]
                     ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """mmengine's sum of the loss terms, refusing bad labels and a
        non-finite total.

        DDP wrappers call this too, so the check holds on every launcher.
        The losses' data checks of the forward pass (labels out of range)
        and the finiteness of the total are read with one host sync. The
        run stops before the optimizer step, so the weights and the
        checkpoints already written are never touched by NaN gradients.

        A non-finite loss of a forward pass run under float16 autocast is
        handed on instead (with a warning naming the terms): its gradients
        are non-finite, so ``AmpOptimWrapper``'s ``GradScaler`` skips the
        step and lowers the loss scale, as for any fp16 overflow. After
        ``train_cfg.fp16_nonfinite_limit`` consecutive ones it raises.

        Raises:
            ValueError: For labels a loss refuses (its message).
            FloatingPointError: Naming every non-finite term.
        """
        loss, log_vars = super().parse_losses(losses)
        pending, self._pending_data_checks = \
            getattr(self, '_pending_data_checks', []), []
        check = (self.train_cfg or {}).get('check_finite_loss', True)
        flags = [~torch.isfinite(loss.detach())] if check else []
        non_finite = resolve_data_checks(pending, flags)
        if check and non_finite[0]:
            self._non_finite_loss(loss, log_vars)
        else:
            self._fp16_nonfinite_streak = 0
        self.update_task_loss_logs(log_vars)
        return loss, log_vars

    def _non_finite_loss(self, loss: Tensor,
                         log_vars: Dict[str, Tensor]) -> None:
        """Warn about (fp16, within the limit) or refuse a non-finite
        loss; see :meth:`parse_losses`."""
        bad = {
            k: float(v.detach())
            for k, v in log_vars.items()
            if k != 'loss' and not bool(torch.isfinite(v))
        }
        terms = f'non-finite terms: {bad or "none (the sum overflowed)"}'
        name = type(self).__name__
        limit = int((self.train_cfg or {}).get('fp16_nonfinite_limit',
                                               self.FP16_NONFINITE_LIMIT))
        streak = getattr(self, '_fp16_nonfinite_streak', 0) + 1
        fp16 = getattr(self, '_loss_autocast_dtype', None) == torch.float16
        if fp16 and streak <= limit:
            self._fp16_nonfinite_streak = streak
            print_log(
                f'{name}: the float16 training loss is '
                f'{float(loss.detach())} ({terms}); the AMP GradScaler '
                f'skips this step ({streak} in a row, at most {limit}: '
                'train_cfg.fp16_nonfinite_limit).',
                logger='current',
                level=logging.WARNING)
            return
        self._fp16_nonfinite_streak = 0
        amp = (f' in {streak} consecutive float16 (AMP) iterations; '
               'bfloat16 (optim_wrapper.dtype=\'bfloat16\') has the range '
               'of float32') if fp16 else ''
        raise FloatingPointError(
            f'{name}: the training loss is {float(loss.detach())}{amp}; '
            f'{terms}. Check the learning rate and the ground truth of '
            'these tasks (the run stopped before the optimizer step; set '
            'train_cfg=dict(check_finite_loss=False) to keep going).')

    #: Message-hub runtime-info key of the hidden per-task loss histories.
    HIDDEN_LOSS_LOGS = 'diffmtl_hidden_task_losses'

    def _is_task_loss_key(self, name: str) -> bool:
        task, sep, term = name.partition('.')
        return bool(sep) and task in self.tasks and 'loss' in term

    def update_task_loss_logs(self, log_vars: Dict[str, Tensor]) -> None:
        """Make the logged per-task losses cover only batches with the task.

        mmengine's ``RuntimeInfoHook`` adds every ``log_vars`` key to the
        message hub as ``train/<key>`` (count 1) and ``LogProcessor`` shows
        a loss key as the mean of its last ``window_size`` entries. A task
        absent from a batch has no key, so its history did not move: the
        log kept repeating its last value and its window reached back to
        batches long gone.

        In training, for each ``'<task>.loss*'`` key that this model logged
        before and that is absent from ``log_vars`` now, this appends a
        *skip* entry (value 0, count 0) to the key's history, so its window
        spans the same iterations as the total ``loss`` while its mean
        (sum / count) averages only the batches that had the task, and it
        hides the key from the hub until the task is back (the history is
        kept in the hub's runtime info ``HIDDEN_LOSS_LOGS``, which is saved
        in checkpoints like the visible histories, so that a resumed run
        logs the same windowed means as an uninterrupted one). An
        iteration whose batch lacks the task thus logs no value for it:
        neither its last loss nor 0 / 0. ``log_vars``, the total loss and
        the gradients are unchanged.

        Args:
            log_vars (dict[str, Tensor]): Output of :meth:`parse_losses`.
        """
        if not self.training:
            return
        hub = MessageHub.get_current_instance()
        scalars = hub.log_scalars
        hidden = hub.get_info(self.HIDDEN_LOSS_LOGS)
        if hidden is None:
            hidden = {}
            hub.update_info(self.HIDDEN_LOSS_LOGS, hidden, resumed=True)
        prefix = 'train/'
        keys = dict.fromkeys(
            k for k in list(scalars) + list(hidden)
            if k.startswith(prefix) and self._is_task_loss_key(
                k[len(prefix):]))
        for key in keys:
            if key[len(prefix):] in log_vars:
                if key in hidden:  # the task is back: restore its history
                    scalars[key] = hidden.pop(key)
                continue
            buffer = scalars.pop(key) if key in scalars else hidden[key]
            buffer.update(0., 0)
            hidden[key] = buffer

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _check_stages(self, stages) -> Tuple[str, ...]:
        if isinstance(stages, str):
            stages = (stages, )
        stages = tuple(stages)
        known = ('final', ) + tuple(self.extra_stages)
        bad = [s for s in stages if s not in known]
        if bad or 'final' not in stages or len(set(stages)) != len(stages):
            raise ValueError(
                f'{type(self).__name__}: test_cfg.eval_stages={stages} must '
                f"hold 'final' once and only stages of {known}"
                + (f'; unknown {bad}' if bad else ''))
        return stages

    def inference(self,
                  inputs: Tensor,
                  data_samples: Optional[Sequence[SegDataSample]] = None
                  ) -> Dict[str, Tensor]:
        """Logits of every task, ``{task: (B, n_t, H, W)}`` at input size.

        ``data_samples`` (optional) identify the images (DiffusionMTL keys
        its seeded noise by them); models that do not need them ignore
        them.
        """
        raise NotImplementedError

    def stage_logits(self,
                     inputs: Tensor,
                     data_samples: Optional[Sequence[SegDataSample]] = None,
                     stages: Sequence[str] = ('final', )
                     ) -> Dict[str, Dict[str, Tensor]]:
        """``{stage: {task: (B, n_t, H, W)}}`` for ``stages``; a model with
        :attr:`extra_stages` overrides this to compute them in one pass."""
        self._check_stages(stages)
        return {'final': self.inference(inputs, data_samples)}

    def encode_decode(self, inputs: Tensor,
                      batch_img_metas: Optional[List[dict]] = None
                      ) -> Dict[str, Tensor]:
        """Alias of :meth:`inference` (mmseg API)."""
        return self.inference(inputs)

    def _forward(self, inputs: Tensor,
                 data_samples: Optional[Sequence[SegDataSample]] = None
                 ) -> Dict[str, Tensor]:
        """Tensor mode: ``{task: (B, n_t, H, W)}`` logits."""
        return self.inference(inputs, data_samples)

    def predict(self, inputs: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None
                ) -> List[SegDataSample]:
        """Predict every task and post-process to the original sizes.

        Returns:
            list[SegDataSample]: with each task's ``spec.logits_field``
            (raw, original size) and ``spec.pred_field`` set, and for each
            extra stage ``s`` of ``test_cfg.eval_stages`` the same fields
            under ``stage_field(field, s)`` plus ``metainfo['pred_stages']``.
        """
        if data_samples is None:
            h, w = inputs.shape[-2:]
            data_samples = [
                SegDataSample(
                    metainfo=dict(
                        ori_shape=(h, w), img_shape=(h, w),
                        pad_shape=(h, w), padding_size=[0, 0, 0, 0]))
                for _ in range(inputs.shape[0])
            ]
        stages = self.eval_stages
        if stages == ('final', ):
            logits = {'final': self.inference(inputs, data_samples)}
        else:
            logits = self.stage_logits(inputs, data_samples, stages)
        for stage in stages:
            self.postprocess_result(logits[stage], data_samples, stage)
        extra = tuple(s for s in stages if s != 'final')
        if extra:
            for sample in data_samples:
                sample.set_metainfo(dict(pred_stages=extra))
        return list(data_samples)

    def postprocess_result(self,
                           seg_logits: Dict[str, Tensor],
                           data_samples: Sequence[SegDataSample],
                           stage: str = 'final') -> List[SegDataSample]:
        """Crop padding, undo flips, resize and fill the prediction fields.

        Args:
            seg_logits (dict): ``{task: (B, n_t, H, W)}`` at input size.
            data_samples (list[SegDataSample]): One per image.
            stage (str): ``'final'`` fills ``spec.logits_field`` /
                ``spec.pred_field``; another stage their
                :func:`~diffmtl.structures.stage_field` names.
        """
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            for task, logits in seg_logits.items():
                spec = self.task_specs[task]
                out = postprocess_task_logits(
                    task, logits[i], meta, align_corners=self.align_corners)
                sample.set_data({
                    stage_field(spec.logits_field, stage): PixelData(data=out),
                    stage_field(spec.pred_field, stage): PixelData(
                        data=logits_to_pred(task, out))
                })
        return list(data_samples)
