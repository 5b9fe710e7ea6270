# Copyright (c) diffmtl contributors. All rights reserved.
"""Writers of tiny files in the exact public dataset formats."""
import os
import os.path as osp

import numpy as np
from PIL import Image
from scipy.io import savemat


def write_png(path, arr, palette=False):
    os.makedirs(osp.dirname(path), exist_ok=True)
    arr = np.asarray(arr)
    if palette:
        # A palette ('P') PNG whose pixel values are the class indices.
        h, w = arr.shape
        img = Image.frombytes('P', (w, h), arr.astype(np.uint8).tobytes())
        pal = []
        for i in range(256):
            pal += [(i * 37) % 256, (i * 91) % 256, (i * 53) % 256]
        img.putpalette(pal)
        img.save(path)
    elif arr.dtype == np.uint16:
        import cv2
        cv2.imwrite(path, arr)
    else:
        Image.fromarray(arr.astype(np.uint8)).save(path)
    return path


def write_parts_mat(path, objects, name='2008_000001'):
    """PASCAL-Part ``anno`` file.

    Args:
        objects: list of (class_index, instance_mask, [(part_name, mask)]).
    """
    os.makedirs(osp.dirname(path), exist_ok=True)
    objs = np.zeros((1, len(objects)),
                    dtype=[('class', 'O'), ('class_ind', 'O'), ('mask', 'O'),
                           ('parts', 'O')])
    for k, (cls_ind, mask, parts) in enumerate(objects):
        objs[0, k]['class'] = np.array(['person' if cls_ind == 15 else 'x'])
        objs[0, k]['class_ind'] = np.array([[cls_ind]], dtype=np.uint8)
        objs[0, k]['mask'] = mask.astype(np.uint8)
        if parts:
            parr = np.zeros((1, len(parts)),
                            dtype=[('part_name', 'O'), ('mask', 'O')])
            for j, (pname, pmask) in enumerate(parts):
                parr[0, j]['part_name'] = np.array([pname])
                parr[0, j]['mask'] = pmask.astype(np.uint8)
            objs[0, k]['parts'] = parr
        else:
            objs[0, k]['parts'] = np.zeros((0, 0))
    anno = np.zeros((1, 1), dtype=[('imname', 'O'), ('objects', 'O')])
    anno[0, 0]['imname'] = np.array([name])
    anno[0, 0]['objects'] = objs
    savemat(path, {'anno': anno})
    return path


def write_label_map_mat(path, label):
    os.makedirs(osp.dirname(path), exist_ok=True)
    savemat(path, {'LabelMap': np.asarray(label, dtype=np.uint16)})
    return path


def write_npy(path, arr):
    os.makedirs(osp.dirname(path), exist_ok=True)
    np.save(path, arr)
    return path
