# Copyright (c) diffmtl contributors. All rights reserved.
import math

import pytest
import torch
import torch.nn.functional as F

from diffmtl.registry import MODELS
from _mtl_model_utils import PASCAL_TASKS, make_batch, tiny_diffusion_cfg

torch.set_num_threads(1)

MASKS = [
    (1, 0, 0, 0, 0),
    (0, 1, 1, 0, 1),
    (1, 1, 1, 1, 1),
    (0, 0, 0, 1, 0),
    (0, 0, 0, 0, 0),  # nothing labelled: contributes 0
]


def build(**kwargs):
    torch.manual_seed(0)
    model = MODELS.build(tiny_diffusion_cfg(**kwargs))
    return model


def noise_table(model, batch, size=(32, 48)):
    """Fixed noise per (task, step, kind) for the whole batch."""
    g = torch.Generator().manual_seed(123)
    h, w = size[0] // 8, size[1] // 8
    table = {}
    for task in model.tasks:
        ch = model.channels if model.mode == 'feature' \
            else model.out_channels[task]
        for step in range(model.num_steps):
            for kind in ('q_sample', 'posterior'):
                table[(task, step, kind)] = torch.randn(
                    batch, ch, h, w, generator=g)
    return table


def reference_loss(model, inputs, samples, table):
    """Straightforward per-image, per-labelled-task computation."""
    s = model.num_steps
    assert s == 2
    betas = [(math.sqrt(1e-3) + i * (math.sqrt(1e-2) - math.sqrt(1e-3)))**2
             for i in range(2)]
    ab = [1 - betas[0], (1 - betas[0]) * (1 - betas[1])]
    c1 = betas[1] * math.sqrt(ab[0]) / (1 - ab[1])
    c2 = (1 - ab[0]) * math.sqrt(1 - betas[1]) / (1 - ab[1])
    sigma = math.sqrt(betas[1] * (1 - ab[0]) / (1 - ab[1]))
    size = inputs.shape[-2:]
    up = lambda x: F.interpolate(  # noqa: E731
        x, size=size, mode='bilinear', align_corners=False)
    tasks = model.tasks
    total, per_key = 0.0, {}
    for b, sample in enumerate(samples):
        feats = model.extract_feat(inputs[b:b + 1])
        f_init = {t: model.decoders[t](feats) for t in tasks}
        p_init = {t: model.init_heads[t](f_init[t]) for t in tasks}
        cond = model.conditioner([p_init[t] for t in tasks])
        labelled = [t for t, m in zip(tasks, sample.task_mask) if m]
        for t in labelled:
            spec = model.task_specs[t]
            gt = sample.get(spec.gt_field).data[None]
            x0 = f_init[t] if model.mode == 'feature' else p_init[t]
            x1 = math.sqrt(ab[1]) * x0 + math.sqrt(1 - ab[1]) * \
                table[(t, 1, 'q_sample')][b:b + 1]
            h1 = model.denoiser(t, x1, torch.tensor([1]), cond)
            x0_ = c1 * h1 + c2 * x1 + sigma * \
                table[(t, 1, 'posterior')][b:b + 1]
            out = model.denoiser(t, x0_, torch.tensor([0]), cond)
            if model.mode == 'feature':
                out = model.final_heads[t](out)
            loss_fn = model.task_losses[t]
            scale = len(tasks) / len(labelled) * model.loss_weights[t] / \
                len(samples)
            lf = scale * loss_fn(up(out), gt)[0]
            li = scale * 0.5 * loss_fn(up(p_init[t]), gt)[0]
            per_key[f'{t}.loss'] = per_key.get(f'{t}.loss', 0.0) + lf
            per_key[f'{t}.loss_init'] = per_key.get(f'{t}.loss_init',
                                                    0.0) + li
            total = total + lf + li
    return total, per_key


@pytest.mark.parametrize('mode', ['feature', 'prediction'])
def test_batched_loss_equals_per_image_reference(mode):
    model = build(mode=mode)
    model.eval()  # BN with running stats: images are independent
    inputs, samples = make_batch(MASKS)
    table = noise_table(model, len(samples))
    model.noise_fn = lambda task, step, kind, batch_idx, shape: \
        table[(task, step, kind)][batch_idx]
    losses = model.loss(inputs, samples)
    ref_total, ref_keys = reference_loss(model, inputs, samples, table)
    assert set(losses) == set(ref_keys)
    for k, v in ref_keys.items():
        assert losses[k].item() == pytest.approx(v.item(), rel=1e-4,
                                                 abs=1e-6), k
    total = sum(losses.values())
    assert total.item() == pytest.approx(ref_total.item(), rel=1e-4)
    assert total.item() > 0


def test_inference_seed_reproducible_and_noise_matters():
    model = build(inference_seed=7)
    model.eval()
    inputs, _ = make_batch([(1, ) * 5] * 2)
    with torch.no_grad():
        a = model._forward(inputs)
        b = model._forward(inputs)
        model.inference_seed = 8
        c = model._forward(inputs)
    for t in PASCAL_TASKS:
        assert torch.equal(a[t], b[t])
        assert a[t].shape == (2, model.out_channels[t], 32, 48)
    assert any(not torch.allclose(a[t], c[t]) for t in PASCAL_TASKS)


def test_no_inference_noise_is_deterministic_without_seed():
    model = build(inference_noise=False)
    model.eval()
    inputs, _ = make_batch([(1, ) * 5])
    with torch.no_grad():
        a, b = model._forward(inputs), model._forward(inputs)
    assert all(torch.equal(a[t], b[t]) for t in PASCAL_TASKS)


def _any_grad(model, prefix):
    flags = [
        p.grad is not None and bool(p.grad.abs().sum() > 0)
        for n, p in model.named_parameters() if n.startswith(prefix)
    ]
    assert flags, prefix
    return any(flags)


@pytest.mark.parametrize('mode,detach', [('feature', True),
                                         ('feature', False),
                                         ('prediction', True)])
def test_gradients_of_one_label_batch(mode, detach):
    model = build(mode=mode, detach_condition=detach)
    inputs, samples = make_batch([(0, 0, 1, 0, 0)])  # only 'sal'
    loss = sum(model.loss(inputs, samples).values())
    loss.backward()
    a = 'sal'

    def heads(task):
        return (f'final_heads.{task}', ) if mode == 'feature' else ()

    for prefix in ('backbone', 'neck', f'decoders.{a}', f'init_heads.{a}',
                   'conditioner', f'denoiser.pre_layers.{a}',
                   f'denoiser.task_heads.{a}', 'denoiser.blocks',
                   'denoiser.step_embed') + heads(a):
        assert _any_grad(model, prefix), prefix
    for b in ('semseg', 'human_parts', 'normals', 'edge'):
        for prefix in (f'denoiser.pre_layers.{b}',
                       f'denoiser.task_heads.{b}') + heads(b):
            assert not _any_grad(model, prefix), prefix
        # other tasks' decoders only learn through the conditioning path
        assert _any_grad(model, f'decoders.{b}') == (not detach)
        assert _any_grad(model, f'init_heads.{b}') == (not detach)


@pytest.mark.parametrize('mode', ['feature', 'prediction'])
@pytest.mark.parametrize('detach_x_start', [False, True])
def test_final_loss_reaches_shared_parts_unless_x_start_detached(
        mode, detach_x_start):
    """The final loss alone trains the backbone, neck and the task's
    preliminary decoder through x_start (official), and none of them with
    ``detach_x_start=True``; the denoiser learns either way."""
    model = build(mode=mode, detach_x_start=detach_x_start)
    inputs, samples = make_batch([(0, 0, 1, 0, 0)])  # only 'sal'
    losses = model.loss(inputs, samples)
    assert set(losses) >= {'sal.loss', 'sal.loss_init'}
    losses['sal.loss'].backward()
    for prefix in ('backbone', 'neck', 'decoders.sal', 'init_heads.sal'):
        if mode == 'feature' and prefix == 'init_heads.sal':
            # F_init is the start, the initial head is not on that path
            assert not _any_grad(model, prefix)
            continue
        assert _any_grad(model, prefix) == (not detach_x_start), prefix
    for prefix in ('denoiser.blocks', 'denoiser.pre_layers.sal',
                   'conditioner'):
        assert _any_grad(model, prefix), prefix


def test_denoising_process_stages():
    model = build(inference_seed=3)
    model.eval()
    inputs, _ = make_batch([(1, ) * 5])
    stages = model.denoising_process(inputs)
    final = model._forward(inputs)
    for t in PASCAL_TASKS:
        names = [n for n, _ in stages[t]]
        assert names == ['initial', 'noisy', 'step_1', 'final']
        for _, x in stages[t]:
            assert x.shape == (1, model.out_channels[t], 32, 48)
        assert torch.allclose(stages[t][-1][1], final[t], atol=1e-6)


def test_predict_crops_unflips_and_resizes():
    model = build(inference_noise=False)
    model.eval()
    inputs, samples = make_batch([(1, ) * 5, (1, ) * 5])
    with torch.no_grad():
        logits = model._forward(inputs)
    # sample 1: padded 4 px at the bottom and right, flipped horizontally
    samples[1].set_metainfo(
        dict(padding_size=[0, 8, 0, 4], flip=True,
             flip_direction='horizontal', ori_shape=(28, 40)))
    with torch.no_grad():
        out = model.predict(inputs, samples)
    n = out[1].get('logits_normals').data
    assert n.shape == (3, 28, 40)
    exp = logits['normals'][1, :, :28, :40].flip(-1)
    exp[0] = -exp[0]
    assert torch.allclose(n, exp, atol=1e-5)
    seg = out[0].get('pred_sem_seg').data
    assert seg.dtype == torch.int64 and seg.shape == (1, 32, 48)
    assert torch.equal(seg[0], logits['semseg'][0].argmax(0))
    sal = out[0].get('pred_sal').data
    assert torch.allclose(sal[0], logits['sal'][0].softmax(0)[1])
    pn = out[1].get('pred_normals').data
    assert torch.allclose(pn.norm(dim=0), torch.ones(28, 40), atol=1e-5)


def test_invalid_arguments():
    with pytest.raises(ValueError, match='mode'):
        build(mode='latent')
    with pytest.raises(KeyError, match='unknown'):
        build(loss_weights=dict(semsegg=1.0))
    with pytest.raises(KeyError, match='not in tasks'):
        build(losses=dict(depth=dict(type='DepthL1Loss')))
    with pytest.raises(NotImplementedError, match='whole'):
        build(test_cfg=dict(mode='slide'))
    with pytest.raises(KeyError, match='num_classes'):
        build(num_classes={})


def _with_ids(samples, ids):
    for s, i in zip(samples, ids):
        s.set_metainfo(dict(img_path=f'/data/{i}.png'))
    return samples


def test_seeded_noise_depends_on_the_image_not_the_batch():
    """With inference_seed set, an image's prediction is the same alone, in
    a batch of 2 or 4, and in any position of the batch."""
    model = build(inference_seed=0)
    model.eval()
    inputs, samples = make_batch([(1, ) * 5] * 4)
    samples = _with_ids(samples, ['a', 'b', 'c', 'd'])
    with torch.no_grad():
        full = model.inference(inputs, samples)
        pair = model.inference(inputs[2:], samples[2:])
        alone = model.inference(inputs[3:], samples[3:])
        order = [3, 1, 0, 2]
        shuffled = model.inference(inputs[order], [samples[i] for i in order])
    for t in PASCAL_TASKS:
        torch.testing.assert_close(pair[t], full[t][2:], rtol=0, atol=1e-5)
        torch.testing.assert_close(alone[t], full[t][3:], rtol=0, atol=1e-5)
        torch.testing.assert_close(shuffled[t], full[t][order], rtol=0,
                                   atol=1e-5)


def test_seeded_noise_is_keyed_by_the_pixels():
    """The noise key is the image's pixels: another file name or folder,
    no name at all, or the same image twice in one batch give the same
    prediction; other pixels give other noise."""
    model = build(inference_seed=0)
    model.eval()
    inputs, samples = make_batch([(1, ) * 5] * 4)
    samples = _with_ids(samples, ['a', 'b', 'c', 'd'])
    renamed = _with_ids(make_batch([(1, ) * 5] * 4)[1], ['w', 'x', 'y', 'z'])
    for s in renamed:
        s.set_metainfo(dict(img_path='/elsewhere/' +
                            s.img_path.split('/')[-1], img_id='other'))
    twice = torch.stack([inputs[1], inputs[1]])
    with torch.no_grad():
        full = model.inference(inputs, samples)
        again = model.inference(inputs, renamed)
        nameless = model.inference(inputs)
        doubled = model.inference(twice, [samples[1], samples[3]])
    for t in PASCAL_TASKS:
        assert torch.equal(again[t], full[t]), t
        assert torch.equal(nameless[t], full[t]), t
        torch.testing.assert_close(doubled[t][0], doubled[t][1], rtol=0,
                                   atol=1e-5)
        torch.testing.assert_close(doubled[t][0], full[t][1], rtol=0,
                                   atol=1e-5)
    # one pixel changed: other noise, so the prediction moves everywhere
    changed = inputs.clone()
    changed[3, 0, 0, 0] += 0.5
    with torch.no_grad():
        other = model.inference(changed, samples)
    assert all(torch.equal(other[t][:3], full[t][:3]) for t in PASCAL_TASKS)
    far = (slice(None), slice(16, None), slice(24, None))  # away from (0, 0)
    assert all(not torch.allclose(other[t][3][far], full[t][3][far])
               for t in PASCAL_TASKS)


def test_noise_key_ignores_padding():
    """Padding recorded in the metainfo is cut off before hashing: the
    key of a padded input equals that of the bare image."""
    from mmseg.structures import SegDataSample

    from diffmtl.models.segmentors.diffusion_mtl import image_noise_keys
    image = torch.randn(1, 3, 8, 12)
    padded = torch.nn.functional.pad(image, (0, 4, 0, 8), value=0.)
    sample = SegDataSample(metainfo=dict(padding_size=(0, 4, 0, 8)))
    assert image_noise_keys(padded, [sample]) == image_noise_keys(image)
    assert image_noise_keys(padded) != image_noise_keys(image)


def test_image_noise_seed_is_a_pure_function():
    from diffmtl.models.segmentors.diffusion_mtl import (image_noise_key,
                                                         image_noise_seed,
                                                         seeded_noise)
    a = image_noise_seed(0, 'img1', 'semseg', 1, 'q_sample')
    assert a == image_noise_seed(0, 'img1', 'semseg', 1, 'q_sample')
    assert 0 <= a < 2**63
    others = {
        image_noise_seed(1, 'img1', 'semseg', 1, 'q_sample'),
        image_noise_seed(0, 'img2', 'semseg', 1, 'q_sample'),
        image_noise_seed(0, 'img1', 'sal', 1, 'q_sample'),
        image_noise_seed(0, 'img1', 'semseg', 0, 'q_sample'),
        image_noise_seed(0, 'img1', 'semseg', 1, 'posterior')
    }
    assert a not in others and len(others) == 5
    # the key is a digest of the dtype, shape and bytes of the pixels
    x = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    key = image_noise_key(x)
    assert len(key) == 64 and key == image_noise_key(x.clone())
    assert key != image_noise_key(x.double())
    assert key != image_noise_key(x.reshape(2, 4, 3))
    assert key != image_noise_key(x + 1e-6 * (x == 5))
    # the CPU noise of a seed is torch.randn from a CPU generator
    g = torch.Generator().manual_seed(a)
    assert torch.equal(seeded_noise(a, (2, 5), 'cpu'),
                       torch.randn(2, 5, generator=g))


def test_eval_stages_predict_initial_and_final():
    model = build(inference_seed=0,
                  test_cfg=dict(mode='whole',
                                eval_stages=('initial', 'final')))
    model.eval()
    inputs, samples = make_batch([(1, ) * 5] * 2)
    with torch.no_grad():
        out = model.predict(inputs, samples)
        feats = model.extract_feat(inputs)
        _, init = model.initial(feats)
        final = model.inference(inputs, samples)
    for s in out:
        assert s.pred_stages == ('initial', )
    for t in PASCAL_TASKS:
        spec = model.task_specs[t]
        up = F.interpolate(init[t], size=(32, 48), mode='bilinear',
                           align_corners=False)
        for i in range(2):
            got = out[i].get('initial_' + spec.logits_field).data
            torch.testing.assert_close(got, up[i], rtol=0, atol=1e-5)
            torch.testing.assert_close(
                out[i].get(spec.logits_field).data, final[t][i], rtol=0,
                atol=1e-5)
            assert ('initial_' + spec.pred_field) in out[i]
    # initial and final differ (the denoiser changes the prediction)
    assert not torch.allclose(
        out[0].get('initial_seg_logits').data, out[0].seg_logits.data)


def test_eval_stages_validated():
    with pytest.raises(ValueError, match="'final'"):
        build(test_cfg=dict(mode='whole', eval_stages=('initial', )))
    with pytest.raises(ValueError, match='unknown'):
        build(test_cfg=dict(mode='whole', eval_stages=('final', 'noisy')))
    from _mtl_model_utils import tiny_baseline_cfg
    cfg = tiny_baseline_cfg()
    cfg['test_cfg'] = dict(mode='whole', eval_stages=('initial', 'final'))
    with pytest.raises(ValueError, match='initial'):
        MODELS.build(cfg)
