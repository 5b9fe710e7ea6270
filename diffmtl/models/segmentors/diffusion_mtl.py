# Copyright (c) diffmtl contributors. All rights reserved.
"""DiffusionMTL: multi-task denoising diffusion on initial predictions or
features (Ye & Xu, CVPR 2024)."""
import hashlib
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

import torch
import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.registry import MODELS
from diffmtl.structures import unpad_window
from ..diffusion import (DiffusionSchedule, MultiTaskConditioner,
                         MultiTaskDenoiser)
from ..utils.head_init import init_head_bias
from ..utils.sync_norm import norms_synchronise
from .base_multitask import (BaseMultiTaskSegmentor, PartCfg, build_part,
                             decoder_configs, part_config,
                             refuse_part_settings)

#: ``noise_fn(task, step, kind, batch_idx, shape) -> (len(batch_idx), *shape)``
NoiseFn = Callable[..., Tensor]


def image_noise_key(image: Tensor) -> str:
    """The identity an image's seeded inference noise is drawn from: its
    pixels.

    A sha256 of the dtype, shape and bytes of ``image``, the image as the
    network receives it (after the data preprocessor's channel order and
    normalisation) without its padding. The same pixels thus get the same
    noise whatever the file is called, where it lives, whether it came as
    an array or a file, and where it sits in its batch; the key is computed
    on the host (a device image is copied there once per batch).

    Args:
        image (Tensor): (C, h, w) image window.

    Returns:
        str: 64 hex digits.
    """
    data = image.detach().to('cpu').contiguous()
    digest = hashlib.sha256(f'{data.dtype}|{tuple(data.shape)}|'.encode())
    digest.update(data.numpy().tobytes() if data.numel() else b'')
    return digest.hexdigest()


def image_noise_keys(inputs: Tensor,
                     data_samples: Optional[Sequence[SegDataSample]] = None
                     ) -> List[str]:
    """:func:`image_noise_key` of every image of a batch.

    Args:
        inputs (Tensor): (B, C, H, W) network input.
        data_samples (list[SegDataSample], optional): Their padding
            (``padding_size`` / ``img_padding_size`` / ``img_shape``, see
            :func:`~diffmtl.structures.unpad_window`) is cut off before
            hashing; without samples the whole input is the image.

    Returns:
        list[str]: One key per image.
    """
    host = inputs.detach().to('cpu')
    keys = []
    for i in range(host.shape[0]):
        image = host[i]
        if data_samples is not None:
            top, bottom, left, right = unpad_window(
                data_samples[i].metainfo, image.shape[-2:])
            image = image[..., top:bottom, left:right]
        keys.append(image_noise_key(image))
    return keys


def image_noise_seed(seed: int, key: str, task: str, step: int,
                     kind: str) -> int:
    """63-bit seed of one image's noise: a hash of (``seed``, image key,
    task, step, kind) only, so it is the same for any batch size, batch
    order, process count or device."""
    text = f'{int(seed)}|{key}|{task}|{int(step)}|{kind}'.encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], 'little') >> 1


def seeded_noise(seed: int, shape: Sequence[int],
                 device: Union[str, torch.device]) -> Tensor:
    """Standard normal noise drawn on ``device`` from its own generator.

    On the CPU: ``torch.randn`` with a CPU ``torch.Generator`` seeded with
    ``seed``. On CUDA (and any device with its own generator): the same
    with ``torch.Generator(device=device)``, so nothing is drawn on the
    host and copied; the values are a fixed function of ``seed`` for one
    kind of device (CUDA's Philox stream differs from the CPU's Mersenne
    Twister, and may differ between GPU models). Devices without a
    generator of their own get the CPU draw, copied.

    Args:
        seed (int): Generator seed (e.g. :func:`image_noise_seed`).
        shape (sequence[int]): Shape of the noise.
        device (str | torch.device): Where the noise is needed.

    Returns:
        Tensor: float32 noise of ``shape`` on ``device``.
    """
    device = torch.device(device)
    if device.type != 'cpu':
        try:
            gen = torch.Generator(device=device)
        except RuntimeError:
            gen = None
        if gen is not None:
            gen.manual_seed(int(seed))
            return torch.randn(
                tuple(shape), generator=gen, device=device,
                dtype=torch.float32)
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    noise = torch.randn(tuple(shape), generator=gen, dtype=torch.float32)
    return noise.to(device)


@MODELS.register_module()
class DiffusionMTL(BaseMultiTaskSegmentor):

    """Multi-task denoising diffusion network for partially labelled data.

    Pipeline for an input batch (B, 3, H, W)::

        F        = neck(backbone(x))                      (B, C, H/8, W/8)
        F_init_t = decoders[t](F)                         (B, C, H/8, W/8)
        P_init_t = init_heads[t](F_init_t)                (B, n_t, H/8, W/8)
        F_cond   = conditioner([P_init_1..T])  (detached) (B, C, H/8, W/8)
        x_start  = F_init_t ('feature') or P_init_t ('prediction')
        X_{S-1}  = q_sample(x_start)
        for s = S-1..1: X_{s-1} = posterior(denoiser(t, X_s, s, F_cond), X_s)
        P_0      = up(final_heads[t](denoiser(t, X_0, 0, F_cond)))  (feature)
                   up(denoiser(t, X_0, 0, F_cond))                (prediction)

    The denoiser outputs an x0 estimate (x0 parameterisation). Training
    denoises and supervises only labelled (image, task) pairs, batched per
    task with index tensors; inference denoises every task.

    Losses: ``L = 1/B sum_b T/|L_b| sum_{t in L_b} w_t (l_t(P_0) +
    init_loss_weight * l_t(up(P_init)))``, logged as ``'<task>.loss'`` and
    ``'<task>.loss_init'``.

    :meth:`denoising_process` returns, per task, the stages
    ``[('initial', .), ('noisy', .), ('step_1', .), ..., ('final', .)]``
    as (B, n_t, H, W) logits at input size (feature-mode stages are mapped
    to logits with that task's ``final_heads``) for visualisation.

    Call flow (mmseg's ``EncoderDecoder`` style)::

        loss():    extract_feat() -> initial() -> condition()
                   -> per task, its labelled images: diffusion_start()
                   -> denoise() (q_sample, S denoiser calls) -> task losses
                   -> combine_losses()
        predict(): inference() or stage_logits() -> _reverse_all_tasks()
                   (extract_feat() -> initial() -> condition() -> per task
                   denoise()) -> postprocess_result()
        denoising_process(): _reverse_all_tasks(trace=True)

    Parts: ``decoder`` (per-task template), ``conditioner``, ``schedule``
    and ``denoiser`` are each a config dict built with ``MODELS.build``
    (``type`` defaults to ``ResidualTaskDecoder``, ``MultiTaskConditioner``,
    ``DiffusionSchedule``, ``MultiTaskDenoiser``), or a built module used as
    given (``decoder``: ``{task: nn.Module}`` or an ``nn.ModuleDict``). A
    part's own settings are keys of its dict only (the decoders' depth
    ``decoder.num_blocks``, their norm ``decoder.norm_cfg``, the diffusion
    steps and betas ``schedule.num_steps`` / ``beta_start`` / ``beta_end``
    / ``beta_schedule``); unstated keys take the part class's defaults. The
    model sets what it requires in each dict, and a dict stating one of
    these keys raises a ValueError:

    * ``decoder``: ``channels``; ``forward((B, C, h, w)) -> (B, C, h, w)``.
    * ``conditioner``: ``in_channels=[n_t in task order]``, ``channels``
      (``per_task_proj`` defaults to ``mode == 'prediction'``);
      ``forward([(B, n_t, h, w)]) -> (B, C, h, w)``.
    * ``schedule``: nothing; ``num_steps``, ``q_sample`` and
      ``posterior_sample`` as :class:`DiffusionSchedule`.
    * ``denoiser``: ``tasks``, ``in_channels={t: C or n_t}``, ``channels``,
      ``out_channels`` (None or ``{t: n_t}``), ``attention`` (``'cross'``,
      ``'self'`` without multi-task conditioning), ``align_corners``;
      ``forward(task, X_s (N, C or n_t, h, w), s (N,), cond (N, C, h, w) or
      None) -> (N, C or n_t, h, w)`` x0 estimate.

    The names ``decoder_blocks``, ``norm_cfg``, ``num_steps``,
    ``beta_start``, ``beta_end`` and ``beta_schedule`` are not arguments:
    passing one raises a TypeError naming its key (:attr:`PART_SETTINGS`).

    Every argument is keyword-only.

    Args:
        tasks (Sequence[str]): Task names in dataset order.
        backbone (dict | nn.Module): Any mmseg backbone returning all
            stages.
        neck (dict | nn.Module): Neck producing (B, C, H/8, W/8), e.g.
            ``StageFusionNeck``.
        num_classes (dict, optional): ``{task: N}`` for segmentation tasks.
        mode (str): ``'feature'`` (released variant) or ``'prediction'``.
        channels (int): Width C. Defaults to 512.
        decoder (dict | dict[str, nn.Module], optional): Per-task
            preliminary decoder template, built once per task (e.g.
            ``dict(type='ResidualTaskDecoder', num_blocks=2,
            norm_cfg=dict(type='SyncBN'))``), or one module per task.
            Defaults to None (``dict(type='ResidualTaskDecoder')``: 2 basic
            blocks, BN).
        conditioner (dict | nn.Module, optional): Conditioner config or
            module; not built (a module is refused) with
            ``multi_task_condition=False``. Defaults to None
            (``dict(type='MultiTaskConditioner')``).
        schedule (dict | nn.Module, optional): Schedule config (e.g.
            ``dict(type='DiffusionSchedule', num_steps=2, beta_start=1e-3,
            beta_end=1e-2, beta_schedule='linear')``; ``'linear'`` is
            linear in sqrt(beta), the reference's default, ``'sqrt_linear'``
            linear in beta) or module. Defaults to None
            (``dict(type='DiffusionSchedule')``, those values).
        denoiser (dict | nn.Module, optional): Denoiser config (the
            configs: ``type='MultiTaskDenoiser', num_blocks=4, num_heads=4,
            mlp_ratio=4, token_scale=0.25, head_convs=3, step_freq_dim=256``)
            or module. Defaults to None (``MultiTaskDenoiser`` defaults).
        use_diffusion (bool): False = ablation "w/o diffusion": no noise,
            ``X_{s-1} = denoiser(...)`` (plain iterative refinement).
        multi_task_condition (bool): False = ablation "w/o multi-task
            conditioning": no conditioner, self-attention over task tokens.
        detach_condition (bool): Detach the initial predictions fed to the
            conditioner (official). Defaults to True.
        detach_x_start (bool): Detach the diffusion start. Defaults to
            False (official).
        inference_noise (bool): Add noise at inference (official: True);
            False uses the noise-free means.
        inference_seed (int, optional): Seed of the inference noise. Each
            image's noise is drawn, on the image's device
            (:func:`seeded_noise`), from its own generator seeded with
            :func:`image_noise_seed` (seed, the image's
            :func:`image_noise_key` (a hash of its pixels), task, step,
            kind), so a prediction is a function of the checkpoint and the
            pixels alone: the same for any file name, batch size, batch
            order or number of processes, and for one kind of device (CPU
            and CUDA draw different noise). None draws from the global RNG
            (not reproducible).
        init_loss_weight (float): Weight of the initial predictions' loss.
            Defaults to 0.5.
        loss_weights (dict, optional): ``{task: w_t}``.
        losses (dict, optional): ``{task: loss cfg}`` overrides.
        noise_fn (callable, optional): Noise source
            ``noise_fn(task=, step=, kind=, batch_idx=, shape=)`` returning
            (len(batch_idx), *shape) where ``kind`` is ``'q_sample'`` or
            ``'posterior'`` and ``batch_idx`` the images' batch indices;
            for tests that need identical noise in different code paths.
        align_corners (bool): Of every bilinear resize. Defaults to False.
        train_cfg, test_cfg, data_preprocessor, init_cfg: as mmseg;
            ``test_cfg.eval_stages=('initial', 'final')`` also predicts
            (and lets ``MultiTaskMetric`` score) the initial predictions.
    """
    #: Besides ``'final'``, ``test_cfg.eval_stages`` may ask for these.
    extra_stages = ('initial', )

    #: Names that are settings of a part, not arguments: name -> the part
    #: key that holds it (see :func:`refuse_part_settings`).
    PART_SETTINGS = {
        'decoder_blocks': 'decoder.num_blocks',
        'norm_cfg': 'decoder.norm_cfg',
        'num_steps': 'schedule.num_steps',
        'beta_start': 'schedule.beta_start',
        'beta_end': 'schedule.beta_end',
        'beta_schedule': 'schedule.beta_schedule',
    }

    @refuse_part_settings(PART_SETTINGS)
    def __init__(self,
                 *,
                 tasks: Sequence[str],
                 backbone: Union[dict, nn.Module],
                 neck: PartCfg = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 mode: str = 'feature',
                 channels: int = 512,
                 decoder: Union[PartCfg, Dict[str, nn.Module]] = None,
                 conditioner: PartCfg = None,
                 schedule: PartCfg = None,
                 denoiser: PartCfg = None,
                 use_diffusion: bool = True,
                 multi_task_condition: bool = True,
                 detach_condition: bool = True,
                 detach_x_start: bool = False,
                 inference_noise: bool = True,
                 inference_seed: Optional[int] = None,
                 init_loss_weight: float = 0.5,
                 loss_weights: Optional[Dict[str, float]] = None,
                 losses: Optional[Dict[str, dict]] = None,
                 noise_fn: Optional[NoiseFn] = None,
                 align_corners: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(
            tasks=tasks,
            backbone=backbone,
            neck=neck,
            num_classes=num_classes,
            loss_weights=loss_weights,
            losses=losses,
            align_corners=align_corners,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if mode not in ('feature', 'prediction'):
            raise ValueError(f'DiffusionMTL: mode must be feature or '
                             f'prediction, got {mode!r}')
        self.mode = mode
        self.channels = channels
        self.use_diffusion = use_diffusion
        self.multi_task_condition = multi_task_condition
        self.detach_condition = detach_condition
        self.detach_x_start = detach_x_start
        self.inference_noise = inference_noise
        self.inference_seed = inference_seed
        self.init_loss_weight = init_loss_weight
        self.noise_fn = noise_fn
        #: Per-image noise keys of the batch being inferred (None: global
        #: RNG); set by :meth:`_reverse_all_tasks` only.
        self._noise_keys: Optional[List[str]] = None

        owner = type(self).__name__
        n = self.out_channels
        feature = mode == 'feature'
        # Every part's config is completed (and checked) before any part is
        # built; the modules are then created in a fixed order (decoders,
        # init heads, conditioner, schedule, denoiser, final heads), which
        # the seeded initial values of tests/data/model_fingerprints.json
        # pin.
        decoder_cfgs = decoder_configs(
            owner, self.tasks, decoder,
            fill=lambda t: dict(channels=(channels, f'channels={channels}')))
        if isinstance(conditioner, nn.Module) and not multi_task_condition:
            raise ValueError(f'{owner}: a conditioner module was given but '
                             f'multi_task_condition=False')
        conditioner_cfg = part_config(
            owner, 'conditioner', conditioner, MultiTaskConditioner,
            fill=dict(
                in_channels=([n[t] for t in self.tasks],
                             'the tasks\' output channels'),
                channels=(channels, f'channels={channels}')),
            defaults=dict(per_task_proj=not feature)) \
            if multi_task_condition else None
        schedule_cfg = part_config(owner, 'schedule', schedule,
                                   DiffusionSchedule)
        denoiser_cfg = part_config(
            owner, 'denoiser', denoiser, MultiTaskDenoiser,
            fill=dict(
                tasks=(self.tasks, 'tasks'),
                in_channels=({t: channels if feature else n[t]
                              for t in self.tasks}, f'mode={mode!r}'),
                channels=(channels, f'channels={channels}'),
                out_channels=(None if feature else dict(n),
                              f'mode={mode!r}'),
                attention=('cross' if multi_task_condition else 'self',
                           f'multi_task_condition={multi_task_condition}'),
                align_corners=(align_corners,
                               f'align_corners={align_corners}')))

        self.decoders = nn.ModuleDict(
            {t: build_part(decoder_cfgs[t])
             for t in self.tasks})
        self.init_heads = nn.ModuleDict(
            {t: nn.Conv2d(channels, n[t], 1)
             for t in self.tasks})
        self.conditioner = build_part(conditioner_cfg) \
            if multi_task_condition else None
        self.schedule = build_part(schedule_cfg)
        self.denoiser = build_part(denoiser_cfg)
        self.final_heads = nn.ModuleDict(
            {t: nn.Conv2d(channels, n[t], 1)
             for t in self.tasks}) if feature else None
        # the kind's initial bias of every layer that predicts a task, if
        # it asks for one (no random numbers drawn)
        denoiser_heads = getattr(self.denoiser, 'task_heads', {})
        for t in self.tasks:
            final = self.final_heads[t] if feature else (
                denoiser_heads[t] if t in denoiser_heads else self.denoiser)
            for head in (self.init_heads[t], final):
                init_head_bias(head, self.task_specs[t], owner)

    # ------------------------------------------------------------------
    # building blocks
    # ------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return self.schedule.num_steps

    def initial(self, feats: Tensor
                ) -> Tuple[Dict[str, Tensor], Dict[str, Tensor]]:
        """Preliminary decoders and heads.

        Args:
            feats (Tensor): (B, C, h, w) fused features.

        Returns:
            tuple: ``{task: F_init (B, C, h, w)}``,
            ``{task: P_init (B, n_t, h, w)}``.
        """
        init_feats = {t: self.decoders[t](feats) for t in self.tasks}
        init_preds = {t: self.init_heads[t](init_feats[t]) for t in self.tasks}
        return init_feats, init_preds

    def condition(self, init_preds: Dict[str, Tensor]) -> Optional[Tensor]:
        """(B, C, h, w) condition map from all tasks' initial predictions
        (None without multi-task conditioning)."""
        if self.conditioner is None:
            return None
        preds = [init_preds[t] for t in self.tasks]
        if self.detach_condition:
            preds = [p.detach() for p in preds]
        return self.conditioner(preds)

    def diffusion_start(self, init_feats: Dict[str, Tensor],
                        init_preds: Dict[str, Tensor], task: str) -> Tensor:
        """x_start of ``task``: F_init (feature) or P_init (prediction)."""
        x = init_feats[task] if self.mode == 'feature' else init_preds[task]
        return x.detach() if self.detach_x_start else x

    def _noise(self, task: str, step: int, kind: str, batch_idx: Tensor,
               like: Tensor) -> Tensor:
        if self.noise_fn is not None:
            noise = self.noise_fn(
                task=task, step=step, kind=kind, batch_idx=batch_idx,
                shape=tuple(like.shape[1:]))
            if tuple(noise.shape) != tuple(like.shape):
                raise ValueError(f'DiffusionMTL: noise_fn returned '
                                 f'{tuple(noise.shape)} for {task!r} step '
                                 f'{step} ({kind}), expected '
                                 f'{tuple(like.shape)}')
            return noise.to(like)
        if self._noise_keys is not None and like.device.type != 'meta':
            rows = [
                seeded_noise(
                    image_noise_seed(self.inference_seed, self._noise_keys[b],
                                     task, step, kind), like.shape[1:],
                    like.device) for b in batch_idx.tolist()
            ]
            return torch.stack(rows).to(dtype=like.dtype)
        return torch.randn_like(like)

    def to_logits(self, task: str, x: Tensor) -> Tensor:
        """Map a diffusion state of ``task`` to logits at its own size."""
        return self.final_heads[task](x) if self.mode == 'feature' else x

    def denoise(self,
                task: str,
                x_start: Tensor,
                cond: Optional[Tensor],
                batch_idx: Tensor,
                add_noise: bool = True,
                trace: Optional[list] = None) -> Tensor:
        """Run the S-step reverse process of ``task``.

        Args:
            task (str): Task name.
            x_start (Tensor): (n, C or n_t, h, w) diffusion start.
            cond (Tensor, optional): (n, C, h, w) condition map.
            batch_idx (Tensor): (n,) batch indices of the rows (passed to
                ``noise_fn``).
            add_noise (bool): Inject noise (q-sample and posterior).
            trace (list, optional): Receives ``(name, state)`` of the
                noisy start and of every intermediate state.

        Returns:
            Tensor: (n, n_t, h, w) final logits (before upsampling).
        """
        steps = self.num_steps
        x = x_start
        if self.use_diffusion:
            noise = self._noise(task, steps - 1, 'q_sample', batch_idx,
                                x_start) if add_noise else None
            x = self.schedule.q_sample(x_start, steps - 1, noise)
        if trace is not None:
            trace.append(('noisy', x))
        for step in range(steps - 1, -1, -1):
            t = torch.full((x.shape[0], ),
                           step,
                           dtype=torch.long,
                           device=x.device)
            x0 = self.denoiser(task, x, t, cond)
            if step == 0:
                x = x0
                break
            if self.use_diffusion:
                noise = self._noise(task, step, 'posterior', batch_idx,
                                    x) if add_noise else None
                x = self.schedule.posterior_sample(x0, x, step, noise)
            else:
                x = x0
            if trace is not None:
                trace.append((f'step_{steps - step}', x))
        return self.to_logits(task, x)

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """Losses of a partially labelled batch.

        Args:
            inputs (Tensor): (B, 3, H, W) images.
            data_samples (list[SegDataSample]): with every task's GT field
                at (H, W) and ``metainfo['task_mask']``.

        Returns:
            dict[str, Tensor]: ``'<task>.loss'`` / ``'<task>.loss_init'``.

        Raises:
            ValueError: If the denoiser's norms synchronise: it runs on each
                process's labelled images only (see ``docs/en/models.md``,
                *Multi-process training with partial labels*).
        """
        if norms_synchronise(self.denoiser):
            raise ValueError(
                f'{type(self).__name__}: the denoiser holds synchronised '
                'norms (SyncBN) and this is a multi-process run; the '
                'denoiser runs on the labelled images of each process only, '
                'so their collectives would differ between processes. Give '
                'the denoiser per-process norms (BN, GN, LN).')
        size = inputs.shape[-2:]
        feats = self.extract_feat(inputs)
        init_feats, init_preds = self.initial(feats)
        cond = self.condition(init_preds)
        mask, rows = self.labelled_rows(data_samples, inputs.device)
        terms = {}
        for ti, task in enumerate(self.tasks):
            idx = rows[ti]  # no host sync (labelled_rows)
            if idx.numel() == 0:
                continue
            gt = self.task_gt(data_samples, task, size, inputs.device)[idx]
            x_start = self.diffusion_start(init_feats, init_preds, task)[idx]
            logits = self.denoise(task, x_start,
                                  None if cond is None else cond[idx], idx,
                                  add_noise=True)
            loss_fn = self.task_losses[task]
            terms[f'{task}.loss'] = (task, idx,
                                     loss_fn(self.resize(logits, size), gt))
            if self.init_loss_weight:
                init = self.resize(init_preds[task][idx], size)
                terms[f'{task}.loss_init'] = (
                    task, idx, self.init_loss_weight * loss_fn(init, gt))
        losses = self.combine_losses(
            terms, mask, anchor=init_preds[self.tasks[0]])
        # With synchronised norms every preliminary branch (and through it
        # the backbone) and the conditioner get a backward, whatever this
        # batch's labels.
        branches = [init_preds[t] for t in self.tasks]
        return self.keep_branches_in_graph(
            losses, branches + ([] if cond is None else [cond]))

    # ------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------
    def _reverse_all_tasks(
            self,
            inputs: Tensor,
            per_task: Callable[[str, Tensor, Tensor, Optional[list]], Any],
            trace: bool = False,
            data_samples: Optional[Sequence[SegDataSample]] = None
    ) -> Dict[str, Any]:
        """Run the inference reverse process of every task.

        The shared body of :meth:`inference` and :meth:`denoising_process`:
        with ``inference_seed`` set, keys each image's noise by its pixels
        (:func:`image_noise_keys`; reset afterwards, also on errors; meta
        tensors, which have no pixels, get unkeyed noise),
        computes features, initial predictions and the condition once, then
        denoises each task in turn with ``add_noise=inference_noise``. The
        rows' batch indices given to :meth:`denoise` are a CPU tensor, so
        picking the rows' keys needs no device sync.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            per_task (callable): ``(task, initial prediction, final logits,
                trace) -> value`` called right after each task's reverse
                process; ``trace`` is the list filled by :meth:`denoise`, or
                None without ``trace``.
            trace (bool): Record the intermediate states.
            data_samples (list[SegDataSample], optional): The images'
                samples, whose padding is cut off before the pixels are
                hashed into the noise keys.

        Returns:
            dict: ``{task: per_task(...)}``.
        """
        # meta tensors (parameter / MAC counting) have no pixels to key by
        if self.inference_seed is not None and inputs.device.type != 'meta':
            n = inputs.shape[0]
            if data_samples is not None and len(data_samples) != n:
                raise ValueError(f'DiffusionMTL: {len(data_samples)} data '
                                 f'samples for a batch of {n} images')
            self._noise_keys = image_noise_keys(inputs, data_samples)
        try:
            feats = self.extract_feat(inputs)
            init_feats, init_preds = self.initial(feats)
            cond = self.condition(init_preds)
            idx = torch.arange(inputs.shape[0])
            out = {}
            for task in self.tasks:
                states = [] if trace else None
                final = self.denoise(
                    task,
                    self.diffusion_start(init_feats, init_preds, task),
                    cond,
                    idx,
                    add_noise=self.inference_noise,
                    trace=states)
                out[task] = per_task(task, init_preds[task], final, states)
        finally:
            self._noise_keys = None
        return out

    def inference(self,
                  inputs: Tensor,
                  data_samples: Optional[Sequence[SegDataSample]] = None
                  ) -> Dict[str, Tensor]:
        """Denoise every task; ``{task: (B, n_t, H, W)}`` logits."""
        size = inputs.shape[-2:]
        return self._reverse_all_tasks(
            inputs, lambda task, init, final, _: self.resize(final, size),
            data_samples=data_samples)

    def stage_logits(self,
                     inputs: Tensor,
                     data_samples: Optional[Sequence[SegDataSample]] = None,
                     stages: Sequence[str] = ('final', )
                     ) -> Dict[str, Dict[str, Tensor]]:
        """Logits of the requested stages from one reverse pass.

        ``'initial'`` are the preliminary decoders' predictions P_init (the
        diffusion start in prediction mode, the condition's input in both),
        ``'final'`` the denoised P_0; both (B, n_t, H, W) at input size.
        """
        self._check_stages(stages)
        size = inputs.shape[-2:]
        both = self._reverse_all_tasks(
            inputs,
            lambda task, init, final, _: (self.resize(init, size),
                                          self.resize(final, size)),
            data_samples=data_samples)
        pick = dict(initial=0, final=1)
        return {
            stage: {t: v[pick[stage]]
                    for t, v in both.items()}
            for stage in stages
        }

    @torch.no_grad()
    def denoising_process(
            self,
            inputs: Tensor,
            data_samples: Optional[Sequence[SegDataSample]] = None
    ) -> Dict[str, List[Tuple[str, Tensor]]]:
        """Every stage of the reverse process, as logits at input size.

        Args:
            inputs (Tensor): (B, 3, H, W) normalised images.
            data_samples (list[SegDataSample], optional): The images'
                padding, cut off before their pixels key the seeded noise
                (see ``inference_seed``).

        Returns:
            dict: ``{task: [('initial', P), ('noisy', P), ('step_1', P),
            ..., ('final', P)]}`` with each P (B, n_t, H, W) logits.
        """
        size = inputs.shape[-2:]

        def stages(task, init, final, trace):
            out = [('initial', self.resize(init, size))]
            out += [(name, self.resize(self.to_logits(task, x), size))
                    for name, x in trace]
            out.append(('final', self.resize(final, size)))
            return out

        return self._reverse_all_tasks(
            inputs, stages, trace=True, data_samples=data_samples)
