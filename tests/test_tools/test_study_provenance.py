# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/misc/study_provenance.py: the runs of a study's results folder as a
generated table (wall times, resumed, the commit that recorded each)."""
import json

from tool_runner import load_tool

tool = load_tool('tools/misc/study_provenance.py')


def _record(root, arm, seed, **record):
    path = root / 'runs' / arm / f'seed_{seed}.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(metrics={}, **record)))


def test_table_of_the_run_records(tmp_path):
    _record(tmp_path, 'b', 1, train_seconds=90, test_seconds=30)
    _record(tmp_path, 'b', 0, train_seconds=600, test_seconds=60,
            resumed=True)
    _record(tmp_path, 'a', 0, test_seconds=6)  # evaluation only
    (tmp_path / 'runs' / 'a' / 'notes.json').write_text('{}')
    text = tool.provenance_md(str(tmp_path), git=False)
    rows = [ln for ln in text.splitlines() if ln.startswith('| `')]
    assert rows == ['| `a` | 0 | - | 0.1 | no | - |',
                    '| `b` | 0 | 10.0 | 1.0 | yes | - |',
                    '| `b` | 1 | 1.5 | 0.5 | no | - |']
    assert 'do not edit' in text


def test_optional_fields_and_the_written_file(tmp_path, capsys):
    _record(tmp_path, 'a', 0, train_seconds=60, test_seconds=60,
            host='box', commit='abc1234')
    assert tool.main([str(tmp_path)]) == 0
    text = (tmp_path / 'provenance.md').read_text()
    assert '| arm | seed | train min | test min | resumed | commit | host |' \
        in text
    # outside a git checkout the record is not committed: '-'
    assert '| `a` | 0 | 1.0 | 1.0 | no | abc1234 | box |' in text
    assert 'provenance.md: 1 runs' in capsys.readouterr().out


def test_threads_of_the_runs(tmp_path):
    _record(tmp_path, 'a', 0, train_seconds=60, test_seconds=60,
            threads='1')
    _record(tmp_path, 'a', 1, train_seconds=60, test_seconds=60,
            threads=None)
    _record(tmp_path, 'b', 0, train_seconds=60, test_seconds=60)
    text = tool.provenance_md(str(tmp_path), git=False)
    assert '| resumed | threads | recorded in |' in text
    assert '| `a` | 0 | 1.0 | 1.0 | no | 1 | - |' in text
    assert '| `a` | 1 | 1.0 | 1.0 | no | default | - |' in text
    assert '| `b` | 0 | 1.0 | 1.0 | no | - | - |' in text
