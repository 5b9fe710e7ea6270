# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl.stack: which OpenMMLab stack is installed, and a quiet import."""
import subprocess
import sys
from pathlib import Path

import pytest

from diffmtl import stack

REPO = Path(__file__).resolve().parents[1]


def test_installed_stack_is_named_by_its_mmengine():
    found = stack.stack_versions()
    name = stack.mm_stack()
    assert stack.STACK_DISTRIBUTIONS[name]['mmengine'] in found
    other = 'openmmlab' if name == 'onedl' else 'onedl'
    assert stack.STACK_DISTRIBUTIONS[other]['mmengine'] not in found


@pytest.mark.parametrize('found, message', [
    ({}, 'no OpenMMLab stack'),
    ({'mmengine': '0.10.7', 'onedl-mmengine': '0.10.12'}, 'both'),
])
def test_missing_or_mixed_stacks_are_errors(monkeypatch, found, message):
    monkeypatch.setattr(stack, 'stack_versions', lambda: dict(found))
    with pytest.raises(RuntimeError, match=message):
        stack.mm_stack()


@pytest.mark.slow
def test_import_prints_no_onedl_noise_but_keeps_other_output():
    code = 'import diffmtl, mmseg.datasets; print("after import")'
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert 'Could not import OneDL' not in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == 'after import'


def test_quiet_import_passes_other_lines_through(monkeypatch, capsys):
    """Only the listed noise is dropped from what the import prints."""
    import types
    fake = types.ModuleType('mmseg.datasets')
    monkeypatch.delitem(sys.modules, 'mmseg.datasets', raising=False)

    def noisy_import(name, *args, **kwargs):
        if name == 'mmseg.datasets':
            print('Could not import OneDL')
            print('a real message')
            sys.modules[name] = fake
            return sys.modules['mmseg']
        return real_import(name, *args, **kwargs)

    import builtins
    real_import = builtins.__import__
    monkeypatch.setattr(builtins, '__import__', noisy_import)
    stack.import_mmseg()
    monkeypatch.undo()
    assert capsys.readouterr().out == 'a real message\n'
