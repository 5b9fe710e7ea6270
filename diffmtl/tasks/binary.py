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

    def check_encoding(self, spec, maps, paths):
        """Refuse maps that look 0/255-encoded (``docs/en/datasets.md``).

        A sample in which some file holds the ignore value (255) but no
        file holds a single 1 is almost certainly a 0/255 map: every
        positive pixel would be read as *ignore* and the task would train
        and score on background only.
        """
        warnings = super().check_encoding(spec, maps, paths)
        ignore = spec.ignore_index
        if ignore is None or not maps:
            return warnings
        positives = sum(int(np.count_nonzero(m == 1)) for m in maps)
        with_ignore = [p for m, p in zip(maps, paths) if np.any(m == ignore)]
        if positives == 0 and with_ignore:
            shown = ', '.join(repr(p) for p in with_ignore[:3])
            raise ValueError(
                f'task {spec.name!r}: none of the {len(maps)} sampled '
                f'annotation files holds the value 1, but {len(with_ignore)}'
                f' hold {ignore} (e.g. {shown}): these look like 0/{ignore} '
                f'maps. diffmtl reads {spec.name!r} maps as 0 / 1 with '
                f'{ignore} = ignore, so every positive pixel would be '
                f'ignored. Re-save the maps with 1 for positive pixels, or '
                f'read them thresholded (v / 255 > 0.5 -> 1, no ignore '
                f"value) with the dataset option ann_formats={{"
                f"{spec.name!r}: 'threshold_png'}}")
        return warnings

    def export(self, spec, pred, path_stem):
        return export_probability_png(pred, path_stem + self.export_suffix)
