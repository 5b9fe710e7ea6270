# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.engine.checkpoint: weights_only loading of mmengine checkpoints."""
import logging
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.logging import HistoryBuffer, MMLogger
from mmengine.runner import CheckpointLoader, Runner

from diffmtl.engine import (TRUSTED_CHECKPOINTS_ENV, UnsafeCheckpointError,
                            load_checkpoint_file, load_from_http,
                            load_from_local)

TOY_CFG = (
    Path(__file__).resolve().parents[1] / 'data' / 'configs' /
    'toy_regression.py')


class ForeignObject:
    """A non-allow-listed object; unpickling it creates a directory."""

    def __init__(self, marker_dir):
        self.marker_dir = str(marker_dir)

    def __reduce__(self):
        return (os.makedirs, (self.marker_dir, ))


class GetattrProbe:
    """Unpickles as ``getattr(HistoryBuffer, name)``."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        return (getattr, (HistoryBuffer, self.name))


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append((record.levelno, record.getMessage()))


@pytest.fixture
def log_records():
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint written by a real mmengine Runner (2 toy iterations)."""
    torch.set_num_threads(1)
    work_dir = tmp_path_factory.mktemp('ckpt_runner')
    cfg = Config.fromfile(str(TOY_CFG))
    cfg.work_dir = str(work_dir)
    cfg.train_cfg.max_iters = 2
    cfg.train_cfg.val_interval = 2
    cfg.default_hooks.checkpoint.interval = 2
    cfg.experiment_name = 'safe_checkpoint_test'
    runner = Runner.from_cfg(cfg)
    runner.train()
    weight = runner.model.linear.weight.detach().clone()
    return work_dir / 'iter_2.pth', weight


def test_scheme_replaces_mmengine_local_and_http_loaders():
    assert CheckpointLoader._get_checkpoint_loader('/x/y.pth') is \
        load_from_local
    assert CheckpointLoader._get_checkpoint_loader(
        'https://host/r18.pth') is load_from_http
    assert CheckpointLoader._get_checkpoint_loader(
        'http://host/r18.pth') is load_from_http


@pytest.mark.slow
def test_runner_checkpoint_needs_the_allow_list(runner_checkpoint):
    path, _ = runner_checkpoint
    # plain weights_only=True (torch's default) refuses mmengine checkpoints
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer'):
        torch.load(path, weights_only=True)


@pytest.mark.slow
def test_runner_checkpoint_loads_safely(runner_checkpoint, monkeypatch):
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    path, weight = runner_checkpoint
    ckpt = CheckpointLoader.load_checkpoint(str(path), map_location='cpu')
    assert set(ckpt) >= {
        'meta', 'state_dict', 'message_hub', 'optimizer', 'param_schedulers'
    }
    assert ckpt['meta']['iter'] == 2
    assert ckpt['meta']['dataset_meta'] == dict(
        classes=('target', ), palette=[[255, 0, 0]])
    torch.testing.assert_close(ckpt['state_dict']['linear.weight'], weight)
    # the message hub's history buffers came back as real objects
    loss_buffer = ckpt['message_hub']['log_scalars']['train/loss']
    assert len(loss_buffer.data[0]) == 2
    assert np.isfinite(loss_buffer.data[0]).all()


def test_numpy_values_load_safely(tmp_path):
    path = tmp_path / 'numpy.pth'
    meta = dict(
        f32=np.float32(1.5),
        f64=np.float64(2.5),
        i64=np.int64(7),
        arr=np.arange(6, dtype=np.int32).reshape(2, 3),
        flags=np.array([True, False]),
        dt=np.dtype('uint8'))
    torch.save(dict(meta=meta, state_dict=OrderedDict(w=torch.ones(2))), path)
    ckpt = load_checkpoint_file(path)
    assert ckpt['meta']['f32'] == np.float32(1.5)
    assert ckpt['meta']['f32'].dtype == np.float32
    assert ckpt['meta']['i64'] == 7
    np.testing.assert_array_equal(ckpt['meta']['arr'],
                                  np.arange(6).reshape(2, 3))
    assert ckpt['meta']['arr'].dtype == np.int32
    assert ckpt['meta']['flags'].tolist() == [True, False]
    assert ckpt['meta']['dt'] == np.dtype('uint8')


def test_foreign_object_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'foreign.pth'
    torch.save(
        dict(
            state_dict=OrderedDict(w=torch.ones(2)),
            meta=dict(x=ForeignObject(marker))), path)
    with pytest.raises(UnsafeCheckpointError) as info:
        CheckpointLoader.load_checkpoint(str(path))
    message = str(info.value)
    assert str(path) in message
    assert 'os.makedirs' in message or 'posix.makedirs' in message
    assert TRUSTED_CHECKPOINTS_ENV in message
    assert '--trust-checkpoint' in message
    assert info.value.filename == str(path)
    assert info.value.unsafe_globals in (['os.makedirs'], ['posix.makedirs'])
    assert not marker.exists(), 'the refused pickle ran code'


def test_foreign_class_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    path = tmp_path / 'foreign_cls.pth'
    torch.save(dict(meta=dict(cfg=Config(dict(a=1)))), path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    assert 'mmengine.config.config.Config' in info.value.unsafe_globals
    assert 'mmengine.config.config.Config' in str(info.value)


def test_getattr_is_restricted_to_history_buffer_statistics(
        tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    path = tmp_path / 'getattr_ok.pth'
    torch.save(dict(m=GetattrProbe('mean')), path)
    assert load_checkpoint_file(path)['m'] is HistoryBuffer.mean

    path = tmp_path / 'getattr_bad.pth'
    torch.save(dict(m=GetattrProbe('__init__')), path)
    with pytest.raises(UnsafeCheckpointError, match='__init__') as info:
        load_checkpoint_file(path)
    assert 'is not allowed' in str(info.value)
    assert str(path) in str(info.value)


def test_trusted_opt_in_loads_and_logs(tmp_path, monkeypatch, log_records):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'foreign.pth'
    torch.save(dict(meta=dict(x=ForeignObject(marker))), path)

    monkeypatch.setenv(TRUSTED_CHECKPOINTS_ENV, '1')
    CheckpointLoader.load_checkpoint(str(path))
    assert marker.is_dir(), 'trusted load should unpickle everything'
    warnings = [m for lvl, m in log_records if lvl == logging.WARNING]
    assert any('weights_only=False' in m and str(path) in m
               for m in warnings), log_records

    # the function argument overrides the environment both ways
    os.rmdir(marker)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint_file(path, trusted=False)
    assert not marker.exists()
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV)
    load_checkpoint_file(path, trusted=True)
    assert marker.is_dir()


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CheckpointLoader.load_checkpoint(str(tmp_path / 'nope.pth'))


def test_url_loader_downloads_once_and_loads_safely(tmp_path, monkeypatch):
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    src = tmp_path / 'r18.pth'
    torch.save(OrderedDict(w=torch.arange(3.)), src)
    cache = tmp_path / 'cache'
    # a file:// URL exercises the same download + load path as https://
    ckpt = load_from_http(src.as_uri(), model_dir=str(cache))
    torch.testing.assert_close(ckpt['w'], torch.arange(3.))
    assert (cache / 'r18.pth').is_file()
    src.unlink()  # the second call uses the cached download
    assert load_from_http(src.as_uri(), model_dir=str(cache))['w'][2] == 2

    evil = tmp_path / 'evil.pth'
    torch.save(dict(x=ForeignObject(tmp_path / 'ran')), evil)
    with pytest.raises(UnsafeCheckpointError, match='makedirs'):
        load_from_http(evil.as_uri(), model_dir=str(cache))
    assert not (tmp_path / 'ran').exists()


def _planted(tmp_path):
    """A checkpoint whose unpickling would create ``<tmp>/ran``."""
    marker = tmp_path / 'ran'
    path = tmp_path / 'planted.pth'
    torch.save(dict(state_dict=OrderedDict(w=torch.ones(2)),
                    meta=dict(x=ForeignObject(marker))), path)
    return path, marker


@pytest.mark.parametrize('scheme', ['torchvision://', 'modelzoo://',
                                    'open-mmlab://', 'openmmlab://',
                                    'mmcls://'])
def test_named_model_schemes_load_through_the_safe_loader(
        tmp_path, monkeypatch, scheme):
    """Every mmengine scheme that resolves a model name to a URL loads
    through diffmtl's HTTP loader on the installed stack: a planted
    code-running checkpoint is refused and runs nothing."""
    from mmengine.runner import checkpoint as mm_checkpoint

    from diffmtl.engine import checkpoint as safe
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    path, marker = _planted(tmp_path)
    url = 'https://models.invalid/planted.pth'
    for getter in ('get_torchvision_models', 'get_external_models',
                   'get_mmcls_models', 'get_deprecated_model_names'):
        if hasattr(mm_checkpoint, getter):
            monkeypatch.setattr(
                mm_checkpoint, getter,
                lambda g=getter: {} if 'deprecated' in g else {'planted': url})
    downloads = []

    def fake_download(u, model_dir):
        downloads.append(u)
        return str(path)

    monkeypatch.setattr(safe, '_download', fake_download)
    with pytest.raises(UnsafeCheckpointError, match='makedirs'):
        CheckpointLoader.load_checkpoint(f'{scheme}planted')
    assert downloads == [url]
    assert not marker.exists(), 'the planted pickle ran code'


def test_mmengine_internal_loaders_are_diffmtl_s():
    """The names mmengine's own loaders call are diffmtl's, whichever
    stack is installed (the OneDL mmengine also has ``_safe_torch_load``,
    which would fall back to ``weights_only=False``)."""
    from mmengine.runner import checkpoint as mm_checkpoint

    from diffmtl.engine import checkpoint as safe
    from diffmtl.stack import mm_stack
    assert mm_checkpoint.load_from_http is load_from_http
    if mm_stack() == 'onedl':
        assert mm_checkpoint._safe_torch_load is safe._mmengine_torch_load


def test_onedl_torch_load_refuses_planted_pickle(tmp_path, monkeypatch):
    """The OneDL mmengine's pavi://, s3:// and local open-mmlab:// loaders
    go through its ``_safe_torch_load``; with diffmtl imported it refuses
    a planted pickle (the stand-in is called directly on the upstream
    stack, which has no such function)."""
    from mmengine.runner import checkpoint as mm_checkpoint

    from diffmtl.engine import checkpoint as safe
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    path, marker = _planted(tmp_path)
    load = getattr(mm_checkpoint, '_safe_torch_load',
                   safe._mmengine_torch_load)
    with open(path, 'rb') as f:  # ceph / pavi hand over a buffer
        with pytest.raises(UnsafeCheckpointError, match='<buffer>'):
            load(f, map_location='cpu')
    with pytest.raises(UnsafeCheckpointError, match='planted.pth'):
        load(str(path), map_location='cpu', weights_only=None)
    assert not marker.exists(), 'the planted pickle ran code'
