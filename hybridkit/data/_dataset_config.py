"""Named datasets from small configs: where they live, how they are built, generated once."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .._checks import check_count, check_real
from .._config import ConfigError, from_dict, to_dict
from .._grid import GridSpec
from .._yaml import read_yaml
from ..models import ModelRegistry
from ._generate import generate_dataset
from ._manager import DataManager

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DatasetConfig:
    """What a dataset is made of; the file is ``<data dir>/datasets/<name>.h5``.

    Defaults: the 1D viscous Burgers demo (``configs/burgers1d_default.yaml`` says the same).
    """

    name: str = "burgers1d_default"  # file stem; one config per name
    pde: str = "Burgers"  # a physical model name known to hybridkit.models.ModelRegistry
    resolution: tuple = (64,)  # cells per axis
    domain_size: tuple = (100.0,)  # length per axis: x in [0, 100)
    boundary: str = "periodic"  # or "zero"
    dt: float = 0.1  # time between stored frames
    pde_params: dict = field(default_factory=lambda: {"viscosity": 0.5})  # PDE keyword arguments
    num_sims: int = 32  # simulations (random initial states)
    num_frames: int = 21  # frames per simulation, the initial state included
    seed: int = 0  # same config + seed -> byte-identical file

    def __post_init__(self):
        # normalised so that a YAML `100` and a default `100.0` describe the same (cached) file;
        # the grid's own checks refuse 64.9 cells, a boolean or a string size
        grid = GridSpec(_as_tuple(self.resolution), _as_tuple(self.domain_size), self.boundary)
        self.resolution, self.domain_size = grid.resolution, grid.domain_size
        self.dt = check_real(self.dt, "dt", minimum=0.0, strict_minimum=True, fix="e.g. dt: 0.1 (time between frames).")
        if not isinstance(self.name, str) or not self.name or Path(self.name).name != self.name:
            raise ValueError(f"Expected a plain file stem as name, got {self.name!r}.")
        self.num_sims = check_count(self.num_sims, "num_sims", minimum=1, fix="e.g. num_sims: 32.")
        self.num_frames = check_count(self.num_frames, "num_frames", minimum=1, fix="e.g. num_frames: 21.")
        self.seed = check_count(self.seed, "seed", minimum=0, maximum=2**63 - 1, fix="e.g. seed: 0.")
        if self.pde_params is not None and not isinstance(self.pde_params, Mapping):
            raise ValueError(f"Expected pde_params as a mapping, got {self.pde_params!r}. Fix: e.g. pde_params: "
                             "{viscosity: 0.5}.")
        self.pde_params = dict(self.pde_params or {})


def data_dir() -> Path:
    """Where generated data live: ``$HYBRIDKIT_DATA``, else the checkout's ``data/``, else ``./data``."""
    env = os.environ.get("HYBRIDKIT_DATA")
    if env:
        return Path(env).expanduser()
    if (_REPO_ROOT / "data" / "README.md").is_file():  # an editable install in a checkout
        return _REPO_ROOT / "data"
    return Path.cwd() / "data"


def load_dataset_config(path: str | os.PathLike, *, section: str = "dataset") -> DatasetConfig:
    """Read the ``section`` of a YAML config (:func:`hybridkit._yaml.read_yaml`: plain data only)
    as a DatasetConfig.

    Raises:
        FileNotFoundError: no file at ``path``.
        ConfigError: the YAML is refused (see :mod:`hybridkit._yaml`), lacks the section, or a
            key or value of it is wrong.
    """
    doc = read_yaml(path)
    if not isinstance(doc, Mapping) or section not in doc:
        raise ConfigError(f"Expected a top-level {section!r} section in {path}, found {list(doc) if isinstance(doc, Mapping) else type(doc).__name__}.")
    return from_dict(DatasetConfig, doc[section], where=f"{path}:{section}")


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
    cfg = from_dict(DatasetConfig, cfg, where="dataset")
    directory = Path(directory) if directory is not None else data_dir() / "datasets"
    path = directory / f"{cfg.name}.h5"
    source = _jsonable(to_dict(cfg))
    if path.is_file():
        try:
            with DataManager(path, cache_mb=0) as dm:
                if dm.metadata.get("source_config") == source:
                    return path, False
        except (ValueError, OSError):
            pass  # unreadable or foreign file under our name: regenerate it
    model = ModelRegistry.get_physical_model(cfg.pde, {
        "resolution": cfg.resolution, "domain_size": cfg.domain_size, "boundary": cfg.boundary,
        "dt": cfg.dt, "pde_params": cfg.pde_params})
    generate_dataset(model, path, num_sims=cfg.num_sims, num_frames=cfg.num_frames, seed=cfg.seed,
                     overwrite=True, progress=progress, attrs=source)
    return path, True


def _as_tuple(value) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _jsonable(value):
    """Tuples -> lists (what a JSON round trip gives), so stored and current configs compare equal."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
