# Copyright (c) diffmtl contributors. All rights reserved.
"""``tools/analysis_tools/benchmark_train.py`` runs training steps of a
config and reports per-iteration times (no speed is asserted)."""
import sys

from tool_runner import REPO

sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))
sys.path.insert(0, str(REPO / 'tests' / 'test_tools'))
from benchmark_train import main  # noqa: E402


def test_benchmark_train_times_the_requested_iterations(capsys):
    cfg = str(REPO / 'tests' / 'data' / 'configs' / 'toy_regression.py')
    rows = main([cfg, cfg, '--iters', '3', '--warmup', '1'])
    assert len(rows) == 2
    for r in rows:
        assert len(r['sec_per_iter']) == 3
        assert all(t > 0 for t in r['sec_per_iter'])
        assert r['batch_size'] == 2
        assert r['images_per_sec'] == 2 / r['median']
    out = capsys.readouterr().out
    assert 's/iter median' in out and 'x1.00 of the first' in out
