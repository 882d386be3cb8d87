"""Bring your own data: trajectories from numpy arrays or xarray into the dataset format (and,
through the shared writer here, PDEBench files: :mod:`._pdebench`), and a dataset back out as an
``xarray.Dataset``.

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
from ._generate import (_check_target, _create_field_datasets, _write_atomically, _write_params,
                        layout_metadata)
from ._manager import DataManager

__all__ = ["import_arrays", "import_xarray", "to_xarray"]

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


# ---------------------------------------------------------------- PDEBench


# ---------------------------------------------------------------- xarray
def import_xarray(
    dataset,
    path: str | os.PathLike,
    *,
    periodic: bool,
    fields: Sequence[str] | None = None,
    params: Sequence[str] | Mapping[str, object] | None = None,
    sim_dim: str = "sim",
    time_dim: str = "time",
    vector_dim: str = "vector",
    dt: float | None = None,
    domain_size: float | Sequence[float] | None = None,
    pde: str | None = None,
    attrs: Mapping[str, object] | None = None,
    overwrite: bool = False,
    spacing_tol: float = DEFAULT_SPACING_TOL,
) -> Path:
    """Write an ``xarray.Dataset`` (or ``DataArray``, or a netCDF file it opens) to ``path``.

    Fields are the variables with ``time_dim``, each with dims ``sim_dim``, ``time_dim``, the
    spatial dims (in the order of the first field: x, then y, ...; their names are free and kept
    for :func:`to_xarray`) and, for a vector field, ``vector_dim`` (one component per axis).
    Dims may come in any order. The spatial coordinates (or ``domain_size``) give the grid, the
    time coordinate (or ``dt``) the frame spacing, both checked as described in the module.
    Variables without ``time_dim`` are true parameters: dims ``()`` or ``(sim,)`` scalar,
    ``(sim, *space)`` field, ``(sim, vector)`` vector.

    Args:
        dataset: an ``xarray.Dataset``, a ``DataArray`` (a field named after it, else ``"u"``),
            or a path opened with ``xarray.open_dataset`` (netCDF via ``h5netcdf``).
        path: the hybridkit dataset to write.
        periodic: whether the domain is periodic (stated, never guessed).
        fields: variable names to import as fields (default: every variable with ``time_dim``).
        params: variable names to import as parameters (default: every variable without
            ``time_dim``), or a mapping ``name -> value`` as in :func:`import_arrays`.
        sim_dim, time_dim, vector_dim: the names of those dims.
        dt, domain_size: where the dataset has no time / spatial coordinates (with them: must
            agree, and are used exactly).
        pde, attrs, overwrite, spacing_tol: as in :func:`import_arrays`.

    Raises:
        ImportError: xarray is not installed (``pip install 'hybridkit[io]'``).
        ValueError, KeyError: missing dims or variables, shapes or coordinates (with the fix).
    """
    xr = _xarray()
    check_periodic(periodic)
    if isinstance(dataset, (str, os.PathLike)):
        with xr.open_dataset(dataset) as opened:
            return import_xarray(opened, path, periodic=periodic, fields=fields, params=params, sim_dim=sim_dim,
                                 time_dim=time_dim, vector_dim=vector_dim, dt=dt, domain_size=domain_size,
                                 pde=pde, attrs=attrs, overwrite=overwrite, spacing_tol=spacing_tol)
    if isinstance(dataset, xr.DataArray):
        dataset = dataset.to_dataset(name=dataset.name or "u")
    if not isinstance(dataset, xr.Dataset):
        raise TypeError(f"Expected an xarray Dataset or DataArray, got {type(dataset).__name__}.")
    names = list(dataset.data_vars)
    fields = [n for n in names if time_dim in dataset[n].dims] if fields is None else list(fields)
    missing = [n for n in fields if n not in dataset.data_vars]
    if missing or not fields:
        raise KeyError(f"Expected field variables with a {time_dim!r} dim; missing {missing or 'all'}, the "
                       f"dataset has {names} with dims {dict(dataset.sizes)}. Fix: name them in fields=[...] "
                       "or pass time_dim=.")
    first = dataset[fields[0]]
    for dim in (sim_dim, time_dim):
        if dim not in first.dims:
            hint = f"ds.expand_dims({sim_dim!r})" if dim == sim_dim else f"time_dim='<name>'"
            raise ValueError(f"Expected a {dim!r} dim on {fields[0]!r}, got dims {first.dims}. Fix: "
                             f"{hint} (one simulation: add the dim of size 1).")
    space_dims = [d for d in first.dims if d not in (sim_dim, time_dim, vector_dim)]
    ndim = len(space_dims)
    vector_fields, sources = [], {}
    for name in fields:
        var = dataset[name]
        vec = vector_dim in var.dims
        want = [sim_dim, time_dim, *space_dims] + ([vector_dim] if vec else [])
        if set(var.dims) != set(want):
            raise ValueError(f"Expected field {name!r} with dims {tuple(want)} (any order), got {var.dims}. "
                             "Fix: give every field the same dims (rename them with ds.rename).")
        if vec:
            vector_fields.append(name)
        values = var.transpose(*want)
        sources[name] = FieldSource(tuple(values.shape), lambda a, b, v=values: v[a:b].values, f"variable {name!r}")
    check_shapes(sources, ndim, vector_fields)
    coords = [dataset[d].values if d in dataset.coords else None for d in space_dims]
    grid, origin = cell_grid(space_shape(sources, vector_fields), coords, domain_size, periodic, spacing_tol,
                         tuple(space_dims))
    t = dataset[time_dim].values if time_dim in dataset.coords else None
    dt, t0 = frame_spacing(num_frames_of(sources), dt, t, spacing_tol, f"coordinate {time_dim!r}", allow_both=True)
    param_values = _xarray_params(dataset, params, fields, sim_dim, time_dim, vector_dim, space_dims)
    info = {"from": "xarray", "source": dataset.encoding.get("source"), "origin": origin,
            "time_origin": t0, "dims": {"sim": sim_dim, "time": time_dim, "vector": vector_dim,
                                        "space": space_dims},
            "source_attrs": jsonable_attrs(dataset.attrs)}
    return write_imported(path, sources, grid=grid, dt=dt, vector_fields=tuple(vector_fields), pde=pde,
                  params=param_values, info=info, attrs=attrs, overwrite=overwrite)


def _xarray_params(dataset, params, fields, sim_dim, time_dim, vector_dim, space_dims) -> dict:
    if isinstance(params, Mapping):
        return dict(params)
    names = [n for n in dataset.data_vars if n not in fields and time_dim not in dataset[n].dims] \
        if params is None else list(params)
    out = {}
    for name in names:
        if name not in dataset.data_vars:
            raise KeyError(f"Expected parameter variable {name!r}; the dataset has {list(dataset.data_vars)}.")
        var = dataset[name]
        order = [d for d in (sim_dim, *space_dims, vector_dim) if d in var.dims]
        if set(var.dims) != set(order) or (var.dims and sim_dim not in var.dims):
            raise ValueError(f"Expected parameter {name!r} with dims (), ({sim_dim},), ({sim_dim}, *space) or "
                             f"({sim_dim}, {vector_dim}), got {var.dims}.")
        out[name] = var.transpose(*order).values
    return out


def to_xarray(source: DataManager | str | os.PathLike, *, sims: Sequence[int] | None = None):
    """A dataset file as an ``xarray.Dataset``, for analysis (loads the selected simulations).

    Dims ``sim, time, *space[, vector]`` with coordinates: ``sim`` the dataset's simulation
    indices, ``time = t0 + k * dt``, cell centres ``origin + (i + 0.5) * dx`` (for an imported
    file the original coordinates and dim names; else ``x, y`` on ``[0, L)``). Parameters become
    variables ``(sim,)``, ``(sim, *space)`` or ``(sim, vector)``; a field stored with one frame
    (static) has no time dim. Root metadata are in ``.attrs`` (``source_config`` as JSON).

    Args:
        source: a :class:`DataManager` or the path of a dataset file.
        sims: simulation indices (default: all).

    Raises:
        ImportError: xarray is not installed (``pip install 'hybridkit[io]'``).
    """
    xr = _xarray()
    dm = source if isinstance(source, DataManager) else DataManager(source)
    try:
        meta = dm.metadata
        info = (meta.get("source_config") or {}).get("import") or {}
        dims = info.get("dims") or {}
        sim_dim, time_dim, vec_dim = dims.get("sim", "sim"), dims.get("time", "time"), dims.get("vector", "vector")
        space = list(dims.get("space") or dm.grid.axes)
        origin = info.get("origin") or [0.0] * dm.grid.ndim
        idx = list(range(dm.num_sims)) if sims is None else [int(s) for s in np.atleast_1d(sims)]
        if not idx:
            raise ValueError("Expected at least one simulation index in sims, got none.")
        coords = {sim_dim: idx, time_dim: float(info.get("time_origin") or 0.0) + np.arange(dm.num_frames) * dm.dt}
        for d, o, n, dx in zip(space, origin, dm.grid.resolution, dm.grid.dx):
            coords[d] = float(o) + (np.arange(n) + 0.5) * dx
        if dm.vector_fields or "vector" in dm.param_kinds.values():
            coords[vec_dim] = list(dm.grid.axes)
        data = {}
        for name in dm.field_names:
            arr = np.stack([dm.load(s, name) for s in idx])
            static = dm.field_frames(name) == 1 and dm.num_frames > 1
            arr = arr[:, 0] if static else arr
            data[name] = ([sim_dim] + ([] if static else [time_dim]) + space
                          + ([vec_dim] if name in dm.vector_fields else []), arr)
        for name, kind in dm.param_kinds.items():
            extra = {"scalar": [], "field": space, "vector": [vec_dim]}[kind]
            data[name] = ([sim_dim] + extra, dm.params(name, sims=idx))
        attrs = {k: meta[k] for k in ("pde", "dt", "boundary", "num_frames", "hybridkit_version")}
        attrs.update(domain_size=list(meta["domain_size"]), source=str(dm.path),
                     source_config=json.dumps(meta.get("source_config") or {}))
        return xr.Dataset(data, coords=coords, attrs=attrs)
    finally:
        if dm is not source:
            dm.close()


def _xarray():
    try:
        import xarray
    except ImportError as e:
        raise ImportError("This needs xarray: pip install 'hybridkit[io]' (or pip install xarray).") from e
    return xarray


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

    return _write_atomically(path, meta, fill, overwrite)


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


