# Copyright (c) diffmtl contributors. All rights reserved.
"""One training run per work dir: a lock file with the holder's host and pid.

Two ``tools/train.py`` runs on one work dir both ran to the end: their logs
interleaved and each overwrote the other's checkpoints and
``last_checkpoint``. :class:`WorkDirLock` makes the second run stop at
once, naming the first.

The lock is ``<work_dir>/.train.lock``, a small JSON file (host, pid,
process start time, start date, command line), held with an exclusive
``flock`` for the life of the process. The operating system drops that
lock when the process ends in any way (``kill -9`` included), so a lock
file left by a finished or killed run is *stale* and is taken over with a
warning naming the old holder. On a file system without ``flock`` the
lock falls back to exclusive creation, and staleness is decided from the
recorded host and pid (a live process with the same pid and start time on
this host holds it; one on another host is assumed alive, and the message
says how to remove its file).

Only rank 0 of a distributed job takes the lock (:func:`launcher_rank`).

The study runner locks each run directory the same way, in a file of its
own (:data:`STUDY_LOCK_FILE`), so that runners of one study never work on
the same run while the training it starts takes :data:`LOCK_FILE`.
"""
import errno
import json
import logging
import os
import os.path as osp
import socket
import sys
import time
from typing import Optional, Tuple

from mmengine.logging import print_log

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None

__all__ = [
    'LOCK_FILE', 'STUDY_LOCK_FILE', 'WorkDirLock', 'WorkDirLockedError', 'launcher_rank',
    'process_start_time'
]

#: Name of the lock file of a training run in its work dir.
LOCK_FILE = '.train.lock'
#: Name of the lock file of the study runner in a run directory.
STUDY_LOCK_FILE = '.study.lock'


class WorkDirLockedError(RuntimeError):
    """Another live run holds the work dir."""


def launcher_rank() -> int:
    """This process's global rank from the launcher's environment (torchrun
    ``RANK``, Slurm ``SLURM_PROCID``, Open MPI ``OMPI_COMM_WORLD_RANK``);
    0 outside a distributed job. Usable before the process group exists."""
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        value = os.environ.get(key)
        if value not in (None, ''):
            try:
                return int(value)
            except ValueError:
                continue
    return 0


def process_start_time(pid: int) -> Optional[float]:
    """Start time of process ``pid`` in seconds since the epoch (from
    ``/proc`` on Linux, else ``psutil`` when installed), or None when the
    process does not exist or its start time cannot be read."""
    try:
        with open(f'/proc/{pid}/stat', 'rb') as f:
            stat = f.read().decode('ascii', 'replace')
        # field 22 (starttime, clock ticks after boot); the command name
        # (field 2, in parentheses) may hold spaces
        ticks = int(stat[stat.rindex(')') + 2:].split()[19])
        with open('/proc/stat', 'rb') as f:
            boot = next(
                int(line.split()[1]) for line in f.read().decode().split('\n')
                if line.startswith('btime '))
        return boot + ticks / os.sysconf('SC_CLK_TCK')
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    try:
        import psutil
        return float(psutil.Process(pid).create_time())
    except Exception:  # noqa: BLE001  (no such process, no psutil)
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class WorkDirLock:
    """Exclusive lock of a work dir for one training run.

    Use :meth:`acquire` (or ``with WorkDirLock(d):``); the lock is released
    and its file removed by :meth:`release`, at interpreter exit, or by the
    operating system when the process dies.

    Args:
        work_dir (str): The work dir (created when missing).
        purpose (str): What holds it, for the messages.
        lock_file (str): The lock file's name in ``work_dir``. Defaults to
            :data:`LOCK_FILE`.
    """

    def __init__(self,
                 work_dir: str,
                 purpose: str = 'tools/train.py',
                 lock_file: str = LOCK_FILE):
        self.work_dir = work_dir
        self.path = osp.join(work_dir, lock_file)
        self.purpose = purpose
        self._fd: Optional[int] = None
        self._exclusive_file = False

    # -- holder records ----------------------------------------------------

    def _record(self) -> dict:
        pid = os.getpid()
        return dict(
            host=socket.gethostname(),
            pid=pid,
            process_start=process_start_time(pid),
            started=time.strftime('%Y-%m-%d %H:%M:%S'),
            purpose=self.purpose,
            command=' '.join(sys.argv))

    def read_holder(self) -> dict:
        """The record in the lock file ({} when missing or unreadable)."""
        try:
            with open(self.path, 'rb') as f:
                return json.loads(f.read().decode('utf-8') or '{}')
        except (OSError, ValueError):
            return {}

    def describe_holder(self) -> str:
        """Who holds the lock, from its file: host, pid, start date and
        command line."""
        return self._describe(self.read_holder())

    def _describe(self, holder: dict) -> str:
        if not holder:
            return 'a run that left no record'
        parts = [f"host {holder.get('host')!r}", f"pid {holder.get('pid')}"]
        if holder.get('started'):
            parts.append(f"started {holder['started']}")
        if holder.get('command'):
            parts.append(f"command: {holder['command']}")
        return ', '.join(parts)

    def _locked_error(self, holder: dict,
                      hint: str = '') -> WorkDirLockedError:
        return WorkDirLockedError(
            f'{self.purpose}: the work dir {self.work_dir!r} is in use by '
            f'another training run ({self._describe(holder)}; lock file '
            f'{self.path!r}). Two runs on one work dir interleave their logs '
            'and overwrite each other\'s checkpoints. Wait for that run to '
            'end or stop it, or choose another --work-dir' + hint)

    def stale_reason(self, holder: dict) -> Optional[str]:
        """Why the holder recorded in the lock file has ended (used where
        ``flock`` is unavailable), or None when it may still run."""
        if holder.get('host') != socket.gethostname():
            return None
        pid = holder.get('pid')
        if not isinstance(pid, int) or not _pid_alive(pid):
            return f'its process {pid} no longer exists'
        recorded = holder.get('process_start')
        current = process_start_time(pid)
        if recorded is not None and current is not None and abs(
                current - float(recorded)) > 1.0:
            return (f'pid {pid} now belongs to another process (started '
                    'after the lock was written)')
        return None

    # -- acquire / release -------------------------------------------------

    def acquire(self) -> 'WorkDirLock':
        """Take the lock or raise :class:`WorkDirLockedError` at once."""
        os.makedirs(self.work_dir, exist_ok=True)
        if fcntl is not None:
            try:
                return self._acquire_flock()
            except OSError as err:
                if err.errno not in (errno.ENOLCK, errno.EOPNOTSUPP,
                                     errno.ENOSYS, errno.EINVAL):
                    raise
        return self._acquire_exclusive()

    def _acquire_flock(self) -> 'WorkDirLock':
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise self._locked_error(self.read_holder()) from None
            except OSError:
                os.close(fd)
                raise
            # the file may have been removed (released) between our open
            # and our flock: then lock the new one
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = self._read_fd(fd)
        if previous:
            print_log(
                f'{self.purpose}: taking over the stale lock {self.path!r} '
                f'of a run that has ended ({self._describe(previous)}).',
                logger='current',
                level=logging.WARNING)
        self._write_fd(fd, self._record())
        self._fd = fd
        return self

    def _acquire_exclusive(self) -> 'WorkDirLock':
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL,
                             0o644)
            except FileExistsError:
                holder = self.read_holder()
                reason = self.stale_reason(holder)
                if reason is None:
                    raise self._locked_error(
                        holder, '. If that run is gone (another host cannot '
                        f'be checked from here), delete {self.path!r}'
                    ) from None
                print_log(
                    f'{self.purpose}: removing the stale lock {self.path!r} '
                    f'({self._describe(holder)}): {reason}.',
                    logger='current',
                    level=logging.WARNING)
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            self._write_fd(fd, self._record())
            self._fd = fd
            self._exclusive_file = True
            return self
        raise self._locked_error(self.read_holder())

    @staticmethod
    def _read_fd(fd: int) -> dict:
        os.lseek(fd, 0, os.SEEK_SET)
        raw = b''
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            raw += chunk
        try:
            return json.loads(raw.decode('utf-8')) if raw.strip() else {}
        except ValueError:
            return {'record': raw[:200].decode('utf-8', 'replace')}

    @staticmethod
    def _write_fd(fd: int, record: dict) -> None:
        data = json.dumps(record, indent=2).encode('utf-8')
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, data)
        os.fsync(fd)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
