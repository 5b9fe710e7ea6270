# Copyright (c) diffmtl contributors. All rights reserved.
"""What the two binary-label kinds (saliency, boundary) share."""
from typing import ClassVar

import numpy as np

from diffmtl.structures import TaskKind

__all__ = ['BinaryMapKind', 'export_probability_png']


def export_probability_png(pred: np.ndarray, path: str) -> str:
    """Write a (1, H, W) probability as ``uint8(p * 255)`` PNG (truncated,
    as the reference's dump)."""
    import mmcv
    pred = pred.reshape(pred.shape[-2:]).astype(np.float64)
    mmcv.imwrite((np.clip(pred, 0, 1) * 255).astype(np.uint8), path)
    return path


class BinaryMapKind(TaskKind):
    """Base of kinds with 0/1 labels (255 = unlabelled) whose prediction is
    a probability: 2 valid labels, drawn grey, exported as a probability
    PNG. Not registered itself."""
    cmap: ClassVar[str] = 'gray'
    export_suffix: ClassVar[str] = '.png'

    def num_labels(self, spec, num_classes):
        return 2

    def export(self, spec, pred, path_stem):
        return export_probability_png(pred, path_stem + self.export_suffix)
