# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/xtc: the XTC loss against a per-image reference written by
hand, where its gradients go, and that the mappers never run at
inference."""
import os.path as osp
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from diffmtl.models.utils.complexity import count_macs, count_parameters
from diffmtl.registry import MODELS
# A missing project must fail these tests, not skip them.
from projects.xtc.xtc import (FiLM, FiLMResNetMapper, XTCMultiTaskBaseline,
                              encode_prediction, pair_code)

sys.path.insert(
    0,
    osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'test_models'))
from _mtl_model_utils import make_batch, tiny_baseline_cfg  # noqa: E402

torch.set_num_threads(1)

TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
T = len(TASKS)
NUM_CLASSES = dict(semseg=5, human_parts=3)
SIZE = (32, 48)
XTC_KEYS = dict(
    mapper=dict(type='FiLMResNetMapper', stem_channels=8, base_channels=8))


def tiny_xtc_cfg(**kwargs):
    cfg = tiny_baseline_cfg(
        tasks=TASKS, type='XTCMultiTaskBaseline', **XTC_KEYS)
    cfg['loss_weights'] = dict(cfg['loss_weights'], depth=1.0)
    cfg.update(kwargs)
    return cfg


def batch(masks, seed=0):
    return make_batch(
        masks, tasks=TASKS, size=SIZE, seed=seed, num_classes=NUM_CLASSES)


# ---------------------------------------------------------------------------
# hand-written reference (one image, one pair at a time)
# ---------------------------------------------------------------------------
ORDERED_PAIRS = [(s, t) for s in range(T) for t in range(T) if s != t]


def ref_encode_pred(task, logit):
    """(1, n, H, W) logits -> encoded prediction (softmax for seg)."""
    if task in ('semseg', 'human_parts', 'sal'):
        return torch.softmax(logit, dim=1)
    if task == 'edge':
        return torch.sigmoid(logit)
    if task == 'normals':
        return (logit / logit.norm(dim=1, keepdim=True) + 1) / 2
    return logit / (logit.abs().max() + 1e-12)  # depth


def ref_encode_gt(task, gt):
    """(1, c, H, W) packed GT -> encoded GT, invalid pixels zero."""
    if task in ('semseg', 'human_parts', 'sal'):
        n = NUM_CLASSES.get(task, 2)
        valid = gt[0, 0] != 255
        planes = [((gt[0, 0] == c) & valid).float() for c in range(n)]
        return torch.stack(planes)[None]
    if task == 'edge':
        return (gt * (gt != 255)).float()
    if task == 'normals':
        valid = (gt.abs().sum(dim=1, keepdim=True) > 0).float()
        return (gt + 1) / 2 * valid
    return gt / (gt.max() + 1e-12)  # depth, invalid 0 stays 0


def ref_has_valid(task, gt):
    if task in ('normals', ):
        return bool((gt.abs().sum(dim=1) > 0).any())
    if task == 'depth':
        return bool((gt != 0).any())
    return bool((gt != 255).any())


def ref_dist(a, b):
    cos = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))
    return (1 - cos).mean()


def reference_xtc(model, inputs, samples, masks, xtc_weight, reg_weight,
                  reduction, ref_pairs):
    """(consistency, regulariser) totals computed image by image."""
    batch_size = len(samples)
    con_total, reg_total = 0.0, 0.0
    for b, sample in enumerate(samples):
        feat = model.extract_feat(inputs[b:b + 1])
        gts = {
            t: sample.get(model.task_specs[t].gt_field).data[None]
            for t in TASKS
        }
        labelled = [i for i in range(T) if masks[b][i]]
        unlabelled = [i for i in range(T) if not masks[b][i]] or labelled
        pairs = [(s, t) for s in unlabelled for t in labelled
                 if s != t and ref_has_valid(TASKS[t], gts[TASKS[t]])]
        if not pairs:
            continue
        c_b = ref_pairs / len(pairs) if reduction == 'mean' else 1.0
        for s, t in pairs:
            ts, tt = TASKS[s], TASKS[t]
            code = torch.tensor([ORDERED_PAIRS.index((s, t))])
            logit = F.interpolate(
                model.decoders[ts](feat),
                size=SIZE,
                mode='bilinear',
                align_corners=False)
            mp = model.mapper({ts: ref_encode_pred(ts, logit)}, {ts: code})[ts]
            mg = model.mapper({tt: ref_encode_gt(tt, gts[tt].float())},
                              {tt: code})[tt]
            w = xtc_weight * c_b / batch_size
            con_total = con_total + w * ref_dist(mp, mg)
            reg_total = reg_total + w * reg_weight * (
                ref_dist(mp, feat) + ref_dist(mg, feat))
    return con_total, reg_total


MASKS = [
    (1, 0, 0, 0, 0, 0),  # one-label: 5 pairs (s, semseg)
    (0, 1, 1, 0, 0, 1),  # random: 3 x 3 pairs
    (1, 1, 1, 1, 1, 1),  # full labels: all 30 ordered pairs
    (0, 0, 0, 0, 0, 0),  # nothing labelled: no pair
    (0, 1, 0, 1, 0, 0),  # human_parts labelled but all ignored: 4 pairs
]


def masked_batch():
    inputs, samples = batch(MASKS)
    parts = samples[4].gt_human_parts.data
    samples[4].gt_human_parts.data = torch.full_like(parts, 255)
    return inputs, samples


@pytest.mark.parametrize('reduction,xtc_weight,reg_weight',
                         [('mean', 1.5, 0.3), ('sum', 2.0, 0.5)])
def test_pair_loss_matches_per_image_reference(reduction, xtc_weight,
                                               reg_weight):
    torch.manual_seed(0)
    model = MODELS.build(
        tiny_xtc_cfg(
            xtc_weight=xtc_weight,
            reg_weight=reg_weight,
            pair_reduction=reduction,
            seg_encoding='softmax'))
    model.eval()  # norms on running statistics: rows are independent
    # non-trivial FiLM parameters, so that a wrong pair code shows
    with torch.no_grad():
        for m in model.mapper.modules():
            if isinstance(m, FiLM):
                m.gamma.uniform_(0.5, 1.5)
                m.beta.normal_(0, 0.5)
    inputs, samples = masked_batch()
    losses = model.loss(inputs, samples)
    con, reg = reference_xtc(model, inputs, samples, MASKS, xtc_weight,
                             reg_weight, reduction, 2.0)
    assert losses['xtc.num_pairs'].item() == 5 + 9 + 30 + 0 + 4
    assert losses['xtc.loss_con'].item() == pytest.approx(
        float(con.detach()), rel=1e-4)
    assert losses['xtc.loss_reg'].item() == pytest.approx(
        float(reg.detach()), rel=1e-4)
    assert losses['xtc.loss_con'].item() > 0
    # 'xtc.num_pairs' is logged but not summed into the loss
    total, log_vars = model.parse_losses(losses)
    expected = sum(v for k, v in losses.items() if k != 'xtc.num_pairs')
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert log_vars['xtc.num_pairs'].item() == 48


def test_supervised_terms_equal_the_baseline():
    torch.manual_seed(0)
    model = MODELS.build(tiny_xtc_cfg(seg_encoding='softmax'))
    base = MODELS.build(
        tiny_baseline_cfg(tasks=TASKS, loss_weights=dict(model.loss_weights)))
    missing, unexpected = base.load_state_dict(
        model.state_dict(), strict=False)
    assert not missing
    assert unexpected and all(k.startswith('mapper.') for k in unexpected)
    model.eval()
    base.eval()
    inputs, samples = masked_batch()
    ours = model.loss(inputs, samples)
    ref = base.loss(inputs, samples)
    assert set(ref) == {k for k in ours if not k.startswith('xtc.')}
    for k, v in ref.items():
        assert ours[k].item() == pytest.approx(v.item(), rel=1e-6), k


def test_pair_selection_and_weights():
    model = MODELS.build(tiny_xtc_cfg(xtc_weight=2.0))
    mask = torch.tensor(MASKS, dtype=torch.bool)
    valid = mask.clone()
    valid[4, 1] = False
    pairs, weight = model.select_pairs(mask, valid)
    rows = [tuple(r) for r in pairs.tolist()]
    assert rows[:5] == [(0, s, 0) for s in range(1, 6)]
    assert [r for r in rows if r[0] == 1] == [(1, s, t) for s in (0, 3, 4)
                                              for t in (1, 2, 5)]
    assert len([r for r in rows if r[0] == 2]) == 30
    assert [r for r in rows if r[0] == 4] == [(4, s, 3) for s in (0, 2, 4, 5)]
    counts = {0: 5, 1: 9, 2: 30, 4: 4}
    for (b, _, _), w in zip(rows, weight.tolist()):
        assert w == pytest.approx(2.0 * 2.0 / counts[b] / 5)
    # MTPSL's sum over the pairs
    model.pair_reduction = 'sum'
    _, weight = model.select_pairs(mask, valid)
    assert torch.allclose(weight, torch.full_like(weight, 2.0 / 5))
    # at most 2 sampled pairs per image, each standing for |P_b| / 2
    model.pair_reduction = 'mean'
    model.max_pairs = 2
    torch.manual_seed(0)
    pairs, weight = model.select_pairs(mask, valid)
    images = pairs[:, 0].tolist()
    assert images == [0, 0, 1, 1, 2, 2, 4, 4]
    assert set(map(tuple, pairs.tolist())) <= set(rows)
    assert torch.allclose(weight, torch.full_like(weight, 2.0 * 2 / 2 / 5))


def test_pair_code_is_row_major_over_ordered_pairs():
    src = torch.tensor([s for s, _ in ORDERED_PAIRS])
    tgt = torch.tensor([t for _, t in ORDERED_PAIRS])
    assert pair_code(src, tgt, T).tolist() == list(range(T * (T - 1)))
    with pytest.raises(ValueError):
        pair_code(torch.tensor([1]), torch.tensor([1]), T)


def test_gumbel_encoding_is_one_hot_with_a_gradient():
    from diffmtl.structures import get_task_spec
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 4, 6, requires_grad=True)
    enc = encode_prediction(get_task_spec('semseg'), logits, 'gumbel')
    assert torch.equal(enc.sum(dim=1), torch.ones(2, 4, 6))
    assert set(enc.unique().tolist()) == {0.0, 1.0}
    (enc * torch.randn_like(enc)).sum().backward()
    assert logits.grad.abs().sum() > 0


def _grads(loss, named):
    grads = torch.autograd.grad(
        loss, [p for _, p in named], retain_graph=True, allow_unused=True)
    return {
        n: (0.0 if g is None else g.abs().sum().item())
        for (n, _), g in zip(named, grads)
    }


def _total(grads, prefix):
    picked = [v for k, v in grads.items() if k.startswith(prefix)]
    assert picked, prefix
    return sum(picked)


def test_gradients_reach_only_what_xtc_says():
    torch.manual_seed(0)
    model = MODELS.build(tiny_xtc_cfg())  # Gumbel, train mode
    model.train()
    masks = [(1, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0)]  # t = semseg only
    inputs, samples = batch(masks)
    feats = model.extract_feat(inputs)
    logits = model.task_logits(feats)
    mask = model.labelled_mask(samples, inputs.device)
    gts = model.labelled_gt(samples, mask, SIZE, inputs.device)
    terms = model.xtc_pair_terms(feats, logits, mask, gts, SIZE)
    assert [tuple(r) for r in terms['pairs'].tolist()
            ] == [(b, s, 0) for b in (0, 1) for s in range(1, T)]
    named = list(model.named_parameters())
    sources = TASKS[1:]

    con = _grads(terms['con'].sum(), named)
    reg_pred = _grads(terms['reg_pred'].sum(), named)
    reg_gt = _grads(terms['reg_gt'].sum(), named)
    for g in (con, reg_pred):
        # the MTL net through P_s: shared encoder and the decoders of s
        assert _total(g, 'backbone.') > 0
        assert _total(g, 'neck.') > 0
        for s in sources:
            assert _total(g, f'decoders.{s}.') > 0, s
        # never the labelled task's decoder (its prediction is not mapped)
        assert _total(g, 'decoders.semseg.') == 0
        for s in sources:
            assert _total(g, f'mapper.stems.{s}.') > 0
        assert _total(g, 'mapper.stages.') > 0
    # the consistency reaches the GT side's stem, the P_s regulariser not
    assert _total(con, 'mapper.stems.semseg.') > 0
    assert _total(reg_pred, 'mapper.stems.semseg.') == 0
    # GT side vs detached F: mapper only (t's stem and the trunk)
    for prefix in ('backbone.', 'neck.', 'decoders.'):
        assert _total(reg_gt, prefix) == 0, prefix
    assert _total(reg_gt, 'mapper.stems.semseg.') > 0
    for s in sources:
        assert _total(reg_gt, f'mapper.stems.{s}.') == 0
    # FiLM: only the rows of the pairs in the batch
    used = set(
        pair_code(terms['pairs'][:, 1], terms['pairs'][:, 2], T).tolist())
    assert used == {s * (T - 1) + 0 for s in range(1, T)}
    film = model.mapper.stages[0][0].film1
    loss = (terms['con'] + terms['reg_pred'] + terms['reg_gt']).sum()
    g_gamma, g_beta = torch.autograd.grad(loss, [film.gamma, film.beta])
    for k in range(T * (T - 1)):
        row = g_gamma[k].abs().sum() + g_beta[k].abs().sum()
        assert (row > 0) == (k in used), k


class _CallCounter:

    def __init__(self, module):
        self.calls = 0
        self.handles = [
            m.register_forward_hook(self._hook) for m in module.modules()
        ]

    def _hook(self, *args):
        self.calls += 1

    def remove(self):
        for h in self.handles:
            h.remove()


def test_mappers_absent_from_inference():
    torch.manual_seed(0)
    model = MODELS.build(tiny_xtc_cfg())
    base = MODELS.build(
        tiny_baseline_cfg(tasks=TASKS, loss_weights=dict(model.loss_weights)))
    base.load_state_dict(model.state_dict(), strict=False)
    model.eval()
    base.eval()
    inputs, samples = batch([(1, 0, 0, 0, 0, 0), (0, 1, 1, 0, 0, 1)])
    counter = _CallCounter(model.mapper)
    try:
        with torch.no_grad():
            ours = model._forward(inputs)
            ref = base._forward(inputs)
            preds = model.predict(inputs, batch([(1, ) * T, (1, ) * T])[1])
            ref_preds = base.predict(inputs, batch([(1, ) * T, (1, ) * T])[1])
            macs, _ = count_macs(model, inputs[:1], forward=model._forward)
        assert counter.calls == 0
        model.train()
        model.loss(inputs, samples)
        assert counter.calls > 0  # the hooks do see the mapper in training
    finally:
        counter.remove()
    assert set(ours) == set(TASKS)
    for t in TASKS:
        assert torch.equal(ours[t], ref[t]), t
        field = model.task_specs[t].pred_field
        for p, r in zip(preds, ref_preds):
            assert torch.equal(p.get(field).data, r.get(field).data), t
    base_macs, _ = count_macs(base, inputs[:1], forward=base._forward)
    assert macs == base_macs > 0
    assert count_parameters(model) == count_parameters(base) + \
        count_parameters(model.mapper)


@MODELS.register_module(name='XTCTestConvMapper', force=True)
class XTCTestConvMapper(nn.Module):
    """A stand-in mapper: 1x1 stems, pooling to stride 8, a FiLM."""

    def __init__(self, tasks, in_channels, num_pairs, out_channels, hidden=4):
        super().__init__()
        self.received = dict(
            tasks=tuple(tasks),
            in_channels=in_channels,
            num_pairs=num_pairs,
            out_channels=out_channels)
        self.stems = nn.ModuleDict(
            {t: nn.Conv2d(in_channels[t], hidden, 1)
             for t in tasks})
        self.film = FiLM(hidden, num_pairs)
        self.proj = nn.Conv2d(hidden, out_channels, 1)

    def forward(self, inputs, pair_index):
        return {
            t:
            self.proj(
                self.film(F.avg_pool2d(self.stems[t](x), 8), pair_index[t]))
            for t, x in inputs.items()
        }


def test_mapper_is_swappable_by_config():
    torch.manual_seed(0)
    model = MODELS.build(
        tiny_xtc_cfg(mapper=dict(type='XTCTestConvMapper', hidden=3)))
    assert isinstance(model.mapper, XTCTestConvMapper)
    assert model.mapper.received == dict(
        tasks=TASKS,
        in_channels=dict(
            semseg=5, human_parts=3, sal=2, normals=3, edge=1, depth=1),
        num_pairs=30,
        out_channels=16)
    inputs, samples = batch([(1, 0, 0, 0, 0, 0), (0, 1, 1, 0, 0, 1)])
    losses = model.loss(inputs, samples)
    assert losses['xtc.num_pairs'].item() == 5 + 9
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.mapper.stems['semseg'].weight.grad.abs().sum() > 0
    assert isinstance(MODELS.build(tiny_xtc_cfg()).mapper, FiLMResNetMapper)


def test_no_pair_gives_zero_terms_and_bad_args_are_refused():
    model = MODELS.build(tiny_xtc_cfg())
    inputs, samples = batch([(0, ) * T, (0, ) * T])
    losses = model.loss(inputs, samples)
    assert losses['xtc.loss_con'].item() == 0
    assert losses['xtc.loss_reg'].item() == 0
    assert losses['xtc.num_pairs'].item() == 0
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    with pytest.raises(ValueError, match='two tasks'):
        MODELS.build(
            tiny_baseline_cfg(
                tasks=('semseg', ), type='XTCMultiTaskBaseline', **XTC_KEYS))
    with pytest.raises(ValueError, match='pair_reduction'):
        MODELS.build(tiny_xtc_cfg(pair_reduction='max'))
    with pytest.raises(ValueError, match='seg_encoding'):
        MODELS.build(tiny_xtc_cfg(seg_encoding='argmax'))
    assert XTCMultiTaskBaseline.__mro__[1].__name__ == 'MultiTaskBaseline'


def test_mapper_runs_empty_groups_and_encode_pairs_adds_them():
    """An empty group still runs its stem (its norms take part in the
    statistics); ``encode_pairs`` adds empty groups only where asked."""
    model = MODELS.build(tiny_xtc_cfg())
    mapper = model.mapper
    mapper.train()
    x = torch.rand(3, 5, *SIZE)
    before = {
        t: int(mapper.stems[t][1].num_batches_tracked)
        for t in ('semseg', 'sal')
    }
    out = mapper({
        'semseg': x,
        'sal': torch.zeros(0, 2, *SIZE)
    }, {
        'semseg': torch.tensor([0, 1, 2]),
        'sal': torch.zeros(0, dtype=torch.long)
    })
    assert out['semseg'].shape[0] == 3 and out['sal'].shape[0] == 0
    assert out['sal'].shape[1:] == out['semseg'].shape[1:]
    for t in ('semseg', 'sal'):
        assert int(mapper.stems[t][1].num_batches_tracked) == before[t] + 1
    # a call of empty groups runs the trunk on no rows; no groups: {}
    empty = mapper({'sal': torch.zeros(0, 2, *SIZE)},
                   {'sal': torch.zeros(0, dtype=torch.long)})
    assert empty['sal'].shape == (0, ) + tuple(out['semseg'].shape[1:])
    assert mapper({}, {}) == {}

    inputs, samples = batch([(1, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0)])
    logits = model.task_logits(model.extract_feat(inputs))
    mask = model.labelled_mask(samples, inputs.device)
    gts = model.labelled_gt(samples, mask, SIZE, inputs.device)
    pairs, _ = model.select_pairs(mask, torch.ones_like(mask))
    plain = model.encode_pairs(logits, gts, pairs, SIZE)
    assert set(plain[0]) == set(TASKS[1:]) and set(plain[2]) == {'semseg'}
    groups = [[True] * T, [True, False, True, False, False, False]]
    pred_in, pred_rows, gt_in, gt_rows = model.encode_pairs(
        logits, gts, pairs, SIZE, groups)
    assert list(pred_in) == list(TASKS)
    assert pred_in['semseg'].shape == (0, 5) + SIZE
    assert list(gt_in) == ['semseg', 'sal']
    assert gt_in['sal'].shape == (0, 2) + SIZE
    assert gt_rows['sal'].numel() == 0
    # outside a multi-process run the model asks for no extra groups
    assert model.mapper_groups(pairs) is None
