"""Room on disk for a dataset: estimated, checked before any work, reserved before HDF5 writes.

HDF5 (2.0, as bundled with h5py 3.16) does not survive a failed write: when the disk fills up (or
the process' file size limit is reached) in the middle of a dataset, h5py raises a RuntimeError
while closing and the interpreter then crashes (segmentation fault) at exit. So HDF5 must never
meet a full disk. Before a dataset is simulated its size is estimated (an upper bound: the
arrays, their chunk padding and checksums, the chunk index, the attributes, a margin) and checked
against the free space and ``ulimit -f``; before HDF5 writes, that many bytes are reserved for
the temporary file with ``posix_fallocate``. HDF5 writes into reserved blocks and, on closing,
truncates the file to what it used, so the file is byte-identical to an unreserved one. A
shortage is a :class:`DiskFullError` (an ``OSError`` with ``errno`` ENOSPC / EFBIG) that says
what was needed, what is free, and the fix; nothing is left behind.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = ["DiskFullError", "estimate_bytes", "check_space", "reserve"]

_MARGIN = 1.05  # relative margin on the estimate
_SLACK = 64 * 2**10  # bytes: superblock, groups, heaps (a 1-sim file measured 15 kB in all)
_PER_ARRAY = 16 * 2**10  # bytes: an array's object header, attributes, B-tree root
_PER_CHUNK = 96  # bytes per chunk: checksum (4) and its B-tree entry
_NO_RESERVE = {getattr(errno, n) for n in ("EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EINVAL") if hasattr(errno, n)}
_FULL = {getattr(errno, n) for n in ("ENOSPC", "EFBIG", "EDQUOT") if hasattr(errno, n)}


class DiskFullError(OSError):
    """Not enough room (disk space, quota or ``ulimit -f``) to write a file; nothing was written.

    ``errno`` is ENOSPC (or EDQUOT) for a full disk, EFBIG for the file size limit; the message
    names the file, the bytes needed and free, and the fix.
    """


def estimate_bytes(arrays: list[tuple[tuple[int, ...], tuple[int, ...] | None]], attrs_bytes: int) -> int:
    """Upper bound of an HDF5 file's size holding float32 ``arrays``.

    Args:
        arrays: ``(shape, chunks)`` per array (``chunks`` None: contiguous).
        attrs_bytes: size of the attributes' text (JSON metadata).
    """
    total = 2 * attrs_bytes + _PER_ARRAY * len(arrays)
    for shape, chunks in arrays:
        if chunks is None:
            total += 4 * _prod(shape)
            continue
        # a partial chunk at the end of an axis is stored whole
        n_chunks = _prod(-(-s // c) for s, c in zip(shape, chunks))
        total += n_chunks * (4 * _prod(chunks) + _PER_CHUNK)
    return int(total * _MARGIN) + _SLACK


def check_space(path: str | os.PathLike, nbytes: int) -> None:
    """Refuse before any work when ``path``'s directory has less than ``nbytes`` free, or the
    process' file size limit (``ulimit -f``) is below ``nbytes``.

    Raises:
        DiskFullError: with what is needed and what is available.
    """
    path = Path(path)
    directory = _existing_parent(path)
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        free = None
    if free is not None and free < nbytes:
        raise _full(path, nbytes, errno.ENOSPC, f"{_mb(free)} free on {directory}")
    limit = _file_size_limit()
    if limit is not None and limit < nbytes:
        raise _full(path, nbytes, errno.EFBIG, f"the file size limit of this process (ulimit -f) is {_mb(limit)}")


def reserve(tmp: Path, nbytes: int, target: Path) -> None:
    """Allocate ``nbytes`` for the file ``tmp`` (to become ``target``), so that writes into it
    cannot fail for lack of space. A filesystem that cannot reserve is written unreserved.

    Raises:
        DiskFullError: the space is not there (any more).
    """
    if not hasattr(os, "posix_fallocate"):  # macOS, Windows: the check before the work must do
        return
    fd = os.open(tmp, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as e:
        if e.errno in _FULL:
            raise _full(target, nbytes, e.errno, os.strerror(e.errno).lower()) from None
        if e.errno not in _NO_RESERVE:
            raise
    finally:
        os.close(fd)


def _full(path: Path, nbytes: int, code: int, available: str) -> DiskFullError:
    fix = ("raise the limit (ulimit -f) or write somewhere else" if code == errno.EFBIG else
           "free space there, or set HYBRIDKIT_DATA to a directory on a disk with room (or pass another path)")
    what = f"File too large for {path}" if code == errno.EFBIG else f"Disk full writing {path}"
    return DiskFullError(code, f"{what}: about {_mb(nbytes)} needed, {available}. Nothing was written. Fix: {fix}.")


def _existing_parent(path: Path) -> Path:
    for p in (path.parent, *path.parent.parents):
        if p.exists():
            return p
    return Path.cwd()


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e5 else f"{nbytes:,} bytes"


def _prod(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out
