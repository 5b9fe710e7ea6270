# Copyright (c) diffmtl contributors. All rights reserved.
"""XTC (Li, Liu and Bilen, CVPR 2022) on the DiffusionMTL MTL baseline.

The paper's "XTC*" re-implements the cross-task consistency of MTPSL on
the MTL baseline; that code is not released, so the mapper design and the
pair scaling here are the INFERRED defaults of the project README.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.structures import SegDataSample
from torch import Tensor

from diffmtl.models.segmentors import MultiTaskBaseline
from diffmtl.models.segmentors.base_multitask import (PartCfg, build_part,
                                                      part_config,
                                                      refuse_part_settings)
from diffmtl.models.utils.sync_norm import (all_reduce_counts,
                                            norms_synchronise)
from diffmtl.registry import MODELS
from .encodings import (SEG_ENCODINGS, encode_ground_truth, encode_prediction,
                        valid_ground_truth)
from .mapper import FiLMResNetMapper, pair_code

__all__ = ['XTCMultiTaskBaseline', 'cosine_distance']

#: Ways to reduce the pairs of one image (see ``pair_reduction``).
PAIR_REDUCTIONS = ('mean', 'sum')


def cosine_distance(a: Tensor, b: Tensor, eps: float = 1e-12) -> Tensor:
    """``1 - cos`` over channels at every location, averaged per row.

    Args:
        a (Tensor): (N, C, h, w).
        b (Tensor): (N, C, h, w).
        eps (float): Of the cosine. Defaults to 1e-12.

    Returns:
        Tensor: (N,).
    """
    return (1 - F.cosine_similarity(a, b, dim=1, eps=eps)).flatten(1).mean(1)


@MODELS.register_module()
class XTCMultiTaskBaseline(MultiTaskBaseline):
    """MTL baseline trained with XTC's cross-task consistency.

    Inference is the baseline's (:meth:`inference` is inherited and never
    touches :attr:`mapper`), so its outputs, parameters used and MACs at
    test time equal the baseline's; the mapper only adds training
    parameters (it is saved in checkpoints).

    Training (B images, ``L_b`` / ``U_b`` the labelled / unlabelled tasks
    of image ``b``): for every ordered pair ``(s, t)`` with ``s in U_b``
    and ``t in L_b`` (all ``s != t`` of ``L_b`` when ``U_b`` is empty),
    whose GT ``y_t`` has at least one valid pixel, the encoded prediction
    ``e(P_s)`` goes through ``s``'s stem and the encoded GT ``e(y_t)``
    through ``t``'s, both through the mapper ``g_k`` conditioned on the
    pair code ``k``, and

    ``l(s, t) = d(g_k(e(P_s)), g_k(e(y_t)))
    + reg_weight * (d(g_k(e(P_s)), sg F_b) + d(g_k(e(y_t)), sg F_b))``

    with ``d = 1 - cos`` over channels averaged over locations, ``F_b`` the
    shared feature (neck output) of the image and ``sg`` stop-gradient:
    gradients reach the mapper through both sides and the MTL network only
    through ``P_s``. The loss is

    ``L = L_baseline + xtc_weight / B * sum_b c_b sum_{(s,t) in P_b}
    l(s, t)``,

    ``c_b = ref_pairs / |P_b|`` (``pair_reduction='mean'``) or 1
    (``'sum'``, MTPSL). All pairs of the batch are mapped in one mapper
    call per side, batched over (image, pair); no loop over images.

    Logged keys: the baseline's ``'<task>.loss'``, ``'xtc.loss_con'``
    (consistency), ``'xtc.loss_reg'`` (both regularisers, weighted) and
    ``'xtc.num_pairs'`` (pairs in the batch; not a loss).

    Call flow (mmseg's ``EncoderDecoder`` style)::

        loss():    extract_feat() -> task_logits() -> labelled_mask()
                   -> labelled_gt() -> supervised_losses()
                   -> xtc_pair_terms() (select_pairs() -> mapper_groups()
                   -> encode_pairs() -> map_side() x 2 -> cosine distances)
        predict(): the baseline's

    The names ``num_blocks`` and ``norm_cfg`` are not arguments (they are
    ``decoder.num_blocks`` / ``decoder.norm_cfg``): passing one raises a
    TypeError naming its key. Every argument is keyword-only.

    Args:
        tasks, backbone, neck, num_classes, channels, decoder: the MTL
            baseline's (``MultiTaskBaseline``).
        mapper (dict | nn.Module, optional): Mapper config or module. The
            model sets ``tasks``, ``in_channels`` (``{task: n_t}``) and
            ``num_pairs`` (``T (T - 1)``) in the dict (a dict stating one
            raises a ValueError); a dict without ``out_channels`` gets
            ``channels``. Defaults to None
            (``dict(type='FiLMResNetMapper')``).
        xtc_weight (float): lambda. Defaults to 2.0 (MTPSL NYUv2).
        reg_weight (float): Weight of the regularisers. Defaults to 0.5.
        pair_reduction (str): ``'mean'`` (``c_b = ref_pairs / |P_b|``) or
            ``'sum'``. Defaults to ``'mean'``.
        ref_pairs (float): Pairs per image the ``'mean'`` reduction scales
            to (MTPSL's NYUv2 splits always have 2). Defaults to 2.0.
        max_pairs (int, optional): Map at most this many random pairs per
            image, the kept ones scaled by ``|P_b| / max_pairs``. Defaults
            to None (all pairs).
        seg_encoding (str): Prediction encoding of segmentation / saliency
            tasks, ``'gumbel'`` (hard straight-through Gumbel-softmax,
            MTPSL) or ``'softmax'``. Defaults to ``'gumbel'``.
        gumbel_tau (float): Gumbel-softmax temperature. Defaults to 1.0.
        eps (float): Of the cosines and the normalisations. Defaults to
            1e-12.
        loss_weights, losses, align_corners, train_cfg, test_cfg,
        data_preprocessor, init_cfg: see ``BaseMultiTaskSegmentor``.
    """

    @refuse_part_settings(MultiTaskBaseline.PART_SETTINGS)
    def __init__(self,
                 *,
                 tasks: Sequence[str],
                 backbone: Union[dict, nn.Module],
                 neck: PartCfg = None,
                 num_classes: Optional[Dict[str, int]] = None,
                 channels: int = 512,
                 decoder: Union[PartCfg, Dict[str, nn.Module]] = None,
                 mapper: PartCfg = None,
                 xtc_weight: float = 2.0,
                 reg_weight: float = 0.5,
                 pair_reduction: str = 'mean',
                 ref_pairs: float = 2.0,
                 max_pairs: Optional[int] = None,
                 seg_encoding: str = 'gumbel',
                 gumbel_tau: float = 1.0,
                 eps: float = 1e-12,
                 loss_weights: Optional[Dict[str, float]] = None,
                 losses: Optional[Dict[str, dict]] = None,
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
        if len(self.tasks) < 2:
            raise ValueError(f'{name}: XTC needs at least two tasks, got '
                             f'{self.tasks}')
        if pair_reduction not in PAIR_REDUCTIONS:
            raise ValueError(f'{name}: pair_reduction must be one of '
                             f'{PAIR_REDUCTIONS}, got {pair_reduction!r}')
        if seg_encoding not in SEG_ENCODINGS:
            raise ValueError(f'{name}: seg_encoding must be one of '
                             f'{SEG_ENCODINGS}, got {seg_encoding!r}')
        if max_pairs is not None and int(max_pairs) < 1:
            raise ValueError(f'{name}: max_pairs must be >= 1 or None, got '
                             f'{max_pairs}')
        self.xtc_weight = float(xtc_weight)
        self.reg_weight = float(reg_weight)
        self.pair_reduction = pair_reduction
        self.ref_pairs = float(ref_pairs)
        self.max_pairs = None if max_pairs is None else int(max_pairs)
        self.seg_encoding = seg_encoding
        self.gumbel_tau = float(gumbel_tau)
        self.eps = float(eps)
        num_tasks = len(self.tasks)
        self.num_pairs = num_tasks * (num_tasks - 1)
        if mapper is None or isinstance(mapper, dict):
            # its output is compared with F: C channels unless stated
            mapper = dict(mapper or dict(type='FiLMResNetMapper'))
            mapper.setdefault('out_channels', channels)
        self.mapper = build_part(
            part_config(
                name, 'mapper', mapper, FiLMResNetMapper,
                fill=dict(
                    tasks=(self.tasks, 'tasks'),
                    in_channels=(dict(self.out_channels),
                                 'the tasks\' output channels'),
                    num_pairs=(self.num_pairs, f'{num_tasks} tasks'))))

    # ------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------
    def loss(self, inputs: Tensor,
             data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """The baseline's losses plus the XTC terms.

        Args:
            inputs (Tensor): (B, 3, H, W) images.
            data_samples (list[SegDataSample]): With every task's GT at
                (H, W) and ``metainfo['task_mask']``.

        Returns:
            dict[str, Tensor]: scalars; the ``*loss*`` keys sum to ``L``.
        """
        size = inputs.shape[-2:]
        feats = self.extract_feat(inputs)
        logits = self.task_logits(feats)
        mask = self.labelled_mask(data_samples, inputs.device)
        gts = self.labelled_gt(data_samples, mask, size, inputs.device)
        losses = self.supervised_losses(logits, mask, gts, size)
        terms = self.xtc_pair_terms(feats, logits, mask, gts, size)
        weight = terms['weight']
        if weight.numel():
            losses['xtc.loss_con'] = (weight * terms['con']).sum()
            losses['xtc.loss_reg'] = (
                weight * self.reg_weight *
                (terms['reg_pred'] + terms['reg_gt'])).sum()
        else:
            losses['xtc.loss_con'] = feats.new_zeros(())
            losses['xtc.loss_reg'] = feats.new_zeros(())
        losses['xtc.num_pairs'] = feats.new_tensor(float(weight.numel()))
        # With synchronised norms the mapper gets a backward also in a
        # process without pairs of its own.
        return self.keep_branches_in_graph(
            losses, [terms['mapped_pred'], terms['mapped_gt']])

    def select_pairs(self, mask: Tensor,
                     gt_valid: Tensor) -> Tuple[Tensor, Tensor]:
        """The (image, s, t) triples to map and their loss weights.

        Args:
            mask (Tensor): (B, T) bool labelled mask.
            gt_valid (Tensor): (B, T) bool, whether the GT of (image, task)
                has a valid pixel.

        Returns:
            tuple[Tensor, Tensor]: ``pairs`` (P, 3) int64 rows ``(b, s,
            t)`` ordered by image, then ``s``, then ``t``; ``weight`` (P,)
            ``xtc_weight * c_b / B`` (times ``|P_b| / max_pairs`` for
            sampled images).
        """
        batch, num_tasks = mask.shape
        unlabelled = ~mask
        full = ~unlabelled.any(dim=1)
        source = torch.where(full[:, None], mask, unlabelled)
        target = mask & gt_valid
        eye = torch.eye(num_tasks, dtype=torch.bool, device=mask.device)
        table = source[:, :, None] & target[:, None, :] & ~eye
        pairs = table.nonzero()
        counts = table.flatten(1).sum(dim=1)
        used = counts.clone()
        if self.max_pairs is not None and pairs.shape[0] > 0:
            img = pairs[:, 0]
            order = torch.argsort(
                img.to(torch.float64) +
                torch.rand(img.shape, device=img.device, dtype=torch.float64))
            first = torch.cumsum(counts, 0) - counts
            rank = torch.empty_like(img)
            rank[order] = torch.arange(img.numel(), device=img.device) - \
                first[img[order]]
            pairs = pairs[rank < self.max_pairs]
            used = counts.clamp(max=self.max_pairs)
        img = pairs[:, 0]
        scale = counts.new_ones(counts.shape, dtype=torch.float32)
        if self.pair_reduction == 'mean':
            scale = self.ref_pairs / counts.clamp(min=1).float()
        # rescale the sampled pairs to stand for all of the image's pairs
        scale = scale * counts.float() / used.clamp(min=1).float()
        weight = self.xtc_weight * scale[img] / batch
        return pairs, weight

    def encode_pairs(self,
                     logits: Dict[str, Tensor],
                     gts: Dict[str, Tensor],
                     pairs: Tensor,
                     size,
                     groups: Optional[Sequence[Sequence[bool]]] = None
                     ) -> Tuple[Dict[str, Tensor], ...]:
        """Mapper inputs of both sides, grouped by stem task.

        Args:
            logits (dict): ``{task: (B, n_t, h, w)}`` at feature size.
            gts (dict): ``{task: (B, gt_channels, H, W)}``.
            pairs (Tensor): (P, 3) rows ``(b, s, t)``.
            size (tuple): (H, W) input size.
            groups (list, optional): ``[source, target]``, each a list of
                T bools: the stems to run on that side even without rows
                here, as empty (0, n_t, H, W) groups (the stems some
                process needs, when the mapper's norms synchronise). None:
                only the tasks with rows.

        Returns:
            tuple: ``pred_in``, ``pred_rows``, ``gt_in``, ``gt_rows``:
            ``pred_in[s]`` (N_s, n_s, H, W) encoded predictions of ``s``
            (rows ``pred_rows[s]`` (N_s,) of ``pairs`` with source ``s``),
            ``gt_in[t]`` (N_t, n_t, H, W) encoded GT of ``t`` (rows
            ``gt_rows[t]`` with target ``t``).
        """
        pred_in, pred_rows, gt_in, gt_rows = {}, {}, {}, {}
        for ti, task in enumerate(self.tasks):
            spec = self.task_specs[task]
            shape = (0, self.out_channels[task]) + tuple(size)
            rows = (pairs[:, 1] == ti).nonzero(as_tuple=True)[0]
            if not rows.numel() and groups is not None and groups[0][ti]:
                pred_in[task] = logits[task].new_zeros(shape)
                pred_rows[task] = rows
            elif rows.numel():
                pred = self.resize(logits[task][pairs[rows, 0]], size)
                pred_in[task] = encode_prediction(spec, pred,
                                                  self.seg_encoding,
                                                  self.gumbel_tau, self.eps)
                pred_rows[task] = rows
            rows = (pairs[:, 2] == ti).nonzero(as_tuple=True)[0]
            if not rows.numel() and groups is not None and groups[1][ti]:
                gt_in[task] = logits[task].new_zeros(shape)
                gt_rows[task] = rows
            elif rows.numel():
                gt = gts[task][pairs[rows, 0]]
                gt_in[task] = encode_ground_truth(
                    spec,
                    gt,
                    self.out_channels[task],
                    self.eps,
                    dtype=logits[task].dtype)
                gt_rows[task] = rows
        return pred_in, pred_rows, gt_in, gt_rows

    def mapper_groups(self, pairs: Tensor
                      ) -> Optional[List[List[bool]]]:
        """The stems every process runs, when the mapper's norms
        synchronise.

        A stem's norms synchronise with the other processes' only if every
        process runs it, so the stems are those of the tasks that are a
        source (a target) of a pair in any process's batch, found with
        one all-reduce of the (2, T) counts; a process runs them with
        empty groups where it has no rows, and none (nor the mapper) when
        no process has a pair.

        Args:
            pairs (Tensor): (P, 3) rows ``(b, s, t)`` of this process.

        Returns:
            list | None: ``[source, target]``, each T bools; None when the
            mapper's norms do not synchronise (single process, evaluation,
            per-process norms): the stems are then those with rows.
        """
        if not norms_synchronise(self.mapper):
            return None
        num_tasks = len(self.tasks)
        counts = torch.stack([
            torch.bincount(pairs[:, 1], minlength=num_tasks),
            torch.bincount(pairs[:, 2], minlength=num_tasks)
        ])
        return (all_reduce_counts(counts, self.mapper) > 0).tolist()

    def map_side(self, inputs: Dict[str, Tensor], rows: Dict[str, Tensor],
                 codes: Tensor) -> Tensor:
        """One mapper call over the groups of a side, back in pair order.

        Args:
            inputs (dict): ``{task: (N_task, n_task, H, W)}``.
            rows (dict): ``{task: (N_task,)}`` rows of ``pairs``.
            codes (Tensor): (P,) pair code of every row.

        Returns:
            Tensor: (P, C, h, w) mapped features, row ``i`` of pair ``i``.
        """
        out = self.mapper(inputs, {t: codes[r] for t, r in rows.items()})
        order = torch.cat([rows[t] for t in inputs])
        mapped = torch.cat([out[t] for t in inputs])
        return mapped[torch.argsort(order)]

    def xtc_pair_terms(self, feats: Tensor, logits: Dict[str,
                                                         Tensor], mask: Tensor,
                       gts: Dict[str, Tensor], size) -> Dict[str, Tensor]:
        """Per-pair XTC terms, unweighted.

        Args:
            feats (Tensor): (B, C, h', w') shared feature ``F``.
            logits (dict): ``{task: (B, n_t, h, w)}`` task logits.
            mask (Tensor): (B, T) labelled mask.
            gts (dict): ``{task: (B, gt_channels, H, W)}`` of the tasks
                labelled in the batch.
            size (tuple): (H, W) input size.

        Returns:
            dict[str, Tensor]: ``pairs`` (P, 3) rows ``(b, s, t)``,
            ``weight`` (P,), ``con`` (P,) ``d(g(e(P_s)), g(e(y_t)))``,
            ``reg_pred`` (P,) ``d(g(e(P_s)), sg F_b)``, ``reg_gt`` (P,)
            ``d(g(e(y_t)), sg F_b)``, ``mapped_pred`` / ``mapped_gt``
            (P, C, h', w').
        """
        gt_valid = torch.zeros_like(mask)
        for ti, task in enumerate(self.tasks):
            if task in gts:
                gt_valid[:, ti] = valid_ground_truth(
                    self.task_specs[task], gts[task]).flatten(1).any(dim=1)
        pairs, weight = self.select_pairs(mask, gt_valid)
        groups = self.mapper_groups(pairs)
        if (pairs.shape[0] == 0 if groups is None else not any(groups[0])):
            empty = feats.new_zeros((0, ))
            shape = (0, ) + tuple(feats.shape[1:])
            return dict(
                pairs=pairs,
                weight=weight,
                con=empty,
                reg_pred=empty,
                reg_gt=empty,
                mapped_pred=feats.new_zeros(shape),
                mapped_gt=feats.new_zeros(shape))
        codes = pair_code(pairs[:, 1], pairs[:, 2], len(self.tasks))
        pred_in, pred_rows, gt_in, gt_rows = self.encode_pairs(
            logits, gts, pairs, size, groups)
        mapped_pred = self.map_side(pred_in, pred_rows, codes)
        mapped_gt = self.map_side(gt_in, gt_rows, codes)
        target = feats.detach()[pairs[:, 0]]
        if mapped_pred.shape != target.shape:
            raise ValueError(
                f'{type(self).__name__}: the mapper gives '
                f'{tuple(mapped_pred.shape[1:])} but the shared feature is '
                f'{tuple(target.shape[1:])}; configure the mapper like the '
                'backbone and neck')
        return dict(
            pairs=pairs,
            weight=weight,
            con=cosine_distance(mapped_pred, mapped_gt, self.eps),
            reg_pred=cosine_distance(mapped_pred, target, self.eps),
            reg_gt=cosine_distance(mapped_gt, target, self.eps),
            mapped_pred=mapped_pred,
            mapped_gt=mapped_gt)
