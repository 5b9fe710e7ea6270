# Copyright (c) diffmtl contributors. All rights reserved.
import json
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from tool_runner import load_tool

from diffmtl.datasets import (check_mapping_matches_split, dump_label_mapping,
                              generate_label_mapping, label_mapping_stats,
                              load_label_mapping)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SSL = osp.join(REPO, '..', 'shared', 'data', 'ssl_mapping')
PASCAL = ('semseg', 'human_parts', 'sal', 'normals', 'edge')
NYUD = ('semseg', 'depth', 'normals')
CITY = ('semseg', 'depth')


def _converter():
    return load_tool('tools/dataset_converters/convert_label_mapping.py')


# --------------------------------------------------------------- generation
def test_generate_one_label_balanced_and_seeded():
    ids = [f'im{i:02d}' for i in range(11)]
    m = generate_label_mapping(ids, NYUD, 'one', seed=3)
    assert set(m) == set(ids)
    assert all(sum(v) == 1 for v in m.values())
    counts = sorted(label_mapping_stats(m, NYUD)['per_task'].values())
    assert counts == [3, 4, 4]
    # Same seed, shuffled input order -> same mapping; other seed differs.
    assert generate_label_mapping(ids[::-1], NYUD, 'one', seed=3) == m
    others = [generate_label_mapping(ids, NYUD, 'one', seed=s)
              for s in range(4, 9)]
    assert any(o != m for o in others)


def test_generate_random_never_empty_never_all():
    ids = [str(i) for i in range(300)]
    m = generate_label_mapping(ids, PASCAL, 'random', seed=0)
    sizes = [sum(v) for v in m.values()]
    assert min(sizes) == 1 and max(sizes) == len(PASCAL) - 1
    hist = label_mapping_stats(m, PASCAL)['labels_per_image']
    assert hist[0] == 0 and hist[5] == 0
    # k is uniform in 1..T-1: every size is drawn a fair share of 300.
    assert all(40 < hist[k] < 110 for k in (1, 2, 3, 4))
    one = generate_label_mapping(ids, ('semseg', ), 'random', seed=0)
    assert all(v == (True, ) for v in one.values())
    full = generate_label_mapping(ids[:4], CITY, 'full')
    assert full == {i: (True, True) for i in ids[:4]}
    with pytest.raises(ValueError, match='unknown label setting'):
        generate_label_mapping(ids, CITY, 'half')


# ------------------------------------------------------------------ formats
def test_json_roundtrip_and_reorder(tmp_path):
    m = {'a': (True, False, True), 'b': (False, True, False)}
    path = str(tmp_path / 'm.json')
    dump_label_mapping(m, NYUD, path)
    with open(path) as f:
        raw = json.load(f)
    assert raw['labels'] == {'a': ['semseg', 'normals'], 'b': ['depth']}
    assert load_label_mapping(path, NYUD) == m
    # Another task order / subset projects by name.
    assert load_label_mapping(path, ('normals', 'semseg')) == {
        'a': (True, True),
        'b': (False, False)
    }
    with pytest.raises(ValueError, match="asks for \\['edge'\\]"):
        load_label_mapping(path, ('semseg', 'edge'))


def test_npy_task_lists_loaded_safely(tmp_path):
    obj = {
        'edge': [np.str_('x1')],
        'semseg': [np.str_('x2'), np.str_('x3')],
        'human_parts': [], 'normals': [np.str_('x3')], 'sal': []
    }
    path = str(tmp_path / 'onelabel.npy')
    np.save(path, np.array(obj, dtype=object), allow_pickle=True)
    m = load_label_mapping(path, PASCAL)
    assert m == {
        'x1': (False, False, False, False, True),
        'x2': (True, False, False, False, False),
        'x3': (True, False, False, True, False)
    }


def test_npy_with_foreign_globals_is_refused(tmp_path):
    path = str(tmp_path / 'evil.npy')
    # complex() pickles as a builtins global: not a numpy reconstructor.
    np.save(path, np.array({'semseg': [complex(1, 2)]}, dtype=object),
            allow_pickle=True)
    with pytest.raises(ValueError, match='convert it once'):
        load_label_mapping(path, ('semseg', ))


def test_pth_tensor_rows(tmp_path):
    path = str(tmp_path / 'onelabel.pth')
    torch.save({'labels_weights': torch.tensor([[1., 0.], [0., 1.],
                                                [1., 1.]])}, path)
    m = load_label_mapping(path, CITY)
    assert m == {'0': (True, False), '1': (False, True), '2': (True, True)}
    # Columns follow file_tasks; the result follows tasks.
    m2 = load_label_mapping(path, ('depth', ), file_tasks=CITY)
    assert m2 == {'0': (False, ), '1': (True, ), '2': (True, )}
    with pytest.raises(ValueError, match='2 columns'):
        load_label_mapping(path, NYUD)


def test_pickled_pth_points_to_converter(tmp_path):
    path = str(tmp_path / 'new_onelabel.pth')
    torch.save({np.str_('2008_000002'): [1, 0, 0, 0, 0]}, path)
    with pytest.raises(ValueError, match='convert_label_mapping.py'):
        load_label_mapping(path, PASCAL)
    out = str(tmp_path / 'onelabel.json')
    mapping, tasks = _converter().convert_label_mapping(path, out)
    assert tasks == PASCAL
    assert load_label_mapping(out, PASCAL) == {
        '2008_000002': (True, False, False, False, False)
    }


def test_missing_file_and_bad_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothere.json'):
        load_label_mapping(str(tmp_path / 'nothere.json'), CITY)
    bad = tmp_path / 'm.txt'
    bad.write_text('x')
    with pytest.raises(ValueError, match='unknown suffix'):
        load_label_mapping(str(bad), CITY)


def test_mapping_split_mismatch_names_ids():
    m = {'a': (True, ), 'b': (True, ), 'zz': (True, )}
    check_mapping_matches_split(m, ['a', 'b', 'zz'])
    with pytest.raises(ValueError) as e:
        check_mapping_matches_split(m, ['a', 'b', 'c'])
    msg = str(e.value)
    assert "1 mapping ids are not in the split, e.g. ['zz']" in msg
    assert "1 split images are missing from the mapping, e.g. ['c']" in msg
    assert '3 mapping ids, 3 split ids' in msg


# -------------------------------------------- published files (if present)
# Per-task labelled counts of the published mapping files
# (../shared/data/ssl_mapping), as counted from the files.
PUBLISHED = [
    ('DiffusionMTL/pascal/onelabel.npy', PASCAL, 4998,
     dict(semseg=1000, human_parts=999, sal=1000, normals=1000, edge=999),
     {1: 4998}),
    ('MTPSL/pascal_settings/onelabel.npy', PASCAL, 4998,
     dict(semseg=1000, human_parts=999, sal=1000, normals=1000, edge=999),
     {1: 4998}),
    ('DiffusionMTL/pascal/randomlabels.npy', PASCAL, 4998,
     dict(semseg=2450, human_parts=847, sal=2445, normals=2480, edge=2557),
     {1: 1538, 2: 1529, 3: 1541, 4: 390, 5: 0}),
    ('MTPSL/pascal_settings/randomlabels.npy', PASCAL, 4998,
     dict(semseg=2450, human_parts=847, sal=2445, normals=2480, edge=2557),
     {1: 1538, 2: 1529, 3: 1541, 4: 390, 5: 0}),
    ('DiffusionMTL/nyud_low/onelabel.pth', NYUD, 795,
     dict(semseg=265, depth=265, normals=265), {1: 795}),
    ('MTPSL/nyuv2_settings/onelabel.pth', NYUD, 795,
     dict(semseg=265, depth=265, normals=265), {1: 795}),
    ('DiffusionMTL/nyud_low/randomlabels.pth', NYUD, 795,
     dict(semseg=392, depth=408, normals=385), {1: 405, 2: 390, 3: 0}),
    ('MTPSL/nyuv2_settings/randomlabels.pth', NYUD, 795,
     dict(semseg=392, depth=408, normals=385), {1: 405, 2: 390, 3: 0}),
    ('MTPSL/cityscapes_settings/onelabel.pth', CITY, 2975,
     dict(semseg=1487, depth=1488), {1: 2975}),
]


def _check_counts(mapping, tasks, n, per_task, hist):
    stats = label_mapping_stats(mapping, tasks)
    assert stats['num_images'] == n
    assert stats['per_task'] == per_task
    for k, v in hist.items():
        assert stats['labels_per_image'][k] == v


@pytest.mark.parametrize('rel,tasks,n,per_task,hist', PUBLISHED)
def test_published_mapping_counts(rel, tasks, n, per_task, hist):
    path = osp.join(SSL, rel)
    if not osp.isfile(path):
        pytest.skip(f'{path} not available')
    mapping = load_label_mapping(path, tasks)
    _check_counts(mapping, tasks, n, per_task, hist)
    if tasks != PASCAL:
        assert set(mapping) == {str(i) for i in range(n)}


@pytest.mark.parametrize('name,npy', [('new_onelabel.pth', 'onelabel.npy'),
                                      ('new_randomlabels.pth',
                                       'randomlabels.npy')])
def test_published_pascal_pickles_via_converter(tmp_path, name, npy):
    src = osp.join(SSL, 'DiffusionMTL', 'pascal', name)
    if not osp.isfile(src):
        pytest.skip(f'{src} not available')
    with pytest.raises(ValueError, match='convert_label_mapping.py'):
        load_label_mapping(src, PASCAL)
    out = str(tmp_path / 'mapping.json')
    _converter().convert_label_mapping(src, out)
    mapping = load_label_mapping(out, PASCAL)
    ref = [p for p in PUBLISHED if p[0].endswith('DiffusionMTL/pascal/' +
                                                 npy)][0]
    _check_counts(mapping, PASCAL, *ref[2:])
    # Same membership as the .npy task lists, image by image.
    assert mapping == load_label_mapping(
        osp.join(SSL, 'DiffusionMTL', 'pascal', npy), PASCAL)


def test_restricted_unpickler_rejects_reduce_of_os():
    from diffmtl.datasets.label_mapping import _NumpyOnlyUnpickler
    import io

    class Evil:

        def __reduce__(self):
            import os
            return (os.getcwd, ())

    data = pickle.dumps(Evil())
    with pytest.raises(pickle.UnpicklingError, match='refusing'):
        _NumpyOnlyUnpickler(io.BytesIO(data)).load()
