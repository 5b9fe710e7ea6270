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
        channels=16)
    model_cfg.decoder.update(num_blocks=1, norm_cfg=dict(type='BN'))
    model = MODELS.build(model_cfg)
    assert type(model.denoiser) is MyDenoiser
    assert model.denoiser.gain == 2.0
    _train_and_predict(model)


def test_custom_decoder_by_config(registered):
    """A decoder type without ``num_blocks`` / ``norm_cfg`` gets only the
    keys the model sets (the baseline's default depth is a
    ``ResidualTaskDecoder`` setting)."""
    model = MODELS.build(
        tiny_baseline_cfg(
            tasks=TASKS, num_classes=_n(),
            decoder=dict(type='TwoLayerDecoder', hidden=3)))
    for t in TASKS:
        dec = model.decoders[t]
        assert type(dec) is TwoLayerDecoder
        assert dec.net[0].out_channels == 3
        assert dec.net[2].out_channels == model.out_channels[t]
    _train_and_predict(model)
    # a setting the class lacks is refused by that class
    with pytest.raises(TypeError, match='num_blocks'):
        MODELS.build(
            tiny_baseline_cfg(
                tasks=TASKS, num_classes=_n(),
                decoder=dict(type='TwoLayerDecoder', num_blocks=3)))


def test_untyped_denoiser_dict_is_multitask_denoiser():
    """A part dict without ``type`` is of the default part class."""
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
# a part's settings are keys of its dict only
# ----------------------------------------------------------------------
@pytest.mark.parametrize('name,key,value', [
    ('decoder_blocks', 'decoder.num_blocks', 5),
    ('norm_cfg', 'decoder.norm_cfg', dict(type='BN')),
    ('num_steps', 'schedule.num_steps', 3),
    ('beta_start', 'schedule.beta_start', 2e-3),
    ('beta_end', 'schedule.beta_end', 2e-2),
    ('beta_schedule', 'schedule.beta_schedule', 'sqrt_linear'),
])
def test_part_setting_is_not_an_argument(name, key, value):
    part, option = key.split('.')
    with pytest.raises(TypeError) as info:
        MODELS.build(tiny_diffusion_cfg(**{name: value}))
    msg = str(info.value)
    assert msg.startswith(f'DiffusionMTL: `{name}` moved to `{key}`; write '
                          f'{part}=dict({option}={value!r})')
    assert f'--cfg-options model.{key}={value!r}' in msg
    assert DiffusionMTL.PART_SETTINGS[name] == key


@pytest.mark.parametrize('cls', ['MultiTaskBaseline', 'XTCMultiTaskBaseline'])
@pytest.mark.parametrize('name', ['num_blocks', 'norm_cfg'])
def test_baseline_part_setting_is_not_an_argument(cls, name):
    import projects.xtc.xtc  # noqa: F401  (registers XTCMultiTaskBaseline)
    with pytest.raises(TypeError,
                       match=rf'^{cls}: `{name}` moved to '
                       rf'`decoder\.{name}`; write decoder=dict\({name}='):
        MODELS.build(tiny_baseline_cfg(type=cls, **{name: 3}))


def test_study_cfg_option_sets_the_part():
    """``--cfg-options model.decoder.num_blocks=5`` on a shipped config
    (the one-label study's decoder-depth arm)."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'diffmtl', 'synthetic_one_r18.py'))
    cfg.merge_from_dict({'model.decoder.num_blocks': 5})
    cfg.model.pop('data_preprocessor')
    assert cfg.model.decoder == dict(
        type='ResidualTaskDecoder', num_blocks=5,
        norm_cfg=dict(type='BN', requires_grad=True))
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert len(model.decoders['sal'].blocks) == 5
    cfg.merge_from_dict({'model.decoder_blocks': 5})
    with pytest.raises(TypeError, match='model.decoder.num_blocks=5'):
        MODELS.build(cfg.model)


def test_constructors_are_keyword_only():
    import inspect

    import projects.xtc.xtc as xtc
    from diffmtl.models.segmentors.base_multitask import \
        BaseMultiTaskSegmentor
    for cls in (BaseMultiTaskSegmentor, DiffusionMTL, MultiTaskBaseline,
                xtc.XTCMultiTaskBaseline):
        params = list(inspect.signature(cls.__init__).parameters.values())
        assert all(p.kind is p.KEYWORD_ONLY for p in params[1:]), cls
        names = {p.name for p in params}
        assert not names & set(getattr(cls, 'PART_SETTINGS', {})), cls
    with pytest.raises(TypeError):
        MultiTaskBaseline(TASKS, tiny_backbone())


def test_model_set_keys_are_refused():
    """What the model sets may not be stated in a part dict, not even
    with the value the model would set."""
    with pytest.raises(ValueError,
                       match=r'denoiser\.channels=8 .*channels=16'):
        MODELS.build(tiny_diffusion_cfg(denoiser=dict(DENOISER, channels=8)))
    with pytest.raises(ValueError,
                       match=r'denoiser\.channels=16 .*channels=16.*'
                       r'remove denoiser\.channels'):
        MODELS.build(
            tiny_diffusion_cfg(denoiser=dict(DENOISER, channels=16)))
    with pytest.raises(ValueError,
                       match=r"denoiser\.attention='self'.*"
                       r'multi_task_condition=True'):
        MODELS.build(
            tiny_diffusion_cfg(denoiser=dict(DENOISER, attention='self')))
    with pytest.raises(ValueError,
                       match=r"decoder\.out_channels=2 .*'semseg'"):
        MODELS.build(tiny_baseline_cfg(decoder=dict(out_channels=2)))
    with pytest.raises(ValueError, match=r'decoder\.channels=16'):
        MODELS.build(tiny_diffusion_cfg(decoder=dict(channels=16)))


def test_part_defaults():
    """Unstated keys take the part class's defaults; the baseline's
    ``ResidualTaskDecoder`` has 6 blocks unless stated; the conditioner's
    projection follows ``mode`` unless stated."""
    model = MODELS.build(
        tiny_diffusion_cfg(
            schedule=dict(num_steps=3, beta_schedule='sqrt_linear'),
            decoder=dict(num_blocks=3)))
    assert model.num_steps == 3
    assert model.schedule.beta_schedule == 'sqrt_linear'
    assert len(model.decoders['sal'].blocks) == 3
    with torch.device('meta'):
        model = MODELS.build(tiny_diffusion_cfg(decoder=None, schedule=None))
    assert model.num_steps == 2 and len(model.decoders['sal'].blocks) == 2
    model = MODELS.build(
        tiny_diffusion_cfg(conditioner=dict(per_task_proj=True)))
    assert model.mode == 'feature' and model.conditioner.per_task_proj
    with torch.device('meta'):
        for decoder in (None, dict(norm_cfg=dict(type='BN')),
                        dict(type='ResidualTaskDecoder')):
            model = MODELS.build(tiny_baseline_cfg(decoder=decoder))
            assert len(model.decoders['sal'].blocks) == 6, decoder


def test_base_config_parts():
    """A shipped base config states each part's settings in its dict."""
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models', 'diffmtl_r18.py'))
    model_cfg = cfg.model
    assert model_cfg.denoiser.type == 'MultiTaskDenoiser'
    assert model_cfg.schedule == dict(
        type='DiffusionSchedule', num_steps=2, beta_start=1e-3,
        beta_end=1e-2, beta_schedule='linear')
    assert model_cfg.conditioner.type == 'MultiTaskConditioner'
    assert model_cfg.decoder == dict(
        type='ResidualTaskDecoder', num_blocks=2,
        norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert not set(model_cfg) & set(DiffusionMTL.PART_SETTINGS)
    model_cfg.pop('data_preprocessor')
    model_cfg.update(
        tasks=TASKS, num_classes=_n(), backbone=tiny_backbone(), neck=NECK,
        channels=16, denoiser=dict(DENOISER, type='MultiTaskDenoiser'))
    model_cfg.decoder.update(num_blocks=1, norm_cfg=dict(type='BN'))
    model_cfg.schedule.num_steps = 3
    with torch.device('meta'):
        model = MODELS.build(model_cfg)
    assert model.num_steps == 3 and len(model.decoders['sal'].blocks) == 1
    baseline = Config.fromfile(
        osp.join(REPO, 'configs', '_base_', 'models',
                 'mtl_baseline_r18.py')).model
    assert baseline.decoder == dict(
        type='ResidualTaskDecoder', num_blocks=6,
        norm_cfg=dict(type='SyncBN', requires_grad=True))
    assert not set(baseline) & set(MultiTaskBaseline.PART_SETTINGS)


# ----------------------------------------------------------------------
# the constructor, without any config
# ----------------------------------------------------------------------
def test_constructor_without_config():
    torch.manual_seed(0)
    model = DiffusionMTL(
        tasks=TASKS, backbone=tiny_backbone(), neck=NECK, num_classes=_n(),
        mode='prediction', channels=16,
        decoder=dict(num_blocks=1, norm_cfg=dict(type='BN')),
        schedule=dict(num_steps=3, beta_start=2e-3, beta_end=2e-2,
                      beta_schedule='sqrt_linear'),
        denoiser=DENOISER)
    assert len(model.decoders['sal'].blocks) == 1
    assert model.num_steps == 3
    assert model.schedule.beta_schedule == 'sqrt_linear'
    assert torch.allclose(model.schedule.betas,
                          torch.linspace(2e-3, 2e-2, 3))
    assert type(model.denoiser) is MultiTaskDenoiser
    assert model.conditioner.per_task_proj
    _train_and_predict(model)


def test_baseline_constructor_without_config():
    kwargs = dict(tasks=TASKS, backbone=tiny_backbone(), neck=NECK,
                  num_classes=_n(), channels=16)
    model = MultiTaskBaseline(
        decoder=dict(num_blocks=2, norm_cfg=dict(type='BN')), **kwargs)
    assert len(model.decoders['normals'].blocks) == 2
    assert model.decoders['normals'].head.out_channels == 3
    _train_and_predict(model)
    # the default: 6 blocks
    with torch.device('meta'):
        default = MultiTaskBaseline(**kwargs)
    assert len(default.decoders['sal'].blocks) == 6


def test_backbone_and_neck_modules():
    """The backbone and the neck are parts too: a config or a module."""
    torch.manual_seed(0)
    by_cfg = MultiTaskBaseline(
        tasks=TASKS, backbone=tiny_backbone(), neck=NECK, num_classes=_n(),
        channels=16, decoder=dict(num_blocks=1))
    backbone, neck = MODELS.build(tiny_backbone()), MODELS.build(NECK)
    model = MultiTaskBaseline(
        tasks=TASKS, backbone=backbone, neck=neck, num_classes=_n(),
        channels=16, decoder=dict(num_blocks=1))
    assert model.backbone is backbone and model.neck is neck
    assert model.state_dict().keys() == by_cfg.state_dict().keys()
    _train_and_predict(model)
