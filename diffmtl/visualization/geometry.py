# Copyright (c) diffmtl contributors. All rights reserved.
"""Where the image lies inside a padded network input."""
from typing import Tuple

__all__ = ['unpad_window']


def unpad_window(meta: dict, padded_hw) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right) slice bounds of the image in its padded
    input.

    Reads the total padding ``padding_size`` (diffmtl's preprocessor, which
    includes padding done by the pipeline), else mmseg's
    ``img_padding_size``, both ``(left, right, top, bottom)``; without
    either the image is the top-left ``img_shape`` block.
    """
    h, w = int(padded_hw[0]), int(padded_hw[1])
    pad = meta.get('padding_size') or meta.get('img_padding_size')
    if pad is not None and len(pad) == 4:
        left, right, top, bottom = (int(p) for p in pad)
        return top, h - bottom, left, w - right
    ih, iw = meta.get('img_shape', (h, w))[:2]
    return 0, min(int(ih), h), 0, min(int(iw), w)
