"""Bring your own data: trajectories from numpy arrays into the dataset format, and the writer
and checks every importer shares (xarray: :mod:`._xarray`, PDEBench files: :mod:`._pdebench`).

Every importer writes one file that :class:`DataManager` and :class:`HybridDataset` read like a
generated one. The grid and ``dt`` come from the coordinates and are checked
(:mod:`._coordinates`):

* **uniform spacing**: every coordinate ``c_i`` lies within ``spacing_tol`` of a cell
  (default ``1e-3 * dx``, plus the rounding of the stored dtype, ``4 eps |c|max``) of
  ``c_0 + i * dx`` with ``dx = (c_last - c_0) / (n - 1)``; times likewise with ``dt``.
* **cell centres**: hybridkit's grid is cell-centred on ``[0, L)``; each sample becomes one cell
  centre, values are never interpolated. ``L = n * dx`` and the lower edge ``c_0 - dx / 2`` is
  kept in the file (``source_config["import"]["origin"]``) so that :func:`to_xarray` gives the
  original coordinates back. Node coordinates of a periodic grid (``c_i = a + i dx``, the end
  excluded) describe the same samples; only the recorded origin moves by half a cell. Node
  coordinates of a non-periodic grid with both ends (``linspace(a, b, n)``) give a domain one
  cell longer than ``b - a``: the end samples sit half a cell inside hybridkit's walls.
* **periodicity is stated, never guessed** (``periodic=True`` / ``False``; ``False`` means
  hybridkit's ``"zero"`` boundary, zero ghost cells). A periodic grid whose last sample repeats
  the first (both ends of the period included) is refused with the fix (drop the last sample).
* the PDE name and the true parameters are optional: data observed by someone may know neither
  (``pde`` is then ``"unknown"``, ``/params`` is empty).

NaN / inf, missing fields, mismatched shapes, wrong ranks and non-uniform coordinates are errors
that say what was expected, what was given, and the fix.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import h5py
import numpy as np

from .._grid import GridSpec
from ..physics import ParamSpec
from ._coordinates import AXES, DEFAULT_SPACING_TOL, cell_grid, frame_spacing
from ._format import _plain
from ._space import check_space, estimate_bytes
from ._generate import (_check_target, _create_field_datasets, _write_atomically, _write_params, chunk_frames,
                        layout_metadata)

__all__ = ["import_arrays", "FieldSource", "write_imported"]

_BATCH_BYTES = 64 << 20  # read and write at most this much of one field at a time


@dataclass(frozen=True)
class FieldSource:
    """One field as it will be written: shape ``(sims, frames, *space[, vector])`` and a reader
    of simulations ``a:b`` (so that a large PDEBench file is streamed, never loaded whole)."""

    shape: tuple[int, ...]
    read: Callable[[int, int], np.ndarray]
    where: str  # names the source in messages


# ---------------------------------------------------------------- numpy
def import_arrays(
    path: str | os.PathLike,
    fields: Mapping[str, np.ndarray] | np.ndarray,
    *,
    periodic: bool,
    dt: float | None = None,
    t: Sequence[float] | np.ndarray | None = None,
    coords: Sequence[np.ndarray] | np.ndarray | None = None,
    domain_size: float | Sequence[float] | None = None,
    vector_fields: Sequence[str] = (),
    pde: str | None = None,
    params: Mapping[str, object] | None = None,
    attrs: Mapping[str, object] | None = None,
    overwrite: bool = False,
    spacing_tol: float = DEFAULT_SPACING_TOL,
) -> Path:
    """Write numpy trajectories to ``path`` in the dataset format.

    Args:
        path: the ``.h5`` file to write (atomically).
        fields: ``name -> (sims, time, *space)`` for a scalar field, ``(sims, time, *space, ndim)``
            for a field named in ``vector_fields``; a bare array is the field ``"u"``.
        periodic: whether the domain is periodic (stated, never guessed).
        dt: time between frames; or ``t``: the frame times (uniform, checked). Exactly one.
        coords: sample positions per spatial axis (``[x]``, ``[x, y]``; a bare 1D array for 1D),
            each taken as a cell centre and checked for uniform spacing; or ``domain_size``
            alone: cells at ``(i + 0.5) * L / n``. Both: ``domain_size`` must agree with the
            coordinates and is used as the exact length.
        vector_fields: fields with a trailing vector axis (one component per spatial axis).
        pde: a name for what produced the data (recorded; default ``"unknown"``).
        params: true parameters where known, ``name -> value``: a number (shared by all
            simulations) or an array ``(sims, *shape)`` with ``shape`` ``()`` (scalar),
            the grid's resolution (field) or ``(ndim,)`` (vector).
        attrs: JSON-serialisable description stored in ``source_config``.
        overwrite: replace an existing file.
        spacing_tol: allowed deviation from uniform spacing, a fraction of one cell.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: shapes, ranks, coordinates, times or values the format cannot hold (the
            message names the fix). TypeError: ``periodic`` not a bool.
        FileExistsError: ``path`` exists and ``overwrite`` is False.

    Example::

        import_arrays("mine.h5", {"velocity": u}, periodic=True, dt=0.1, coords=[x])
    """
    check_periodic(periodic)
    if not isinstance(fields, Mapping):
        fields = {"u": fields}
    if not fields:
        raise ValueError("Expected at least one field, got none. Fix: pass fields={'u': array}.")
    vector_fields = check_vector_names(vector_fields, fields)
    if coords is not None and (isinstance(coords, np.ndarray) and coords.ndim == 1
                               or all(np.isscalar(c) for c in coords)):
        coords = [coords]  # one axis given bare
    if coords is not None:
        ndim = len(coords)
    elif domain_size is not None:
        ndim = len(np.atleast_1d(domain_size))
    else:
        raise ValueError("Expected the grid: coords=[x, ...] (sample positions) or domain_size=(L, ...). "
                         "Fix: pass one of them.")
    sources = {}
    for name, value in fields.items():
        arr = np.asarray(value)
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"Expected numbers in field {name!r}, got dtype {arr.dtype}.")
        sources[name] = FieldSource(arr.shape, slicer(arr), f"field {name!r}")
    check_shapes(sources, ndim, vector_fields)
    space = space_shape(sources, vector_fields)
    grid, origin = cell_grid(space, [None] * ndim if coords is None else list(coords), domain_size, periodic,
                         spacing_tol, AXES[:ndim])
    dt, t0 = frame_spacing(num_frames_of(sources), dt, t, spacing_tol, "t")
    info = {"from": "numpy", "source": None, "origin": origin, "time_origin": t0}
    return write_imported(path, sources, grid=grid, dt=dt, vector_fields=vector_fields, pde=pde, params=params,
                  info=info, attrs=attrs, overwrite=overwrite)


# ---------------------------------------------------------------- the checks all importers share
def slicer(arr) -> Callable[[int, int], np.ndarray]:
    """``(a, b) -> arr[a:b]`` (numpy arrays, h5py datasets, xarray objects)."""
    return lambda a, b: arr[a:b]


def check_periodic(periodic) -> None:
    if not isinstance(periodic, (bool, np.bool_)):
        raise TypeError(f"Expected periodic=True or False, got {periodic!r}. hybridkit does not guess the "
                        "boundary from the data. Fix: state whether the domain is periodic.")


def check_vector_names(vector_fields, fields) -> tuple[str, ...]:
    vector_fields = (vector_fields,) if isinstance(vector_fields, str) else tuple(vector_fields)
    unknown = [n for n in vector_fields if n not in fields]
    if unknown:
        raise KeyError(f"vector_fields names {unknown}, which are not among the fields {list(fields)}.")
    return vector_fields


def check_shapes(sources: Mapping[str, FieldSource], ndim: int, vector_fields) -> None:
    """One ``(sims, frames, *space)`` for all fields, the right rank, a vector axis of ``ndim``."""
    ref_name, ref = next(iter(sources.items()))
    for name, src in sources.items():
        vec = name in vector_fields
        rank = 2 + ndim + vec
        layout = "(sims, time, " + ", ".join(AXES[:ndim]) + (", vector)" if vec else ")")
        if len(src.shape) != rank:
            hint = ("add the missing axes, e.g. u[None] for a single simulation or u[:, None] for a single "
                    "frame" if len(src.shape) < rank else "name it in vector_fields if it is a vector field, "
                    "else give coordinates for every spatial axis")
            raise ValueError(f"Expected {src.where} of rank {rank} {layout}, got shape {src.shape}. Fix: {hint}.")
        if vec and src.shape[-1] != ndim:
            raise ValueError(f"Expected vector field {name!r} with {ndim} components (one per spatial axis) "
                             f"on its last axis, got shape {src.shape}.")
        if src.shape[:2 + ndim] != ref.shape[:2 + ndim]:
            raise ValueError(f"Expected every field with the same (sims, time, *space); {src.where} has "
                             f"{src.shape[:2 + ndim]}, {ref.where} {ref.shape[:2 + ndim]}. Fix: crop them to "
                             "common sizes.")
    if ref.shape[0] < 1 or ref.shape[1] < 1:
        raise ValueError(f"Expected at least one simulation and one frame, got shape {ref.shape} for {ref_name!r}.")


def space_shape(sources, vector_fields) -> tuple[int, ...]:
    name, src = next(iter(sources.items()))
    return tuple(src.shape[2:len(src.shape) - (name in vector_fields)])


def num_frames_of(sources) -> int:
    return next(iter(sources.values())).shape[1]


def _imported_params(params, num_sims: int, grid: GridSpec) -> tuple[list[ParamSpec], dict]:
    """Parameters given at import: kinds from their shapes (see :func:`import_arrays`)."""
    specs, values = [], {}
    kinds = {(): "scalar", tuple(grid.resolution): "field", (grid.ndim,): "vector"}
    for name, value in dict(params or {}).items():
        v = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=np.float64)
        if v.ndim == 0:
            v = np.full((num_sims,), float(v))
        kind = kinds.get(v.shape[1:]) if v.shape[:1] == (num_sims,) else None
        if kind is None:
            raise ValueError(
                f"Expected parameter {name!r} as a number or an array (sims={num_sims}, *shape) with shape () "
                f"(scalar), {tuple(grid.resolution)} (field) or ({grid.ndim},) (vector), got shape {v.shape}. "
                "Fix: give one value per simulation along the first axis.")
        if not np.isfinite(v).all():
            raise ValueError(f"Expected finite values of parameter {name!r}, got NaN or inf.")
        specs.append(ParamSpec(str(name), kind, (-np.inf, np.inf), "given at import"))
        values[str(name)] = np.ascontiguousarray(v, dtype=np.float32)
    return specs, values


def write_imported(path, sources: Mapping[str, FieldSource], *, grid, dt, vector_fields, pde, params, info, attrs,
           overwrite) -> Path:
    """Check values while streaming them into the file; atomic (nothing is left on failure)."""
    path = _check_target(path, overwrite)
    attrs = dict(attrs or {})
    if "import" in attrs:
        raise ValueError("attrs may not use the key 'import' (the importer records the source there).")
    num_sims, num_frames = next(iter(sources.values())).shape[:2]
    specs, per_sim = _imported_params(params, num_sims, grid)
    meta = layout_metadata(grid=grid, dt=dt, pde=pde or "unknown", model_config={}, field_names=tuple(sources),
                           vector_fields=vector_fields, param_specs=specs, num_sims=num_sims,
                           num_frames=num_frames, seed=0, attrs={**attrs, "import": info})
    path.parent.mkdir(parents=True, exist_ok=True)

    def fill(f: h5py.File) -> None:
        _write_params(f, grid, specs, per_sim)
        dsets = _create_field_datasets(f, grid, tuple(sources), vector_fields, num_sims, num_frames)
        for name, src in sources.items():
            per = max(1, int(np.prod(src.shape[1:])) * 4)
            step = max(1, _BATCH_BYTES // per)
            for a in range(0, num_sims, step):
                b = min(a + step, num_sims)
                arr = np.asarray(src.read(a, b))
                if arr.shape != (b - a,) + src.shape[1:]:
                    raise ValueError(f"{src.where}: read shape {arr.shape}, expected {(b - a,) + src.shape[1:]}.")
                arr = _finite(arr.astype(np.float32), src.where, a)
                if a == 0 and grid.boundary == "periodic":
                    _check_no_repeated_end(arr, grid.ndim, name in vector_fields, src.where)
                dsets[name][a:b] = arr

    arrays = [((num_sims, num_frames) + src.shape[2:], (1, chunk_frames(num_frames)) + src.shape[2:])
              for src in sources.values()]
    arrays += [((num_sims,) + tuple(spec.shape(grid)), None) for spec in specs]
    nbytes = estimate_bytes(arrays, len(json.dumps(meta, default=str)))
    check_space(path, nbytes)  # before reading a large source, not after
    return _write_atomically(path, meta, fill, overwrite, nbytes)


def _finite(arr: np.ndarray, where: str, first_sim: int) -> np.ndarray:
    ok = np.isfinite(arr.reshape(arr.shape[0], arr.shape[1], -1)).all(axis=2)
    if not ok.all():
        sims, frames = np.nonzero(~ok)
        raise ValueError(
            f"Expected finite values, got NaN or inf in {where}: simulation(s) "
            f"{sorted(set((sims + first_sim).tolist()))[:8]}, first at frame {int(frames[0])}. hybridkit "
            "trains on complete trajectories. Fix: leave those simulations out, crop the frames before the "
            "first NaN, or fill the gaps (e.g. interpolate in time) before importing.")
    return arr


def _check_no_repeated_end(arr: np.ndarray, ndim: int, vec: bool, where: str) -> None:
    """A periodic grid must not include both ends of the period (the last sample = the first)."""
    for axis in range(ndim):
        ax = 2 + axis
        first, last = np.take(arr, 0, axis=ax), np.take(arr, -1, axis=ax)
        if np.array_equal(first, last) and not np.array_equal(first, np.take(arr, 1, axis=ax)):
            raise ValueError(
                f"{where}: along {AXES[axis]!r} the last sample equals the first in every simulation and "
                "frame: the grid includes both ends of the period. hybridkit's periodic grid holds each point "
                "once. Fix: drop the last sample along that axis (data[..., :-1] and x[:-1]).")


def jsonable_attrs(attrs) -> dict:
    out = {}
    for key, value in attrs.items():
        value = _plain(value)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        try:
            json.dumps(value)
        except TypeError:
            value = str(value)
        out[str(key)] = value
    return out


