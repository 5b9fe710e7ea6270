# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl: DiffusionMTL multi-task dense prediction for OpenMMLab.

Importing this package registers every diffmtl dataset, transform, model,
metric, hook and visualiser into MMSegmentation's registries, so configs
only need ``custom_imports=dict(imports=['diffmtl'])`` and
``default_scope='mmseg'``.
"""
from .version import __version__  # noqa: F401
from .stack import import_mmseg, mm_stack  # noqa: F401

import_mmseg()
from . import structures  # noqa: F401,E402  (first: others read TaskSpecs)
from . import tasks  # noqa: F401,E402  (the kinds and the built-in tasks)
from . import utils  # noqa: F401,E402
from . import datasets  # noqa: F401,E402
from . import models  # noqa: F401,E402
from . import evaluation  # noqa: F401,E402
from . import engine  # noqa: F401,E402
from . import visualization  # noqa: F401,E402
from . import apis  # noqa: F401,E402

__all__ = ['__version__', 'mm_stack']
