# Copyright (c) diffmtl contributors. All rights reserved.
"""tools/test.py --out writes a fresh, complete, recognisable prediction
set: a non-empty folder is refused (unless --overwrite-out), every file is
written atomically, I/O errors name the file, a stopped run keeps its
.incomplete marker, and NaN weights stop the run before anything is
predicted, exported or scored."""
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest
from out_components import config_text, write_checkpoint, write_folder
from tool_runner import TOOLS, run_tool, tool_env

pytestmark = pytest.mark.slow  # every test runs tools/test.py

TASK_DIRS = ('semseg', 'depth', 'normals')
SUFFIX = dict(semseg='.png', depth='.npy', normals='.npy')
IDS = [f'{i:03d}' for i in range(6)]


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp('test_out')
    data = write_folder(str(root / 'data'))
    cfg = root / 'cfg.py'
    cfg.write_text(config_text(data))
    slow = root / 'slow_cfg.py'
    slow.write_text(config_text(
        data, "custom_hooks = [dict(type='SlowTestHook', seconds=1.0)]"))
    ckpt = write_checkpoint(str(cfg), str(root / 'ckpt.pth'))
    nan = write_checkpoint(str(cfg), str(root / 'nan.pth'),
                           nan_param='backbone.layer3.0.conv1.weight')
    return dict(root=root, cfg=cfg, slow=slow, ckpt=ckpt, nan=nan)


def _test(setup, out, *extra, cfg=None, ckpt=None, **kw):
    return run_tool('test.py', [
        cfg or setup['cfg'], ckpt or setup['ckpt'], '--work-dir',
        setup['root'] / 'work', '--out', out, *extra
    ], cwd=setup['root'], **kw)


def _files(out):
    return sorted(
        os.path.relpath(os.path.join(d, n), out)
        for d, _, names in os.walk(out) for n in names)


def _predictions():
    return sorted(f'{t}/{i}{SUFFIX[t]}' for t in TASK_DIRS for i in IDS)


def test_out_writes_a_complete_marked_set(setup):
    out = setup['root'] / 'fresh'
    proc = _test(setup, out)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert _files(out) == sorted(['.complete', 'metrics.json'] +
                                 _predictions())
    done = json.loads((out / '.complete').read_text())
    assert done['checkpoint'] == setup['ckpt']
    assert done['files'] == len(IDS) * len(TASK_DIRS) + 1
    assert (out / '.complete').stat().st_mtime >= (
        out / 'metrics.json').stat().st_mtime
    assert 'semseg/mIoU' in json.loads((out / 'metrics.json').read_text())


def test_non_empty_out_is_refused_unless_overwrite_out(setup):
    out = setup['root'] / 'reused'
    assert _test(setup, out).returncode == 0
    stale = out / 'semseg' / 'zzz_from_a_larger_set.png'
    stale.write_bytes(b'old')
    metrics = (out / 'metrics.json').read_bytes()
    proc = _test(setup, out)
    assert proc.returncode != 0
    assert 'is not empty' in proc.stdout and '--overwrite-out' in proc.stdout
    assert stale.exists() and (out / 'metrics.json').read_bytes() == metrics
    proc = _test(setup, out, '--overwrite-out')
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert not stale.exists()
    assert _files(out) == sorted(['.complete', 'metrics.json'] +
                                 _predictions())


def test_overwrite_out_never_empties_a_foreign_folder(setup):
    out = setup['root'] / 'foreign'
    out.mkdir()
    (out / 'thesis.tex').write_text('precious')
    proc = _test(setup, out, '--overwrite-out')
    assert proc.returncode != 0
    assert 'deletes only a folder written by tools/test.py' in proc.stdout
    assert _files(out) == ['thesis.tex']


def test_sigterm_leaves_a_marked_incomplete_set(setup):
    out = setup['root'] / 'stopped'
    cmd = [
        sys.executable,
        str(TOOLS / 'test.py'),
        str(setup['slow']), setup['ckpt'], '--work-dir',
        str(setup['root'] / 'work'), '--out',
        str(out)
    ]
    proc = subprocess.Popen(cmd, cwd=str(setup['root']), env=tool_env(),
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / 'depth' / f'{IDS[1]}.npy').exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGTERM)
    log = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0
    assert 'stopped by signal 15' in log and 'incomplete' in log
    files = _files(out)
    assert '.incomplete' in files and '.complete' not in files
    assert 'metrics.json' not in files
    assert not [f for f in files if 'diffmtl-tmp' in f]
    record = json.loads((out / '.incomplete').read_text())
    assert record['checkpoint'] == setup['ckpt']


def test_nan_weights_stop_the_test_before_any_prediction(setup):
    out = setup['root'] / 'nan'
    proc = _test(setup, out, ckpt=setup['nan'])
    assert proc.returncode != 0
    log = proc.stdout
    assert 'FloatingPointError' in log
    assert setup['nan'] in log
    assert "'backbone.layer3.0.conv1.weight' holds 3 NaN/inf" in log
    assert 'Multi-task summary' not in log and 'mIoU' not in log
    assert _files(out) == ['.incomplete']


def _limit_file_size():
    # a "full disk": writes beyond 3000 bytes fail (EFBIG); the signal a
    # process gets for it is ignored, as a full disk sends none
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))


def test_a_failed_write_names_the_file_and_leaves_no_partial_file(setup):
    out = setup['root'] / 'full'
    cmd = [
        sys.executable,
        str(TOOLS / 'test.py'),
        str(setup['cfg']), setup['ckpt'], '--work-dir',
        str(setup['root'] / 'work_full'), '--out',
        str(out)
    ]
    proc = subprocess.run(cmd, cwd=str(setup['root']), env=tool_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, preexec_fn=_limit_file_size,
                          timeout=300)
    assert proc.returncode != 0
    target = out / 'depth' / f'{IDS[0]}.npy'  # 4 KiB: over the limit
    assert f"cannot write the 'depth' prediction '{target}'" in proc.stdout
    files = _files(out)
    assert 'depth/000.npy' not in files
    assert not [f for f in files if 'diffmtl-tmp' in f]
    assert '.incomplete' in files and '.complete' not in files
