"""Simulate a dataset with a physical model and write it to one HDF5 file, atomically."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Mapping

import h5py
import numpy as np
from tqdm.auto import tqdm

from .._io import atomic_write
from ..convert import to_field, to_tensor
from ..physics import AbstractPDE, StabilityError
from ._format import FORMAT, FORMAT_VERSION, encode_attrs
from ._space import check_space, estimate_bytes, reserve

ParamSource = Mapping[str, object] | Callable[[np.random.Generator, int], Mapping[str, object]]


def generate_dataset(
    model: AbstractPDE,
    path: str | os.PathLike,
    *,
    num_sims: int,
    num_frames: int,
    seed: int = 0,
    params: ParamSource | None = None,
    batch_size: int = 64,
    overwrite: bool = False,
    progress: bool = True,
    attrs: Mapping[str, object] | None = None,
) -> Path:
    """Simulate ``num_sims`` trajectories of ``num_frames`` frames and write them to ``path``.

    Initial states are ``model.random_state(num_sims, seed=np.random.default_rng(seed))``; a
    callable ``params`` draws from its own generator ``np.random.default_rng([seed, 1])``, so
    adding parameter sampling does not change the initial states. Simulations are rolled out
    ``batch_size`` at a time (the parameters with a batch dim ``batch``: one value per simulation).

    Args:
        model: the physical model (its grid, ``dt`` and coefficients define the data).
        path: the ``.h5`` file to write.
        num_sims: number of simulations (>= 1).
        num_frames: frames per simulation, the initial state included (>= 1).
        seed: integer seed; same model config + seed + params -> byte-identical file.
        params: per-simulation parameters, either a dict ``name -> array`` of shape
            ``(num_sims, *param_shape)`` (or ``param_shape``, shared by all), or a callable
            ``(rng, num_sims) -> dict`` of the same. Missing names: the model's own values.
        batch_size: simulations per rollout (memory vs speed).
        overwrite: replace an existing file (otherwise an existing ``path`` is an error).
        progress: show a progress bar over batches.
        attrs: extra JSON-serialisable metadata, stored as the root attribute ``source_config``
            (e.g. the config that produced the file, to decide later whether it is stale).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False (also when another process
            creates it while this one writes). IsADirectoryError: ``path`` is a directory.
        DiskFullError: not enough disk space (or ``ulimit -f``) for the file, found before the
            simulation starts or when reserving the space; nothing is left behind.
        StabilityError: ``dt`` is beyond the model's stability limit for some initial state /
            parameter (checked before anything is written), or a rollout produced NaN / inf.
        ValueError, KeyError: bad sizes or parameters.

    The write is atomic: data go to a temporary file in the same directory that is fsynced and
    then renamed onto ``path``; a failure leaves ``path`` untouched and removes the temporary file.
    """
    if not isinstance(model, AbstractPDE):
        raise TypeError(f"Expected a hybridkit.physics model (AbstractPDE), got {type(model).__name__}.")
    _check_counts(num_sims=num_sims, num_frames=num_frames, batch_size=batch_size, seed=seed)
    num_sims, num_frames, batch_size, seed = int(num_sims), int(num_frames), int(batch_size), int(seed)
    path = _check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)

    per_sim = resolve_params(model, params, num_sims, np.random.default_rng([seed, 1]))
    meta = _metadata(model, num_sims, num_frames, seed, attrs)
    nbytes = _file_bytes(model, num_sims, num_frames, meta)
    check_space(path, nbytes)  # before minutes of simulation, not after
    init = model.random_state(num_sims, seed=np.random.default_rng(seed))
    # Checked for all simulations before the first byte is written.
    model.check_stability({k: init[k].values for k in model.field_names}, model.prepare_params(per_sim))
    init_np = {k: to_tensor(init[k], ["batch"]).detach().cpu().numpy() for k in model.field_names}

    def fill(f: h5py.File) -> None:
        _write_params(f, model.grid, model.param_specs, per_sim)
        dsets = _create_field_datasets(f, model.grid, model.field_names, model.vector_fields,
                                       num_sims, num_frames)
        starts = range(0, num_sims, batch_size)
        for a in tqdm(starts, desc=f"simulating {type(model).__name__}", disable=not progress,
                      leave=False):
            b = min(a + batch_size, num_sims)
            for name, arr in _simulate(model, init_np, per_sim, a, b, num_frames).items():
                dsets[name][a:b] = arr

    return _write_atomically(path, meta, fill, overwrite, nbytes)


_SEED_MAX = 2**63 - 1  # stored as an int64 attribute


def _check_counts(**values) -> None:
    """Integers (not bools, not 3.0) >= 1, the seed >= 0 and storable as int64."""
    for name, value in values.items():
        low = 0 if name == "seed" else 1
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low \
                or (name == "seed" and value > _SEED_MAX):
            upper = f" and <= 2**63 - 1 (stored as int64)" if name == "seed" else ""
            raise ValueError(f"Expected an integer {name} >= {low}{upper}, got {name}={value!r}. "
                             f"Fix: e.g. {name}={low if name == 'seed' else 4}.")


def _check_target(path, overwrite: bool) -> Path:
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(
            f"Expected a file path for the dataset, got the directory {path}. Fix: e.g. {path / 'data.h5'}."
        )
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Expected a new file, but {path} exists. Fix: pass overwrite=True, choose another "
            "path, or open the existing one with DataManager(path)."
        )
    return path


def write_trajectories(
    model: AbstractPDE,
    path: str | os.PathLike,
    fields: Mapping[str, np.ndarray],
    *,
    params: ParamSource | None = None,
    seed: int = 0,
    attrs: Mapping[str, object] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write trajectories computed elsewhere (a network's rollouts, noisy observations) to ``path``
    in the dataset format, atomically, described by ``model`` (grid, ``dt``, field layout).

    Args:
        model: the physical model whose grid and fields the trajectories share.
        path: the ``.h5`` file to write.
        fields: ``name -> (sims, time, *space[, vector])`` for every field of ``model``.
        params: parameters to record per simulation (as in :func:`generate_dataset`).
        seed: recorded in the file (the seed that produced the trajectories).
        attrs: JSON-serialisable description, stored as ``source_config`` (e.g. which network and
            which cycle produced the data).
        overwrite: replace an existing file.

    Raises:
        ValueError: missing fields, shapes that disagree with the model's grid, non-finite or
            non-numeric values. DiskFullError: not enough room for the file (nothing is written).
    """
    if not isinstance(model, AbstractPDE):
        raise TypeError(f"Expected a hybridkit.physics model (AbstractPDE), got {type(model).__name__}.")
    _check_counts(seed=seed)
    path = _check_target(path, overwrite)
    if not isinstance(fields, Mapping):
        raise TypeError(f"Expected fields as a dict name -> array, got {type(fields).__name__}. "
                        f"Fix: e.g. {{{model.field_names[0]!r}: values}}.")
    missing = [k for k in model.field_names if k not in fields]
    if missing:
        raise ValueError(f"Expected trajectories for every field {list(model.field_names)}, missing {missing}.")
    arrays = {}
    for k in model.field_names:
        given = fields[k].detach().cpu().numpy() if hasattr(fields[k], "detach") else np.asarray(fields[k])
        if given.dtype.kind not in "fiu":  # bool, complex, strings, objects: no trajectory values
            raise ValueError(f"Expected real numbers in {k!r}, got dtype {given.dtype}. "
                             "Fix: pass float arrays (they are stored as float32).")
        with np.errstate(over="ignore"):  # beyond float32 becomes inf, refused just below
            arrays[k] = np.ascontiguousarray(given, dtype=np.float32)
    first = arrays[model.field_names[0]]
    num_sims, num_frames = (first.shape + (0, 0))[:2]
    for name, arr in arrays.items():
        trailing = tuple(model.grid.resolution) + ((model.grid.ndim,) if name in model.vector_fields else ())
        if arr.ndim != 2 + len(trailing) or arr.shape[2:] != trailing or arr.shape[:2] != (num_sims, num_frames):
            raise ValueError(
                f"Expected {name!r} of shape ({num_sims}, {num_frames}, {', '.join(map(str, trailing))}) "
                f"(sims, time, *space[, vector]), got {arr.shape}."
            )
        if not np.isfinite(arr).all():
            bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)).tolist() if arr.size else []
            raise ValueError(f"Expected finite values in {name!r}, got NaN or inf (or values beyond float32) in "
                             f"simulation(s) {bad[:8]}. Fix: drop those simulations or repair them before writing.")
    if num_sims < 1 or num_frames < 1:
        raise ValueError(f"Expected at least one simulation and one frame, got shape {first.shape}.")
    per_sim = resolve_params(model, params, num_sims, np.random.default_rng([seed, 1]))
    meta = _metadata(model, num_sims, num_frames, seed, attrs)
    nbytes = _file_bytes(model, num_sims, num_frames, meta)
    check_space(path, nbytes)
    path.parent.mkdir(parents=True, exist_ok=True)

    def fill(f: h5py.File) -> None:
        _write_params(f, model.grid, model.param_specs, per_sim)
        dsets = _create_field_datasets(f, model.grid, model.field_names, model.vector_fields,
                                       num_sims, num_frames)
        for name, ds in dsets.items():
            ds[...] = arrays[name]

    return _write_atomically(path, meta, fill, overwrite, nbytes)


def _file_bytes(model, num_sims: int, num_frames: int, meta: dict) -> int:
    """Upper bound of the size of the file :func:`_write_atomically` writes (hybridkit.data._space)."""
    grid, arrays = model.grid, []
    for name in model.field_names:
        trailing = tuple(grid.resolution) + ((grid.ndim,) if name in model.vector_fields else ())
        arrays.append(((num_sims, num_frames) + trailing, (1, chunk_frames(num_frames)) + trailing))
    for spec in model.param_specs:
        arrays.append(((num_sims,) + tuple(spec.shape(grid)), None))
    return estimate_bytes(arrays, len(json.dumps(meta, default=str)))


def _write_atomically(path: Path, meta: dict, fill, overwrite: bool, nbytes: int) -> Path:
    """Write attributes ``meta`` and whatever ``fill(h5file)`` writes, atomically
    (:func:`hybridkit._io.atomic_write`), into ``nbytes`` reserved beforehand
    (:func:`hybridkit.data._space.reserve`: HDF5 must never meet a full disk).

    Each writer has its own temporary name, so two processes writing the same ``path`` never
    write into one file: with ``overwrite`` the last rename wins (both files are complete);
    without it the file is linked into place only if ``path`` does not exist yet, so exactly one
    writer succeeds and the other gets ``FileExistsError``.
    """
    def write(tmp: Path) -> None:
        reserve(tmp, nbytes, path)  # the space is there, or a clean error before HDF5 writes a byte
        with h5py.File(tmp, "w"):  # an empty HDF5 file (creating it truncates the reservation)
            pass
        reserve(tmp, nbytes, path)  # now for the writes; HDF5 truncates the file to its size on closing
        with h5py.File(tmp, "r+") as f:
            f.attrs.update(encode_attrs(meta))
            fill(f)

    return atomic_write(path, write, overwrite=overwrite)


def resolve_params(model: AbstractPDE, params: ParamSource | None, num_sims: int,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Every parameter of ``model`` as float32 ``(num_sims, *param_shape)``: the values used.

    Raises:
        KeyError: a name the model does not have.
        ValueError: an array of the wrong shape, or non-finite values.
    """
    if callable(params):
        params = params(rng, num_sims)
    params = dict(params or {})
    unknown = sorted(set(params) - set(model.param_names))
    if unknown:
        raise KeyError(
            f"Unknown parameter(s) {unknown} for {type(model).__name__}; expected some of "
            f"{list(model.param_names)}."
        )
    out = {}
    for spec in model.param_specs:
        shape = spec.shape(model.grid)
        if spec.name in params:
            value = params[spec.name]
            value = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        else:
            value = to_tensor(model.true_params[spec.name]).detach().cpu().numpy()
            if value.ndim == len(shape) + 1 and value.shape[0] == 1:
                value = value[0]
        value = np.asarray(value, dtype=np.float32)
        if value.shape == shape:
            value = np.broadcast_to(value, (num_sims,) + shape)
        if value.shape != (num_sims,) + shape:
            raise ValueError(
                f"Expected parameter {spec.name!r} ({spec.kind}) of shape {(num_sims,) + shape} "
                f"(one per simulation) or {shape} (shared), got {value.shape}. Fix: give one "
                "value per simulation along the first axis."
            )
        spec.check_values(value, "(per simulation)")  # finite, and >= 0 where negative is ill-posed
        out[spec.name] = np.ascontiguousarray(value)
    return out


def _simulate(model, init_np, per_sim, a, b, num_frames) -> dict[str, np.ndarray]:
    """Roll out simulations ``a:b``; returns ``name -> float32 (b - a, time, *space[, vector])``."""
    state = {k: to_field(v[a:b], model.grid, vector=k in model.vector_fields, batch_names=("batch",))
             for k, v in init_np.items()}
    traj = model.rollout(state, num_frames - 1, {k: v[a:b] for k, v in per_sim.items()}, check=False)
    out = {}
    for name in model.field_names:
        arr = to_tensor(traj[name], ["batch", "time"]).detach().cpu().numpy().astype(np.float32, copy=False)
        bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
        if bad.any():
            raise StabilityError(
                f"{type(model).__name__}: simulation(s) {(np.flatnonzero(bad) + a).tolist()} produced "
                f"NaN/inf in {name!r}. Fix: reduce dt, increase substeps, or narrow the parameters."
            )
        out[name] = arr
    return out


def _metadata(model, num_sims, num_frames, seed, attrs) -> dict:
    return layout_metadata(
        grid=model.grid, dt=model.dt, pde=type(model).__name__, model_config=model.config(),
        field_names=model.field_names, vector_fields=model.vector_fields,
        param_specs=model.param_specs, num_sims=num_sims, num_frames=num_frames, seed=seed,
        attrs=attrs)


def layout_metadata(*, grid, dt: float, pde: str, model_config: Mapping, field_names, vector_fields,
                    param_specs, num_sims: int, num_frames: int, seed: int, attrs) -> dict:
    """The root attributes of a dataset file, from its layout rather than from a model: what
    :func:`generate_dataset` writes, and what the importers (:mod:`._import`) write for data that
    no hybridkit model produced (``pde`` a free name, ``model_config`` possibly ``{}``)."""
    from .. import __version__

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "hybridkit_version": __version__,
        "pde": str(pde),
        "model_config": json.loads(json.dumps(dict(model_config))),
        "dt": float(dt),
        "resolution": list(grid.resolution),
        "domain_size": list(grid.domain_size),
        "boundary": grid.boundary,
        "seed": int(seed),
        "field_names": list(field_names),
        "vector_fields": list(vector_fields),
        "param_names": [p.name for p in param_specs],
        "param_kinds": [p.kind for p in param_specs],
        "num_sims": int(num_sims),
        "num_frames": int(num_frames),
        # round-trip through JSON now so that a non-serialisable value fails before writing
        "source_config": json.loads(json.dumps(dict(attrs or {}))),
    }


def _create_field_datasets(f: h5py.File, grid, field_names, vector_fields, num_sims: int,
                           num_frames: int) -> dict:
    group = f.create_group("fields")
    out = {}
    for name in field_names:
        vec = name in vector_fields
        trailing = tuple(grid.resolution) + ((grid.ndim,) if vec else ())
        ds = group.create_dataset(
            name, shape=(num_sims, num_frames) + trailing, dtype=np.float32,
            chunks=(1, chunk_frames(num_frames)) + trailing, track_times=False,
            fletcher32=True,  # a checksum per chunk: damaged bytes fail on reading, not train silently
        )
        ds.attrs["vector"] = np.bool_(vec)
        ds.attrs["dims"] = ",".join(("sims", "time") + grid.axes + (("vector",) if vec else ()))
        out[name] = ds
    return out


def chunk_frames(num_frames: int, most: int = 16) -> int:
    """Frames per chunk: at most ``most``, split evenly so the last chunk is not mostly padding.

    One chunk holds consecutive frames of one simulation, so a training window reads one or two
    chunks. 21 frames -> chunks of 11 (22 stored, not 32 as with a fixed 16).
    """
    n_chunks = -(-num_frames // most)
    return -(-num_frames // n_chunks)


def _write_params(f: h5py.File, grid, param_specs, per_sim: dict) -> None:
    group = f.create_group("params")
    for spec in param_specs:
        ds = group.create_dataset(spec.name, data=per_sim[spec.name], dtype=np.float32, track_times=False)
        ds.attrs["kind"] = spec.kind
        ds.attrs["bounds"] = np.asarray(spec.bounds, dtype=np.float64)
        ds.attrs["doc"] = spec.doc
        extra = {"scalar": (), "field": grid.axes, "vector": ("vector",)}[spec.kind]
        ds.attrs["dims"] = ",".join(("sims",) + tuple(extra))
