# Copyright (c) diffmtl contributors. All rights reserved.
"""Which OpenMMLab stack provides ``mmcv``, ``mmengine`` and ``mmseg``.

diffmtl runs on either of two stacks that install the same import names:

* ``onedl`` (the default set-up): the maintained OneDL releases
  ``onedl-mmcv`` / ``onedl-mmengine`` / ``onedl-mmsegmentation``, pure
  Python, no compiled mmcv ops;
* ``openmmlab``: upstream ``mmcv`` 2.1.0 (built with its ops),
  ``mmengine`` and ``mmsegmentation`` 1.2.2.

Code that has to know which one is installed asks :func:`mm_stack`; the
two stacks' differences that matter to diffmtl are handled where they
arise (the resumed data iterator, checkpoint loading, visualisation) so
both behave the same.
"""
import contextlib
import io
import sys
from importlib import metadata
from typing import Dict

__all__ = [
    'mm_stack', 'stack_versions', 'import_mmseg', 'STACK_DISTRIBUTIONS'
]

#: ``{stack: {import name: distribution name}}``.
STACK_DISTRIBUTIONS: Dict[str, Dict[str, str]] = {
    'onedl': dict(mmcv='onedl-mmcv', mmengine='onedl-mmengine',
                  mmseg='onedl-mmsegmentation'),
    'openmmlab': dict(mmcv='mmcv', mmengine='mmengine',
                      mmseg='mmsegmentation'),
}


def stack_versions() -> Dict[str, str]:
    """``{distribution: version}`` of every installed stack distribution."""
    found = {}
    for dists in STACK_DISTRIBUTIONS.values():
        for dist in dists.values():
            try:
                found[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
    return found


def mm_stack() -> str:
    """``'onedl'`` or ``'openmmlab'``: the stack whose ``mmengine`` is
    installed.

    Raises:
        RuntimeError: Neither stack's mmengine is installed, or both are
            (their files overlap; reinstall one, e.g. ``make setup``).
    """
    found = stack_versions()
    stacks = [
        name for name, dists in STACK_DISTRIBUTIONS.items()
        if dists['mmengine'] in found
    ]
    if len(stacks) == 1:
        return stacks[0]
    if not stacks:
        raise RuntimeError(
            'no OpenMMLab stack is installed: pip install "diffmtl[onedl]" '
            '(or run `make setup`; see docs/en/get_started.md)')
    raise RuntimeError(
        f'both OpenMMLab stacks are installed ({found}); their files '
        'overlap. Uninstall one stack\'s three packages and reinstall the '
        'other (`make setup` does this).')


#: Lines the OneDL ``mmseg.datasets`` prints on import, whatever the log
#: level (its optional OneDL-format loaders are absent): dropped by
#: :func:`import_mmseg`, every other line is passed on.
IMPORT_NOISE = ('Could not import OneDL', )


def import_mmseg() -> None:
    """Import ``mmseg.datasets`` (and so its transforms) without the
    OneDL release's unconditional "Could not import OneDL" lines.

    Anything else printed during the import is written to stdout as
    usual. A no-op once ``mmseg.datasets`` is imported.
    """
    if 'mmseg.datasets' in sys.modules:
        return
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            import mmseg.datasets  # noqa: F401
    finally:
        kept = [
            line for line in out.getvalue().splitlines(keepends=True)
            if line.strip() not in IMPORT_NOISE
        ]
        sys.stdout.write(''.join(kept))
