# Copyright (c) diffmtl contributors. All rights reserved.
"""No diffmtl module imports upward between the layers of
``docs/en/design.md`` (*Layers*).

The layers are read from the page: each numbered line names its packages
in backticks before the colon, lowest first. Every ``import`` and
``from ... import`` of every module of the package (at module level or
inside functions, relative ones resolved) is parsed with :mod:`ast` and
mapped to the subpackage it reaches; an import of a higher layer, of
another package on the same line, or of ``projects`` is reported with its
file and line.
"""
import ast
import os.path as osp
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

import diffmtl

PKG = Path(osp.dirname(diffmtl.__file__))
REPO = PKG.parent
DESIGN = REPO / 'docs' / 'en' / 'design.md'

#: One import: (importing file, line, imported module).
Import = Tuple[str, int, str]


def design_layers(text: Optional[str] = None) -> Dict[str, int]:
    """``{package: layer}`` (1 = lowest) from design.md's *Layers* list."""
    text = DESIGN.read_text() if text is None else text
    section = text.split('\n## Layers\n', 1)[1].split('\n## ', 1)[0]
    layers = {}
    for match in re.finditer(r'^(\d+)\. (.*?):', section, re.M):
        for name in re.findall(r'`([\w.]+)`', match.group(2)):
            assert name not in layers, f'{name} listed twice in design.md'
            layers[name] = int(match.group(1))
    return layers


def _module_name(path: Path, pkg: Path) -> Tuple[str, str]:
    """(module, package that relative imports start from) of a file."""
    parts = list(path.relative_to(pkg.parent).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts = parts[:-1]
        return '.'.join(parts), '.'.join(parts)
    return '.'.join(parts), '.'.join(parts[:-1])


def imports_of(source: str, module_pkg: str) -> Iterator[Tuple[int, str]]:
    """``(line, module)`` of every import in ``source``; a ``from x
    import y`` gives ``x.y`` (``y`` may be a module) and relative imports
    are resolved against ``module_pkg``."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = module_pkg.split('.')
                parts = parts[:len(parts) - node.level + 1]
                base = '.'.join(parts + ([base] if base else []))
            for alias in node.names:
                yield node.lineno, f'{base}.{alias.name}'


def package_imports(pkg: Path = PKG) -> Iterator[Tuple[str, str, Import]]:
    """``(importing package, imported package, (file, line, module))`` of
    every import of a diffmtl or ``projects`` module in ``pkg``'s files
    (the package root's ``__init__.py`` excluded)."""
    for path in sorted(pkg.rglob('*.py')):
        module, module_pkg = _module_name(path, pkg)
        parts = module.split('.')
        if len(parts) < 2:
            continue  # diffmtl/__init__.py: the top
        for line, target in imports_of(path.read_text(), module_pkg):
            tparts = target.split('.')
            if tparts[0] == 'projects':
                yield parts[1], 'projects', (str(path), line, target)
            elif tparts[0] == pkg.name and tparts[1] != parts[1]:
                yield parts[1], tparts[1], (str(path), line, target)


def upward_imports(layers: Dict[str, int],
                   imports) -> Tuple[List[str], List[str]]:
    """Problems of ``imports`` under ``layers``: (upward or sibling
    imports, packages missing from the list)."""
    problems, missing = [], set()
    for source, target, (path, line, module) in imports:
        where = f'{osp.relpath(path, REPO)}:{line}: imports {module}'
        if target == 'projects':
            problems.append(f'{where} (diffmtl never imports projects)')
            continue
        for name in (source, target):
            if name not in layers:
                missing.add(name)
        if source not in layers or target not in layers:
            continue
        if layers[target] > layers[source]:
            problems.append(f'{where}: {source} (layer {layers[source]}) '
                            f'imports upward {target} (layer '
                            f'{layers[target]})')
        elif layers[target] == layers[source]:
            problems.append(f'{where}: {source} and {target} share layer '
                            f'{layers[source]} and do not import each other')
    return problems, sorted(missing)


def test_design_lists_every_package_once():
    layers = design_layers()
    found = {
        p.stem if p.is_file() else p.name
        for p in PKG.iterdir()
        if (p.suffix == '.py' and p.stem != '__init__') or (
            p.is_dir() and (p / '__init__.py').is_file())
    }
    assert set(layers) == found, (
        'docs/en/design.md (Layers) must list every diffmtl package: '
        f'missing {sorted(found - set(layers))}, unknown '
        f'{sorted(set(layers) - found)}')
    assert layers['structures'] < layers['tasks'] < layers['models']


def test_no_module_imports_upward():
    problems, missing = upward_imports(design_layers(), package_imports())
    assert not missing, f'packages missing from design.md: {missing}'
    assert not problems, ('imports against the layers of docs/en/design.md '
                          '(move the code down, or the import up):\n' +
                          '\n'.join(problems))


@pytest.mark.parametrize('module,source,bad', [
    # a metric re-exporting a kind's helper: evaluation -> tasks
    ('evaluation/metrics/multitask_metric.py',
     'from diffmtl.tasks.segmentation import per_class_keys\n', True),
    # the same, relative and inside a function
    ('evaluation/metrics/multitask_metric.py',
     'def f():\n    from ...tasks import per_class_keys\n', True),
    ('visualization/denoising_process.py',
     'from diffmtl.models.utils import logits_to_pred\n', False),
    ('models/segmentors/base_multitask.py',
     'from ...datasets import formats\n', True),  # siblings
    ('tasks/segmentation.py', 'import projects.xtc\n', True),
    ('evaluation/metrics/multitask_metric.py',
     'from ..functional import delta_m\n', False),  # own package
])
def test_checker_finds_planted_imports(tmp_path, module, source, bad):
    pkg = tmp_path / 'diffmtl'
    path = pkg / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    problems, _ = upward_imports(design_layers(), package_imports(pkg))
    assert bool(problems) == bad, problems


def test_relative_imports_are_resolved():
    assert list(imports_of('from ..functional.delta_m import delta_m',
                           'diffmtl.evaluation.metrics')) == [
                               (1, 'diffmtl.evaluation.functional.delta_m.'
                                'delta_m')
                           ]
    assert list(imports_of('from . import transforms',
                           'diffmtl.datasets')) == [
                               (1, 'diffmtl.datasets.transforms')
                           ]
