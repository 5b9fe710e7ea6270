# Copyright (c) diffmtl contributors. All rights reserved.
"""JTR joint-task regularisation on the MTL baseline (an OpenMMLab
project).

Importing this package (``custom_imports=dict(imports=['diffmtl',
'projects.jtr.jtr'])``) registers :class:`JTRMultiTaskBaseline`,
:class:`SegNetAutoEncoder`, :class:`JTRLoss` and :class:`JTRViews` into
diffmtl's (mmseg's) ``MODELS`` registry.
"""
from .autoencoder import SegNetAutoEncoder
from .encodings import (BINARY_MODES, ENCODINGS, NORMALISERS, SEG_MODES,
                        BinaryEncoding, CategoricalEncoding, DepthEncoding,
                        NormalsEncoding, TaskEncoding, build_encoding,
                        encoding_channels, register_encoding)
from .jtr_baseline import JTRMultiTaskBaseline
from .jtr_loss import JTRLoss, frozen_latent
from .views import (PHOTOMETRIC_OPS, VIEW_INTERPS, JTRViews, ViewParams,
                    crop_resize, photometric_op, quantise)

__all__ = [
    'JTRMultiTaskBaseline', 'SegNetAutoEncoder', 'JTRLoss', 'JTRViews',
    'frozen_latent', 'ENCODINGS', 'NORMALISERS', 'SEG_MODES', 'BINARY_MODES',
    'TaskEncoding', 'CategoricalEncoding', 'BinaryEncoding', 'NormalsEncoding',
    'DepthEncoding', 'build_encoding', 'encoding_channels',
    'register_encoding', 'PHOTOMETRIC_OPS', 'VIEW_INTERPS', 'ViewParams',
    'crop_resize', 'photometric_op', 'quantise'
]
