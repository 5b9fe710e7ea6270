# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/jtr: the task encodings on hand-made maps, the auto-encoder g,
and the batched JTR loss against a per-image reference written plainly
(JTR's loop over images with a deep copy of g), including where its
gradients go."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F

from diffmtl.models.utils.complexity import count_parameters
from diffmtl.registry import MODELS
from diffmtl.structures import get_task_spec, list_task_kinds
# A missing project must fail these tests, not skip them.
from projects.jtr.jtr import (ENCODINGS, JTRLoss, SegNetAutoEncoder,
                              build_encoding, encoding_channels, frozen_latent)

torch.set_num_threads(1)

TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
NUM_CLASSES = dict(semseg=5, human_parts=3)
OUT = dict(semseg=5, human_parts=3, sal=2, normals=3, edge=1, depth=1)
MU, SIGMA = 2.3618, 1.5876  # JTR's NYUv2 constants
STATS = dict(depth=dict(mean=MU, std=SIGMA))
WIDTHS = (4, 6, 8, 8, 8)
SIZE = (32, 48)


def phi(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def enc(task, **options):
    return build_encoding(get_task_spec(task), OUT[task], options or None)


# ---------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------
def test_every_builtin_kind_has_an_encoding():
    builtin = {'segmentation', 'saliency', 'boundary', 'normals', 'depth'}
    assert builtin <= set(list_task_kinds())
    assert builtin <= set(ENCODINGS)


def test_unknown_kind_is_refused_naming_it():

    class Spec:
        name = 'keypoints'
        kind = 'heatmap'

    with pytest.raises(KeyError, match="'heatmap'.*'keypoints'"):
        build_encoding(Spec(), 4)


def test_segmentation_encoding_on_a_hand_made_map():
    e = enc('semseg')
    gt = torch.tensor([[[[0, 4, 255], [2, 255, 1]]]])
    y = e.encode_label(gt)
    assert y.shape == (1, 5, 2, 3)
    want = torch.zeros(1, 5, 2, 3)
    want[0, 0, 0, 0] = want[0, 4, 0, 1] = want[0, 2, 1, 0] = 1
    want[0, 1, 1, 2] = 1
    assert torch.equal(y, want)  # 255 -> the zero vector
    assert torch.equal(e.blank(), torch.zeros(5))
    logits = torch.randn(1, 5, 2, 3, requires_grad=True)
    mask = torch.tensor([[[[1., 0., 1.], [1., 1., 0.]]]])
    soft = e.encode_prediction(logits, mask, stochastic=False)
    assert torch.allclose(soft, logits.softmax(1) * mask)
    hard = e.encode_prediction(logits, mask, stochastic=True)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hard.detach().sum(1, keepdim=True), mask)
    hard.sum().backward()  # straight-through: differentiable
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    assert e.channels == 5 and e.draws_noise


def test_gumbel_samples_follow_the_softmax():
    e = enc('semseg')
    logits = torch.tensor([2.0, 0.0, -1.0, 0.5, 0.0]).view(1, 5, 1, 1)
    torch.manual_seed(0)
    draws = e.prediction_value(logits.expand(20000, 5, 1, 1), True)
    freq = draws.mean(0).flatten()
    assert torch.allclose(freq, logits.softmax(1).flatten(), atol=0.015)


@pytest.mark.parametrize('task', ['sal', 'edge'])
def test_binary_encodings_on_a_hand_made_map(task):
    e = enc(task)
    assert e.channels == 1 and not e.draws_noise
    gt = torch.tensor([[[[0, 1, 255], [1, 255, 0]]]])
    assert torch.equal(e.encode_label(gt),
                       torch.tensor([[[[0., 1., 0.], [1., 0., 0.]]]]))
    assert torch.equal(e.blank(), torch.zeros(1))
    logits = torch.randn(1, OUT[task], 2, 3)
    p = logits.softmax(1)[:, 1:] if task == 'sal' else logits.sigmoid()
    mask = torch.tensor([[[[1., 0., 1.], [1., 1., 0.]]]])
    for stochastic in (False, True):
        got = e.encode_prediction(logits, mask, stochastic)
        assert torch.allclose(got, p * mask, atol=1e-6)


@pytest.mark.parametrize('task', ['sal', 'edge'])
def test_binary_gumbel_mode(task):
    e = enc(task, mode='gumbel')
    assert e.draws_noise
    logits = torch.zeros(20000, OUT[task], 1, 1)
    logits[:, -1] = 1.0  # sal: l1 - l0 = 1; edge: l = 1
    logits.requires_grad_(True)
    torch.manual_seed(0)
    hard = e.prediction_value(logits, stochastic=True)
    assert set(hard.detach().unique().tolist()) == {0.0, 1.0}
    assert abs(hard.detach().mean().item() -
               torch.sigmoid(torch.tensor(1.0)).item()) < 0.015
    hard.sum().backward()  # the soft sample's gradient
    assert logits.grad.abs().sum() > 0
    # the v2 slot stays the probability
    soft = e.prediction_value(logits.detach()[:2], stochastic=False)
    assert torch.allclose(soft, torch.full_like(soft, 0.7310586), atol=1e-6)
    with pytest.raises(ValueError, match="'sal'.*mode|'edge'.*mode"):
        enc(task, mode='bernoulli')


def test_normals_encoding_on_a_hand_made_map():
    e = enc('normals')
    gt = torch.zeros(1, 3, 1, 2)
    gt[0, :, 0, 0] = torch.tensor([0.6, 0.0, -0.8])  # unit; pixel 1 invalid
    y = e.encode_label(gt)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([0.8, 0.5, 0.1]))
    assert torch.equal(y[0, :, 0, 1], torch.full((3, ), 0.5))
    assert torch.equal(e.blank(), torch.full((3, ), 0.5))
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, :, 0, 0] = torch.tensor([0.0, 3.0, 4.0])  # not unit
    logits[0, :, 0, 1] = torch.tensor([1.0, 1.0, 1.0])
    mask = torch.tensor([[[[1.0, 0.0]]]])
    got = e.encode_prediction(logits, mask, stochastic=False)
    assert torch.allclose(got[0, :, 0, 0], torch.tensor([0.5, 0.8, 0.9]))
    assert torch.equal(got[0, :, 0, 1], torch.full((3, ), 0.5))


def test_depth_encoding_on_a_hand_made_map():
    e = enc('depth', **STATS['depth'])
    gt = torch.tensor([[[[2.3618, 0.0, 3.9494]]]])
    y = e.encode_label(gt)
    want = torch.tensor([
        0.5,
        phi(torch.tensor(-MU / SIGMA)).item(),
        phi(torch.tensor(1.0)).item()
    ])
    assert torch.allclose(y.flatten(), want, atol=1e-5)
    assert abs(e.blank().item() - 0.0684) < 5e-4  # Phi(-mu / sigma)
    logits = torch.tensor([[[[2.3618, 7.0, -1.0]]]])
    mask = torch.tensor([[[[1.0, 0.0, 1.0]]]])
    got = e.encode_prediction(logits, mask, stochastic=True).flatten()
    assert torch.allclose(got[:2], want[:2], atol=1e-5)
    assert torch.allclose(got[2], phi(torch.tensor((-1.0 - MU) / SIGMA)))


def test_depth_encoding_needs_its_statistics():
    with pytest.raises(ValueError, match=r"encodings\['depth'\].*mean"):
        enc('depth')
    with pytest.raises(ValueError, match=r"encodings\['depth'\].*std > 0"):
        enc('depth', mean=1.0, std=0.0)
    with pytest.raises(ValueError, match=r"encodings\['depth'\].*does not"):
        enc('depth', mean=1.0, std=1.0, scale=2.0)


@pytest.mark.parametrize('task', TASKS)
def test_masked_prediction_equals_invalid_label(task):
    """Y and Y_hat agree where a labelled task is invalid."""
    e = enc(task, **STATS.get(task, {}))
    spec = get_task_spec(task)
    gt = torch.full((1, spec.gt_channels, 2, 2), float(spec.pad_value))
    gt = gt.long() if spec.discrete else gt
    logits = torch.randn(1, OUT[task], 2, 2) * 3
    zero = torch.zeros(1, 1, 2, 2)
    y = e.encode_label(gt)
    assert not e.valid(gt).any()
    for stochastic in (False, True):
        yhat = e.encode_prediction(logits, zero, stochastic)
        assert torch.allclose(yhat, y)
    assert torch.allclose(y[0, :, 0, 0], e.blank())


def test_encoded_channels_per_dataset():
    pascal = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
    assert sum(
        encoding_channels(pascal, dict(semseg=21,
                                       human_parts=7)).values()) == 33
    assert sum(
        encoding_channels(('semseg', 'depth', 'normals'),
                          dict(semseg=13)).values()) == 17
    assert sum(
        encoding_channels(('semseg', 'depth'), dict(semseg=7)).values()) == 8
    syn = encoding_channels(TASKS, dict(semseg=6, human_parts=7))
    assert syn == dict(semseg=6,
                       human_parts=7,
                       sal=1,
                       normals=3,
                       edge=1,
                       depth=1)


# ---------------------------------------------------------------------------
# g
# ---------------------------------------------------------------------------
def test_autoencoder_shapes_and_odd_sizes():
    g = MODELS.build(
        dict(type='SegNetAutoEncoder', in_channels=7, widths=WIDTHS))
    x = torch.randn(2, 7, 36, 52)  # not multiples of 32
    z, r = g(x)
    assert z.shape == (2, 8, 1, 1) and r.shape == x.shape
    assert torch.equal(g(x, latent_only=True), z)
    with pytest.raises(ValueError, match='smaller than the 32x'):
        g(torch.randn(1, 7, 16, 64))
    with pytest.raises(ValueError, match=r'\(N, 7, H, W\)'):
        g(torch.randn(1, 6, 32, 32))


def test_autoencoder_config_errors():
    with pytest.raises(ValueError, match='same length'):
        SegNetAutoEncoder(in_channels=3, widths=(4, 8), num_convs=(2, ))
    with pytest.raises(ValueError, match='in_channels'):
        SegNetAutoEncoder(in_channels=0)
    with pytest.raises(TypeError):
        SegNetAutoEncoder(19)  # keyword-only


@pytest.mark.parametrize('mode', ['nearest', 'bilinear'])
def test_interpolating_decoder_reconstructs_from_the_latent_alone(mode):
    torch.manual_seed(0)
    g = SegNetAutoEncoder(in_channels=5, widths=WIDTHS, unpool=mode)
    jtr = SegNetAutoEncoder(in_channels=5, widths=WIDTHS)
    # same parameters, so one state dict serves both
    jtr.load_state_dict(g.state_dict())
    x = torch.randn(2, 5, 36, 52)
    z, indices, sizes = g.encode(x)
    _, other, _ = g.encode(x.flip(0))
    r = g.decode(z, indices, sizes)
    assert r.shape == x.shape
    assert torch.equal(r, g.decode(z, other, sizes))
    assert torch.equal(r, g(x)[1])
    # JTR's decoder, same weights and latent, depends on the indices
    assert not torch.allclose(jtr.decode(z, indices, sizes),
                              jtr.decode(z, other, sizes))


def test_autoencoder_unknown_unpool_mode():
    with pytest.raises(ValueError, match="unpool must be one of.*'bicubic'"):
        SegNetAutoEncoder(in_channels=3, widths=WIDTHS, unpool='bicubic')


def expected_parameters(c, widths, num_convs):
    """Counted from the layout: 3x3 convs without bias + affine norm per
    conv, mirrored decoder, head conv3x3 (bias) + conv1x1 (bias)."""
    total, prev = 0, c
    for w, n in zip(widths, num_convs):  # encoder
        for i in range(n):
            cin = prev if i == 0 else w
            total += 9 * cin * w + 2 * w
        prev = w
    for s, (w, n) in enumerate(zip(widths, num_convs)):  # decoder
        out = widths[s - 1] if s else widths[0]
        for i in range(n):
            cin = w if i == 0 else out
            total += 9 * cin * out + 2 * out
    w0 = widths[0]
    return total + 9 * w0 * w0 + w0 + w0 * c + c


@pytest.mark.parametrize(
    'c,widths,millions',
    [
        (33, (64, 128, 256, 512, 512), 24.992481),  # PASCAL, JTR's widths
        (17, (64, 128, 256, 512, 512), 24.982225),  # NYUD
        (19, (16, 32, 64, 128, 128), 1.566467),  # synthetic
    ])
def test_autoencoder_parameter_counts(c, widths, millions):
    g = SegNetAutoEncoder(in_channels=c, widths=widths)
    assert count_parameters(g) == expected_parameters(c, widths,
                                                      (2, 2, 3, 3, 3))
    assert count_parameters(g) == round(millions * 1e6)


def test_batched_instance_norm_equals_per_image_batchnorm():
    torch.manual_seed(0)
    g_in = SegNetAutoEncoder(in_channels=5, widths=WIDTHS)
    g_bn = SegNetAutoEncoder(in_channels=5,
                             widths=WIDTHS,
                             norm_cfg=dict(type='BN'))
    for m in g_in.modules():  # non-trivial affine parameters
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    missing, unexpected = g_bn.load_state_dict(g_in.state_dict(), strict=False)
    assert not unexpected and all('running' in k or 'num_batches' in k
                                  for k in missing)
    x = torch.randn(3, 5, *SIZE)
    z, r = g_in(x)
    for b in range(3):
        zb, rb = g_bn(x[b:b + 1])
        assert torch.allclose(z[b:b + 1], zb, atol=1e-5)
        assert torch.allclose(r[b:b + 1], rb, atol=1e-4)


def test_frozen_latent_gives_no_gradient_to_g_and_keeps_its_buffers():
    g = SegNetAutoEncoder(in_channels=4,
                          widths=WIDTHS,
                          norm_cfg=dict(type='BN'))
    x = torch.randn(2, 4, *SIZE, requires_grad=True)
    before = {k: v.clone() for k, v in g.named_buffers()}
    z = frozen_latent(g, x)
    z.sum().backward()
    assert all(p.grad is None for p in g.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0
    for k, v in g.named_buffers():
        assert torch.equal(v, before[k]), k
    # the same call on g itself: same latent, updated running statistics
    assert torch.allclose(z, g(x, latent_only=True), atol=1e-6)
    assert not torch.equal(g.encoder[0][0][1].running_mean,
                           before['encoder.0.0.1.running_mean'])


# ---------------------------------------------------------------------------
# the loss against JTR's per-image formulation
# ---------------------------------------------------------------------------
def fake_gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, dim=-1):
    """Deterministic stand-in: the hard arg-max sample with the
    straight-through gradient of the softmax (same code path)."""
    soft = (logits / tau).softmax(dim)
    if not hard:
        return soft
    idx = soft.argmax(dim, keepdim=True)
    one = torch.zeros_like(soft).scatter_(dim, idx, 1.0)
    return one - soft.detach() + soft


# image 0: semseg + depth; 1: normals; 2: sal + edge + human_parts whose
# maps have no valid pixel (so it counts as unlabelled); 3: only that
# human_parts (skipped); 4: semseg whose v2 crop lost every valid pixel
LABELS = [
    ('semseg', 'depth'),
    ('normals', ),
    ('sal', 'edge', 'human_parts'),
    ('human_parts', ),
    ('semseg', ),
]
B = len(LABELS)


def make_gt(seed):
    """Every task's GT for every image (real content also where the task is
    unlabelled: the loss must not read it), with invalid pixels."""
    g = torch.Generator().manual_seed(seed)
    h, w = SIZE
    hole = torch.rand(B, 1, h, w, generator=g) < 0.15
    gts = dict(semseg=torch.randint(0, 5, (B, 1, h, w), generator=g),
               human_parts=torch.randint(0, 3, (B, 1, h, w), generator=g),
               sal=torch.randint(0, 2, (B, 1, h, w), generator=g),
               edge=(torch.rand(B, 1, h, w, generator=g) < 0.2).long(),
               normals=F.normalize(torch.randn(B, 3, h, w, generator=g),
                                   dim=1),
               depth=torch.rand(B, 1, h, w, generator=g) * 5 + 0.3)
    for t, v in gts.items():
        spec = get_task_spec(t)
        hole_t = torch.roll(hole, shifts=TASKS.index(t) * 3, dims=-1)
        gts[t] = torch.where(hole_t, torch.full_like(v, spec.pad_value), v)
    gts['human_parts'][2:4] = 255  # labelled without a valid pixel
    return gts


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = [{
        t: (torch.randn(B, n, *SIZE, generator=g) * 2).requires_grad_(True)
        for t, n in OUT.items()
    } for _ in range(2)]
    gts = [make_gt(seed + 1), make_gt(seed + 2)]
    gts[1]['semseg'][4] = 255  # v2 of image 4: semseg without valid pixel
    labelled = torch.tensor([[t in row for t in TASKS] for row in LABELS])
    return logits, gts, labelled


def ref_valid(task, gt):
    if task == 'normals':
        return gt.abs().sum(1, keepdim=True) > 0
    if task == 'depth':
        return gt != 0
    return gt != 255


def ref_pred_target(task, logit, mask):
    """JTR's targets from a prediction (label space)."""
    if task in ('semseg', 'human_parts'):
        return fake_gumbel_softmax(logit, hard=True, dim=1) * mask
    if task == 'sal':
        return logit.softmax(1)[:, 1:] * mask
    if task == 'edge':
        return logit.sigmoid() * mask
    if task == 'normals':
        return logit / logit.norm(dim=1, keepdim=True)
    return logit  # depth: raw


def ref_enc_pred(task, logit, mask, hard):
    if task in ('semseg', 'human_parts'):
        p = fake_gumbel_softmax(logit, hard=True, dim=1) if hard else \
            logit.softmax(1)
        return p * mask
    if task == 'sal':
        return logit.softmax(1)[:, 1:] * mask
    if task == 'edge':
        return logit.sigmoid() * mask
    if task == 'normals':
        return (logit / logit.norm(dim=1, keepdim=True) * mask + 1) / 2
    return phi((logit * mask - MU) / SIGMA)


def ref_label_value(task, gt):
    valid = ref_valid(task, gt)
    if task in ('semseg', 'human_parts'):
        n = OUT[task]
        lab = torch.where(valid, gt, torch.zeros_like(gt))[:, 0]
        return F.one_hot(lab, n).permute(0, 3, 1, 2).float() * valid
    if task in ('sal', 'edge'):
        return (gt == 1).float() * valid
    return gt * valid


def ref_enc_gt(task, gt):
    v = ref_label_value(task, gt)
    if task == 'normals':
        return (v + 1) / 2
    if task == 'depth':
        return phi((v - MU) / SIGMA)
    return v


def ref_recon(task, r, target, mask, normaliser):
    target = target.detach()
    if normaliser == 'mask':
        n = max(mask.sum().item(), 1)
    else:
        n = max(int(target.nonzero().shape[0]), 1)
    if task == 'normals':
        return 1 - (r / r.norm(dim=1, keepdim=True) * target * mask).sum() / n
    if task == 'depth':
        p = (torch.sigmoid(r) - 0.5) * (1 - 1e-5) + 0.5
        return ((p - phi((target - MU) / SIGMA)).abs() * mask).sum() / n
    return (F.binary_cross_entropy_with_logits(r, target, reduction='none') *
            mask).sum() / n


def reference(g_bn, logits, gts, labelled, faithful, normaliser):
    """JTR's loop over images: batch-1 BN g, a deep copy for view 1."""
    out = dict(dist=[], dist_g=[], recon=[], weight=[], weight_v2=[])
    sizes = [OUT_CH[t] for t in TASKS]
    for b in range(B):
        one = [{t: v[b:b + 1] for t, v in lg.items()} for lg in logits]
        gt = [{t: v[b:b + 1] for t, v in gv.items()} for gv in gts]
        labs, masks = [], []
        for v in range(2):
            lab = [
                t for ti, t in enumerate(TASKS)
                if labelled[b, ti] and ref_valid(t, gt[v][t]).any()
            ]
            m = torch.ones(1, 1, *SIZE)
            for t in lab:
                m = m * ref_valid(t, gt[v][t]).float()
            labs.append(lab)
            masks.append(m)
        stacks = []
        for v in range(2):
            y, yhat = [], []
            for t in TASKS:
                lg = one[v][t]
                if t in labs[v] or v == 1:
                    lg = lg.detach()
                yhat.append(ref_enc_pred(t, lg, masks[v], hard=v == 0))
                y.append(
                    ref_enc_gt(t, gt[v][t]) if t in
                    labs[v] else ref_enc_pred(t, lg, masks[v], hard=True))
            stacks.append((torch.cat(y, 1), torch.cat(yhat, 1)))
        copied = copy.deepcopy(g_bn)
        z1 = copied(stacks[0][0], latent_only=True)
        z1_hat = copied(stacks[0][1], latent_only=True)
        z2, r2 = g_bn(stacks[1][0].detach())
        z2_hat, r2_hat = g_bn(stacks[1][1].detach())
        out['dist'].append(
            1 - F.cosine_similarity(z1, z1_hat, dim=1, eps=1e-12).mean())
        out['dist_g'].append(
            1 - F.cosine_similarity(z2, z2_hat, dim=1, eps=1e-12).mean())
        rec = 0
        parts = torch.split(r2, sizes, 1)
        parts_hat = torch.split(r2_hat, sizes, 1)
        m2 = masks[1]
        for ti, t in enumerate(TASKS):
            lg = one[1][t].detach()
            target = ref_label_value(t, gt[1][t]) if t in labs[1] else \
                ref_pred_target(t, lg, m2)
            target_hat = ref_enc_pred(t, lg, m2, hard=True) if faithful \
                else ref_pred_target(t, lg, m2)
            rec = rec + ref_recon(t, parts[ti], target, m2, normaliser)
            rec = rec + ref_recon(t, parts_hat[ti], target_hat, m2, normaliser)
        out['recon'].append(rec)
        out['weight'].append(float(bool(labs[0])))
        out['weight_v2'].append(float(bool(labs[1])))
    return out


OUT_CH = dict(OUT, sal=1)


def build_pair(seed=0):
    torch.manual_seed(seed)
    c = sum(OUT_CH.values())
    g_in = SegNetAutoEncoder(in_channels=c, widths=WIDTHS)
    for m in g_in.modules():
        if isinstance(m, torch.nn.InstanceNorm2d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    g_bn = SegNetAutoEncoder(in_channels=c,
                             widths=WIDTHS,
                             norm_cfg=dict(type='BN'))
    g_bn.load_state_dict(g_in.state_dict(), strict=False)
    return g_in, g_bn


def build_loss(**kwargs):
    cfg = dict(type='JTRLoss', tasks=TASKS, out_channels=OUT, encodings=STATS)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('faithful,normaliser', [(False, 'mask'),
                                                 (True, 'nonzero')])
def test_loss_matches_the_per_image_reference(monkeypatch, faithful,
                                              normaliser):
    monkeypatch.setattr(torch.nn.functional, 'gumbel_softmax',
                        fake_gumbel_softmax)
    loss_fn = build_loss(faithful_recon_targets=faithful,
                         normaliser=normaliser)
    assert loss_fn.in_channels == sum(OUT_CH.values()) == 14
    g_in, g_bn = build_pair()
    logits, gts, labelled = make_inputs()
    terms = loss_fn.terms(g_in, logits[0], logits[1], gts[0], gts[1], labelled)
    ref = reference(g_bn, logits, gts, labelled, faithful, normaliser)
    for key in ('dist', 'dist_g', 'recon'):
        want = torch.stack([torch.as_tensor(v) for v in ref[key]])
        assert torch.allclose(terms[key], want, rtol=1e-4, atol=1e-5), key
    assert terms['weight_v1'].tolist() == [1, 1, 1, 0, 1] == ref['weight']
    assert terms['weight_v2'].tolist() == [1, 1, 1, 0, 0] == ref['weight_v2']
    # human_parts of images 2 and 3 and semseg of image 4 in v2 are
    # labelled without a valid pixel: they count as unlabelled
    assert not terms['labels_v1'][2:4, 1].any()
    assert terms['labels_v1'][4, 0] and not terms['labels_v2'][4, 0]

    # the weighted losses and their gradients (MTL logits and g)
    losses = loss_fn(g_in, logits[0], logits[1], gts[0], gts[1], labelled)
    w1 = torch.tensor(ref['weight'])
    w2 = torch.tensor(ref['weight_v2'])
    ref_total = sum(4.0 * w1[b] * ref['dist'][b] + w2[b] *
                    (8.0 * ref['dist_g'][b] + 2.0 * ref['recon'][b])
                    for b in range(B)) / B
    total = sum(losses.values())
    assert torch.allclose(total, ref_total, rtol=1e-4)
    assert torch.allclose(losses['jtr.loss_dist'],
                          4.0 * (w1 * terms['dist']).sum() / B)
    grads = torch.autograd.grad(total,
                                [*logits[0].values(), *g_in.parameters()])
    ref_grads = torch.autograd.grad(ref_total,
                                    [*logits[0].values(), *g_bn.parameters()])
    for a, b_ in zip(grads, ref_grads):
        assert b_.abs().max() > 0
        assert (a - b_).abs().max() <= 2e-4 * b_.abs().max()


def grads_of(loss, logits, net):
    params = list(net.parameters())
    tensors = [*logits[0].values(), *logits[1].values(), *params]
    got = torch.autograd.grad(loss,
                              tensors,
                              allow_unused=True,
                              retain_graph=True)
    n = len(TASKS)
    return (dict(zip(TASKS, got[:n])), dict(zip(TASKS, got[n:2 * n])),
            dict(zip([k for k, _ in net.named_parameters()], got[2 * n:])))


def nonzero(t):
    return t is not None and t.abs().sum() > 0


def test_distance_trains_only_unlabelled_predictions_of_view_1():
    loss_fn = build_loss()
    g, _ = build_pair()
    logits, gts, labelled = make_inputs()
    losses = loss_fn(g, logits[0], logits[1], gts[0], gts[1], labelled)
    v1, v2, net = grads_of(losses['jtr.loss_dist'], logits, g)
    assert all(not nonzero(v) for v in net.values())  # frozen copy
    assert all(not nonzero(v) for v in v2.values())
    for b, row in enumerate(LABELS):
        for t in TASKS:
            effective = t in row and not (t == 'human_parts' and b in (2, 3))
            if b == 3:  # skipped image: weight 0
                assert not nonzero(v1[t][b]), (b, t)
            elif effective:  # labelled predictions are detached
                assert not nonzero(v1[t][b]), (b, t)
            else:
                assert nonzero(v1[t][b]), (b, t)


def test_view_2_terms_train_only_g():
    loss_fn = build_loss()
    g, _ = build_pair()
    logits, gts, labelled = make_inputs()
    losses = loss_fn(g, logits[0], logits[1], gts[0], gts[1], labelled)
    v1, v2, net = grads_of(losses['jtr.loss_dist_g'], logits, g)
    assert all(not nonzero(v) for v in [*v1.values(), *v2.values()])
    # the distance on v2 reaches g's encoder only
    assert all(nonzero(v) == k.startswith('encoder.') for k, v in net.items())
    v1, v2, net = grads_of(losses['jtr.loss_recon'], logits, g)
    assert all(not nonzero(v) for v in [*v1.values(), *v2.values()])
    assert all(nonzero(v) for v in net.values())


def test_skipped_images_do_not_matter(monkeypatch):
    monkeypatch.setattr(torch.nn.functional, 'gumbel_softmax',
                        fake_gumbel_softmax)
    loss_fn = build_loss()
    g, _ = build_pair()
    logits, gts, labelled = make_inputs()
    base = loss_fn(g, logits[0], logits[1], gts[0], gts[1], labelled)
    other = [{t: v.detach().clone() for t, v in lg.items()} for lg in logits]
    for lg in other:
        for v in lg.values():
            v[3] = torch.randn_like(v[3]) * 5  # the skipped image
    again = loss_fn(g, other[0], other[1], gts[0], gts[1], labelled)
    for k in base:
        assert torch.allclose(base[k], again[k], atol=1e-6), k


def test_batch_of_one_matches_its_row(monkeypatch):
    """No cross-image coupling (instance norm, per-image terms)."""
    monkeypatch.setattr(torch.nn.functional, 'gumbel_softmax',
                        fake_gumbel_softmax)
    loss_fn = build_loss()
    g, _ = build_pair()
    logits, gts, labelled = make_inputs()
    full = loss_fn.terms(g, logits[0], logits[1], gts[0], gts[1], labelled)
    for b in (0, 2):
        rows = [{t: v[b:b + 1] for t, v in d.items()} for d in (*logits, *gts)]
        one = loss_fn.terms(g, *rows, labelled[b:b + 1])
        for k in ('dist', 'dist_g', 'recon'):
            assert torch.allclose(full[k][b:b + 1], one[k], atol=1e-5), k


def test_unlabelled_slots_draw_fresh_samples():
    """An unlabelled segmentation slot of Y is a new Gumbel sample (it
    differs from Y_hat's); a deterministic kind's is the same tensor."""
    loss_fn = build_loss()
    logits, gts, _ = make_inputs()
    none = torch.zeros(B, len(TASKS), dtype=torch.bool)
    mask = torch.ones(B, 1, *SIZE)
    flat = {t: torch.zeros_like(v) for t, v in logits[0].items()}
    torch.manual_seed(0)
    y, yhat = loss_fn.stacks(flat, gts[0], none, mask, stochastic=True)
    seg = slice(0, 5)
    assert (y[:, seg] != yhat[:, seg]).any()
    assert torch.equal(y[:, seg].sum(1), torch.ones(B, *SIZE))
    rest = slice(8, 14)  # sal, normals, edge, depth
    assert torch.equal(y[:, rest], yhat[:, rest])
    # v2: the Y_hat slot is the softmax, the Y slot a hard sample
    y2, yhat2 = loss_fn.stacks(flat, gts[0], none, mask, stochastic=False)
    assert torch.allclose(yhat2[:, seg], torch.full_like(yhat2[:, seg], .2))
    assert set(y2[:, seg].unique().tolist()) == {0.0, 1.0}


def test_loss_input_and_config_errors():
    with pytest.raises(ValueError, match=r"encodings names \['cars'\]"):
        build_loss(encodings=dict(STATS, cars={}))
    with pytest.raises(KeyError, match='out_channels lacks'):
        JTRLoss(tasks=TASKS, out_channels=dict(semseg=5), encodings=STATS)
    with pytest.raises(ValueError, match='normaliser'):
        build_loss(normaliser='pixels')
    with pytest.raises(ValueError, match='dist_weight'):
        build_loss(dist_weight=-1)
    loss_fn = build_loss()
    g, _ = build_pair()
    logits, gts, labelled = make_inputs()
    no_sal = {t: v for t, v in gts[0].items() if t != 'sal'}
    with pytest.raises(KeyError, match=r"\['sal'\] are labelled"):
        loss_fn(g, logits[0], logits[1], no_sal, gts[1], labelled)
    # a task labelled nowhere in the batch may lack its GT
    lab = labelled.clone()
    lab[:, TASKS.index('sal')] = False
    out = loss_fn(g, logits[0], logits[1], no_sal, {
        t: v
        for t, v in gts[1].items() if t != 'sal'
    }, lab)
    assert all(torch.isfinite(v) for v in out.values())
    small = SegNetAutoEncoder(in_channels=7, widths=WIDTHS)
    with pytest.raises(ValueError, match='in_channels=14'):
        loss_fn(small, logits[0], logits[1], gts[0], gts[1], labelled)
