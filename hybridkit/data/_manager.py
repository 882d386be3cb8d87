"""Lazy, cached read access to one hybridkit dataset file."""
from __future__ import annotations

import os
import stat
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

from .._checks import check_real, is_integer
from .._grid import GridSpec
from .._yaml import file_kind
from ._format import DatasetFormatError, decode_attrs, open_array


class DataManager:
    """Read a dataset written by :func:`generate_dataset`: metadata, parameters, time windows.

    The HDF5 handle is opened on first use in each process (and dropped when pickled), so one
    ``DataManager`` can be handed to ``DataLoader`` workers. Whole trajectories ``(sim, field)``
    are kept in an in-memory LRU cache whose size (the arrays' ``nbytes``) stays within
    ``cache_mb``; a trajectory larger than the budget is read window by window, uncached. Once
    the cache is full, a trajectory displaces others only on its second miss in a while (until
    then its windows are read alone): shuffled windows over a file larger than the budget touch
    most trajectories once before they would be evicted, and reading a whole trajectory for one
    window made such a pass 2.4x slower than window reads (benchmarks/bench_streaming_memory.py).

    Args:
        path: the ``.h5`` file.
        cache_mb: cache budget in MiB (0 disables the cache).

    Raises:
        FileNotFoundError: no file at ``path``.
        DatasetFormatError: the file is not HDF5, not a hybridkit dataset, truncated, or its
            arrays do not have the shapes its attributes announce.

    Example::

        with DataManager("data/datasets/burgers1d_default.h5") as dm:
            u = dm.load(sim=0, field="velocity", start=0, stop=5)   # (5, 64)
    """

    def __init__(self, path: str | os.PathLike, *, cache_mb: float = 256):
        self.path = Path(path)
        _check_regular_file(self.path)
        cache_mb = check_real(cache_mb, "cache_mb", minimum=0.0,
                              fix="pass the cache budget in MiB, e.g. cache_mb=256 (0 disables the cache).")
        self.cache_bytes = int(cache_mb * 2**20)
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._dsets: dict[str, h5py.Dataset] = {}  # open field datasets of this process' handle
        self._cache: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()
        self._cached_bytes = 0
        self._ghosts: OrderedDict[tuple[int, str], None] = OrderedDict()  # recent misses not admitted
        self.hits = self.misses = 0
        f = self._file()
        try:
            self._read_header(f)
        except BaseException as e:
            self.close()  # a refused file is not left open (nor locked against being replaced)
            if isinstance(e, (DatasetFormatError, KeyboardInterrupt, SystemExit, MemoryError)):
                raise
            if isinstance(e, (OSError, RuntimeError, KeyError, TypeError, ValueError)):
                # h5py's errors on damaged metadata ("bad heap pointer", "ran off end of input
                # buffer", "unable to determine object type", ...)
                raise DatasetFormatError(
                    f"Cannot read the header of {self.path} ({type(e).__name__}: {e}): the file is "
                    "damaged. Fix: regenerate it."
                ) from None
            raise

    def _read_header(self, f: h5py.File) -> None:
        """Metadata, grid, array shapes and parameters, all checked."""
        self.metadata: dict = decode_attrs(f.attrs, self.path)
        try:
            self.grid = GridSpec(self.metadata["resolution"], self.metadata["domain_size"],
                                 self.metadata["boundary"])
        except (TypeError, ValueError) as e:
            raise DatasetFormatError(f"Dataset {self.path} describes an invalid grid: {e} Fix: regenerate it.") from None
        self._field_shapes = self._check_layout(f)
        # Parameters are small (one value / vector / field per simulation): read them once.
        self._params = {n: np.asarray(f[f"params/{n}"][()], dtype=np.float32) for n in self.metadata["param_names"]}
        bad = [n for n, v in self._params.items() if not np.isfinite(v).all()]
        if bad:
            raise DatasetFormatError(
                f"Expected finite parameters, got NaN or inf in /params/{bad[0]} of {self.path}. Fix: regenerate it."
            )

    # ---------------------------------------------------------------- metadata
    @property
    def dt(self) -> float:
        """Time between consecutive frames."""
        return float(self.metadata["dt"])

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the stored fields, in the model's channel order."""
        return tuple(self.metadata["field_names"])

    @property
    def vector_fields(self) -> tuple[str, ...]:
        """Fields with a trailing vector axis (one component per spatial axis)."""
        return tuple(self.metadata["vector_fields"])

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the per-simulation parameters in ``/params``."""
        return tuple(self.metadata["param_names"])

    @property
    def param_kinds(self) -> dict[str, str]:
        """``name -> "scalar" | "field" | "vector"``."""
        return dict(zip(self.metadata["param_names"], self.metadata["param_kinds"]))

    @property
    def num_sims(self) -> int:
        """Number of simulations."""
        return int(self.metadata["num_sims"])

    @property
    def num_frames(self) -> int:
        """Frames per simulation, the initial state included."""
        return int(self.metadata["num_frames"])

    def field_frames(self, field: str) -> int:
        """Frames stored for ``field`` (``num_frames``, or 1 for a field constant in time)."""
        return self._field_shapes[self._check_field(field)][1]

    # ---------------------------------------------------------------- data
    def params(self, name: str | None = None, sims: int | Sequence[int] | None = None):
        """Parameters used per simulation.

        Args:
            name: one parameter (returns an array) or None (returns ``name -> array``).
            sims: a simulation index, a sequence of them, or None (all).

        Returns:
            float32 ``(sims, *param_shape)`` (without the first axis for an integer ``sims``).
        """
        if name is not None and name not in self._params:
            raise KeyError(f"Unknown parameter {name!r}; the dataset has {list(self.param_names)}.")
        idx = slice(None) if sims is None else self._check_sims(sims)
        if name is not None:
            return self._params[name][idx].copy()
        return {n: v[idx].copy() for n, v in self._params.items()}

    def load(self, sim: int, field: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Frames ``start:stop`` of one simulation's field.

        Returns:
            float32 ``(stop - start, *space[, vector])``, a copy (safe to modify). A field stored
            as float16 or float64 is read as float32 (what the networks and solvers compute in).

        Raises:
            KeyError: unknown field. IndexError: ``sim`` or the window out of range.
            DatasetFormatError: the stored bytes cannot be read (a damaged file).
        """
        self._check_field(field)
        sim = self._check_sims(sim)
        n = self.field_frames(field)
        stop = n if stop is None else stop
        if not (is_integer(start) and is_integer(stop)):
            raise TypeError(f"Expected integer frame indices start and stop, got start={start!r}, stop={stop!r}. "
                            f"Fix: e.g. start=0, stop={n}.")
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= n:
            raise IndexError(
                f"Expected 0 <= start < stop <= {n} frames of {field!r}, got start={start}, "
                f"stop={stop}."
            )
        try:
            traj = self._trajectory(sim, field)
            if traj is None:  # larger than the whole cache budget: read just the window
                return self._finite(_float32(self._dataset(field)[sim, start:stop]), sim, field, start)
        except (OSError, RuntimeError, KeyError) as e:  # h5py: a chunk past the end of a truncated file, ...
            raise DatasetFormatError(
                f"Cannot read simulation {sim} of {field!r} from {self.path} ({e}): the file is damaged "
                "(truncated or overwritten). Fix: regenerate it."
            ) from None
        return traj[start:stop].copy()

    def cache_info(self) -> dict:
        """``{"hits", "misses", "entries", "bytes", "budget_bytes"}`` of this process' cache."""
        return {"hits": self.hits, "misses": self.misses, "entries": len(self._cache),
                "bytes": self._cached_bytes, "budget_bytes": self.cache_bytes}

    def clear_cache(self) -> None:
        """Drop every cached trajectory of this process."""
        self._cache.clear()
        self._ghosts.clear()
        self._cached_bytes = 0

    def _trajectory(self, sim: int, field: str) -> np.ndarray | None:
        key = (sim, field)
        if key in self._cache:
            self.hits += 1
            self._cache.move_to_end(key)
            return self._cache[key]
        self.misses += 1
        ds = self._dataset(field)
        nbytes = int(np.prod(ds.shape[1:])) * 4  # held as float32, whatever the stored width
        if nbytes > self.cache_bytes:
            return None
        if self._cached_bytes + nbytes > self.cache_bytes and not self._admit(key):
            return None  # the caller reads just the window
        while self._cache and self._cached_bytes + nbytes > self.cache_bytes:
            _, old = self._cache.popitem(last=False)
            self._cached_bytes -= old.nbytes
        arr = self._finite(_float32(ds[sim]), sim, field, 0)
        self._cache[key] = arr
        self._cached_bytes += arr.nbytes
        return arr

    def _admit(self, key) -> bool:
        """Whether a trajectory that would evict others enters the cache: on its second miss
        while it is among the last ``len(cache)`` misses not admitted (a 2Q-style admission)."""
        if key in self._ghosts:
            del self._ghosts[key]
            return True
        self._ghosts[key] = None
        while len(self._ghosts) > max(len(self._cache), 1):
            self._ghosts.popitem(last=False)
        return False

    # ---------------------------------------------------------------- checks
    def _check_layout(self, f: h5py.File) -> dict[str, tuple[int, ...]]:
        """Every array the attributes announce, with the shape they announce; ``name -> shape``.

        Checked once on opening, so that a damaged or hand-edited file fails here with the
        reason, not later with an index error deep inside a DataLoader worker.
        """
        meta, res = self.metadata, tuple(self.grid.resolution)
        sims, frames = int(meta["num_sims"]), int(meta["num_frames"])
        shapes = {}
        for name in meta["field_names"]:
            ds = open_array(f, f"fields/{name}", self.path, what="field")
            if ds is None:
                raise DatasetFormatError(
                    f"Dataset {self.path} lacks /fields/{name} listed in its attributes. Fix: regenerate it."
                )
            trailing = res + ((len(res),) if name in meta["vector_fields"] else ())
            shape = tuple(ds.shape)
            if len(shape) != 2 + len(trailing) or shape[0] != sims or shape[1] not in (frames, 1) \
                    or shape[2:] != trailing:
                raise DatasetFormatError(
                    f"Expected /fields/{name} of shape ({sims}, {frames} or 1, {', '.join(map(str, trailing))}) "
                    f"(sims, time, *space[, vector]) as the attributes of {self.path} say, got {shape}. "
                    "Fix: regenerate the file."
                )
            shapes[name] = shape
        for name, kind in zip(meta["param_names"], meta["param_kinds"]):
            ds = open_array(f, f"params/{name}", self.path, what="parameter")
            extra = {"scalar": (), "field": res, "vector": (len(res),)}.get(kind)
            if ds is None or extra is None or tuple(ds.shape) != (sims,) + extra:
                got = "nothing" if ds is None else f"shape {tuple(ds.shape)}"
                raise DatasetFormatError(
                    f"Expected /params/{name} ({kind}) of shape {(sims,) + (extra or ())} in {self.path}, "
                    f"got {got}. Fix: regenerate the file."
                )
        return shapes

    def _finite(self, arr: np.ndarray, sim: int, field: str, start: int) -> np.ndarray:
        """``arr`` if all finite. hybridkit's writers never store NaN / inf, so one in the file
        means the file was damaged or edited: say where, rather than train on it."""
        finite = np.isfinite(arr)
        if not finite.all():
            frames = np.flatnonzero(~finite.reshape(len(arr), -1).all(axis=1)) + start
            raise DatasetFormatError(
                f"Expected finite values, got NaN or inf in {field!r} of simulation {sim} at frame(s) "
                f"{frames[:8].tolist()} of {self.path}. hybridkit never writes non-finite values: the "
                "file was damaged or edited. Fix: regenerate it, or leave this simulation out of sim_indices."
            )
        return arr

    def _check_field(self, field: str) -> str:
        if field not in self._field_shapes:
            raise KeyError(
                f"Unknown field {field!r}; the dataset has {list(self.field_names)}"
                + (f" (and parameters {list(self.param_names)}, read with .params())" if self._params else "")
                + "."
            )
        return field

    def _check_sims(self, sims):
        idx = np.asarray(sims)
        if idx.dtype.kind not in "iu" or idx.ndim > 1:
            raise TypeError(f"Expected an integer simulation index or a list of them, got {sims!r}. "
                            f"Fix: e.g. sim=0 or sims=[0, 1] (0..{self.num_sims - 1}).")
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_sims):
            raise IndexError(
                f"Expected simulation indices in 0..{self.num_sims - 1}, got {sims!r}. "
                f"The dataset holds {self.num_sims} simulations."
            )
        return int(idx) if idx.ndim == 0 else idx

    # ---------------------------------------------------------------- file handle
    def _dataset(self, field: str) -> h5py.Dataset:
        """The open ``/fields/<field>`` of this process' handle, looked up once: h5py's path lookup
        (~60 us) costs more than reading a window (~8 us), so streaming reads keep the objects."""
        f = self._file()
        ds = self._dsets.get(field)
        if ds is None:
            ds = self._dsets[field] = f[f"fields/{field}"]
        return ds

    def _file(self) -> h5py.File:
        """The handle of this process (re-opened after a fork or unpickling)."""
        if self._handle is None or self._pid != os.getpid():
            try:
                self._handle = h5py.File(self.path, "r")
            except OSError as e:
                raise DatasetFormatError(
                    f"Expected an HDF5 file written by hybridkit.data.generate_dataset, but "
                    f"{self.path} cannot be opened as HDF5 ({e}). Fix: regenerate it."
                ) from e
            self._pid = os.getpid()
            self._dsets = {}  # objects of the parent's (or a closed) handle are not ours
            self._cache.clear()  # a forked child starts with its own (empty) budget
            self._ghosts.clear()
            self._cached_bytes = 0
        return self._handle

    def close(self) -> None:
        """Close the file handle and drop the cache (a later read reopens it)."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None
        self._dsets = {}
        self.clear_cache()

    def __enter__(self) -> "DataManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_handle=None, _pid=None, _dsets={}, _cache=OrderedDict(), _ghosts=OrderedDict(),
                     _cached_bytes=0)
        return state

    def __repr__(self) -> str:
        return (f"DataManager({str(self.path)!r}: {self.metadata['pde']}, {self.num_sims} sims x "
                f"{self.num_frames} frames, fields {list(self.field_names)}, grid {self.grid.resolution})")


def _float32(arr: np.ndarray) -> np.ndarray:
    return arr if arr.dtype == np.float32 else arr.astype(np.float32)


def _check_regular_file(path: Path) -> None:
    """A regular file at ``path`` (a symlink to one is fine); nothing else is ever opened, so a
    FIFO cannot block and ``/dev/zero`` cannot be read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Expected a dataset file, found nothing at {path}. Fix: create it with "
            "hybridkit.data.generate_dataset(model, path, ...) or `python -m hybridkit demo`."
        ) from None
    if not stat.S_ISREG(mode):
        raise DatasetFormatError(
            f"Expected a dataset file (an HDF5 file written by hybridkit.data.generate_dataset) at {path}, "
            f"found {file_kind(mode)}. Fix: give the path of the .h5 file itself."
        )
