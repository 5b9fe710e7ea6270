# Copyright (c) diffmtl contributors. All rights reserved.
"""``tools/analysis_tools/loss_ratios.py``: final / unweighted initial
training loss per task, read from mmengine's scalars.json logs."""
import json
import sys

import pytest

from tool_runner import REPO

sys.path.insert(0, str(REPO / 'tools' / 'analysis_tools'))
from loss_ratios import loss_ratios, main, read_training_records  # noqa


def _write_log(run_dir, stamp, records):
    vis = run_dir / stamp / 'vis_data'
    vis.mkdir(parents=True)
    with open(vis / 'scalars.json', 'w') as f:
        for rec in records:
            f.write(json.dumps(rec) + '\n')


def _run(tmp_path):
    run = tmp_path / 'run'
    # first start: iterations 10, 20 (20 is logged again after the resume)
    _write_log(run, '20260101_000000', [
        {'step': 10, 'loss': 9.0, 'a.loss': 9.0, 'a.loss_init': 9.0},
        {'step': 20, 'loss': 9.0, 'a.loss': 7.0, 'a.loss_init': 7.0},
        {'step': 20, 'coco/metric': 1.0},  # not a training record
    ])
    # resumed start: iteration 20 again, then 30; task b only at 30
    _write_log(run, '20260101_010000', [
        {'step': 20, 'loss': 3.0, 'a.loss': 2.0, 'a.loss_init': 0.5},
        {'step': 30, 'loss': 3.0, 'a.loss': 4.0, 'a.loss_init': 1.5,
         'b.loss': 3.0, 'b.loss_init': 3.0},
    ])
    (run / 'cfg.py').write_text('model = dict(init_loss_weight=0.5)\n')
    return run


def test_ratio_values_from_resumed_logs(tmp_path):
    run = _run(tmp_path)
    records = read_training_records(str(run))
    assert sorted(records) == [10, 20, 30]
    assert records[20]['a.loss'] == 2.0  # the later start wins
    table = loss_ratios(records, init_loss_weight=0.5, from_iter=10)
    # a: final (2 + 4) / 2 = 3; unweighted init (0.5 + 1.5) / 0.5 / 2 = 2
    assert table['a'] == pytest.approx(dict(ratio=1.5, final=3.0, init=2.0,
                                            n=2))
    assert table['b'] == pytest.approx(dict(ratio=0.5, final=3.0, init=6.0,
                                            n=1))


def test_main_reads_weight_from_dumped_config(tmp_path):
    run = _run(tmp_path)
    out = tmp_path / 'out' / 'ratios.json'
    table = main([str(run), '--from-iter', '10', '--out', str(out)])
    assert table[str(run)]['a']['ratio'] == pytest.approx(1.5)
    saved = json.loads(out.read_text())
    assert saved['from_iter'] == 10
    assert saved['runs'][str(run)]['b']['ratio'] == pytest.approx(0.5)
    # an explicit weight overrides the config: init doubles, ratio halves
    table = main([str(run), '--from-iter', '10', '--init-loss-weight',
                  '0.25'])
    assert table[str(run)]['a']['ratio'] == pytest.approx(0.75)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match='scalars.json'):
        read_training_records(str(tmp_path))
    run = _run(tmp_path)
    bad = run / '20260101_020000' / 'vis_data'
    bad.mkdir(parents=True)
    (bad / 'scalars.json').write_text('{"step": 40\n')
    with pytest.raises(ValueError, match=r'scalars.json:1: not JSON'):
        read_training_records(str(run))
    with pytest.raises(ValueError, match='after iteration 30'):
        loss_ratios({30: {'a.loss': 1.0, 'a.loss_init': 1.0}}, 0.5,
                    from_iter=30)
    with pytest.raises(ValueError, match='init_loss_weight must be > 0'):
        loss_ratios({}, 0.0)
