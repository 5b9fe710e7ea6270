# Copyright (c) diffmtl contributors. All rights reserved.
from .bce_loss import WeightedBCELoss
from .cross_entropy_loss import BalancedCrossEntropyLoss, MTCrossEntropyLoss
from .regression_loss import DepthL1Loss, NormalsL1Loss

__all__ = [
    'MTCrossEntropyLoss', 'BalancedCrossEntropyLoss', 'WeightedBCELoss',
    'NormalsL1Loss', 'DepthL1Loss'
]
