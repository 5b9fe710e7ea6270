# Copyright (c) diffmtl contributors. All rights reserved.
"""Multi-task data transforms (registered in mmseg's ``TRANSFORMS``).

Colour augmentation needs no multi-task class: mmseg's
``PhotoMetricDistortion`` only reads and writes ``results['img']`` (a BGR
``uint8`` image, as the loaders give), so it can be placed anywhere in a
multi-task pipeline after loading.
"""
from .formatting import PackMultiTaskInputs
from .geometric import (MultiTaskPad, MultiTaskRandomCrop, MultiTaskRandomFlip,
                        MultiTaskRandomResize, MultiTaskRandomScaleCrop)
from ..formats import ANN_DECODERS, decode_annotation, register_ann_decoder
from .ignore import MultiTaskIgnoreEmptyMaps
from .loading import LoadMultiTaskAnnotations, LoadMultiTaskImageFromFile

__all__ = [
    'LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations', 'ANN_DECODERS',
    'register_ann_decoder', 'decode_annotation', 'PackMultiTaskInputs',
    'MultiTaskRandomResize', 'MultiTaskRandomCrop', 'MultiTaskPad',
    'MultiTaskRandomFlip', 'MultiTaskRandomScaleCrop',
    'MultiTaskIgnoreEmptyMaps'
]
