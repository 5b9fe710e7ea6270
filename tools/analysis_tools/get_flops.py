# Copyright (c) diffmtl contributors. All rights reserved.
"""Print parameters and multiply-accumulates (MACs) of a model's full
inference path.

MACs count convolutions, linear layers and the attention matmuls (see
``diffmtl.models.utils.complexity``), the convention of the DiffusionMTL
paper's "FLOPs" column. By default the model is built on the ``meta``
device (:func:`diffmtl.apis.build_for_counting`), so no memory is
allocated and nothing is computed.

Example::

    python tools/analysis_tools/get_flops.py \
        configs/diffmtl/pascal_one_r18.py --shape 512 512
"""
import argparse
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction

# Let project configs (custom_imports of projects.<name>) resolve from a
# checkout, as tools/train.py does.
REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from diffmtl.apis import build_for_counting  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Count parameters and MACs of a diffmtl model')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--shape', type=int, nargs='+', default=[512, 512],
        help='input size: H W (or one value for a square input)')
    parser.add_argument(
        '--device', default='meta',
        help="device to build and run on ('meta': shapes only)")
    parser.add_argument(
        '--by-module', action='store_true',
        help='also print MACs and parameters per top-level module')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, e.g. model.mode=prediction')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if len(args.shape) == 1:
        shape = (args.shape[0], args.shape[0])
    elif len(args.shape) == 2:
        shape = tuple(args.shape)
    else:
        raise ValueError('--shape takes H W or a single size')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    from diffmtl.models.utils.complexity import count_macs, count_parameters
    model = build_for_counting(cfg, args.device)
    inputs = torch.empty((1, 3) + shape, device=args.device)
    macs, counter = count_macs(model, inputs, forward=model._forward)
    params = count_parameters(model)
    line = '=' * 40
    print(f'{line}\nConfig: {args.config}\nInput shape: {shape}\n'
          f'Params: {params / 1e6:.2f} M ({params:,})\n'
          f'MACs: {macs / 1e9:.1f} G ({macs:,})\n{line}')
    if args.by_module:
        params_by = {}
        for name, p in model.named_parameters():
            key = name.split('.')[0]
            params_by[key] = params_by.get(key, 0) + p.numel()
        macs_by = counter.by_prefix(1)
        for key in sorted(set(params_by) | set(macs_by)):
            print(f'{key:<20} params {params_by.get(key, 0):>13,}  '
                  f'MACs {macs_by.get(key, 0):>17,}')
    print('MACs count conv, linear and attention matmuls (not norms, '
          'activations, softmax or interpolation).')
    return params, macs


if __name__ == '__main__':
    main(sys.argv[1:])
