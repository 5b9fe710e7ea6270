# Copyright (c) diffmtl contributors. All rights reserved.
"""Build a multi-task model from a config and run it on images.

Example:
    >>> from diffmtl.apis import init_model, inference_multitask
    >>> model = init_model('configs/diffmtl/xxx.py', 'iter_40000.pth')
    >>> maps = inference_multitask(model, 'demo.jpg')
    >>> maps['semseg'].shape, maps['normals'].shape
    ((375, 500), (375, 500, 3))
"""
import copy
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmseg.structures import SegDataSample

from diffmtl.engine import load_model_checkpoint
from diffmtl.registry import MODELS
from diffmtl.structures import (get_task_spec, image_padding,
                                task_class_names, unpad)
from diffmtl.tasks.colour import voc_palette
from .denoising import run_denoising_process

__all__ = [
    'init_model', 'inference_multitask', 'inference_denoising_process',
    'build_inference_pipeline', 'model_tasks', 'MIN_INPUT_SIZE'
]

ImageType = Union[str, Path, np.ndarray]
ImagesType = Union[ImageType, Sequence[ImageType]]
#: ``(low, high)``: the value range of float image arrays.
FloatRange = Tuple[float, float]

#: Smallest input side (px) the models take: the output stride of diffmtl's
#: backbones (ResNet, MiT, Swin: 32). Smaller inputs are padded up to it.
MIN_INPUT_SIZE = 32


def _strip_pretrained(cfg) -> None:
    """Drop ``Pretrained`` init_cfgs / ``pretrained`` paths in place.

    The checkpoint overwrites the weights anyway and this keeps inference
    offline.
    """
    if isinstance(cfg, dict):
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        if cfg.get('pretrained') is not None:
            cfg['pretrained'] = None
        for value in cfg.values():
            _strip_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _strip_pretrained(value)


def model_tasks(model: torch.nn.Module) -> Tuple[str, ...]:
    """Task names of a model: ``model.tasks``, else its dataset meta."""
    tasks = getattr(model, 'tasks', None)
    if tasks is None:
        tasks = (getattr(model, 'dataset_meta', None) or {}).get('tasks')
    if tasks is None:
        raise AttributeError(
            f'{type(model).__name__} has neither `tasks` nor '
            "`dataset_meta['tasks']`; cannot tell which tasks it predicts")
    return tuple(tasks)


def _default_dataset_meta(model: torch.nn.Module) -> dict:
    """Minimal meta when the checkpoint carries none: tasks, class names
    from ``num_classes`` / the spec defaults, VOC palettes."""
    tasks = model_tasks(model)
    num_classes = dict(getattr(model, 'num_classes', None) or {})
    meta = dict(tasks=tasks, task_classes={}, task_palettes={})
    for task in tasks:
        spec = get_task_spec(task)
        if not spec.task_kind.has_classes:
            continue
        classes = spec.default_classes
        n = num_classes.get(task, len(classes) if classes else None)
        if n is None:
            continue
        meta['task_classes'][task] = task_class_names(task, None, n)
        meta['task_palettes'][task] = voc_palette(n)
        if spec.mmseg_classes:  # mmseg's classes / palette
            meta['classes'] = meta['task_classes'][task]
            meta['palette'] = meta['task_palettes'][task]
    return meta


def init_model(config: Union[str, Path, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu',
               cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build a diffmtl model from a config and load its weights.

    Args:
        config (str | Path | Config): Config file or object (not modified).
        checkpoint (str, optional): Checkpoint path or URL, loaded with
            :func:`diffmtl.engine.load_model_checkpoint` (diffmtl's safe
            local loader). A checkpoint whose keys or shapes do not match
            the model raises ``CheckpointMismatchError`` unless
            ``cfg_options=dict(allow_partial_checkpoint=True)`` (or the
            config) allows partial loading. None keeps the initial
            weights.
        device (str): Device to put the model on. Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The model in eval mode with ``model.cfg`` (the config)
        and ``model.dataset_meta`` (from the checkpoint's
        ``meta['dataset_meta']``, else built from the tasks and classes).
    """
    if isinstance(config, (str, Path)):
        config = Config.fromfile(str(config))
    elif isinstance(config, Config):
        config = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file name or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    if config.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**config['custom_imports'])
    _strip_pretrained(config.model)
    init_default_scope(config.get('default_scope', 'mmseg'))
    model = MODELS.build(config.model)
    dataset_meta = None
    if checkpoint is not None:
        # Refuses checkpoints that do not fit the model (names the keys)
        # unless the config sets allow_partial_checkpoint = True.
        ckpt = load_model_checkpoint(
            model,
            str(checkpoint),
            map_location='cpu',
            allow_partial=bool(config.get('allow_partial_checkpoint',
                                          False)))
        dataset_meta = (ckpt.get('meta') or {}).get('dataset_meta')
    model.dataset_meta = dict(dataset_meta) if dataset_meta else \
        _default_dataset_meta(model)
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def build_inference_pipeline(cfg: Config, from_array: bool) -> Compose:
    """The config's test pipeline without annotation loading.

    Uses ``cfg.test_pipeline`` or ``cfg.test_dataloader.dataset.pipeline``,
    drops every transform whose type names annotations (e.g.
    ``LoadMultiTaskAnnotations``) and, for in-memory images, replaces the
    first (image loading, e.g. ``LoadMultiTaskImageFromFile``) transform by
    ``LoadImageFromNDArray``. ``cfg`` is not modified.
    """
    pipeline = cfg.get('test_pipeline')
    if pipeline is None:
        try:
            pipeline = cfg.test_dataloader.dataset.pipeline
        except AttributeError:
            raise KeyError('the config has neither `test_pipeline` nor '
                           '`test_dataloader.dataset.pipeline`') from None
    pipeline = [
        copy.deepcopy(dict(t)) for t in pipeline
        if 'Annotation' not in str(t.get('type', ''))
    ]
    if not pipeline:
        raise ValueError('the test pipeline is empty')
    if from_array:
        first = str(pipeline[0].get('type', ''))
        if 'Load' not in first or 'Image' not in first:
            raise ValueError('the test pipeline must start with an image '
                             f'loading transform, got {first!r}')
        pipeline[0] = dict(type='LoadImageFromNDArray',
                           to_float32=pipeline[0].get('to_float32', False))
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    return Compose(pipeline)


def _min_input_size(model) -> int:
    """:data:`MIN_INPUT_SIZE`, or the data preprocessor's (training or
    test) ``size_divisor`` when larger."""
    pre = getattr(model, 'data_preprocessor', None)
    sizes = [MIN_INPUT_SIZE]
    for div in (getattr(pre, 'size_divisor', None),
                (getattr(pre, 'test_cfg', None) or {}).get('size_divisor')):
        if div:
            sizes.append(int(div))
    return max(sizes)


def _test_padded_size(model, h: int, w: int) -> Tuple[int, int]:
    """Size the data preprocessor pads an (h, w) test input to."""
    test_cfg = getattr(getattr(model, 'data_preprocessor', None), 'test_cfg',
                       None) or {}
    size, div = test_cfg.get('size'), test_cfg.get('size_divisor')
    if size is not None:
        return max(h, int(size[-2])), max(w, int(size[-1]))
    if div and int(div) > 1:
        div = int(div)
        return -(-h // div) * div, -(-w // div) * div
    return h, w


def _fit_input(model, packed: dict, name: str) -> dict:
    """Refuse non-finite inputs; pad inputs below the model's minimum size.

    An input whose side is under :func:`_min_input_size` (and that the data
    preprocessor's test padding does not bring up to it) is zero-padded at
    the bottom/right; the padding is added to ``padding_size`` /
    ``img_padding_size`` (so the model crops it off) and recorded as
    ``metainfo['min_size_padding'] = (bottom, right)``.
    """
    inputs = packed['inputs']
    if inputs.is_floating_point() and not bool(torch.isfinite(inputs).all()):
        bad = int((~torch.isfinite(inputs)).sum())
        raise ValueError(f'{name}: the image holds {bad} non-finite values '
                         '(NaN or inf) after the test pipeline; inference '
                         'needs finite pixel values')
    h, w = (int(v) for v in inputs.shape[-2:])
    min_side = _min_input_size(model)
    th, tw = _test_padded_size(model, h, w)
    bottom = max(0, min_side - h) if th < min_side else 0
    right = max(0, min_side - w) if tw < min_side else 0
    if not (bottom or right):
        return packed
    packed['inputs'] = F.pad(inputs, (0, right, 0, bottom), value=0)
    sample = packed['data_samples']
    left0, right0, top0, bottom0 = (
        int(p) for p in (sample.metainfo.get('padding_size') or (0, ) * 4))
    total = (left0, right0 + right, top0, bottom0 + bottom)
    sample.set_metainfo(
        dict(padding_size=total,
             img_padding_size=total,
             pad_shape=(h + bottom, w + right),
             min_size_padding=(bottom, right)))
    return packed


def _check_padding_kept(model, sample: SegDataSample, name: str) -> None:
    """Raise if the preprocessor dropped the padding :func:`_fit_input`
    added (the maps would be stretched instead of cropped)."""
    added = sample.metainfo.get('min_size_padding')
    if not added:
        return
    pad = image_padding(sample.metainfo)  # what the model crops off
    if pad is None or int(pad[3]) < added[0] or int(pad[1]) < added[1]:
        raise RuntimeError(
            f'{name} is smaller than the model input minimum of '
            f'{_min_input_size(model)} px and was padded, but the data '
            'preprocessor overwrote the recorded padding, so its maps '
            'cannot be cropped back; use MultiTaskDataPreProcessor or set '
            'its test_cfg=dict(size_divisor=32)')


def _check_float_range(float_range: Optional[FloatRange]) -> None:
    if float_range is None:
        return
    try:
        low, high = (float(v) for v in float_range)
    except (TypeError, ValueError):
        raise ValueError('float_range must be a pair (low, high) of numbers, '
                         f'got {float_range!r}') from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError('float_range must be finite with low < high, got '
                         f'{float_range!r}')


def _check_array(image: np.ndarray, index: int,
                 float_range: Optional[FloatRange]) -> np.ndarray:
    """The array as the pipeline takes it: ``uint8`` as given, floats
    mapped from ``float_range`` to 0..255 (``float32``); see
    :func:`inference_multitask` for what is refused."""
    name = f'image array {index}'
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError('images must be (H, W, 3) BGR arrays, got shape '
                         f'{image.shape}')
    if image.size == 0:
        raise ValueError(f'image array {index} is empty (shape '
                         f'{image.shape})')
    if image.dtype == np.uint8:
        return image
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f'{name} has dtype {image.dtype}; inference takes uint8 images '
            '(0..255) or float images with float_range=(low, high). Convert '
            'it, e.g. a 16-bit image with img.astype(np.float32) and '
            'float_range=(0, 65535)')
    finite = np.isfinite(image)
    if not finite.all():
        raise ValueError(
            f'image array {index} holds {int((~finite).sum())} '
            f'non-finite values (NaN or inf) of {image.size}; '
            'inference needs finite pixel values')
    if float_range is None:
        raise ValueError(
            f'{name} is {image.dtype}: give the range of its values with '
            'float_range=(low, high), e.g. (0, 1) or (0, 255); it is mapped '
            'linearly to the 0..255 the model was trained on')
    low, high = (float(v) for v in float_range)
    lo, hi = float(image.min()), float(image.max())
    if lo < low or hi > high:
        raise ValueError(
            f'{name} holds values {lo:g}..{hi:g} outside '
            f'float_range=({low:g}, {high:g})')
    scaled = (image.astype(np.float64) - low) * (255. / (high - low))
    return scaled.astype(np.float32)


def _check_path(image: Union[str, Path], index: int) -> str:
    path = str(image)
    if Path(path).is_dir():
        raise ValueError(
            f'image {index}, {path!r}, is a directory; give image files '
            '(e.g. sorted(glob.glob(...))) or arrays')
    if not Path(path).exists() and '://' not in path:
        raise FileNotFoundError(f'image {index}: no such file {path!r}')
    return path


def _prepare(model,
             image: ImageType,
             index: int,
             float_range: Optional[FloatRange] = None) -> dict:
    """Run one image through the test pipeline; returns a packed item
    (checked and padded by :func:`_fit_input`)."""
    cfg = model.cfg
    if not isinstance(image, (str, Path, np.ndarray)):
        raise TypeError(f'image {index} is a {type(image).__name__}; give a '
                        'file path or an (H, W, 3) numpy array')
    from_array = isinstance(image, np.ndarray)
    pipeline = build_inference_pipeline(cfg, from_array)
    tasks = model_tasks(model)
    results = dict(tasks=tasks,
                   task_mask=(False, ) * len(tasks),
                   seg_fields=[],
                   reduce_zero_label=False,
                   label_map=None,
                   ann_paths={t: None
                              for t in tasks})
    if from_array:
        image = _check_array(image, index, float_range)
        results.update(img=image, img_id=f'array{index}')
        name = f'image array {index}'
    else:
        path = _check_path(image, index)
        results.update(img_path=path, img_id=Path(path).stem)
        name = repr(path)
    return _fit_input(model, pipeline(results), name)


def _to_original(task: str, pred: torch.Tensor,
                 sample: SegDataSample) -> np.ndarray:
    """(C, h, w) prediction -> (H, W) / (H, W, 3) map at ``ori_shape``.

    Models already return maps at the original size (the data contract);
    for one that does not, a map of the padded input size (``pad_shape``)
    is cut to the image window (:func:`~diffmtl.structures.unpad`, any
    padded side) and a map of any other size is resized by the task kind's
    :meth:`~diffmtl.structures.TaskKind.resize_pred` (nearest for class
    ids, bilinear otherwise, normals re-normalised).
    """
    spec = get_task_spec(task)
    arr = pred.detach().cpu().numpy()
    arr = arr[0] if spec.gt_channels == 1 else arr.transpose(1, 2, 0)
    meta = sample.metainfo
    ori = tuple(meta.get('ori_shape', arr.shape[:2])[:2])
    if tuple(arr.shape[:2]) == ori:
        return np.ascontiguousarray(arr)
    pad_shape = meta.get('pad_shape')
    if pad_shape is not None and tuple(arr.shape[:2]) == tuple(pad_shape[:2]):
        arr = unpad(arr, meta)
    if tuple(arr.shape[:2]) != ori:
        arr = spec.task_kind.resize_pred(arr, ori)
    return np.ascontiguousarray(arr)


def _as_list(images: ImagesType) -> Tuple[list, bool]:
    if isinstance(images, (list, tuple)):
        return list(images), True
    return [images], False


@torch.no_grad()
def inference_multitask(
    model: torch.nn.Module,
    images: ImagesType,
    return_datasamples: bool = False,
    float_range: Optional[FloatRange] = None
) -> Union[Dict[str, np.ndarray], List[Dict[str, np.ndarray]], SegDataSample,
           List[SegDataSample]]:
    """Predict every task of the model for one or more images.

    Each image goes through the config's test pipeline (minus annotation
    loading) and ``model.test_step`` on its own, so images of any size work:
    the pipeline / data preprocessor pad them to the model's size or size
    divisor and the result is brought back to the original size.

    Small images: an input (after the test pipeline) with a side below the
    model's minimum, :data:`MIN_INPUT_SIZE` (32 px, the backbones' output
    stride) or the data preprocessor's ``size_divisor`` when larger, is
    zero-padded at the bottom/right up to it unless the preprocessor's own
    test padding reaches it, and the predictions are cropped back: an 8x8
    image gives 8x8 maps, those of the top-left 8x8 block of the padded
    32x32 input. ``metainfo['min_size_padding']`` records the
    ``(bottom, right)`` pixels added.

    Accepted images: files the config's loading transform reads (PNG /
    JPEG decoded to ``uint8``, ``.npy`` as that transform documents), and
    (H, W, 3) BGR arrays that are either ``uint8`` (0..255) or floating
    point (``float16`` / ``float32`` / ``float64``) with an explicit
    ``float_range=(low, high)``: their values must lie in it and are mapped
    linearly to 0..255. Other dtypes (``uint16``, other integers, ``bool``)
    are refused rather than guessed at.

    A model with seeded inference noise (DiffusionMTL's
    ``inference_seed``) keys the noise by the pixels, so the same pixels
    give the same maps under any file name, as an array or a file, and
    twice in one call.

    Args:
        model (nn.Module): Model from :func:`init_model` (needs ``cfg``).
        images (str | Path | ndarray | sequence of them): Image files or
            (H, W, 3) BGR arrays, as above.
        return_datasamples (bool): Return the model's ``SegDataSample``
            instead of plain maps.
        float_range (tuple[float, float], optional): The value range of
            float arrays (required for them; unused for ``uint8`` arrays
            and files).

    Raises:
        ValueError: For an array that is not (H, W, 3), is empty, has
            another dtype than ``uint8`` / float, holds NaN / inf values, is
            float without ``float_range`` or has values outside it; for a
            directory; and for a file image with non-finite values
            (``.npy``); naming the image.
        FileNotFoundError: For a path that does not exist.
        TypeError: For an image that is neither a path nor an array.

    Returns:
        For one image a dict ``{task: map}`` (a list of them for a
        sequence), each map at the original (H, W): ``int64`` class ids for
        segmentation, ``float32`` probabilities for saliency and
        boundaries, ``float32`` (H, W, 3) unit normals, ``float32`` depth.
        With ``return_datasamples``, SegDataSample(s) instead.
    """
    if not hasattr(model, 'cfg'):
        raise AttributeError('model has no `cfg`; build it with '
                             'diffmtl.apis.init_model')
    items, is_batch = _as_list(images)
    tasks = model_tasks(model)
    outputs = []
    _check_float_range(float_range)
    for index, image in enumerate(items):
        packed = _prepare(model, image, index, float_range)
        sample = model.test_step(
            dict(inputs=[packed['inputs']],
                 data_samples=[packed['data_samples']]))[0]
        _check_padding_kept(model, sample, f'image {index}')
        if return_datasamples:
            outputs.append(sample)
            continue
        maps = {}
        for task in tasks:
            spec = get_task_spec(task)
            if spec.pred_field not in sample:
                raise KeyError(f'the model output has no {spec.pred_field!r} '
                               f'for task {task!r}')
            maps[task] = _to_original(task,
                                      sample.get(spec.pred_field).data, sample)
        outputs.append(maps)
    return outputs if is_batch else outputs[0]


def inference_denoising_process(
    model: torch.nn.Module,
    image: ImageType,
    seed: Optional[int] = 0,
    float_range: Optional[FloatRange] = None
) -> Dict[str, List[Tuple[str, np.ndarray]]]:
    """Run the denoising process of a DiffusionMTL model on one image.

    Args:
        model (nn.Module): Model from :func:`init_model` with
            ``denoising_process(inputs)``.
        image (str | Path | ndarray): Image file or (H, W, 3) BGR array,
            as :func:`inference_multitask` accepts them.
        seed (int, optional): Seed of the diffusion noise.
        float_range (tuple[float, float], optional): Value range of a
            float array (see :func:`inference_multitask`).

    Returns:
        dict: ``{task: [(stage, map)]}``, stages as the model names them
        (``initial``, ``noisy``, ``step_1`` ..., ``final``), maps as
        :func:`inference_multitask` returns them (original size).
    """
    _check_float_range(float_range)
    packed = _prepare(model, image, 0, float_range)
    result = run_denoising_process(
        model,
        dict(inputs=[packed['inputs']], data_samples=[packed['data_samples']]),
        seed)[0]
    sample = result.pop('data_sample')
    result.pop('window')
    return {
        task: [(name, _to_original(task, pred, sample))
               for name, pred in stages]
        for task, stages in result.items()
    }
