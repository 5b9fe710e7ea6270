# Copyright (c) diffmtl contributors. All rights reserved.
"""Multi-task datasets, label mappings and loading transforms."""
from . import transforms  # noqa: F401
from .transforms import loading  # noqa: F401  (registers the loaders)
from . import synthetic  # noqa: F401
from .cityscapes_mt import CityscapesMTDataset
from .folder_mt import FolderMultiTaskDataset
from .label_mapping import (LABEL_SETTINGS, check_mapping_matches_split,
                            dump_label_mapping, generate_label_mapping,
                            label_mapping_stats, load_label_mapping,
                            parse_label_mapping)
from .multitask_partial import MultiTaskPartialDataset
from .nyud_mt import NYUDMTDataset
from .pascal_context_mt import PascalContextMTDataset
from .transforms.loading import (LoadMultiTaskAnnotations,
                                 LoadMultiTaskImageFromFile)

__all__ = [
    'MultiTaskPartialDataset', 'PascalContextMTDataset', 'NYUDMTDataset',
    'CityscapesMTDataset', 'FolderMultiTaskDataset', 'load_label_mapping',
    'parse_label_mapping', 'generate_label_mapping', 'dump_label_mapping',
    'label_mapping_stats', 'check_mapping_matches_split', 'LABEL_SETTINGS',
    'LoadMultiTaskImageFromFile', 'LoadMultiTaskAnnotations'
]
