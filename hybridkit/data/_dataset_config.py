"""Named datasets from small configs: where they live, how they are built, generated once.

One YAML data schema serves the named datasets (``python -m hybridkit demo``, the notebooks) and
the experiment runner (its ``data`` section adds what is observed: train/test split, noise,
region): a PDE name and its ``pde_params`` (grid, ``dt`` and coefficients, a field coefficient
possibly an expression of the grid coordinates), frames and a seed::

    data:
      name: burgers1d_default
      pde: Burgers
      pde_params: {resolution: [64], domain_size: [100.0], boundary: periodic, dt: 0.1, viscosity: 0.5}
      num_sims: 32
      num_frames: 21
      seed: 0
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._checks import check_count
from .._config import ConfigError, from_dict, to_dict
from .._expr import evaluate as evaluate_expression
from .._grid import GridSpec
from .._yaml import read_yaml
from ..models import ModelRegistry
from ..physics import parametrization_from_dict
from ._generate import generate_dataset
from ._manager import DataManager

__all__ = ["DatasetConfig", "data_dir", "load_dataset_config", "ensure_dataset", "build_model", "coefficient",
           "parametric_spec"]

_GRID_KEYS = ("resolution", "domain_size", "boundary")


def _default_pde_params() -> dict:
    return {"resolution": [64], "domain_size": [100.0], "boundary": "periodic", "dt": 0.1, "viscosity": 0.5}


@dataclass(frozen=True)
class DatasetConfig:
    """What a dataset is made of; the file is ``<data dir>/datasets/<name>.h5``.

    Defaults: the 1D viscous Burgers demo (``configs/burgers1d_default.yaml`` says the same).
    """

    name: str = "burgers1d_default"  # file stem; one config per name
    pde: str = "Burgers"  # a physical model name known to hybridkit.models.ModelRegistry
    # the model's keyword arguments: the grid (resolution, domain_size, boundary), dt, substeps and
    # the coefficients; a field coefficient may be an expression of x, y, L, e.g. "0.1 + sin(pi*x/L)**2"
    pde_params: dict = field(default_factory=_default_pde_params)
    num_sims: int = 32  # simulations (random initial states)
    num_frames: int = 21  # frames per simulation, the initial state included
    seed: int = 0  # same config + seed -> byte-identical file

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or Path(self.name).name != self.name:
            raise ValueError(f"Expected a plain file stem as name, got {self.name!r}.")
        if not isinstance(self.pde_params, Mapping):
            raise ValueError(f"Expected pde_params to be a mapping, got {type(self.pde_params).__name__}. "
                             "Fix: e.g. {resolution: [64], domain_size: [100.0], dt: 0.1, viscosity: 0.5}.")
        for name, minimum in (("num_sims", 1), ("num_frames", 1), ("seed", 0)):
            object.__setattr__(self, name, check_count(getattr(self, name), name, minimum=minimum,
                                                       maximum=2**63 - 1, fix=f"e.g. {name}: {max(minimum, 1)}."))
        # normalised so that a YAML `100` and a default `100.0` describe the same (cached) file
        object.__setattr__(self, "pde_params", _normalised(self.pde_params))


def build_model(pde: str, pde_params: Mapping[str, Any]):
    """The physical model ``pde`` (a :class:`~hybridkit.models.ModelRegistry` name) with the
    grid, ``dt`` and coefficients of ``pde_params``; string coefficients are expressions of the
    grid's cell centres (:func:`coefficient`).

    Raises:
        ConfigError: unknown model or keys, missing grid keys, a bad expression or value.
    """
    if not isinstance(pde_params, Mapping):
        raise ConfigError(f"Expected pde_params as a mapping, got {type(pde_params).__name__}.")
    params = dict(pde_params)
    try:
        grid = GridSpec(**{k: params[k] for k in _GRID_KEYS if k in params})
    except TypeError as e:
        raise ConfigError(f"pde_params needs resolution and domain_size: {e}") from None
    except ValueError as e:
        raise ConfigError(f"Invalid grid in pde_params: {e}") from None
    # Strings are expressions only for coefficients (not e.g. boundary or on_unstable): ask a
    # model built with the model's own defaults for those which are its parameters.
    probe = ModelRegistry.get_physical_model(pde, {k: v for k, v in params.items()
                                                   if not isinstance(v, (str, Mapping)) or k == "boundary"})
    resolved = {k: coefficient(v, grid) if k in probe.param_names else v for k, v in params.items()}
    return ModelRegistry.get_physical_model(pde, resolved)


def coefficient(value, grid: GridSpec):
    """A config value as a coefficient: a string is an expression of the grid's cell centres (``x``,
    ``y``, ``L``...); a mapping ``{parametrization: {...}, theta: [...]}`` is the field those numbers
    make (:func:`parametric_spec`); anything else is returned as is."""
    if isinstance(value, Mapping):
        par, theta = parametric_spec(value, grid)
        return par.evaluate_numpy(theta, grid)
    if not isinstance(value, str):
        return value
    coords = grid.coordinates()
    names = dict(zip(grid.axes, coords))
    names.update({f"L{a}": s for a, s in zip(grid.axes, grid.domain_size)}, L=grid.domain_size[0])
    out = evaluate_expression(value, names)
    return np.broadcast_to(np.asarray(out, dtype=np.float64), tuple(grid.resolution)).copy()


def parametric_spec(value: Mapping, grid: GridSpec):
    """``(parametrization, theta)`` of a parametric coefficient written as plain data::

        diffusivity:
          parametrization: {type: GaussianBumps, num_bumps: 2}   # AbstractParametricField.to_dict()
          theta: [0.2, 1.0, 30.0, 8.0, 0.6, 70.0, 12.0]           # or {base: 0.2, amplitude_0: 1.0, ...}

    ``theta`` is a list in the order of ``parametrization.component_names(grid)`` or a mapping from
    those names. In ``data.pde_params`` this is a TRUE coefficient (the field it makes); in
    ``physical.initial`` the initial guess of a parametric learnable.

    Raises:
        ConfigError: other keys, an unknown parametrisation, missing or unknown component names,
            or numbers no field can be made of.
    """
    if set(value) != {"parametrization", "theta"}:
        raise ConfigError(f"Expected a parametric coefficient as {{parametrization: {{type: GaussianBumps, num_bumps: 2}}, "
                          f"theta: [...]}}, got keys {sorted(value)}.")
    try:
        par = parametrization_from_dict(value["parametrization"])
        names = par.component_names(grid)
        theta = value["theta"]
        if isinstance(theta, Mapping):
            missing, unknown = [n for n in names if n not in theta], sorted(set(theta) - set(names))
            if missing or unknown:
                raise ValueError(f"Expected theta with the components {list(names)}, got missing {missing}, "
                                 f"unknown {unknown}.")
            theta = [theta[n] for n in names]
        return par, par.check_theta(theta, grid)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"Invalid parametric coefficient {dict(value)!r}: {e}") from None


def data_dir() -> Path:
    """Where generated data live: ``$HYBRIDKIT_DATA`` when set, else ``data/`` in the current
    working directory.

    The working directory, not the package: an installed or editable checkout is never written
    into behind the user's back. ``make demo`` and ``make test`` run from the checkout's root and
    write its ``data/``; a notebook's kernel runs in the notebook's folder, so the notebooks
    write ``notebooks/data/`` (a copy of a notebook elsewhere writes next to that copy). Both
    are git-ignored; ``data/README.md`` says what goes where.
    """
    env = os.environ.get("HYBRIDKIT_DATA")
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "data"


def load_dataset_config(path: str | os.PathLike, *, section: str = "data") -> DatasetConfig:
    """Read the ``data`` section of a YAML config (:func:`hybridkit._yaml.read_yaml`: plain data
    only) as a DatasetConfig.

    Raises:
        FileNotFoundError: no file at ``path``.
        ConfigError: the YAML is refused (see :mod:`hybridkit._yaml`), no such section, unknown
            keys or values, or the old ``dataset:`` layout (the message says how to convert it).
    """
    doc = read_yaml(path)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"Expected a mapping at the top of {path}, got {type(doc).__name__}.")
    if section not in doc and "dataset" in doc:
        raise ConfigError(f"{path} uses the old `dataset:` layout. Fix: rename the section to `data:` and "
                          + _conversion(doc["dataset"]))
    if section not in doc:
        raise ConfigError(f"Expected a top-level {section!r} section in {path}, found {list(doc)}.")
    return _dataset_config(doc[section], f"{path}:{section}")


def _dataset_config(cfg, where: str) -> DatasetConfig:
    """``cfg`` as a DatasetConfig; the old layout (grid keys and dt beside pde_params) is refused
    with how to convert it."""
    if isinstance(cfg, Mapping) and any(k in cfg for k in (*_GRID_KEYS, "dt")):
        raise ConfigError(f"The dataset config {where} has the old layout. Fix: " + _conversion(cfg))
    return from_dict(DatasetConfig, cfg, where=where)


def _conversion(old) -> str:
    moved = [k for k in (*_GRID_KEYS, "dt") if isinstance(old, Mapping) and k in old]
    return (f"move {moved} into pde_params, e.g. data: {{name: ..., pde: Burgers, pde_params: {{resolution: [64], "
            "domain_size: [100.0], boundary: periodic, dt: 0.1, viscosity: 0.5}, num_sims: 32, num_frames: 21, "
            "seed: 0}.")


def ensure_dataset(cfg: DatasetConfig | Mapping[str, Any] | None = None, *, directory: str | os.PathLike | None = None,
                   progress: bool = False) -> tuple[Path, bool]:
    """The dataset file of ``cfg``, generated if missing or made from a different config.

    Args:
        cfg: a DatasetConfig or dict (None: the defaults).
        directory: where the file goes (default ``data_dir() / "datasets"``).
        progress: progress bar while generating.

    Returns:
        ``(path, generated)``: ``generated`` is False when an up-to-date file was reused.
    """
    cfg = _dataset_config(cfg, "dataset")
    directory = Path(directory) if directory is not None else data_dir() / "datasets"
    path = directory / f"{cfg.name}.h5"
    source = _normalised(to_dict(cfg))
    if path.is_file():
        try:
            with DataManager(path, cache_mb=0) as dm:
                if dm.metadata.get("source_config") == source:
                    return path, False
        except (ValueError, OSError):
            pass  # unreadable or foreign file under our name: regenerate it
    model = build_model(cfg.pde, cfg.pde_params)
    generate_dataset(model, path, num_sims=cfg.num_sims, num_frames=cfg.num_frames, seed=cfg.seed,
                     overwrite=True, progress=progress, attrs=source)
    return path, True


def _normalised(value):
    """Plain JSON-like data (tuples -> lists, ints in float-valued grid keys as floats): what a
    JSON round trip gives, so stored and current configs compare equal."""
    if isinstance(value, Mapping):
        out = {str(k): _normalised(v) for k, v in value.items()}
        if "domain_size" in out and isinstance(out["domain_size"], list):
            out["domain_size"] = [float(s) for s in out["domain_size"]]
        return out
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    return value
