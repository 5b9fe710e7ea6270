# Copyright (c) diffmtl contributors. All rights reserved.
"""Training batches of a config, for the analysis tools that look at a
trained model the way training does (gradient norms, JTR's latent
distances)."""
from typing import List

__all__ = ['training_batches']


def training_batches(cfg, num_batches: int, seed: int = 0) -> List[dict]:
    """The first ``num_batches`` batches of ``cfg.train_dataloader``.

    The loader is built as ``tools/train.py`` builds it (its dataset,
    pipeline with augmentation, sampler and batch size, in the config's
    ``default_scope``), seeded with ``seed``, but in this process (no
    worker processes). The global generators (``random``, numpy, torch)
    are seeded with ``seed`` first, so the same seed gives the same
    batches, augmentation included.

    Args:
        cfg (mmengine.Config): A training config.
        num_batches (int): How many batches (fewer when the loader ends).
        seed (int): The loader's seed (sampler order, augmentation).

    Returns:
        list[dict]: The collated batches (``inputs``, ``data_samples``),
        not yet through the model's data preprocessor.
    """
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner, set_random_seed
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg['num_workers'] = 0
    loader_cfg['persistent_workers'] = False
    batches = []
    # the pipeline's random transforms draw from the global generators of
    # this process: seeded, so that the same seed gives the same batches
    set_random_seed(seed)
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmseg')):
        loader = Runner.build_dataloader(loader_cfg, seed=seed)
        for data in loader:
            if len(batches) >= num_batches:
                break
            batches.append(data)
    return batches
