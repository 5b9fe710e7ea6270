# Copyright (c) diffmtl contributors. All rights reserved.
"""inference_multitask: the dtypes and ranges it takes, clear errors for
the rest, and seeded predictions that depend on the pixels only."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch

from diffmtl.apis import (inference_denoising_process, inference_multitask,
                          init_model)
from _tiny_real_config import CONFIG, TASKS


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    torch.set_num_threads(1)
    path = osp.join(tmp_path_factory.mktemp('inputs'), 'cfg.py')
    with open(path, 'w') as f:
        f.write(CONFIG)
    torch.manual_seed(0)
    return init_model(path, cfg_options={'model.inference_seed': 0})


def _image(seed=0, h=40, w=48):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (h, w, 3)).astype(np.uint8)


def _equal(a, b):
    return all(np.array_equal(a[t], b[t]) for t in TASKS)


def test_same_pixels_same_maps_under_any_name(model, tmp_path):
    """Seeded noise is keyed by the pixels: a renamed copy, the array and
    the same image twice in one call give identical maps."""
    img = _image()
    first, second = str(tmp_path / 'first.png'), str(tmp_path / 'zz.png')
    mmcv.imwrite(img, first)
    mmcv.imwrite(img, second)
    a = inference_multitask(model, first)
    b = inference_multitask(model, second)
    c = inference_multitask(model, img)
    twice = inference_multitask(model, [img, _image(1), img])
    assert _equal(a, b) and _equal(a, c)
    assert _equal(twice[0], a) and _equal(twice[2], a)
    assert not _equal(twice[1], a)


def test_float_arrays_need_and_use_their_range(model):
    img = _image(2)
    ref = inference_multitask(model, img)
    unit = img.astype(np.float64) / 255.
    with pytest.raises(ValueError,
                       match=r'image array 0 is float64: give the range'):
        inference_multitask(model, unit)
    # mapped linearly to 0..255: ranges where that is exact give the very
    # pixels of the uint8 image, so the same maps (noise keyed by them)
    for arr, rng in [(img.astype(np.float32), (0, 255)),
                     (img.astype(np.float64) * 2, (0, 510)),
                     (img.astype(np.float16) * 2 - 255, (-255, 255))]:
        got = inference_multitask(model, arr, float_range=rng)
        assert _equal(got, ref), (arr.dtype, rng)
    got = inference_multitask(model, unit, float_range=(0, 1))
    assert set(got) == set(TASKS)
    with pytest.raises(ValueError,
                       match=r'image array 1 holds values 0\.\.2 outside '
                       r'float_range=\(0, 1\)'):
        inference_multitask(model, [unit, unit * 2], float_range=(0, 1))
    # uint8 arrays ignore float_range: they are 0..255 by definition
    assert _equal(inference_multitask(model, img, float_range=(0, 1)), ref)


@pytest.mark.parametrize('dtype', [np.uint16, np.int64, np.int32, bool])
def test_other_dtypes_are_refused_naming_the_image(model, dtype):
    bad = _image().astype(dtype)
    with pytest.raises(ValueError,
                       match=rf'^image array 1 has dtype '
                       rf'{np.dtype(dtype).name}; inference takes uint8'):
        inference_multitask(model, [_image(), bad])
    with pytest.raises(ValueError, match='has dtype'):
        inference_denoising_process(model, bad)


@pytest.mark.parametrize('rng', [(1, 1), (0, float('inf')), (0, ), 'ab'])
def test_bad_float_range_is_refused(model, rng):
    with pytest.raises(ValueError, match='float_range must be'):
        inference_multitask(model, _image(), float_range=rng)


def test_directory_missing_file_and_other_types(model, tmp_path):
    with pytest.raises(ValueError,
                       match=r'image 1, .* is a directory; give image files'):
        inference_multitask(model, [_image(), str(tmp_path)])
    missing = str(tmp_path / 'nope.png')
    with pytest.raises(FileNotFoundError, match='image 0: no such file'):
        inference_multitask(model, missing)
    with pytest.raises(TypeError, match=r'image 0 is a Tensor'):
        inference_multitask(model, torch.zeros(8, 8, 3))
