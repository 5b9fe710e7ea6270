# Copyright (c) diffmtl contributors. All rights reserved.
"""Outside the kind modules no diffmtl code branches on a task kind or a
task name.

The check is a grep over the package's source: comparisons with a kind
(``spec.kind == ...``, ``kind in (...)``), with a built-in task name
(``task == 'semseg'``), or with a colour-map name used as a kind
(``cmap == 'normals'``), and closed kind tables (``*_KINDS``,
``KIND_FORMATS``).
"""
import os.path as osp
import re
from pathlib import Path

import pytest

import diffmtl

PKG = Path(osp.dirname(diffmtl.__file__))
#: Where kind-specific code belongs (relative to the package).
KIND_HOMES = ('tasks', 'structures/task_kind.py')
#: Code whose ``kind`` is not a task kind: the synthetic scene generator's
#: primitive kinds ('plane', 'sphere', ...) and the segmentor's noise
#: kinds ('q_sample', ...).
OTHER_KINDS = ('datasets/synthetic', )

TASK_NAMES = ('semseg', 'human_parts', 'sal', 'normals', 'edge', 'depth')
KIND_NAMES = ('segmentation', 'saliency', 'normals', 'boundary', 'depth')
PATTERNS = [
    re.compile(r"\bkind\s*(==|!=)\s*['\"]"),
    re.compile(r"\bkind\s+(not\s+)?in\s*[\(\[\{]\s*['\"]"),
    # closed tables of kinds (the registry TASK_KINDS is the open one)
    re.compile(r"\b(?!TASK_KINDS\b)\w*_KINDS\b|\bKIND_FORMATS\b"),
    re.compile(r"\bcmap\s*(==|!=)"),
    re.compile(r"(==|!=)\s*['\"](%s)['\"]" % '|'.join(TASK_NAMES)),
    re.compile(r"['\"](%s)['\"]\s*(==|!=)" % '|'.join(TASK_NAMES)),
    re.compile(r"\bin\s*\(\s*['\"](%s)['\"]" % '|'.join(KIND_NAMES)),
]


def _inside(path: Path, roots) -> bool:
    return any(path == r or r in path.parents for r in roots)


def kind_branches(pkg: Path = PKG):
    """``[(file, line number, line)]`` of kind / task-name branches in the
    package directory ``pkg`` (default: the imported diffmtl)."""
    skipped = {pkg / p for p in KIND_HOMES + OTHER_KINDS}
    hits = []
    for path in sorted(pkg.rglob('*.py')):
        if _inside(path, skipped):
            continue
        for no, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split('#', 1)[0]
            if any(p.search(code) for p in PATTERNS):
                hits.append((str(path.relative_to(pkg.parent)), no,
                             line.strip()))
    return hits


def test_patterns_catch_the_old_ladders():
    """The grep would have found the ladders this redesign removed."""
    old = [
        "    if kind == 'segmentation':",
        "        if spec.kind in ('saliency', 'boundary'):",
        "            if spec.kind in VECTOR_KINDS:",
        "    channels = 3 if spec.cmap == 'normals' else 1",
        "        if names is None and task == 'semseg':",
        "            fmt = cfg.get('format') or KIND_FORMATS[spec.kind]",
    ]
    for line in old:
        assert any(p.search(line) for p in PATTERNS), line


def test_no_kind_or_task_name_branches_outside_the_kind_modules():
    hits = kind_branches()
    assert not hits, ('kind-specific code outside diffmtl/tasks (move it '
                      'into the kind, see docs/en/add_task.md):\n' +
                      '\n'.join(f'{f}:{n}: {s}' for f, n, s in hits))


if __name__ == '__main__':
    # Print the grep, of this checkout or of the diffmtl/ of another one:
    #   python tests/test_tasks/test_no_kind_branches.py [CHECKOUT]
    import sys
    pkg = Path(sys.argv[1]) / 'diffmtl' if len(sys.argv) > 1 else PKG
    found = kind_branches(pkg)
    for f, n, s in found:
        print(f'{f}:{n}: {s}')
    print(f'{len(found)} lines in {len({f for f, _, _ in found})} files')
