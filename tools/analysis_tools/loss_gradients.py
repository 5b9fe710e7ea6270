# Copyright (c) diffmtl contributors. All rights reserved.
"""How much each loss term pulls on the shared features.

For a trained checkpoint, over training batches (with the training
pipeline's augmentation), backpropagates every loss term of the model
(``<task>.loss`` of the final, denoised output and ``<task>.loss_init`` of
the initial prediction, as weighted in training) separately and reports,
averaged over batches that have the task:

* ``|dL/dF|``: the norm of its gradient at the shared fused features F
  (the neck output that every task head reads);
* ``|dL/dθ_backbone|``: the norm of its gradient over the backbone weights;
* ``cos(final, init)``: the cosine between the final and the initial loss
  gradients at F (negative: they pull the shared features in opposite
  directions).

Loss terms of no single task (a project's regulariser, e.g. XTC's
consistency or JTR's ``jtr.loss_dist``) get rows of their own.

Example::

    python tools/analysis_tools/loss_gradients.py \\
        configs/diffmtl/synthetic_one_r18.py CKPT --batches 20 \\
        --out results/diagnostics/loss_gradients.json
"""
import argparse
import json
import os
import os.path as osp
import sys
from collections import defaultdict

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(
        description='Gradient norms of each loss term at the shared '
        'features and the backbone')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--batches', type=int, default=20)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--out', help='write the table as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def gradient_table(model, batches):
    """``{term: {'feat': mean norm, 'backbone': mean norm, 'n': count}}``
    plus ``{task: {'cos': mean cosine}}`` over ``batches``."""
    import torch
    sums = defaultdict(lambda: defaultdict(float))
    orig = model.extract_feat
    held = {}

    def extract(x):
        f = orig(x)
        held['f'] = f
        return f

    model.extract_feat = extract
    params = [p for p in model.backbone.parameters() if p.requires_grad]
    try:
        for data in batches:
            data = model.data_preprocessor(data, True)
            losses = model.loss(data['inputs'], data['data_samples'])
            feat = held['f']
            grads = {}
            for key, value in losses.items():
                if not value.requires_grad:
                    continue
                g = torch.autograd.grad(
                    value, [feat] + params, retain_graph=True,
                    allow_unused=True)
                # a term with no path to F (e.g. one that trains only a
                # training-only network) pulls on it with norm 0
                gf = g[0]
                gb = sum((x.double()**2).sum() for x in g[1:]
                         if x is not None)
                if gf is not None:
                    grads[key] = gf
                sums[key]['feat'] += 0.0 if gf is None else float(
                    gf.double().norm())
                sums[key]['backbone'] += float(gb)**0.5
                sums[key]['n'] += 1
            for key in grads:
                if key.endswith('.loss') and key + '_init' in grads:
                    a = grads[key].flatten().double()
                    b = grads[key + '_init'].flatten().double()
                    cos = float(a @ b / (a.norm() * b.norm() + 1e-30))
                    task = key[:-len('.loss')]
                    sums[task + '.cos']['cos'] += cos
                    sums[task + '.cos']['n'] += 1
    finally:
        model.extract_feat = orig
    out = {}
    for key, s in sums.items():
        n = s.pop('n')
        out[key] = {k: v / n for k, v in s.items()}
        out[key]['n'] = int(n)
    return out


def format_table(table: dict, tasks) -> str:
    """The printed table: a row per task (final and initial terms, their
    cosine), then a row per loss term of no single task."""
    nan = float('nan')
    lines = [f'{"task":<12} {"|dL/dF| final":>14} {"init":>10} '
             f'{"|dL/dθ_bb| final":>17} {"init":>10} {"cos(F)":>8} '
             f'{"batches":>7}']
    for t in tasks:
        f = table.get(f'{t}.loss', {})
        i = table.get(f'{t}.loss_init', {})
        c = table.get(f'{t}.cos', {})
        lines.append(f'{t:<12} {f.get("feat", nan):>14.4g} '
                     f'{i.get("feat", nan):>10.4g} '
                     f'{f.get("backbone", nan):>17.4g} '
                     f'{i.get("backbone", nan):>10.4g} '
                     f'{c.get("cos", nan):>8.3f} {f.get("n", 0):>7}')
    # terms of no single task (e.g. XTC's consistency, JTR's distance and
    # reconstruction): rows of their own
    task_keys = {f'{t}.{k}' for t in tasks
                 for k in ('loss', 'loss_init', 'cos')}
    others = [k for k in table if k not in task_keys]
    if others:
        lines.append(f'{"other term":<22} {"|dL/dF|":>12} '
                     f'{"|dL/dθ_bb|":>12} {"batches":>7}')
        for k in others:
            lines.append(f'{k:<22} {table[k].get("feat", nan):>12.4g} '
                         f'{table[k].get("backbone", nan):>12.4g} '
                         f'{table[k].get("n", 0):>7}')
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import diffmtl  # noqa: F401
    from diffmtl.apis import training_batches
    from diffmtl.registry import MODELS
    torch.manual_seed(args.seed)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model.train()
    batches = training_batches(cfg, args.batches, seed=args.seed)
    table = gradient_table(model, batches)
    print(format_table(table, list(model.tasks)))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as fh:
            json.dump(
                dict(config=args.config, checkpoint=args.checkpoint,
                     batches=args.batches, seed=args.seed, terms=table),
                fh, indent=1)
    return table


if __name__ == '__main__':
    main()
