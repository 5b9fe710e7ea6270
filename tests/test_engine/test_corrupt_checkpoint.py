# Copyright (c) diffmtl contributors. All rights reserved.
"""Empty, truncated and foreign files are errors that name the file."""
import os
from collections import OrderedDict

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

from diffmtl.engine import (TRUSTED_CHECKPOINTS_ENV, CorruptCheckpointError,
                            UnsafeCheckpointError, load_checkpoint_file)


@pytest.fixture
def good(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save(
        dict(
            meta=dict(iter=3),
            state_dict=OrderedDict(w=torch.arange(4.0), b=torch.ones(300))),
        path)
    return path


def _damaged(tmp_path, good, kind):
    data = good.read_bytes()
    path = tmp_path / f'{kind}.pth'
    if kind == 'empty':
        path.write_bytes(b'')
    elif kind == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    elif kind == 'truncated_tail':
        path.write_bytes(data[:-10])
    elif kind == 'random':
        path.write_bytes(os.urandom(2048))
    elif kind == 'text':
        path.write_text('iter_8.pth\n')
    return path


EXPECTED = {
    'empty': 'empty',
    'truncated': 'truncated',
    'truncated_tail': 'truncated',
    'random': 'not a PyTorch checkpoint',
    'text': 'not a PyTorch checkpoint',
}


@pytest.mark.parametrize('kind', sorted(EXPECTED))
@pytest.mark.parametrize('trusted', [False, True])
def test_damaged_file_is_an_error_naming_it(tmp_path, good, kind, trusted):
    path = _damaged(tmp_path, good, kind)
    with pytest.raises(CorruptCheckpointError) as info:
        load_checkpoint_file(path, trusted=trusted)
    err = info.value
    assert err.filename == str(path)
    assert str(path) in str(err)
    assert EXPECTED[kind] in err.reason
    # never mistaken for an unsafe pickle (the trust opt-in cannot help)
    assert not isinstance(err, UnsafeCheckpointError)
    assert '--trust-checkpoint cannot help' in str(err)


@pytest.mark.parametrize('kind', ['truncated', 'random'])
def test_mmengine_loader_reports_the_file(tmp_path, good, kind, monkeypatch):
    monkeypatch.delenv(TRUSTED_CHECKPOINTS_ENV, raising=False)
    path = _damaged(tmp_path, good, kind)
    with pytest.raises(CorruptCheckpointError, match=str(path)):
        _load_checkpoint(str(path), map_location='cpu')


def test_good_and_legacy_files_still_load(tmp_path, good):
    ckpt = load_checkpoint_file(good)
    assert ckpt['meta'] == dict(iter=3)
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(4.0))
    legacy = tmp_path / 'legacy.pth'
    torch.save(
        dict(state_dict=OrderedDict(w=torch.arange(3.0))),
        legacy,
        _use_new_zipfile_serialization=False)
    ckpt = load_checkpoint_file(legacy)
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.0))


def test_unsafe_pickle_is_still_refused_as_unsafe(tmp_path):
    path = tmp_path / 'unsafe.pth'
    torch.save(dict(state_dict={}, obj=OSError('x')), path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    assert not isinstance(info.value, CorruptCheckpointError)
