"""An experiment's data: clean simulations, the observed (noisy, partial) copy, the true coefficients."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._config import ConfigError
from ..data import (CacheManager, DataManager, HybridDataset, ObservationMask, add_noise, build_model, cache_key,
                    data_dir, generate_dataset, spatial_mask, write_trajectories)
from ._config import ExperimentConfig

__all__ = ["ExperimentData", "build_physical_model", "prepare_data", "real_dataset"]


@dataclass
class ExperimentData:
    """What an experiment trains and is judged on.

    Attributes:
        model: the physical model with the TRUE coefficients (made the data).
        clean: the dataset file of all simulations, noise-free (train sims first, then test sims).
        observed: the file of the training simulations as observed (with noise, if any).
        train_sims, test_sims: simulation indices in ``observed`` and ``clean``.
        observation: where data exist (None: everywhere).
        true_params: ``name -> float / array``: the coefficients to recover.
    """

    model: object
    clean: Path
    observed: Path
    train_sims: list
    test_sims: list
    observation: ObservationMask | None
    true_params: dict


def build_physical_model(cfg: ExperimentConfig):
    """The physical model of ``cfg.data`` with its true coefficients (expressions evaluated)."""
    return build_model(cfg.data.pde, cfg.data.pde_params)


def prepare_data(cfg: ExperimentConfig, *, cache: CacheManager | None = None, progress: bool = False) -> ExperimentData:
    """Simulate (or reuse) the experiment's data: clean trajectories and the observed copy.

    Files are cached by content of the ``data`` section, so every mode of a comparison and every
    rerun uses byte-identical data.
    """
    d = cfg.data
    if d.observed_every is not None:  # before minutes of simulation
        raise ConfigError("data.observed_every is not supported by the experiment runner yet; "
                          "use data.observed_region. Fix: remove observed_every.")
    cache = cache or CacheManager(data_dir() / "cache")
    model = build_physical_model(cfg)
    n = int(d.num_train) + int(d.num_test)
    physics = {k: v for k, v in asdict(d).items() if k in ("pde", "pde_params", "num_train", "num_test",
                                                             "num_frames", "seed")}
    clean = cache.get_or_create(
        cache_key(kind="experiment-clean", **physics),
        lambda p: generate_dataset(model, p, num_sims=n, num_frames=d.num_frames, seed=d.seed,
                                   overwrite=True, progress=progress, attrs={"source": "experiment", **physics}),
        meta={"source": "experiment-clean"},
    )
    train = list(range(int(d.num_train)))
    observed = clean
    if d.noise > 0:
        def write_noisy(path):
            with DataManager(clean) as dm:
                fields = {k: np.stack([dm.load(s, k) for s in train]) for k in model.field_names}
                params = {k: dm.params(k, sims=train) for k in model.param_names}
            noisy = add_noise(fields, d.noise, seed=d.seed + 1)
            write_trajectories(model, path, noisy, params=params, seed=d.seed,
                               attrs={"source": "experiment-observed", "noise": d.noise}, overwrite=True)
        observed = cache.get_or_create(cache_key(kind="experiment-observed", noise=d.noise, **physics),
                                       write_noisy, meta={"source": "experiment-observed"})
    observation = None
    if d.observed_region is not None or d.observed_stride is not None:
        region = None if d.observed_region is None else [tuple(map(float, r)) for r in d.observed_region]
        observation = ObservationMask(spatial=spatial_mask(model.grid, region=region, every=d.observed_stride))
    with DataManager(clean) as dm:
        true_params = {k: _public(dm.params(k, sims=0)) for k in model.param_names}
    return ExperimentData(model, Path(clean), Path(observed), train, list(range(d.num_train, n)),
                          observation, true_params)


def real_dataset(data: ExperimentData, steps: int, *, fields: bool = False) -> HybridDataset:
    """Windows of the observed training simulations (the caller closes ``.data_manager``)."""
    dm = DataManager(data.observed)
    sims = list(range(len(data.train_sims)))  # the observed file holds the training sims first
    return HybridDataset(dm, sims, data.model.field_names, num_predict_steps=steps, return_fields=fields)


def _public(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v) if v.ndim == 0 else v
