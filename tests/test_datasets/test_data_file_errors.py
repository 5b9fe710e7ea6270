# Copyright (c) diffmtl contributors. All rights reserved.
"""Damaged or unusual data files give errors that name the file and the
real cause: a byte-order mark in a split file, 0-byte files, JPEGs with an
EXIF rotation, and damaged images found up front with ``check_data``."""
import json
import os
import os.path as osp

import numpy as np
import pytest
from mt_format_writers import write_png
from PIL import Image

from diffmtl.datasets import (FolderMultiTaskDataset,
                              LoadMultiTaskAnnotations,
                              LoadMultiTaskImageFromFile)

H, W = 6, 10
IDS = ('00000', '00001', '00002', '00003')
PIPELINE = [
    dict(type='LoadMultiTaskImageFromFile'),
    dict(type='LoadMultiTaskAnnotations')
]


def make_folder(root, ids=IDS, image_suffix='.png'):
    """semseg + depth folder dataset; returns the root."""
    os.makedirs(osp.join(root, 'splits'), exist_ok=True)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(dict(tasks=['semseg', 'depth'],
                       task_classes=dict(semseg=['bg', 'fg']),
                       depth_scale=1000), f)
    with open(osp.join(root, 'splits', 'train.txt'), 'w') as f:
        f.write('\n'.join(ids) + '\n')
    for k, i in enumerate(ids):
        rng = np.random.default_rng(k)
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        if image_suffix == '.png':
            write_png(osp.join(root, 'images', i + '.png'), img)
        else:
            os.makedirs(osp.join(root, 'images'), exist_ok=True)
            Image.fromarray(img).save(osp.join(root, 'images', i + '.jpg'))
        write_png(osp.join(root, 'semseg', i + '.png'),
                  (img[..., 0] > 127).astype(np.uint8))
        write_png(osp.join(root, 'depth', i + '.png'),
                  (1000 + img[..., 1].astype(np.uint16)))
    return root


def test_split_file_with_a_byte_order_mark(tmp_path):
    root = make_folder(str(tmp_path))
    split = osp.join(root, 'splits', 'train.txt')
    with open(split, 'wb') as f:
        f.write(b'\xef\xbb\xbf' + '\r\n'.join(IDS).encode())
    ds = FolderMultiTaskDataset(root, pipeline=PIPELINE)
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == list(
        IDS)


def test_split_file_with_invisible_characters_names_the_line(tmp_path):
    root = make_folder(str(tmp_path))
    split = osp.join(root, 'splits', 'train.txt')
    with open(split, 'w', encoding='utf-8') as f:
        f.write('00000\n00001\ufeff\n')
    with pytest.raises(ValueError, match=r"train.txt', line 2.*invisible"):
        FolderMultiTaskDataset(root, pipeline=PIPELINE)


@pytest.mark.parametrize('what', ['semseg', 'depth', 'images'])
def test_zero_byte_files_are_refused_at_construction(tmp_path, what):
    root = make_folder(str(tmp_path))
    path = osp.join(root, what, '00002.png')
    open(path, 'wb').close()
    with pytest.raises(ValueError) as err:
        FolderMultiTaskDataset(root, pipeline=PIPELINE,
                               encoding_check_samples=0)
    assert path in str(err.value) and 'empty (0 bytes)' in str(err.value)


@pytest.mark.parametrize('task', ['semseg', 'depth'])
def test_zero_byte_annotation_names_the_file_when_loaded(tmp_path, task):
    root = make_folder(str(tmp_path))
    path = osp.join(root, task, '00001.png')
    open(path, 'wb').close()
    fmt = 'label_png' if task == 'semseg' else 'depth_png'
    results = dict(
        img_shape=(H, W), tasks=(task, ), task_mask=(True, ),
        ann_paths={task: path}, ann_format={task: fmt}, img_path='x')
    with pytest.raises(ValueError) as err:
        LoadMultiTaskAnnotations()(results)
    assert path in str(err.value) and '0 bytes' in str(err.value)


def test_zero_byte_and_damaged_images_name_the_file(tmp_path):
    empty = str(tmp_path / 'empty.png')
    open(empty, 'wb').close()
    with pytest.raises(ValueError, match='empty.png.*0 bytes'):
        LoadMultiTaskImageFromFile()(dict(img_path=empty))
    junk = str(tmp_path / 'junk.jpg')
    with open(junk, 'wb') as f:
        f.write(b'this is not a jpeg' * 10)
    with pytest.raises(ValueError, match='cannot decode image file.*junk'):
        LoadMultiTaskImageFromFile()(dict(img_path=junk))


def _exif_jpeg(path, img, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(img).save(path, exif=exif, quality=95)


@pytest.mark.parametrize('orientation', [6, 3])
def test_exif_orientation_is_ignored_like_the_annotations(tmp_path,
                                                          orientation):
    root = make_folder(str(tmp_path), image_suffix='.jpg')
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :W // 2] = 255  # left half white, as stored
    path = osp.join(root, 'images', '00001.jpg')
    _exif_jpeg(path, img, orientation)
    ds = FolderMultiTaskDataset(root, pipeline=PIPELINE)
    sample = ds[1]
    assert sample['img'].shape[:2] == (H, W)
    # the stored pixel grid, not the rotated view
    assert sample['img'][:, :W // 2 - 1].min() > 200
    assert sample['img'][:, W // 2 + 1:].max() < 50
    assert sample['gt_seg_map'].shape == (H, W)


def test_annotation_of_the_rotated_view_names_the_exif_tag(tmp_path):
    root = make_folder(str(tmp_path), image_suffix='.jpg')
    _exif_jpeg(osp.join(root, 'images', '00001.jpg'),
               np.zeros((H, W, 3), np.uint8), 6)
    write_png(osp.join(root, 'semseg', '00001.png'),
              np.zeros((W, H), np.uint8))
    ds = FolderMultiTaskDataset(root, pipeline=PIPELINE)
    with pytest.raises(ValueError) as err:
        ds[1]
    msg = str(err.value)
    assert 'EXIF orientation tag 6' in msg and '00001.jpg' in msg
    assert 'Fix the file' not in msg


def _truncate(path):
    with open(path, 'rb') as f:
        data = f.read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def test_check_data_finds_a_damaged_image_late_in_the_list(tmp_path):
    ids = tuple(f'{i:05d}' for i in range(12))
    root = make_folder(str(tmp_path), ids=ids, image_suffix='.jpg')
    bad = osp.join(root, 'images', '00010.jpg')
    _truncate(bad)
    bad_ann = osp.join(root, 'semseg', '00011.png')
    with open(bad_ann, 'wb') as f:
        f.write(b'\x89PNG\r\n\x1a\n' + b'\0' * 40)
    # without the option the list is built and the damage shows only when
    # those samples are loaded
    ds = FolderMultiTaskDataset(root, pipeline=PIPELINE,
                                encoding_check_samples=0)
    assert len(ds) == 12
    with pytest.raises(ValueError, match='00011.png'):
        ds[11]
    with pytest.raises(ValueError) as err:
        FolderMultiTaskDataset(root, pipeline=PIPELINE,
                               encoding_check_samples=0, check_data=True)
    msg = str(err.value)
    assert '2 of 12 samples cannot be loaded' in msg
    assert bad in msg and 'truncated' in msg.lower()
    assert bad_ann in msg


def test_check_data_passes_valid_data(tmp_path):
    root = make_folder(str(tmp_path), image_suffix='.jpg')
    ds = FolderMultiTaskDataset(root, pipeline=PIPELINE, check_data=True)
    assert len(ds) == len(IDS)

