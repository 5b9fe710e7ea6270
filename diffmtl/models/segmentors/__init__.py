# Copyright (c) diffmtl contributors. All rights reserved.
from .base_multitask import BaseMultiTaskSegmentor
from .diffusion_mtl import DiffusionMTL
from .mtl_baseline import MultiTaskBaseline

__all__ = ['BaseMultiTaskSegmentor', 'DiffusionMTL', 'MultiTaskBaseline']
