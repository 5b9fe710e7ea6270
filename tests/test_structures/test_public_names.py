# Copyright (c) diffmtl contributors. All rights reserved.
"""Every public name of a ``diffmtl.structures`` module (its ``__all__``)
is importable from ``diffmtl.structures`` itself."""
import importlib

import pytest

import diffmtl.structures as structures


@pytest.mark.parametrize('module', ['maps', 'task_kind', 'task_spec'])
def test_module_names_are_exported_by_the_package(module):
    mod = importlib.import_module(f'diffmtl.structures.{module}')
    names = getattr(mod, '__all__', [])
    assert names
    missing = [n for n in names if n not in structures.__all__]
    assert not missing, f'diffmtl.structures.__all__ lacks {missing}'
    for name in names:
        assert getattr(structures, name) is getattr(mod, name)
