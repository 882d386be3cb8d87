"""Checks of an experiment before any work: everything that can be known without simulating.

A run that would fail after minutes of simulation and training must fail at once, naming the
config key and the fix. :func:`check_experiment` builds what is cheap to build (the physical
model with its true coefficients, the learnable parameters with their bounds, the observation
mask, the network with one forward pass of a zero state on the grid, the trainers) and checks the
derived limits (rollout lengths against the frames per simulation, generated trajectories
against the windows they must hold), the size of the data against the disk and the memory, and
that the data directory and the run directory can be written.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .._config import ConfigError
from ..convert import num_channels
from ..data import coefficient, data_dir, spatial_mask
from ..models import ModelRegistry
from ..physics import learnable
from ..training import PhysicalTrainer, SyntheticTrainer
from ._config import ExperimentConfig

__all__ = ["check_experiment", "check_run_dir", "check_writable_dir", "uses"]


def uses(cfg: ExperimentConfig) -> tuple[str, ...]:
    """The modes a config runs."""
    return ("physical", "synthetic", "hybrid") if cfg.mode == "compare" else (cfg.mode,)


def check_experiment(cfg: ExperimentConfig, run_dir: str | os.PathLike | None = None) -> None:
    """Refuse ``cfg`` (and the run directory) before any work when they cannot run.

    Raises:
        ConfigError: the message names the key, the value, why, and the fix.
    """
    from ._data import build_physical_model

    modes = uses(cfg)
    try:
        model = build_physical_model(cfg)
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"data.pde / data.pde_params do not make a model: {e}") from None
    _check_frames(cfg, modes)
    _check_observation(cfg, model)
    if {"physical", "hybrid"} & set(modes):
        _check_physical(cfg, model)
    if {"synthetic", "hybrid"} & set(modes):
        _check_network(cfg, model)
    _check_size(cfg, model)
    check_writable_dir(data_dir(), "the data directory", "set HYBRIDKIT_DATA to a writable directory")
    if run_dir is not None:
        check_run_dir(Path(run_dir))


def _check_frames(cfg: ExperimentConfig, modes) -> None:
    frames, d = cfg.data.num_frames, cfg.data
    if d.observed_every is not None:
        raise ConfigError("data.observed_every is not supported by the experiment runner yet. Fix: remove "
                          "observed_every (use data.observed_region for partial observation).")
    steps = {"evaluate.steps": cfg.evaluate.steps}
    if {"synthetic", "hybrid"} & set(modes):
        steps["synthetic.trainer_params.num_predict_steps (the longest rollout of its schedule)"] = \
            cfg.synthetic.trainer_params.max_rollout_steps
    if {"physical", "hybrid"} & set(modes):
        steps["physical.trainer_params.num_predict_steps"] = cfg.physical.trainer_params.num_predict_steps
    for key, n in steps.items():
        if n > frames - 1:
            raise ConfigError(f"{key} = {n} needs {n + 1} frames per simulation, but data.num_frames = {frames} "
                              f"(the initial state and {frames - 1} steps). Fix: set {key.split(' ')[0]} <= "
                              f"{frames - 1}, or data.num_frames >= {n + 1}.")
    if "hybrid" in modes:
        generated = cfg.hybrid.physical_frames or frames
        need = cfg.synthetic.trainer_params.max_rollout_steps + 1
        if generated < need:
            raise ConfigError(f"hybrid.physical_frames = {generated} is shorter than a training window of the network "
                              f"({need} frames): the generated trajectories would yield no window. Fix: set "
                              f"hybrid.physical_frames >= {need} (or null: as many frames as the data).")


def _check_observation(cfg: ExperimentConfig, model) -> None:
    region = cfg.data.observed_region
    if region is None:
        return
    grid = model.grid
    example = ", ".join(f"[0, {s / 2:g}]" for s in grid.domain_size)
    fix = f"Fix: one [low, high] per axis inside the domain, e.g. data.observed_region: [{example}]."
    if len(region) != grid.ndim:
        raise ConfigError(f"data.observed_region {region} has {len(region)} pair(s); the grid has {grid.ndim} "
                          f"axis/axes. {fix}")
    for axis, ((low, high), size) in enumerate(zip(region, grid.domain_size)):
        if not 0 <= low < high <= size:
            raise ConfigError(f"data.observed_region entry {[low, high]} (axis {grid.axes[axis]}) is not inside "
                              f"the domain [0, {size:g}] with low < high. {fix}")
    try:
        spatial_mask(grid, region=[tuple(map(float, r)) for r in region])
    except ValueError as e:
        raise ConfigError(f"data.observed_region {region}: {e} {fix}") from None


def _check_physical(cfg: ExperimentConfig, model) -> None:
    p = cfg.physical
    unknown = [k for k in p.initial if k not in model.param_names]
    if unknown:
        raise ConfigError(f"physical.initial names {unknown}, which {type(model).__name__} does not have. Fix: "
                          f"learn some of {list(model.param_names)}, e.g. physical: {{initial: "
                          f"{{{model.param_names[0]}: 1.0}}}}.")
    stray = [k for k in p.bounds if k not in p.initial]
    if stray:
        raise ConfigError(f"physical.bounds names {stray}, which physical.initial does not learn ({list(p.initial)}). "
                          "Fix: remove them, or add an initial guess for each.")
    params = []
    for name, value in p.initial.items():
        bounds = p.bounds.get(name)
        try:
            params.append(learnable(name, coefficient(value, model.grid),
                                    bounds=tuple(bounds) if bounds is not None else None))
        except (ValueError, TypeError) as e:
            raise ConfigError(f"physical.initial.{name} = {value!r} with bounds {bounds}: {e} Fix: an initial "
                              f"guess inside [low, high] with low < high, e.g. bounds: {{{name}: [0.01, 5.0]}}."
                              ) from None
    try:
        PhysicalTrainer(p.trainer_params, model, params)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"physical: {e}") from None


def _check_network(cfg: ExperimentConfig, model) -> None:
    """Build the network as the runner will and step a zero state of the grid once."""
    s, grid = cfg.synthetic, model.grid
    channels = num_channels(model.field_names, model.vector_fields, grid.ndim)
    options = {"in_channels": channels, "out_channels": channels, "ndim": grid.ndim,
               "periodic": grid.boundary == "periodic", **dict(s.model_params)}
    state = torch.random.get_rng_state()  # the runner seeds the real network; leave the global state as found
    try:
        with torch.no_grad():
            net = ModelRegistry.get_synthetic_model(s.model, options)
            out = net(torch.zeros((1, channels) + tuple(grid.resolution)))
        if tuple(out.shape) != (1, channels) + tuple(grid.resolution):
            raise ValueError(f"it maps a state of shape {(1, channels) + tuple(grid.resolution)} to {tuple(out.shape)}")
        SyntheticTrainer(s.trainer_params, net)
    except ConfigError as e:  # an unknown or mistyped option
        raise ConfigError(f"synthetic.model {s.model!r} with model_params {dict(s.model_params)}: {e}") from None
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        raise ConfigError(f"synthetic.model {s.model!r} with model_params {dict(s.model_params)} does not fit the "
                          f"grid {tuple(grid.resolution)} of data.pde_params: {e}" +
                          ("" if "Fix:" in str(e) else " Fix: change synthetic.model_params (e.g. fewer levels) or "
                                                       "the resolution.")) from None
    finally:
        torch.random.set_rng_state(state)


def _check_size(cfg: ExperimentConfig, model) -> None:
    """The simulated data (float32) against the disk and the memory (the generator checks the free
    space again, precisely, before it writes)."""
    d, grid = cfg.data, model.grid
    per_frame = num_channels(model.field_names, model.vector_fields, grid.ndim) * math.prod(grid.resolution) * 4
    sims = d.num_train + d.num_test + (d.num_train if d.noise > 0 else 0)  # + the noisy copy
    nbytes = sims * d.num_frames * per_frame
    what = (f"data.num_train + num_test = {d.num_train + d.num_test} simulations x {d.num_frames} frames x "
            f"{math.prod(grid.resolution)} cells make {_size(nbytes)} of data")
    fix = "Fix: fewer simulations (data.num_train, data.num_test) or frames, or a coarser grid."
    memory = _memory()
    if memory is not None and nbytes > memory:
        raise ConfigError(f"{what}, more than this machine's {_size(memory)} of memory. {fix}")
    disk = _disk(data_dir())  # its size, not its free space: the data may be there already
    if disk and nbytes > disk:  # (0: a pseudo file system such as /proc, which holds nothing)
        raise ConfigError(f"{what}, more than the whole disk of {data_dir()} holds ({_size(disk)}). {fix} Or set "
                          "HYBRIDKIT_DATA to a larger disk.")


def check_writable_dir(directory: Path, what: str, fix: str) -> None:
    """Refuse a directory that is a file, lies under a file, or cannot be written (tried, so that
    it also holds for root and for read-only file systems); creates nothing that stays."""
    directory = Path(directory)
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {directory} cannot be created: {existing} is a file, not a directory. Fix: {fix}.")
    try:
        fd, name = tempfile.mkstemp(dir=existing, prefix=".hybridkit-write-test-")
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise ConfigError(f"{what} {directory} is not writable ({os.strerror(e.errno) if e.errno else e} in "
                          f"{existing}). Fix: {fix}.") from None


def check_run_dir(run_dir: Path) -> None:
    """The run directory: a directory (or a path one can be made at) that can be written."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"The run directory {run_dir} is a file. Fix: give --out a directory (it is created if "
                          "missing), or move the file.")
    check_writable_dir(run_dir, "The run directory", "choose another one with --out")


def _memory() -> int | None:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _disk(directory: Path) -> int | None:
    existing = Path(directory)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        return shutil.disk_usage(existing).total
    except OSError:
        return None


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return ""
