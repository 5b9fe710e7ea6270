# Copyright (c) diffmtl contributors. All rights reserved.
"""The JTR loss (Nishi et al., CVPR 2024): distance and reconstruction
terms of the joint-task regulariser, batched over images.

JTR's code loops over the images of a batch and runs g (and a deep copy of
it) on one image at a time. Here every image of a batch goes through one
g call per side (Y, Y_hat) and view; with g's instance norm (the default of
:class:`~.autoencoder.SegNetAutoEncoder`) that equals the per-image
reference, which ``tests/test_projects/test_jtr.py`` checks.
"""
from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor
from torch.func import functional_call

from diffmtl.registry import MODELS
from diffmtl.structures import get_task_spec
from projects.xtc.xtc.xtc_baseline import cosine_distance
from .encodings import NORMALISERS, TaskEncoding, build_encoding

__all__ = ['JTRLoss', 'frozen_latent']


def frozen_latent(net: nn.Module, x: Tensor) -> Tensor:
    """``g1'(x)``: g's encoder with its current weights, as constants.

    JTR deep-copies g for every image; its parameters are outside the
    optimiser and its running-statistics updates are thrown away. Here the
    parameters are detached and the buffers cloned, through
    ``torch.func.functional_call``, in g's current mode: gradients reach
    ``x`` and never g.

    Args:
        net (nn.Module): g; ``net(x, latent_only=True)`` gives the latent.
        x (Tensor): (N, C, H, W).

    Returns:
        Tensor: (N, C', h, w).
    """
    state = {k: p.detach() for k, p in net.named_parameters()}
    state.update({k: b.clone() for k, b in net.named_buffers()})
    return functional_call(net, state, (x, ), dict(latent_only=True))


@MODELS.register_module()
class JTRLoss(nn.Module):
    """Joint-task regularisation terms of one batch.

    For image ``b``, view ``v`` and task ``t``: ``L_b`` are the tasks
    labelled with at least one valid pixel in that view's ground truth (a
    labelled task without one counts as unlabelled); the joint mask ``m``
    is the product of their validity maps (1 without any). The stacks are

    * ``Y_hat_v = cat_t e(y_hat_t)``: the prediction of a task in ``L_b``
      detached; the segmentation slot a hard Gumbel sample in v1 and the
      softmax in v2;
    * ``Y_v = cat_t e(y_t) if t in L_b else e(y_hat_t)``, a new sample for
      kinds that draw noise, the same tensor as in ``Y_hat_v`` otherwise.

    Then, with ``g1'`` g's encoder with frozen weights
    (:func:`frozen_latent`), ``d = 1 - cos`` over channels averaged over
    locations, and ``sg`` stop-gradient:

    * ``d1 = d(g1'(Y_1), g1'(Y_hat_1))``: reaches the MTL network only, and
      only through the unlabelled tasks' v1 predictions;
    * ``(z, r) = g(sg Y_2)``, ``(z_hat, r_hat) = g(sg Y_hat_2)`` and
      ``d2 = d(z, z_hat)``: reach g only;
    * ``R = sum_t rec_t(r_t, target of Y_2) + rec_t(r_hat_t, target of
      Y_hat_2)``, on v2 over ``m``; the targets are detached: the label
      value of a task in ``L_b``, else a prediction target (a fresh sample
      for kinds that draw noise).

    ``L = lambda_d / B sum_b w1_b d1_b + 1 / B sum_b w2_b (lambda_d
    lambda_r d2_b + lambda_r R_b)``, with ``w_b = 0`` for an image with no
    task in ``L_b`` in that view, and 1 otherwise; ``B`` is the batch size.

    Any module ``net`` with ``net(x) -> (z, recon)`` and ``net(x,
    latent_only=True) -> z``, ``recon`` of ``x``'s shape, can be g.

    Args:
        tasks (Sequence[str]): Task names, in the model's order.
        out_channels (dict): ``{task: channels the network predicts}``.
        encodings (dict, optional): ``{task: options}`` of the tasks'
            encodings (``projects/jtr/jtr/encodings.py``), e.g.
            ``dict(depth=dict(mean=2.36, std=1.59))``; required for depth.
        dist_weight (float): ``lambda_d``. Defaults to 4 (JTR).
        recon_weight (float): ``lambda_r``; it also scales ``d2``, as in
            JTR. Defaults to 2 (JTR).
        faithful_recon_targets (bool): Use JTR's reconstruction targets on
            the Y_hat side: the encoded slot, so depth goes through Phi
            twice and normals compare with ``(n * m + 1) / 2``. Defaults to
            False: the label-space prediction (Phi once, unit normals).
        normaliser (str): ``'mask'`` (default: a reconstruction term is
            divided by the image's mask pixels) or ``'nonzero'`` (JTR: by
            the nonzero elements of its target).
        eps (float): Of the cosine. Defaults to 1e-12.
    """

    def __init__(self,
                 *,
                 tasks: Sequence[str],
                 out_channels: Mapping[str, int],
                 encodings: Optional[Mapping[str, dict]] = None,
                 dist_weight: float = 4.0,
                 recon_weight: float = 2.0,
                 faithful_recon_targets: bool = False,
                 normaliser: str = 'mask',
                 eps: float = 1e-12) -> None:
        super().__init__()
        name = type(self).__name__
        self.tasks = tuple(tasks)
        if not self.tasks:
            raise ValueError(f'{name}: tasks is empty')
        missing = [t for t in self.tasks if t not in out_channels]
        if missing:
            raise KeyError(f'{name}: out_channels lacks {missing}')
        encodings = dict(encodings or {})
        unknown = sorted(set(encodings) - set(self.tasks))
        if unknown:
            raise ValueError(f'{name}: encodings names {unknown}, which are '
                             f'not among the tasks {list(self.tasks)}')
        for key, value in (('dist_weight', dist_weight), ('recon_weight',
                                                          recon_weight)):
            if not float(value) >= 0:
                raise ValueError(f'{name}: {key} must be >= 0, got {value}')
        if normaliser not in NORMALISERS:
            raise ValueError(f'{name}: normaliser must be one of '
                             f'{NORMALISERS}, got {normaliser!r}')
        self.encoders: Dict[str, TaskEncoding] = {
            t: build_encoding(get_task_spec(t), out_channels[t],
                              encodings.get(t))
            for t in self.tasks
        }
        self.channels = {t: e.channels for t, e in self.encoders.items()}
        self.dist_weight = float(dist_weight)
        self.recon_weight = float(recon_weight)
        self.faithful_recon_targets = bool(faithful_recon_targets)
        self.normaliser = normaliser
        self.eps = float(eps)

    @property
    def in_channels(self) -> int:
        """``C``: channels of the stacked maps, g's ``in_channels``."""
        return sum(self.channels.values())

    def extra_repr(self) -> str:
        return (f'channels={self.channels}, dist_weight={self.dist_weight}, '
                f'recon_weight={self.recon_weight}, '
                f'faithful_recon_targets={self.faithful_recon_targets}, '
                f'normaliser={self.normaliser!r}')

    # ------------------------------------------------------------------
    def view_labels(self, gts: Mapping[str, Tensor],
                    labelled: Tensor) -> Tensor:
        """(B, T) bool: labelled, with a valid pixel in this view's GT.

        Args:
            gts (dict): ``{task: (B, gt_channels, H, W)}``; a task labelled
                in no image of the batch may be missing.
            labelled (Tensor): (B, T) bool.
        """
        cols = []
        for ti, task in enumerate(self.tasks):
            if task in gts:
                has = self.encoders[task].valid(gts[task]).flatten(1).any(1)
                cols.append(labelled[:, ti] & has)
            else:
                cols.append(torch.zeros_like(labelled[:, ti]))
        return torch.stack(cols, dim=1)

    def joint_mask(self, gts: Mapping[str, Tensor], labels: Tensor,
                   shape) -> Tensor:
        """(B, 1, H, W) float: the product of the validity maps of each
        image's tasks in ``labels`` (1 where it has none)."""
        mask = None
        for ti, task in enumerate(self.tasks):
            if task not in gts:
                continue
            ok = self.encoders[task].valid(gts[task]) | \
                ~labels[:, ti, None, None, None]
            mask = ok if mask is None else mask & ok
        if mask is None:
            return torch.ones(shape, device=labels.device)
        return mask.float()

    def stacks(self, logits: Mapping[str, Tensor], gts: Mapping[str, Tensor],
               labels: Tensor, mask: Tensor, stochastic: bool):
        """``Y`` and ``Y_hat`` of one view.

        Args:
            logits (dict): ``{task: (B, n_out, H, W)}`` at input size.
            gts (dict): As :meth:`view_labels`.
            labels (Tensor): (B, T) bool, :meth:`view_labels`.
            mask (Tensor): (B, 1, H, W) joint mask.
            stochastic (bool): Hard samples in the Y_hat slots (v1).

        Returns:
            tuple[Tensor, Tensor]: ``Y``, ``Y_hat``, each (B, C, H, W);
            the predictions of labelled (image, task) detached.
        """
        ys, yhats = [], []
        for ti, task in enumerate(self.tasks):
            enc = self.encoders[task]
            lab = labels[:, ti, None, None, None]
            src = torch.where(lab, logits[task].detach(), logits[task])
            yhat = enc.encode_prediction(src, mask, stochastic)
            fresh = enc.encode_prediction(src, mask, True) \
                if enc.draws_noise else yhat
            if task in gts:
                y = torch.where(lab,
                                enc.encode_label(gts[task]).to(fresh.dtype),
                                fresh)
            else:
                y = fresh
            ys.append(y)
            yhats.append(yhat)
        return torch.cat(ys, dim=1), torch.cat(yhats, dim=1)

    def recon_terms(self, recon: Tensor, recon_hat: Tensor,
                    logits: Mapping[str, Tensor], gts: Mapping[str, Tensor],
                    labels: Tensor, mask: Tensor) -> Tensor:
        """(B,) ``R``: both sides' reconstruction terms of every task.

        Args:
            recon, recon_hat (Tensor): (B, C, H, W) ``g(Y_2)``,
                ``g(Y_hat_2)``.
            logits, gts, labels, mask: v2's, as :meth:`stacks`.
        """
        total = recon.new_zeros(recon.shape[0])
        parts = torch.split(recon, list(self.channels.values()), dim=1)
        parts_hat = torch.split(recon_hat, list(self.channels.values()), dim=1)
        for ti, task in enumerate(self.tasks):
            enc = self.encoders[task]
            pred = logits[task].detach()
            target_pred = enc.prediction_target(pred, mask)
            target = target_pred
            if task in gts:
                target = torch.where(
                    labels[:, ti, None, None, None],
                    enc.label_value(gts[task]).to(target_pred.dtype),
                    target_pred)
            if self.faithful_recon_targets:
                target_hat = enc.encode_prediction(pred, mask, True)
            elif enc.draws_noise:
                target_hat = enc.prediction_target(pred, mask)
            else:
                target_hat = target_pred
            total = total + enc.recon_loss(parts[ti], target, mask,
                                           self.normaliser)
            total = total + enc.recon_loss(parts_hat[ti], target_hat, mask,
                                           self.normaliser)
        return total

    def _check(self, logits, gts, labelled, view: str) -> tuple:
        name = type(self).__name__
        missing = [t for t in self.tasks if t not in logits]
        if missing:
            raise KeyError(f'{name}: the {view} logits lack {missing}')
        batch = labelled.shape[0]
        if labelled.shape != (batch, len(self.tasks)):
            raise ValueError(f'{name}: labelled must be (B, {len(self.tasks)})'
                             f' bool, got {tuple(labelled.shape)}')
        shape = logits[self.tasks[0]].shape
        for task in self.tasks:
            got = tuple(logits[task].shape)
            want = (batch, self.encoders[task].out_channels) + \
                tuple(shape[-2:])
            if got != want:
                raise ValueError(f'{name}: {view} logits of {task!r} are '
                                 f'{got}, expected {want} (all tasks at '
                                 'the input size)')
            if task in gts and gts[task].shape[-2:] != shape[-2:]:
                raise ValueError(f'{name}: {view} GT of {task!r} is '
                                 f'{tuple(gts[task].shape)}, logits '
                                 f'{tuple(shape)}')
        unseen = [
            t for ti, t in enumerate(self.tasks)
            if t not in gts and bool(labelled[:, ti].any())
        ]
        if unseen:
            raise KeyError(f'{name}: tasks {unseen} are labelled but the '
                           f'{view} GT lacks them')
        return (batch, 1) + tuple(shape[-2:])

    def terms(self, net: nn.Module, logits_v1: Mapping[str, Tensor],
              logits_v2: Mapping[str, Tensor], gts_v1: Mapping[str, Tensor],
              gts_v2: Mapping[str,
                              Tensor], labelled: Tensor) -> Dict[str, Tensor]:
        """Per-image JTR terms, unweighted.

        Args:
            net (nn.Module): g.
            logits_v1, logits_v2 (dict): ``{task: (B, n_out, H, W)}`` of
                the two views, at the input size.
            gts_v1, gts_v2 (dict): ``{task: (B, gt_channels, H, W)}``
                stacked GT of the views (unlabelled maps hold pad values);
                tasks labelled in no image may be missing.
            labelled (Tensor): (B, T) bool, the image's label set.

        Returns:
            dict[str, Tensor]: ``dist`` (B,) ``d1``; ``dist_g`` (B,)
            ``d2``; ``recon`` (B,) ``R``; ``weight_v1`` / ``weight_v2``
            (B,) the image weights; ``labels_v1`` / ``labels_v2`` (B, T)
            :meth:`view_labels`; ``mask_v1`` / ``mask_v2`` (B, 1, H, W).
        """
        labelled = labelled.to(torch.bool)
        shape1 = self._check(logits_v1, gts_v1, labelled, 'v1')
        shape2 = self._check(logits_v2, gts_v2, labelled, 'v2')
        labelled = labelled.to(logits_v1[self.tasks[0]].device,
                               non_blocking=True)
        labels1 = self.view_labels(gts_v1, labelled)
        labels2 = self.view_labels(gts_v2, labelled)
        mask1 = self.joint_mask(gts_v1, labels1, shape1)
        mask2 = self.joint_mask(gts_v2, labels2, shape2)
        dtype = logits_v1[self.tasks[0]].dtype
        mask1, mask2 = mask1.to(dtype), mask2.to(dtype)

        y1, yhat1 = self.stacks(logits_v1, gts_v1, labels1, mask1, True)
        logits2 = {t: v.detach() for t, v in logits_v2.items()}
        y2, yhat2 = self.stacks(logits2, gts_v2, labels2, mask2, False)
        if y1.shape[1] != getattr(net, 'in_channels', y1.shape[1]):
            raise ValueError(f'{type(self).__name__}: the stacked maps have '
                             f'{y1.shape[1]} channels but g takes '
                             f'{net.in_channels}; build g with '
                             f'in_channels={self.in_channels}')
        dist = cosine_distance(frozen_latent(net, y1),
                               frozen_latent(net, yhat1), self.eps)
        z2, recon = net(y2.detach())
        z2_hat, recon_hat = net(yhat2.detach())
        dist_g = cosine_distance(z2, z2_hat, self.eps)
        rec = self.recon_terms(recon, recon_hat, logits2, gts_v2, labels2,
                               mask2)
        return dict(dist=dist,
                    dist_g=dist_g,
                    recon=rec,
                    weight_v1=labels1.any(1).to(dist.dtype),
                    weight_v2=labels2.any(1).to(dist.dtype),
                    labels_v1=labels1,
                    labels_v2=labels2,
                    mask_v1=mask1,
                    mask_v2=mask2)

    def forward(self, net: nn.Module, logits_v1: Mapping[str, Tensor],
                logits_v2: Mapping[str, Tensor], gts_v1: Mapping[str, Tensor],
                gts_v2: Mapping[str, Tensor],
                labelled: Tensor) -> Dict[str, Tensor]:
        """The weighted JTR losses of a batch (arguments as
        :meth:`terms`).

        Returns:
            dict[str, Tensor]: scalars ``jtr.loss_dist`` (``lambda_d / B
            sum w1 d1``, trains the MTL network), ``jtr.loss_dist_g``
            (``lambda_d lambda_r / B sum w2 d2``) and ``jtr.loss_recon``
            (``lambda_r / B sum w2 R``), both training g.
        """
        terms = self.terms(net, logits_v1, logits_v2, gts_v1, gts_v2, labelled)
        batch = terms['dist'].shape[0]
        w1, w2 = terms['weight_v1'], terms['weight_v2']
        return {
            'jtr.loss_dist':
            self.dist_weight * (w1 * terms['dist']).sum() / batch,
            'jtr.loss_dist_g':
            self.dist_weight * self.recon_weight *
            (w2 * terms['dist_g']).sum() / batch,
            'jtr.loss_recon':
            self.recon_weight * (w2 * terms['recon']).sum() / batch,
        }
