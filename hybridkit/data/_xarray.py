"""xarray in and out: a ``Dataset`` (or netCDF file) imported into the dataset format, and a
dataset back out as an ``xarray.Dataset`` for analysis (``pip install 'hybridkit[io]'``).

The grid, ``dt`` and periodicity follow the rules of :mod:`._import` (coordinates checked for
uniform spacing, each sample a cell centre, periodicity stated by the caller).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ._coordinates import DEFAULT_SPACING_TOL, cell_grid, frame_spacing
from ._import import (FieldSource, check_periodic, check_shapes, jsonable_attrs, num_frames_of,
                      space_shape, write_imported)
from ._manager import DataManager

__all__ = ["import_xarray", "to_xarray"]


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
            hint = f"ds.expand_dims({sim_dim!r})" if dim == sim_dim else "time_dim='<name>'"
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
