# Copyright (c) diffmtl contributors. All rights reserved.
"""JTR joint-task regularisation (an OpenMMLab project): the parts that
do not depend on the model class.

Importing this package (``custom_imports=dict(imports=['diffmtl',
'projects.jtr.jtr'])``) registers :class:`SegNetAutoEncoder` and
:class:`JTRLoss` into diffmtl's (mmseg's) ``MODELS`` registry.
"""
from .autoencoder import SegNetAutoEncoder
from .encodings import (BINARY_MODES, ENCODINGS, NORMALISERS, BinaryEncoding,
                        CategoricalEncoding, DepthEncoding, NormalsEncoding,
                        TaskEncoding, build_encoding, encoding_channels,
                        register_encoding)
from .jtr_loss import JTRLoss, frozen_latent

__all__ = [
    'SegNetAutoEncoder', 'JTRLoss', 'frozen_latent', 'ENCODINGS',
    'NORMALISERS', 'BINARY_MODES', 'TaskEncoding', 'CategoricalEncoding',
    'BinaryEncoding', 'NormalsEncoding', 'DepthEncoding', 'build_encoding',
    'encoding_channels', 'register_encoding'
]
