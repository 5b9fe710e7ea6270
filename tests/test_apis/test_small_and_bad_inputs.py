# Copyright (c) diffmtl contributors. All rights reserved.
"""inference_multitask with the real (tiny) DiffusionMTL on images smaller
than the model's stride, and on non-finite input."""
import os.path as osp

import numpy as np
import pytest
import torch

from diffmtl.apis import (inference_denoising_process, inference_multitask,
                          init_model)
from diffmtl.apis.inference import MIN_INPUT_SIZE
from _tiny_real_config import CONFIG, TASKS


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    torch.set_num_threads(1)
    path = osp.join(tmp_path_factory.mktemp('small'), 'cfg.py')
    with open(path, 'w') as f:
        f.write(CONFIG)
    torch.manual_seed(0)
    return init_model(path)


def _image(h, w, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, (h, w, 3)).astype(np.uint8)


def _predict(model, image):
    torch.manual_seed(3)
    return inference_multitask(model, image)


@pytest.mark.parametrize('h,w', [(8, 8), (20, 30), (31, 40)])
def test_small_image_is_padded_and_cropped_back(model, h, w):
    assert MIN_INPUT_SIZE == 32
    img = _image(h, w)
    maps = _predict(model, img)
    assert set(maps) == set(TASKS)
    for task, arr in maps.items():
        assert arr.shape[:2] == (h, w), task
        assert np.isfinite(arr).all(), task
    assert maps['normals'].shape == (h, w, 3)
    np.testing.assert_allclose(np.linalg.norm(maps['normals'], axis=-1), 1.,
                               atol=1e-4)
    # the maps are the top-left block of the zero-padded input's maps
    ph, pw = max(h, 32), max(w, 32)
    padded = np.zeros((ph, pw, 3), np.uint8)
    padded[:h, :w] = img
    ref = _predict(model, padded)
    for task in TASKS:
        if task in ('semseg', 'human_parts'):
            np.testing.assert_array_equal(maps[task], ref[task][:h, :w])
        else:
            np.testing.assert_allclose(maps[task], ref[task][:h, :w],
                                       atol=1e-4, err_msg=task)
    sample = inference_multitask(model, img, return_datasamples=True)
    assert sample.metainfo['min_size_padding'] == (ph - h, pw - w)
    assert sample.ori_shape == (h, w)


def test_large_enough_images_are_not_padded(model):
    sample = inference_multitask(model, _image(32, 33),
                                 return_datasamples=True)
    assert 'min_size_padding' not in sample.metainfo
    assert sample.pred_sem_seg.data.shape[-2:] == (32, 33)


def test_small_image_file_and_denoising_process(model, tmp_path):
    import mmcv
    img = _image(8, 8, seed=1)
    path = str(tmp_path / 'tiny.png')
    mmcv.imwrite(img, path)
    from_file = _predict(model, path)
    from_array = _predict(model, img)
    np.testing.assert_array_equal(from_file['semseg'], from_array['semseg'])
    process = inference_denoising_process(model, img, seed=0)
    for task, stages in process.items():
        for stage, arr in stages:
            assert arr.shape[:2] == (8, 8), (task, stage)


@pytest.mark.parametrize('bad', ['nan', 'inf', 'one_nan'])
def test_non_finite_arrays_are_refused(model, bad):
    img = np.full((40, 40, 3), 100., np.float32)
    if bad == 'nan':
        img[:] = np.nan
    elif bad == 'inf':
        img[0, 0, 0] = np.inf
    else:
        img[5, 7, 1] = np.nan
    with pytest.raises(ValueError) as err:
        inference_multitask(model, img)
    n = img.size if bad == 'nan' else 1
    assert str(err.value) == (
        f'image array 0 holds {n} non-finite values (NaN or inf) of '
        f'{img.size}; inference needs finite pixel values')
    # the index names the offending image of a batch
    with pytest.raises(ValueError, match='^image array 1 holds'):
        inference_multitask(model, [_image(40, 40), img])


def test_non_finite_npy_image_file_is_refused(model, tmp_path):
    arr = np.full((36, 36, 3), 0.5, np.float32)
    arr[3, 4] = np.nan
    path = str(tmp_path / 'scene.npy')
    np.save(path, arr)
    with pytest.raises(ValueError) as err:
        inference_multitask(model, path)
    assert 'scene.npy' in str(err.value)
    assert 'holds 3 non-finite values' in str(err.value)


def test_empty_array_is_refused(model):
    with pytest.raises(ValueError, match='image array 0 is empty'):
        inference_multitask(model, np.zeros((0, 5, 3), np.uint8))


def _mmseg_preprocessor():
    from diffmtl.registry import MODELS
    return MODELS.build(
        dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
             std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
             test_cfg=dict(size_divisor=8)))


def test_mmseg_preprocessor_keeps_the_recorded_padding(model):
    """mmseg's SegDataPreProcessor records only its own test padding in
    ``img_padding_size`` (none: 32 is a multiple of 8) and leaves the
    padding of the 8x8 image in ``padding_size``. The model crops both
    (``diffmtl.structures.image_padding``), so the maps are those of
    diffmtl's preprocessor (the network input is the same). Reading
    ``img_padding_size`` first (mmseg's rule) would crop nothing and
    shrink the 32x32 maps to 8x8."""
    img = _image(8, 8)
    ref = _predict(model, img)
    original = model.data_preprocessor
    model.data_preprocessor = _mmseg_preprocessor()
    try:
        maps = _predict(model, img)
        sample = inference_multitask(model, img, return_datasamples=True)
    finally:
        model.data_preprocessor = original
    assert list(sample.metainfo['img_padding_size']) == [0, 0, 0, 0]
    assert list(sample.metainfo['padding_size']) == [0, 24, 0, 24]
    for task in TASKS:
        assert maps[task].shape[:2] == (8, 8), task
        np.testing.assert_allclose(maps[task], ref[task], atol=1e-5,
                                   err_msg=task)


def test_preprocessor_that_drops_the_padding_is_reported(model):
    """A preprocessor that overwrites the recorded padding with less than
    the small image's padding is refused instead of returning stretched
    maps."""

    class _Dropping(torch.nn.Module):

        def __init__(self):
            super().__init__()
            self.inner = _mmseg_preprocessor()

        def forward(self, data, training=False):
            out = self.inner(data, training)
            for ds in out['data_samples']:
                ds.set_metainfo(dict(padding_size=(0, 0, 0, 0),
                                     img_padding_size=(0, 0, 0, 0)))
            return out

    original = model.data_preprocessor
    model.data_preprocessor = _Dropping()
    try:
        with pytest.raises(RuntimeError, match='overwrote the recorded '
                           'padding'):
            inference_multitask(model, _image(8, 8))
    finally:
        model.data_preprocessor = original
