"""Atomic file writes: the one place where hybridkit renames a finished file into place.

A reader (another process, a resumed run) never sees half a file: the content is written to a
temporary name in the same directory, flushed to disk, and renamed onto the target. On any
failure (an exception, Ctrl-C, a full disk) the temporary file is removed and the target keeps
its previous content.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, ContextManager

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, content: bytes | str | Callable[[Path], None], *,
                 overwrite: bool = True,
                 rename_lock: Callable[[], ContextManager] | None = None) -> Path:
    """Write ``content`` to ``path`` atomically.

    Args:
        path: the target file; its directory is created if needed.
        content: ``bytes`` / ``str`` (UTF-8) to write, or a callable ``write(tmp_path)`` that
            writes the complete file at the temporary path it is given (h5py, ``torch.save``).
        overwrite: replace an existing ``path``. False: create it only if it does not exist yet
            (exactly one of several concurrent writers succeeds; the others get
            ``FileExistsError``).
        rename_lock: a context-manager factory held only around the rename (e.g. a cache's
            file lock), so that the slow write itself does not block other processes.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileExistsError: ``overwrite=False`` and ``path`` exists.
        OSError: the write failed (e.g. ``ENOSPC``: disk full); nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        if callable(content):
            os.close(fd)
            content(tmp)
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content.encode() if isinstance(content, str) else content)
        _fsync(tmp)
        _default_mode(tmp)
        with rename_lock() if rename_lock is not None else contextlib.nullcontext():
            if overwrite or not _link_new(tmp, path):
                os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _link_new(tmp: Path, path: Path) -> bool:
    """Hard-link ``tmp`` to ``path`` if ``path`` does not exist (atomic create-if-absent).
    False where the filesystem has no hard links (the caller then renames)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(
            f"Expected a new file, but {path} exists (perhaps created by another writer meanwhile). "
            "Fix: pass overwrite=True, or use the existing file."
        ) from None
    except OSError:  # e.g. EPERM / ENOTSUP on filesystems without hard links
        return False
    return True


def _default_mode(path: Path) -> None:
    """Give the file the permissions an ordinary ``open(path, "w")`` would (``mkstemp`` makes it
    readable by its owner only): ``0o666`` less the process' umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; not every platform can open a directory, hence the guard."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
