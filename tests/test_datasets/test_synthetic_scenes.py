# Copyright (c) diffmtl contributors. All rights reserved.
"""Geometry, label-consistency and determinism checks of the synthetic
scenes generator (tiny images so the file runs in seconds)."""
import filecmp
import json
import os
import os.path as osp

import numpy as np
import pytest

from diffmtl.datasets.label_mapping import load_label_mapping
from diffmtl.datasets.synthetic import (SEMSEG_CLASSES, SYNTHETIC_TASKS,
                                        decode_normals, encode_depth,
                                        encode_normals, encode_png,
                                        generate_synthetic_scenes, read_png,
                                        render_sample, render_scene,
                                        sample_scene, write_png)

H, W = 24, 32
NUM = 8
FIGURE = SEMSEG_CLASSES.index('figure')
FLOOR = SEMSEG_CLASSES.index('floor')
WALL = SEMSEG_CLASSES.index('wall')


@pytest.fixture(scope='module')
def samples():
    """(scene, rendered maps) of images 0..NUM-1 of seed 0."""
    out = []
    for i in range(NUM):
        scene = sample_scene(np.random.default_rng([0, i]), aspect=H / W)
        out.append((scene, render_scene(scene, H, W)))
    return out


@pytest.fixture(scope='module')
def dataset_dirs(tmp_path_factory):
    """The same 6-image dataset written twice (1 and 2 processes), and with
    another seed."""
    root = tmp_path_factory.mktemp('synthetic')
    kw = dict(num_train=4, num_val=2, num_test=2, height=H, width=W)
    a = str(root / 'a')
    b = str(root / 'b')
    c = str(root / 'c')
    generate_synthetic_scenes(a, seed=0, workers=1, **kw)
    generate_synthetic_scenes(b, seed=0, workers=2, **kw)
    generate_synthetic_scenes(c, seed=1, workers=1, **kw)
    return a, b, c


def _backproject(depth, intr):
    """Camera-frame points (H, W, 3) of a z-depth map."""
    h, w = depth.shape
    u = (np.arange(w) + 0.5 - intr['cx']) / intr['fx']
    v = (np.arange(h) + 0.5 - intr['cy']) / intr['fy']
    return np.stack([u[None] * depth, v[:, None] * depth, depth], axis=-1)


def test_render_sample_matches_scene(samples):
    for i, (scene, maps) in enumerate(samples[:3]):
        again = render_sample(i, seed=0, height=H, width=W)
        for key in ('img', 'semseg', 'human_parts', 'sal', 'edge'):
            np.testing.assert_array_equal(again[key], maps[key])
        np.testing.assert_array_equal(again['normals'], maps['normals'])
        np.testing.assert_array_equal(again['depth'], maps['depth'])


def test_map_types_and_ranges(samples):
    for _, m in samples:
        assert m['img'].shape == (H, W, 3) and m['img'].dtype == np.uint8
        assert m['semseg'].max() < len(SEMSEG_CLASSES)
        assert set(np.unique(m['sal'])) <= {0, 1}
        assert set(np.unique(m['edge'])) <= {0, 1}
        assert m['normals'].dtype == np.float32
        assert m['depth'].dtype == np.float32
        # Appearance is not constant: textures, shading, noise.
        assert m['img'].std() > 5


def test_normals_unit_and_facing_camera(samples):
    for _, m in samples:
        n = m['normals']
        np.testing.assert_allclose(np.linalg.norm(n, axis=-1), 1, atol=1e-5)
        # Every normal faces its viewing ray; most also face the optical
        # axis (z < 0), but oblique side walls near the image border can
        # have z >= 0.
        pts = _backproject(np.ones((H, W)), m['intrinsics'])
        assert (np.einsum('hwc,hwc->hw', n, pts) < 0).all()
        assert (n[..., 2] < 0).mean() > 0.8


def test_floor_normal_and_plane_distance(samples):
    """Floor normals are world up in the camera frame and floor points lie
    camera-height below the camera."""
    checked = 0
    for scene, m in samples:
        cam = scene.camera
        up_cam = np.array([0.0, -np.cos(cam.pitch), -np.sin(cam.pitch)])
        floor = (m['semseg'] == FLOOR) & (m['depth'] > 0)
        np.testing.assert_allclose(m['normals'][floor],
                                   np.broadcast_to(up_cam, (floor.sum(), 3)),
                                   atol=1e-5)
        pts = _backproject(m['depth'].astype(np.float64), m['intrinsics'])
        np.testing.assert_allclose(pts[floor] @ up_cam, -cam.position[1],
                                   rtol=1e-5)
        checked += floor.sum()
    assert checked > 100


def test_normals_agree_with_depth_differences(samples):
    """On locally flat surfaces (same instance, same normal in a 3x3
    window) the normal of back-projected depth differences equals the
    label."""
    checked = 0
    for _, m in samples:
        depth = m['depth'].astype(np.float64)
        pts = _backproject(depth, m['intrinsics'])
        du = pts[1:-1, 2:] - pts[1:-1, :-2]
        dv = pts[2:, 1:-1] - pts[:-2, 1:-1]
        n_fd = np.cross(du, dv)
        with np.errstate(invalid='ignore', divide='ignore'):
            n_fd /= np.linalg.norm(n_fd, axis=-1, keepdims=True)
        n_fd *= -np.sign(np.einsum('hwc,hwc->hw', n_fd,
                                   pts[1:-1, 1:-1]))[..., None]
        n_gt = m['normals'].astype(np.float64)
        flat = np.ones((H - 2, W - 2), dtype=bool)
        inst = m['instance']
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                win = (slice(1 + dy, H - 1 + dy), slice(1 + dx, W - 1 + dx))
                flat &= inst[win] == inst[1:-1, 1:-1]
                flat &= np.abs(n_gt[win] - n_gt[1:-1, 1:-1]).max(-1) < 1e-6
                flat &= depth[win] > 0
        err = np.linalg.norm(n_fd - n_gt[1:-1, 1:-1], axis=-1)[flat]
        assert err.max() < 1e-3, err.max()
        checked += flat.sum()
    assert checked > 0.3 * NUM * (H - 2) * (W - 2)


def test_boundaries_are_instance_changes(samples):
    for _, m in samples:
        inst, edge = m['instance'], m['edge'].astype(bool)
        # Every boundary pixel has a 4-neighbour of another instance.
        pad = np.pad(inst, 1, mode='edge')
        differs = np.zeros((H, W), dtype=bool)
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            differs |= pad[1 + dy:H + 1 + dy, 1 + dx:W + 1 + dx] != inst
        assert not (edge & ~differs).any()
        # Every change between 4-neighbours touches a boundary pixel.
        h_change = inst[:, 1:] != inst[:, :-1]
        assert (edge[:, 1:] | edge[:, :-1])[h_change].all()
        v_change = inst[1:] != inst[:-1]
        assert (edge[1:] | edge[:-1])[v_change].all()
        # Semantic changes are instance changes, so they touch boundaries.
        sem_h = m['semseg'][:, 1:] != m['semseg'][:, :-1]
        assert (h_change | ~sem_h).all()


def test_boundary_marks_the_nearer_pixel(samples):
    """A boundary pixel is never the farther pixel of all its instance
    changes: the occluding side carries the 1-px line."""
    marked = 0
    for _, m in samples:
        inst, edge, depth = m['instance'], m['edge'].astype(bool), m['depth']
        ray = _backproject(np.ones((H, W)), m['intrinsics'])
        dist = depth * np.linalg.norm(ray, axis=-1)  # range along the ray
        for y, x in np.argwhere(edge & ~m['window']):
            ok = False
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                qy, qx = y + dy, x + dx
                if not (0 <= qy < H and 0 <= qx < W):
                    continue
                if inst[qy, qx] != inst[y, x] and (
                        m['window'][qy, qx]
                        or dist[y, x] <= dist[qy, qx] + 1e-5):
                    ok = True
            assert ok, (y, x)
            marked += 1
    assert marked > 0


def test_parts_lie_inside_figures(samples):
    with_fig = without_fig = 0
    for _, m in samples:
        parts, fig = m['human_parts'], m['semseg'] == FIGURE
        if fig.any():
            with_fig += 1
            assert parts.max() <= 6
            np.testing.assert_array_equal(parts > 0, fig)
            assert (parts[fig] > 0).all()
        else:
            without_fig += 1
            assert (parts == 255).all()
    assert with_fig > 0 and without_fig > 0


def test_saliency_rule(samples):
    for _, m in samples:
        sem, inst = m['semseg'], m['instance']
        expected = sem == FIGURE
        objects = inst[(sem != FIGURE) & (sem > WALL)]
        if objects.size:
            ids, counts = np.unique(objects, return_counts=True)
            expected |= inst == ids[np.argmax(counts)]
        np.testing.assert_array_equal(m['sal'].astype(bool), expected)
        assert not m['sal'][sem <= WALL].any()


def test_depth_invalid_only_in_window(samples):
    windows = 0
    for _, m in samples:
        np.testing.assert_array_equal(m['depth'] == 0, m['window'])
        assert (m['semseg'][m['window']] == WALL).all()
        windows += m['window'].any()
        valid = m['depth'][~m['window']]
        assert valid.min() > 0.05 and valid.max() < 40
    assert windows > 0


def test_encodings_roundtrip(samples):
    m = samples[0][1]
    n = decode_normals(encode_normals(m['normals']))
    assert np.abs(n - m['normals']).max() <= 1 / 255 + 1e-6
    zero = np.zeros((2, 2, 3), np.float32)
    assert (encode_normals(zero) == 0).all()
    assert (decode_normals(encode_normals(zero)) == 0).all()
    d = encode_depth(m['depth'])
    assert d.dtype == np.uint16
    np.testing.assert_array_equal(d == 0, m['depth'] == 0)
    assert np.abs(d / 1000.0 - m['depth']).max() <= 0.5e-3 + 1e-6
    with pytest.raises(ValueError, match='16-bit'):
        encode_depth(np.full((2, 2), 70.0, np.float32))


def test_png_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    for arr in (rng.integers(0, 256, (5, 7), dtype=np.uint8),
                rng.integers(0, 256, (5, 7, 3), dtype=np.uint8),
                rng.integers(0, 65536, (5, 7), dtype=np.uint16)):
        path = str(tmp_path / 'x.png')
        write_png(path, arr)
        back = read_png(path)
        assert back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)
    with pytest.raises(ValueError, match='encode_png supports'):
        encode_png(np.zeros((2, 2), np.float32))


def test_png_readable_by_opencv(tmp_path):
    cv2 = pytest.importorskip('cv2')
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    depth = (np.arange(35, dtype=np.uint16) * 1000).reshape(5, 7)
    write_png(str(tmp_path / 'rgb.png'), rgb)
    write_png(str(tmp_path / 'd.png'), depth)
    bgr = cv2.imread(str(tmp_path / 'rgb.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bgr[..., ::-1], rgb)
    d = cv2.imread(str(tmp_path / 'd.png'), cv2.IMREAD_UNCHANGED)
    assert d.dtype == np.uint16
    np.testing.assert_array_equal(d, depth)
    # And read_png decodes PNGs written by OpenCV (other row filters).
    rng = np.random.default_rng(1)
    smooth = np.cumsum(rng.integers(0, 3, (9, 11, 3)), axis=1).astype(np.uint8)
    cv2.imwrite(str(tmp_path / 'cv.png'), smooth[..., ::-1])
    np.testing.assert_array_equal(read_png(str(tmp_path / 'cv.png')), smooth)
    cv2.imwrite(str(tmp_path / 'cv16.png'), depth)
    np.testing.assert_array_equal(read_png(str(tmp_path / 'cv16.png')), depth)


def test_dataset_layout(dataset_dirs):
    root = dataset_dirs[0]
    with open(osp.join(root, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['tasks'] == list(SYNTHETIC_TASKS)
    assert meta['task_classes']['semseg'] == list(SEMSEG_CLASSES)
    assert len(meta['task_classes']['human_parts']) == 7
    assert len(meta['task_palettes']['semseg']) == len(SEMSEG_CLASSES)
    assert meta['depth_scale'] == 1000
    assert meta['generator']['seed'] == 0
    assert meta['generator']['version']
    with open(osp.join(root, 'splits', 'train.txt')) as f:
        train = f.read().split()
    with open(osp.join(root, 'splits', 'val.txt')) as f:
        val = f.read().split()
    with open(osp.join(root, 'splits', 'test.txt')) as f:
        test = f.read().split()
    assert train == ['00000', '00001', '00002', '00003']
    assert val == ['00004', '00005']
    # The held-out test split follows val and is disjoint from both.
    assert test == ['00006', '00007']
    assert meta['generator']['num_test'] == 2
    for img_id in train + val + test:
        img = read_png(osp.join(root, 'images', img_id + '.png'))
        assert img.shape == (H, W, 3)
        for task in SYNTHETIC_TASKS:
            arr = read_png(osp.join(root, task, img_id + '.png'))
            assert arr.shape[:2] == (H, W)
    # Files hold exactly the in-memory maps.
    m = render_sample(5, seed=0, height=H, width=W)
    np.testing.assert_array_equal(
        read_png(osp.join(root, 'images', '00005.png')), m['img'])
    np.testing.assert_array_equal(
        read_png(osp.join(root, 'semseg', '00005.png')), m['semseg'])
    np.testing.assert_array_equal(
        read_png(osp.join(root, 'depth', '00005.png')), encode_depth(
            m['depth']))
    normals = decode_normals(read_png(osp.join(root, 'normals',
                                               '00005.png')))
    assert np.abs(normals - m['normals']).max() <= 1 / 255 + 1e-6
    with open(osp.join(root, 'cameras.json')) as f:
        cams = json.load(f)
    assert cams['00005']['fx'] == pytest.approx(m['intrinsics']['fx'])


def test_label_mappings(dataset_dirs):
    root = dataset_dirs[0]
    with open(osp.join(root, 'splits', 'train.txt')) as f:
        train = f.read().split()
    one = load_label_mapping(
        osp.join(root, 'mappings', 'onelabel.json'), SYNTHETIC_TASKS)
    assert sorted(one) == train
    assert all(sum(flags) == 1 for flags in one.values())
    rand = load_label_mapping(
        osp.join(root, 'mappings', 'randomlabels.json'), SYNTHETIC_TASKS)
    assert sorted(rand) == train
    assert all(1 <= sum(flags) < len(SYNTHETIC_TASKS)
               for flags in rand.values())


def _all_files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def test_same_seed_byte_identical(dataset_dirs):
    a, b, _ = dataset_dirs
    files = _all_files(a)
    assert files == _all_files(b)
    # 8 images x (image + 6 maps), 3 splits, 2 mappings, 2 jsons
    assert len(files) == 8 * 7 + 3 + 2 + 2
    match, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    assert not mismatch and not errors


def test_other_seed_differs(dataset_dirs):
    a, _, c = dataset_dirs
    for img_id in ('00000', '00004'):
        for sub in ('images', 'depth'):
            name = osp.join(sub, img_id + '.png')
            assert not filecmp.cmp(osp.join(a, name), osp.join(c, name),
                                   shallow=False)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='positive number'):
        generate_synthetic_scenes(
            str(tmp_path), num_train=0, num_val=0, num_test=0)
    with pytest.raises(ValueError, match='num_test=-1'):
        generate_synthetic_scenes(
            str(tmp_path), num_train=2, num_val=0, num_test=-1)
    with pytest.raises(ValueError, match='too small'):
        generate_synthetic_scenes(
            str(tmp_path), 2, 0, 0, height=4, width=4)


def test_preview_tiles(samples):
    from diffmtl.datasets.synthetic import (PREVIEW_COLUMNS, SEMSEG_PALETTE,
                                            colorize_sample, render_preview)
    m = next(m for _, m in samples if m['window'].any())
    tiles = colorize_sample(m)
    assert len(tiles) == len(PREVIEW_COLUMNS)
    sem = tiles[PREVIEW_COLUMNS.index('semseg')]
    palette = np.array(SEMSEG_PALETTE, np.uint8)
    np.testing.assert_array_equal(sem, palette[m['semseg']])
    depth = tiles[PREVIEW_COLUMNS.index('depth')]
    assert (depth[m['window']] == 0).all()
    assert (depth[~m['window']] >= 55).all()
    pic = render_preview([0, 1], seed=0, height=H, width=W, gap=2)
    assert pic.shape == (2 * H + 2, 7 * W + 6 * 2, 3)
    np.testing.assert_array_equal(pic[:H, :W],
                                  render_sample(0, 0, H, W)['img'])


def test_test_split_leaves_train_val_unchanged(tmp_path, dataset_dirs):
    """A dataset without a test split has byte-identical train/val files
    and mappings: the test images are rendered after val."""
    a = dataset_dirs[0]
    b = str(tmp_path / 'no_test')
    generate_synthetic_scenes(
        b, num_train=4, num_val=2, num_test=0, height=H, width=W, seed=0,
        workers=1)
    shared = [f for f in _all_files(b) if f not in ('meta.json', )]
    assert 'splits/test.txt' in shared  # written, empty
    with open(osp.join(b, 'splits', 'test.txt')) as f:
        assert f.read() == ''
    shared.remove('splits/test.txt')
    shared.remove('cameras.json')  # lists the test images' cameras too
    match, mismatch, errors = filecmp.cmpfiles(a, b, shared, shallow=False)
    assert not mismatch and not errors
