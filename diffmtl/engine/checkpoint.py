# Copyright (c) diffmtl contributors. All rights reserved.
"""Safe checkpoint loading for mmengine checkpoints on torch >= 2.6.

mmengine 0.10.7 calls ``torch.load(filename, map_location=...)`` without a
``weights_only`` argument. Since torch 2.6 that means ``weights_only=True``,
and mmengine's own checkpoints fail to load (``--resume``, ``load_from`` and
``tools/test.py CFG CKPT`` all break) because they pickle a few non-tensor
objects: the message hub's :class:`mmengine.logging.HistoryBuffer` and the
numpy arrays / scalars it holds.

A checkpoint is a pickle, and ``weights_only=False`` executes whatever code
the pickle names. diffmtl therefore never turns ``weights_only`` off
globally. Importing this module replaces mmengine's local-file loader
(``CheckpointLoader`` scheme ``''``) and its ``http(s)://`` loader with
loaders that keep ``weights_only=True`` and allow, only for the duration of
one ``torch.load`` call, exactly the extra globals that mmengine-written
checkpoints contain (:func:`checkpoint_safe_globals`).

A file that pickles any other object is refused with
:class:`UnsafeCheckpointError`, which names the file, the offending globals
and the opt-in. Trusted legacy files can be loaded with
``weights_only=False`` by an explicit, logged opt-in: the environment
variable ``DIFFMTL_TRUSTED_CHECKPOINTS=1``, the ``--trust-checkpoint`` flag
of ``tools/train.py`` / ``tools/test.py``, or
``load_checkpoint_file(..., trusted=True)``.

mmengine's other schemes reach these loaders too, on either OpenMMLab
stack (see :func:`route_mmengine_loaders`): its ``torchvision://``,
``modelzoo://``, ``open-mmlab://`` and ``mmcls://`` loaders call its
module-level ``load_from_http`` (whose ``torch.hub`` download loads with
``weights_only=False``), which is pointed at diffmtl's; and the OneDL
mmengine's ``_safe_torch_load`` (used by its local, ``pavi://``,
``s3://`` / ``petrel://`` and local ``open-mmlab://`` loaders), which
falls back to ``weights_only=False`` after a warning, loads through
:func:`load_checkpoint_file` instead. Upstream mmengine's ``pavi://`` and
``s3://`` loaders call ``torch.load`` with torch's own default,
``weights_only=True``.

A file that is empty, truncated or not a PyTorch checkpoint at all (random
bytes, text) is reported as :class:`CorruptCheckpointError` naming the
file, never as an unsafe pickle: the ``--trust-checkpoint`` opt-in cannot
repair such a file.
"""
import logging
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch
from mmengine.dist import barrier, get_dist_info
from mmengine.logging import HistoryBuffer, print_log
from mmengine.runner import CheckpointLoader

__all__ = [
    'TRUSTED_CHECKPOINTS_ENV', 'UnsafeCheckpointError',
    'CorruptCheckpointError', 'checkpoint_safe_globals', 'checkpoints_trusted',
    'load_checkpoint_file', 'load_from_local', 'load_from_http',
    'route_mmengine_loaders'
]

#: Environment variable that opts in to ``weights_only=False`` loading.
TRUSTED_CHECKPOINTS_ENV = 'DIFFMTL_TRUSTED_CHECKPOINTS'

_GLOBAL_RE = re.compile(r'GLOBAL ([\w.]+)')


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles an object outside diffmtl's allow-list.

    Attributes:
        filename (str): The checkpoint file.
        unsafe_globals (list[str]): The fully qualified names of the
            refused globals (may be empty when torch did not name one).
    """

    def __init__(self, message: str, filename: str, unsafe_globals: List[str]):
        super().__init__(message)
        self.filename = filename
        self.unsafe_globals = unsafe_globals


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is empty, truncated or not a checkpoint.

    Attributes:
        filename (str): The checkpoint file.
        reason (str): What is wrong with it.
    """

    def __init__(self, filename: str, reason: str):
        super().__init__(
            f'Checkpoint {filename} is unreadable: {reason}. The file is '
            'damaged (for example a write that was interrupted) or is not '
            'a PyTorch checkpoint; --trust-checkpoint cannot help. Use '
            'another checkpoint.')
        self.filename = filename
        self.reason = reason


#: First bytes of a zip archive (torch >= 1.6 checkpoints).
_ZIP_MAGIC = b'PK\x03\x04'
#: First bytes of a legacy (non-zip) ``torch.save`` file: pickle protocol 2
#: and the LONG1 opcode of torch's magic number.
_LEGACY_MAGIC = b'\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19'


def _structure_problem(filename: str) -> Optional[str]:
    """Why a local file cannot be a complete checkpoint, or None.

    Cheap checks only: the file size, the first bytes and, for zip files,
    that the central directory at the end of the archive is there (it is
    written last, so a truncated file lacks it).
    """
    size = osp.getsize(filename)
    if size == 0:
        return 'the file is empty (0 bytes)'
    with open(filename, 'rb') as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        if not zipfile.is_zipfile(filename):
            return (f'the zip archive is truncated ({size} bytes, no '
                    'central directory)')
        return None
    if head.startswith(_LEGACY_MAGIC):
        return None
    return (f'it is not a PyTorch checkpoint ({size} bytes; neither a zip '
            'archive nor the legacy torch.save format)')


def _zip_member_problem(filename: str) -> Optional[str]:
    """A CRC or zip-structure error of a zip checkpoint, or None."""
    if not zipfile.is_zipfile(filename):
        return None
    try:
        with zipfile.ZipFile(filename) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f'the zip archive is damaged ({err})'
    if bad is not None:
        return f'the zip member {bad!r} fails its CRC check'
    return None


#: HistoryBuffer methods a pickled buffer refers to (its default statistics).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint.

    A pickled :class:`HistoryBuffer` stores its statistics methods as
    ``getattr(HistoryBuffer, 'mean')`` etc. A general ``getattr`` would let
    a crafted file reach arbitrary attributes (e.g. a function's
    ``__globals__``), so only those exact look-ups are answered.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed: diffmtl only allows '
        f'getattr(HistoryBuffer, name) for name in {_HISTORY_BUFFER_METHODS}')


def checkpoint_safe_globals() -> List[Union[Callable, Tuple[Any, str]]]:
    """The globals (besides torch's defaults) an mmengine checkpoint holds.

    Found by saving real checkpoints with an mmengine ``Runner`` (train +
    resume, with the message hub, optimizer and parameter scheduler states
    and ``dataset_meta``) and reading torch's ``weights_only`` unpickler
    errors one by one:

    * ``mmengine.logging.history_buffer.HistoryBuffer`` (message hub scalars)
      and ``builtins.getattr``, which a buffer's pickled statistics methods
      use (``getattr(HistoryBuffer, 'mean')``). It maps to a restricted
      stand-in that answers only ``getattr(HistoryBuffer, m)`` for
      ``m`` in min / max / current / mean;
    * ``numpy.ndarray`` with its rebuild helper
      ``numpy._core.multiarray._reconstruct`` (the buffers' history arrays);
    * ``numpy.dtype`` (dtypes pickle as ``numpy.dtype('f8', ...)``) and the
      numeric numpy 2 dtype classes (``numpy.dtypes.Float64DType``, ...):
      the unpickler then BUILDs the dtype instance, which it only does for
      allow-listed types;
    * ``numpy._core.multiarray.scalar`` (numpy scalars, e.g. a logged
      ``np.float64``).

    Checkpoints written under numpy 1.x name the same objects under
    ``numpy.core.multiarray``; those names are aliased to the same objects.
    Only plain data types and numpy's array/scalar constructors are listed:
    none of them can call arbitrary code.

    Returns:
        list: Entries for :func:`torch.serialization.safe_globals`, either
        objects or ``(object, 'qualified.name')`` pairs.
    """
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray

    reconstruct = multiarray._reconstruct
    scalar = multiarray.scalar
    entries: List[Union[Callable, Tuple[Any, str]]] = [
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        np.ndarray,
        np.dtype,
        reconstruct,
        scalar,
        # The same objects as numpy 1.x pickles name them.
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (scalar, 'numpy.core.multiarray.scalar'),
    ]
    # The unpickler BUILDs a dtype only when its class is allowed.
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25
    for name in ('BoolDType', 'Int8DType', 'UInt8DType', 'Int16DType',
                 'UInt16DType', 'Int32DType', 'UInt32DType', 'Int64DType',
                 'UInt64DType', 'Float16DType', 'Float32DType', 'Float64DType',
                 'LongLongDType', 'ULongLongDType'):
        dtype_cls = getattr(dtypes, name, None)
        if dtype_cls is not None:
            entries.append(dtype_cls)
    return entries


def checkpoints_trusted() -> bool:
    """Whether ``DIFFMTL_TRUSTED_CHECKPOINTS`` opts in to unsafe loading.

    Accepted true values: ``1``, ``true``, ``yes``, ``on`` (any case).
    """
    value = os.environ.get(TRUSTED_CHECKPOINTS_ENV, '')
    return value.strip().lower() in ('1', 'true', 'yes', 'on')


def _unsafe_globals_in(source: Any, message: str) -> List[str]:
    """Names of the globals torch refused, best effort."""
    names: List[str] = []
    if isinstance(source, (str, os.PathLike)):
        try:
            allowed = set()
            for entry in checkpoint_safe_globals():
                if isinstance(entry, tuple):
                    allowed.add(entry[1])
                else:
                    allowed.add(f'{entry.__module__}.{entry.__qualname__}')
            names = [
                name for name in
                torch.serialization.get_unsafe_globals_in_checkpoint(source)
                if name not in allowed
            ]
        except Exception:  # noqa: BLE001  (old format, not a zip, ...)
            names = []
    if not names:
        names = _GLOBAL_RE.findall(message)
    return sorted(set(names))


def _reason(message: str) -> str:
    """The informative line of torch's ``weights_only`` error message."""
    lines = [ln.strip() for ln in message.splitlines() if ln.strip()]
    for line in lines:
        if re.search(r'Unsupported|Can only build|Trying to call|not allowed',
                     line):
            return line
    return lines[0] if lines else 'unknown reason'


def load_checkpoint_file(filename: Union[str, os.PathLike, Any],
                         map_location: Optional[Any] = None,
                         trusted: Optional[bool] = None) -> Any:
    """Load a checkpoint with ``weights_only=True`` and diffmtl's allow-list.

    Args:
        filename (str | PathLike | file-like): The checkpoint. A file-like
            object is accepted too (its name is then reported as
            ``<buffer>``).
        map_location (optional): Same as :func:`torch.load`.
        trusted (bool, optional): ``True`` loads with ``weights_only=False``
            (logged; only for files you trust, since unpickling can run
            arbitrary code). ``None`` (default) reads the
            ``DIFFMTL_TRUSTED_CHECKPOINTS`` environment variable.

    Returns:
        Any: The unpickled checkpoint (usually a dict with ``meta``,
        ``state_dict``, ``message_hub``, ``optimizer``,
        ``param_schedulers``, or a plain state dict).

    Raises:
        UnsafeCheckpointError: If the file pickles a global outside the
            allow-list and loading is not trusted.
        CorruptCheckpointError: If the file is empty, truncated, damaged
            or not a PyTorch checkpoint.
    """
    name = (
        os.fspath(filename) if isinstance(filename,
                                          (str, os.PathLike)) else '<buffer>')
    local = isinstance(filename, (str, os.PathLike)) and osp.isfile(name)
    if local:
        problem = _structure_problem(name)
        if problem is not None:
            raise CorruptCheckpointError(name, problem)
    if trusted is None:
        trusted = checkpoints_trusted()
    if trusted:
        print_log(
            f'Loading checkpoint {name} with weights_only=False (trusted '
            f'opt-in: {TRUSTED_CHECKPOINTS_ENV}=1, --trust-checkpoint or '
            'trusted=True). Unpickling can execute arbitrary code; only do '
            'this for files you trust.',
            logger='current',
            level=logging.WARNING)
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=False)
        except Exception as err:  # noqa: BLE001
            _raise_if_corrupt(name, local, err)
            raise
    try:
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        message = str(err)
        damaged = _zip_member_problem(name) if local else None
        if damaged is not None:
            raise CorruptCheckpointError(name, damaged) from err
        offending = _unsafe_globals_in(filename, message)
        if offending:
            what = ('pickles objects outside diffmtl\'s allow-list of '
                    'checkpoint types: ' + ', '.join(offending))
        else:
            what = ('cannot be loaded with weights_only=True: ' +
                    _reason(message))
        raise UnsafeCheckpointError(
            f'Refusing to load checkpoint {name}: it {what}. Loading it '
            'would run code from the file. If you trust this file, opt in '
            f'with {TRUSTED_CHECKPOINTS_ENV}=1 (or --trust-checkpoint on '
            'tools/train.py and tools/test.py, or '
            'diffmtl.engine.load_checkpoint_file(..., trusted=True)); '
            'better, re-save its tensors as a plain state dict.', name,
            offending) from None
    except Exception as err:  # noqa: BLE001
        _raise_if_corrupt(name, local, err)
        raise


#: ``torch.load`` errors that mean a damaged or foreign file.
_CORRUPT_ERRORS = (EOFError, KeyError, zipfile.BadZipFile,
                   pickle.UnpicklingError)
#: ``torch.load`` messages that mean a damaged or foreign file.
_CORRUPT_RE = re.compile(
    r'PytorchStreamReader|zip archive|central directory|corrupt|'
    r'magic number|invalid load key|unexpected EOF|Ran out of input',
    re.IGNORECASE)


def _raise_if_corrupt(name: str, local: bool, err: Exception) -> None:
    """Raise :class:`CorruptCheckpointError` when ``err`` means damage.

    ``torch.load`` reports damaged files as ``EOFError``, ``KeyError``
    (legacy magic number), ``zipfile.BadZipFile``, unpickling errors or a
    ``RuntimeError`` from its zip reader. Other errors (for example a CUDA
    ``map_location`` on a CPU host) are left to the caller to re-raise.
    """
    if isinstance(err, (CorruptCheckpointError, UnsafeCheckpointError)):
        return
    damaged = _zip_member_problem(name) if local else None
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    described = f'{type(err).__name__}: {lines[0] if lines else repr(err)}'
    if damaged is None and (isinstance(err, _CORRUPT_ERRORS)
                            or _CORRUPT_RE.search(str(err))):
        damaged = described
    if damaged is not None:
        raise CorruptCheckpointError(name, damaged) from err


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location: Optional[Any] = None):
    """mmengine ``CheckpointLoader`` scheme for local files (safe load).

    Args:
        filename (str): Local checkpoint path (``~`` is expanded).
        map_location (optional): Same as :func:`torch.load`.

    Returns:
        The loaded checkpoint, see :func:`load_checkpoint_file`.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return load_checkpoint_file(filename, map_location=map_location)


def _download(url: str, model_dir: Optional[str]) -> str:
    """Download ``url`` into ``model_dir`` (torch hub cache by default)."""
    from urllib.parse import urlparse

    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(model_dir, exist_ok=True)
    cached = osp.join(model_dir, osp.basename(urlparse(url).path))
    if not osp.exists(cached):
        print_log(f'Downloading {url} to {cached}', logger='current')
        torch.hub.download_url_to_file(url, cached, progress=False)
    return cached


@CheckpointLoader.register_scheme(prefixes=('http://', 'https://'), force=True)
def load_from_http(filename: str,
                   map_location: Optional[Any] = None,
                   model_dir: Optional[str] = None):
    """mmengine ``CheckpointLoader`` scheme for URLs (safe load).

    Rank 0 downloads first (into ``model_dir`` or the torch hub cache), the
    other ranks wait and reuse the cached file; every rank then loads it
    with :func:`load_checkpoint_file`. ``torchvision://`` and
    ``open-mmlab://`` names resolve to URLs and end up here.

    Args:
        filename (str): ``http://`` or ``https://`` URL.
        map_location (optional): Same as :func:`torch.load`.
        model_dir (str, optional): Download directory.

    Returns:
        The loaded checkpoint, see :func:`load_checkpoint_file`.
    """
    rank, world_size = get_dist_info()
    if rank == 0:
        cached = _download(filename, model_dir)
    if world_size > 1:
        barrier()
        if rank > 0:
            cached = _download(filename, model_dir)
    return load_checkpoint_file(cached, map_location=map_location)


def _mmengine_torch_load(file: Any,
                         map_location: Optional[Any] = None,
                         weights_only: Optional[bool] = None) -> Any:
    """Stand-in for the OneDL mmengine's ``_safe_torch_load``: every load
    goes through :func:`load_checkpoint_file` (``weights_only`` is
    ignored: only diffmtl's explicit opt-in loads untrusted pickles)."""
    return load_checkpoint_file(file, map_location=map_location)


def route_mmengine_loaders() -> None:
    """Point mmengine's internal load functions at diffmtl's safe ones.

    Called once when this module is imported. It replaces, in
    ``mmengine.runner.checkpoint``, the module-level ``load_from_http``
    (called directly by the ``torchvision://``, ``modelzoo://``,
    ``open-mmlab://`` and ``mmcls://`` loaders, bypassing the registered
    ``http(s)://`` scheme) and, where it exists (OneDL mmengine),
    ``_safe_torch_load``.
    """
    from mmengine.runner import checkpoint as mm_checkpoint
    mm_checkpoint.load_from_http = load_from_http
    if hasattr(mm_checkpoint, '_safe_torch_load'):
        mm_checkpoint._safe_torch_load = _mmengine_torch_load


route_mmengine_loaders()
