"""PDEBench's HDF5 files as hybridkit datasets (both layouts its generators write)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import h5py
import numpy as np

from .._checks import check_count, check_real
from ._coordinates import AXES, DEFAULT_SPACING_TOL, cell_grid, frame_spacing
from ._format import DatasetFormatError
from ._generate import _check_target
from ._import import (FieldSource, check_periodic, check_shapes, check_vector_names, jsonable_attrs,
                      num_frames_of, space_shape, write_imported)

__all__ = ["import_pdebench"]


def import_pdebench(
    source: str | os.PathLike,
    path: str | os.PathLike,
    *,
    periodic: bool,
    fields: Mapping[str, str | int | Sequence[str] | Sequence[int]] | None = None,
    vector_fields: Sequence[str] = (),
    sims: int | slice | range | None = None,
    frame_stride: int = 1,
    dt: float | None = None,
    domain_size: float | Sequence[float] | None = None,
    pde: str | None = None,
    params: Mapping[str, object] | None = None,
    attrs: Mapping[str, object] | None = None,
    overwrite: bool = False,
    spacing_tol: float = DEFAULT_SPACING_TOL,
) -> Path:
    """Convert a PDEBench HDF5 file to a hybridkit dataset at ``path`` (streamed, sims in batches).

    Two layouts, as PDEBench's generators write them:

    * **one array per quantity** (1D advection / Burgers / reaction-diffusion, the CFD sets):
      ``tensor`` ``(N, T, X[, Y[, Z]])`` (or ``density``, ``pressure``, ``Vx``, ... of that shape),
      ``x-coordinate`` ``(X,)`` (cell centres), ``y-coordinate``, ``z-coordinate``, and
      ``t-coordinate`` ``(T + 1,)`` (PDEBench stores one time past the last frame; it is dropped)
      or ``(T,)``. ``fields`` maps a hybridkit name to a dataset name, or to a tuple of dataset
      names stacked as the components of a vector field (``{"velocity": ("Vx", "Vy")}``).
      A dataset that already holds the components on a last axis (``velocity`` ``(N, T, X, Y, 2)``
      of the incompressible Navier-Stokes set) is named in ``vector_fields``. Default:
      ``{"u": "tensor"}``, else every ``(N, T, *space)`` dataset under its own name.
    * **one group per simulation** (2D diffusion-reaction, shallow water, 1D diffusion-sorption):
      ``0000/data`` ``(T, *space, C)``, ``0000/grid/x`` (``y``), ``0000/grid/t`` ``(T,)``.
      ``fields`` maps a name to a channel index, or a tuple of indices (vector field). Default:
      ``{"u": 0}`` for one channel, ``{"u0": 0, "u1": 1, ...}`` otherwise.

    PDEBench's root attributes (Burgers ``Nu``, advection ``beta``, reaction-diffusion ``Nu`` /
    ``rho``, CFD ``eta`` / ``zeta`` / ``M``) and the first group's attributes are kept in
    ``source_config["import"]["source_attrs"]``; they become ``params`` only if you pass them,
    because their convention may differ from hybridkit's model: PDEBench's Burgers is
    ``u_t + (u^2/2)_x = (Nu / pi) u_xx``, so ``Burgers``' viscosity is ``Nu / pi``::

        nu = h5py.File(src).attrs["Nu"] / np.pi
        import_pdebench(src, "burgers.h5", periodic=True, fields={"velocity": "tensor"},
                        pde="Burgers", params={"viscosity": nu}, sims=100)

    Args:
        source: the PDEBench ``.h5`` / ``.hdf5`` file.
        path: the hybridkit dataset to write.
        periodic: whether the domain is periodic (stated; PDEBench's 1D sets are periodic).
        fields, vector_fields: see above.
        sims: the first ``n`` simulations (an int), or a ``slice`` / ``range`` of them (step > 0).
        frame_stride: keep every ``k``-th frame (``dt`` becomes ``k * dt``).
        dt: time between stored frames where the file has no time coordinate (also allowed with
            one: it must agree and is used exactly).
        domain_size: where the file has no coordinates, one length per spatial axis (which also
            says how many axes there are: ``(1.0, 1.0)`` for 2D); with coordinates as in
            :func:`import_arrays`.
        pde, params, attrs, overwrite, spacing_tol: as in :func:`import_arrays`.

    Raises:
        DatasetFormatError: ``source`` is not a PDEBench layout (the message lists what it holds).
        ValueError, KeyError: bad selections, shapes or coordinates (with the fix).
    """
    check_periodic(periodic)
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"Expected a PDEBench HDF5 file, found nothing at {source}.")
    stride = check_count(frame_stride, "frame_stride", minimum=1)
    _check_target(path, overwrite)  # fail before reading a large file
    with h5py.File(source, "r") as f:
        grouped = _is_grouped(f)
        reader = _pdebench_grouped if grouped else _pdebench_flat
        sources, vector_fields, coords, t = reader(f, source, fields, sims, stride, vector_fields)
        if coords:
            ndim = len(coords)
        elif domain_size is not None:
            ndim, coords = len(np.atleast_1d(domain_size)), [None] * len(np.atleast_1d(domain_size))
        else:
            raise ValueError(f"{source} has no x-coordinate; expected domain_size=(L, ...). "
                             "Fix: pass the domain length per axis.")
        check_shapes(sources, ndim, vector_fields)
        space = space_shape(sources, vector_fields)
        grid, origin = cell_grid(space, coords, domain_size, periodic, spacing_tol, AXES[:ndim])
        frames = num_frames_of(sources)
        dt_frames = None if dt is None else check_real(dt, "dt", minimum=0, strict_minimum=True) * stride
        dt, t0 = frame_spacing(frames, dt_frames, t, spacing_tol, "t-coordinate", allow_both=True)
        src_attrs = jsonable_attrs(f.attrs)
        if grouped:
            src_attrs["first_group"] = jsonable_attrs(f[_group_names(f)[0]].attrs)
        info = {"from": "pdebench", "source": str(source), "layout": "groups" if grouped else "arrays",
                "origin": origin, "time_origin": t0, "frame_stride": stride, "source_attrs": src_attrs}
        return write_imported(path, sources, grid=grid, dt=dt, vector_fields=vector_fields, pde=pde,
                      params=params, info=info, attrs=attrs, overwrite=overwrite)


def _is_grouped(f: h5py.File) -> bool:
    if any(isinstance(f.get(k), h5py.Dataset) and f[k].ndim >= 3 for k in f):
        return False
    if _group_names(f):
        return True
    raise _not_pdebench(f)


def _group_names(f: h5py.File) -> list[str]:
    return sorted(k for k in f if isinstance(f.get(k), h5py.Group) and isinstance(f[k].get("data"), h5py.Dataset))


def _not_pdebench(f: h5py.File) -> DatasetFormatError:
    return DatasetFormatError(
        f"Expected a PDEBench layout in {f.filename}: a dataset 'tensor' (N, T, X[, Y]) with "
        "'x-coordinate' and 't-coordinate', or one group per simulation ('0000/data' (T, *space, C), "
        f"'0000/grid/x', '0000/grid/t'); found {sorted(f)[:12]}. Fix: for other layouts read the "
        "arrays yourself and use import_arrays."
    )


def _pdebench_flat(f, source, fields, sims, stride, stacked):
    if fields is None:
        if "tensor" in f:
            fields = {"u": "tensor"}
        else:
            fields = {k: k for k in sorted(f) if isinstance(f.get(k), h5py.Dataset) and f[k].ndim >= 3}
    if not isinstance(fields, Mapping) or not fields:
        raise ValueError(f"Expected fields as a dict name -> dataset name(s), got {fields!r}.")
    stacked = check_vector_names(stacked, fields)
    coords = [f[f"{a}-coordinate"][()] if f"{a}-coordinate" in f else None for a in AXES]
    while coords and coords[-1] is None:
        coords.pop()
    sources, vector_fields = {}, []
    for name, spec in fields.items():
        parts = [spec] if isinstance(spec, str) else list(spec)
        missing = [p for p in parts if not isinstance(f.get(p), h5py.Dataset)]
        if missing:
            datasets = sorted(k for k in f if isinstance(f.get(k), h5py.Dataset))
            raise KeyError(f"Field {name!r}: {source} has no dataset {missing[0]!r}; it holds {datasets}. "
                           "Fix: name one of them in fields={...}.")
        dsets = [f[p] for p in parts]
        shapes = {d.shape for d in dsets}
        if len(shapes) != 1:
            raise ValueError(f"Expected the components {parts} of {name!r} to have one shape, got "
                             f"{[d.shape for d in dsets]}.")
        shape = dsets[0].shape
        if len(shape) < 3:
            raise ValueError(f"Expected {parts[0]!r} in {source} of shape (N, T, *space), got {shape}. "
                             "Fix: PDEBench's steady sets (e.g. Darcy flow) have no time axis to import.")
        sel = _selection(sims, shape[0], source)
        stack = not isinstance(spec, str)  # components in separate datasets (Vx, Vy)
        if stack or name in stacked:
            vector_fields.append(name)
        n_sel, n_frames = len(range(*sel.indices(shape[0]))), len(range(0, shape[1], stride))
        out_shape = (n_sel, n_frames) + shape[2:] + ((len(dsets),) if stack else ())

        def read(a, b, dsets=dsets, sel=sel, stack=stack):
            rows = slice(sel.start + a * sel.step, sel.start + b * sel.step, sel.step)
            parts_ = [d[rows, ::stride] for d in dsets]
            return np.stack(parts_, axis=-1) if stack else parts_[0]

        sources[name] = FieldSource(out_shape, read, f"{parts[0]!r} in {source}")
    raw_frames = f[_first_part(next(iter(fields.values())))].shape[1]
    t = _frame_times(f["t-coordinate"][()], raw_frames, stride, source) if "t-coordinate" in f else None
    return sources, tuple(vector_fields), coords, t


def _first_part(spec) -> str:
    return spec if isinstance(spec, str) else list(spec)[0]


def _pdebench_grouped(f, source, fields, sims, stride, stacked):
    names = _group_names(f)
    sel = _selection(sims, len(names), source)
    names = names[sel]
    first = f[names[0]]
    data_shape = first["data"].shape
    n_ch = data_shape[-1]
    if fields is None:
        fields = {"u": 0} if n_ch == 1 else {f"u{i}": i for i in range(n_ch)}
    stacked = check_vector_names(stacked, fields)
    grid_keys = [a for a in AXES if f"{names[0]}/grid/{a}" in f]
    coords = [first[f"grid/{a}"][()] for a in grid_keys]
    for g in names[1:]:  # every simulation must share the grid
        if f[g]["data"].shape != data_shape or any(
                not np.array_equal(f[g][f"grid/{a}"][()], c) for a, c in zip(grid_keys, coords)):
            raise ValueError(f"Expected every group of {source} on the grid of {names[0]!r} with data "
                             f"{data_shape}; group {g!r} differs. Fix: import the groups separately (sims=).")
    sources, vector_fields = {}, []
    for name, spec in fields.items():
        chans = [spec] if isinstance(spec, (int, np.integer)) else list(spec)
        bad = [c for c in chans if not (isinstance(c, (int, np.integer)) and 0 <= c < n_ch)]
        if bad:
            raise KeyError(f"Field {name!r}: expected channel indices in 0..{n_ch - 1} of '{names[0]}/data' "
                           f"{data_shape} (T, *space, C), got {spec!r}.")
        vec = not isinstance(spec, (int, np.integer))
        if vec or name in stacked:
            if not vec:
                raise ValueError(f"Field {name!r}: in the one-group-per-simulation layout a vector field is a "
                                 "tuple of channel indices, e.g. fields={'velocity': (0, 1)}; drop it from "
                                 "vector_fields.")
            vector_fields.append(name)
        n_frames = len(range(0, data_shape[0], stride))
        out_shape = (len(names), n_frames) + data_shape[1:-1] + ((len(chans),) if vec else ())

        def read(a, b, chans=chans, vec=vec):
            out = np.stack([f[g]["data"][::stride] for g in names[a:b]])  # (b - a, T, *space, C)
            return out[..., chans] if vec else out[..., chans[0]]

        sources[name] = FieldSource(out_shape, read, f"'{names[0]}/data' in {source}")
    t = _frame_times(first["grid/t"][()], data_shape[0], stride, source) if "grid/t" in first else None
    return sources, tuple(vector_fields), coords, t


def _selection(sims, n: int, source) -> slice:
    """``sims`` as a slice with explicit start / step over ``n`` simulations."""
    if sims is None:
        return slice(0, n, 1)
    if isinstance(sims, range):
        sims = slice(sims.start, sims.stop, sims.step)
    if isinstance(sims, slice):
        start, stop, step = sims.indices(n)
        if step < 1 or stop <= start:
            raise ValueError(f"Expected a non-empty slice of the {n} simulations in {source} with step >= 1, "
                             f"got {sims}.")
        return slice(start, stop, step)
    count = check_count(sims, "sims", minimum=1, maximum=n,
                        fix=f"{source} holds {n} simulations; pass at most {n}, or a slice / range.")
    return slice(0, count, 1)



def _frame_times(t, n_frames: int, stride: int, source) -> np.ndarray:
    """The time of each stored frame: PDEBench's 1D generators write ``T + 1`` times for ``T``
    frames (``arange(T + 1) * dt_save``; the last is past the final frame), others ``T``."""
    t = np.asarray(t)
    if t.ndim != 1 or len(t) not in (n_frames, n_frames + 1):
        raise ValueError(f"Expected a 1D time coordinate with {n_frames} (or {n_frames + 1}) values for the "
                         f"{n_frames} frames in {source}, got shape {t.shape}. Fix: pass dt= and check the file.")
    return t[:n_frames][::stride]
