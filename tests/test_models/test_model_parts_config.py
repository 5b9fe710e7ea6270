# Copyright (c) diffmtl contributors. All rights reserved.
"""DiffusionMTL and the MTL baseline build their parts (decoder,
conditioner, schedule, denoiser) from config dicts or modules."""
import os.path as osp

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config

from diffmtl.models.decode_heads import ResidualTaskDecoder
from diffmtl.models.diffusion import (DiffusionSchedule, MultiTaskConditioner,
                                      MultiTaskDenoiser)
from diffmtl.models.segmentors import DiffusionMTL, MultiTaskBaseline
from diffmtl.registry import MODELS
from _mtl_model_utils import (NUM_CLASSES, make_batch, tiny_backbone,
                              tiny_baseline_cfg, tiny_diffusion_cfg)

torch.set_num_threads(1)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TASKS = ('semseg', 'sal', 'normals')
MASKS = [(1, 0, 1), (0, 1, 1), (1, 1, 0)]
NECK = dict(
    type='StageFusionNeck', in_channels=[8, 16, 32, 64], out_channels=16)
DENOISER = dict(num_blocks=1, num_heads=2, token_scale=0.5, head_convs=1,
                step_freq_dim=8)


def _n(tasks=TASKS):
    return {k: v for k, v in NUM_CLASSES.items() if k in tasks}


def _state(model):
    return [(k, v.clone()) for k, v in model.state_dict().items()]


def _same_state(a, b):
    return len(a) == len(b) and all(
        ka == kb and torch.equal(va, vb) for (ka, va), (kb, vb) in zip(a, b))


class MyDenoiser(nn.Module):
    """A replacement denoiser: one 1x1 conv per task plus a step bias;
    takes the arguments DiffusionMTL fills in and its own ``gain``."""

    def __init__(self, tasks, in_channels, channels, out_channels=None,
                 attention='cross', align_corners=False, gain=1.0):
        super().__init__()
        self.filled = dict(tasks=tuple(tasks), in_channels=dict(in_channels),
                           channels=channels, out_channels=out_channels,
                           attention=attention, align_corners=align_corners)
        self.gain = gain
        self.convs = nn.ModuleDict({
            t: nn.Conv2d(in_channels[t], channels if out_channels is None
                         else out_channels[t], 1)
            for t in tasks
        })
        self.step_bias = nn.Embedding(8, 1)
        self.calls = 0

    def forward(self, task, x, t, cond=None):
        self.calls += 1
        out = self.gain * self.convs[task](x)
        return out + self.step_bias(t)[:, :, None, None]


class TwoLayerDecoder(nn.Module):
    """A replacement per-task decoder taking only what the baseline fills
    in (no ``num_blocks`` / ``norm_cfg``)."""

    def __init__(self, channels, out_channels, hidden=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, out_channels, 1))

    def forward(self, x):
        return self.net(x)


@pytest.fixture
def registered():
    MODELS.register_module(name='MyDenoiser', module=MyDenoiser, force=True)
    MODELS.register_module(
        name='TwoLayerDecoder', module=TwoLayerDecoder, force=True)
    yield
    for name in ('MyDenoiser', 'TwoLayerDecoder'):
        MODELS._module_dict.pop(name, None)


def _train_and_predict(model):
    inputs, samples = make_batch(MASKS, tasks=TASKS, num_classes=_n())
    losses = model.loss(inputs, samples)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    model.eval()
    with torch.no_grad():
        out = model.predict(inputs, samples)
    return losses, out


# ----------------------------------------------------------------------
# a custom registered part by config
# ----------------------------------------------------------------------
@pytest.mark.parametrize('mode', ['feature', 'prediction'])
def test_custom_denoiser_by_config(registered, mode):
    model = MODELS.build(
        tiny_diffusion_cfg(
            tasks=TASKS, mode=mode,
            denoiser=dict(type='MyDenoiser', gain=0.5)))
    den = model.denoiser
    assert type(den) is MyDenoiser and den.gain == 0.5
    feature = mode == 'feature'
    n = model.out_channels
    assert den.filled == dict(
        tasks=TASKS,
        in_channels={t: 16 if feature else n[t]
                     for t in TASKS},
        channels=16,
        out_channels=None if feature else dict(n),
        attention='cross',
        align_corners=False)
    # the other parts are the defaults
    assert isinstance(model.schedule, DiffusionSchedule)
    assert isinstance(model.conditioner, MultiTaskConditioner)
    assert model.conditioner.per_task_proj == (not feature)
    losses, out = _train_and_predict(model)
    assert den.calls > 0 and den.convs['sal'].weight.grad is not None
    assert set(losses) >= {f'{t}.loss' for t in TASKS}
    assert len(out) == len(MASKS)


def test_custom_denoiser_from_base_config(registered):
    """Swapping the denoiser of a shipped config by its dict (the
    ``docs/en/models.md`` recipe): a `_delete_` replaces the base's
    MultiTaskDenoiser settings."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models', 'diffmtl_r18.py'))
    cfg.merge_from_dict(
        {'model.denoiser': dict(_delete_=True, type='MyDenoiser', gain=2.0)})
    model_cfg = cfg.model
    model_cfg.pop('data_preprocessor')
    model_cfg.update(
        tasks=TASKS, num_classes=_n(), backbone=tiny_backbone(), neck=NECK,
        channels=16, decoder_blocks=1, norm_cfg=dict(type='BN'))
    model = MODELS.build(model_cfg)
    assert type(model.denoiser) is MyDenoiser
    assert model.denoiser.gain == 2.0
    _train_and_predict(model)


def test_custom_decoder_by_config(registered):
    """A decoder type without ``num_blocks`` / ``norm_cfg`` gets only the
    filled keys while the flat arguments are at their defaults."""
    model = MODELS.build(
        tiny_baseline_cfg(
            tasks=TASKS, num_classes=_n(), num_blocks=6,
            decoder=dict(type='TwoLayerDecoder', hidden=3)))
    for t in TASKS:
        dec = model.decoders[t]
        assert type(dec) is TwoLayerDecoder
        assert dec.net[0].out_channels == 3
        assert dec.net[2].out_channels == model.out_channels[t]
    _train_and_predict(model)
    # a changed flat argument is passed on (and refused by that class)
    with pytest.raises(TypeError, match='num_blocks'):
        MODELS.build(
            tiny_baseline_cfg(
                tasks=TASKS, num_classes=_n(), num_blocks=3,
                decoder=dict(type='TwoLayerDecoder')))


def test_untyped_denoiser_dict_is_multitask_denoiser():
    """The old "extra MultiTaskDenoiser kwargs" dict keeps working."""
    model = MODELS.build(tiny_diffusion_cfg(tasks=TASKS))
    assert type(model.denoiser) is MultiTaskDenoiser
    assert len(model.denoiser.blocks) == 2  # tiny_diffusion_cfg's num_blocks


# ----------------------------------------------------------------------
# built modules
# ----------------------------------------------------------------------
def test_parts_from_instances():
    n = {'semseg': 5, 'sal': 2, 'normals': 3}
    den = MultiTaskDenoiser(TASKS, {t: 16 for t in TASKS}, 16, **DENOISER)
    sched = DiffusionSchedule(num_steps=2, beta_end=2e-2)
    cond = MultiTaskConditioner([n[t] for t in TASKS], 16)
    decoders = nn.ModuleDict(
        {t: ResidualTaskDecoder(16, 1, dict(type='BN'))
         for t in TASKS})
    model = DiffusionMTL(
        tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
        num_classes=_n(), channels=16, denoiser=den, schedule=sched,
        conditioner=cond, decoder=decoders)
    assert model.denoiser is den and model.schedule is sched
    assert model.conditioner is cond and model.num_steps == 2
    assert all(model.decoders[t] is decoders[t] for t in TASKS)
    assert model.out_channels == n
    _train_and_predict(model)
    # one module for every task is refused (the tasks would share it)
    with pytest.raises(TypeError, match='per-task'):
        DiffusionMTL(
            tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
            num_classes=_n(), channels=16, denoiser=DENOISER,
            decoder=ResidualTaskDecoder(16, 1))
    with pytest.raises(KeyError, match='decoder modules'):
        DiffusionMTL(
            tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
            num_classes=_n(), channels=16, denoiser=DENOISER,
            decoder={'sal': ResidualTaskDecoder(16, 1)})
    with pytest.raises(ValueError, match='multi_task_condition=False'):
        DiffusionMTL(
            tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
            num_classes=_n(), channels=16, denoiser=DENOISER,
            conditioner=cond, multi_task_condition=False)


def test_baseline_decoders_from_instances():
    decoders = {
        t: ResidualTaskDecoder(16, 1, out_channels=c)
        for t, c in dict(semseg=5, sal=2, normals=3).items()
    }
    model = MultiTaskBaseline(
        tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
        num_classes=_n(), channels=16, decoder=decoders)
    assert all(model.decoders[t] is decoders[t] for t in TASKS)
    _train_and_predict(model)


# ----------------------------------------------------------------------
# flat arguments and part keys
# ----------------------------------------------------------------------
def test_flat_and_dict_conflict():
    with pytest.raises(ValueError,
                       match=r'num_steps=3 .*schedule\.num_steps=4'):
        MODELS.build(
            tiny_diffusion_cfg(
                num_steps=3,
                schedule=dict(type='DiffusionSchedule', num_steps=4)))
    with pytest.raises(ValueError,
                       match=r"beta_schedule='sqrt_linear'.*"
                       r"schedule\.beta_schedule='linear'"):
        MODELS.build(
            tiny_diffusion_cfg(
                beta_schedule='sqrt_linear',
                schedule=dict(beta_schedule='linear')))
    with pytest.raises(ValueError,
                       match=r'decoder_blocks=1 .*decoder\.num_blocks=3'):
        MODELS.build(tiny_diffusion_cfg(decoder=dict(num_blocks=3)))
    with pytest.raises(ValueError, match=r'norm_cfg=.*decoder\.norm_cfg='):
        MODELS.build(
            tiny_diffusion_cfg(
                norm_cfg=dict(type='BN'),
                decoder=dict(norm_cfg=dict(type='GN', num_groups=4))))
    with pytest.raises(ValueError,
                       match=r'num_blocks=3 .*decoder\.num_blocks'):
        MODELS.build(
            tiny_baseline_cfg(num_blocks=3, decoder=dict(num_blocks=2)))
    # what the model fills in may not be contradicted either
    with pytest.raises(ValueError,
                       match=r'denoiser\.channels=8 .*channels=16'):
        MODELS.build(tiny_diffusion_cfg(denoiser=dict(DENOISER, channels=8)))
    with pytest.raises(ValueError,
                       match=r"denoiser\.attention='self'.*"
                       r'multi_task_condition=True'):
        MODELS.build(
            tiny_diffusion_cfg(denoiser=dict(DENOISER, attention='self')))
    with pytest.raises(ValueError,
                       match=r"decoder\.out_channels=2 .*'semseg'"):
        MODELS.build(tiny_baseline_cfg(decoder=dict(out_channels=2)))


def test_flat_and_dict_agree():
    """Equal values do not conflict; a flat argument at its default lets
    the part dict decide (as the base configs' flat keys do)."""
    model = MODELS.build(
        tiny_diffusion_cfg(
            num_steps=3, beta_schedule='sqrt_linear',
            schedule=dict(num_steps=3, beta_schedule='sqrt_linear')))
    assert model.num_steps == 3
    assert model.schedule.beta_schedule == 'sqrt_linear'
    model = MODELS.build(
        tiny_diffusion_cfg(
            num_steps=2, decoder_blocks=2,
            schedule=dict(num_steps=4), decoder=dict(num_blocks=3)))
    assert model.num_steps == 4
    assert len(model.decoders['sal'].blocks) == 3
    # the conditioner's projection follows mode unless stated
    model = MODELS.build(
        tiny_diffusion_cfg(conditioner=dict(per_task_proj=True)))
    assert model.mode == 'feature' and model.conditioner.per_task_proj


def test_base_config_flat_override_and_conflict():
    """On a shipped base config, the flat keys still set the parts and a
    flat key plus a part key that disagree raise."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models', 'diffmtl_r18.py'))
    model_cfg = cfg.model
    assert model_cfg.denoiser.type == 'MultiTaskDenoiser'
    assert model_cfg.schedule.type == 'DiffusionSchedule'
    assert model_cfg.conditioner.type == 'MultiTaskConditioner'
    assert model_cfg.decoder.type == 'ResidualTaskDecoder'
    model_cfg.pop('data_preprocessor')
    model_cfg.update(
        tasks=TASKS, num_classes=_n(), backbone=tiny_backbone(), neck=NECK,
        channels=16, decoder_blocks=1, norm_cfg=dict(type='BN'),
        num_steps=3, denoiser=dict(DENOISER, type='MultiTaskDenoiser'))
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    assert model.num_steps == 3 and len(model.decoders['sal'].blocks) == 1
    model_cfg.schedule = dict(type='DiffusionSchedule', num_steps=5)
    with pytest.raises(ValueError, match='num_steps=3'):
        MODELS.build(model_cfg)


# ----------------------------------------------------------------------
# the flat-argument constructor, without any config
# ----------------------------------------------------------------------
def test_flat_constructor_without_config():
    kwargs = dict(
        tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
        num_classes=_n(), mode='prediction', channels=16, decoder_blocks=1,
        norm_cfg=dict(type='BN'), num_steps=3, beta_start=2e-3,
        beta_end=2e-2, beta_schedule='sqrt_linear')
    torch.manual_seed(0)
    flat = DiffusionMTL(denoiser=DENOISER, **kwargs)
    assert len(flat.decoders['sal'].blocks) == 1
    assert flat.num_steps == 3 and flat.schedule.beta_schedule == 'sqrt_linear'
    assert torch.allclose(flat.schedule.betas,
                          torch.linspace(2e-3, 2e-2, 3))
    assert type(flat.denoiser) is MultiTaskDenoiser
    assert flat.conditioner.per_task_proj
    _train_and_predict(flat)
    # the same model as the one given by its part dicts, value for value
    parts = dict(kwargs)
    for key in ('decoder_blocks', 'norm_cfg', 'num_steps', 'beta_start',
                'beta_end', 'beta_schedule'):
        parts.pop(key)
    torch.manual_seed(0)
    flat = DiffusionMTL(denoiser=DENOISER, **kwargs)
    torch.manual_seed(0)
    by_dict = DiffusionMTL(
        decoder=dict(type='ResidualTaskDecoder', num_blocks=1,
                     norm_cfg=dict(type='BN')),
        conditioner=dict(type='MultiTaskConditioner', per_task_proj=True),
        schedule=dict(type='DiffusionSchedule', num_steps=3,
                      beta_start=2e-3, beta_end=2e-2,
                      beta_schedule='sqrt_linear'),
        denoiser=dict(DENOISER, type='MultiTaskDenoiser'),
        **parts)
    assert _same_state(_state(flat), _state(by_dict))


def test_baseline_flat_constructor_without_config():
    kwargs = dict(tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
                  num_classes=_n(), channels=16)
    torch.manual_seed(0)
    flat = MultiTaskBaseline(num_blocks=2, norm_cfg=dict(type='BN'),
                             **kwargs)
    assert len(flat.decoders['normals'].blocks) == 2
    assert flat.decoders['normals'].head.out_channels == 3
    _train_and_predict(flat)
    torch.manual_seed(0)
    flat = MultiTaskBaseline(num_blocks=2, norm_cfg=dict(type='BN'),
                             **kwargs)
    torch.manual_seed(0)
    by_dict = MultiTaskBaseline(
        decoder=dict(type='ResidualTaskDecoder', num_blocks=2,
                     norm_cfg=dict(type='BN')), **kwargs)
    assert _same_state(_state(flat), _state(by_dict))
    # the default: 6 blocks
    with torch.device('meta'):
        default = MultiTaskBaseline(**kwargs)
    assert len(default.decoders['sal'].blocks) == 6
