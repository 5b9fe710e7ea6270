# Copyright (c) diffmtl contributors. All rights reserved.
"""Bad dataset inputs are refused when the data list is built or a sample
is loaded, with messages naming the file."""
import json
import logging
import os
import os.path as osp

import numpy as np
import pytest
from mt_format_writers import write_png
from test_folder_mt import PIPELINE, TASKS, make_folder

from diffmtl.datasets import (FolderMultiTaskDataset, MultiTaskPartialDataset,
                              dump_label_mapping, load_label_mapping)


def _folder(tmp_path):
    root = str(tmp_path / 'scenes')
    make_folder(root)
    return root


def test_empty_split_file_names_the_file(tmp_path):
    root = _folder(tmp_path)
    split = osp.join(root, 'splits', 'empty.txt')
    with open(split, 'w') as f:
        f.write('\n  \n')
    with pytest.raises(ValueError) as err:
        FolderMultiTaskDataset(data_root=root, split='empty')
    assert 'empty.txt' in str(err.value)
    assert 'lists no image ids' in str(err.value)
    # same through the base class's ann_file
    with pytest.raises(ValueError, match=r'empty\.txt.*no image ids'):
        MultiTaskPartialDataset(
            data_root=root, ann_file=split,
            data_prefix=dict(img_path=osp.join(root, 'images')),
            img_suffix='.png',
            ann_settings=dict(sal=dict(prefix='sal')))


def test_empty_image_folder_is_an_error(tmp_path):
    root = str(tmp_path / 'generic')
    write_png(osp.join(root, 'images', 'keep.txt.png'), np.zeros((2, 2)))
    with pytest.raises(ValueError, match='the split has no images'):
        MultiTaskPartialDataset(
            data_root=root,
            data_prefix=dict(img_path=osp.join(root, 'images')),
            img_suffix='.jpg',
            ann_settings=dict(sal=dict(prefix='sal')))


def test_binary_split_file_names_the_file(tmp_path):
    root = _folder(tmp_path)
    with open(osp.join(root, 'splits', 'bin.txt'), 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n\xff\xfe\x00')
    with pytest.raises(ValueError, match=r'bin\.txt.*not UTF-8'):
        FolderMultiTaskDataset(data_root=root, split='bin')


@pytest.mark.parametrize('payload,expect', [
    (b'\x80\x04\x95\xff\xfe binary', 'not UTF-8 text'),
    (b'{"tasks": ["semseg"], "labels": {', 'not valid JSON'),
])
def test_corrupt_mapping_json_names_the_file(tmp_path, payload, expect):
    root = _folder(tmp_path)
    path = osp.join(root, 'mappings', 'broken.json')
    os.makedirs(osp.dirname(path))
    with open(path, 'wb') as f:
        f.write(payload)
    with pytest.raises(ValueError) as err:
        load_label_mapping(path, TASKS)
    assert 'broken.json' in str(err.value) and expect in str(err.value)
    with pytest.raises(ValueError, match=r'broken\.json.*' + expect):
        FolderMultiTaskDataset(data_root=root, label_setting='one',
                               label_mapping='mappings/broken.json')


def test_corrupt_mapping_npy_names_the_file(tmp_path):
    path = str(tmp_path / 'onelabel.npy')
    with open(path, 'wb') as f:
        f.write(b'not numpy at all')
    with pytest.raises(ValueError, match=r'onelabel\.npy.*not a readable'):
        load_label_mapping(path, TASKS)


def test_binary_meta_json_names_the_file(tmp_path):
    root = _folder(tmp_path)
    with open(osp.join(root, 'meta.json'), 'wb') as f:
        f.write(b'\xff\xd8\xff\xe0 jpeg bytes')
    with pytest.raises(ValueError, match=r'meta\.json.*not UTF-8'):
        FolderMultiTaskDataset(data_root=root)


def test_mapping_that_labels_no_task_is_refused(tmp_path):
    root = _folder(tmp_path)
    path = osp.join(root, 'none.json')
    dump_label_mapping({i: (False, ) * 6 for i in 'abc'}, TASKS, path)
    with pytest.raises(ValueError) as err:
        FolderMultiTaskDataset(data_root=root, label_setting='one',
                               label_mapping=path)
    msg = str(err.value)
    assert 'none of the 3 training images is labelled' in msg
    assert 'none.json' in msg
    # test mode labels everything: the mapping is not used
    ds = FolderMultiTaskDataset(data_root=root, label_setting='one',
                                label_mapping=path, test_mode=True)
    assert len(ds) == 3
    # missing files turned unlabelled leave nothing either
    import shutil
    for t in TASKS:
        shutil.rmtree(osp.join(root, t))
    with pytest.raises(ValueError, match='none of the 3 training images'):
        FolderMultiTaskDataset(data_root=root, missing_ann='unlabelled')


def test_task_without_labels_only_warns_in_the_dataset(tmp_path,
                                                      monkeypatch):
    import diffmtl.datasets.multitask_partial as mp
    logged = []
    monkeypatch.setattr(mp, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    root = _folder(tmp_path)
    path = osp.join(root, 'semseg_only.json')
    dump_label_mapping({i: (True, ) + (False, ) * 5 for i in 'abc'}, TASKS,
                       path)
    ds = FolderMultiTaskDataset(data_root=root, label_setting='one',
                                label_mapping=path)
    assert len(logged) == 1
    msg, kw = logged[0]
    assert kw['level'] == logging.WARNING
    assert "['human_parts', 'sal', 'normals', 'edge', 'depth']" in msg
    assert 'semseg_only.json' in msg
    assert ds.label_stats()['per_task']['semseg'] == 3
    assert ds.label_stats()['per_task']['depth'] == 0


def test_dataset_passes_num_classes_to_the_label_check(tmp_path):
    root = _folder(tmp_path)
    info = FolderMultiTaskDataset(data_root=root).get_data_info(0)
    assert info['num_classes'] == dict(semseg=3, human_parts=2)
    # class id 3 of a 3-class semseg task
    bad = np.zeros((5, 7), np.uint8)
    bad[2, 3] = 3
    bad[0, 0] = 9
    write_png(osp.join(root, 'semseg', 'a.png'), bad)
    ds = FolderMultiTaskDataset(data_root=root, tasks=['semseg'],
                                pipeline=PIPELINE)
    with pytest.raises(ValueError) as err:
        ds[0]
    msg = str(err.value)
    assert "'semseg'" in msg and osp.join('semseg', 'a.png') in msg
    assert '[3, 9]' in msg and '[0, 3)' in msg


def test_meta_json_still_loads(tmp_path):
    root = _folder(tmp_path)
    with open(osp.join(root, 'meta.json')) as f:
        assert json.load(f)['tasks'] == TASKS
    assert FolderMultiTaskDataset(data_root=root).metainfo['tasks'] == \
        tuple(TASKS)
