# Copyright (c) diffmtl contributors. All rights reserved.
from .residual_decoder import ResidualTaskDecoder

__all__ = ['ResidualTaskDecoder']
