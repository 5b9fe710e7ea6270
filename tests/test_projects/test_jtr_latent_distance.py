# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/jtr/tools/latent_distance.py: its d1 is the loss's own d1 on
the same views, every encoder sees the same stacks, and the
reconstruction with the image's own latent is the loss's R, while a
decoder that ignores the latent scores the same with any latent. (The command runs
on a trained project config in
``test_jtr_configs.test_train_and_test_tools_run_the_project_config``.)"""
import copy
import math
import os.path as osp
import sys

import pytest
import torch
import torch.nn as nn

from projects.jtr.tools.latent_distance import latent_distances

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__))))
from test_jtr_model import batch, build  # noqa: E402


def _expected_terms(model, data, seed):
    """JTRLoss.terms on the views the model makes from the same draws:
    the weighted means of d1 and of R over the batch."""
    torch.manual_seed(seed)
    data = model.data_preprocessor(data, True)
    inputs, samples = data['inputs'], data['data_samples']
    size = inputs.shape[-2:]
    mask, rows = model.labelled_rows(samples, inputs.device)
    gts = model.labelled_gt(samples, mask, size, inputs.device, rows)
    view_inputs, view_gts = model.make_views(inputs, gts)
    logits = model.view_logits(inputs, view_inputs)
    with torch.no_grad():
        terms = model.jtr_loss.terms(
            model.jtr_net, *model.jtr_loss_inputs(logits, view_gts, size),
            mask)
    w1, w2 = terms['weight_v1'], terms['weight_v2']
    return dict(dist=float((terms['dist'] * w1).sum() / w1.sum()),
                images=int(w1.sum()),
                recon=float((terms['recon'] * w2).sum() / w2.sum()),
                recon_images=int(w2.sum()))


def test_d1_is_the_loss_terms_d1_and_encoders_share_the_stacks():
    model = build(seed=0)
    model.train()
    inputs, samples = batch()
    data = dict(inputs=inputs, data_samples=samples)
    expected = _expected_terms(model, data, seed=5)
    same = copy.deepcopy(model.jtr_net)
    torch.manual_seed(5)
    got = latent_distances(model, [data], dict(g=model.jtr_net, copy=same))
    assert got['g']['images'] == expected['images'] == 4
    assert got['g']['dist'] == pytest.approx(expected['dist'], rel=1e-5)
    assert got['g']['recon_images'] == expected['recon_images'] == 4
    assert got['g']['recon']['own'] == pytest.approx(expected['recon'],
                                                     rel=1e-5)
    assert got['copy']['recon'] == got['g']['recon']
    # the same stacks for every encoder: an identical copy, the same d1
    assert got['copy']['dist'] == got['g']['dist']
    assert 0 < got['input_rel']['value'] < math.inf
    # the encoder's buffers are left as they were
    for (k, a), b in zip(model.jtr_net.state_dict().items(),
                         same.state_dict().values()):
        assert torch.equal(a, b), k


class _IndicesOnly(nn.Module):
    """An auto-encoder whose decoder uses only the pooling indices (the
    latent is multiplied by zero) or, with ``use_latent``, only the
    latent."""

    def __init__(self, channels, use_latent=False):
        super().__init__()
        self.proj = nn.Conv2d(channels, channels, 1)
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.use_latent = use_latent

    def encode(self, x):
        z, idx = self.pool(self.proj(x))
        return z, [idx], [x.shape[-2:]]

    def decode(self, z, indices, sizes):
        if self.use_latent:
            return nn.functional.interpolate(z, size=sizes[0])
        ones = torch.ones_like(z) + 0 * z
        return self.unpool(ones, indices[0], output_size=sizes[0])

    def forward(self, x, latent_only=False):
        z, indices, sizes = self.encode(x)
        return z if latent_only else (z, self.decode(z, indices, sizes))


class _Plain(nn.Module):
    """g without encode/decode."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, latent_only=False):
        return self.net(x, latent_only)


def test_recon_by_latent_tells_a_decoder_that_ignores_the_latent():
    model = build(seed=0)
    model.train()
    inputs, samples = batch()
    data = dict(inputs=inputs, data_samples=samples)
    channels = model.jtr_loss.in_channels
    torch.manual_seed(1)
    nets = dict(indices=_IndicesOnly(channels),
                latent=_IndicesOnly(channels, use_latent=True))
    torch.manual_seed(5)
    got = latent_distances(model, [data], nets)
    r = got['indices']['recon']
    assert r['own'] == r['other'] == r['zero']
    r = got['latent']['recon']
    assert r['own'] != pytest.approx(r['zero'], rel=1e-3)
    assert r['own'] != pytest.approx(r['other'], rel=1e-3)
    # a module without encode/decode gets d1 only
    plain = _Plain(nets['latent'])
    assert 'recon' not in latent_distances(model, [data],
                                           dict(plain=plain))['plain']


class _Offset(nn.Module):
    """A latent that is the stack itself, plus ``offset`` everywhere; it
    keeps the stacks it was given."""

    def __init__(self, offset):
        super().__init__()
        self.offset = offset
        self.seen = []

    def forward(self, x, latent_only=False):
        self.seen.append(x.detach().clone())
        return x + self.offset


def test_distance_between_images_tells_a_common_component():
    model = build(seed=0)
    model.train()
    inputs, samples = batch()
    data = dict(inputs=inputs, data_samples=samples)
    same = _Offset(0.0)
    torch.manual_seed(5)
    got = latent_distances(model, [data], dict(same=same,
                                               common=_Offset(1e4)))
    assert got['same']['image_pairs'] == 4  # every image has a label
    # through the identity latent: 1 - cos over channels of the label
    # stacks of image b and image b - 1 at every pixel, averaged, written
    # plainly
    y = same.seen[0]  # the label stack comes first, then the predictions
    expected = []
    for b in range(4):
        dot = (y[b] * y[b - 1]).sum(0)
        cos = dot / (y[b].norm(dim=0) * y[b - 1].norm(dim=0))
        expected.append(float((1 - cos).mean()))
    assert got['same']['dist_images'] == pytest.approx(
        sum(expected) / 4, rel=1e-4)
    assert got['same']['dist_images'] > 0.1 and got['same']['dist'] > 0.1
    # a component common to all inputs hides both from the cosine
    assert got['common']['dist_images'] < 1e-6
    assert got['common']['dist'] < 1e-6
    # a batch of one has no pair
    one = dict(inputs=inputs[:1], data_samples=samples[:1])
    torch.manual_seed(5)
    got = latent_distances(model, [one], dict(same=_Offset(0.0)))
    assert got['same']['image_pairs'] == 0
    assert got['same']['dist_images'] == 0
