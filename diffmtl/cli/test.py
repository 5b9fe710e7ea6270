# Copyright (c) diffmtl contributors. All rights reserved.
"""Test (evaluate) a checkpoint of a diffmtl (or MMSegmentation) model.

The program behind ``tools/test.py``, ``python -m diffmtl.cli.test`` and
the ``diffmtl-test`` command of an installed diffmtl.

Examples:
    python tools/test.py CFG work_dirs/run1/iter_4000.pth
    python tools/test.py CFG CKPT --out results/ --show-dir vis/
    diffmtl-test CFG CKPT                      # diffmtl installed
    bash tools/dist_test.sh CFG CKPT 4

The command line matches MMSegmentation's ``tools/test.py``. A checkpoint
whose keys or shapes do not match the model (another config's) is an error
naming the keys, unless ``--allow-partial-checkpoint``; a truncated or
damaged file is an error naming the file. ``--show-dir``
draws every test image (visualization hook interval 1; override with
``--cfg-options default_hooks.visualization.interval=N``) into
``<show-dir>/vis_data/vis_image/``.

``--out DIR`` writes a fresh prediction set: a non-empty ``DIR`` is refused
unless ``--overwrite-out`` (which deletes the previous set of a
``tools/test.py`` folder first). ``DIR/.incomplete`` is written before the
first prediction; every file is written under a temporary name and renamed
when complete, and an I/O error names the file; ``metrics.json`` is
written last and then ``DIR/.complete`` replaces ``.incomplete``. A set
without ``.complete`` is incomplete (the run failed or was stopped; on
SIGTERM the run stops cleanly after the file it is writing). Weights or
predictions holding NaN / inf stop the run before anything is scored or
exported (``FiniteCheckHook``, ``MultiTaskMetric``).
"""
import argparse

__all__ = ['parse_args', 'main']


def parse_args(argv=None):
    from diffmtl.utils import add_common_args

    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a segmentor')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='the directory to save the file containing evaluation metrics')
    parser.add_argument(
        '--out',
        type=str,
        help='directory where the test evaluator keeps its results '
        '(sets test_evaluator.output_dir and keep_results=True). It must be '
        'new or empty; DIR/.incomplete marks the set until metrics.json is '
        'written, then DIR/.complete')
    parser.add_argument(
        '--overwrite-out',
        action='store_true',
        default=False,
        help='let --out reuse a folder a previous tools/test.py --out wrote '
        '(holding metrics.json, .complete or .incomplete): its contents are '
        'deleted first. Other non-empty folders are still refused')
    parser.add_argument(
        '--check-data',
        action='store_true',
        default=False,
        help='decode every listed image and annotation of the test set '
        'before testing and stop naming every damaged file')
    parser.add_argument(
        '--show', action='store_true', help='show prediction results')
    parser.add_argument(
        '--show-dir',
        help='directory where painted images will be saved (under '
        '<show-dir>/vis_data/vis_image/); draws every test image unless '
        'default_hooks.visualization.interval is given in --cfg-options')
    parser.add_argument(
        '--wait-time', type=float, default=2, help='the interval of show (s)')
    add_common_args(parser)
    parser.add_argument(
        '--tta', action='store_true', help='Test time augmentation')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # Importing diffmtl (this package) registered every diffmtl component
    # and the safe checkpoint loader.
    from diffmtl.utils import (build_runner, close_distributed, drop_training,
                               enable_tta, enable_visualization,
                               exit_finished_cpu_job, init_distributed,
                               load_tool_config, set_test_output)
    from diffmtl.utils.tool_cfg import (enable_data_check,
                                        mark_output_complete,
                                        prepare_output_dir)
    from diffmtl.engine.work_dir_lock import launcher_rank

    cfg = load_tool_config(args)
    drop_training(cfg)  # testing needs no training data
    cfg_options = args.cfg_options or {}
    cfg.load_from = args.checkpoint

    keep_interval = 'default_hooks.visualization.interval' in cfg_options
    enable_visualization(
        cfg,
        show=args.show,
        show_dir=args.show_dir,
        wait_time=args.wait_time,
        interval=None if keep_interval else 1)
    if args.tta:
        enable_tta(cfg)
    if args.check_data:
        enable_data_check(cfg, keys=('test_dataloader', ))
    set_test_output(cfg, args.out)
    main_rank = launcher_rank() == 0
    if args.out and main_rank:
        try:
            prepare_output_dir(
                args.out,
                overwrite=args.overwrite_out,
                info=dict(config=args.config, checkpoint=args.checkpoint))
        except FileExistsError as err:
            raise SystemExit(f'ERROR: {err}') from None
        _stop_cleanly_on_sigterm(args.out)

    init_distributed(cfg)
    runner = build_runner(cfg)
    runner.test()
    if args.out and main_rank:
        mark_output_complete(args.out)
    exit_finished_cpu_job(close_distributed())


def _stop_cleanly_on_sigterm(out: str) -> None:
    """End on SIGTERM like on Ctrl-C: the file being written is finished
    or removed (never left half-written under its name) and ``out`` keeps
    its ``.incomplete`` marker."""
    import signal

    def stop(signum, frame):
        signal.signal(signum, signal.SIG_DFL)
        raise SystemExit(f'ERROR: stopped by signal {signum}; the results '
                         f'in {out!r} are incomplete (.incomplete marker)')

    signal.signal(signal.SIGTERM, stop)


if __name__ == '__main__':
    main()
