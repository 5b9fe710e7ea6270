# Copyright (c) diffmtl contributors. All rights reserved.
"""Import paths of the test suite.

* the repository root, so that ``import diffmtl`` (and ``projects.xtc``)
  work from a checkout that is not installed;
* ``tests/test_tools``, which holds the toy components that
  ``tests/data/configs/toy_regression.py`` imports (``toy_components``) and
  the helpers the tool tests share (``tool_runner``, ``resume_utils``).

Subprocesses started by the tests get the same two paths through
``tool_runner.tool_env``.
"""
import os.path as osp
import sys

TESTS = osp.dirname(osp.abspath(__file__))
for path in (osp.join(TESTS, 'test_tools'), osp.dirname(TESTS)):
    if path not in sys.path:
        sys.path.insert(0, path)
