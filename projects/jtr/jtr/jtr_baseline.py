# Copyright (c) diffmtl contributors. All rights reserved.
"""JTR (Nishi et al., CVPR 2024) on the DiffusionMTL MTL baseline."""
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.models.segmentors import MultiTaskBaseline
from diffmtl.models.segmentors.base_multitask import (PartCfg, build_part,
                                                      part_config,
                                                      refuse_part_settings)
from diffmtl.registry import MODELS
from .autoencoder import SegNetAutoEncoder
from .encodings import ENCODINGS
from .jtr_loss import JTRLoss
from .views import JTRViews

__all__ = ['JTRMultiTaskBaseline']


@MODELS.register_module()
class JTRMultiTaskBaseline(MultiTaskBaseline):
    """MTL baseline trained with JTR's joint-task regularisation.

    Inference is the baseline's (:meth:`inference` is inherited and never
    touches :attr:`jtr_net`), so its outputs, parameters used and MACs at
    test time equal the baseline's. The auto-encoder g (:attr:`jtr_net`)
    only adds training parameters; it is trained by the model's optimiser
    and saved in checkpoints.

    Training, for a batch of ``B`` images ``v0`` (the pipeline's samples):

    1. :attr:`views` makes two views ``v1``, ``v2`` of every image and of
       its task maps (random scale-crop with depth divided by the zoom,
       photometric augmentation of the image), independently drawn.
    2. The MTL network runs once on the stacked ``3B`` batch ``[v0; v1;
       v2]``, so its batch norms see all three views, as in JTR
       (``train_nyuv2.py``: one forward of the concatenated views).
    3. ``L = L_baseline(v0) + JTRLoss(g, v1, v2)``: the baseline's
       supervised losses on ``v0``'s logits (its ``T / |L_b|`` scaling and
       task weights unchanged) plus :class:`~.jtr_loss.JTRLoss` on the
       logits of ``v1`` and ``v2`` resized to the input size, with the
       batch's label sets:

       * ``jtr.loss_dist`` ``lambda_d / B sum_b d1_b``: g's encoder with
         frozen weights on ``v1``'s stacks; it trains the MTL network
         only, through the predictions of the tasks the image is not
         labelled for (a labelled task's prediction is detached);
       * ``jtr.loss_dist_g`` and ``jtr.loss_recon``: g on the detached
         stacks of ``v2``; they train g only (``v2``'s predictions are
         used detached, so ``v2`` reaches the MTL network only through
         the batch-norm statistics of the ``3B`` forward, as in JTR).

    Collective safety (``docs/en/models.md``, *Multi-process training
    with partial labels*): every process runs the ``3B`` forward and g
    four times per iteration whatever its labels (an image without a
    usable label gets weight 0, its terms stay in the graph), the
    supervised losses keep every task branch in the graph while norms
    synchronise (:meth:`keep_branches_in_graph`), and the ``v1`` stacks
    always take part in backward (``JTRLoss`` selects the labelled slots
    with ``torch.where``, which keeps the detached predictions' graph with
    zero gradient), also in a process whose images are fully labelled. So
    every process issues the same norm collectives, with synchronised
    norms in g too.

    Logged keys: the baseline's ``'<task>.loss'``, ``'jtr.loss_dist'``,
    ``'jtr.loss_dist_g'`` and ``'jtr.loss_recon'``.

    Call flow (mmseg's ``EncoderDecoder`` style)::

        loss():    labelled_rows() -> labelled_gt() -> make_views()
                   -> view_logits() (extract_feat() -> task_logits() on
                   [v0; v1; v2]) -> supervised_losses(v0)
                   -> jtr_loss(jtr_net, v1, v2)
        predict(): the baseline's

    The names ``num_blocks`` and ``norm_cfg`` and the JTR settings in
    :attr:`PART_SETTINGS` are not arguments (they are keys of their parts'
    dicts): passing one raises a TypeError naming its key. Every argument
    is keyword-only.

    Args:
        tasks, backbone, neck, num_classes, channels, decoder: the MTL
            baseline's (``MultiTaskBaseline``).
        jtr_loss (dict | nn.Module, optional): The loss config
            (``JTRLoss``: ``encodings``, ``dist_weight``,
            ``recon_weight``, ``faithful_recon_targets``, ``normaliser``,
            ``eps``) or module. The model sets ``tasks`` and
            ``out_channels`` in the dict (a dict stating one raises a
            ValueError). A task whose encoding needs label statistics
            (depth: ``mean``, ``std``) must have them in
            ``jtr_loss.encodings``: ``projects/jtr/tools/depth_stats.py
            CONFIG`` prints them. Defaults to None
            (``dict(type='JTRLoss')``).
        jtr_net (dict | nn.Module, optional): g's config or module; the
            model sets ``in_channels`` (``JTRLoss.in_channels``, the sum
            of the encoded channels). Defaults to None
            (``dict(type='SegNetAutoEncoder')``, JTR's widths).
        views (dict | nn.Module, optional): The view maker's config or
            module (``JTRViews``: ``scales``, ``photometric`` ...).
            Defaults to None (``dict(type='JTRViews')``).
        v2_no_grad (bool): Run ``v2`` through the MTL network in a second
            forward without gradients (it needs none) instead of in the
            ``3B`` batch: less memory and backward compute, but the batch
            norms then see ``v0``, ``v1`` in one forward and ``v2`` in
            another (not JTR). Defaults to False.
        loss_weights, losses, align_corners, train_cfg, test_cfg,
        data_preprocessor, init_cfg: see ``BaseMultiTaskSegmentor``.
    """
    #: Names that are settings of a part, not arguments (see
    #: ``refuse_part_settings``).
    PART_SETTINGS = dict(
        MultiTaskBaseline.PART_SETTINGS, **{
            'encodings': 'jtr_loss.encodings',
            'dist_weight': 'jtr_loss.dist_weight',
            'recon_weight': 'jtr_loss.recon_weight',
            'faithful_recon_targets': 'jtr_loss.faithful_recon_targets',
            'normaliser': 'jtr_loss.normaliser',
            'widths': 'jtr_net.widths',
            'view_scales': 'views.scales',
            'view_photometric': 'views.photometric',
        })
    #: Number of views the loss uses besides ``v0``.
    NUM_VIEWS = 2

    @refuse_part_settings(PART_SETTINGS)
    def __init__(self,
                 *,
                 tasks: Sequence[str],
                 backbone: Union[dict, nn.Module],
                 neck: PartCfg = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 channels: int = 512,
                 decoder: Union[PartCfg, Dict[str, nn.Module]] = None,
                 jtr_loss: PartCfg = None,
                 jtr_net: PartCfg = None,
                 views: PartCfg = None,
                 v2_no_grad: bool = False,
                 loss_weights: Optional[Dict[str, float]] = None,
                 losses: Optional[Dict[str, dict]] = None,
                 align_corners: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(tasks=tasks,
                         backbone=backbone,
                         neck=neck,
                         num_classes=num_classes,
                         channels=channels,
                         decoder=decoder,
                         loss_weights=loss_weights,
                         losses=losses,
                         align_corners=align_corners,
                         train_cfg=train_cfg,
                         test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        name = type(self).__name__
        loss_cfg = part_config(
            name,
            'jtr_loss',
            jtr_loss,
            JTRLoss,
            fill=dict(tasks=(self.tasks, 'tasks'),
                      out_channels=(dict(self.out_channels),
                                    'the tasks\' output channels')))
        if isinstance(loss_cfg, dict):
            self._check_statistics(loss_cfg)
        self.jtr_loss = build_part(loss_cfg)
        if tuple(getattr(self.jtr_loss, 'tasks', self.tasks)) != self.tasks:
            raise ValueError(f'{name}: jtr_loss is for the tasks '
                             f'{self.jtr_loss.tasks}, the model\'s are '
                             f'{self.tasks}')
        in_channels = self.jtr_loss.in_channels
        self.jtr_net = build_part(
            part_config(
                name,
                'jtr_net',
                jtr_net,
                SegNetAutoEncoder,
                fill=dict(in_channels=(in_channels,
                                       'the encoded channels of the tasks '
                                       f'({self.jtr_loss.channels})'))))
        net_channels = getattr(self.jtr_net, 'in_channels', in_channels)
        if net_channels != in_channels:
            raise ValueError(f'{name}: jtr_net takes {net_channels} channels, '
                             f'the encoded tasks have {in_channels}')
        self.views = build_part(part_config(name, 'views', views, JTRViews))
        self.v2_no_grad = bool(v2_no_grad)

    def _check_statistics(self, cfg: dict) -> None:
        """Refuse a JTRLoss config without the label statistics its
        encodings need, naming the config keys and the tool."""
        loss_type = cfg.get('type', 'JTRLoss')
        if isinstance(loss_type, str):
            loss_type = MODELS.get(loss_type)
        if not (isinstance(loss_type, type)
                and issubclass(loss_type, JTRLoss)):
            return
        encodings = dict(cfg.get('encodings') or {})
        missing = []
        for task in self.tasks:
            cls = ENCODINGS.get(self.task_specs[task].kind)
            options = dict(encodings.get(task) or {})
            missing += [
                f'model.jtr_loss.encodings.{task}.{key}'
                for key in getattr(cls, 'statistics', ())
                if options.get(key) is None
            ]
        if missing:
            raise ValueError(
                f'{type(self).__name__}: JTR\'s encodings need the statistics '
                f'of the training labels of this setting, and the config does '
                f'not set {missing}. Compute them on the dataset with `python '
                f'projects/jtr/tools/depth_stats.py CONFIG` (its last line is '
                f'the entry encodings=dict(...) of model.jtr_loss) and write '
                f'them into the config, or pass --cfg-options ' +
                ' '.join(f'{k}=...' for k in missing))

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def pixel_normalisation(
            self) -> Tuple[Optional[Tensor], Optional[Tensor], bool]:
        """``(mean, std, rgb)`` of the data preprocessor: the (3, 1, 1)
        normalisation of the inputs (None, None without one) and whether
        their channel order is RGB (the preprocessor swaps the BGR
        channels an image is loaded with)."""
        pre = self.data_preprocessor
        mean = std = None
        if getattr(pre, '_enable_normalize', False):
            mean, std = pre.mean, pre.std
        rgb = bool(
            getattr(pre, 'channel_conversion',
                    getattr(pre, '_channel_conversion', False)))
        return mean, std, rgb

    def make_views(self, inputs: Tensor,
                   gts: Dict[str, Tensor]) -> Tuple[Tensor, Dict[str, Tensor]]:
        """``v1`` and ``v2`` of every image and task map.

        Args:
            inputs (Tensor): (B, 3, H, W) preprocessed images.
            gts (dict): ``{task: (B, gt_channels, H, W)}``.

        Returns:
            tuple: images (2B, 3, H, W) and ``{task: (2B, gt_channels, H,
            W)}``; rows ``0..B-1`` are ``v1``, ``B..2B-1`` are ``v2``.
        """
        mean, std, rgb = self.pixel_normalisation()
        images, maps, _ = self.views(inputs,
                                     gts,
                                     self.jtr_loss.encoders,
                                     num_views=self.NUM_VIEWS,
                                     mean=mean,
                                     std=std,
                                     rgb=rgb)
        return images, maps

    def view_logits(self, inputs: Tensor,
                    view_inputs: Tensor) -> Dict[str, Tensor]:
        """``{task: (3B, n_t, h, w)}`` logits of ``[v0; v1; v2]`` at
        feature size, from one forward of the ``3B`` batch (``v2`` from a
        forward without gradients with ``v2_no_grad``)."""
        if not self.v2_no_grad:
            return self.task_logits(
                self.extract_feat(torch.cat([inputs, view_inputs])))
        batch = inputs.shape[0]
        logits = self.task_logits(
            self.extract_feat(torch.cat([inputs, view_inputs[:batch]])))
        with torch.no_grad():
            logits2 = self.task_logits(self.extract_feat(view_inputs[batch:]))
        return {t: torch.cat([logits[t], logits2[t]]) for t in self.tasks}

    def loss(self, inputs: Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """The baseline's losses on ``v0`` plus the JTR terms.

        Args:
            inputs (Tensor): (B, 3, H, W) images.
            data_samples (list[SegDataSample]): With every task's GT at
                (H, W) and ``metainfo['task_mask']``.

        Returns:
            dict[str, Tensor]: scalars; the ``*loss*`` keys sum to ``L``.
        """
        size = inputs.shape[-2:]
        batch = inputs.shape[0]
        mask, rows = self.labelled_rows(data_samples, inputs.device)
        gts = self.labelled_gt(data_samples, mask, size, inputs.device, rows)
        view_inputs, view_gts = self.make_views(inputs, gts)
        logits = self.view_logits(inputs, view_inputs)
        losses = self.supervised_losses(
            {
                t: v[:batch]
                for t, v in logits.items()
            }, mask, gts, size, rows)
        losses.update(
            self.jtr_loss(self.jtr_net,
                          *self.jtr_loss_inputs(logits, view_gts, size),
                          mask))
        return losses

    def jtr_loss_inputs(self, logits: Dict[str, Tensor],
                        view_gts: Dict[str, Tensor],
                        size: Tuple[int, int]) -> Tuple[dict, ...]:
        """The views' logits and GT as :class:`~.jtr_loss.JTRLoss` takes
        them.

        Args:
            logits (dict): ``{task: (3B, n_t, h, w)}`` from
                :meth:`view_logits`, rows ``[v0; v1; v2]``.
            view_gts (dict): ``{task: (2B, gt_channels, H, W)}`` from
                :meth:`make_views`, rows ``[v1; v2]``.
            size (tuple): ``(H, W)``, the input size.

        Returns:
            tuple: ``logits_v1, logits_v2`` (``{task: (B, n_t, H, W)}``,
            resized to the input size), ``gts_v1, gts_v2`` (``{task: (B,
            gt_channels, H, W)}``).
        """
        batch = next(iter(logits.values())).shape[0] // 3
        logits_v1 = {
            t: self.resize(v[batch:2 * batch], size)
            for t, v in logits.items()
        }
        logits_v2 = {
            t: self.resize(v[2 * batch:], size)
            for t, v in logits.items()
        }
        gts_v1 = {t: g[:batch] for t, g in view_gts.items()}
        gts_v2 = {t: g[batch:] for t, g in view_gts.items()}
        return logits_v1, logits_v2, gts_v1, gts_v2
