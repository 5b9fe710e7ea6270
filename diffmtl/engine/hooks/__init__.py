# Copyright (c) diffmtl contributors. All rights reserved.
from .input_check_hook import InputCheckHook

__all__ = ['InputCheckHook']
