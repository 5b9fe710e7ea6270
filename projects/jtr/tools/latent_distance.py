# Copyright (c) diffmtl contributors. All rights reserved.
"""How far apart JTR's auto-encoder puts labels and predictions.

JTR pulls the MTL network with ``d1 = 1 - cos(g1(Y_1), g1(Y_hat_1))``,
the cosine distance (over channels, averaged over the latent's
locations) between the latents of the stacked labels and of the
stacked predictions of view 1, through g's encoder ``g1``. ``g1`` is
trained at the same time, by ``d2`` (the same distance on view 2) and the
reconstruction. Whether ``d1`` can pull depends on how much of the
difference between ``Y`` and ``Y_hat`` survives in the latent.

For a trained JTR checkpoint, over training batches (the training
pipeline and JTR's views), this reports per encoder:

* ``dist``: ``d1`` averaged over the images that have a usable label in
  view 1 (JTR's weights), unweighted by ``lambda_d``;
* with the checkpoint's ``g`` (``trained``) and with ``g`` as initialised
  before any training (``initial``: the model built with the same seed),
  on the same views and predictions;
* ``input_rel``: the relative difference of the stacks themselves,
  ``||Y_1 - Y_hat_1|| / ||Y_1||``, averaged over the same images.
* ``dist_images``: the same cosine distance between the label latents of
  two different images (``g1(Y_1)`` of each image against that of the
  previous image in the batch), over the pairs where both have a usable
  label: how far apart the encoder puts inputs that really differ.

A trained encoder whose ``dist`` is orders of magnitude below the
initial one has learnt to ignore what distinguishes labels from
predictions; if ``dist_images`` is as small, it maps every input to
nearly the same direction (a latent dominated by a component common to
all inputs), which the cosine distance cannot see past. ``d1`` then
hardly pulls (compare its gradient with the
supervised terms' with ``tools/analysis_tools/loss_gradients.py``).

For an auto-encoder with ``encode``/``decode`` (JTR's SegNet, whose
decoder unpools with the encoder's pooling indices), it also reports how
much the reconstruction needs the latent: ``recon``, the mean
reconstruction term ``R`` of view 2 (as trained, unweighted by
``lambda_r``), decoded from

* ``own``: each image's own latent (the loss's ``R``);
* ``other``: another image's latent (the batch rolled by one), each
  image's own pooling indices;
* ``zero``: a zero latent, own pooling indices.

If ``other`` and ``zero`` are close to ``own``, the reconstruction
reaches the decoder through the pooling indices, not the latent, and
nothing in the reconstruction keeps the latent informative::

    python projects/jtr/tools/latent_distance.py \\
        projects/jtr/configs/jtr_synthetic_one_r18_matched.py CKPT \\
        --batches 20 --out results/diagnostics/jtr_latent_distance.json
"""
import argparse
import json
import os
import os.path as osp
import sys
from typing import Dict, Iterable

import torch
import torch.nn as nn

REPO_ROOT = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

__all__ = ['latent_distances', 'main']


@torch.no_grad()
def latent_distances(model: nn.Module, batches: Iterable[dict],
                     encoders: Dict[str, nn.Module]) -> Dict[str, dict]:
    """Mean ``d1`` of each auto-encoder in ``encoders`` on the same views.

    The views, the predictions and the stacks (with their Gumbel samples)
    are made once per batch and shared by every encoder.

    Args:
        model (JTRMultiTaskBaseline): The trained model (its MTL network
            makes the predictions; train mode, as in training).
        batches (iterable): Training batches (dataloader output).
        encoders (dict): ``{name: g}``, each taking the model's stacks.

    Returns:
        dict: ``{name: {'dist': mean d1, 'images': count, 'dist_images':
        mean distance between two images' label latents, 'image_pairs':
        count}}`` and
        ``'input_rel'``: ``{'value': mean ||Y - Y_hat|| / ||Y||,
        'images': count}``, over the images with a usable label in view 1.
        An encoder with ``encode``/``decode`` also has ``'recon'``:
        ``{'own', 'other', 'zero'}`` mean ``R`` of view 2 by the latent
        the decoder is given (module docstring), and ``'recon_images'``,
        over the images with a usable label in view 2.
    """
    from projects.jtr.jtr.jtr_loss import cosine_distance, frozen_latent
    loss = model.jtr_loss
    sums = {name: 0.0 for name in encoders}
    pair_sums = {name: 0.0 for name in encoders}
    pairs = 0
    decoders = [name for name, net in encoders.items() if _decodes(net)]
    recon_sums = {
        name: dict.fromkeys(_RECON_LATENTS, 0.0)
        for name in decoders
    }
    rel_sum, images, recon_images = 0.0, 0, 0
    for data in batches:
        data = model.data_preprocessor(data, True)
        inputs, samples = data['inputs'], data['data_samples']
        size = inputs.shape[-2:]
        mask, rows = model.labelled_rows(samples, inputs.device)
        gts = model.labelled_gt(samples, mask, size, inputs.device, rows)
        view_inputs, view_gts = model.make_views(inputs, gts)
        logits = model.view_logits(inputs, view_inputs)
        logits_v1, logits_v2, gts_v1, gts_v2 = model.jtr_loss_inputs(
            logits, view_gts, size)
        labels = loss.view_labels(gts_v1, mask.to(torch.bool))
        keep = labels.any(1)
        if keep.any():
            shape = (inputs.shape[0], 1) + tuple(size)
            joint = loss.joint_mask(gts_v1, labels, shape).to(inputs.dtype)
            y, y_hat = loss.stacks(logits_v1, gts_v1, labels, joint, True)
            rel = (y - y_hat).flatten(1).norm(dim=1) / y.flatten(1).norm(
                dim=1).clamp_min(loss.eps)
            rel_sum += float(rel[keep].sum())
            images += int(keep.sum())
            # image b against image b - 1 (itself in a batch of one)
            pair = keep & keep.roll(1, 0) if len(keep) > 1 else keep & False
            pairs += int(pair.sum())
            for name, net in encoders.items():
                # as d1 is computed in training: g's encoder in train
                # mode, its buffers left as they are
                z = frozen_latent(net, y)
                d = cosine_distance(z, frozen_latent(net, y_hat), loss.eps)
                sums[name] += float(d[keep].sum())
                d = cosine_distance(z, z.roll(1, 0), loss.eps)
                pair_sums[name] += float(d[pair].sum())
        if decoders:
            # after view 1, as in the loss: the same random draws
            recon_images += _add_recon_terms(loss, encoders, decoders,
                                             logits_v2, gts_v2, mask,
                                             recon_sums)
    out = {
        name: dict(dist=s / max(images, 1), images=images,
                   dist_images=pair_sums[name] / max(pairs, 1),
                   image_pairs=pairs)
        for name, s in sums.items()
    }
    for name in decoders:
        out[name]['recon'] = {
            k: v / max(recon_images, 1)
            for k, v in recon_sums[name].items()
        }
        out[name]['recon_images'] = recon_images
    out['input_rel'] = dict(value=rel_sum / max(images, 1), images=images)
    return out


_RECON_LATENTS = ('own', 'other', 'zero')


def _decodes(net: nn.Module) -> bool:
    return callable(getattr(net, 'encode', None)) and callable(
        getattr(net, 'decode', None))


def _add_recon_terms(loss, encoders, decoders, logits_v2, gts_v2, mask,
                     sums) -> int:
    """Adds each decoder's view-2 ``R`` summed over the images with a
    usable label, for each latent of :data:`_RECON_LATENTS`, to ``sums``;
    returns the number of those images. Every variant draws the same
    reconstruction targets (the generator is reset before each)."""
    labels = loss.view_labels(gts_v2, mask.to(torch.bool))
    keep = labels.any(1)
    if not keep.any():
        return 0
    first = logits_v2[loss.tasks[0]]
    shape = (first.shape[0], 1) + tuple(first.shape[-2:])
    joint = loss.joint_mask(gts_v2, labels, shape).to(first.dtype)
    y, y_hat = loss.stacks(logits_v2, gts_v2, labels, joint, False)
    state = torch.get_rng_state()
    for name in decoders:
        net = encoders[name]
        # in g's mode, as trained; its buffers restored afterwards
        saved = [(b, b.clone()) for b in net.buffers()]
        coded = [net.encode(y), net.encode(y_hat)]
        for buffer, value in saved:
            buffer.copy_(value)
        for kind in _RECON_LATENTS:
            recons = []
            for z, indices, sizes in coded:
                if kind == 'other':
                    z = z.roll(1, dims=0)
                elif kind == 'zero':
                    z = torch.zeros_like(z)
                recons.append(net.decode(z, indices, sizes))
            torch.set_rng_state(state)
            r = loss.recon_terms(*recons, logits_v2, gts_v2, labels, joint)
            sums[name][kind] += float(r[keep].sum())
    return int(keep.sum())


def main(argv=None) -> Dict[str, dict]:
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import diffmtl  # noqa: F401
    from diffmtl.apis import training_batches
    from diffmtl.registry import MODELS
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a JTR config')
    parser.add_argument('checkpoint', help='a checkpoint of that config')
    parser.add_argument('--batches', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0,
                        help='data order and views; the initial g is the '
                        'one the model builds with this seed')
    parser.add_argument('--out', help='write the result as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    torch.manual_seed(args.seed)
    initial = MODELS.build(cfg.model)
    initial.init_weights()
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.train()
    initial.train()
    batches = training_batches(cfg, args.batches, seed=args.seed)
    torch.manual_seed(args.seed)
    result = latent_distances(
        model, batches, dict(trained=model.jtr_net,
                             initial=initial.jtr_net))
    for name in ('trained', 'initial'):
        print(f'd1 with the {name} g: {result[name]["dist"]:.4g} '
              f'({result[name]["images"]} images); between two images\' '
              f'labels {result[name]["dist_images"]:.4g} '
              f'({result[name]["image_pairs"]} pairs)')
    print(f'||Y - Y_hat|| / ||Y||: {result["input_rel"]["value"]:.4g}')
    for name in ('trained', 'initial'):
        if 'recon' in result[name]:
            r = result[name]['recon']
            print(f'R of view 2 with the {name} g, decoded from its own '
                  f'latent {r["own"]:.4g}, another image\'s {r["other"]:.4g},'
                  f' a zero latent {r["zero"]:.4g} '
                  f'({result[name]["recon_images"]} images)')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(dict(config=args.config, checkpoint=args.checkpoint,
                           cfg_options=args.cfg_options or {},
                           batches=args.batches, seed=args.seed,
                           **result), f, indent=1)
            f.write('\n')
    return result


if __name__ == '__main__':
    main()
