# Copyright (c) diffmtl contributors. All rights reserved.
"""projects/jtr/tools/depth_stats.py on generated synthetic scenes: the
pooled depth mean and std of a setting's depth-labelled training images,
against numpy on the files."""
import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest
from mmengine.config import Config

from diffmtl.datasets.synthetic import generate_synthetic_scenes
from projects.jtr.tools.depth_stats import (PooledMoments, format_statistics,
                                            label_statistics, main)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'projects', 'jtr', 'tools', 'depth_stats.py')
BASE = osp.join(REPO, 'configs', '_base_', 'datasets', 'synthetic_scenes.py')


@pytest.fixture(scope='module')
def scenes(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('scenes'))
    generate_synthetic_scenes(root,
                              num_train=24,
                              num_val=2,
                              num_test=0,
                              height=32,
                              width=48,
                              workers=1)
    return root


def config(root):
    cfg = Config.fromfile(BASE)
    cfg.train_dataloader.dataset.data_root = root
    return cfg


def numpy_reference(root, mapping):
    """Depth PNGs of the depth-labelled train ids, / depth_scale, > 0."""
    meta = json.load(open(osp.join(root, 'meta.json')))
    if mapping is None:
        ids = open(osp.join(root, 'splits', 'train.txt')).read().split()
    else:
        labels = json.load(open(osp.join(root, 'mappings', mapping)))['labels']
        ids = [i for i, tasks in labels.items() if 'depth' in tasks]
    values = []
    for i in ids:
        raw = cv2.imread(osp.join(root, 'depth', f'{i}.png'),
                         cv2.IMREAD_UNCHANGED)
        d = raw.astype(np.float64) / meta['depth_scale']
        values.append(d[d > 0])
    values = np.concatenate(values)
    return len(ids), values


@pytest.mark.parametrize('setting,mapping', [('random', 'randomlabels.json'),
                                             ('one', 'onelabel.json'),
                                             ('full', None)])
def test_statistics_match_numpy_on_the_labelled_files(scenes, setting,
                                                      mapping):
    moments = label_statistics(config(scenes), label_setting=setting)
    assert list(moments) == ['depth']
    images, values = numpy_reference(scenes, mapping)
    m = moments['depth']
    assert m.images == images > 0
    assert m.count == values.size
    assert m.mean == pytest.approx(values.mean(), rel=1e-6)
    assert m.std == pytest.approx(values.std(), rel=1e-6)


def test_settings_differ(scenes):
    one = label_statistics(config(scenes), 'one')['depth']
    full = label_statistics(config(scenes), 'full')['depth']
    assert one.images < full.images and one.mean != full.mean


def test_cli_prints_the_config_entry(scenes, capsys):
    main([
        BASE, '--label-setting', 'random', '--cfg-options',
        f'train_dataloader.dataset.data_root={scenes}'
    ])
    lines = capsys.readouterr().out.strip().splitlines()
    entry = lines[-1]
    assert entry.startswith('encodings=dict(depth=dict(mean=')
    got = eval(entry.split('=', 1)[1], {'dict': dict})  # noqa: S307
    _, values = numpy_reference(scenes, 'randomlabels.json')
    assert got['depth']['mean'] == pytest.approx(values.mean(), rel=1e-5)
    assert got['depth']['std'] == pytest.approx(values.std(), rel=1e-5)
    assert 'labelled images' in lines[0]


def test_cli_runs_from_the_repository_root(scenes):
    out = subprocess.run([
        sys.executable, TOOL, BASE, '--cfg-options',
        f'train_dataloader.dataset.data_root={scenes}'
    ],
                         cwd=REPO,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith(
        'encodings=dict(depth=dict(')


def test_config_without_depth_is_refused(scenes):
    cfg = config(scenes)
    cfg.train_dataloader.dataset.tasks = ('semseg', 'normals')
    with pytest.raises(ValueError, match='needs label statistics'):
        label_statistics(cfg)


def test_pooled_moments_equal_numpy_over_chunks():
    rng = np.random.default_rng(0)
    chunks = [rng.normal(3, 2, n) for n in (5, 0, 17, 1, 40)]
    m = PooledMoments()
    for c in chunks:
        m.update(c)
    allv = np.concatenate(chunks)
    assert m.images == 5 and m.count == allv.size
    assert m.mean == pytest.approx(allv.mean(), rel=1e-12)
    assert m.std == pytest.approx(allv.std(), rel=1e-12)
    assert 'depth=dict(mean=' in format_statistics(dict(depth=m))
