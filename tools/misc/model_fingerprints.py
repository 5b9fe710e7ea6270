# Copyright (c) diffmtl contributors. All rights reserved.
"""Fingerprints of the model every experiment config builds.

For every config under ``configs/diffmtl/``, ``configs/baselines/`` and
``projects/*/configs/`` (:data:`CONFIG_GLOBS`) the model is built offline
(pretrained ``init_cfg`` / ``pretrained`` entries dropped, so nothing is
downloaded) and recorded as:

* ``num_params``: the parameter count;
* ``num_keys`` and ``keys_sha256``: the number of state-dict entries and a
  sha256 of the ordered list ``'<key>:<shape>:<dtype>'``;
* ``values_sha256`` (models under :data:`SMALL_MODEL` parameters only, the
  synthetic-scene ones): a sha256 of the name, shape, dtype and bytes of
  every parameter and buffer after ``torch.manual_seed(0)``, building and
  ``init_weights()``, i.e. the initial values a seeded run starts from.

A config whose model refuses to build until the user sets something (JTR's
NYUD and Cityscapes configs without their depth statistics) is recorded as
``refuses``: the first line of its ``ValueError``, so that it keeps
refusing, with the same words.

Refactors of the model code must keep these equal
(``tests/test_models/test_config_identity.py`` checks them); regenerate the
file only when a model is meant to change.

Examples::

    python tools/misc/model_fingerprints.py \
        --out tests/data/model_fingerprints.json
    python tools/misc/model_fingerprints.py \
        --check tests/data/model_fingerprints.json
"""
import argparse
import contextlib
import copy
import glob
import hashlib
import json
import logging
import os
import os.path as osp
import sys
from typing import Dict, Iterable, List, Optional

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO not in sys.path:  # `import diffmtl` and XTC's `projects.xtc.xtc`
    sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

#: The configs that are fingerprinted, relative to the repository root.
CONFIG_GLOBS = ('configs/diffmtl/**/*.py', 'configs/baselines/**/*.py',
                'projects/*/configs/**/*.py')
#: Models with fewer parameters also get ``values_sha256``.
SMALL_MODEL = 20_000_000
#: Default fingerprint file, relative to the repository root.
DEFAULT_FILE = 'tests/data/model_fingerprints.json'
REGENERATE = ('regenerate it with `python tools/misc/model_fingerprints.py '
              f'--out {DEFAULT_FILE}` (only when the model is meant to '
              'change)')


def config_paths(root: str = REPO) -> List[str]:
    """Sorted repository-relative paths (``/``-separated) of the configs."""
    paths = set()
    for pattern in CONFIG_GLOBS:
        for p in glob.glob(osp.join(root, pattern), recursive=True):
            paths.add(osp.relpath(p, root).replace(os.sep, '/'))
    return sorted(paths)


def _is_pretrained(init_cfg) -> bool:
    items = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return any(
        isinstance(c, dict) and c.get('type') == 'Pretrained' for c in items)


def drop_pretrained(cfg):
    """Set every pretrained ``init_cfg`` and ``pretrained`` entry of a
    (nested) config to None, in place; returns ``cfg``."""
    if isinstance(cfg, dict):
        for key in list(cfg.keys()):
            value = cfg[key]
            if key == 'init_cfg' and _is_pretrained(value):
                cfg[key] = None
            elif key == 'pretrained' and isinstance(value, str):
                cfg[key] = None
            else:
                drop_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            drop_pretrained(value)
    return cfg


def model_config(path: str, root: str = REPO) -> dict:
    """The offline model config of a (repository-relative) config file."""
    import diffmtl  # noqa: F401  (registers the models)
    cfg = Config.fromfile(osp.join(root, path))
    return drop_pretrained(copy.deepcopy(cfg.model))


def model_key(model_cfg: dict) -> str:
    """A canonical string of a model config (equal configs, equal key)."""
    return json.dumps(_plain(model_cfg), sort_keys=True, default=repr)


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def build_model(model_cfg: dict, device: Optional[str] = None,
                seed: int = 0) -> torch.nn.Module:
    """``torch.manual_seed(seed)``, then build the model (on ``device``,
    e.g. ``'meta'``, or on the CPU)."""
    from diffmtl.registry import MODELS
    init_default_scope('mmseg')
    torch.manual_seed(seed)
    ctx = torch.device(device) if device else contextlib.nullcontext()
    with ctx:
        return MODELS.build(copy.deepcopy(model_cfg))


def _sha256(items: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(item)
    return h.hexdigest()


def structure_fingerprint(model: torch.nn.Module) -> Dict[str, object]:
    """``num_params``, ``num_keys`` and ``keys_sha256`` of a model (works
    on meta tensors)."""
    keys = [
        f'{k}:{tuple(v.shape)}:{v.dtype}'
        for k, v in model.state_dict().items()
    ]
    return dict(
        num_params=int(sum(p.numel() for p in model.parameters())),
        num_keys=len(keys),
        keys_sha256=_sha256([json.dumps(keys).encode()]))


def values_fingerprint(model: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer (name, shape, dtype, bytes)
    after ``model.init_weights()`` (whose per-parameter log is muted)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)

    def items():
        tensors = list(model.named_parameters()) + list(
            model.named_buffers())
        for name, t in tensors:
            t = t.detach().cpu().contiguous()
            yield f'{name}:{tuple(t.shape)}:{t.dtype}'.encode()
            yield t.reshape(-1).view(torch.uint8).numpy().tobytes() \
                if t.numel() else b''

    return _sha256(items())


def fingerprint(model_cfg: dict, values: Optional[bool] = None,
                device: Optional[str] = None) -> Dict[str, object]:
    """Fingerprint of one model config.

    Args:
        model_cfg (dict): Offline model config (see :func:`model_config`).
        values (bool, optional): Also hash the initial values; None: only
            for models under :data:`SMALL_MODEL` parameters.
        device (str, optional): Build on this device (``'meta'`` for the
            structure only); values need a real device.

    Returns:
        dict: ``num_params``, ``num_keys``, ``keys_sha256`` and, with
        values, ``values_sha256``; ``refuses`` (the first line of the
        error) for a model config that refuses to build with a
        ``ValueError``.
    """
    try:
        model = build_model(model_cfg, device=device)
    except ValueError as err:
        return dict(refuses=str(err).splitlines()[0])
    out = structure_fingerprint(model)
    if values is None:
        values = out['num_params'] < SMALL_MODEL
    if values:
        if device == 'meta':
            raise ValueError('values_sha256 needs a real device, not meta')
        out['values_sha256'] = values_fingerprint(model)
    return out


def compute_all(paths: Optional[List[str]] = None,
                verbose: bool = True) -> Dict[str, dict]:
    """``{config path: fingerprint}``; each distinct model config is built
    once."""
    paths = config_paths() if paths is None else paths
    cache: Dict[str, dict] = {}
    out = {}
    for path in paths:
        cfg = model_config(path)
        key = model_key(cfg)
        if key not in cache:
            cache[key] = fingerprint(cfg)
        out[path] = dict(cache[key])
        if verbose:
            fp = out[path]
            if 'refuses' in fp:
                print(f'{path}: refuses to build: {fp["refuses"]}',
                      flush=True)
                continue
            print(f'{path}: {fp["num_params"]} params, {fp["num_keys"]} '
                  f'keys{", values hashed" if "values_sha256" in fp else ""}',
                  flush=True)
    return out


def compare(expected: Dict[str, dict], actual: Dict[str, dict]) -> List[str]:
    """Human-readable differences between two fingerprint tables."""
    problems = []
    for path in sorted(set(expected) | set(actual)):
        if path not in expected:
            problems.append(f'{path}: not in the fingerprint file; '
                            f'{REGENERATE}')
            continue
        if path not in actual:
            problems.append(f'{path}: in the fingerprint file but not found')
            continue
        fields = set(expected[path]) | (
            {'refuses'} if 'refuses' in actual[path] else set())
        for field in sorted(fields):
            value = expected[path].get(field)
            if field.startswith('_'):
                continue
            if actual[path].get(field) != value:
                problems.append(f'{path}: {field} {actual[path].get(field)} '
                                f'!= recorded {value}')
    return problems


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument('--out', help='write the fingerprints to this JSON file')
    g.add_argument(
        '--check',
        metavar='FILE',
        help='compare the models of the current code with this file')
    p.add_argument(
        'configs',
        nargs='*',
        help='repository-relative config paths (default: all of '
        f'{", ".join(CONFIG_GLOBS)})')
    return p.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    paths = args.configs or None
    table = compute_all(paths)
    if args.out:
        data = dict(
            _about=('Model fingerprints of the experiment configs, written '
                    'by tools/misc/model_fingerprints.py; checked by '
                    'tests/test_models/test_config_identity.py.'),
            _torch=torch.__version__,
            _small_model=SMALL_MODEL,
            configs=table)
        with open(args.out, 'w') as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write('\n')
        print(f'wrote {len(table)} fingerprints to {args.out}')
        return
    with open(args.check) as f:
        expected = json.load(f)['configs']
    if paths is not None:
        expected = {k: v for k, v in expected.items() if k in table}
    problems = compare(expected, table)
    for line in problems:
        print(line)
    if problems:
        sys.exit(1)
    print(f'{len(table)} configs match {args.check}')


if __name__ == '__main__':
    main()
