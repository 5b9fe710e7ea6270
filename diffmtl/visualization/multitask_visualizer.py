# Copyright (c) diffmtl contributors. All rights reserved.
"""Visualiser that draws every task of a multi-task sample as a grid."""
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmengine.dist import master_only
from mmseg.structures import SegDataSample
from mmseg.visualization import SegLocalVisualizer

from diffmtl.registry import VISUALIZERS
from diffmtl.structures import (TASK_SPECS, get_task_spec, resize_map,
                                unpad_window)
from .task_tiles import (draw_caption, draw_legend, draw_task_tile,
                         draw_unlabelled_tile, fit_to_shape, to_numpy_map)

__all__ = ['MultiTaskLocalVisualizer', 'compose_grid', 'sample_tasks']

#: Gap between tiles of a grid, in pixels, and its colour.
GAP = 2
GAP_COLOR = 255


def sample_tasks(data_sample: Optional[SegDataSample],
                 dataset_meta: Optional[dict] = None) -> Tuple[str, ...]:
    """Tasks to draw for ``data_sample``.

    ``metainfo['tasks']`` of the sample, else ``dataset_meta['tasks']``, else
    every registered task that has a ground-truth or prediction field in the
    sample (in registration order).
    """
    if data_sample is not None and 'tasks' in data_sample.metainfo:
        return tuple(data_sample.metainfo['tasks'])
    if dataset_meta and dataset_meta.get('tasks'):
        return tuple(dataset_meta['tasks'])
    if data_sample is None:
        return ()
    return tuple(
        name for name, spec in TASK_SPECS.items()
        if spec.gt_field in data_sample or spec.pred_field in data_sample)


def compose_grid(rows: Sequence[Sequence[Optional[np.ndarray]]],
                 gap: int = GAP,
                 fill: int = GAP_COLOR) -> Tuple[np.ndarray, list]:
    """Paste RGB tiles into a grid.

    Args:
        rows (list[list[ndarray | None]]): Tiles per row; ``None`` leaves a
            cell empty. Column ``j`` is as wide as its widest tile, row ``i``
            as tall as its tallest one; tiles sit at the cell's top-left.
        gap (int): Pixels between cells.
        fill (int): Grey level of gaps and empty space.

    Returns:
        tuple: (H, W, 3) ``uint8`` canvas and, per row, the (y, x) top-left
        corner of each cell.
    """
    ncols = max(len(r) for r in rows)
    col_w = [0] * ncols
    row_h = []
    for r in rows:
        row_h.append(max([t.shape[0] for t in r if t is not None] or [0]))
        for j, t in enumerate(r):
            if t is not None:
                col_w[j] = max(col_w[j], t.shape[1])
    height = sum(row_h) + gap * (len(rows) - 1)
    width = sum(col_w) + gap * (ncols - 1)
    canvas = np.full((max(height, 1), max(width, 1), 3), fill, np.uint8)
    corners = []
    y = 0
    for i, r in enumerate(rows):
        x = 0
        row_corners = []
        for j in range(ncols):
            t = r[j] if j < len(r) else None
            row_corners.append((y, x))
            if t is not None:
                canvas[y:y + t.shape[0], x:x + t.shape[1]] = t
            x += col_w[j] + gap
        corners.append(row_corners)
        y += row_h[i] + gap
    return canvas, corners


@VISUALIZERS.register_module()
class MultiTaskLocalVisualizer(SegLocalVisualizer):
    """Draw the ground truth and predictions of every task side by side.

    The picture is a grid with one column per task (dataset order), preceded
    by the input image: the ground-truth row on top, the prediction row
    below and, with ``with_labels``, a row of class legends under the
    segmentation-kind tasks (classes present in the ground truth or the
    prediction). Each tile comes from :func:`draw_task_tile`; a task that is
    not labelled for the image (``metainfo['task_mask']``) is drawn as a
    hatched grey "unlabelled" tile. Depth ground truth and prediction share
    one colour scale (the ground truth's valid range).

    The ``add_datasample`` signature is that of
    :class:`mmseg.visualization.SegLocalVisualizer`, so
    ``MultiTaskVisualizationHook`` (and mmseg's ``SegVisualizationHook``) (``tools/test.py --show-dir``) drives it.

    Args:
        name (str): Instance name. Defaults to 'visualizer'.
        image (ndarray, optional): Initial RGB image.
        vis_backends (list[dict], optional): Visual backend configs.
        save_dir (str, optional): Directory of the backends' files.
        classes, palette (list, optional): ``semseg`` classes and palette
            (mmseg compatibility); ``dataset_meta`` set by the runner
            overrides them.
        dataset_name (str, optional): mmseg dataset alias for the defaults.
        alpha (float): Opacity of segmentation colours over the image;
            1 (default) draws plain label colours.
        tile_captions (bool): Write "<task> GT" / "<task> pred" bars above
            the tiles. Defaults to True.
    """

    def __init__(self,
                 name: str = 'visualizer',
                 image: Optional[np.ndarray] = None,
                 vis_backends: Optional[List[dict]] = None,
                 save_dir: Optional[str] = None,
                 classes: Optional[List] = None,
                 palette: Optional[List] = None,
                 dataset_name: Optional[str] = None,
                 alpha: float = 1.0,
                 tile_captions: bool = True,
                 **kwargs) -> None:
        super().__init__(name=name,
                         image=image,
                         vis_backends=vis_backends,
                         save_dir=save_dir,
                         classes=classes,
                         palette=palette,
                         dataset_name=dataset_name,
                         alpha=alpha,
                         **kwargs)
        # SegLocalVisualizer.__init__ passes (palette, classes) to
        # set_dataset_meta(classes, palette) in mmseg 1.2.2; set them in the
        # right order.
        self.set_dataset_meta(classes, palette, dataset_name)
        self.tile_captions = tile_captions
        #: Cell corners of the last drawn grid: ``{(row, column): (y, x)}``
        #: with rows 'gt', 'pred', 'legend' and columns 'image' or a task;
        #: tiles start below the caption bar (see ``last_caption_height``).
        self.last_layout: Dict[Tuple[str, str], Tuple[int, int]] = {}
        self.last_caption_height = 0

    @staticmethod
    def _gt_to_image(arr: np.ndarray, meta: dict, hw) -> np.ndarray:
        """Bring a ground-truth map to the image size ``hw``.

        A map of the padded input size (``pad_shape``) is first cut to the
        image window (:func:`unpad_window`); a map of any other size is
        resized (nearest), e.g. ground truth a test pipeline rescaled.
        """
        pad_shape = meta.get('pad_shape')
        if pad_shape is not None and tuple(arr.shape[:2]) == tuple(
                pad_shape[:2]) and tuple(arr.shape[:2]) != tuple(hw):
            top, bottom, left, right = unpad_window(meta, arr.shape[:2])
            arr = arr[top:bottom, left:right]
        if tuple(arr.shape[:2]) == tuple(hw):
            return arr
        return resize_map(arr, hw)

    def draw_multitask(self,
                       image: np.ndarray,
                       data_sample: SegDataSample,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       with_labels: bool = True) -> np.ndarray:
        """Render the task grid of one sample.

        Args:
            image (ndarray): (H, W, 3) RGB image; every tile is drawn at
                this size (padded maps are cropped, others resized with
                nearest-neighbour interpolation).
            data_sample (SegDataSample): Sample with ``spec.gt_field`` /
                ``spec.pred_field`` per task and optional ``metainfo``
                ``tasks`` and ``task_mask``.
            draw_gt, draw_pred (bool): Which rows to draw.
            with_labels (bool): Whether to add class legends.

        Returns:
            ndarray: (H', W', 3) ``uint8`` RGB grid.
        """
        meta = self.dataset_meta or {}
        tasks = sample_tasks(data_sample, meta)
        hw = image.shape[:2]
        mask = data_sample.metainfo.get('task_mask')
        if mask is None:  # no partial labels: everything present counts
            labelled = dict.fromkeys(tasks, True)
        else:
            names = data_sample.metainfo.get('tasks', tasks)
            labelled = dict(zip(names, map(bool, mask)))

        gt_maps, pred_maps = {}, {}
        for task in tasks:
            spec = get_task_spec(task)
            if spec.gt_field in data_sample and labelled.get(task, False):
                gt_maps[task] = self._gt_to_image(
                    to_numpy_map(data_sample.get(spec.gt_field),
                                 spec.gt_channels), data_sample.metainfo, hw)
            if spec.pred_field in data_sample:
                pred_maps[task] = fit_to_shape(to_numpy_map(
                    data_sample.get(spec.pred_field), spec.gt_channels),
                                               hw,
                                               nearest=True)
        has_gt_field = any(
            get_task_spec(t).gt_field in data_sample for t in tasks)

        def _caption(tile, text):
            return draw_caption(tile, text) if self.tile_captions else tile

        # GT and prediction tiles of a task share the GT's value range
        # (else the prediction's; None: the kind's colours are fixed)
        ranges = {}
        for task in tasks:
            spec = get_task_spec(task)
            ranges[task] = spec.task_kind.shared_value_range(
                spec, gt_maps.get(task), pred_maps.get(task))

        rows, names = [], []  # names: 'gt' / 'pred' / 'legend' per row
        if draw_gt and has_gt_field:
            row = [_caption(image, 'image')]
            for task in tasks:
                if task in gt_maps:
                    tile = draw_task_tile(task, gt_maps[task], meta,
                                          ranges.get(task), image, self.alpha)
                else:
                    tile = draw_unlabelled_tile(*hw)
                row.append(_caption(tile, f'{task} GT'))
            rows.append(row)
            names.append('gt')
        if draw_pred and pred_maps:
            row = [_caption(image, 'image')]
            for task in tasks:
                if task in pred_maps:
                    tile = draw_task_tile(task,
                                          pred_maps[task],
                                          meta,
                                          ranges.get(task),
                                          image,
                                          self.alpha,
                                          mark_invalid=False)
                else:
                    tile = draw_unlabelled_tile(*hw, text='no prediction')
                row.append(_caption(tile, f'{task} pred'))
            rows.append(row)
            names.append('pred')
        if not rows:
            rows.append([image])
            names.append('image')
        if with_labels and names != ['image']:
            legends, any_legend = [None], False
            for task in tasks:
                ids = set()
                for maps in ((gt_maps if 'gt' in names else {}),
                             (pred_maps if 'pred' in names else {})):
                    if task in maps and get_task_spec(
                            task).task_kind.has_classes:
                        ids.update(np.unique(maps[task]).tolist())
                legend = draw_legend(task, meta, hw[1], sorted(ids)) \
                    if ids else None
                any_legend |= legend is not None
                legends.append(legend)
            if any_legend:
                rows.append(legends)
                names.append('legend')

        canvas, corners = compose_grid(rows)
        columns = ['image'] + list(tasks)
        self.last_layout = {
            (rname, col): corners[i][j]
            for i, rname in enumerate(names)
            for j, col in enumerate(columns) if j < len(corners[i])
        }
        self.last_caption_height = (rows[0][0].shape[0] -
                                    hw[0] if self.tile_captions
                                    and names[0] != 'image' else 0)
        return canvas

    @master_only
    def add_datasample(self,
                       name: str,
                       image: np.ndarray,
                       data_sample: Optional[SegDataSample] = None,
                       draw_gt: bool = True,
                       draw_pred: bool = True,
                       show: bool = False,
                       wait_time: float = 0,
                       out_file: Optional[str] = None,
                       step: int = 0,
                       with_labels: Optional[bool] = True) -> None:
        """Draw a multi-task sample and send it to the backends.

        Args:
            name (str): Image identifier (backend file name stem).
            image (ndarray): (H, W, 3) RGB image.
            data_sample (SegDataSample, optional): Sample with ground truth
                and/or predictions; without it only the image is drawn.
            draw_gt, draw_pred (bool): Which rows to draw.
            show (bool): Display the picture in a window.
            wait_time (float): Seconds to show it for.
            out_file (str, optional): Write the picture there instead of
                sending it to the backends.
            step (int): Global step recorded by the backends.
            with_labels (bool): Whether to add class legends.
        """
        image = np.ascontiguousarray(image)
        if data_sample is None:
            drawn = image
        else:
            drawn = self.draw_multitask(image, data_sample, draw_gt, draw_pred,
                                        bool(with_labels))
        self.set_image(drawn)
        if show:
            self.show(drawn, win_name=name, wait_time=wait_time)
        if out_file is not None:
            mmcv.imwrite(mmcv.rgb2bgr(drawn), out_file)
        else:
            self.add_image(name, drawn, step)
