# Copyright (c) diffmtl contributors. All rights reserved.
"""Helpers to run the repository's tools from tests: in subprocesses, or
imported as modules (:func:`load_tool`)."""
import importlib.util
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
TOY_CFG = REPO / 'tests' / 'data' / 'configs' / 'toy_regression.py'


def load_tool(path: str, name: Optional[str] = None) -> ModuleType:
    """Import a script of the repository as a module.

    Args:
        path (str): The script, relative to the repository root (e.g.
            ``'tools/image_demo.py'``).
        name (str, optional): Module name. Defaults to the file's stem.
    """
    full = REPO / path
    spec = importlib.util.spec_from_file_location(name or full.stem,
                                                  str(full))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment with the repo root and the toy components importable."""
    env = dict(os.environ)
    paths = [str(REPO), str(REPO / 'tests' / 'test_tools')]
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env['OMP_NUM_THREADS'] = '1'
    env['PYTHON'] = sys.executable
    env.pop('LOCAL_RANK', None)
    env.pop('DIFFMTL_TRUSTED_CHECKPOINTS', None)
    env.update(extra or {})
    return env


def run(cmd: List[str],
        cwd: Path,
        extra_env: Optional[Dict[str, str]] = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``cmd``; stdout and stderr are merged into ``.stdout``."""
    return subprocess.run([str(c) for c in cmd],
                          cwd=str(cwd),
                          env=tool_env(extra_env),
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT,
                          text=True,
                          timeout=timeout)


def free_port() -> int:
    """A TCP port that was free a moment ago (for torchrun's master)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def logged_metric(output: str, name: str) -> float:
    """The last logged value of metric ``name`` (e.g. ``'toy/mse'``)."""
    values = re.findall(
        re.escape(name) + r': (-?[\d.]+(?:e[-+]?\d+)?)', output)
    assert values, f'{name} not found in the log:\n{output[-3000:]}'
    return float(values[-1])


def run_tool(script: str,
             args: List,
             cwd: Path,
             extra_env: Optional[Dict[str, str]] = None,
             timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python tools/<script> *args`` with :func:`run`."""
    return run([sys.executable, TOOLS / script, *args], cwd, extra_env,
               timeout)
