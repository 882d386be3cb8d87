"""Run an experiment: prepare the data, train in one mode (or compare all three), evaluate."""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .._backend import resolve_device
from .._config import ConfigError
from .._expr import evaluate as evaluate_expression
from .._grid import GridSpec
from ..convert import stack_channels, to_field, to_tensor
from ..data import (AugmentedDataset, CacheManager, DataManager, HybridDataset, ObservationMask, add_noise,
                    cache_key, data_dir, generate_dataset, make_loader, spatial_mask, write_trajectories)
from ..metrics import relative_l2, rollout_errors
from ..models import ModelRegistry
from ..physics import learnable
from ..training import HybridTrainer, PhysicalTrainer, SyntheticTrainer
from ..training._distributed import barrier, distributed_loader, init_distributed, is_distributed
from ._config import ExperimentConfig, experiment_config

__all__ = ["ExperimentData", "prepare_data", "run_experiment", "evaluate_run", "param_error"]


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


# ---------------------------------------------------------------------- data
def build_physical_model(cfg: ExperimentConfig):
    """The physical model of ``cfg.data`` with its true coefficients (expressions evaluated)."""
    params = dict(cfg.data.pde_params)
    grid_keys = {k: params[k] for k in ("resolution", "domain_size", "boundary") if k in params}
    try:
        grid = GridSpec(**grid_keys)
    except TypeError as e:
        raise ConfigError(f"data.pde_params needs resolution and domain_size: {e}") from None
    # Strings are expressions only for coefficients (not e.g. boundary or on_unstable): ask a
    # model built with the model's own defaults for those which are its parameters.
    probe = ModelRegistry.get_physical_model(cfg.data.pde, {k: v for k, v in params.items()
                                                            if not isinstance(v, str) or k == "boundary"})
    resolved = {k: coefficient(v, grid) if k in probe.param_names else v for k, v in params.items()}
    return ModelRegistry.get_physical_model(cfg.data.pde, resolved)


def coefficient(value, grid: GridSpec):
    """A config value; a string is an expression of the grid's cell centres (``x``, ``y``, ``L``...)."""
    if not isinstance(value, str):
        return value
    coords = grid.coordinates()
    names = dict(zip(grid.axes, coords))
    names.update({f"L{a}": s for a, s in zip(grid.axes, grid.domain_size)}, L=grid.domain_size[0])
    out = evaluate_expression(value, names)
    return np.broadcast_to(np.asarray(out, dtype=np.float64), tuple(grid.resolution)).copy()


def prepare_data(cfg: ExperimentConfig, *, cache: CacheManager | None = None, progress: bool = False) -> ExperimentData:
    """Simulate (or reuse) the experiment's data: clean trajectories and the observed copy.

    Files are cached by content of the ``data`` section, so every mode of a comparison and every
    rerun uses byte-identical data.
    """
    cache = cache or CacheManager(data_dir() / "cache")
    d = cfg.data
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
    if d.observed_region is not None:
        region = [tuple(map(float, r)) for r in d.observed_region]
        observation = ObservationMask(spatial=spatial_mask(model.grid, region=region))
    if d.observed_every is not None:
        raise ConfigError("data.observed_every is not supported by the experiment runner yet; "
                          "use data.observed_region. Fix: remove observed_every.")
    with DataManager(clean) as dm:
        true_params = {k: _public(dm.params(k, sims=0)) for k in model.param_names}
    return ExperimentData(model, Path(clean), Path(observed), train, list(range(d.num_train, n)),
                          observation, true_params)


# ---------------------------------------------------------------------- models and trainers
def build_network(cfg: ExperimentConfig, real: HybridDataset) -> torch.nn.Module:
    """The synthetic model, seeded, with channels and dimension taken from the data."""
    torch.manual_seed(int(cfg.synthetic.init_seed))
    options = {"in_channels": real.in_channels, "out_channels": real.out_channels, "ndim": real.grid.ndim,
               "periodic": real.grid.boundary == "periodic", **dict(cfg.synthetic.model_params)}
    return ModelRegistry.get_synthetic_model(cfg.synthetic.model, options)


def build_trainers(cfg: ExperimentConfig, data: ExperimentData, real: HybridDataset):
    """``(SyntheticTrainer, PhysicalTrainer)`` configured from ``cfg``."""
    synthetic = SyntheticTrainer(dict(cfg.synthetic.trainer_params), build_network(cfg, real))
    params = []
    for name, value in cfg.physical.initial.items():
        bounds = cfg.physical.bounds.get(name)
        params.append(learnable(name, coefficient(value, data.model.grid),
                                bounds=tuple(bounds) if bounds is not None else None))
    tp = {"on_failure": "warn", **dict(cfg.physical.trainer_params)}
    physical = PhysicalTrainer(tp, data.model, params, observation=data.observation)
    return synthetic, physical


def real_dataset(cfg: ExperimentConfig, data: ExperimentData, steps: int, *, fields: bool = False) -> HybridDataset:
    """Windows of the observed training simulations."""
    dm = DataManager(data.observed)
    sims = list(range(len(data.train_sims)))  # the observed file holds the training sims first
    return HybridDataset(dm, sims, data.model.field_names, num_predict_steps=steps, return_fields=fields)


def _synthetic_steps(synthetic: SyntheticTrainer) -> int:
    schedule = synthetic.config.rollout_schedule or ()
    return max([synthetic.config.num_predict_steps] + [s for _, s in schedule])


# ---------------------------------------------------------------------- modes
def run_experiment(cfg, run_dir: str | os.PathLike, *, progress: bool = True, resume: bool = True,
                   log=print) -> dict:
    """Run ``cfg`` (an :class:`ExperimentConfig` or dict) and write results to ``run_dir``.

    ``run_dir`` receives ``metrics.json``, ``config.json``, plots (PNG) and checkpoints; in
    ``compare`` mode one sub-folder per mode and a ``summary.md``. Rerunning the same command
    resumes from the last completed epoch / cycle (said in the log) unless ``resume=False``.

    Under ``torchrun`` (``torchrun --nproc_per_node=N -m hybridkit run CONFIG``) the synthetic and
    hybrid modes train data-parallel (``batch_size`` is the global batch); rank 0 prepares the
    data first, logs and writes the results. Every rank runs every mode in the same order (each
    builds its trainers, and a network's DDP wrapper is a collective); the physical-only fit is
    deterministic, so every rank computes the same one.

    Returns:
        The metrics (also in ``metrics.json``).
    """
    cfg = experiment_config(cfg)
    rank0 = init_distributed().is_rank_zero  # a no-op (rank 0 of 1) unless started by torchrun
    if not rank0:
        progress, log = False, (lambda *_: None)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if rank0:
        _write_json(run_dir / "config.json", _plain(asdict(cfg)))
    else:
        barrier()  # rank 0 simulates (or finds) the data first; the others then read its cache
    data = prepare_data(cfg, progress=progress)
    if rank0:
        barrier()
    modes = ("physical", "synthetic", "hybrid") if cfg.mode == "compare" else (cfg.mode,)
    metrics = {}
    for mode in modes:
        sub = run_dir / mode if cfg.mode == "compare" else run_dir
        t0 = time.perf_counter()
        metrics[mode] = _RUNNERS[mode](cfg, data, sub, progress=progress, resume=resume, log=log)
        metrics[mode]["seconds"] = time.perf_counter() - t0
        log(f"[{mode}] {_one_line(metrics[mode])}")
    result = {"name": cfg.name, "mode": cfg.mode, "modes": metrics,
              "true_params": _plain(data.true_params)}
    if not rank0:
        return result
    _write_json(run_dir / "metrics.json", result)
    if cfg.mode == "compare":
        (run_dir / "summary.md").write_text(summary_table(result))
    _plots(result, data, run_dir)
    return result


def _run_physical(cfg, data, run_dir, *, progress, resume, log) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    steps_s = 1
    real_s = real_dataset(cfg, data, steps_s)
    synthetic, physical = build_trainers(cfg, data, real_s)
    steps = physical.config.num_predict_steps
    real_p = real_dataset(cfg, data, steps, fields=True)
    epochs = cfg.physical.epochs if cfg.mode != "compare" else cfg.cycles * cfg.hybrid.physical_epochs
    params_file = run_dir / "physical.npz"
    # after every fit: the estimate, the fits done and their statuses, in one file replaced
    # atomically, so that a killed run resumes after its last completed fit
    progress_file = run_dir / "physical_progress.json"
    statuses, done = [], 0
    if resume and progress_file.exists():
        state = json.loads(progress_file.read_text())
        physical.set_params(state["params"])
        statuses, done = list(state["statuses"]), int(state["epochs_done"])
        log(f"[physical] resuming from {progress_file} after fit {done}")
    elif resume and params_file.exists():  # a finished run of an earlier version
        physical.load_params(params_file)
        log(f"[physical] resuming from {params_file}")
        done = max(epochs, 1)
    for epoch in range(done, max(epochs, 1)):
        run = physical.train(real_p, 1, progress=progress)
        statuses += [r.status for r in run["results"]]
        _write_json(progress_file, {"epochs_done": epoch + 1, "statuses": statuses, "params": physical.params})
    physical.save_params(params_file)
    return {**evaluate_run(cfg, data, physical_params=physical.params), "fit_status": statuses}


def _run_synthetic(cfg, data, run_dir, *, progress, resume, log) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    probe = real_dataset(cfg, data, 1)
    synthetic, physical = build_trainers(cfg, data, probe)
    real = real_dataset(cfg, data, _synthetic_steps(synthetic))
    h = cfg.hybrid
    epochs = cfg.synthetic.epochs if cfg.mode != "compare" else h.warmup_epochs + cfg.cycles * h.synthetic_epochs
    weights = data.observation.point_weights(real.grid, real.num_predict_steps) if data.observation else 1.0
    windows = AugmentedDataset(real, [], weight_real=weights)
    if is_distributed():  # each rank its share of every global batch; the order: seed + epoch
        loader = distributed_loader(windows, cfg.synthetic.batch_size, seed=cfg.data.seed)
    else:
        loader = make_loader(windows, batch_size=cfg.synthetic.batch_size, seed=cfg.data.seed)
    ckpt = run_dir / "synthetic.pt"
    if resume and ckpt.exists():
        synthetic.load_checkpoint(ckpt)
        log(f"[synthetic] resuming from {ckpt} at epoch {synthetic.epoch}")
    while synthetic.epoch < epochs:
        if loader.generator is not None:  # (the distributed sampler seeds itself with seed + epoch)
            loader.generator.manual_seed(cfg.data.seed + synthetic.epoch)  # order depends on the epoch only
        synthetic.train(loader, 1, progress=False)
        synthetic.save_checkpoint(ckpt)
    out = evaluate_run(cfg, data, network=synthetic.model)
    out["loss"] = synthetic.history["loss"]
    return out


def _run_hybrid(cfg, data, run_dir, *, progress, resume, log) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    probe = real_dataset(cfg, data, 1)
    synthetic, physical = build_trainers(cfg, data, probe)
    real = real_dataset(cfg, data, _synthetic_steps(synthetic))
    cache = CacheManager(run_dir / "cache")
    hybrid = HybridTrainer(cfg.hybrid, synthetic, physical, cache=cache)
    ckpt = run_dir / "checkpoints"
    if resume and hybrid.load_checkpoint(ckpt):
        log(f"[hybrid] resuming from {ckpt} after cycle {hybrid.cycle}")
    hybrid.train(real, max(cfg.cycles - hybrid.cycle, 0), progress=progress, checkpoint_dir=ckpt)
    out = evaluate_run(cfg, data, network=synthetic.model, physical_params=physical.params)
    out["cycles"] = hybrid.history
    out["loss"] = synthetic.history["loss"]
    return out


_RUNNERS = {"physical": _run_physical, "synthetic": _run_synthetic, "hybrid": _run_hybrid}


# ---------------------------------------------------------------------- evaluation
def param_error(learned, true) -> float:
    """Relative error of a scalar, relative L2 error of a field / vector."""
    learned, true = np.asarray(learned, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return float(np.linalg.norm(learned - true) / max(np.linalg.norm(true), 1e-30))


@torch.no_grad()
def evaluate_run(cfg: ExperimentConfig, data: ExperimentData, *, network=None, physical_params=None) -> dict:
    """Errors on the held-out simulations (never observed): per-step relative L2 of the rollouts
    from frame 0 (network and / or physical model) and the parameter errors."""
    steps = int(cfg.evaluate.steps)
    dm = DataManager(data.clean)
    test = HybridDataset(dm, data.test_sims, data.model.field_names, num_frames=steps + 1,
                         num_predict_steps=steps)
    initial = torch.stack([test[i][0] for i in range(len(test))])
    targets = torch.stack([test[i][1] for i in range(len(test))])
    out = {}
    if network is not None:
        errors = rollout_errors(network.to(resolve_device("auto")), initial, targets)
        out["synthetic_rollout_error"] = errors.tolist()
    if physical_params is not None:
        model, names = data.model, data.model.field_names
        state = {k: to_field(np.stack([dm.load(s, k, 0, 1)[0] for s in data.test_sims]), model.grid,
                             vector=k in model.vector_fields) for k in names}
        traj = model.rollout(state, steps, physical_params, check=False)
        pred = stack_channels({k: to_tensor(traj[k], ["batch", "time"]) for k in names}, names,
                              model.vector_fields, model.grid.ndim)[:, 1:].float()
        per_step = [relative_l2(pred[:, t], targets[:, t]).mean().item() for t in range(steps)]
        out["physical_rollout_error"] = [float(e) if np.isfinite(e) else float("inf") for e in per_step]
        out["params"] = _plain(physical_params)
        out["param_error"] = {k: param_error(physical_params[k], data.true_params[k]) for k in physical_params}
        if data.observation is not None and data.observation.spatial is not None:
            m = data.observation.spatial
            out["param_error_unobserved"] = {
                k: param_error(np.asarray(v)[~m], np.asarray(data.true_params[k])[~m])
                for k, v in physical_params.items() if np.ndim(v) == len(m.shape)}
    return out


# ---------------------------------------------------------------------- reporting
def comparison_rows(result: dict) -> list[tuple]:
    """The metrics of a comparison as ``(metric, physical only, synthetic only, hybrid, ratio)``:
    parameter errors (and where unobserved), then each model's rollout error at the last step.
    A baseline that does not have the metric is None; ratio = hybrid / best baseline."""
    m = result["modes"]
    rows = []
    for p in sorted(m["physical"].get("param_error", {})):
        rows.append((f"{p}: relative error", m["physical"]["param_error"][p], None, m["hybrid"]["param_error"][p]))
        if p in m["hybrid"].get("param_error_unobserved", {}):
            rows.append((f"{p}: error where unobserved", m["physical"]["param_error_unobserved"][p], None,
                         m["hybrid"]["param_error_unobserved"][p]))
    steps = len(m["synthetic"]["synthetic_rollout_error"])
    rows.append((f"network rollout error, step {steps}", None, m["synthetic"]["synthetic_rollout_error"][-1],
                 m["hybrid"]["synthetic_rollout_error"][-1]))
    rows.append((f"physical rollout error, step {steps}", m["physical"]["physical_rollout_error"][-1], None,
                 m["hybrid"]["physical_rollout_error"][-1]))
    return [(name, a, s, h, h / max(min(v for v in (a, s) if v is not None), 1e-30)) for name, a, s, h in rows]


def markdown_row(*cells) -> str:
    """``| a | b | ... |`` with numbers as 3 significant digits, None as ``-``, the last as a ratio."""
    *cells, ratio = cells
    fmt = lambda v: "-" if v is None else (v if isinstance(v, str) else f"{v:.3g}")  # noqa: E731
    return "| " + " | ".join(fmt(c) for c in cells) + f" | {ratio:.2f} |"


def summary_table(result: dict) -> str:
    """A markdown table of a comparison: parameter and rollout errors of each mode."""
    rows = ["| metric | physical only | synthetic only | hybrid | hybrid / best baseline |", "|---|---|---|---|---|"]
    rows += [markdown_row(*r) for r in comparison_rows(result)]
    return "\n".join(rows) + "\n"


def _one_line(m: dict) -> str:
    parts = []
    if "param_error" in m:
        parts.append("param error " + ", ".join(f"{k} {v:.3g}" for k, v in m["param_error"].items()))
    for key in ("synthetic_rollout_error", "physical_rollout_error"):
        if key in m:
            parts.append(f"{key.split('_')[0]} rollout error (last step) {m[key][-1]:.3g}")
    return "; ".join(parts)


def _plots(result: dict, data: ExperimentData, run_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from ..viz import plot_param_field, plot_rollout_errors

    curves = {}
    for mode, m in result["modes"].items():
        for key in ("synthetic_rollout_error", "physical_rollout_error"):
            if key in m:
                curves[f"{mode}: {key.split('_')[0]}"] = np.asarray(m[key])
    if curves:
        fig = plot_rollout_errors(curves, dt=data.model.dt)
        fig.savefig(run_dir / "rollout_errors.png", dpi=100)
    for mode, m in result["modes"].items():
        for name, v in m.get("params", {}).items():
            if np.ndim(v) >= 1 and np.ndim(data.true_params[name]) >= 1 and len(np.shape(v)) == data.model.grid.ndim:
                mask = data.observation.spatial if data.observation is not None else None
                fig = plot_param_field(np.asarray(v), np.asarray(data.true_params[name]), grid=data.model.grid,
                                       mask=mask, name=name)
                fig.savefig(run_dir / f"{mode}_{name}.png", dpi=100)


def _public(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v) if v.ndim == 0 else v


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _write_json(path: Path, doc) -> None:
    """Write ``doc`` as JSON atomically: a unique temporary name (two processes never share one),
    flushed to disk, then renamed over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(json.dumps(_plain(doc), indent=1))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
