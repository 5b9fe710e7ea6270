# Copyright (c) diffmtl contributors. All rights reserved.
import matplotlib
import numpy as np
import pytest
import torch

from diffmtl.visualization import (HATCH_COLOR, IGNORE_COLOR, UNLABELLED_COLOR,
                                   depth_value_range, draw_caption,
                                   draw_legend, draw_task_tile,
                                   draw_unlabelled_tile, fit_to_shape,
                                   get_task_palette, voc_palette)

META = dict(
    tasks=('semseg', 'human_parts', 'sal', 'normals', 'edge'),
    task_classes=dict(semseg=('background', 'cat', 'dog'),
                      human_parts=('background', 'head', 'torso')),
    task_palettes=dict(semseg=[[0, 0, 0], [200, 10, 20], [30, 220, 40]],
                       human_parts=[[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
)


def test_voc_palette_known_entries():
    pal = voc_palette(5)
    assert pal[0] == [0, 0, 0]
    assert pal[1] == [128, 0, 0]
    assert pal[2] == [0, 128, 0]
    assert pal[3] == [128, 128, 0]
    assert pal[4] == [0, 0, 128]


def test_semseg_tile_uses_task_palette_and_marks_ignore():
    seg = torch.tensor([[[0, 1, 2], [2, 255, 1]]])  # (1, 2, 3)
    tile = draw_task_tile('semseg', seg, META)
    assert tile.shape == (2, 3, 3) and tile.dtype == np.uint8
    assert tile[0, 1].tolist() == [200, 10, 20]
    assert tile[0, 2].tolist() == [30, 220, 40]
    assert tile[1, 0].tolist() == [30, 220, 40]
    assert tile[1, 1].tolist() == list(IGNORE_COLOR)
    # out-of-range class ids are not drawn as a class colour either
    tile = draw_task_tile('semseg', np.array([[7]]), META)
    assert tile[0, 0].tolist() == list(IGNORE_COLOR)


def test_semseg_falls_back_to_mmseg_palette_key():
    meta = dict(classes=('a', 'b'), palette=[[1, 1, 1], [9, 8, 7]])
    tile = draw_task_tile('semseg', np.array([[1, 0]]), meta)
    assert tile[0, 0].tolist() == [9, 8, 7]
    assert tile[0, 1].tolist() == [1, 1, 1]


def test_parts_without_meta_uses_default_classes_and_voc():
    tile = draw_task_tile('human_parts', np.array([[6, 3]]), None)
    assert tile[0, 0].tolist() == voc_palette(7)[6]
    assert tile[0, 1].tolist() == voc_palette(7)[3]
    assert len(get_task_palette('human_parts', None)) == 7


def test_normals_rgb_is_half_n_plus_one():
    normals = np.zeros((3, 2, 3), np.float32)  # (3, H, W)
    normals[:, 0, 0] = (0, 0, 1)
    normals[:, 0, 1] = (1, 0, 0)
    normals[:, 0, 2] = (0, -1, 0)
    normals[:, 1, 0] = (0, 0, 2)  # not unit: drawn as its direction
    normals[:, 1, 1] = (0, 0, -1)
    # normals[:, 1, 2] stays the zero vector: invalid
    tile = draw_task_tile('normals', torch.from_numpy(normals), META)
    assert tile[0, 0].tolist() == [128, 128, 255]
    assert tile[0, 1].tolist() == [255, 128, 128]
    assert tile[0, 2].tolist() == [128, 0, 128]
    assert tile[1, 0].tolist() == [128, 128, 255]
    assert tile[1, 1].tolist() == [128, 128, 0]
    assert tile[1, 2].tolist() == list(IGNORE_COLOR)
    # (H, W, 3) layout gives the same picture
    hwc = draw_task_tile('normals', normals.transpose(1, 2, 0), META)
    np.testing.assert_array_equal(hwc, tile)


def test_saliency_and_edge_are_grey_ramps():
    sal = np.array([[0.0, 0.5, 1.0, 255]], np.float32)
    tile = draw_task_tile('sal', sal, META)
    assert tile[0, 0].tolist() == [0, 0, 0]
    assert tile[0, 1].tolist() == [128, 128, 128]
    assert tile[0, 2].tolist() == [255, 255, 255]
    assert tile[0, 3].tolist() == list(IGNORE_COLOR)
    edge = torch.tensor([[[0, 1]]])  # int64 GT labels
    tile = draw_task_tile('edge', edge, META)
    assert tile[0, 0].tolist() == [0, 0, 0]
    assert tile[0, 1].tolist() == [255, 255, 255]


def test_depth_uses_magma_over_valid_range():
    depth = np.array([[0.0, 2.0, 4.0, 3.0]], np.float32)
    assert depth_value_range('depth', depth) == (2.0, 4.0)
    tile = draw_task_tile('depth', depth, None)
    magma = matplotlib.colormaps['magma']
    assert tile[0, 0].tolist() == list(IGNORE_COLOR)  # 0 = no depth
    assert tile[0, 1].tolist() == list(magma(0.0, bytes=True)[:3])
    assert tile[0, 2].tolist() == list(magma(1.0, bytes=True)[:3])
    assert tile[0, 3].tolist() == list(magma(0.5, bytes=True)[:3])
    # an explicit range is honoured (shared GT/prediction scale)
    tile = draw_task_tile('depth', depth, None, value_range=(0.0, 8.0))
    assert tile[0, 2].tolist() == list(magma(0.5, bytes=True)[:3])


def test_unlabelled_tile_is_hatched_grey_with_text():
    tile = draw_unlabelled_tile(40, 120)
    assert tile.shape == (40, 120, 3)
    assert tile[0, 0].tolist() == list(HATCH_COLOR)
    assert tile[0, 8].tolist() == list(HATCH_COLOR)
    assert tile[3, 5].tolist() == list(HATCH_COLOR)
    assert tile[0, 1].tolist() == list(UNLABELLED_COLOR)
    # the caption writes white pixels in the middle
    assert (tile[10:30] == 255).all(-1).any()
    plain = draw_unlabelled_tile(40, 120, text=None)
    assert not (plain == 255).all(-1).any()


def test_legend_swatches_follow_palette():
    legend = draw_legend('semseg', META, width=100, class_ids=[2, 0, 9])
    assert legend.shape == (28, 100, 3)  # classes 0 and 2; 9 is unknown
    assert legend[6, 5].tolist() == [0, 0, 0]
    assert legend[14 + 6, 5].tolist() == [30, 220, 40]
    assert draw_legend('normals', META, width=100) is None


def test_caption_and_fit_to_shape():
    tile = np.full((10, 30, 3), 7, np.uint8)
    out = draw_caption(tile, 'x', height=14)
    assert out.shape == (24, 30, 3)
    np.testing.assert_array_equal(out[14:], tile)
    padded = np.arange(20).reshape(4, 5)
    np.testing.assert_array_equal(fit_to_shape(padded, (3, 4), True),
                                  padded[:3, :4])
    small = np.array([[1, 2], [3, 4]])
    np.testing.assert_array_equal(
        fit_to_shape(small, (4, 4), True),
        np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]))


def test_bad_shapes_and_unknown_task_raise():
    with pytest.raises(ValueError, match='3-channel'):
        draw_task_tile('normals', np.zeros((2, 2)), META)
    with pytest.raises(ValueError, match='single-channel'):
        draw_task_tile('semseg', np.zeros((2, 2, 2)), META)
    with pytest.raises(KeyError, match='unknown task'):
        draw_task_tile('nope', np.zeros((2, 2)), META)


def test_predictions_are_not_marked_invalid():
    depth = np.array([[-1.0, 0.0, 1.0]], np.float32)
    assert depth_value_range('depth', depth, valid_only=False) == (-1.0, 1.0)
    magma = matplotlib.colormaps['magma']
    tile = draw_task_tile('depth',
                          depth,
                          None,
                          value_range=(-1.0, 1.0),
                          mark_invalid=False)
    assert tile[0, 0].tolist() == list(magma(0.0, bytes=True)[:3])
    assert tile[0, 1].tolist() == list(magma(0.5, bytes=True)[:3])
    # class ids outside the palette stay marked even for predictions
    tile = draw_task_tile('semseg',
                          np.array([[9, 1]]),
                          META,
                          mark_invalid=False)
    assert tile[0, 0].tolist() == list(IGNORE_COLOR)
    assert tile[0, 1].tolist() == [200, 10, 20]


def test_caption_text_is_shrunk_to_fit():
    tile = np.zeros((10, 40, 3), np.uint8)
    out = draw_caption(tile, 'a_very_long_caption_text', height=14)
    assert out.shape == (24, 40, 3)
    # white text pixels never reach the right border
    assert not (out[:14, -2:] > 0).any()
    assert (out[:14, :20] > 0).any()
