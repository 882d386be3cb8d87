"""CacheManager: generated trajectories on disk, keyed by what produced them."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .._checks import check_count, check_real
from .._io import atomic_write

__all__ = ["CacheManager", "CacheEntry", "cache_key"]

_SUFFIX = ".h5"
_META = ".json"


def _canonical(value):
    """Plain-data form of ``value`` for hashing: arrays by their bytes' digest, dicts sorted."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {"dtype": str(arr.dtype), "shape": list(arr.shape),
                "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"Cannot key the cache on a {type(value).__name__}; pass plain data or arrays.")


def cache_key(**what) -> str:
    """A stable hex key for the description ``what`` (model, parameter values, cycle, settings).

    Equal descriptions give equal keys across processes and sessions; arrays count by content.
    """
    blob = json.dumps(_canonical(what), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class CacheEntry:
    """One cached file: its key, path, size in bytes, creation and last-use times, description."""

    key: str
    path: Path
    size: int
    created: float
    last_used: float
    meta: dict


class CacheManager:
    """Stores generated trajectories as HDF5 files under ``root``, one file per key.

    A file is written to a unique temporary name and renamed into place only when complete, and
    its description (``<key>.json``) is written the same way afterwards: an entry exists only
    when both are complete, so a crash or a second process never leaves a half-written file that
    is later read. Cleanup removes the least recently used entries beyond a size budget or an age.
    Listing and cleanup tolerate files that other processes add or remove meanwhile (a file that
    vanishes between being listed and being looked at is skipped, not an error).

    Args:
        root: cache directory (created if missing).
        max_bytes: optional total size budget applied after every :meth:`put`.
        max_age_s: optional age limit (seconds since last use) applied after every :meth:`put`.
    """

    def __init__(self, root: str | os.PathLike, *, max_bytes: int | None = None,
                 max_age_s: float | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.max_age_s = _check_limits(max_bytes, max_age_s)

    # ------------------------------------------------------------------ paths
    def path(self, key: str) -> Path:
        """Where the file of ``key`` lives (whether or not it exists yet)."""
        if not isinstance(key, str) or not key or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"Expected a hex cache key from cache_key(...), got {key!r}.")
        return self.root / f"{key}{_SUFFIX}"

    def _meta_path(self, key: str) -> Path:
        return self.root / f"{key}{_META}"

    @contextmanager
    def _lock(self):
        # One lock file serialises writers and cleanup across processes; readers need none because
        # files appear only by atomic rename.
        self.root.mkdir(parents=True, exist_ok=True)  # removed by hand meanwhile: the lock file needs it
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # ------------------------------------------------------------------ access
    def get(self, key: str) -> Path | None:
        """The path of a complete entry for ``key`` (and mark it used), or None."""
        path, meta = self.path(key), self._meta_path(key)
        if not (path.exists() and meta.exists()):
            return None
        now = time.time()
        try:
            os.utime(meta, (now, now))
        except FileNotFoundError:  # removed by a cleanup in another process just now
            return None
        return path

    def put(self, key: str, write: Callable[[Path], None], meta: Mapping | None = None) -> Path:
        """Create the entry ``key`` by calling ``write(tmp_path)``, then rename it into place.

        Args:
            key: from :func:`cache_key`.
            write: writes the complete file at the path it is given.
            meta: plain-data description stored beside the file (what produced it).
        """
        path = self.path(key)
        try:  # serialised before the data are written: a description that cannot be stored would
            # otherwise leave a data file without one, which no listing or cleanup ever sees
            meta_text = json.dumps({"key": key, "created": time.time(), "meta": dict(meta or {})}, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise TypeError(f"Expected meta as plain JSON data (dicts, lists, strings, finite numbers), got {meta!r} "
                            f"({e}). Fix: describe the entry with plain values.") from None

        @contextmanager
        def publish():  # under the lock: the file and its description appear together
            with self._lock():
                yield
                atomic_write(self._meta_path(key), meta_text)

        atomic_write(path, write, rename_lock=publish)
        if self.max_bytes is not None or self.max_age_s is not None:
            self.cleanup(max_bytes=self.max_bytes, max_age_s=self.max_age_s, keep=(key,))
        return path

    def get_or_create(self, key: str, write: Callable[[Path], None], meta: Mapping | None = None) -> Path:
        """:meth:`get`, or :meth:`put` when the entry does not exist yet."""
        return self.get(key) or self.put(key, write, meta)

    # ------------------------------------------------------------------ housekeeping
    def entries(self) -> list[CacheEntry]:
        """Complete entries, least recently used first."""
        out = []
        for meta_path in self.root.glob(f"*{_META}"):
            key = meta_path.name[: -len(_META)]
            path = self.root / f"{key}{_SUFFIX}"
            try:
                info = json.loads(meta_path.read_text())
                last_used = meta_path.stat().st_mtime
                size = path.stat().st_size
                created = float(info.get("created", 0.0))
                described = info.get("meta", {})
            except (OSError, ValueError, TypeError, AttributeError):
                # removed by a concurrent cleanup, or a description being replaced / not ours:
                # the entry is not complete at this moment (the next listing sees it as it is then)
                continue
            out.append(CacheEntry(key, path, size, created, last_used, described))
        return sorted(out, key=lambda e: e.last_used)

    def total_bytes(self) -> int:
        """Size in bytes of all complete entries' files."""
        return sum(e.size for e in self.entries())

    def cleanup(self, *, max_bytes: int | None = None, max_age_s: float | None = None,
                keep: tuple[str, ...] = ()) -> list[str]:
        """Remove entries unused for longer than ``max_age_s``, then the least recently used
        ones until the total is at most ``max_bytes``; also stale temporary files. Returns the
        removed keys."""
        max_bytes, max_age_s = _check_limits(max_bytes, max_age_s)
        removed = []
        with self._lock():
            now = time.time()
            for tmp in self.root.glob(".*.tmp"):
                try:
                    stale = now - tmp.stat().st_mtime > 3600  # a writer that died an hour ago
                except FileNotFoundError:  # its writer renamed it into place meanwhile
                    continue
                if stale:
                    tmp.unlink(missing_ok=True)
            entries = self.entries()
            total = sum(e.size for e in entries)
            for e in entries:
                too_old = max_age_s is not None and now - e.last_used > max_age_s
                too_big = max_bytes is not None and total > max_bytes
                if e.key in keep or not (too_old or too_big):
                    continue
                self._meta_path(e.key).unlink(missing_ok=True)  # entry disappears first
                e.path.unlink(missing_ok=True)
                total -= e.size
                removed.append(e.key)
        return removed

    def clear(self) -> list[str]:
        """Remove every entry."""
        return self.cleanup(max_bytes=0)


def _check_limits(max_bytes, max_age_s) -> tuple[int | None, float | None]:
    if max_bytes is not None:
        max_bytes = check_count(max_bytes, "max_bytes", minimum=0,
                                fix="a size budget in bytes, e.g. max_bytes=2 * 2**30; None for no limit.")
    if max_age_s is not None:
        max_age_s = check_real(max_age_s, "max_age_s", minimum=0.0,
                               fix="an age in seconds, e.g. max_age_s=7 * 86400; None for no limit.")
    return max_bytes, max_age_s
