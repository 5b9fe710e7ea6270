# Copyright (c) diffmtl contributors. All rights reserved.
"""Which runner works on a run: an exclusive lock per run directory.

Several runners of one study may work side by side (one per GPU, or the
same command started twice by mistake): each takes only the runs that no
other runner holds, so no two ever train into or test from the same
directory. The lock is an advisory ``flock`` on ``<run_dir>/.study.lock``;
the operating system drops it when its holder exits, killed included, so a
stopped runner never leaves a stale lock. It holds between the processes
of one machine, and across machines only on a file system whose ``flock``
does (local disks do; NFS depends on its version and options). Where
``fcntl`` does not exist (Windows), a lock always succeeds, that is,
runners do not see each other.
"""
import errno
import os
import os.path as osp
import platform
from typing import Optional

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

__all__ = ['RunLock', 'LOCK_NAME']

#: The lock file in a run directory.
LOCK_NAME = '.study.lock'


class RunLock:
    """Exclusive, non-blocking lock of one run directory.

    Args:
        run_dir (str): The run's directory (created if missing).

    Example:
        >>> lock = RunLock(run['run_dir'])
        >>> if lock.acquire():
        ...     try:
        ...         execute(run)
        ...     finally:
        ...         lock.release()
        ... else:
        ...     print('held by', lock.holder())
    """

    def __init__(self, run_dir: str) -> None:
        self.run_dir = run_dir
        self.path = osp.join(run_dir, LOCK_NAME)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; False, at once, if another holder has it.

        The holder writes ``<pid> <host>`` into the lock file, for
        :meth:`holder`.
        """
        if self._fd is not None:
            raise RuntimeError(f'{self.path} is already held by this lock')
        os.makedirs(self.run_dir, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EAGAIN, errno.EACCES,
                                 errno.EWOULDBLOCK):
                    return False
                raise
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()} {platform.node()}\n'.encode())
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock back (closing the file drops the ``flock``); the
        lock file stays, empty of meaning until the next holder."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def holder(self) -> str:
        """``'pid <pid> on <host>'`` of the last holder, as it wrote it
        (``'unknown'`` if the file is missing or empty)."""
        try:
            with open(self.path) as f:
                words = f.read().split()
        except OSError:
            return 'unknown'
        if len(words) < 2:
            return 'unknown'
        return f'pid {words[0]} on {words[1]}'

    def is_held_elsewhere(self) -> bool:
        """Whether another holder has the lock now (takes and gives it back
        when it is free)."""
        if self._fd is not None:
            return False
        if not osp.isdir(self.run_dir):
            return False
        if self.acquire():
            self.release()
            return False
        return True

    def __enter__(self) -> 'RunLock':
        return self

    def __exit__(self, *exc) -> None:
        self.release()
