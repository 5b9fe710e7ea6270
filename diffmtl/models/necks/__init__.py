# Copyright (c) diffmtl contributors. All rights reserved.
from .stage_fusion import StageFusionNeck

__all__ = ['StageFusionNeck']
