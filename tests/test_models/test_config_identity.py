# Copyright (c) diffmtl contributors. All rights reserved.
"""Every experiment config builds exactly the model it was recorded with.

``tests/data/model_fingerprints.json`` (written by
``tools/misc/model_fingerprints.py``) holds, per config, the parameter
count, the ordered state-dict keys with shapes and, for the small
(synthetic-scene) models, a hash of the initial values after
``torch.manual_seed(0)``, building and ``init_weights()``, so that seeded
runs of refactored code start from bit-identical weights. Every config the
script's globs find is checked, so a new config fails until the file is
regenerated. Large models are built on the meta device (structure only),
each distinct model config once.
"""
import json
import os.path as osp

import pytest
import torch
from tool_runner import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
fingerprints = load_tool('tools/misc/model_fingerprints.py')

FILE = osp.join(REPO, fingerprints.DEFAULT_FILE)
with open(FILE) as _f:
    RECORDED = json.load(_f)['configs']
CONFIGS = fingerprints.config_paths(REPO)
#: ``{(model config key, with values): fingerprint}``, shared by configs
#: with the same model.
_CACHE = {}


def _structure(model_cfg):
    try:
        return fingerprints.fingerprint(
            model_cfg, values=False, device='meta')
    except (RuntimeError, NotImplementedError):
        # e.g. MiT's stochastic depth calls .item() while building
        return fingerprints.fingerprint(model_cfg, values=False)


def _fingerprint(model_cfg, values: bool):
    key = (fingerprints.model_key(model_cfg), values)
    if key not in _CACHE:
        torch.set_num_threads(1)
        _CACHE[key] = fingerprints.fingerprint(model_cfg, values=True) \
            if values else _structure(model_cfg)
    return _CACHE[key]


def test_configs_found():
    assert len(CONFIGS) >= 30
    assert any(p.startswith('projects/xtc/') for p in CONFIGS)
    assert any(p.startswith('projects/jtr/') for p in CONFIGS)


@pytest.mark.parametrize('path', CONFIGS)
def test_config_builds_recorded_model(path):
    if path not in RECORDED:
        pytest.fail(f'{path} has no fingerprint in {fingerprints.DEFAULT_FILE}'
                    f'; {fingerprints.REGENERATE}')
    expected = RECORDED[path]
    values = 'values_sha256' in expected
    actual = _fingerprint(fingerprints.model_config(path, REPO), values)
    problems = fingerprints.compare({path: expected}, {path: actual})
    assert not problems, '\n'.join(problems)


def test_no_stale_fingerprints():
    stale = sorted(set(RECORDED) - set(CONFIGS))
    assert not stale, (f'fingerprints of missing configs {stale}; '
                       f'{fingerprints.REGENERATE}')


def test_small_models_hash_values():
    """The synthetic-scene models (the seeded study arms) are the ones
    whose initial values are pinned."""
    for path, fp in RECORDED.items():
        if 'refuses' in fp:
            continue
        small = fp['num_params'] < fingerprints.SMALL_MODEL
        assert small == ('values_sha256' in fp), path
        if 'synthetic' in path:
            assert small, path


def test_refusing_configs_are_only_those_waiting_for_statistics():
    """A recorded refusal is a model waiting for a setting the user must
    compute (JTR's depth statistics of NYUD and Cityscapes), nothing
    else."""
    refusing = sorted(p for p, fp in RECORDED.items() if 'refuses' in fp)
    assert refusing == ['projects/jtr/configs/jtr_cityscapes_one_r18.py',
                        'projects/jtr/configs/jtr_nyud_one_r18.py',
                        'projects/jtr/configs/jtr_nyud_random_r18.py']
    for path in refusing:
        assert 'depth_stats.py' in RECORDED[path]['refuses'], path
