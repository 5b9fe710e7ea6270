# Copyright (c) diffmtl contributors. All rights reserved.
import os.path as osp
import sys

import pytest
import torch

# The format writers (mt_format_writers.py) live next to the tests.
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Dataset pipelines build transforms by name in mmseg's scope."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')
    yield
