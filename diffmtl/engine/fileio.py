# Copyright (c) diffmtl contributors. All rights reserved.
"""Crash-safe (atomic) writes of checkpoints and the ``last_checkpoint``.

A file is written to a hidden temporary file in the same folder
(``.<name>.<pid>.diffmtl-tmp``), flushed and ``fsync``-ed, then renamed
over the final name with :func:`os.replace` (atomic on POSIX and Windows
within one file system) and the folder is ``fsync``-ed. A process killed
at any moment therefore leaves either the complete old file or the
complete new one under the final name, plus at most a stale temporary
file, which :func:`remove_stale_temp_files` cleans up.

:class:`AtomicLocalBackend` is an mmengine file backend (registered as
``'diffmtl_atomic_local'``) whose ``put`` / ``put_text`` write this way;
:class:`~diffmtl.engine.hooks.AtomicCheckpointHook` passes it to
``Runner.save_checkpoint`` through ``backend_args``.
"""
import os
import os.path as osp
import re
from typing import List, Union

from mmengine.fileio import LocalBackend, register_backend
from mmengine.utils import mkdir_or_exist

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write_bytes',
    'temp_path_for', 'is_temp_file', 'remove_stale_temp_files'
]

#: Name of :class:`AtomicLocalBackend` in mmengine's backend registry.
ATOMIC_BACKEND = 'diffmtl_atomic_local'

_TEMP_SUFFIX = '.diffmtl-tmp'
_TEMP_RE = re.compile(r'^\..+\.\d+' + re.escape(_TEMP_SUFFIX) + r'$')


def temp_path_for(path: str) -> str:
    """The temporary file :func:`atomic_write_bytes` writes ``path`` to."""
    folder, name = osp.split(path)
    return osp.join(folder, f'.{name}.{os.getpid()}{_TEMP_SUFFIX}')


def is_temp_file(name: str) -> bool:
    """Whether ``name`` (a base name) is one of our temporary files."""
    return bool(_TEMP_RE.match(name))


def _write_all(f, data: bytes) -> None:
    """Write ``data`` to the open file ``f`` (tests slow this down)."""
    f.write(data)


def _fsync_dir(folder: str) -> None:
    """Make a rename in ``folder`` durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(data: Union[bytes, bytearray, memoryview],
                       path: Union[str, os.PathLike]) -> None:
    """Write ``data`` to ``path`` so that a crash never leaves it partial.

    Args:
        data (bytes-like): The file content.
        path (str | PathLike): The final file name; its folder is created
            when missing.
    """
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    mkdir_or_exist(folder)
    tmp = temp_path_for(path)
    try:
        with open(tmp, 'wb') as f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def remove_stale_temp_files(folder: str) -> List[str]:
    """Delete temporary files that killed writers left in ``folder``.

    Args:
        folder (str): A checkpoint folder.

    Returns:
        list[str]: The removed paths.
    """
    removed = []
    if not osp.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        if is_temp_file(name):
            path = osp.join(folder, name)
            try:
                os.remove(path)
            except OSError:
                continue
            removed.append(path)
    return removed


@register_backend(ATOMIC_BACKEND, force=True)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local-disk backend with atomic ``put`` / ``put_text``."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        """Write bytes atomically, see :func:`atomic_write_bytes`."""
        atomic_write_bytes(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        """Write text atomically, see :func:`atomic_write_bytes`."""
        atomic_write_bytes(obj.encode(encoding), filepath)
