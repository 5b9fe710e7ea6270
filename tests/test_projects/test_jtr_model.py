# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/jtr: the views made in the model (against per-image
``F.interpolate`` and PIL / torchvision-style references), and
``JTRMultiTaskBaseline``: inference equals the baseline's and never runs
g, one forward of the stacked views, where the gradients go through the
full model, the part settings, and the checkpoint round trip."""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint
from PIL import Image, ImageOps

from diffmtl.models.utils.complexity import count_macs, count_parameters
from diffmtl.registry import MODELS
from diffmtl.structures import get_task_spec
# A missing project must fail these tests, not skip them.
from projects.jtr.jtr import (PHOTOMETRIC_OPS, JTRMultiTaskBaseline, JTRViews,
                              ViewParams, build_encoding, crop_resize,
                              photometric_op, quantise)

sys.path.insert(
    0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                'test_models'))
from _mtl_model_utils import make_batch, tiny_baseline_cfg  # noqa: E402

torch.set_num_threads(1)

TASKS = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
T = len(TASKS)
NUM_CLASSES = dict(semseg=5, human_parts=3)
OUT = dict(semseg=5, human_parts=3, sal=2, normals=3, edge=1, depth=1)
SIZE = (32, 48)
STATS = dict(depth=dict(mean=1.5, std=0.5))  # test values, not a dataset's
#: one-label and mixed label sets of a batch of four
MASKS = [(1, 0, 0, 0, 0, 0), (0, 1, 0, 1, 0, 0), (0, 0, 0, 0, 0, 1),
         (0, 0, 1, 0, 1, 1)]


def tiny_cfg(type='JTRMultiTaskBaseline', **kwargs):
    cfg = tiny_baseline_cfg(tasks=TASKS, type=type)
    cfg['loss_weights'] = dict(cfg['loss_weights'], depth=1.0)
    if type == 'JTRMultiTaskBaseline':
        cfg.update(jtr_loss=dict(encodings=STATS),
                   jtr_net=dict(widths=(4, 4, 8, 8, 8)))
    cfg.update(kwargs)
    return cfg


def build(seed=0, **kwargs):
    torch.manual_seed(seed)
    return MODELS.build(tiny_cfg(**kwargs))


def batch(masks=MASKS, seed=0):
    return make_batch(masks,
                      tasks=TASKS,
                      size=SIZE,
                      seed=seed,
                      num_classes=NUM_CLASSES)


def encoders():
    return {
        t: build_encoding(get_task_spec(t), OUT[t], STATS.get(t))
        for t in TASKS
    }


# ---------------------------------------------------------------------------
# scale-crop
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('size', [(32, 48), (96, 128), (288, 384)])
@pytest.mark.parametrize('mode,align_corners,tol', [('nearest', True, 0),
                                                    ('bilinear', True, 2e-6),
                                                    ('bilinear', False, 1e-4)])
def test_crop_resize_equals_interpolate_of_each_crop(size, mode, align_corners,
                                                     tol):
    h, w = size
    g = torch.Generator().manual_seed(h)
    boxes = []
    for sc in (1.0, 1.2, 1.5, 1.5):
        ch, cw = int(h / sc), int(w / sc)
        y1 = int(torch.randint(0, h - ch + 1, (1, ), generator=g))
        x1 = int(torch.randint(0, w - cw + 1, (1, ), generator=g))
        boxes.append((y1, ch, x1, cw))
    box = torch.tensor(boxes)
    x = torch.randn(len(boxes), 3, h, w, generator=g)
    labels = torch.randint(0, 7, (len(boxes), 1, h, w), generator=g)
    got = crop_resize(x, box, mode, align_corners)
    got_labels = crop_resize(labels, box, 'nearest')
    for n, (y1, ch, x1, cw) in enumerate(boxes):
        kwargs = {} if mode == 'nearest' else dict(align_corners=align_corners)
        ref = F.interpolate(x[n:n + 1, :, y1:y1 + ch, x1:x1 + cw],
                            size=size,
                            mode=mode,
                            **kwargs)
        torch.testing.assert_close(got[n:n + 1], ref, rtol=0, atol=tol)
        ref = F.interpolate(labels[n:n + 1, :, y1:y1 + ch, x1:x1 + cw].float(),
                            size=size,
                            mode='nearest').long()
        assert torch.equal(got_labels[n:n + 1], ref)
    assert got_labels.dtype == torch.int64


def test_crop_resize_refuses_bilinear_labels_and_unknown_modes():
    box = torch.tensor([[0, 4, 0, 4]])
    with pytest.raises(ValueError, match='nearest for discrete'):
        crop_resize(torch.zeros(1, 1, 4, 4, dtype=torch.long), box, 'bilinear')
    with pytest.raises(ValueError, match='mode must be one of'):
        crop_resize(torch.zeros(1, 1, 4, 4), box, 'bicubic')


def test_view_draws_follow_jtr():
    views = JTRViews()
    torch.manual_seed(0)
    p = views.sample(3000, (96, 128))
    assert set(p.scale.tolist()) == {1.0, 1.2, 1.5}
    y1, ch, x1, cw = p.box.unbind(1)
    assert torch.equal(ch, (96 / p.scale).floor().long())
    assert torch.equal(cw, (128 / p.scale).floor().long())
    assert (y1 >= 0).all() and (y1 + ch <= 96).all()
    assert (x1 >= 0).all() and (x1 + cw <= 128).all()
    # uniform integer offsets: every offset of the 1.5 crop (97 - 64 = 33
    # rows of freedom) shows up
    assert set(y1[p.scale == 1.5].tolist()) == set(range(96 - 64 + 1))
    assert p.ops.shape == (3000, 2)
    assert set(p.ops.flatten().tolist()) == set(range(len(PHOTOMETRIC_OPS)))
    assert set(p.bins.flatten().tolist()) == set(range(6))
    assert set(p.signs.flatten().tolist()) == {-1.0, 1.0}
    assert JTRViews(photometric=False).sample(5, (32, 32)).ops.shape == (5, 0)


def test_op_magnitudes_are_jtrs():
    views = JTRViews()
    bins = torch.arange(6)
    plus = views.op_values('brightness', bins, torch.ones(6))
    minus = views.op_values('sharpness', bins, -torch.ones(6))
    want = torch.tensor([0, .03, .06, .09, .12, .15], dtype=torch.float64)
    torch.testing.assert_close(plus, 1 + want, atol=1e-7, rtol=0)
    torch.testing.assert_close(minus, 1 - want, atol=1e-7, rtol=0)
    assert views.op_values('posterize', bins,
                           torch.ones(6)).tolist() == [8, 8, 8, 8, 7, 7]
    torch.testing.assert_close(
        views.op_values('solarize', bins, torch.ones(6)),
        torch.tensor([255, 246.5, 238, 229.5, 221, 212.5],
                     dtype=torch.float64))


def test_views_crop_every_map_and_divide_depth_by_the_zoom():
    torch.manual_seed(0)
    views = JTRViews(scales=(1.5, ), photometric=False)
    inputs, samples = batch()
    gts = {
        t:
        torch.stack([
            s.get(get_task_spec(t).gt_field).data for s in samples
        ]).to(torch.int64 if get_task_spec(t).discrete else torch.float32)
        for t in TASKS
    }
    gts['depth'][:, :, :3] = 0  # invalid rows stay 0
    torch.manual_seed(1)
    images, maps, params = views(inputs, gts, encoders(), num_views=2)
    assert images.shape == (8, 3) + SIZE
    for row in range(8):
        b = row % 4
        y1, ch, x1, cw = params.box[row].tolist()
        assert params.scale[row] == 1.5 and (ch, cw) == (21, 32)

        def ref(x, mode, **kw):
            return F.interpolate(x[None, :, y1:y1 + ch, x1:x1 + cw].float(),
                                 size=SIZE,
                                 mode=mode,
                                 **kw)[0]

        torch.testing.assert_close(images[row],
                                   ref(inputs[b],
                                       'bilinear',
                                       align_corners=True),
                                   rtol=0,
                                   atol=2e-6)
        for t in ('semseg', 'human_parts', 'sal', 'edge'):
            assert torch.equal(maps[t][row], ref(gts[t][b], 'nearest').long())
        # normals: bilinear (JTR), values unchanged by the zoom
        torch.testing.assert_close(maps['normals'][row],
                                   ref(gts['normals'][b],
                                       'bilinear',
                                       align_corners=True),
                                   rtol=0,
                                   atol=2e-6)
        depth = ref(gts['depth'][b], 'nearest')
        assert torch.equal(maps['depth'][row], depth / 1.5)
        assert (maps['depth'][row][depth == 0] == 0).all()


def test_zoom_label_is_the_kinds_rule():
    enc = encoders()
    factor = torch.tensor([1.0, 1.2, 1.5])
    depth = torch.tensor([3.0, 0.0, 6.0]).view(3, 1, 1, 1)
    assert torch.equal(enc['depth'].zoom_label(depth, factor),
                       torch.tensor([3.0, 0.0, 4.0]).view(3, 1, 1, 1))
    for t in ('semseg', 'sal', 'edge', 'normals'):
        gt = torch.full((3, get_task_spec(t).gt_channels, 2, 2), 1.0)
        assert enc[t].zoom_label(gt, factor) is gt  # zoom exponent 0


# ---------------------------------------------------------------------------
# photometric operations
# ---------------------------------------------------------------------------
def _images(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, 3, 9, 11, generator=g) * 255
    x[1] = x[1] * 0.2 + 60  # a narrow range
    x[2, 1] = 17.0  # a flat channel
    x[3] = torch.floor(x[3])  # integer pixel values
    return x


def _blend_ref(a, b, f):
    return (f * a + (1 - f) * b).clamp(0, 255)


def _gray_ref(img):
    r, g, b = img
    return (0.2989 * r + 0.587 * g + 0.114 * b)[None]


def _sharp_ref(img, f):
    out = img.clone()
    k = torch.tensor([[1., 1., 1.], [1., 5., 1.], [1., 1., 1.]]) / 13
    h, w = img.shape[-2:]
    for c in range(3):
        for i in range(1, h - 1):
            for j in range(1, w - 1):
                out[c, i, j] = (img[c, i - 1:i + 2, j - 1:j + 2] * k).sum()
    return _blend_ref(img, out, f)


def _autocontrast_ref(img):
    out = torch.empty_like(img)
    for c in range(3):
        lo, hi = img[c].min(), img[c].max()
        out[c] = img[c] if hi == lo else (img[c] - lo) * 255 / (hi - lo)
    return out.clamp(0, 255)


#: torchvision's float-tensor functions, written per image
FLOAT_REFS = {
    'brightness': lambda img, f: _blend_ref(img, torch.zeros_like(img), f),
    'color': lambda img, f: _blend_ref(img, _gray_ref(img), f),
    'contrast': lambda img, f: _blend_ref(img,
                                          _gray_ref(img).mean(), f),
    'sharpness': _sharp_ref,
    'autocontrast': lambda img, f: _autocontrast_ref(img),
}
#: PIL's ImageOps on the 8-bit image
PIL_REFS = {
    'posterize': lambda im, v: ImageOps.posterize(im, int(v)),
    'solarize': lambda im, v: ImageOps.solarize(im, v),
    'equalize': lambda im, v: ImageOps.equalize(im),
}


@pytest.mark.parametrize('name', sorted(FLOAT_REFS))
def test_float_ops_equal_a_per_image_reference(name):
    x = _images()
    factors = torch.tensor([0.85, 1.15, 1.0, 0.94], dtype=torch.float64)
    got = photometric_op(name, x, factors)
    for n in range(4):
        want = FLOAT_REFS[name](x[n], float(factors[n]))
        torch.testing.assert_close(got[n], want, rtol=0, atol=1e-3)
    if name != 'autocontrast':
        assert torch.equal(photometric_op(name, x, torch.ones(4)), x)


@pytest.mark.parametrize('name', sorted(PIL_REFS))
def test_quantising_ops_equal_pil(name):
    x = _images(1)
    values = dict(posterize=[8, 7, 7, 8], solarize=[255, 246.5, 212.5,
                                                    229.5]).get(name, [0] * 4)
    got = photometric_op(name, x, torch.tensor(values, dtype=torch.float64))
    q = quantise(x)
    for n in range(4):
        im = Image.fromarray(q[n].permute(1, 2, 0).numpy().astype(np.uint8))
        want = np.array(PIL_REFS[name](im, values[n]))
        assert torch.equal(got[n],
                           torch.from_numpy(want).permute(2, 0, 1).float())


def test_quantise_truncates_and_tolerates_the_normalisation_round_trip():
    x = torch.tensor([199.99995, 200.7, -3.0, 300.0, 12.0])
    assert quantise(x).tolist() == [200, 200, 0, 255, 12]
    mean, std = 123.675, 58.395
    pixels = torch.arange(256, dtype=torch.float32)
    assert torch.equal(quantise((pixels - mean) / std * std + mean),
                       pixels.long())


def test_grey_level_follows_the_channel_order():
    x = _images()
    f = torch.full((4, ), 0.5)
    bgr = photometric_op('color', x.flip(1), f, rgb=False)
    torch.testing.assert_close(bgr,
                               photometric_op('color', x, f, rgb=True).flip(1))
    assert not torch.allclose(bgr, photometric_op('color', x.flip(1), f))


def test_augment_runs_every_draw_of_every_image():
    views = JTRViews()
    x = _images(2)
    torch.manual_seed(3)
    params = views.sample(4, x.shape[-2:])
    params.ops[:] = torch.tensor([[1, 8], [5, 2], [0, 6], [4, 4]])
    got = views.augment(x, params)
    for n in range(4):
        want = x[n:n + 1]
        for r in range(2):
            op = PHOTOMETRIC_OPS[int(params.ops[n, r])]
            value = views.op_values(op, params.bins[n:n + 1, r],
                                    params.signs[n:n + 1, r])
            want = photometric_op(op, want, value)
        assert torch.equal(got[n:n + 1], want), n


def test_identity_views_return_the_batch():
    views = JTRViews(scales=(1.0, ))
    x = torch.randn(2, 3, 32, 48)
    params = ViewParams(scale=torch.ones(2, dtype=torch.float64),
                        box=torch.tensor([[0, 32, 0, 48]] * 2),
                        ops=torch.zeros(2, 2, dtype=torch.long),
                        bins=torch.zeros(2, 2, dtype=torch.long),
                        signs=torch.ones(2, 2, dtype=torch.float64))
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    out = views.augment_normalised(crop_resize(x, params.box, 'bilinear'),
                                   params, mean, std, True)
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
def _hook_calls(modules):
    calls = []
    handles = [
        m.register_forward_hook(lambda mod, i, o, n=n: calls.append(n))
        for n, m in modules.items()
    ]
    return calls, handles


def test_inference_is_the_baselines_and_never_runs_g():
    model = build(seed=0).eval()
    base = build(seed=1, type='MultiTaskBaseline').eval()
    state = {
        k: v
        for k, v in model.state_dict().items() if not k.startswith('jtr_net.')
    }
    base.load_state_dict(state, strict=True)
    inputs, samples = batch()
    calls, handles = _hook_calls(
        dict(jtr_net=model.jtr_net, views=model.views,
             jtr_loss=model.jtr_loss))
    with torch.no_grad():
        ours = model._forward(inputs)
        theirs = base._forward(inputs)
        preds = model.predict(inputs, [s.clone() for s in samples])
        base_preds = base.predict(inputs, [s.clone() for s in samples])
    for h in handles:
        h.remove()
    assert calls == []
    assert ours.keys() == theirs.keys() == set(TASKS)
    for t in TASKS:
        assert torch.equal(ours[t], theirs[t])
        field = get_task_spec(t).pred_field
        for a, b in zip(preds, base_preds):
            assert torch.equal(a.get(field).data, b.get(field).data)
    # inference MACs are the baseline's; g adds training parameters only
    x = torch.empty((1, 3) + SIZE)
    assert count_macs(model, x, forward=model._forward)[0] == count_macs(
        base, x, forward=base._forward)[0]
    assert count_parameters(model) == count_parameters(base) + \
        count_parameters(model.jtr_net)
    assert count_parameters(model.jtr_loss) == 0
    assert count_parameters(model.views) == 0


def test_one_forward_of_the_stacked_views():
    model = build().train()
    inputs, samples = batch()
    shapes = []
    handle = model.backbone.register_forward_hook(
        lambda m, i, o: shapes.append(tuple(i[0].shape)))
    losses = model.loss(inputs, samples)
    handle.remove()
    assert shapes == [(12, 3) + SIZE]
    assert {'jtr.loss_dist', 'jtr.loss_dist_g',
            'jtr.loss_recon'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['jtr.loss_dist'] > 0 and losses['jtr.loss_recon'] > 0


def _grads(model, loss, outputs):
    """Gradients of ``loss`` w.r.t. the MTL parameters, g's parameters
    and the captured decoder outputs (zeros where none)."""
    mtl = [(n, p) for n, p in model.named_parameters()
           if not n.startswith('jtr_net.')]
    g = list(model.jtr_net.named_parameters())
    tensors = [p for _, p in mtl] + [p for _, p in g] + list(outputs.values())
    grads = torch.autograd.grad(loss,
                                tensors,
                                allow_unused=True,
                                retain_graph=True)
    grads = [
        torch.zeros_like(t) if d is None else d
        for t, d in zip(tensors, grads)
    ]
    k, j = len(mtl), len(mtl) + len(g)
    return (dict(zip([n for n, _ in mtl],
                     grads[:k])), dict(zip([n for n, _ in g], grads[k:j])),
            dict(zip(outputs, grads[j:])))


def _loss_with_outputs(model, masks):
    """The losses and each decoder's (3B, n_t, h, w) output."""
    outputs = {}
    handles = [
        model.decoders[t].register_forward_hook(
            lambda m, i, o, t=t: outputs.__setitem__(t, o)) for t in TASKS
    ]
    inputs, samples = batch(masks)
    torch.manual_seed(5)
    losses = model.loss(inputs, samples)
    for h in handles:
        h.remove()
    return losses, outputs


def _rows_with_gradient(grad):
    return grad.flatten(1).abs().sum(1) > 0


def test_gradients_go_where_jtr_says():
    model = build().train()
    masks = torch.tensor(MASKS, dtype=torch.bool)
    b = len(MASKS)
    losses, outputs = _loss_with_outputs(model, MASKS)

    # d1: the MTL network only, through v1's unlabelled predictions
    mtl, g, out = _grads(model, losses['jtr.loss_dist'], outputs)
    assert not any(v.any() for v in g.values())  # the frozen copy
    assert any(v.any() for n, v in mtl.items() if n.startswith('backbone.'))
    for ti, t in enumerate(TASKS):
        rows = _rows_with_gradient(out[t])
        assert not rows[:b].any() and not rows[2 * b:].any(), t  # v0, v2
        assert torch.equal(rows[b:2 * b], ~masks[:, ti]), t

    # d2 and R: g only (g1 both, g2 and the head R); no MTL parameter and
    # no prediction of any view
    for key in ('jtr.loss_dist_g', 'jtr.loss_recon'):
        mtl, g, out = _grads(model, losses[key], outputs)
        assert not any(v.any() for v in mtl.values()), key
        assert not any(v.any() for v in out.values()), key
        enc = [n for n in g if n.startswith('encoder.')]
        assert enc and all(g[n].any() for n in enc), key
    _, g, _ = _grads(model, losses['jtr.loss_recon'], outputs)
    assert all(v.any() for n, v in g.items() if not n.startswith('encoder'))
    _, g, _ = _grads(model, losses['jtr.loss_dist_g'], outputs)
    assert not any(
        v.any() for n, v in g.items() if n.startswith(('decoder.', 'head.')))

    # the supervised losses: v0's labelled predictions only, never g
    sup = sum(v for k, v in losses.items() if not k.startswith('jtr.'))
    mtl, g, out = _grads(model, sup, outputs)
    assert not any(v.any() for v in g.values())
    for ti, t in enumerate(TASKS):
        rows = _rows_with_gradient(out[t])
        assert torch.equal(rows[:b], masks[:, ti]), t
        assert not rows[b:].any(), t


def test_fully_labelled_images_give_the_network_no_jtr_gradient():
    model = build().train()
    losses, outputs = _loss_with_outputs(model, [(1, ) * T] * 2)
    mtl, g, out = _grads(model, losses['jtr.loss_dist'], outputs)
    assert not any(v.any() for v in mtl.values())
    assert not any(v.any() for v in out.values())


def test_v2_without_gradients_equals_the_stacked_forward_with_fixed_norms():
    """With the batch norms' statistics fixed, running v2 in a second
    forward without gradients changes neither the losses nor the
    gradients; only the 3B batch statistics tell the two apart."""
    results = []
    for v2_no_grad in (False, True):
        model = build(v2_no_grad=v2_no_grad).train()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        inputs, samples = batch()
        torch.manual_seed(7)
        losses = model.loss(inputs, samples)
        total = sum(losses.values())
        total.backward()
        results.append(({
            k: v.detach()
            for k, v in losses.items()
        }, {
            n: p.grad.clone()
            for n, p in model.named_parameters() if p.grad is not None
        }))
    (l1, g1), (l2, g2) = results
    assert l1.keys() == l2.keys()
    for k in l1:
        torch.testing.assert_close(l1[k], l2[k], rtol=1e-5, atol=1e-6)
    assert g1.keys() == g2.keys()
    for n in g1:
        torch.testing.assert_close(g1[n], g2[n], rtol=1e-4, atol=1e-6)


def test_training_step_trains_the_network_and_g():
    model = build().train()
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    g_ids = {id(p) for p in model.jtr_net.parameters()}
    in_optim = {
        id(p)
        for grp in optim.optimizer.param_groups
        for p in grp['params']
    }
    assert g_ids and g_ids <= in_optim
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    inputs, samples = batch()
    log_vars = model.train_step(dict(inputs=inputs, data_samples=samples),
                                optim)
    assert torch.isfinite(log_vars['loss'])
    moved = {
        n
        for n, p in model.named_parameters()
        if not torch.equal(p.detach(), before[n])
    }
    for prefix in ('backbone.', 'neck.', 'decoders.', 'jtr_net.encoder.',
                   'jtr_net.decoder.', 'jtr_net.head.'):
        assert any(n.startswith(prefix) for n in moved), prefix


def test_checkpoint_round_trip_keeps_g(tmp_path):
    model = build(seed=0).train()
    inputs, samples = batch()
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-2))
    model.train_step(dict(inputs=inputs, data_samples=samples), optim)
    path = str(tmp_path / 'jtr.pth')
    save_checkpoint(dict(state_dict=model.state_dict()), path)
    restored = build(seed=1)
    assert not torch.equal(restored.jtr_net.head[1].weight,
                           model.jtr_net.head[1].weight)
    load_checkpoint(restored, path, map_location='cpu', strict=True)
    state = model.state_dict()
    assert any(k.startswith('jtr_net.') for k in state)
    for k, v in restored.state_dict().items():
        assert torch.equal(v, state[k]), k


def test_part_settings_are_keys_of_their_parts():
    cfg = tiny_cfg()
    for name, key in (('recon_weight', 'jtr_loss.recon_weight'),
                      ('view_photometric', 'views.photometric'),
                      ('widths', 'jtr_net.widths'), ('num_blocks',
                                                     'decoder.num_blocks')):
        with pytest.raises(TypeError, match=f'`{name}` moved to `{key}`'):
            MODELS.build(dict(cfg, **{name: 1}))
    with pytest.raises(ValueError, match='jtr_net.in_channels=19 is set by'):
        MODELS.build(dict(cfg, jtr_net=dict(in_channels=19)))
    with pytest.raises(ValueError, match='jtr_loss.tasks=.* is set by'):
        MODELS.build(dict(cfg, jtr_loss=dict(tasks=TASKS, encodings=STATS)))
    model = MODELS.build(dict(cfg, views=dict(photometric=False)))
    assert not model.views.photometric and model.jtr_net.in_channels == 14


def test_missing_depth_statistics_name_the_keys_and_the_tool():
    cfg = tiny_cfg(jtr_loss=dict(encodings=dict(depth=dict(mean=2.0))))
    with pytest.raises(ValueError) as err:
        MODELS.build(cfg)
    msg = str(err.value)
    assert 'model.jtr_loss.encodings.depth.std' in msg
    assert 'model.jtr_loss.encodings.depth.mean' not in msg
    assert 'projects/jtr/tools/depth_stats.py' in msg
    # without depth nothing is needed
    model = MODELS.build(
        dict(tiny_baseline_cfg(type='JTRMultiTaskBaseline'),
             jtr_net=dict(widths=(4, 4, 8, 8, 8))))
    assert isinstance(model, JTRMultiTaskBaseline)
