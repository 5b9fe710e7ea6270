# Copyright (c) diffmtl contributors. All rights reserved.
"""diffmtl's command-line programs, runnable from an installed diffmtl.

* :mod:`diffmtl.cli.train`: the ``diffmtl-train`` command,
  ``tools/train.py`` in a checkout;
* :mod:`diffmtl.cli.test`: ``diffmtl-test``, ``tools/test.py``;
* :mod:`diffmtl.cli.study`: ``diffmtl-study``,
  ``tools/analysis_tools/run_study.py``.

Each module has ``parse_args(argv=None)`` and ``main(argv=None)`` and runs
with ``python -m diffmtl.cli.<name>``; the study runner starts its runs
that way. The scripts under ``tools/`` call the same ``main``.
"""
__all__ = []
